"""CloudWatch embedded metric format (EMF): the rules a structured log line must follow for CloudWatch
Logs to extract metrics from it, as checks on one parsed JSON line.

Source: the specification, https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
(its text and its JSON schema), and where it defers to CloudWatch, the CloudWatch API reference.

This is not one of the tables the fidelity tier runs over the stacks: it is for the node agent's log
lines. `emf_problems(line)` lists what is wrong with one line; an empty list means CloudWatch can
extract its metrics.

Not checked: the size of a log event (the specification's limit is that of a CloudWatch Logs event),
and the age of the timestamp CloudWatch accepts (the client libraries' two weeks back, two hours ahead).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SPEC = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html"

# CloudWatch StandardUnit (MetricDatum Unit), the specification's "valid CloudWatch metric units" and
# its schema's MetricUnit pattern.
UNITS = (
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
)
MAX_DIMENSIONS_PER_SET = 30
MAX_METRICS_PER_DIRECTIVE = 100
MAX_VALUES_PER_METRIC = 100
# 10^11 ms is March 1973: a timestamp below it is seconds (1.7 x 10^9 today), not milliseconds.
EARLIEST_MILLISECONDS = 10**11


@dataclass(frozen=True)
class EmfRule:
    what: str
    source: str
    problems: Callable[[dict], list[str]]


def _metadata(line: dict) -> dict:
    return line["_aws"] if isinstance(line.get("_aws"), dict) else {}


def _directives(line: dict) -> list[tuple[str, dict]]:
    """The well-formed MetricDirectives, with where each is; the malformed ones are another rule's."""
    directives = _metadata(line).get("CloudWatchMetrics")
    if not isinstance(directives, list):
        return []
    return [(f"_aws.CloudWatchMetrics[{n}]", d) for n, d in enumerate(directives) if isinstance(d, dict)]


def _dimension_sets(line: dict) -> list[tuple[str, list]]:
    return [
        (f"{where}.Dimensions[{n}]", dimension_set)
        for where, directive in _directives(line)
        if isinstance(directive.get("Dimensions"), list)
        for n, dimension_set in enumerate(directive["Dimensions"])
        if isinstance(dimension_set, list)
    ]


def _metric_definitions(line: dict) -> list[tuple[str, dict]]:
    return [
        (f"{where}.Metrics[{n}]", definition)
        for where, directive in _directives(line)
        if isinstance(directive.get("Metrics"), list)
        for n, definition in enumerate(directive["Metrics"])
        if isinstance(definition, dict)
    ]


def _is_string(value: Any, longest: int = 255) -> bool:
    """The schema's strings: "pattern": "^(.*)$" (one line), "minLength": 1, "maxLength": 255."""
    return isinstance(value, str) and 1 <= len(value) <= longest and "\n" not in value and "\r" not in value


def _is_number(value: Any) -> bool:
    # A JSON number (RFC 8259, to which the specification defers): not a boolean, and finite.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- the rules -----------------------------------------------------------------------------------


def _has_metadata(line: dict) -> list[str]:
    if "_aws" not in line:
        return ["no _aws member on the root node"]
    return [] if isinstance(line["_aws"], dict) else [f"_aws = {line['_aws']!r} is not an object"]


def _timestamp_is_integer(line: dict) -> list[str]:
    metadata = _metadata(line)
    if not metadata:
        return []
    if "Timestamp" not in metadata:
        return ["_aws has no Timestamp"]
    timestamp = metadata["Timestamp"]
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0:
        return [f"_aws.Timestamp = {timestamp!r} is not a non-negative integer"]
    return []


def _timestamp_is_milliseconds(line: dict) -> list[str]:
    timestamp = _metadata(line).get("Timestamp")
    if isinstance(timestamp, int) and not isinstance(timestamp, bool) and 0 <= timestamp < EARLIEST_MILLISECONDS:
        return [f"_aws.Timestamp = {timestamp} is seconds, not milliseconds after the epoch"]
    return []


