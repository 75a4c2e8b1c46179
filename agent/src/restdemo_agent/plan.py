"""The agent's decisions, as pure functions: no AWS, no Docker, tested directly."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass

from restdemo_agent.contract import LABEL_INSTANCE_ID, LABEL_ROLE, LABEL_UNIDENTIFIED, LABEL_ZONE, TERMINATING

IDENTITY_LABELS = (LABEL_INSTANCE_ID, LABEL_ZONE, LABEL_ROLE)


@dataclass(frozen=True)
class Node:
    """A swarm node as the agent sees it (from `docker node ls` / the nodes API)."""

    id: str
    role: str  # manager | worker
    state: str  # ready | down | unknown | disconnected
    availability: str  # active | pause | drain
    instance_id: str | None  # its node label, set once by the leader from what AWS says (identities)
    leader: bool = False
    reachable: bool = True  # managers: ManagerStatus.Reachability == reachable
    address: str = ""  # Status.Addr: where the swarm's managers see its session come from
    quarantined: bool = False  # drained by the leader as unidentified (LABEL_UNIDENTIFIED)


def bootstrap_action(role: str, already_member: bool, claimed_primary: bool | None) -> str:
    """What a booting node does: nothing (already a member), init (won the claim) or join."""
    if already_member:
        return "stay"
    if role == "manager" and claimed_primary:
        return "init"
    return "join"


def may_give_up_instance(local_node_state: str | None) -> bool:
    """May a node that could not become a member have its instance replaced? Only when its engine
    answers and holds no swarm state (`inactive`): an engine that is a member, pending, locked or
    in error may hold the swarm's raft log (the last copy, on a lone survivor), and one that does
    not answer (None) is the engine watchdog's to judge."""
    return local_node_state == "inactive"


def identities(unlabelled: list[Node], instances: dict[str, dict], labelled: set[str]) -> dict[str, dict[str, str]]:
    """The labels the managers set, once, on nodes that have none: from the instance of the stack's
    groups whose private address is the node's own (Status.Addr: swarmkit records the address a node's
    session comes from, which the node cannot choose in a VPC), its zone, and its group's role.
    Never from the engine's labels, which root on any node writes. `instances`: address -> {instance_id,
    zone, role}; `labelled`: the instance ids live nodes carry (a down node's record does not hold its
    instance: the same instance may join again under a new node id). A node gets none when another
    unlabelled node has its address (extra engines on one host), its instance is another live node's,
    or its swarm role is not its group's (a worker's engine joined as a manager)."""
    sharing = Counter(node.address for node in unlabelled)
    taken = set(labelled)
    found = {}
    for node in unlabelled:
        instance = instances.get(node.address)
        if instance is None or sharing[node.address] > 1 or instance["instance_id"] in taken:
            continue
        if instance["role"] != node.role:
            continue
        taken.add(instance["instance_id"])
        found[node.id] = {
            LABEL_INSTANCE_ID: instance["instance_id"],
            LABEL_ZONE: instance["zone"],
            LABEL_ROLE: instance["role"],
        }
    return found


def to_quarantine(unlabelled: list[Node], identified: dict[str, dict]) -> list[Node]:
    """The active workers no manager could identify (AWS not answering included): drained until they
    are, so that no replica runs on an engine that is no instance of the stack. Managers are left
    alone: none joins without the manager token, and draining one would move the tasks of a stack
    that runs them there."""
    return [n for n in unlabelled if n.id not in identified and n.role == "worker" and n.availability == "active"]


def superseded(nodes: list[Node], identified: dict[str, dict]) -> list[Node]:
    """Down nodes whose instance a new node now carries: the same instance joined again under a new
    node id (its engine lost its swarm state); the old record goes, a manager's only while the
    reachable managers keep a quorum (removable)."""
    instances = {labels[LABEL_INSTANCE_ID] for labels in identified.values()}
    return removable([n for n in nodes if n.state == "down" and n.instance_id in instances], nodes)


