"""EC2 Auto Scaling lifecycle hooks, modelled inside moto's backend (moto 5 stores hooks but
implements neither the wait states nor CompleteLifecycleAction/RecordLifecycleActionHeartbeat).

Semantics, from the Amazon EC2 Auto Scaling User Guide, "Amazon EC2 Auto Scaling lifecycle hooks",
"Complete a lifecycle action" and "Configure a notification target", and the API reference:
- a launching instance with a launch hook waits in `Pending:Wait`, a terminating one with a
  termination hook in `Terminating:Wait`; the hook notifies its target (here an SQS queue) with the
  action's token, the group, the hook, the instance, the transition and the hook's metadata;
- `CompleteLifecycleAction` names the action by `LifecycleActionToken` or by `InstanceId`, with
  `CONTINUE` or `ABANDON`; an action that is not waiting is a ValidationError;
- `RecordLifecycleActionHeartbeat` restarts the heartbeat timeout; an instance stays in a wait
  state at most 48 hours or 100 heartbeat timeouts, whichever is less (global timeout);
- when the heartbeat timeout passes, the hook's `DefaultResult` applies;
- after a launch: `CONTINUE` puts the instance `InService`, `ABANDON` terminates it; after a
  termination hook the instance terminates whatever the result;
- an instance the group launches itself (moto does when one of its instances is terminated, to
  keep the desired capacity) goes through the launch hook too, like any other launch;
- health replacement, for the groups a test names (`replace_unhealthy_in`; moto does none): an
  in-service instance marked Unhealthy (SetInstanceHealth), or not `running` (stopped: the EC2
  health check "immediately marks the instance as unhealthy"), is terminated, through the termination
  hook, and a new one launched in its place, through the launch hook, the desired capacity
  unchanged (User Guide, "Health checks for instances in an Auto Scaling group": "Amazon EC2
  Auto Scaling ... terminates the unhealthy instance and launches a replacement"; "Replace
  unhealthy instances": lifecycle hooks apply to it). AWS starts this within a few seconds of
  the mark; here at the next tick.
Time is the model's own clock, so tests can move it; `expire()` applies timeouts, and
`run_clock()` does it twice a second for a lab.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.models import FakeAutoScalingGroup, autoscaling_backends
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import EmptyResult
from moto.ec2.models import ec2_backends
from moto.sqs.models import sqs_backends

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
WAIT_STATE = {LAUNCHING: "Pending:Wait", TERMINATING: "Terminating:Wait"}
GLOBAL_TIMEOUT_SECONDS = 48 * 3600


@dataclass
class Action:
    token: str
    group: str
    hook: str
    instance_id: str
    transition: str
    deadline: float
    global_deadline: float
    result: str | None = None
    ended_by: str = ""  # complete | timeout


@dataclass
class Hook:
    name: str
    group: str
    transition: str
    heartbeat_timeout: int
    default_result: str
    target_arn: str
    metadata: str


@dataclass
class LifecycleModel:
    account: str
    region: str
    clock: object = time.monotonic
    hooks: dict[tuple[str, str], Hook] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    replacing_groups: set[str] = field(default_factory=set)  # groups whose unhealthy instances are replaced
    health_replacements: set[str] = field(default_factory=set)  # instances terminating for their health

    # --- what Auto Scaling does -----------------------------------------------------------

    def put_hook(self, group: str, name: str, transition: str, timeout: int, default: str, target: str, metadata=""):
        self.hooks[(group, name)] = Hook(
            name, group, transition, timeout or 3600, default or "ABANDON", target, metadata
        )

    def hook_for(self, group: str, transition: str) -> Hook | None:
        return next((h for h in self.hooks.values() if h.group == group and h.transition == transition), None)

    def begin(self, group: str, instance_id: str, transition: str) -> Action | None:
        """An instance of `group` starts launching or terminating: held in the wait state by the
        group's hook for `transition` (if any), which notifies its target."""
        with self.lock:
            hook = self.hook_for(group, transition)
            if hook is None:
                self._finish_instance(group, instance_id, transition, "CONTINUE")
                return None
            now = self.clock()
            action = Action(
                token=str(uuid.uuid4()),
                group=group,
                hook=hook.name,
                instance_id=instance_id,
                transition=transition,
                deadline=now + hook.heartbeat_timeout,
                global_deadline=now + min(GLOBAL_TIMEOUT_SECONDS, 100 * hook.heartbeat_timeout),
            )
            self.actions.append(action)
            self._set_state(group, instance_id, WAIT_STATE[transition])
            self._notify(hook, action)
            self.events.append(("begin", action.token, instance_id, transition))
            return action

    def expire(self) -> None:
        """Apply the hook's default result to every action whose heartbeat timeout has passed."""
        with self.lock:
            now = self.clock()
            for action in self.waiting():
                if now >= min(action.deadline, action.global_deadline):
                    self._end(action, self.hooks[(action.group, action.hook)].default_result, "timeout")

    def replace_unhealthy_in(self, group: str) -> None:
        """From now on this group replaces its unhealthy instances, as Auto Scaling does."""
        self.replacing_groups.add(group)

    def replace_unhealthy(self) -> None:
        """Start terminating every in-service instance marked Unhealthy in the replacing groups."""
        with self.lock:
            backend = autoscaling_backends[self.account][self.region]
            for name in sorted(self.replacing_groups):
                group = backend.autoscaling_groups.get(name)
                for state in list(group.instance_states if group else []):
                    if state.instance.state != "running":  # the EC2 health check: unhealthy at once
                        state.health_status = "Unhealthy"
                    marked = state.health_status == "Unhealthy" and state.lifecycle_state == "InService"
                    if marked and state.instance.id not in self.health_replacements:
                        self.health_replacements.add(state.instance.id)
                        self.begin(name, state.instance.id, TERMINATING)

    def run_clock(self, stop: threading.Event, every: float = 0.5) -> threading.Thread:
        def tick():
            while not stop.wait(every):
                self.expire()
                self.replace_unhealthy()

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        return thread

    # --- the API the agents call -----------------------------------------------------------

    def complete(self, group: str, hook: str, result: str, token: str | None, instance_id: str | None) -> None:
        if result not in ("CONTINUE", "ABANDON"):
            raise ValidationError(f"Invalid LifecycleActionResult {result}; valid values are CONTINUE and ABANDON")
        with self.lock:
            self.expire()
            action = self._find(group, hook, token, instance_id)
            self._end(action, result, "complete")

    def heartbeat(self, group: str, hook: str, token: str | None, instance_id: str | None) -> None:
        with self.lock:
            self.expire()
            action = self._find(group, hook, token, instance_id)
            action.deadline = self.clock() + self.hooks[(group, hook)].heartbeat_timeout
            self.events.append(("heartbeat", action.token, action.instance_id))

    # --- what tests read ------------------------------------------------------------------

    def waiting(self) -> list[Action]:
        return [a for a in self.actions if a.result is None]

    def ended(self, instance_id: str) -> list[Action]:
        return [a for a in self.actions if a.instance_id == instance_id and a.result is not None]

    def heartbeats(self, instance_id: str) -> int:
        return sum(1 for e in self.events if e[0] == "heartbeat" and e[2] == instance_id)

    def state_of(self, instance_id: str) -> str | None:
        for group in autoscaling_backends[self.account][self.region].autoscaling_groups.values():
            for state in group.instance_states:
                if state.instance.id == instance_id:
                    return state.lifecycle_state
        return None

    # --- inside ---------------------------------------------------------------------------

    def _find(self, group: str, hook: str, token: str | None, instance_id: str | None) -> Action:
        for action in self.waiting():
            if (action.group, action.hook) != (group, hook):
                continue
            if (token and action.token == token) or (not token and instance_id and action.instance_id == instance_id):
                return action
        what = f"token {token}" if token else f"instance {instance_id}"
        raise ValidationError(f"No active Lifecycle Action found with {what}")

    def _end(self, action: Action, result: str, by: str) -> None:
        action.result, action.ended_by = result, by
        self.events.append((by, action.token, action.instance_id, result))
        self._finish_instance(action.group, action.instance_id, action.transition, result)

    def _finish_instance(self, group: str, instance_id: str, transition: str, result: str) -> None:
        if transition == LAUNCHING and result == "CONTINUE":
            self._set_state(group, instance_id, "InService")
            return
        # ABANDON after a launch, or any result after a termination hook: the instance terminates.
        backend = autoscaling_backends[self.account][self.region]
        owner = backend.autoscaling_groups.get(group)
        replaced = transition == TERMINATING and instance_id in self.health_replacements
        if owner is not None:
            owner.instance_states = [s for s in owner.instance_states if s.instance.id != instance_id]
            if not replaced:
                owner.desired_capacity = len(owner.instance_states)
        ec2_backends[self.account][self.region].terminate_instances([instance_id])
        if replaced and owner is not None:
            # Its replacement, through the launch hook (install() routes the group's own launches there).
            owner.replace_autoscaling_group_instances(1, owner.get_propagated_tags())
            self.events.append(("replaced", instance_id))

    def _set_state(self, group: str, instance_id: str, state: str) -> None:
        for instance in autoscaling_backends[self.account][self.region].autoscaling_groups[group].instance_states:
            if instance.instance.id == instance_id:
                instance.lifecycle_state = state

    def _notify(self, hook: Hook, action: Action) -> None:
        if not hook.target_arn:  # a hook without a notification target notifies nobody
            return
        queue_name = hook.target_arn.rpartition(":")[2]
        body = {
            "Origin": "AutoScalingGroup" if action.transition == TERMINATING else "EC2",
            "Destination": "EC2" if action.transition == TERMINATING else "AutoScalingGroup",
            "Service": "AWS Auto Scaling",
            "Time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "AccountId": self.account,
            "RequestId": str(uuid.uuid4()),
            "LifecycleActionToken": action.token,
            "AutoScalingGroupName": action.group,
            "LifecycleHookName": hook.name,
            "EC2InstanceId": action.instance_id,
            "LifecycleTransition": action.transition,
        }
        if hook.metadata:
            body["NotificationMetadata"] = hook.metadata
        sqs_backends[self.account][self.region].send_message(queue_name, json.dumps(body))