def _has_directives(line: dict) -> list[str]:
    metadata = _metadata(line)
    if not metadata:
        return []
    directives = metadata.get("CloudWatchMetrics")
    if not isinstance(directives, list):
        return [f"_aws.CloudWatchMetrics = {directives!r} is not an array of MetricDirectives"]
    return [
        f"_aws.CloudWatchMetrics[{n}] = {directive!r} is not an object"
        for n, directive in enumerate(directives)
        if not isinstance(directive, dict)
    ]


def _namespace(line: dict) -> list[str]:
    return [
        f"{where}.Namespace = {directive.get('Namespace')!r} is not a one-line string of 1-255 characters"
        for where, directive in _directives(line)
        if not _is_string(directive.get("Namespace"))
    ]


def _namespace_has_no_leading_colon(line: dict) -> list[str]:
    return [
        f"{where}.Namespace = {directive['Namespace']!r} starts with a colon"
        for where, directive in _directives(line)
        if isinstance(directive.get("Namespace"), str) and directive["Namespace"].startswith(":")
    ]


def _dimensions(line: dict) -> list[str]:
    problems = []
    for where, directive in _directives(line):
        dimensions = directive.get("Dimensions")
        if not isinstance(dimensions, list) or not dimensions:
            problems.append(f"{where}.Dimensions = {dimensions!r} is not a non-empty array of DimensionSets")
            continue
        problems += [
            f"{where}.Dimensions[{n}] = {dimension_set!r} is not an array of dimension names"
            for n, dimension_set in enumerate(dimensions)
            if not isinstance(dimension_set, list)
        ]
    for where, dimension_set in _dimension_sets(line):
        if len(dimension_set) > MAX_DIMENSIONS_PER_SET:
            problems.append(f"{where} has {len(dimension_set)} dimensions, more than {MAX_DIMENSIONS_PER_SET}")
        problems += [
            f"{where}[{n}] = {name!r} is not a dimension name of 1-255 characters"
            for n, name in enumerate(dimension_set)
            if not _is_string(name)
        ]
    return problems


def _dimension_targets(line: dict) -> list[str]:
    problems = []
    for where, dimension_set in _dimension_sets(line):
        for name in dimension_set:
            if not isinstance(name, str):
                continue
            if name not in line:
                problems.append(f"{where} names {name!r}, which the root node does not hold")
            elif not isinstance(line[name], str):
                problems.append(f"{name} = {line[name]!r} (a dimension in {where}) is not a string")
    return problems


def _metrics(line: dict) -> list[str]:
    problems = []
    for where, directive in _directives(line):
        metrics = directive.get("Metrics")
        if not isinstance(metrics, list):
            problems.append(f"{where}.Metrics = {metrics!r} is not an array of MetricDefinitions")
            continue
        if len(metrics) > MAX_METRICS_PER_DIRECTIVE:
            problems.append(f"{where}.Metrics has {len(metrics)} metrics, more than {MAX_METRICS_PER_DIRECTIVE}")
        problems += [
            f"{where}.Metrics[{n}] = {definition!r} is not an object"
            for n, definition in enumerate(metrics)
            if not isinstance(definition, dict)
        ]
    return problems


def _metric_name(line: dict) -> list[str]:
    return [
        f"{where}.Name = {definition.get('Name')!r} is not a metric name of 1-255 characters"
        for where, definition in _metric_definitions(line)
        if not _is_string(definition.get("Name"))
    ]


def _metric_targets(line: dict) -> list[str]:
    problems = []
    for where, definition in _metric_definitions(line):
        name = definition.get("Name")
        if not isinstance(name, str):
            continue
        if name not in line:
            problems.append(f"{where} names {name!r}, which the root node does not hold")
            continue
        value = line[name]
        if isinstance(value, list):
            if len(value) > MAX_VALUES_PER_METRIC:
                problems.append(f"{name} holds {len(value)} values, more than {MAX_VALUES_PER_METRIC}")
            if not all(_is_number(item) for item in value):
                problems.append(f"{name} = {value!r} is not an array of numbers")
        elif not _is_number(value):
            problems.append(f"{name} = {value!r} (a metric in {where}) is not a number or an array of numbers")
    return problems