def mismatched(labelled: list[Node], instances: dict[str, dict]) -> list[Node]:
    """Ready labelled nodes AWS does not confirm: no instance of the stack's groups at their address,
    another instance there, or their instance carried by another of them too. Labels an older agent
    copied from engine labels (which root on the node writes), checked once per agent start.
    `instances`: as for identities."""
    carried = Counter(node.instance_id for node in labelled)
    wrong = []
    for node in labelled:
        instance = instances.get(node.address)
        if instance is None or instance["instance_id"] != node.instance_id or carried[node.instance_id] > 1:
            wrong.append(node)
    return wrong


def labelled_spec(spec: dict, labels: dict[str, str]) -> dict:
    """A node's spec with these identity labels; one that was quarantined made active again, only its
    quarantine label dropped. Decided on the spec as read just before the update, so a manager's
    stale view never undoes another's."""
    current = dict(spec.get("Labels") or {})
    was_quarantined = current.pop(LABEL_UNIDENTIFIED, None) is not None
    changed = {**spec, "Labels": {**current, **labels}}
    return {**changed, "Availability": "active"} if was_quarantined else changed


def quarantined_spec(spec: dict) -> dict | None:
    """A node's spec drained, with the quarantine label; None when it carries an identity by now
    (another manager identified it since this one looked)."""
    labels = spec.get("Labels") or {}
    if LABEL_INSTANCE_ID in labels:
        return None
    return {**spec, "Availability": "drain", "Labels": {**labels, LABEL_UNIDENTIFIED: "drained"}}


def unlabelled_spec(spec: dict) -> dict:
    """A node's spec without its identity (a mismatch): quarantined, to be identified again from AWS."""
    labels = {k: v for k, v in (spec.get("Labels") or {}).items() if k not in IDENTITY_LABELS}
    return {**spec, "Availability": "drain", "Labels": {**labels, LABEL_UNIDENTIFIED: "drained"}}


def strays(unlabelled: list[Node], unidentified_since: dict[str, float], now: float, after: float) -> list[Node]:
    """Workers without an identity for `after` seconds, in any state (one that never even registered
    too): removed. Anyone holding the worker token can make nodes, each a record every manager keeps."""
    return [n for n in unlabelled if n.role == "worker" and now - unidentified_since.get(n.id, now) >= after]


def should_take_over(primary: dict | None, nodes: list[Node], me: Node) -> bool:
    """A leading manager re-points the primary record when the recorded primary is gone from
    the swarm or down, so nodes that boot later find a manager that answers."""
    if me.role != "manager" or not me.leader or primary is None or primary.get("node_id") == me.id:
        return False
    recorded = next((n for n in nodes if n.id == primary.get("node_id")), None)
    return recorded is None or recorded.state == "down" or recorded.role != "manager"


def quorum(managers: int) -> int:
    return managers // 2 + 1


def dead_nodes(nodes: list[Node], running_instances: set[str]) -> list[Node]:
    """Nodes to remove: down, and their instance no longer runs. A node that is only slow
    (its instance still runs, or we cannot tell which instance it is) is never removed, and
    a removal that would leave the reachable managers without a quorum is not made."""
    candidates = [n for n in nodes if n.state == "down" and n.instance_id and n.instance_id not in running_instances]
    return removable(candidates, nodes)


def removable(candidates: list[Node], nodes: list[Node]) -> list[Node]:
    """The candidates that may be removed: every worker; a manager only while the reachable managers
    that stay still make a quorum of those that stay."""
    managers = [n for n in nodes if n.role == "manager"]
    reachable = [n for n in managers if n.reachable and n.state != "down"]
    removable = []
    remaining = len(managers)
    for node in candidates:
        if node.role == "manager":
            if len(reachable) < quorum(remaining - 1):
                continue
            remaining -= 1
        removable.append(node)
    return removable


