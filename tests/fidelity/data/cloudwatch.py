"""CloudWatch: metric alarms and dashboards.

Sources: terraform-provider-aws (tpa) internal/service/cloudwatch (metric_alarm.go, dashboard.go,
validate.go, consts.go) and the AWS CloudWatch API reference (PutMetricAlarm, MetricDataQuery,
MetricStat, Metric, PutDashboard) with its Dashboard Body Structure and Syntax page
(docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html).

A metric alarm's queries (`metricQueries[]`) hold either an `expression` or a `metric`, so the rules
on their fields are `Inside` checks on each query rather than paths through it.

Not here, as they are rules over two fields, which a Field cannot express: datapointsToAlarm <=
evaluationPeriods (PutMetricAlarm DatapointsToAlarm, the M of "M out of N"), and period x
evaluationPeriods <= 86,400 s when the period is under an hour, 604,800 s otherwise (PutMetricAlarm Period).
"""

from __future__ import annotations

import math
from typing import Any

from tests.fidelity.rules import (
    AnyOf,
    Between,
    Count,
    Field,
    ForceNew,
    Inside,
    Json,
    MultipleOf,
    OneOf,
    Pattern,
    Satisfies,
)

METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"

# tpa cloudwatch/metric_alarm.go `period`: validation.Any(IntInSlice([]int{10, 20, 30}), IntDivisibleBy(60)).
PERIOD = AnyOf((OneOf((10, 20, 30)), MultipleOf(60)))
# tpa metric_alarm.go `statistic`: enum.Validate[types.Statistic]().
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
# tpa metric_alarm.go `extended_statistic` and `metric_query.metric.stat` (the same regexp): percentiles
# p0-p100 with up to two decimals, trimmed mean/count/sum and winsorized mean (tm/tc/ts/wm + percentile,
# or TM/TC/TS/WM/PR(a:b) with values or percentages), and IQM.
EXTENDED_STATISTIC = Pattern(
    r"((p|(tm)|(wm)|(tc)|(ts))((\d{1,2}(\.\d{1,2})?)|(100))|(IQM)|(((TM)|(WM)|(PR)|(TC)|(TS)))"
    r"\((\d+(\.\d+)?%?)?:(\d+(\.\d+)?%?)?\))"
)
# AWS Metric Namespace: 1-255 characters, pattern [^:].* (no leading colon). tpa's StringMatch(`[^:].*`)
# is unanchored in Go and so lets a leading colon through; AWS does not.
NAMESPACE = Pattern(r"[^:].{0,254}")
METRIC_NAME = Pattern(r".{1,255}")  # tpa metric_alarm.go metric_name StringLenBetween(1, 255)
AT_MOST_30_DIMENSIONS = Count(0, 30)  # AWS Metric Dimensions: Array Members: maximum number of 30 items

ALARM_ARN = "arn:aws:sns:eu-west-1:123456789012:restdemo-dev-alarms"


def _query(**metric: Any) -> dict:
    """A metric query (for the bad variants) whose `metric` has these fields changed."""
    return {
        "id": "m1",
        "returnData": False,
        "metric": {
            "namespace": "AWS/ApplicationELB",
            "metricName": "RequestCount",
            "dimensions": {"LoadBalancer": "app/web/0123456789abcdef"},
            "stat": "Sum",
            "period": 60,
            **metric,
        },
    }


def _one_query_returns_data(queries: Any) -> str | None:
    returning = [query.get("id") for query in queries if query.get("returnData")]
    if len(returning) != 1:
        return f"has {len(returning)} queries with returnData true ({', '.join(map(str, returning))}), not exactly one"
    return None


# --- dashboard body (Dashboard Body Structure and Syntax) ------------------------------------------

# The widget types the page documents (its sections: log, metric, metrics explorer, alarm status, and
# the text widget of its examples).
WIDGET_TYPES = ("metric", "text", "log", "alarm", "explorer")


def _widgets(body: Any) -> list:
    return body.get("widgets") if isinstance(body, dict) and isinstance(body.get("widgets"), list) else []


def _body_has_widgets(body: Any) -> str | None:
    """A JSON object with a `widgets` array of at most 500 widgets (the page: "It can include an array of
    between 0 and 500 widget objects ... The dashboard must include a widgets array, but that array can be
    empty")."""
    if not isinstance(body, dict):
        return "is not a JSON object"
    if not isinstance(body.get("widgets"), list):
        return "has no widgets array"
    if len(body["widgets"]) > 500:
        return f"has {len(body['widgets'])} widgets, more than 500"
    return None


def _widget_types(body: Any) -> str | None:
    """Each widget an object with a documented `type` and a `properties` object (both required)."""
    for index, widget in enumerate(_widgets(body)):
        if not isinstance(widget, dict):
            return f"widgets[{index}] is not an object"
        if widget.get("type") not in WIDGET_TYPES:
            return f"widgets[{index}].type {widget.get('type')!r} is not one of {', '.join(WIDGET_TYPES)}"
        if not isinstance(widget.get("properties"), dict):
            return f"widgets[{index}] has no properties object"
    return None


