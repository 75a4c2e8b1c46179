"""What the workers' group scales on, and which workers it must not take away (pure decisions).

The leader publishes `WorkersReservedPercent`: the share of the active workers' CPU or memory
(whichever is higher) that the tasks meant to run reserve, counting the tasks swarm could not
place yet (no node: pending for resources), so the group adds a worker before tasks wait and when
they do. The group's target-tracking policy holds it at `workerReservedTarget`.

Scale-in takes instances the group picks. A worker that holds every running copy of a service is
protected from scale-in (the leader sets it), so a scale-in never takes the only copy of a service
down; instance refreshes still replace it (`scale_in_protected_instances = Refresh`). When every
worker a scale-in could take is protected, Auto Scaling lowers the desired capacity and terminates
one once its protection lifts (EC2 Auto Scaling User Guide, "Use instance scale-in protection").
"""

from __future__ import annotations

import re

from restdemo_agent.contract import LABEL_INSTANCE_ID, WORKER_CONSTRAINTS


def _reservation(task: dict) -> tuple[int, int]:
    reserved = ((task.get("Spec") or {}).get("Resources") or {}).get("Reservations") or {}
    return int(reserved.get("NanoCPUs") or 0), int(reserved.get("MemoryBytes") or 0)


def _active_workers(nodes: list[dict]) -> dict[str, dict]:
    return {
        n["ID"]: n
        for n in nodes
        if n["Spec"]["Role"] == "worker"
        and n["Spec"]["Availability"] == "active"
        and (n.get("Status") or {}).get("State") == "ready"
    }


def instance_of(node: dict) -> str:
    """The node's instance, as the leader's agent labelled it from AWS."""
    return (node["Spec"].get("Labels") or {}).get(LABEL_INSTANCE_ID) or ""


def worker_capacity(node: dict, actual: dict[str, tuple[int, int]]) -> tuple[int, int]:
    """A worker's CPU (nano) and memory (bytes): what its engine reports, never more than its
    instance type has (`actual`, by instance, from EC2), and nothing for an instance EC2 does not
    know. An engine's report is the node's own word: root on a worker could claim any size, and
    the group would scale on it."""
    resources = (node.get("Description") or {}).get("Resources") or {}
    most_cpu, most_memory = actual.get(instance_of(node), (0, 0))
    reported_cpu, reported_memory = int(resources.get("NanoCPUs") or 0), int(resources.get("MemoryBytes") or 0)
    return max(0, min(reported_cpu, most_cpu)), max(0, min(reported_memory, most_memory))


# How swarm's scheduler says why a task waits: "no suitable node (<reason>; <reason>)", one reason
# per filter, each node counted under the first filter it fails, in the order ready, resources,
# plugins, constraints, platform, host ports, max replicas per node (swarmkit manager/scheduler
# pipeline.go, filter.go). A new worker helps a task some node turned away for want of room, unless
# what turned the other nodes away would turn it away too: a plugin, a platform, or a constraint of
# the service's own. The program's workers-only constraints (what turns the managers away) a new
# worker meets, and a node taking no new tasks, a host port in use or the replicas per node are each
# node's own.
_EXPLAINED = re.compile(r"no suitable node \((?P<reasons>.*)\)")
_NO_ROOM = "insufficient resources"
_A_NEW_WORKER_HELPS = (_NO_ROOM, "not available for new tasks", "host-mode port already in use", "max replicas")
_CONSTRAINTS = "scheduling constraints not satisfied"


def waits_for_room(task: dict) -> bool:
    if task.get("NodeID"):
        return False
    found = _EXPLAINED.search((task.get("Status") or {}).get("Err") or "")
    if not found:
        return False
    reasons = [reason.strip() for reason in found["reasons"].split(";")]
    constraints = set(((task.get("Spec") or {}).get("Placement") or {}).get("Constraints") or [])
    own_only = constraints <= set(WORKER_CONSTRAINTS)
    return any(r.startswith(_NO_ROOM) for r in reasons) and all(
        any(helped in r for helped in _A_NEW_WORKER_HELPS) or (r.startswith(_CONSTRAINTS) and own_only) for r in reasons
    )


def reserved_percent(nodes: list[dict], tasks: list[dict], actual: dict[str, tuple[int, int]]) -> float:
    """Of the active, ready workers' CPU and memory (each at most its instance type's, `actual`),
    the higher share reserved by the tasks meant to run on them (`tasks`: desired state running) and
    those waiting for room that one worker could hold. At least 100 while any such task waits,
    whatever the share: room split over many workers may hold no whole task."""
    workers = _active_workers(nodes)
    capacities = [worker_capacity(n, actual) for n in workers.values()]
    cpu, memory = sum(c for c, _ in capacities), sum(m for _, m in capacities)
    largest = (max(c for c, _ in capacities), max(m for _, m in capacities)) if capacities else None

    def fits(task: dict) -> bool:
        # A task bigger than any worker waits whatever the count: more workers of these types are no
        # help. With no worker to measure, any may be.
        return largest is None or all(want <= most for want, most in zip(_reservation(task), largest, strict=True))

    waiting = [t for t in tasks if waits_for_room(t) and fits(t)]
    wanted = [_reservation(t) for t in tasks if t.get("NodeID") in workers] + [_reservation(t) for t in waiting]
    reserved_cpu, reserved_memory = sum(c for c, _ in wanted), sum(m for _, m in wanted)
    floor = 100.0 if waiting else 0.0
    if not cpu or not memory:
        return 100.0 if reserved_cpu or reserved_memory or waiting else 0.0
    return max(floor, round(100.0 * max(reserved_cpu / cpu, reserved_memory / memory), 1))


def last_replica_instances(nodes: list[dict], tasks: list[dict]) -> set[str]:
    """The instances of worker nodes that run a service's only running task."""
    running: dict[str, list[str]] = {}
    for task in tasks:
        if (task.get("Status") or {}).get("State") == "running" and task.get("NodeID"):
            running.setdefault(task["ServiceID"], []).append(task["NodeID"])
    instances = {n["ID"]: instance_of(n) for n in nodes if n["Spec"]["Role"] == "worker"}
    # One node holding every running copy of a service (one replica, or two there): that node.
    alone = {nodes_of.pop() for nodes_of in (set(v) for v in running.values()) if len(nodes_of) == 1}
    return {instances[node] for node in alone if instances.get(node)}


def protection_changes(protected: set[str], in_service: set[str], wanted: set[str]) -> tuple[set[str], set[str]]:
    """(to protect, to unprotect) among the group's instances in service (Auto Scaling refuses the
    call for one that is launching or terminating), from what the group says now."""
    wanted = wanted & in_service
    return wanted - protected, (protected & in_service) - wanted


def batches(instances: set[str], size: int = 50) -> list[list[str]]:
    """SetInstanceProtection takes 50 instances at most (its InstanceIds, Auto Scaling API reference)."""
    ordered = sorted(instances)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]
