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
# What a record may hold: a node's whole `services` field at most this long, and no more tasks of a
# service or CPU for them than any node has (the leader caps both again); anything else is no record.
RECORD_CHARS = 65536
MOST_TASKS = 10_000
MOST_NANO_CPUS = 10**15
# An operator's label that stops the agent changing a service's count (`docker service update
# --label-add restdemo.scale.paused=true`; the next `up` takes it away).
PAUSED_LABEL = "restdemo.scale.paused"


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


def _no_constant(name: str):
    raise ValueError(f"{name} is no number a record holds")


def _parsed(text: str) -> dict[str, tuple[float, int]] | None:
    """A record's services, or None when it is not what an agent writes: a mapping of service to
    [CPU, tasks], both finite and not below 0, within bounds no node reaches."""
    if len(text) > RECORD_CHARS:
        return None
    try:
        services = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(services, dict):
        return None
    load = {}
    for service, value in services.items():
        if not (isinstance(value, list) and len(value) == 2):
            continue
        used, tasks = value
        if (
            isinstance(used, int | float)
            and not isinstance(used, bool)
            and isinstance(tasks, int)
            and not isinstance(tasks, bool)
            and 0 <= used <= MOST_NANO_CPUS
            and 0 <= tasks <= MOST_TASKS
        ):
            load[service] = (float(used), tasks)
    return load


def read_records(
    items: dict[str, dict], now: float, period: float
) -> dict[str, tuple[float, dict[str, tuple[float, int]]]]:
    """By instance, each recent well-formed record: when it was recorded, and its load. A record is the
    node's to write, so anything not as the agent writes it is no record (never an error)."""
    loads = {}
    for key, item in items.items():
        instance = recorded_instance(key)
        try:
            recorded = float(item.get("recorded", ""))
        except ValueError:
            continue
        # A period ahead at most: the stamp is rounded to the second, and the nodes' clocks differ a little.
        if instance is None or not -period <= now - recorded <= RECORD_PERIODS * period:
            continue
        load = _parsed(item.get("services", ""))
        if load is not None:
            loads[instance] = (recorded, load)
    return loads


def stale_records(items: dict[str, dict], now: float, period: float) -> list[str]:
    """Records to delete: of nodes that stopped recording (gone, most likely), stamped far from now
    either way, or not what an agent writes (the node writes it again next period if it is alive)."""
    done = []
    for key, item in sorted(items.items()):
        try:
            fresh = abs(now - float(item.get("recorded", ""))) <= 10 * RECORD_PERIODS * period
        except ValueError:
            fresh = False
        if not fresh or recorded_instance(key) is None or _parsed(item.get("services", "")) is None:
            done.append(key)
    return done


# --- the leader's decision --------------------------------------------------------------------


def load_percent(
    service_id: str,
    limit: float,
    loads: dict[str, tuple[float, dict[str, tuple[float, int]]]],
    running: dict[str, int],
    since: float,
    period: float,
) -> float | None:
    """The service's tasks' CPU as a share of their limit (`limit`, nano CPUs), over the tasks the nodes
    reported in records whose sampling began after `since` (when swarm last changed the service: a
    reading of the count before would be multiplied by the count after); each node counted for no
    more tasks than swarm runs of the service there (`running`, by instance) and no more CPU for
    each than the limit. None when no task was reported."""
    if limit <= 0:
        return None
    used, tasks = 0.0, 0
    for instance, (recorded, services) in loads.items():
        if recorded - period < since:
            continue
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


def scale_to(service: dict, load: float | None, now: float, restore: int | None = None) -> int | None:
    """The replicas to set on a service now, or None to leave it: one with bounds, not updating or
    rolling back, not stopped (0) or paused by an operator, whose count is outside its bounds (they
    changed at an `up`: at once), below the count the agent set last before someone else's update
    (`restore`: an `up` sends the count its refresh read), or whose load asks for another count and
    whose cooldown since swarm last changed it has passed (`now`: seconds since the epoch)."""
    labels = service["Spec"].get("Labels") or {}
    bounds = bounds_of(labels)
    current = replicas(service)
    if (
        bounds is None
        or not current
        or labels.get(PAUSED_LABEL) == "true"
        or (service.get("UpdateStatus") or {}).get("State") in UPDATING
    ):
        return None
    if restore is not None and clamp(restore, bounds) > current:
        return clamp(restore, bounds)
    if clamp(current, bounds) != current:
        return clamp(current, bounds)
    wanted = clamp(unbounded_count(current, load, bounds.cpu_percent), bounds)
    if wanted == current:
        return None
    cooldown = bounds.out_cooldown if wanted > current else bounds.in_cooldown
    return wanted if now - updated_at(service) >= cooldown else None


def at_maximum(service: dict, load: float | None) -> bool | None:
    """For a service with bounds: whether it runs its maximum and its load asks for more than that
    (above the target by more than the tolerance: it needs a higher bound, or more nodes); None for
    one without."""
    bounds = bounds_of(service["Spec"].get("Labels"))
    current = replicas(service)
    if bounds is None or current is None:
        return None
    asked = unbounded_count(current, load, bounds.cpu_percent)
    return load is not None and current >= bounds.maximum and asked > bounds.maximum
