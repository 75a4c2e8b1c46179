"""The embedded metric format's rules (tests/fidelity/data/emf.py) against the specification's own
example and one bad variant per rule, so a rule that cannot fail is caught too."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from tests.fidelity.data.emf import RULES, emf_problems

pytestmark = pytest.mark.fidelity

# "The following is a valid example of embedded metric format" (the specification).
SPEC_EXAMPLE = {
    "_aws": {
        "Timestamp": 1574109732004,
        "CloudWatchMetrics": [
            {
                "Namespace": "lambda-function-metrics",
                "Dimensions": [["functionVersion"]],
                "Metrics": [{"Name": "time", "Unit": "Milliseconds"}],
            }
        ],
    },
    "functionVersion": "$LATEST",
    "time": 100,
    "requestId": "989ffbf8-9ace-4817-a57c-e4dd734019ee",
}

# What the node agent is to emit: two directives, an empty dimension set, an array of values, a
# high-resolution metric.
AGENT_LINE = {
    "_aws": {
        "Timestamp": 1767225600000,
        "CloudWatchMetrics": [
            {
                "Namespace": "restdemo/agent",
                "Dimensions": [["stack", "node"], []],
                "Metrics": [
                    {"Name": "ReplicasRunning", "Unit": "Count", "StorageResolution": 60},
                    {"Name": "HealthLatency", "Unit": "Milliseconds", "StorageResolution": 1},
                ],
            },
            {"Namespace": "restdemo/agent", "Dimensions": [["stack"]], "Metrics": [{"Name": "Drains"}]},
        ],
    },
    "stack": "dev",
    "node": "i-0123456789abcdef0",
    "ReplicasRunning": 3,
    "HealthLatency": [1.5, 2.25, 3],
    "Drains": 0,
}


def _set(path: str, value) -> Callable[[dict], None]:
    """Sets `path` (keys and list indexes, dot-separated) in a line."""

    def change(line: dict) -> None:
        *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
        target = line
        for part in parents:
            target = target[part]
        target[last] = value

    return change


def _delete(path: str) -> Callable[[dict], None]:
    def change(line: dict) -> None:
        *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
        target = line
        for part in parents:
            target = target[part]
        del target[last]

    return change


DIRECTIVE = "_aws.CloudWatchMetrics.0"

# rule (EmfRule.what) -> a change to the specification's example that breaks it.
BAD_VARIANTS = {
    "_aws metadata": _delete("_aws"),
    "Timestamp": _set("_aws.Timestamp", 1574109732004.5),
    "Timestamp in milliseconds": _set("_aws.Timestamp", 1574109732),
    "CloudWatchMetrics": _set("_aws.CloudWatchMetrics", {"Namespace": "lambda-function-metrics"}),
    "Namespace": _set(f"{DIRECTIVE}.Namespace", "n" * 256),
    "Namespace without a leading colon": _set(f"{DIRECTIVE}.Namespace", ":lambda-function-metrics"),
    "Dimensions": _set(f"{DIRECTIVE}.Dimensions", [[f"d{n}" for n in range(31)]]),
    "dimension targets": _set("functionVersion", 7),
    "Metrics": _set(f"{DIRECTIVE}.Metrics", [{"Name": "time"}] * 101),
    "metric Name": _set(f"{DIRECTIVE}.Metrics.0.Name", ""),
    "metric targets": _set("time", [1] * 101),
    "Unit": _set(f"{DIRECTIVE}.Metrics.0.Unit", "Millisecond"),
    "StorageResolution": _set(f"{DIRECTIVE}.Metrics.0", {"Name": "time", "StorageResolution": 10}),
}


@pytest.mark.parametrize("line", [SPEC_EXAMPLE, AGENT_LINE], ids=["spec example", "agent line"])
def test_a_valid_line_has_no_problems(line):
    assert emf_problems(line) == []


def test_every_rule_has_a_bad_variant():
    assert sorted(BAD_VARIANTS) == sorted(rule.what for rule in RULES)


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.what)
def test_each_rule_catches_its_bad_variant(rule):
    line = copy.deepcopy(SPEC_EXAMPLE)
    BAD_VARIANTS[rule.what](line)
    assert rule.problems(line), f"{rule.what} accepted its bad variant"
    assert emf_problems(line)


@pytest.mark.parametrize(
    "change,expected",
    [
        (_set(f"{DIRECTIVE}.Dimensions", []), "not a non-empty array of DimensionSets"),
        (_set(f"{DIRECTIVE}.Dimensions", [["requestId", "missing"]]), "'missing', which the root node does not hold"),
        (_delete("time"), "'time', which the root node does not hold"),
        (_set("time", "100"), "is not a number"),
        (_set("time", True), "is not a number"),
        (_set("time", [1, "2"]), "is not an array of numbers"),
        (_set("time", float("nan")), "is not a number"),
        (_set(f"{DIRECTIVE}.Namespace", "two\nlines"), "one-line string"),
        (_set(f"{DIRECTIVE}.Metrics.0", {"Name": "time", "StorageResolution": True}), "is not 1 or 60"),
        (_delete("_aws.Timestamp"), "_aws has no Timestamp"),
        (_set("_aws.Timestamp", "1574109732004"), "not a non-negative integer"),
    ],
)
def test_other_bad_lines_are_caught(change, expected):
    line = copy.deepcopy(SPEC_EXAMPLE)
    change(line)
    assert any(expected in problem for problem in emf_problems(line)), emf_problems(line)


def test_a_line_that_is_not_an_object_is_one_problem():
    assert len(emf_problems(["_aws"])) == 1  # type: ignore[arg-type]
