"""The stack's swarm alarms, evaluated over what the lab's agents really log.

The alarms are the program's own (its MetricAlarm inputs under mocks, for a stack of the lab's
shape), pointed at the lab stack's dimension and time-scaled: the lab's agents write their
metrics every LAB_METRICS_PERIOD seconds instead of every minute, so each alarm's period is that
instead of 60 s; thresholds, evaluation periods, datapoints to alarm and missing-data treatment
are as the program sets them. The evaluator is tests/support/alarm_eval.py (CloudWatch's
documented semantics, tested on its own); the datapoints are the agents' EMF log lines.
"""

from __future__ import annotations

import copy
import functools
from datetime import UTC

from tests.agent.lab import LAB_METRICS_PERIOD, LabNode
from tests.support.alarm_eval import Alarm, Datapoint, evaluate, first_alarm, from_emf
from tests.support.pulumi_program import run_program, stack_config

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
PREFIX = "monitoring-"


@functools.cache
def program_alarms(managers: int, workers: int) -> dict[str, dict]:
    """The swarm alarms the program makes for a stack of this shape (key -> MetricAlarm inputs)."""
    config = {**stack_config("dev"), "restdemo:managerCount": managers, "restdemo:workerCount": workers}
    run = run_program("dev", config)
    found = {}
    for alarm in run.of_type(ALARM):
        queries = alarm.inputs.get("metricQueries", [])
        metrics = [q["metric"] for q in queries if "metric" in q] if queries else [alarm.inputs]
        if all(m.get("namespace") in ("restdemo", "restdemo/workers") for m in metrics):
            found[alarm.name.removeprefix(PREFIX)] = alarm.inputs
    return found


def lab_alarm(inputs: dict, stack: str) -> Alarm:
    """One alarm for the lab stack `stack`, its periods LAB_METRICS_PERIOD long."""
    scaled = copy.deepcopy(inputs)
    blocks = [scaled] + [q["metric"] for q in scaled.get("metricQueries", []) if "metric" in q]
    for block in blocks:
        if "dimensions" in block:
            block["dimensions"] = {**block["dimensions"], "Stack": stack}
        if "period" in block:
            block["period"] = LAB_METRICS_PERIOD
    return Alarm.from_inputs(scaled)


def datapoints(members: list[LabNode]) -> list[Datapoint]:
    """What CloudWatch would make of the lab's nodes: the managers' agents' EMF lines (they go to the
    swarm's log group, of the Standard class), and the workers' metrics as they sent them with
    PutMetricData, from the lab's moto (a worker's log group extracts no EMF)."""
    from moto.cloudwatch.models import MetricDatum, cloudwatch_backends

    from tests.agent.conftest import ACCOUNT, REGION

    managers = from_emf(line for node in members if node.role == "manager" for line in node.agent_log().splitlines())
    stacks = {node.stack for node in members if node.role == "worker"}
    sent = [
        Datapoint(
            timestamp=(datum.timestamp if datum.timestamp.tzinfo else datum.timestamp.replace(tzinfo=UTC)).timestamp(),
            value=float(datum.value),
            metric=datum.name,
            namespace=datum.namespace,
            dimensions={d.name: d.value for d in datum.dimensions},
            unit=datum.unit,
        )
        for datum in cloudwatch_backends[ACCOUNT][REGION].metric_data
        if isinstance(datum, MetricDatum) and {d.value for d in datum.dimensions} & stacks
    ]
    return managers + sent


def fired(members: list[LabNode], stack: str, managers: int, workers: int, start: float, end: float) -> dict:
    """Each swarm alarm's first ALARM time in [start, end] (None: it did not fire)."""
    points = datapoints(members)
    return {
        key: first_alarm(lab_alarm(inputs, stack), points, start, end, step=LAB_METRICS_PERIOD)
        for key, inputs in program_alarms(managers, workers).items()
    }


def states_of(
    members: list[LabNode], stack: str, managers: int, workers: int, key: str, since: float, start: float, end: float
) -> list[tuple[float, str]]:
    """Alarm `key`'s state at each evaluation in [start, end], evaluated from `since` on, so the
    state it is in at `start` is the one its history gave it."""
    alarm = lab_alarm(program_alarms(managers, workers)[key], stack)
    timeline = evaluate(alarm, datapoints(members), since, end, step=LAB_METRICS_PERIOD)
    return [(at, state) for at, state in timeline if at >= start]
