"""What the agent does: become a member (every boot, retrying), then keep the node (and, on
managers, the swarm) healthy in `Agent.run()`. Decisions come from plan.py, Docker calls from
engine.py, AWS calls from aws.py; this module only sequences them."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from restdemo_agent.aws import (
    Lifecycle,
    LifecycleMessage,
    SwarmState,
    instance_capacities,
    leave_load_balancers,
    other_members_running,
    protect_from_scale_in,
    read_kept_value,
    registry_auth_header,
    running_instances,
    scale_in_protection,
    set_on_demand_base,
    spot_state,
    stack_instances,
)
from restdemo_agent.capacity import (
    batches,
    instance_of,
    last_replica_instances,
    protection_changes,
    reserved_percent,
)
from restdemo_agent.contract import (
    AGENT_HEARTBEAT,
    BOOTSTRAP_FAILURES,
    BOOTSTRAP_GAVE_UP,
    DISK_USED_PERCENT,
    MEMORY_USED_PERCENT,
    NODE_SETUP_FAILURES,
    ON_DEMAND_BASE_TAG,
    REPLACE_REQUEST,
    SERVICE_AT_MAX_REPLICAS,
    SERVICE_REPLICAS_MISSING,
    SETUP_FAILURES_REPORTED,
    SETUP_RUNS,
    SETUP_SUCCESSES,
    WORKER_METRICS_NAMESPACE,
    WORKERS_RESERVED_PERCENT,
    WORKERS_SPOT_FALLBACK,
    AgentEnvironment,
    group_name,
)
from restdemo_agent.engine import Engine
from restdemo_agent.identity import Identity, Metadata
from restdemo_agent.interruption import (
    INSTANCE_ACTION_PATH,
    REBALANCE_PATH,
    Notice,
    notice_from,
    to_delete,
    to_drain,
    to_record,
)
from restdemo_agent.labelling import NodeLabeller
from restdemo_agent.log import log
from restdemo_agent.metrics import (
    emf,
    leader_view,
    manager_view,
    memory_used_percent,
    metric_data,
    replicas_missing,
    setup_failures,
    used_percent,
)
from restdemo_agent.plan import (
    HANDLE_MINE,
    HANDLE_UNKNOWN,
    HANDLE_WORKER,
    ROLLED_BACK,
    Node,
    bootstrap_action,
    confirm_every,
    credentials_refresh_due,
    dead_nodes,
    drain_done,
    ecr_image,
    heartbeat_every,
    leaving_keeps_quorum,
    lifecycle_handler,
    may_claim,
    may_give_up_instance,
    primary_is_stale,
    rolled_back_services,
    should_take_over,
    worker_orphaned,
)
from restdemo_agent.scaling import (
    Sample,
    at_maximum,
    bounds_of,
    cpu_limit,
    load_percent,
    node_load,
    read_records,
    record_fields,
    replicas,
    scale_to,
    stale_records,
    updated_at,
)
from restdemo_agent.secrets import (
    UPDATING,
    KeptService,
    Rejected,
    backoff,
    differs,
    due_sources,
    kept_services,
    mounted_value,
    references,
    references_key,
    rejected_lately,
    split_source,
    stored_name,
    unused,
)
from restdemo_agent.spot_fallback import (
    RETRY_SPOT_SECONDS,
    current_base,
    last_spot_failure,
    on_fallback,
    program_base,
    wanted_base,
)
from restdemo_agent.volumes import VolumeDirectory, due_directories, volume_directories

ROUND_SECONDS = 5.0
ORPHANED_ROUNDS = 6
# A message being handled stays hidden from the other managers this much longer each round.
HIDE_SECONDS = 120
# How long a spot instance answers after its interruption notice (EC2 User Guide, "Spot Instance
# interruption notices"): a drain on a notice waits no longer than this.
SPOT_NOTICE_SECONDS = 120


def bootstrap(
    role: str,
    me: Identity,
    engine: Engine,
    state: SwarmState,
    *,
    stale_after: float = 300.0,
    managers_running: Callable[[], list[str]] = lambda: [],
) -> str:
    """One attempt to become a member (or form the swarm): idempotent, and safe when many nodes
    start at once. Raises when this attempt could not finish; the caller retries.
    `managers_running`: the other instances of this manager's group that run and are not leaving."""
    claimed = None
    if not engine.member() and role == "manager":
        primary = state.primary()
        answers = bool(primary) and engine.manager_answers(primary.get("address", ""))
        stale = primary_is_stale(primary, time.time(), stale_after)
        running = managers_running() if primary and stale and not answers else []
        if may_claim(primary, time.time(), stale_after, answers, running):
            # No record; or nobody confirmed it lately: its claimant crashed, or its swarm is gone.
            claimed = state.claim_primary(me.address, me.instance_id, time.time(), stale=primary)
            if primary:
                log("stale-primary", previous=primary.get("instance_id"), claimed=claimed)
        elif running:
            log("claim-refused", primary=primary.get("instance_id"), managers_running=running)
            raise RuntimeError(
                f"the recorded primary does not answer and managers {', '.join(running)} still run: waiting for "
                "their swarm to come back, or for `restdemo-agent recover` on one of them"
            )
    action = bootstrap_action(role, engine.member(), claimed)
    if action == "init":
        tokens = engine.init(me.address)
        state.store_tokens(tokens)
        state.mark_ready(me.address, me.instance_id, engine.node_id(), time.time(), me.instance_id)
    elif action == "join":
        primary, token = state.primary(), state.token(role)
        if not (primary and primary.get("status") == "ready" and token):
            raise RuntimeError("the swarm is not ready to be joined yet")
        engine.join(primary["address"], token, me.address)
    # Nothing here may need a leader: a member (`stay`) is done, even in a swarm that lost its quorum,
    # whose lone survivor must keep its raft log for `recover` (labels are the leader's, in heal()).
    log("bootstrap", result=action, role=role, node_id=engine.node_id(), instance_id=me.instance_id)
    return action


def bootstrap_until_member(
    role: str,
    me: Identity,
    engine: Engine,
    state: SwarmState,
    *,
    timeout: float,
    stale_after: float = 300.0,
    sleep: Callable[[float], None] = time.sleep,
    metrics: Callable[[dict[str, float]], None] = lambda values: None,
    managers_running: Callable[[], list[str]] = lambda: [],
) -> str | None:
    """Retry bootstrap on any error (AWS or Docker, at boot both may not answer yet) with backoff;
    None when `timeout` passed without success. Each failed attempt is counted through `metrics`."""
    deadline, delay = time.monotonic() + timeout, 1.0
    while True:
        try:
            return bootstrap(role, me, engine, state, stale_after=stale_after, managers_running=managers_running)
        except Exception as exc:  # every failure is retried; the last one is logged with the give-up
            log("bootstrap-retry", error=f"{type(exc).__name__}: {str(exc)[:300]}", delay=delay)
            metrics({BOOTSTRAP_FAILURES: 1})
            if time.monotonic() + delay > deadline:
                log("bootstrap-gave-up", seconds=timeout)
                return None
        sleep(delay)
        delay = min(delay * 2, 15.0)


