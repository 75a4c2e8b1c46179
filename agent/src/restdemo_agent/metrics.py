"""The swarm's health as CloudWatch metrics, written in the Embedded Metric Format (EMF).

Each line is one of the agent's JSON log lines with an `_aws` object: CloudWatch Logs extracts
the metrics from it as it arrives (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/
CloudWatch_Embedded_Metric_Format_Specification.html). The lines reach the stack's log group
through Docker's awslogs driver, which calls PutLogEvents; the `x-amzn-logs-format: json/emf`
header is optional there (CloudWatch_Embedded_Metric_Format_Generation_PutLogEvents.html), so no
new permission and no other shipper is needed. The metrics are custom metrics, one series each
for the stack (one dimension set), so their cost does not grow with the nodes.

What is measured is decided here from plain values (tested directly); agent.py reads them.
"""

from __future__ import annotations

from collections.abc import Collection

from restdemo_agent.contract import (
    CREDENTIALS_AGE,
    KEPT_SECRETS_AGE,
    LEADER_SEEN,
    MANAGERS_REACHABLE,
    METRICS_DIMENSION,
    METRICS_NAMESPACE,
    NODES_DOWN,
    NODES_READY,
    REPLICAS_DESIRED,
    REPLICAS_RUNNING,
    SERVICE_DIMENSION,
    UPDATE_PAUSED,
    UPDATE_ROLLED_BACK,
    VOLUME_DIRECTORIES_FAILING,
)
from restdemo_agent.plan import Node

PAUSED = {"paused", "rollback_paused"}
# CloudWatch's units (StandardUnit), by metric.
UNITS = {CREDENTIALS_AGE: "Seconds", KEPT_SECRETS_AGE: "Seconds"}


def emf(stack: str, metrics: dict[str, float], at: float, service: str | None = None) -> dict:
    """One EMF document: the metrics under the stack's dimension (and a service's, when given), at
    `at` (seconds since the epoch)."""
    return {
        "_aws": {
            "Timestamp": int(at * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": METRICS_NAMESPACE,
                    "Dimensions": [[METRICS_DIMENSION, *([SERVICE_DIMENSION] if service else [])]],
                    "Metrics": [
                        {"Name": name, "Unit": UNITS.get(name, "Percent" if name.endswith("Percent") else "Count")}
                        for name in metrics
                    ],
                }
            ],
        },
        METRICS_DIMENSION: stack,
        **({SERVICE_DIMENSION: service} if service else {}),
        **{name: float(value) for name, value in metrics.items()},
    }


def metric_data(stack: str, metrics: dict[str, float], at: float) -> list[dict]:
    """The same metrics as PutMetricData's MetricData, for a worker (WORKER_METRICS_NAMESPACE):
    its logs go to a group that extracts no EMF, so it sends them itself, under the stack's dimension."""
    return [
        {
            "MetricName": name,
            "Dimensions": [{"Name": METRICS_DIMENSION, "Value": stack}],
            "Timestamp": at,
            "Value": float(value),
            "Unit": UNITS.get(name, "Percent" if name.endswith("Percent") else "Count"),
        }
        for name, value in metrics.items()
    ]


def used_percent(total: float, free: float) -> float:
    return round(100.0 * (total - free) / total, 1) if total else 0.0


def memory_used_percent(meminfo: str) -> float:
    """From /proc/meminfo: what is not available (MemAvailable) of MemTotal, as `free` counts it."""
    fields = {line.split(":")[0]: float(line.split()[1]) for line in meminfo.splitlines() if ":" in line}
    return used_percent(fields.get("MemTotal", 0.0), fields.get("MemAvailable", 0.0))


def setup_failures(runs: int, successes: int, reported: int) -> int:
    """Failed node setups not reported yet: the setup counts its runs and successes on the node."""
    return max(0, runs - successes - reported)


def manager_view(nodes: list[Node] | None) -> dict[str, float]:
    """A manager's view: whether it sees a leader (none when its swarm reports an error)."""
    if nodes is None:
        return {LEADER_SEEN: 0, MANAGERS_REACHABLE: 0}
    managers = [n for n in nodes if n.role == "manager"]
    return {
        LEADER_SEEN: 1 if any(n.leader for n in managers) else 0,
        MANAGERS_REACHABLE: sum(1 for n in managers if n.reachable and n.state == "ready"),
    }


def replicas_missing(services: list[dict], running: dict[str, int]) -> dict[str, int]:
    """Each replicated service's replicas short of desired, by its name (running: service id -> tasks
    running): one that runs more during a start-first update hides no other's shortfall."""
    return {
        s["Spec"]["Name"]: max(0, s["Spec"]["Mode"]["Replicated"].get("Replicas", 0) - running.get(s["ID"], 0))
        for s in services
        if "Replicated" in s["Spec"].get("Mode", {})
    }


def leader_view(
    nodes: list[Node],
    services: list[dict],
    running: dict[str, int],
    credential_ages: list[float],
    *,
    rolled_back: Collection[str] = (),
    kept_ages: Collection[float] = (),
    volumes_failing: int | None = None,
) -> dict[str, float]:
    """The leader's view of the swarm and its replicated services (running: service id -> tasks
    running); the credentials' age is the oldest service's, none before the first refresh;
    `rolled_back`: the services still on the spec a rollback left (plan.rolled_back_services);
    `kept_ages`: since each secret kept in AWS that services mount reached them all (none: no such
    secret); `volumes_failing`: the volumes' directories not made at the last try (None: no volume)."""
    replicated = [s for s in services if "Replicated" in s["Spec"].get("Mode", {})]
    states = [(s.get("UpdateStatus") or {}).get("State") for s in replicated]
    view = {
        NODES_READY: sum(1 for n in nodes if n.state == "ready"),
        NODES_DOWN: sum(1 for n in nodes if n.state == "down"),
        REPLICAS_RUNNING: sum(running.get(s["ID"], 0) for s in replicated),
        REPLICAS_DESIRED: sum(s["Spec"]["Mode"]["Replicated"].get("Replicas", 0) for s in replicated),
        UPDATE_ROLLED_BACK: 1 if rolled_back else 0,
        UPDATE_PAUSED: 1 if any(state in PAUSED for state in states) else 0,
    }
    if credential_ages:
        view[CREDENTIALS_AGE] = round(max(credential_ages))
    if kept_ages:
        view[KEPT_SECRETS_AGE] = round(max(kept_ages))
    if volumes_failing is not None:
        view[VOLUME_DIRECTORIES_FAILING] = volumes_failing
    return view
