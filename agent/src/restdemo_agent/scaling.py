"""Replicas that follow the load (ADR 0034): the program owns a service's bounds, the leader's agent
its count. Pure decisions here; agent.py sequences the calls.

Each node's agent samples its swarm tasks' CPU once a metrics period (the engine's one-shot stats:
each container's CPU time, against its last sample) and records, by service, the CPU its tasks used
and how many it sampled, under `load#<its aws:userid>` in the state table: the one other key a
worker's role may write (as its spot notice, ADR 0031). The leader, once a metrics period, reads the
records and, for each service the program labelled with bounds, compares its tasks' CPU with their
limit: the count that brings the share back to the target (the target-tracking rule, ADR 0032),
within the bounds, after a cooldown, and never while an update or a rollback is under way.

A record is the node's own word, so the leader counts no more tasks for a node than swarm runs of the
service there, nor more CPU for each than its limit: root on one worker moves a service's load by
at most that worker's share of its tasks.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime

from restdemo_agent.contract import (
    LOAD_PREFIX,
    SCALE_CPU_LABEL,
    SCALE_IN_COOLDOWN_LABEL,
    SCALE_MAX_LABEL,
    SCALE_MIN_LABEL,
    SCALE_OUT_COOLDOWN_LABEL,
)
from restdemo_agent.secrets import UPDATING

# The swarm's label on a task's container: the service it runs for (moby daemon/cluster/executor).
SERVICE_ID_LABEL = "com.docker.swarm.service.id"
# Within this share of the target the count stays: CPU wavers, and each change restarts tasks.
TOLERANCE = 0.1
# A node's record older than this many metrics periods is not read: the node stopped recording.
RECORD_PERIODS = 3
# The most replicas a bound may name (the program's settings say the same).
MAX_REPLICAS = 100


@dataclass(frozen=True)
class Bounds:
    minimum: int
    maximum: int
    cpu_percent: float  # the target: the tasks' CPU as a share of their limit
    out_cooldown: float  # seconds after a change before the count grows again
    in_cooldown: float  # ... before it shrinks


def bounds_of(labels: dict[str, str] | None) -> Bounds | None:
    """A service's bounds from its labels; None when it has none, or any is not what the program writes."""
    labels = labels or {}
    if SCALE_MAX_LABEL not in labels:
        return None
    try:
        bounds = Bounds(
            minimum=int(labels[SCALE_MIN_LABEL]),
            maximum=int(labels[SCALE_MAX_LABEL]),
            cpu_percent=float(labels[SCALE_CPU_LABEL]),
            out_cooldown=float(labels[SCALE_OUT_COOLDOWN_LABEL]),
            in_cooldown=float(labels[SCALE_IN_COOLDOWN_LABEL]),
        )
    except (KeyError, ValueError):
        return None
    sane = (
        1 <= bounds.minimum <= bounds.maximum <= MAX_REPLICAS
        and 1 <= bounds.cpu_percent <= 100
        and 0 <= bounds.out_cooldown <= 86400
        and 0 <= bounds.in_cooldown <= 86400
    )
    return bounds if sane else None


# --- a node's record -------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    service_id: str
    cpu_time: int  # nanoseconds of CPU the container used since it started (cpu_stats.cpu_usage.total_usage)
    at: float  # seconds, when read


def node_load(previous: dict[str, Sample], current: dict[str, Sample]) -> dict[str, tuple[float, int]]:
    """By service: the CPU (in nano CPUs) its tasks here used between two samples, and how many tasks
    were sampled both times (a task started since has no CPU to compare yet)."""
    load: dict[str, tuple[float, int]] = {}
    for container, now in current.items():
        before = previous.get(container)
        if before is None or now.at <= before.at or now.cpu_time < before.cpu_time:
            continue
        used, tasks = load.get(now.service_id, (0.0, 0))
        load[now.service_id] = (used + (now.cpu_time - before.cpu_time) / (now.at - before.at), tasks + 1)
    return load


def record_fields(load: dict[str, tuple[float, int]]) -> str:
    return json.dumps({service: [round(used), tasks] for service, (used, tasks) in sorted(load.items())})


def recorded_instance(key: str) -> str | None:
    """The instance a record's key names: `load#<role id>:<instance id>`, an instance role session's
    aws:userid (IAM User Guide, "Policy variables")."""
    if not key.startswith(LOAD_PREFIX) or ":" not in key:
        return None
    instance = key.rpartition(":")[2]
    return instance if instance.startswith("i-") else None