def drain(
    engine: Engine,
    node_id: str,
    *,
    keep_alive: Callable[[], None],
    timeout: float,
    every: float,
    poll: float = 2.0,
) -> bool:
    """Drain a node and wait (bounded) until its tasks run elsewhere, calling `keep_alive` every
    `every` seconds (the lifecycle heartbeat); True when they do."""
    engine.update_node(node_id, Availability="drain")
    log("drain", node_id=node_id)
    started = time.monotonic()
    done = wait_holding(
        lambda: drain_done(engine.tasks_on(node_id), engine.running_elsewhere(node_id), engine.replicas()),
        keep_alive=keep_alive,
        timeout=timeout,
        every=every,
        poll=poll,
    )
    log("drained" if done else "drain-timeout", node_id=node_id, seconds=round(time.monotonic() - started, 1))
    return done


def wait_holding(condition, *, keep_alive, timeout: float, every: float, poll: float = 2.0) -> bool:
    """Wait until `condition()` (True) or `timeout` (False), calling `keep_alive` every `every` s."""
    started = last = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return True
        if time.monotonic() - last >= every:
            keep_alive()
            last = time.monotonic()
        time.sleep(poll)
    return False


@dataclass
class Agent:
    environment: AgentEnvironment
    me: Identity
    engine: Engine
    state: SwarmState
    lifecycle: Lifecycle
    ec2: object
    ecr: object
    refresh_every: float = 4 * 3600.0
    refreshed: dict[str, float] = field(default_factory=dict)  # service id -> when its credentials were sent
    refreshed_versions: dict[str, int] = field(default_factory=dict)  # service id -> its version after that
    published_tokens: dict[str, str] = field(default_factory=dict)
    confirmed_at: float = -1e18  # when the leader last confirmed the primary record
    leader_seen_at: float = -1e18  # when this manager last recorded that it saw a leader
    orphaned_rounds: int = 0  # consecutive rounds a worker saw no manager of the recorded swarm
    retiring: dict[str, list] = field(default_factory=dict)  # instance being drained -> its repeated notices
    retired: bool = False  # this manager left the swarm because its instance is terminating
    lock: threading.Lock = field(default_factory=threading.Lock)
    metrics_period: int = -1  # the last metrics period (time // period) the agent reported in
    leader_since: float | None = None  # monotonic time this manager was first seen leading
    # The leader's last reading of each service (its replicas short of desired), by service name.
    service_readings: dict[str, dict[str, float]] = field(default_factory=dict)
    rolled_back: dict[str, str] = field(default_factory=dict)  # services held as rolled back -> spec digest
    rolled_back_unsaved: bool = False  # the list changed and the state table has not taken it yet
    meminfo: str = "/proc/meminfo"  # the host's: a container without its own memory view sees the node's
    cloudwatch: object = None  # a worker's metrics go through it (PutMetricData)
    elbv2: object = None  # the leader takes a reclaimed worker out of the load balancer
    labeller: NodeLabeller | None = None  # made on first use, with the stack's groups
    # Each volume directory this leader made (when), or failed to (when), for due_directories; the work
    # runs beside the healing, which a hung file system must not hold.
    volumes_made: dict[VolumeDirectory, float] = field(default_factory=dict)
    volumes_failed: dict[VolumeDirectory, float] = field(default_factory=dict)
    volume_worker: threading.Thread | None = None
    no_helper_logged: bool = False  # said once that, without its image, this agent makes no directory
    # Secrets kept in AWS (restdemo_agent.secrets), served beside the healing too (an AWS call or a
    # rollout must not hold it): when each source was last read, the Docker secret holding its value.
    secretsmanager: object = None
    secrets_read_at: dict[str, float] = field(default_factory=dict)
    secrets_failed_at: dict[str, float] = field(default_factory=dict)  # its last read, when that failed
    secrets_stored: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Since when every service that mounts it names its current value (the alarm's age).
    secrets_delivered: dict[str, float] = field(default_factory=dict)
    # Service id -> its references before and after the agent's last update of them (as sets), and
    # the set swarm rolled back, not applied again until a value changes.
    secrets_applied: dict[str, tuple[tuple, tuple]] = field(default_factory=dict)
    secrets_rejected: dict[str, Rejected] = field(default_factory=dict)
    secrets_worker: threading.Thread | None = None
    secret_labels_refused: dict[str, str] = field(default_factory=dict)  # logged once each
    # Spot interruptions (restdemo_agent.interruption): a worker's metadata and STS (its aws:userid,
    # the key it records a notice under), and the notice it recorded; the leader's drains under way.
    metadata: Metadata | None = None
    sts: object = None
    user_id: str = ""
    notice_seen: Notice | None = None  # logged once
    notice_recorded: Notice | None = None
    noticed_drains: set[str] = field(default_factory=set)
    protected_at: float = -1e18  # when the leader last set the workers' scale-in protection
    workers_scale: bool = False  # the workers' group had its target-tracking policy, at that time
    # Replicas that follow the load (restdemo_agent.scaling): this node's last CPU samples of its tasks
    # and the period it recorded in; the leader's last look, and which scaling services are at their
    # maximum with the load asking for more (their alarm), by name.
    cpu_samples: dict[str, Sample] = field(default_factory=dict)
    load_period: int = -1
    scaled_at: float = -1e18
    held_at_maximum: dict[str, bool] = field(default_factory=dict)
    scaled_counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # service id -> (count set, version after)
    # The workers' group on-demand for want of spot (restdemo_agent.spot_fallback), at the leader's
    # last look (None: a group that runs no spot, or no look yet).
    spot_checked_at: float = -1e18
    spot_fallback: bool | None = None

    @property
    def role(self) -> str:
        return self.environment.role

    def run(self, *, rounds: int | None = None) -> None:
        """Bootstrap (retried), then one round every ROUND_SECONDS: lifecycle notices and healing on
        managers, re-joining on orphaned workers, pruning on a schedule."""
        if not self.join_or_give_up():
            return
        last_prune = time.monotonic()
        done = 0
        while rounds is None or done < rounds:
            try:
                if self.retired:
                    pass  # waiting to be terminated
                elif self.engine.is_manager():
                    self.drain_noticed_first()
                    self.note_leader_seen()
                    self.handle_lifecycle()
                    self.heal()
                elif not self.engine.member() or self.orphaned():
                    self.join_or_give_up()  # left a dead swarm (or was removed): join the live one
                if self.role == "worker" and not self.retired:
                    self.watch_interruption()
                every = self.environment.prune_interval_seconds
                if every and time.monotonic() - last_prune > every:
                    self.prune()
                    last_prune = time.monotonic()
            except Exception as exc:  # one bad round must not stop the agent; it is logged and retried
                log("error", message=str(exc)[:500], kind=type(exc).__name__)
            if not self.retired:
                self.record_load()  # on its own: a metadata read that fails must not hold it back
            try:
                self.report_metrics()
            except Exception as exc:  # a metric that cannot be read must not stop the healing
                log("metrics-error", message=str(exc)[:500], kind=type(exc).__name__)
            done += 1
            time.sleep(min(ROUND_SECONDS, self.environment.metrics_period_seconds))

    def join_or_give_up(self) -> bool:
        """Become a member; the leader then ends this instance's launch hook (a manager ends its own
        too: during an upgrade the leader may run an agent that does not). A node that cannot join
        has itself replaced (request_replacement); a manager also abandons its launch at once.
        Never a node whose engine holds swarm state, or does not say (plan.may_give_up_instance)."""
        env = self.environment
        result = bootstrap_until_member(
            self.role,
            self.me,
            self.engine,
            self.state,
            timeout=env.bootstrap_timeout_seconds,
            stale_after=env.primary_stale_seconds,
            metrics=self.write_metrics,
            managers_running=self.managers_running,
        )
        if result is None:
            local_state = self.engine.swarm_state_or_none()
            if not may_give_up_instance(local_state):
                # Its engine may hold swarm state (a manager's raft log): replacing the instance could
                # throw away the last copy. It stays; the engine watchdog handles a dead engine.
                reason = f"swarm state {local_state}" if local_state else "the engine does not answer"
                log("bootstrap-gave-up-kept", instance_id=self.me.instance_id, reason=reason)
                return True
            self.write_metrics({BOOTSTRAP_GAVE_UP: 1})  # first: it pages even if what follows fails
            if self.role == "manager":
                self.lifecycle.complete_launch(env.group_name, self.me.instance_id, "ABANDON")
            self.request_replacement(f"bootstrap gave up after {env.bootstrap_timeout_seconds} s")
            return False
        if self.role == "manager" and self.lifecycle.complete_launch(env.group_name, self.me.instance_id):
            log("launch-complete", instance_id=self.me.instance_id, group=env.group_name)
        return True

    def request_replacement(self, reason: str) -> None:
        """Ask the host to power the node off (cloud-init's restdemo-replace-me.path), so that its group
        replaces it: no AWS call, so no node holds a permission over others (SetInstanceHealth)."""
        (Path(self.environment.node_state_dir) / REPLACE_REQUEST).write_text(reason + "\n")
        log("replacement-requested", instance_id=self.me.instance_id, reason=reason)

    def managers_running(self) -> list[str]:
        group = self.environment.group_name
        return other_members_running(self.lifecycle.autoscaling, self.ec2, group, self.me.instance_id)

    def orphaned(self) -> bool:
        """A worker whose managers are gone while the record names a live swarm elsewhere (a
        one-manager stack whose manager was replaced) leaves, after ORPHANED_ROUNDS rounds in a row."""
        primary = self.state.primary()
        addresses = [m.get("Addr", "").rpartition(":")[0] for m in self.engine.remote_managers()]
        if worker_orphaned(addresses, primary, time.time(), self.environment.primary_stale_seconds):
            self.orphaned_rounds += 1
        else:
            self.orphaned_rounds = 0
        if self.orphaned_rounds < ORPHANED_ROUNDS:
            return False
        log("orphaned", primary=primary.get("address"), managers=addresses)
        self.engine.leave(force=True)
        self.orphaned_rounds = 0
        return True

    # --- termination --------------------------------------------------------------------

    def handle_lifecycle(self) -> None:
        """Terminating managers drain, demote and leave themselves; workers are drained by the
        leader; a notice for an instance that never joined is completed by the leader at once."""
        for message in self.lifecycle.receive(wait_seconds=1, hide_seconds=HIDE_SECONDS):
            target = message.body["EC2InstanceId"]
            if self.lifecycle.state(target) != "Terminating:Wait":
                # A repeated notice for an action that already ended (the instance is gone or in
                # service), or a forged one: nothing is held, nothing to do.
                log("lifecycle-stale-message", instance_id=target)
                self.lifecycle.done(message)
                continue
            nodes, me = self.known_nodes()
            handler = lifecycle_handler(target, nodes, me)
            if handler == HANDLE_UNKNOWN:
                self.finish(message, target, reason="never joined")
            elif handler in (HANDLE_MINE, HANDLE_WORKER):
                node = next(n for n in nodes if n.instance_id == target)
                self.retire_in_background(node.id, handler == HANDLE_MINE, message)
            else:
                self.lifecycle.leave_for_others(message)

    def retire_in_background(self, node_id: str, mine: bool, message: LifecycleMessage) -> None:
        """Each termination in its own thread: two drains at once must not wait for each other
        (the second one's hook would get no heartbeat meanwhile). A repeat of a notice being handled
        waits for that handling and is deleted with it."""
        target = message.body["EC2InstanceId"]
        with self.lock:
            if target in self.retiring:
                self.retiring[target].append(message)
                return
            self.retiring[target] = []

        def work():
            try:
                if self.lifecycle.state(target) == "Terminating:Wait":  # not ended while we looked
                    self.retire(node_id, mine, message)
                else:
                    log("lifecycle-stale-message", instance_id=target)
                    self.lifecycle.done(message)
            except Exception as exc:  # logged; the message shows again and is retried
                log("error", message=str(exc)[:500], kind=type(exc).__name__, instance_id=target)
            finally:
                with self.lock:
                    repeats = self.retiring.pop(target)
                for repeat in repeats:
                    log("lifecycle-stale-message", instance_id=target)
                    self.lifecycle.done(repeat)

        threading.Thread(target=work, name=f"retire-{target}", daemon=True).start()

    def retire(self, node_id: str, mine: bool, message: LifecycleMessage) -> None:
        """Drain the node, and for a manager wait (heartbeating, bounded by drainTimeout) until its
        leaving keeps the quorum, then demote it and leave. The action completes either way at the
        end of the bound: AWS terminates the instance when the hook times out anyway."""
        timeout = self.lifecycle.hook_timeout(message)
        started = time.monotonic()
        every = heartbeat_every(timeout)

        def keep_alive():
            self.lifecycle.heartbeat(message)
            self.lifecycle.hide(message, HIDE_SECONDS)

        left = timeout - every  # end one heartbeat interval before the hook would
        drain(self.engine, node_id, keep_alive=keep_alive, timeout=left, every=every)
        if mine:
            safe = wait_holding(
                lambda: leaving_keeps_quorum(self.engine.nodes(), node_id),
                keep_alive=keep_alive,
                timeout=max(0.0, left - (time.monotonic() - started)),
                every=every,
            )
            if not safe:
                log("demote-refused", node_id=node_id, reason="leaving would break the quorum")
                return  # the action is left to time out; the swarm keeps this manager as long as AWS does
            self.engine.update_node(node_id, Role="worker")
            wait_holding(lambda: not self.engine.is_manager(), keep_alive=keep_alive, timeout=120, every=every)
            log("demoted", node_id=node_id)
            self.engine.leave()
            self.retired = True  # this instance is going: it must not join again
            log("left", node_id=node_id)
        self.finish(message, message.body["EC2InstanceId"], reason="drained")

    def finish(self, message: LifecycleMessage, instance_id: str, reason: str) -> None:
        self.lifecycle.complete(message)
        self.lifecycle.done(message)
        log("lifecycle-complete", instance_id=instance_id, reason=reason)

    # --- spot interruptions --------------------------------------------------------------

    def watch_interruption(self) -> None:
        """A worker: its instance's interruption notice, recorded once for the leader to drain this node
        (a worker cannot drain itself); a rebalance recommendation, logged (interruption.to_record)."""
        if self.metadata is None:
            self.metadata = Metadata(self.environment.metadata_url)
        notice = notice_from(self.metadata.get(INSTANCE_ACTION_PATH), self.metadata.get(REBALANCE_PATH))
        if notice is None or notice == self.notice_seen:
            return
        if to_record(notice, self.notice_recorded):
            if not self.user_id:  # asked once: a role's id never changes
                self.user_id = self.sts.get_caller_identity()["UserId"]
            self.state.record_notice(self.user_id, notice.kind, notice.at, time.time())
            self.notice_recorded = notice
        self.notice_seen = notice
        log("interruption-noticed", instance_id=self.me.instance_id, kind=notice.kind, at=notice.at)

    def drain_noticed_first(self) -> None:
        """The leader, first in its round and on its own: an interrupted worker has two minutes, so no
        other step's failure (the lifecycle queue, AWS, the state table) may hold its drain back. The
        nodes as the swarm lists them: a worker a notice names is one the managers labelled before."""
        try:
            if self.engine.swarm_error():
                return
            nodes, my_id = self.engine.nodes(), self.engine.node_id()
            if not any(n.id == my_id and n.leader for n in nodes):
                return
        except Exception as exc:  # logged; the round goes on
            log("notices-error", message=str(exc)[:300], kind=type(exc).__name__)
            return
        self.drain_noticed(nodes)

    def drain_noticed(self, nodes: list[Node]) -> None:
        """The leader: drain each active worker a notice names, each in a thread of its own (the
        drain waits for its tasks to run elsewhere), and forget the notices done with."""
        try:
            notices = self.state.notices()
        except Exception as exc:  # logged; the healing's other steps go on
            log("notices-error", message=str(exc)[:300], kind=type(exc).__name__)
            return
        if not notices:
            return
        for key, node in to_drain(notices, nodes):
            with self.lock:  # a termination notice being handled drains it already (retire)
                retiring = node.instance_id in self.retiring
            if node.id in self.noticed_drains or retiring:
                continue
            self.noticed_drains.add(node.id)
            log("interruption-drain", node_id=node.id, instance_id=node.instance_id, kind=notices[key]["kind"])

            def work(node_id: str = node.id, instance_id: str = node.instance_id):
                # Beside the drain, not before it: a slow or throttled AWS call must not eat the two minutes.
                threading.Thread(
                    target=self.leave_load_balancers, args=(instance_id,), name=f"leave-{node_id}", daemon=True
                ).start()
                try:
                    drain(self.engine, node_id, keep_alive=lambda: None, timeout=SPOT_NOTICE_SECONDS, every=60)
                except Exception as exc:  # logged; the notice stays and is drained again next round
                    log("error", message=str(exc)[:500], kind=type(exc).__name__, node_id=node_id)
                finally:
                    self.noticed_drains.discard(node_id)

            threading.Thread(target=work, name=f"notice-{node.id}", daemon=True).start()
        for key in to_delete(notices, nodes, time.time()):
            try:
                self.state.forget(key)
            except Exception as exc:  # forgotten on a later round
                log("notices-error", message=str(exc)[:300], kind=type(exc).__name__)

    def leave_load_balancers(self, instance_id: str) -> None:
        """A reclaimed worker out of the workers' target groups first: the load balancer sends it no new
        request, so none is lost when EC2 takes it. Logged when it fails; the drain goes on."""
        group = group_name(self.environment.stack, "worker")
        try:
            left = leave_load_balancers(self.lifecycle.autoscaling, self.elbv2, group, instance_id)
            log("left-load-balancers", instance_id=instance_id, target_groups=len(left))
        except Exception as exc:
            log("error", message=str(exc)[:300], kind=type(exc).__name__, instance_id=instance_id)

    def protect_last_replicas(self) -> None:
        """Once a metrics period: with a scaling workers' group, the workers running a service's last
        replica protected from scale-in, and no other; without, none (scaling turned off lifts what it
        left, or the group would keep instances the count no longer wants: restdemo_agent.capacity).
        Whether the group scales is the group's own word (it has the program's `reserved-share`
        policy), read each time: turning scaling on or off rolls no manager, and no two agents
        disagree on it."""
        env = self.environment
        if time.monotonic() - self.protected_at < env.metrics_period_seconds:
            return
        self.protected_at = time.monotonic()
        group = group_name(env.stack, "worker")
        try:
            self.workers_scale, protected, in_service = scale_in_protection(self.lifecycle.autoscaling, group)
            wanted = (
                last_replica_instances(self.engine.node_descriptions(), self.engine.tasks())
                if self.workers_scale
                else set()
            )
        except Exception as exc:  # logged; the next period tries again, the healing goes on
            log("scale-in-protection-error", message=str(exc)[:300], kind=type(exc).__name__)
            return
        protect, unprotect = protection_changes(protected, in_service, wanted)
        for instances, value in ((protect, True), (unprotect, False)):
            for batch in batches(instances):
                try:  # each call alone: one refused does not hold the others
                    protect_from_scale_in(self.lifecycle.autoscaling, group, batch, value)
                    log("scale-in-protection", protected=value, instances=batch)
                except Exception as exc:
                    log("scale-in-protection-error", message=str(exc)[:300], kind=type(exc).__name__)

    def fall_back_from_spot(self) -> None:
        """Once a metrics period, the leader: the workers' group short of spot launches the missing
        workers on-demand, and the program's base is back an hour after (restdemo_agent.spot_fallback).
        Logged each change. A failure to set the base reports the group on fallback all the same
        (the alarm must not stay quiet while the group is short)."""
        if time.monotonic() - self.spot_checked_at < self.environment.metrics_period_seconds:
            return
        self.spot_checked_at = time.monotonic()
        now = time.time()
        try:
            group, activities, spot = spot_state(
                self.lifecycle.autoscaling,
                self.ec2,
                group_name(self.environment.stack, "worker"),
                now - RETRY_SPOT_SECONDS,
            )
        except Exception as exc:  # logged; the next period looks again, the healing goes on
            log("spot-fallback-error", message=str(exc)[:300], kind=type(exc).__name__)
            return
        if program_base(group) is None:
            if "MixedInstancesPolicy" in group:
                log("spot-fallback-no-tag", tag=ON_DEMAND_BASE_TAG)
            self.spot_fallback = None
            return
        base = wanted_base(group, activities, spot, now)
        if base is not None:
            try:
                set_on_demand_base(self.lifecycle.autoscaling, group, base)
                failed = last_spot_failure(activities)
                log("spot-fallback", on_demand_base=base, was=current_base(group), last_failure=failed)
            except Exception as exc:
                log("spot-fallback-error", message=str(exc)[:300], kind=type(exc).__name__)
                self.spot_fallback = base > (program_base(group) or 0)
                return
        self.spot_fallback = on_fallback(group, base)

    # --- replicas that follow the load -----------------------------------------------------

    def record_load(self) -> None:
        """Once a metrics period, every node: its tasks' CPU since its last sample, by service, for the
        leader (restdemo_agent.scaling); nothing when no task ran both times. Never raises."""
        period = int(time.time() // self.environment.metrics_period_seconds)
        if period == self.load_period:
            return
        self.load_period = period
        try:
            samples = self.engine.task_cpu()
            load = node_load(self.cpu_samples, samples)
            self.cpu_samples = samples
            if not load:
                return
            if not self.user_id:  # asked once: a role's id never changes
                self.user_id = self.sts.get_caller_identity()["UserId"]
            self.state.record_load(self.user_id, record_fields(load), time.time())
        except Exception as exc:  # logged; the next period samples again
            log("load-error", message=str(exc)[:300], kind=type(exc).__name__)

    def scale_replicas(self) -> None:
        """Once a metrics period, the leader: each service with bounds at the count its load asks for
        (restdemo_agent.scaling.scale_to), each on its own; the nodes' old or malformed records deleted
        first. Never raises: a record is a node's word, and no record may stop the healing."""
        period = self.environment.metrics_period_seconds
        if time.monotonic() - self.scaled_at < period:
            return
        self.scaled_at = time.monotonic()
        try:
            everything = self.engine.services()
            services = [s for s in everything if bounds_of(s["Spec"].get("Labels"))]
            records = self.state.loads()
            instances = {n["ID"]: instance_of(n) for n in self.engine.node_descriptions()}
            tasks = self.engine.tasks() if services else []
            if any((s.get("UpdateStatus") or {}).get("State") in ROLLED_BACK for s in services):
                # Noted before a scale clears UpdateStatus (the spec's digest leaves the count out).
                self.rolled_back_services(everything)
        except Exception as exc:  # logged; the next period looks again
            log("scaling-error", message=str(exc)[:300], kind=type(exc).__name__)
            self.held_at_maximum = {}  # no reading: no line, rather than the last one again
            return
        now = time.time()
        for key in stale_records(records, now, period):
            try:
                self.state.forget(key)
            except Exception as exc:  # forgotten on a later period
                log("scaling-error", message=str(exc)[:300], kind=type(exc).__name__)
        loads = read_records(records, now, period)
        running: dict[str, dict[str, int]] = {}  # service id -> instance -> its tasks running there
        for task in tasks:
            instance = instances.get(task.get("NodeID") or "")
            if instance and (task.get("Status") or {}).get("State") == "running":
                on = running.setdefault(task["ServiceID"], {})
                on[instance] = on.get(instance, 0) + 1
        held = {}
        for service in services:
            try:
                held[service["Spec"]["Name"]] = self._scale(service, loads, running.get(service["ID"], {}), now)
            except Exception as exc:  # refused (an `up` changed it meanwhile): the next period decides again
                log("scaling-error", service=service["Spec"]["Name"], message=str(exc)[:300], kind=type(exc).__name__)
        self.held_at_maximum = held
        self.scaled_counts = {k: v for k, v in self.scaled_counts.items() if k in {s["ID"] for s in services}}

    def _scale(self, service: dict, loads: dict, running: dict[str, int], now: float) -> bool:
        """One service's decision and change; whether it is held at its maximum."""
        period = self.environment.metrics_period_seconds
        sid, version = service["ID"], (service.get("Version") or {}).get("Index")
        load = load_percent(sid, cpu_limit(service), loads, running, updated_at(service), period)
        # The count this agent set, when someone else's update came after it (an `up` sends the count
        # its refresh read, perhaps before this agent's last change).
        mine = self.scaled_counts.get(sid)
        restore = mine[0] if mine and mine[1] != version else None
        count = scale_to(service, load, now, restore)
        if count is None or count == replicas(service):
            if restore is not None and (service.get("UpdateStatus") or {}).get("State") not in UPDATING:
                del self.scaled_counts[sid]  # someone else's count stands (no lower than this agent's)
            return bool(at_maximum(service, load))
        self.engine.scale(service, count)
        after = self.engine.service_version(sid)
        self.scaled_counts[sid] = (count, after)
        if self.refreshed_versions.get(sid) == version:  # the agent's own update: no deploy's login to replace
            self.refreshed_versions[sid] = after
        log(
            "replicas-scaled",
            service=service["Spec"]["Name"],
            replicas=count,
            was=replicas(service),
            cpu_percent=load,
            restored=restore is not None and count == restore,
        )
        return False  # at another count now: the next period reads it

    # --- healing ------------------------------------------------------------------------

    def heal(self) -> None:
        """On managers: dead nodes; on the leader: new nodes' identities, the primary record (confirmed
        every round), join tokens, registry credentials."""
        if not self.engine.is_manager() or self.engine.swarm_error():
            return
        nodes, me = self.known_nodes()
        every = confirm_every(self.environment.primary_stale_seconds)
        down = [n.instance_id for n in nodes if n.state == "down" and n.instance_id]
        for node in dead_nodes(nodes, running_instances(self.ec2, down)):
            if node.role == "manager":
                self.engine.demote_and_remove(node)
            else:
                self.engine.remove_node(node.id)
            log("removed-dead-node", node_id=node.id, instance_id=node.instance_id)
        if me.leader and time.monotonic() - self.confirmed_at > every:
            self.confirm_primary(nodes, me)
            self.confirmed_at = time.monotonic()
        if me.leader:
            # First, and in a thread of its own: no other step's failure holds a rotation back.
            self.serve_kept_secrets()
            self.protect_last_replicas()
            self.fall_back_from_spot()
            self.scale_replicas()
            self.complete_launches(nodes)
            self.publish_tokens()
            self.refresh_registry_credentials()
            self.make_volume_directories()

    def known_nodes(self) -> tuple[list[Node], Node]:
        """The swarm's nodes as this manager knows them, and its own: new nodes identified first, so
        that a termination notice for a node that joined a moment ago is not taken for one that never
        joined; and its own instance (from IMDS) on its own node, labelled or not yet, so that a notice
        for it is its own to handle."""
        my_id = self.engine.node_id()
        if self.labeller is None:
            groups = {role: group_name(self.environment.stack, role) for role in ("manager", "worker")}
            self.labeller = NodeLabeller(
                self.engine, lambda: stack_instances(self.lifecycle.autoscaling, self.ec2, groups)
            )
        # Every manager, not only the leader: during an upgrade the leader may run an older agent.
        nodes = self.labeller.run(self.engine.nodes())
        nodes = [replace(n, instance_id=n.instance_id or self.me.instance_id) if n.id == my_id else n for n in nodes]
        return nodes, next(n for n in nodes if n.id == my_id)

    def note_leader_seen(self) -> None:
        """First in a manager's round, on its own: `recover` compares these records, and a manager
        that stopped writing them (a lifecycle call or a healing step failing every round) would look
        like one that saw no leader lately. Only when the swarm answers with a leader."""
        if time.monotonic() - self.leader_seen_at <= confirm_every(self.environment.primary_stale_seconds):
            return
        try:
            if self.engine.swarm_error() or self.engine.leader() is None:
                return
            self.state.note_leader_seen(self.engine.node_id(), self.me.instance_id, time.time())
            self.leader_seen_at = time.monotonic()
        except Exception as exc:  # logged; the round goes on, healing needs no record
            log("leader-seen-error", message=str(exc)[:300], kind=type(exc).__name__)

    def complete_launches(self, nodes) -> None:
        """The leader vouches for new members: a ready node whose instance a launch hook holds is let
        into service (an instance refresh moves on only then). Workers hold no lifecycle permission."""
        ready = [n.instance_id for n in nodes if n.state == "ready" and n.instance_id]
        for instance_id, group in self.lifecycle.waiting_launches(ready).items():
            if self.lifecycle.complete_launch(group, instance_id):
                log("launch-complete", instance_id=instance_id, group=group)

    def confirm_primary(self, nodes, me) -> None:
        """Keep the record pointing at a live manager, and fresh, so nodes booting later find one."""
        primary = self.state.primary()
        if primary is None or should_take_over(primary, nodes, me) or primary.get("node_id") == me.id:
            previous = primary.get("instance_id") if primary else None
            if self.state.mark_ready(self.me.address, self.me.instance_id, me.id, time.time(), previous):
                if primary and primary.get("node_id") != me.id:
                    log("primary-taken-over", node_id=me.id, previous=primary.get("node_id"))
        elif primary.get("node_id") != me.id:
            # The recorded primary is a live manager: confirm the record on its behalf.
            self.state.mark_ready(
                primary["address"], primary["instance_id"], primary["node_id"], time.time(), primary["instance_id"]
            )

    def make_volume_directories(self) -> None:
        """Each directory the services' volumes need, made in the background (one pass at a time).
        Until it exists the tasks that mount it fail to start and swarm retries them."""
        if self.volume_worker and self.volume_worker.is_alive():
            return
        wanted = volume_directories(self.engine.services(), self.environment.volume_bind_root)
        if wanted and not self.environment.image:
            if not self.no_helper_logged:
                log("volume-directory-failed", directory="", message="RESTDEMO_AGENT_IMAGE is unset: no directory made")
                self.no_helper_logged = True
            return
        # Only what is still wanted is remembered: an owner changed back is set again.
        self.volumes_made = {d: t for d, t in self.volumes_made.items() if d in wanted}
        self.volumes_failed = {d: t for d, t in self.volumes_failed.items() if d in wanted}
        due = due_directories(wanted, self.volumes_made, self.volumes_failed, time.monotonic())
        if due:
            self.volume_worker = threading.Thread(target=self._make_volume_directories, args=(due,), daemon=True)
            self.volume_worker.start()

    def _make_volume_directories(self, due: list[VolumeDirectory]) -> None:
        try:
            self.engine.remove_helpers()  # what a killed agent left
        except Exception as exc:
            log("volume-directory-failed", directory="", message=f"leftover helpers: {str(exc)[:200]}")
        for directory in due:
            owner = f"{directory.uid}:{directory.gid}"
            try:
                self.engine.make_directory(
                    self.environment.image, dict(directory.parent_options), directory.name, directory.uid, directory.gid
                )
            except Exception as exc:  # the file system not reachable, a file in the directory's place
                self.volumes_failed[directory] = time.monotonic()
                # The engine's own words (an APIError's explanation), not the request's URL before them.
                reason = getattr(exc, "explanation", None) or str(exc)
                log("volume-directory-failed", directory=directory.name, owner=owner, message=str(reason)[:300])
                continue
            self.volumes_failed.pop(directory, None)
            if directory not in self.volumes_made:
                log("volume-directory", directory=directory.name, owner=owner)
            self.volumes_made[directory] = time.monotonic()

    def serve_kept_secrets(self) -> None:
        """The secrets kept in AWS: each value read when due, stored, rolled out to the services that
        mount it; the agent's Docker secrets no service uses removed. One pass at a time, in the background."""
        if self.secrets_worker and self.secrets_worker.is_alive():
            return
        self.secrets_worker = threading.Thread(target=self._serve_kept_secrets, daemon=True)
        self.secrets_worker.start()

    def _serve_kept_secrets(self) -> None:
        try:
            self._kept_secrets_pass()
        except Exception as exc:  # the engine not answering: logged, the next round tries again
            log("secrets-error", message=str(getattr(exc, "explanation", None) or exc)[:300], kind=type(exc).__name__)

    def _kept_secrets_pass(self) -> None:
        now = time.monotonic()
        kept, refused = kept_services(self.engine.services())
        for service, why in refused.items():
            if self.secret_labels_refused.get(service) != why:
                log("secret-label-refused", service=service, message=why)
        self.secret_labels_refused = refused
        raw: dict[str, str | bytes] = {}  # each ARN read once a pass: a database's files agree
        for value_key, mount in due_sources(kept, self.secrets_read_at, self.secrets_failed_at, now).items():
            self.secrets_read_at[value_key] = now
            arn = split_source(mount.source)[0]
            try:
                if arn not in raw:
                    raw[arn] = read_kept_value(self.secretsmanager, self.state.ssm, arn)
                value = mounted_value(raw[arn], mount)
                physical = stored_name(mount.name, value)
                if self.secrets_stored.get(value_key, ("", ""))[1] != physical:
                    stored = self.engine.store_secret(physical, value, mount.source)
                    self.secrets_stored[value_key] = (stored, physical)
                self.secrets_failed_at.pop(value_key, None)
            except Exception as exc:  # denied, deleted, not JSON: the services keep the value they have
                self.secrets_failed_at[value_key] = now
                reason = getattr(exc, "explanation", None) or str(exc)
                log("secret-read-failed", source=value_key, message=str(reason)[:300], kind=type(exc).__name__)
        # Only what is still mounted is remembered: a value mounted again is read at once.
        mounted = {mount.value_key for service in kept for mount in service.mounts}
        for memory in (self.secrets_read_at, self.secrets_failed_at, self.secrets_stored, self.secrets_delivered):
            for value_key in set(memory) - mounted:
                del memory[value_key]
        # The services as they are now, each with its label as it is now (an `up` may have changed it).
        services = self.engine.services()
        now_kept = {service.id: service for service in kept_services(services)[0]}
        named: dict[str, set[str]] = {}  # service id -> the secret names its spec refers to after this pass
        for found in services:
            service = now_kept.get(found["ID"])
            if service is None:
                continue
            current = found["Spec"]["TaskTemplate"]["ContainerSpec"].get("Secrets")
            named[service.id] = {reference.get("SecretName") for reference in current or []}
            self._note_rejected(service, current)
            wanted = references(service, self.secrets_stored, current)
            state = (found.get("UpdateStatus") or {}).get("State")
            if wanted is None or state in UPDATING or not differs(current, wanted):
                continue
            if rejected_lately(self.secrets_rejected.get(service.id), references_key(wanted), now):
                continue  # swarm rolled exactly this back: a new value, or the backoff's end
            try:
                self.engine.set_secret_references(found, wanted)
            except Exception as exc:  # a secret gone under a stale cache: read and store again next pass
                reason = getattr(exc, "explanation", None) or str(exc)
                log("secret-rollout-failed", service=service.name, message=str(reason)[:300], kind=type(exc).__name__)
                for mount in service.mounts:
                    self.secrets_stored.pop(mount.value_key, None)
                    self.secrets_read_at.pop(mount.value_key, None)
                continue
            self.secrets_applied[service.id] = (references_key(current), references_key(wanted))
            named[service.id] = {reference["SecretName"] for reference in wanted}
            log("secrets-rolled-out", service=service.name, secrets=[m.name for m in service.mounts])
        self.secrets_applied = {k: v for k, v in self.secrets_applied.items() if k in now_kept}
        self.secrets_rejected = {k: v for k, v in self.secrets_rejected.items() if k in now_kept}
        # A value is delivered once its last read succeeded and every service that mounts it names
        # the value read.
        for value_key, (_, physical) in self.secrets_stored.items():
            mounting = [s.id for s in now_kept.values() if any(m.value_key == value_key for m in s.mounts)]
            if value_key in self.secrets_failed_at:
                continue
            if all(physical in named.get(service_id, set()) for service_id in mounting):
                self.secrets_delivered[value_key] = now
        keep = {secret_id for secret_id, _ in self.secrets_stored.values()}
        for secret_id in unused(self.engine.stored_secrets(), self.engine.services(), keep):
            if self.engine.remove_secret(secret_id):
                log("secret-removed", secret_id=secret_id)

    def _note_rejected(self, service: KeptService, current: list[dict] | None) -> None:
        """Swarm rolled the agent's last update of the service back (its references are again what they
        were before it): that set is not applied again until a value changes (a rollout that fails
        again, or a task killed on purpose, would roll the service back and forth every round)."""
        applied = self.secrets_applied.get(service.id)
        if applied is None or references_key(current) == applied[1]:
            return
        if references_key(current) == applied[0]:
            before = self.secrets_rejected.get(service.id)
            times = before.times + 1 if before and before.references == applied[1] else 1
            self.secrets_rejected[service.id] = Rejected(applied[1], time.monotonic(), times)
            log(
                "secrets-rolled-back",
                service=service.name,
                secrets=[m.name for m in service.mounts],
                retry_after=backoff(times),
            )
        del self.secrets_applied[service.id]

    def publish_tokens(self) -> None:
        """Keep SSM's join tokens the swarm's own, so `docker swarm join-token --rotate` takes effect."""
        tokens = self.engine.join_tokens()
        if tokens == self.published_tokens:
            return
        # Once per start, all of them: a token written under another key (before the stack had its
        # own) is re-encrypted under the stack's key even though its value did not change.
        first = not self.published_tokens
        stale = {role: token for role, token in tokens.items() if first or self.state.token(role) != token}
        if stale:
            self.state.store_tokens(stale)
            log("join-tokens-published", roles=sorted(stale))
        self.published_tokens = tokens

    def refresh_registry_credentials(self) -> None:
        """Hand swarm fresh ECR credentials (the managers' own, pull-only) for services pulling from it,
        without restarting tasks and never during a rollout; soon after a deploy too, whose login (a
        pull-only role's, an hour's) they replace (plan.credentials_refresh_due)."""
        now = time.monotonic()
        registry = self.environment.registry
        services = self.engine.services()
        due = [
            s
            for s in services
            if credentials_refresh_due(
                s, registry, now, self.refreshed.get(s["ID"]), self.refresh_every, self.refreshed_versions.get(s["ID"])
            )
        ]
        if not due:
            return
        if any((s.get("UpdateStatus") or {}).get("State") in ROLLED_BACK for s in due):
            # A rollback just ended (swarm's update, so due): note it first, the refresh clears UpdateStatus.
            self.rolled_back_services(services)
        header = registry_auth_header(self.ecr, registry)
        for service in due:
            self.engine.send_registry_auth(service, header)
            self.refreshed[service["ID"]] = now
            # Its version after this update: a later one is someone else's (a deploy's own login).
            self.refreshed_versions[service["ID"]] = self.engine.service_version(service["ID"])
            log("registry-credentials-refreshed", service=service["Spec"]["Name"])

    def prune(self) -> None:
        log("pruned", **self.engine.prune())

    # --- metrics -------------------------------------------------------------------------

    def write_metrics(self, values: dict[str, float]) -> None:
        """A manager: one log line that CloudWatch Logs turns into these metrics (EMF, metrics.py) in
        the swarm's log group. A worker: the line without EMF (its group extracts none) and the
        metrics sent with PutMetricData, in the workers' namespace (the only one its role may write).
        The instance and role ride along as plain fields, to find a node's lines. Never raises."""
        instance = {"instance_id": self.me.instance_id} if self.me else {}
        now = time.time()
        if self.role == "manager":
            log("metrics", **instance, role=self.role, **emf(self.environment.stack, values, now))
            # The leader's: each service's own line, under its name too (its replicas-below-desired alarm).
            for service, readings in self.service_readings.items():
                log("service-metrics", **instance, **emf(self.environment.stack, readings, now, service))
            return
        log("metrics", **instance, role=self.role, **{name: float(value) for name, value in values.items()})
        try:
            self.cloudwatch.put_metric_data(
                Namespace=WORKER_METRICS_NAMESPACE, MetricData=metric_data(self.environment.stack, values, now)
            )
        except Exception as exc:  # CloudWatch not answering: never stops a bootstrap or a give-up
            log("metrics-error", reading="write", message=str(exc)[:300], kind=type(exc).__name__)

    def report_metrics(self) -> None:
        """Once a metrics period: every node's heartbeat, disk and memory; a manager's view of the
        leader; the leader's view of the nodes, the replicas, their updates and the credentials.
        Each reading on its own: one that fails is left out of the line, never the heartbeat."""
        period = int(time.time() // self.environment.metrics_period_seconds)
        if period == self.metrics_period:
            return
        values: dict[str, float] = {AGENT_HEARTBEAT: 1}
        for reading in (self.node_readings, self.swarm_readings, self.setup_readings):
            try:
                values |= reading()
            except Exception as exc:  # logged; the rest of the line still goes out
                log("metrics-error", reading=reading.__name__, message=str(exc)[:300], kind=type(exc).__name__)
        self.write_metrics(values)  # a failed write is logged; the next period tries again
        self.metrics_period = period

    def node_readings(self) -> dict[str, float]:
        disk = shutil.disk_usage(self.environment.docker_root)
        with open(self.meminfo) as meminfo:
            memory = memory_used_percent(meminfo.read())
        return {DISK_USED_PERCENT: used_percent(disk.total, disk.free), MEMORY_USED_PERCENT: memory}

    def swarm_readings(self) -> dict[str, float]:
        self.service_readings = {}  # the leader's alone, and this period's: a failed reading leaves none
        if not self.engine.is_manager() or self.retired:
            return {}
        try:
            nodes = None if self.engine.swarm_error() else self.engine.nodes()
        except Exception:  # "The swarm does not have a leader": a manager that cannot list sees none
            nodes = None
        values = manager_view(nodes)
        me = next((n for n in nodes or [] if n.id == self.engine.node_id()), None)
        if me is None or not me.leader:
            self.leader_since = None
            return values
        now = time.monotonic()
        services = self.engine.services()
        self.leader_since = self.leader_since or now
        rolled_back = self.rolled_back_services(services)
        # The services that pull from the stack's registry now; one never refreshed by this leader
        # counts from when it became leader, so a leader whose refreshes all fail still ages.
        pulling = [
            s["ID"]
            for s in services
            if ecr_image(s["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"], self.environment.registry)
        ]
        self.refreshed = {sid: at for sid, at in self.refreshed.items() if sid in pulling}
        ages = [now - self.refreshed.get(sid, self.leader_since) for sid in pulling]
        # Each secret kept in AWS the services mount, since its value last reached them all (or this
        # leader's start).
        kept, _ = kept_services(services)
        mounted = {mount.value_key for service in kept for mount in service.mounts}
        kept_ages = [now - self.secrets_delivered.get(value_key, self.leader_since) for value_key in mounted]
        running = self.engine.running()
        self.service_readings = {
            name: {SERVICE_REPLICAS_MISSING: missing} for name, missing in replicas_missing(services, running).items()
        }
        for name, held in self.held_at_maximum.items():
            if name in self.service_readings:
                self.service_readings[name][SERVICE_AT_MAX_REPLICAS] = 1 if held else 0
        # The volumes' directories this leader failed to make at its last try, once it has tried any.
        tried = self.volumes_made.keys() | self.volumes_failed.keys()
        failing = len(self.volumes_failed) if tried else None
        view = leader_view(
            nodes, services, running, ages, rolled_back=rolled_back, kept_ages=kept_ages, volumes_failing=failing
        )
        if self.spot_fallback is not None:  # as the group said at the leader's last look (fall_back_from_spot)
            view[WORKERS_SPOT_FALLBACK] = 1 if self.spot_fallback else 0
        if self.workers_scale:  # as the group said at the leader's last look (protect_last_replicas)
            try:  # on its own: the rest of the leader's view is reported whatever this reading does
                view[WORKERS_RESERVED_PERCENT] = self.workers_reserved_percent()
            except Exception as exc:
                log("metrics-error", message=str(exc)[:300], kind=type(exc).__name__, metric=WORKERS_RESERVED_PERCENT)
        return values | view

    def workers_reserved_percent(self) -> float:
        """The workers' reserved share, each worker no bigger than its instance type (EC2 says, not
        the node: restdemo_agent.capacity)."""
        described = self.engine.node_descriptions()
        workers = [instance_of(n) for n in described if n["Spec"]["Role"] == "worker" and instance_of(n)]
        actual = instance_capacities(self.ec2, workers)
        return reserved_percent(described, self.engine.tasks(), actual)

    def rolled_back_services(self, services: list[dict]) -> dict[str, str]:
        """The services held as rolled back (plan.rolled_back_services), from the list the leaders keep
        in the state table, read each period (leadership may have moved and back since). The table
        failing loses nothing: the list in memory is used, and stored until a write succeeds."""
        if not self.rolled_back_unsaved:
            try:
                self.rolled_back = self.state.rolled_back()
            except Exception as exc:
                log("rolled-back-error", step="read", message=str(exc)[:300], kind=type(exc).__name__)
        rolled_back = rolled_back_services(services, self.rolled_back)
        if rolled_back != self.rolled_back:
            log("rolled-back-services", services=sorted(rolled_back))
            for service in services:
                if service["ID"] in rolled_back and service["ID"] not in self.rolled_back:
                    # Why, while swarm still says: the next credential refresh clears UpdateStatus.
                    status = service.get("UpdateStatus") or {}
                    log("service-rolled-back", service=service["Spec"]["Name"], reason=status.get("Message", ""))
        if rolled_back != self.rolled_back or self.rolled_back_unsaved:
            self.rolled_back = rolled_back
            try:
                self.state.store_rolled_back(rolled_back)
                self.rolled_back_unsaved = False
            except Exception as exc:
                self.rolled_back_unsaved = True
                log("rolled-back-error", step="store", message=str(exc)[:300], kind=type(exc).__name__)
        return rolled_back

    def setup_readings(self) -> dict[str, float]:
        failed = self.failed_setups()
        return {NODE_SETUP_FAILURES: failed} if failed else {}

    def failed_setups(self) -> int:
        """The node setups that failed since the last report (none where the setup keeps no count)."""
        directory = Path(self.environment.node_state_dir)

        def count(name: str) -> int:
            try:
                return int((directory / name).read_text().strip() or 0)
            except (OSError, ValueError):
                return 0

        new = setup_failures(count(SETUP_RUNS), count(SETUP_SUCCESSES), count(SETUP_FAILURES_REPORTED))
        if new:
            (directory / SETUP_FAILURES_REPORTED).write_text(str(count(SETUP_FAILURES_REPORTED) + new))
        return new
