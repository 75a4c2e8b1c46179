"""EventBridge (Pulumi's `aws:cloudwatch` event rules and targets).

Sources: terraform-provider-aws (tpa) internal/service/events (rule.go, target.go, validate.go,
consts.go), the AWS EventBridge API reference (PutRule, InputTransformer) and the EventBridge user
guide's event patterns (docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-arrays.html).
"""

from __future__ import annotations

import json
from typing import Any

from tests.fidelity.rules import Count, Field, ForceNew, Json, Pattern

EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"

# tpa events/validate.go validateRuleName: at most 64, ^[0-9A-Za-z_.-]+$ (AWS PutRule Name: 1-64).
RULE_NAME = Pattern(r"[0-9A-Za-z_.-]{1,64}")


def _pattern_problem(pattern: Any, where: str = "") -> str | None:
    """A JSON object whose fields hold arrays of values to match (the user guide: "The value of each field
    in an event pattern is an array containing one or more values"), or objects matching nested fields;
    `$or` holds an array of such patterns."""
    if not isinstance(pattern, dict):
        return f"{where or 'the pattern'} is not a JSON object"
    for key, value in pattern.items():
        here = f"{where}.{key}".lstrip(".")
        if key == "$or":
            if not isinstance(value, list) or not value:
                return f"{here} is not a non-empty array of patterns"
            for index, alternative in enumerate(value):
                if problem := _pattern_problem(alternative, f"{here}[{index}]"):
                    return problem
        elif isinstance(value, dict):
            if problem := _pattern_problem(value, here):
                return problem
        elif not isinstance(value, list) or not value:
            return f"{here} = {value!r} is not an array of values to match"
    return None


def _normalized_length(pattern: Any) -> str | None:
    """tpa rule.go validateEventPatternValue: the pattern as the provider sends it (re-marshalled compact,
    with <, > and & unescaped) may not be longer than 4096 characters."""
    normalized = json.dumps(pattern, separators=(",", ":"), ensure_ascii=False)
    return None if len(normalized) <= 4096 else f"is {len(normalized)} characters normalized, more than 4096"


FIELDS = [
    Field(EVENT_RULE, "name", RULE_NAME, "tpa events/validate.go validateRuleName", "restdemo dev autoscaling"),
    Field(
        EVENT_RULE,
        "description",
        Pattern(r"(?s).{0,512}"),
        "tpa events/rule.go description StringLenBetween(0, 512)",
        "d" * 513,
    ),
    Field(
        EVENT_RULE,
        "eventPattern",
        Json(_pattern_problem),
        "tpa events/rule.go validateEventPatternValue (valid JSON); EventBridge event patterns: each field's "
        "value an array of one or more values",
        '{"source": "aws.autoscaling"}',
    ),
    Field(
        EVENT_RULE,
        "eventPattern",
        Json(_normalized_length),
        "tpa events/rule.go validateEventPatternValue maxJSONLength 4096; AWS PutRule EventPattern: at most 4096",
        json.dumps(
            {"source": ["aws.autoscaling"], "detail": {"AutoScalingGroupName": [f"group-{n}" for n in range(400)]}}
        ),
    ),
    Field(EVENT_TARGET, "rule", RULE_NAME, "tpa events/target.go rule validateRuleName", "restdemo dev autoscaling"),
    Field(
        EVENT_TARGET,
        "inputTransformer.inputPaths",
        Count(0, 100),
        "tpa events/target.go input_paths MapSizeAtMost(targetInputTransformerMaxInputPaths = 100)",
        {f"value{n}": "$.detail" for n in range(101)},
    ),
    Field(
        EVENT_TARGET,
        "inputTransformer.inputPaths{keys}",
        Pattern(r"(?!AWS)[A-Za-z0-9_-]{1,256}"),
        "tpa events/target.go input_paths MapKeyNoMatch(^AWS.*$); AWS InputTransformer InputPathsMap key "
        "1-256, [A-Za-z0-9\\_\\-]+",
        "AWS.group",
    ),
    Field(
        EVENT_TARGET,
        "inputTransformer.inputPaths{}",
        Pattern(r"(?s).{0,256}"),
        "AWS InputTransformer InputPathsMap value (TargetInputPath): at most 256",
        "$.detail." + "a" * 256,
    ),
    Field(
        EVENT_TARGET,
        "inputTransformer.inputTemplate",
        Pattern(r"(?s).{1,8192}"),
        "tpa events/target.go input_template StringLenBetween(1, 8192); AWS InputTransformer InputTemplate 1-8192",
        "x" * 8193,
    ),
]


FORCE_NEW = [
    ForceNew(EVENT_RULE, ("name", "eventBusName"), "tpa events/rule.go: name, event_bus_name ForceNew"),
]