def drain_done(tasks_on_node: list[dict], desired_running_elsewhere: dict[str, int], replicas: dict[str, int]) -> bool:
    """A drained node may leave once none of its tasks still runs and every service it ran has
    all its replicas running on other nodes."""
    still_running = [t for t in tasks_on_node if t.get("Status", {}).get("State") == "running"]
    if still_running:
        return False
    return all(desired_running_elsewhere.get(service, 0) >= wanted for service, wanted in replicas.items())


def lifecycle_message_for(body: dict, instance_id: str) -> bool:
    """Is this ASG lifecycle notification about terminating this instance?"""
    return body.get("LifecycleTransition") == TERMINATING and body.get("EC2InstanceId") == instance_id


def ecr_image(image: str, registry: str) -> bool:
    """Does a service's image live in this stack's registry (so its credentials need refreshing)?"""
    return image.split("/", 1)[0] == registry


# --- who handles a lifecycle notification, and when leaving is safe -------------------------

HANDLE_MINE = "retire-self"  # a manager drains, demotes and leaves itself
HANDLE_WORKER = "drain-worker"  # the leader drains a worker (workers have no manager API)
HANDLE_UNKNOWN = "complete"  # the instance never joined: nothing to drain, complete at once
HANDLE_OTHERS = "leave-for-others"


def lifecycle_handler(target_instance: str, nodes: list[Node], me: Node) -> str:
    """Which manager acts on a termination notice for `target_instance`, and how. No node carries the
    instance: it never joined, unless a ready node is still unidentified and not drained (it may be
    that one): then the notice waits for a later round."""
    # Its own node first, then a live one: a down record may carry the same instance (joined again).
    carrying = sorted(
        (n for n in nodes if n.instance_id == target_instance), key=lambda n: (n.id != me.id, n.state == "down")
    )
    target = carrying[0] if carrying else None
    if target is None:
        unsure = any(not n.instance_id and n.state == "ready" and not n.quarantined for n in nodes)
        return HANDLE_UNKNOWN if me.leader and not unsure else HANDLE_OTHERS
    if target.role == "manager":
        return HANDLE_MINE if target.id == me.id else HANDLE_OTHERS
    return HANDLE_WORKER if me.leader else HANDLE_OTHERS


def leaving_keeps_quorum(nodes: list[Node], leaving_id: str) -> bool:
    """Can this manager be demoted now? Only if the managers that stay are at least one and their
    reachable ones still make a quorum of them (what raft's CanRemoveMember checks)."""
    staying = [n for n in nodes if n.role == "manager" and n.id != leaving_id]
    reachable = [n for n in staying if n.reachable and n.state != "down"]
    return bool(staying) and len(reachable) >= quorum(len(staying))


def heartbeat_every(hook_timeout: float) -> float:
    """Heartbeat a lifecycle action three times per hook timeout, and at least once a minute."""
    return max(1.0, min(60.0, hook_timeout / 3))


# --- the primary record ---------------------------------------------------------------------


def primary_is_stale(primary: dict | None, now: float, stale_after: float) -> bool:
    """A record nobody has confirmed for `stale_after` seconds: its claimant crashed before the swarm
    existed, or the swarm's managers are all gone (the leader confirms it every round)."""
    if primary is None:
        return True
    try:
        return now - float(primary.get("updated", "0")) > stale_after
    except ValueError:
        return True


def may_claim(
    primary: dict | None, now: float, stale_after: float, primary_answers: bool, managers_running: list[str]
) -> bool:
    """May a booting manager claim the primary record (and form a swarm)? When there is none; when
    a claim was never finished (its claimant crashed); when a ready primary is stale, does not
    answer on the swarm port and no other manager instance of the group runs. While one runs, its
    engine may hold the swarm (alive without a quorum, or only slow): a swarm formed now would be a
    second, empty one beside it, so the new manager waits for it to come back or be recovered."""
    if primary is None:
        return True
    if not primary_is_stale(primary, now, stale_after):
        return False
    return primary.get("status") != "ready" or not (primary_answers or managers_running)