def _metric_arrays(body: Any) -> str | None:
    """A metric widget's `properties.metrics` is an array of arrays, each "[Namespace, MetricName,
    [{DimensionName,DimensionValue}...] {Rendering Properties Object}]": strings, optionally ending with
    one options object (an expression is an array holding only that object)."""
    for index, widget in enumerate(_widgets(body)):
        if not isinstance(widget, dict) or widget.get("type") != "metric":
            continue
        properties = widget.get("properties") if isinstance(widget.get("properties"), dict) else {}
        if "metrics" not in properties:
            continue
        metrics = properties["metrics"]
        if not isinstance(metrics, list):
            return f"widgets[{index}].properties.metrics is not an array"
        for number, metric in enumerate(metrics):
            where = f"widgets[{index}].properties.metrics[{number}]"
            if not isinstance(metric, list) or not metric:
                return f"{where} is not a non-empty array"
            names, last = (metric[:-1], metric[-1]) if isinstance(metric[-1], dict) else (metric, None)
            if not all(isinstance(name, str) for name in names):
                return f"{where} has a non-string before its end (only the last item may be an options object)"
            if last is None and len(names) < 2:
                return f"{where} names no namespace and metric"
    return None


FIELDS = [
    Field(
        METRIC_ALARM, "name", Pattern(r".{1,255}"), "tpa cloudwatch/metric_alarm.go StringLenBetween(1, 255)", "r" * 256
    ),
    Field(
        METRIC_ALARM,
        "alarmDescription",
        Pattern(r"(?s).{0,1024}"),
        "tpa cloudwatch/metric_alarm.go alarm_description StringLenBetween(0, 1024)",
        "d" * 1025,
    ),
    Field(
        METRIC_ALARM,
        "comparisonOperator",
        OneOf(
            (
                "GreaterThanOrEqualToThreshold",
                "GreaterThanThreshold",
                "LessThanThreshold",
                "LessThanOrEqualToThreshold",
                "LessThanLowerOrGreaterThanUpperThreshold",
                "LessThanLowerThreshold",
                "GreaterThanUpperThreshold",
            )
        ),
        "tpa cloudwatch/metric_alarm.go enum.Validate[types.ComparisonOperator]()",
        "GreaterThan",
    ),
    Field(
        METRIC_ALARM,
        "treatMissingData",
        OneOf(("breaching", "notBreaching", "ignore", "missing")),
        "tpa cloudwatch/consts.go missingData_Values; CloudWatch PutMetricAlarm TreatMissingData",
        "zero",
    ),
    Field(
        METRIC_ALARM,
        "evaluationPeriods",
        Between(1, math.inf),
        "tpa cloudwatch/metric_alarm.go evaluation_periods IntAtLeast(1)",
        0,
    ),
    Field(
        METRIC_ALARM,
        "datapointsToAlarm",
        Between(1, math.inf),
        "tpa cloudwatch/metric_alarm.go datapoints_to_alarm IntAtLeast(1)",
        0,
    ),
    Field(
        METRIC_ALARM,
        "alarmActions",
        Count(0, 5),
        "CloudWatch PutMetricAlarm AlarmActions: maximum number of 5 items",
        [f"{ALARM_ARN}-{n}" for n in range(6)],
    ),
    Field(
        METRIC_ALARM,
        "okActions",
        Count(0, 5),
        "tpa cloudwatch/metric_alarm.go ok_actions MaxItems: 5",
        [f"{ALARM_ARN}-{n}" for n in range(6)],
    ),
    # A single-metric alarm.
    Field(METRIC_ALARM, "namespace", NAMESPACE, "CloudWatch PutMetricAlarm Namespace: 1-255, [^:].*", ":Custom"),
    Field(
        METRIC_ALARM,
        "metricName",
        METRIC_NAME,
        "tpa cloudwatch/metric_alarm.go metric_name StringLenBetween(1, 255)",
        "m" * 256,
    ),
    Field(
        METRIC_ALARM,
        "period",
        PERIOD,
        "tpa cloudwatch/metric_alarm.go period Any(IntInSlice(10, 20, 30), IntDivisibleBy(60)); "
        "CloudWatch PutMetricAlarm Period: 10, 20, 30, or any multiple of 60",
        45,
    ),
    Field(
        METRIC_ALARM,
        "statistic",
        OneOf(STATISTICS),
        "tpa cloudwatch/metric_alarm.go enum.Validate[types.Statistic]() (percentiles go in extendedStatistic)",
        "p99",
    ),
    Field(
        METRIC_ALARM,
        "extendedStatistic",
        EXTENDED_STATISTIC,
        "tpa cloudwatch/metric_alarm.go extended_statistic StringMatch(p|tm|wm|tc|ts NN.NN, IQM, TM|WM|PR|TC|TS(a:b))",
        "p99.999",
    ),
    Field(
        METRIC_ALARM,
        "dimensions",
        AT_MOST_30_DIMENSIONS,
        "CloudWatch PutMetricAlarm Dimensions: maximum number of 30 items",
        {f"Dimension{n}": "value" for n in range(31)},
    ),
    # A metric-math alarm: every query, and the metric of those that fetch one.
    Field(
        METRIC_ALARM,
        "metricQueries",
        Satisfies(_one_query_returns_data),
        "CloudWatch PutMetricAlarm Metrics / MetricDataQuery ReturnData: true for the one result the alarm "
        "watches, false for every other metric and expression",
        [{**_query(), "returnData": True}, {"id": "e1", "expression": "m1 * 2", "returnData": True}],
    ),
    Field(
        METRIC_ALARM,
        "metricQueries[]",
        Inside("id", Pattern(r"[a-z][0-9A-Za-z_]{0,254}")),
        "CloudWatch MetricDataQuery Id: 1-255, letters, numbers and underscore, first a lowercase letter",
        {**_query(), "id": "M1"},
    ),
    Field(
        METRIC_ALARM,
        "metricQueries[]",
        Inside("expression", Pattern(r"(?s).{1,1024}")),
        "tpa cloudwatch/metric_alarm.go metric_query.expression StringLenBetween(1, 1024)",
        {"id": "e1", "expression": "m1 + " * 205 + "m1", "returnData": True},
    ),
    Field(
        METRIC_ALARM,
        "metricQueries[]",
        Inside("metric.namespace", NAMESPACE),
        "CloudWatch Metric Namespace: 1-255, [^:].*",
        _query(namespace=":Custom"),
    ),
    Field(
        METRIC_ALARM,
        "metricQueries[]",
        Inside("metric.metricName", METRIC_NAME),
        "tpa cloudwatch/metric_alarm.go metric_query.metric.metric_name StringLenBetween(1, 255)",
        _query(metricName="m" * 256),
    ),
    Field(
        METRIC_ALARM,
        "metricQueries[]",
        # tpa also takes 1 and 5 here (MetricStat's high-resolution periods), but an alarm evaluates
        # only 10, 20, 30 or whole minutes (PutMetricAlarm Period).
        Inside("metric.period", PERIOD),
        "CloudWatch PutMetricAlarm Period: 10, 20, 30, or any multiple of 60, for each metric in Metrics "
        "(tpa metric_query.metric.period Any(IntInSlice(1, 5, 10, 20, 30), IntDivisibleBy(60)))",
        _query(period=45),
    ),
    Field(
        METRIC_ALARM,
        "metricQueries[]",
        Inside("metric.stat", AnyOf((OneOf(STATISTICS), EXTENDED_STATISTIC))),
        "tpa cloudwatch/metric_alarm.go metric_query.metric.stat AnyDiag(types.Statistic, the extended "
        "statistic regexp); CloudWatch MetricStat Stat: any statistic or extended statistic",
        _query(stat="Median"),
    ),
    Field(
        METRIC_ALARM,
        "metricQueries[]",
        Inside("metric.dimensions", AT_MOST_30_DIMENSIONS),
        "CloudWatch Metric Dimensions: maximum number of 30 items",
        _query(dimensions={f"Dimension{n}": "value" for n in range(31)}),
    ),
    # Dashboards.
    Field(
        DASHBOARD,
        "dashboardName",
        Pattern(r"[0-9A-Za-z_-]{1,255}"),
        "tpa cloudwatch/validate.go validDashboardName: at most 255, ^[0-9A-Za-z_-]+$",
        "restdemo dev",
    ),
    Field(
        DASHBOARD,
        "dashboardBody",
        Json(_body_has_widgets),
        "tpa cloudwatch/dashboard.go validation.StringIsJSON; Dashboard Body Structure: a widgets array of 0-500",
        '{"widget": []}',
    ),
    Field(
        DASHBOARD,
        "dashboardBody",
        Json(_widget_types),
        "Dashboard Body Structure: widgets' type (metric, text, log, alarm, explorer) and properties are required",
        '{"widgets": [{"type": "graph", "properties": {}}]}',
    ),
    Field(
        DASHBOARD,
        "dashboardBody",
        Json(_metric_arrays),
        "Dashboard Body Structure: Metric Widget, Format for Each Metric in the Array",
        '{"widgets": [{"type": "metric", "properties": {"metrics": '
        '[["AWS/ApplicationELB", "RequestCount", {"stat": "Sum"}, "LoadBalancer", "app/web/1"]]}}]}',
    ),
]


FORCE_NEW = [
    ForceNew(METRIC_ALARM, ("name",), "tpa cloudwatch/metric_alarm.go: alarm_name ForceNew"),
    ForceNew(DASHBOARD, ("dashboardName",), "tpa cloudwatch/dashboard.go: dashboard_name ForceNew", "dashboardName"),
]