MODELS: dict[tuple[str, str], LifecycleModel] = {}


def model_for(account: str, region: str) -> LifecycleModel:
    return MODELS.setdefault((account, region), LifecycleModel(account, region))


def install() -> None:
    """Teach moto's Auto Scaling responses the lifecycle calls (idempotent)."""
    if getattr(AutoScalingResponse, "_restdemo_lifecycle", False):
        return
    original_put = AutoScalingResponse.put_lifecycle_hook

    def put_lifecycle_hook(self):
        answer = original_put(self)
        model_for(self.current_account, self.region).put_hook(
            self._get_param("AutoScalingGroupName"),
            self._get_param("LifecycleHookName"),
            self._get_param("LifecycleTransition"),
            self._get_int_param("HeartbeatTimeout"),
            self._get_param("DefaultResult"),
            self._get_param("NotificationTargetARN") or "",
            self._get_param("NotificationMetadata") or "",
        )
        return answer

    def complete_lifecycle_action(self):
        model_for(self.current_account, self.region).complete(
            self._get_param("AutoScalingGroupName"),
            self._get_param("LifecycleHookName"),
            self._get_param("LifecycleActionResult"),
            self._get_param("LifecycleActionToken"),
            self._get_param("InstanceId"),
        )
        return EmptyResult()

    def record_lifecycle_action_heartbeat(self):
        model_for(self.current_account, self.region).heartbeat(
            self._get_param("AutoScalingGroupName"),
            self._get_param("LifecycleHookName"),
            self._get_param("LifecycleActionToken"),
            self._get_param("InstanceId"),
        )
        return EmptyResult()

    original_replace = FakeAutoScalingGroup.replace_autoscaling_group_instances

    def replace_autoscaling_group_instances(group, count_needed, propagated_tags):
        before = {state.instance.id for state in group.instance_states}
        original_replace(group, count_needed, propagated_tags)
        model = model_for(group.account_id, group.region)
        if model.hook_for(group.name, LAUNCHING) is None:
            return  # moto put them InService, as AWS does without a launch hook
        for state in list(group.instance_states):
            if state.instance.id not in before:
                model.begin(group.name, state.instance.id, LAUNCHING)

    FakeAutoScalingGroup.replace_autoscaling_group_instances = replace_autoscaling_group_instances
    AutoScalingResponse.put_lifecycle_hook = put_lifecycle_hook
    AutoScalingResponse.complete_lifecycle_action = complete_lifecycle_action
    AutoScalingResponse.record_lifecycle_action_heartbeat = record_lifecycle_action_heartbeat
    AutoScalingResponse._restdemo_lifecycle = True
