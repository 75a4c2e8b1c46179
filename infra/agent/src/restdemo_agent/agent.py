"""What the agent does: bootstrap once per boot, then keep the node (and, on managers, the swarm) healthy."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from docker.errors import APIError

from restdemo_agent.aws import Lifecycle, LifecycleMessage, SwarmState, registry_auth_header, running_instances
from restdemo_agent.engine import Engine
from restdemo_agent.identity import Identity
from restdemo_agent.log import log
from restdemo_agent.plan import bootstrap_action, dead_nodes, drain_done, ecr_image, should_take_over


def bootstrap(
    role: str,
    me: Identity,
    engine: Engine,
    state: SwarmState,
    *,
    timeout: float = 600,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Join the swarm (or form it): idempotent, and safe when many nodes start at once."""
    claimed = None
    if not engine.member() and role == "manager":
        claimed = state.claim_primary(me.address, me.instance_id)
    action = bootstrap_action(role, engine.member(), claimed)
    if action == "init":
        tokens = engine.init(me.address)
        state.store_tokens(tokens)
        state.mark_ready(me.address, me.instance_id, engine.node_id())
    elif action == "join":
        join(role, me, engine, state, timeout=timeout, sleep=sleep)
    if role == "manager":
        engine.copy_engine_labels()
    log("bootstrap", result=action, role=role, node_id=engine.node_id(), instance_id=me.instance_id)
    return action


def join(role: str, me: Identity, engine: Engine, state: SwarmState, *, timeout: float, sleep) -> None:
    """Retry with backoff while the primary is not ready yet (it may still be initialising)."""
    deadline, delay = time.monotonic() + timeout, 1.0
    while True:
        primary, token = state.primary(), state.token(role)
        if primary and primary.get("status") == "ready" and token:
            try:
                engine.join(primary["address"], token, me.address)
                return
            except APIError as exc:
                log("join-retry", primary=primary["address"], error=str(exc)[:200])
        if time.monotonic() > deadline:
            raise TimeoutError(f"could not join the swarm within {timeout:g} s")
        sleep(delay)
        delay = min(delay * 2, 15.0)


def drain(
    engine: Engine,
    node_id: str,
    *,
    heartbeat: Callable[[], None],
    timeout: float,
    poll: float = 2.0,
    heartbeat_every: float = 60.0,
) -> bool:
    """Drain a node and wait (bounded) until its tasks run elsewhere; True when they do."""
    engine.update_node(node_id, Availability="drain")
    log("drain", node_id=node_id)
    started = last_beat = time.monotonic()
    while time.monotonic() - started < timeout:
        if drain_done(engine.tasks_on(node_id), engine.running_elsewhere(node_id), engine.replicas()):
            log("drained", node_id=node_id, seconds=round(time.monotonic() - started, 1))
            return True
        if time.monotonic() - last_beat > heartbeat_every:
            heartbeat()
            last_beat = time.monotonic()
        time.sleep(poll)
    log("drain-timeout", node_id=node_id, seconds=timeout)
    return False


def wait_for(condition: Callable[[], bool], timeout: float, poll: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:g} s")
        time.sleep(poll)