def confirm_every(stale_after: float) -> float:
    """How often the leader confirms the record: three times per staleness window, at most every 30 s."""
    return min(30.0, stale_after / 3)


UPDATING = {"updating", "paused", "rollback_started", "rollback_paused"}


def credentials_refresh_due(
    service: dict, registry: str, now: float, last: float | None, every: float, last_version: int | None = None
) -> bool:
    """Send a service fresh registry credentials (a spec-preserving update) only when it pulls from
    this registry, it is not mid-update or mid-rollback (the update would replace PreviousSpec and
    clear UpdateStatus, so a failing rollout would roll back to itself), and it is due: never sent,
    sent `every` ago, or the service was updated by someone else since (`last_version`: its version
    after the last refresh): a deploy stores its own, shorter-lived login."""
    if not ecr_image(service["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"], registry):
        return False
    if (service.get("UpdateStatus") or {}).get("State") in UPDATING:
        return False
    if last is None or now - last > every:
        return True
    return last_version is not None and (service.get("Version") or {}).get("Index") != last_version


ROLLED_BACK = {"rollback_started", "rollback_paused", "rollback_completed"}


def spec_digest(spec: dict, *, counted: bool = False) -> str:
    """A service spec's identity: the same spec sent again (the credential refresh) keeps it, and so
    does another replica count (the leader's scaling, ADR 0034); `counted`: the count too, as agents
    before that stored it."""
    if not counted and "Replicated" in (spec.get("Mode") or {}):
        spec = {**spec, "Mode": {**spec["Mode"], "Replicated": {**spec["Mode"]["Replicated"], "Replicas": None}}}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def rolled_back_services(services: list[dict], held: dict[str, str]) -> dict[str, str]:
    """The services whose last update swarm rolled back, each with the digest of the spec it rolled
    back to. One stays listed until its spec changes (the next deploy) or it is gone, whatever its
    UpdateStatus says since: swarmkit's UpdateService clears UpdateStatus on any update, the
    leader's spec-preserving credential refresh too. `held`: the list as last reported."""
    found = {}
    for service in services:
        digest = spec_digest(service["Spec"])
        state = (service.get("UpdateStatus") or {}).get("State")
        known = (digest, spec_digest(service["Spec"], counted=True))
        if state in ROLLED_BACK or held.get(service["ID"]) in known:
            found[service["ID"]] = digest
    return found


def worker_orphaned(manager_addresses: list[str], primary: dict | None, now: float, stale_after: float) -> bool:
    """A worker belongs to a dead swarm when the record names a ready, recently confirmed primary
    that is not among the managers its own swarm knows."""
    if primary is None or primary.get("status") != "ready" or primary_is_stale(primary, now, stale_after):
        return False
    return primary.get("address") not in manager_addresses


def recovery_survivor(leader_seen: dict[str, float | None], tolerance: float) -> str:
    """Which surviving manager a lost quorum is recovered on (`--force-new-cluster`): the one that
    saw a leader last, as its agent recorded (every `tolerance` seconds at most). That tells who
    stayed in the quorum longest, not whose raft log is newest: the Engine API shows no raft index
    and the log on disk is encrypted. Records within `tolerance` of the latest are a tie (the
    managers of the last quorum always tie), broken by the lowest node id, so every survivor that
    runs the command names the same one."""
    latest = max((seen for seen in leader_seen.values() if seen is not None), default=None)
    tied = [
        node
        for node, seen in leader_seen.items()
        if latest is None or (seen is not None and latest - seen <= tolerance)
    ]
    return min(tied)


def quorum_may_live_elsewhere(others_seen: dict[str, float | None], now: float, within: float) -> str | None:
    """A manager that recorded a leader in the last `within` seconds: the quorum may be alive on
    the other side of a partition, and a new cluster here would be a second swarm. Its node id."""
    recent = [node for node, seen in others_seen.items() if seen is not None and now - seen <= within]
    return min(recent) if recent else None