def read_records(items: dict[str, dict], now: float, period: float) -> dict[str, dict[str, tuple[float, int]]]:
    """By instance, each recent well-formed record's load. A record is the node's to write: anything
    but a mapping of service to [CPU, tasks], both numbers not below 0, is no record."""
    loads: dict[str, dict[str, tuple[float, int]]] = {}
    for key, item in items.items():
        instance = recorded_instance(key)
        try:
            recorded = float(item.get("recorded", ""))
            services = json.loads(item.get("services", ""))
        except ValueError:
            continue
        if instance is None or not isinstance(services, dict) or not 0 <= now - recorded <= RECORD_PERIODS * period:
            continue
        load = {}
        for service, value in services.items():
            if (
                isinstance(value, list)
                and len(value) == 2
                and all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in value)
            ):
                load[service] = (float(value[0]), int(value[1]))
        loads[instance] = load
    return loads


def stale_records(items: dict[str, dict], now: float, period: float) -> list[str]:
    """Records to delete: of nodes that stopped recording (gone, most likely), or not what an agent writes."""
    done = []
    for key, item in sorted(items.items()):
        try:
            fresh = now - float(item.get("recorded", "")) <= 10 * RECORD_PERIODS * period
        except ValueError:
            fresh = False
        if not fresh or recorded_instance(key) is None:
            done.append(key)
    return done


# --- the leader's decision --------------------------------------------------------------------


def load_percent(
    service_id: str, limit: float, loads: dict[str, dict[str, tuple[float, int]]], running: dict[str, int]
) -> float | None:
    """The service's tasks' CPU as a share of their limit (`limit`, nano CPUs), over the tasks the nodes
    reported; each node counted for no more tasks than swarm runs of the service there (`running`, by
    instance) and no more CPU for each than the limit. None when no task was reported."""
    if limit <= 0:
        return None
    used, tasks = 0.0, 0
    for instance, services in loads.items():
        reported_used, reported_tasks = services.get(service_id, (0.0, 0))
        counted = min(reported_tasks, running.get(instance, 0))
        if counted <= 0:
            continue
        used += counted * min(reported_used / reported_tasks, limit)
        tasks += counted
    return round(100.0 * used / (tasks * limit), 1) if tasks else None


def unbounded_count(current: int, load: float | None, target: float) -> int:
    """The count that brings the load to the target, whatever the bounds: within TOLERANCE of the
    target (or with no reading), the current one."""
    if load is None or abs(load / target - 1) <= TOLERANCE:
        return current
    return math.ceil(current * load / target)


def clamp(count: int, bounds: Bounds) -> int:
    return min(max(count, bounds.minimum), bounds.maximum)


def updated_at(service: dict) -> float:
    """When swarm last changed the service (its UpdatedAt, RFC 3339 with nanoseconds), in seconds."""
    stamp = service.get("UpdatedAt") or service.get("CreatedAt") or ""
    head, _, fraction = stamp.rstrip("Z").partition(".")
    try:
        seconds = datetime.fromisoformat(head + "+00:00").timestamp()
    except ValueError:
        return 0.0
    return seconds + (float(f"0.{fraction}") if fraction.isdigit() else 0.0)


def cpu_limit(service: dict) -> float:
    """The CPU each task may use, in nano CPUs (0: none set, so no share of it to scale on)."""
    resources = service["Spec"]["TaskTemplate"].get("Resources") or {}
    return float((resources.get("Limits") or {}).get("NanoCPUs") or 0)


def replicas(service: dict) -> int | None:
    mode = service["Spec"].get("Mode") or {}
    return int(mode["Replicated"].get("Replicas", 0)) if "Replicated" in mode else None


def scale_to(service: dict, load: float | None, now: float) -> int | None:
    """The replicas to set on a service now, or None to leave it: one with bounds, not updating or
    rolling back, whose count is outside its bounds (they changed at an `up`: at once), or whose load
    asks for another count and whose cooldown since swarm last changed it has passed (`now`: seconds
    since the epoch)."""
    bounds = bounds_of(service["Spec"].get("Labels"))
    current = replicas(service)
    if bounds is None or current is None or (service.get("UpdateStatus") or {}).get("State") in UPDATING:
        return None
    if clamp(current, bounds) != current:
        return clamp(current, bounds)
    wanted = clamp(unbounded_count(current, load, bounds.cpu_percent), bounds)
    if wanted == current:
        return None
    cooldown = bounds.out_cooldown if wanted > current else bounds.in_cooldown
    return wanted if now - updated_at(service) >= cooldown else None


def at_maximum(service: dict, load: float | None) -> bool | None:
    """For a service with bounds: whether it runs its maximum and its load asks for at least that
    many (it needs a higher bound, or more nodes); None for one without."""
    bounds = bounds_of(service["Spec"].get("Labels"))
    current = replicas(service)
    if bounds is None or current is None:
        return None
    asked = unbounded_count(current, load, bounds.cpu_percent)
    return load is not None and current >= bounds.maximum and asked >= bounds.maximum