@dataclass
class Agent:
    role: str
    me: Identity
    engine: Engine
    state: SwarmState
    lifecycle: Lifecycle
    ec2: object
    ecr: object
    registry: str
    drain_timeout: float = 540.0
    refresh_every: float = 4 * 3600.0
    refreshed: dict[str, float] = field(default_factory=dict)  # service id -> when its credentials were sent
    published_tokens: dict[str, str] = field(default_factory=dict)

    def handle_lifecycle(self) -> None:
        """Terminating managers drain, demote and leave themselves; workers are drained by the leader."""
        for message in self.lifecycle.receive(wait_seconds=1):
            target = message.body["EC2InstanceId"]
            nodes = self.engine.nodes()
            node = next((n for n in nodes if n.instance_id == target), None)
            mine = target == self.me.instance_id
            leader = any(n.leader and n.id == self.engine.node_id() for n in nodes)
            if node is None or (node.role == "manager" and not mine) or (node.role == "worker" and not leader):
                self.lifecycle.leave_for_others(message)
                continue
            self.retire(node.id, mine, message)

    def retire(self, node_id: str, mine: bool, message: LifecycleMessage) -> None:
        drain(self.engine, node_id, heartbeat=lambda: self.lifecycle.heartbeat(message), timeout=self.drain_timeout)
        if mine:
            # Demoting the leader hands leadership to another manager before this one leaves.
            self.engine.update_node(node_id, Role="worker")
            wait_for(lambda: not self.engine.is_manager(), timeout=120)
            log("demoted", node_id=node_id)
            self.engine.leave()
            log("left", node_id=node_id)
        self.lifecycle.complete(message)
        self.lifecycle.done(message)
        log("lifecycle-complete", node_id=node_id, instance_id=message.body["EC2InstanceId"])

    def heal(self) -> None:
        """On managers: labels, the primary record, dead nodes; on the leader: registry credentials."""
        if not self.engine.is_manager():
            return
        for node_id in self.engine.copy_engine_labels():
            log("labelled", node_id=node_id)
        nodes = self.engine.nodes()
        me = next(n for n in nodes if n.id == self.engine.node_id())
        primary = self.state.primary()
        if should_take_over(primary, nodes, me):
            if self.state.mark_ready(self.me.address, self.me.instance_id, me.id, primary["instance_id"]):
                log("primary-taken-over", node_id=me.id, previous=primary.get("node_id"))
        down = [n.instance_id for n in nodes if n.state == "down" and n.instance_id]
        for node in dead_nodes(nodes, running_instances(self.ec2, down)):
            if node.role == "manager":
                self.engine.update_node(node.id, Role="worker")
            self.engine.remove_node(node.id)
            log("removed-dead-node", node_id=node.id, instance_id=node.instance_id)
        if me.leader:
            self.publish_tokens()
            self.refresh_registry_credentials()

    def publish_tokens(self) -> None:
        """Keep SSM's join tokens the swarm's own, so `docker swarm join-token --rotate` takes effect."""
        tokens = self.engine.join_tokens()
        if tokens == self.published_tokens:
            return
        stale = {role: token for role, token in tokens.items() if self.state.token(role) != token}
        if stale:
            self.state.store_tokens(stale)
            log("join-tokens-published", roles=sorted(stale))
        self.published_tokens = tokens

    def refresh_registry_credentials(self) -> None:
        """Hand swarm fresh ECR credentials for services pulling from it, without restarting tasks:
        the service spec is sent back unchanged, only X-Registry-Auth is new. A service not seen
        before gets them at once, every other one every `refresh_every` (ECR tokens last 12 h)."""
        api = self.engine.client.api
        now = time.monotonic()
        due = [
            s
            for s in api.services()
            if ecr_image(s["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"], self.registry)
            and now - self.refreshed.get(s["ID"], -1e18) > self.refresh_every
        ]
        if not due:
            return
        header = registry_auth_header(self.ecr, self.registry)
        for service in due:
            api._post_json(  # docker-py has no way to pass X-Registry-Auth on update
                api._url("/services/{0}/update", service["ID"]),
                data=service["Spec"],
                params={"version": service["Version"]["Index"]},
                headers={"X-Registry-Auth": header},
            ).raise_for_status()
            self.refreshed[service["ID"]] = now
            log("registry-credentials-refreshed", service=service["Spec"]["Name"])

    def prune(self) -> None:
        result = self.engine.client.containers.prune()
        images = self.engine.client.images.prune(filters={"dangling": False})
        log(
            "pruned",
            containers=len(result.get("ContainersDeleted") or []),
            images=len(images.get("ImagesDeleted") or []),
            bytes=images.get("SpaceReclaimed", 0),
        )