def _unit(line: dict) -> list[str]:
    return [
        f"{where}.Unit = {definition['Unit']!r} is not a CloudWatch unit"
        for where, definition in _metric_definitions(line)
        if "Unit" in definition and definition["Unit"] not in UNITS
    ]


def _storage_resolution(line: dict) -> list[str]:
    return [
        f"{where}.StorageResolution = {definition['StorageResolution']!r} is not 1 or 60"
        for where, definition in _metric_definitions(line)
        if "StorageResolution" in definition
        and (isinstance(definition["StorageResolution"], bool) or definition["StorageResolution"] not in (1, 60))
    ]


RULES = [
    EmfRule("_aws metadata", "Root node: MUST contain the top-level member _aws, a Metadata object", _has_metadata),
    EmfRule(
        "Timestamp",
        "Metadata object: MUST contain Timestamp (schema: integer)",
        _timestamp_is_integer,
    ),
    EmfRule(
        "Timestamp in milliseconds",
        "Metadata object: Timestamp values MUST be milliseconds after Jan 1, 1970 00:00:00 UTC",
        _timestamp_is_milliseconds,
    ),
    EmfRule(
        "CloudWatchMetrics",
        "Metadata object: MUST contain CloudWatchMetrics, an array of MetricDirective objects",
        _has_directives,
    ),
    EmfRule(
        "Namespace",
        "MetricDirective: MUST contain Namespace (schema: string, ^(.*)$, 1-255)",
        _namespace,
    ),
    EmfRule(
        "Namespace without a leading colon",
        "CloudWatch Metric Namespace pattern [^:].* (the namespace the metrics are published in)",
        _namespace_has_no_leading_colon,
    ),
    EmfRule(
        "Dimensions",
        "MetricDirective: MUST contain Dimensions, a DimensionSet array (schema: minItems 1); a DimensionSet "
        f"MUST NOT contain more than {MAX_DIMENSIONS_PER_SET} dimension keys (schema: strings, 1-255)",
        _dimensions,
    ),
    EmfRule(
        "dimension targets",
        "DimensionSet: its values MUST also be members on the root node; the target member MUST have a string value",
        _dimension_targets,
    ),
    EmfRule(
        "Metrics",
        "MetricDirective: MUST contain Metrics, an array of MetricDefinition objects; it MUST NOT contain more "
        f"than {MAX_METRICS_PER_DIRECTIVE}",
        _metrics,
    ),
    EmfRule("metric Name", "MetricDefinition: MUST contain Name (schema: string, ^(.*)$, 1-255)", _metric_name),
    EmfRule(
        "metric targets",
        "Target members: a metric target MUST be a numeric value or an array of numeric values; numeric array "
        f"targets MUST NOT have more than {MAX_VALUES_PER_METRIC} members",
        _metric_targets,
    ),
    EmfRule("Unit", "MetricDefinition: Unit, OPTIONAL, SHOULD be a valid CloudWatch unit (MetricDatum)", _unit),
    EmfRule(
        "StorageResolution",
        "MetricDefinition: StorageResolution, OPTIONAL, 1 (high resolution) or 60 (MetricDatum StorageResolution)",
        _storage_resolution,
    ),
]


def emf_problems(line: dict) -> list[str]:
    """What keeps CloudWatch from extracting the metrics of one parsed log line, each with its rule."""
    if not isinstance(line, dict):
        return [f"the log event is not a JSON object [Root node: MUST be a valid JSON object; {SPEC}]"]
    return [f"{problem} [{rule.source}]" for rule in RULES for problem in rule.problems(line)]
