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


# How swarm's scheduler says a task waits for room (swarmkit's "no suitable node (insufficient
# resources on N nodes)"): other reasons (a constraint no node meets) are not the workers' number.
NO_ROOM = "insufficient resources"


def waits_for_room(task: dict) -> bool:
    return not task.get("NodeID") and NO_ROOM in ((task.get("Status") or {}).get("Err") or "")


def reserved_percent(nodes: list[dict], tasks: list[dict]) -> float:
    """Of the active, ready workers' CPU and memory, the higher share reserved by the tasks meant to
    run on them (`tasks`: desired state running) and those waiting for room. At least 100 while any
    task waits for room, whatever the share: room split over many workers may hold no whole task."""
    workers = _active_workers(nodes)
    cpu = sum(int(n["Description"]["Resources"].get("NanoCPUs") or 0) for n in workers.values())
    memory = sum(int(n["Description"]["Resources"].get("MemoryBytes") or 0) for n in workers.values())
    waiting = [t for t in tasks if waits_for_room(t)]
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
    instances = {
        n["ID"]: (n["Spec"].get("Labels") or {}).get("instance_id") for n in nodes if n["Spec"]["Role"] == "worker"
    }
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
