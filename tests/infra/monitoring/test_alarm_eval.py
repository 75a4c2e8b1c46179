"""tests/support/alarm_eval.py against the examples in AWS's CloudWatch documentation.

Each test names the page it reproduces. Where the live page's text could not be read whole, the
text is AWS's Markdown source of the same guide (SOURCE, its last revision before it was
archived); the module's docstring says which page says what.
"""

from __future__ import annotations

import json

import pytest

from tests.support.alarm_eval import (
    ALARM,
    INSUFFICIENT_DATA,
    OK,
    Alarm,
    Datapoint,
    evaluate,
    evaluation_times,
    first_alarm,
    from_emf,
    period_values,
)

pytestmark = pytest.mark.unit

MISSING_DOC = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-missing-data.html"
SOURCE = (
    "https://github.com/awsdocs/amazon-cloudwatch-user-guide/blob/"
    "b35549706cab03cdcd0a8df9956a2381c0315642/doc_source/AlarmThatSendsEmail.md"
)
SOURCE_2019 = (
    "https://github.com/awsdocs/amazon-cloudwatch-user-guide/blob/"
    "d444eedf50fd3127aa855ae3c8d51bb0b7cba8dd/doc_source/AlarmThatSendsEmail.md"
)

T = 1_700_001_000.0  # an evaluation time: a whole minute, and a multiple of 300 s
RETAIN = "retain current state"
TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")  # the tables' columns, in their order


def metric_alarm(**inputs) -> Alarm:
    """A single-metric alarm's inputs as a Pulumi mock sees them: camelCase, numbers as floats."""
    base = {
        "name": "test-alarm",
        "namespace": "Test",
        "metricName": "Errors",
        "dimensions": {"Service": "web"},
        "statistic": "Maximum",
        "period": 60.0,
        "evaluationPeriods": 1.0,
        "threshold": 1.0,
        "comparisonOperator": "GreaterThanOrEqualToThreshold",
    }
    return Alarm.from_inputs(base | inputs)


def point(timestamp: float, value: float, metric: str = "Errors", **dimensions: str) -> Datapoint:
    return Datapoint(timestamp, value, metric, "Test", dimensions or {"Service": "web"}, None)


# --- "How alarm state is evaluated when data is missing": the two tables -------------------------

# Data points (oldest first), then the state for MISSING, IGNORE, BREACHING, NOT BREACHING.
TABLE_3_OF_3 = [
    ("0 - X - X", OK, OK, OK, OK),
    ("0 - - - -", OK, OK, OK, OK),
    ("- - - - -", INSUFFICIENT_DATA, RETAIN, ALARM, OK),
    ("0 X X - X", ALARM, ALARM, ALARM, ALARM),
    ("- - X - -", ALARM, RETAIN, ALARM, OK),
]
TABLE_2_OF_3 = [
    ("0 - X - X", ALARM, ALARM, ALARM, ALARM),
    ("0 0 X 0 X", ALARM, ALARM, ALARM, ALARM),
    ("0 - X - -", OK, OK, ALARM, OK),
    ("- - - - 0", OK, OK, ALARM, OK),
    ("- - - X -", ALARM, RETAIN, ALARM, OK),
]
# The row both tables had until 2019 (SOURCE_2019), which the 2023 text describes only as not ALARM.
ROW_2019 = ("- - - - X", INSUFFICIENT_DATA, RETAIN, ALARM, OK)


def row_datapoints(row: str) -> list[Datapoint]:
    """The row's 5 periods of 5 minutes ending at T: 0 a non-breaching value, X a breaching one, - none."""
    marks = row.split()
    assert len(marks) == 5
    return [point(T - (5 - k) * 300 + 30, {"0": 0.0, "X": 5.0}[mark]) for k, mark in enumerate(marks) if mark != "-"]


def table_alarm(datapoints_to_alarm: int, treatment: str) -> Alarm:
    # "the Period is again set to 5 minutes"; Evaluation Periods 3; the range is then 5 datapoints.
    return metric_alarm(
        period=300.0, evaluationPeriods=3.0, datapointsToAlarm=float(datapoints_to_alarm), treatMissingData=treatment
    )


def expectations(row: tuple) -> list[tuple[str, str, str]]:
    return [(row[0], treatment, state) for treatment, state in zip(TREATMENTS, row[1:], strict=True)]


def assert_row(datapoints_to_alarm: int, data: str, treatment: str, state: str) -> None:
    alarm = table_alarm(datapoints_to_alarm, treatment)
    datapoints = row_datapoints(data)
    if state == RETAIN:
        for before in (OK, ALARM, INSUFFICIENT_DATA):
            assert evaluate(alarm, datapoints, T, T, initial_state=before) == [(T, before)]
    else:
        for before in (OK, ALARM, INSUFFICIENT_DATA):
            assert evaluate(alarm, datapoints, T, T, initial_state=before) == [(T, state)]


@pytest.mark.parametrize(("data", "treatment", "state"), [e for row in TABLE_3_OF_3 for e in expectations(row)])
def test_the_table_for_3_out_of_3(data, treatment, state):
    """MISSING_DOC, first table (Datapoints to Alarm and Evaluation Periods 3, range 5); SOURCE."""
    assert_row(3, data, treatment, state)


@pytest.mark.parametrize(("data", "treatment", "state"), [e for row in TABLE_2_OF_3 for e in expectations(row)])
def test_the_table_for_2_out_of_3(data, treatment, state):
    """MISSING_DOC, second table (a 2 out of 3, M out of N alarm, range 5); SOURCE."""
    assert_row(2, data, treatment, state)


@pytest.mark.parametrize("datapoints_to_alarm", [3, 2])
@pytest.mark.parametrize(("data", "treatment", "state"), expectations(ROW_2019))
def test_the_row_the_tables_had_until_2019(datapoints_to_alarm, data, treatment, state):
    """SOURCE_2019, both tables' last row: one breaching datapoint, the newest, with nothing before it."""
    assert_row(datapoints_to_alarm, data, treatment, state)


@pytest.mark.parametrize(("data", "state"), [("- - - - X", INSUFFICIENT_DATA), ("- - - X -", INSUFFICIENT_DATA)])
def test_a_recent_lone_breach_is_not_a_premature_alarm(data, state):
    """MISSING_DOC, "Avoiding premature transitions to alarm state": with Datapoints to Alarm 3 the alarm
    does not go to ALARM on `- - - - X` or `- - - X -` (the state, INSUFFICIENT_DATA, is SOURCE_2019's)..."""
    assert evaluate(table_alarm(3, "missing"), row_datapoints(data), T, T) == [(T, state)]


@pytest.mark.parametrize("data", ["- - - X 0", "- - X - 0"])
def test_the_next_good_datapoint_avoids_the_false_positive(data):
    """... so that a non-breaching next datapoint (`- - - X O`, `- - X - O`) leaves it OK (MISSING_DOC)."""
    assert evaluate(table_alarm(3, "missing"), row_datapoints(data), T, T) == [(T, OK)]


def test_row_2_goes_to_alarm_once_its_good_datapoint_leaves_the_range():
    """MISSING_DOC: in the first table's second row, breaching, "The next time this alarm is evaluated,
    if the data is still missing it will go to ALARM, as that non-breaching data point will no longer
    be in the evaluation range". Here the datapoint opens the oldest period at T; at T+60 the sliding
    range has passed it."""
    alarm = table_alarm(3, "breaching")
    datapoints = [point(T - 5 * 300, 0.0)]
    assert evaluate(alarm, datapoints, T, T + 60) == [(T, OK), (T + 60, ALARM)]


def test_the_last_datapoints_are_evaluated_again_after_the_metric_stops():
    """MISSING_DOC, Note: alarms "might repeatedly re-evaluate the last set of data points for a period
    of time after the metric has stopped flowing". Three breaching minutes, then nothing (3 of 3, range 5):
    ALARM until the premature-transition rule no longer holds, then, all missing, INSUFFICIENT_DATA."""
    alarm = metric_alarm(evaluationPeriods=3.0)
    datapoints = [point(T + k * 60 + 5, 5.0) for k in range(3)]
    states = evaluate(alarm, datapoints, T + 180, T + 480)
    assert states == [
        (T + 180, ALARM),
        (T + 240, ALARM),
        (T + 300, ALARM),
        (T + 360, ALARM),  # X X - - -: the oldest breaching is 5 periods old
        (T + 420, ALARM),  # X - - - -
        (T + 480, INSUFFICIENT_DATA),
    ]


def test_dynamodb_alarms_ignore_missing_data():
    """MISSING_DOC, Important: alarms on AWS/DynamoDB metrics "always ignore missing data even if you
    choose a different option"."""
    alarm = metric_alarm(namespace="AWS/DynamoDB", treatMissingData="breaching")
    assert evaluate(alarm, [], T, T, initial_state=OK) == [(T, OK)]
    assert evaluate(metric_alarm(treatMissingData="breaching"), [], T, T, initial_state=OK) == [(T, ALARM)]


# --- Evaluation: periods, when, and M out of N ----------------------------------------------------

EVALUATION_DOC = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-evaluation.html"
CONCEPTS_DOC = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html"


def test_a_period_includes_its_start_and_not_its_end():
    """CONCEPTS_DOC, Periods: statistics "are stamped with the time corresponding to the beginning of
    the period"; GetMetricStatistics: StartTime inclusive, EndTime exclusive. 60 s periods fall on minutes."""
    alarm = metric_alarm(statistic="Sum")
    datapoints = [point(T - 60, 1.0), point(T - 0.001, 1.0), point(T, 1.0)]
    assert period_values(alarm, datapoints, T) == [(T - 60, 2.0)]
    assert period_values(alarm, datapoints, T + 60) == [(T, 1.0)]


def test_a_five_minute_period_slides_by_a_minute():
    """EVALUATION_DOC: "if the Period is 5 minutes (300 seconds) and Evaluation Periods is 1, then at the
    end of minute 5 the alarm evaluates based on data from minutes 1 to 5. Then at the end of minute 6
    ... minutes 2 to 6" (the default SlidingWindow, alarm-evaluation-window.html): not periods aligned to
    multiples of 300 s."""
    alarm = metric_alarm(period=300.0, statistic="Maximum")
    minute_1, minute_6 = T + 10, T + 5 * 60 + 10
    datapoints = [point(minute_1, 5.0), point(minute_6, 0.0)]
    assert period_values(alarm, datapoints, T + 300) == [(T, 5.0)]
    assert period_values(alarm, datapoints, T + 360) == [(T + 60, 0.0)]
    assert evaluate(alarm, datapoints, T + 300, T + 360) == [(T + 300, ALARM), (T + 360, OK)]


def test_how_often_an_alarm_is_evaluated():
    """EVALUATION_DOC: every minute for periods of a minute or more, every 10 s for 10, 20 or 30 s
    periods, once an hour when Evaluation Periods x Period exceeds a day; here on whole minutes."""
    assert evaluation_times(metric_alarm(period=300.0), T + 1, T + 130) == [T + 60, T + 120]
    assert evaluation_times(metric_alarm(period=10.0), T, T + 30) == [T, T + 10, T + 20, T + 30]
    day_long = metric_alarm(period=3600.0, evaluationPeriods=25.0)
    assert evaluation_times(day_long, T, T + 7200) == [1_700_002_800.0, 1_700_006_400.0]


def test_m_out_of_n_needs_m_breaching_datapoints_anywhere_in_the_last_n():
    """EVALUATION_DOC: Datapoints to Alarm breaching datapoints "don't have to be consecutive, but they
    must all be within the last number of data points equal to Evaluation Period"; PutMetricAlarm
    (API_PutMetricAlarm.html): without DatapointsToAlarm it is Evaluation Periods."""
    three_of_five = metric_alarm(evaluationPeriods=5.0, datapointsToAlarm=3.0)
    alternating = [point(T - (5 - k) * 60, v) for k, v in enumerate([5.0, 0.0, 5.0, 0.0, 5.0])]
    two_breaching = [point(T - (5 - k) * 60, v) for k, v in enumerate([5.0, 0.0, 0.0, 0.0, 5.0])]
    assert evaluate(three_of_five, alternating, T, T) == [(T, ALARM)]
    assert evaluate(three_of_five, two_breaching, T, T) == [(T, OK)]
    five_of_five = metric_alarm(evaluationPeriods=5.0)
    assert five_of_five.datapoints_to_alarm == 5
    assert evaluate(five_of_five, alternating, T, T) == [(T, OK)]
    assert first_alarm(three_of_five, alternating, T - 600, T + 600) == T


def test_an_alarm_fires_first_when_the_third_breaching_minute_ends():
    """EVALUATION_DOC (the figure: "when all three datapoints in the most recent three consecutive
    periods are above the threshold, the alarm goes to ALARM state ... At period six, the value dips
    below the threshold ... the alarm state changes back to OK")."""
    alarm = metric_alarm(evaluationPeriods=3.0, threshold=3.0, comparisonOperator="GreaterThanThreshold")
    values = [1.0, 2.0, 4.0, 5.0, 6.0, 2.0, 1.0, 2.0, 4.0, 1.0]
    datapoints = [point(T + k * 60 + 1, v) for k, v in enumerate(values)]
    states = evaluate(alarm, datapoints, T + 60, T + 600)
    assert [state for _, state in states] == [OK] * 4 + [ALARM] + [OK] * 5
    assert first_alarm(alarm, datapoints, T, T + 600) == T + 300


# --- Statistics ---------------------------------------------------------------------------------

STATISTICS_DOC = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Statistics-definitions.html"
LOW_SAMPLES_DOC = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/percentiles-with-low-samples.html"


@pytest.mark.parametrize(
    ("statistic", "value"),
    [("Sum", 20.0), ("Average", 4.0), ("SampleCount", 5.0), ("Minimum", 1.0), ("Maximum", 10.0)],
)
def test_the_statistics_of_one_period(statistic, value):
    """STATISTICS_DOC: SampleCount is the number of datapoints, Sum their sum, Average Sum/SampleCount,
    Minimum and Maximum the lowest and highest value in the period."""
    datapoints = [point(T - 60 + k, v) for k, v in enumerate([1.0, 2.0, 3.0, 4.0, 10.0])]
    assert period_values(metric_alarm(statistic=statistic), datapoints, T) == [(T - 60, value)]


def test_one_period_alarms_on_its_sum_and_not_on_its_average():
    """STATISTICS_DOC, with a threshold of 15 on the same five values (Sum 20, Average 4, SampleCount 5)."""
    datapoints = [point(T - 60 + k, v) for k, v in enumerate([1.0, 2.0, 3.0, 4.0, 10.0])]
    states = {
        statistic: evaluate(metric_alarm(statistic=statistic, threshold=15.0), datapoints, T, T)
        for statistic in ("Sum", "Average", "SampleCount")
    }
    assert states == {"Sum": [(T, ALARM)], "Average": [(T, OK)], "SampleCount": [(T, OK)]}


def test_only_the_alarms_dimensions_count():
    """CONCEPTS_DOC, Dimensions: "CloudWatch treats each unique combination of dimensions as a separate
    metric"; it "does not aggregate across dimensions for your custom metrics"."""
    datapoints = [point(T - 30, 5.0), point(T - 30, 7.0, Service="admin"), point(T - 30, 9.0, Service="web", Node="a")]
    assert period_values(metric_alarm(statistic="Sum"), datapoints, T) == [(T - 60, 5.0)]


@pytest.mark.parametrize(
    ("statistic", "values", "value"),
    [
        ("p99", range(1, 101), 99.0),
        ("p99", range(1, 201), 198.0),
        ("p99.9", range(1, 1001), 999.0),
        ("p50", range(1, 11), 5.0),
        ("p100", range(1, 11), 10.0),
        ("tm99", range(1, 101), 50.0),
        ("TM(10%:90%)", range(1, 11), 5.5),
        ("TM(2:5)", range(1, 11), 4.0),
        ("IQM", range(1, 9), 4.5),
        ("tc90", range(1, 11), 9.0),
        ("ts90", range(1, 11), 45.0),
    ],
)
def test_percentiles_and_trimmed_means_of_raw_values(statistic, values, value):
    """STATISTICS_DOC: "p99 is the maximum value of the remaining 99%" once "the 1% of the data points
    with the highest values" are ignored, "tm99 is the average of the remaining 99%"; TM(a%:b%) between
    percentiles; TM(a:b) "includes values equal to the higher boundary, but does not include values
    equal to the lower boundary"; IQM is TM(25%:75%); tc and ts count and sum what tm averages."""
    datapoints = [point(T - 60 + k * 0.01, float(v)) for k, v in enumerate(values)]
    alarm = metric_alarm(statistic=None, extendedStatistic=statistic)
    assert period_values(alarm, datapoints, T) == [(T - 60, value)]


def test_no_percentile_for_a_period_with_a_negative_value():
    """STATISTICS_DOC: percentiles and trimmed means "are not available for metrics when any of the
    metric values are negative numbers"."""
    datapoints = [point(T - 30, 1.0), point(T - 20, -1.0)]
    alarm = metric_alarm(statistic=None, extendedStatistic="p99")
    assert period_values(alarm, datapoints, T) == [(T - 60, None)]


def test_a_p99_alarm_ignores_the_slowest_percent():
    """STATISTICS_DOC: p99 ignores the slowest 1% of answers. 100 answers a minute, 5 of 5 minutes above
    1 s (as the project's web-latency-p99): 1 slow answer a minute stays OK, 2 fire the alarm."""
    alarm = metric_alarm(
        metricName="TargetResponseTime",
        statistic=None,
        extendedStatistic="p99",
        evaluationPeriods=5.0,
        comparisonOperator="GreaterThanThreshold",
        treatMissingData="notBreaching",
    )

    def minutes(slow: int) -> list[Datapoint]:
        return [
            point(T + m * 60 + k * 0.5, 2.0 if k < slow else 0.1, "TargetResponseTime")
            for m in range(5)
            for k in range(100)
        ]

    assert period_values(alarm, minutes(1), T + 300, 5) == [(T + m * 60, 0.1) for m in range(5)]
    assert evaluate(alarm, minutes(1), T + 60, T + 300) == [(T + m * 60, OK) for m in range(1, 6)]
    assert first_alarm(alarm, minutes(2), T, T + 600) == T + 300


def test_too_few_samples_for_a_percentile():
    """LOW_SAMPLES_DOC: for p99 the setting applies below 10/(1-0.99) = 1000 datapoints; with `ignore`
    "the alarm state does not change during periods with too few data points" (PutMetricAlarm)."""
    datapoints = [point(T - 60 + k * 0.5, 5.0) for k in range(100)]
    evaluating = metric_alarm(statistic=None, extendedStatistic="p99")
    ignoring = metric_alarm(statistic=None, extendedStatistic="p99", evaluateLowSampleCountPercentiles="ignore")
    assert evaluate(evaluating, datapoints, T, T) == [(T, ALARM)]
    assert evaluate(ignoring, datapoints, T, T, initial_state=OK) == [(T, OK)]
    enough = [point(T - 60 + k * 0.05, 5.0) for k in range(1000)]
    assert evaluate(ignoring, enough, T, T, initial_state=OK) == [(T, ALARM)]


# --- Metric math --------------------------------------------------------------------------------

MATH_DOC = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html"
ALB = "AWS/ApplicationELB"
WEB = {"LoadBalancer": "app/restdemo-web/0123456789abcdef"}


def math_alarm(expression: str, metrics: dict[str, tuple[str, str]], **inputs) -> Alarm:
    """A metric-math alarm as the provider's inputs carry it: the metric block flat (id -> name, stat)."""
    queries = [{"id": "e1", "expression": expression, "label": "e1", "returnData": True}]
    for query_id, (name, stat) in metrics.items():
        metric = {"namespace": ALB, "metricName": name, "dimensions": WEB, "period": 60.0, "stat": stat}
        queries.append({"id": query_id, "metric": metric, "returnData": False})
    base = {
        "name": "test-math",
        "comparisonOperator": "GreaterThanThreshold",
        "threshold": 5.0,
        "evaluationPeriods": 5.0,
        "datapointsToAlarm": 3.0,
        "treatMissingData": "notBreaching",
        "metricQueries": queries,
    }
    return Alarm.from_inputs(base | inputs)


def alb(minute: int, name: str, value: float) -> Datapoint:
    return Datapoint(T + minute * 60 + 7, value, name, ALB, dict(WEB), "Count")


FIVE_XX = {"m1": ("HTTPCode_Target_5XX_Count", "Sum"), "m2": ("HTTPCode_ELB_5XX_Count", "Sum")}
FIVE_XX_SHARE = "100 * (FILL(m1, 0) + FILL(m2, 0)) / m3"


def test_the_5xx_share_per_minute():
    """MATH_DOC: FILL fills the missing values of a series; in arithmetic "Missing values in a time series
    are treated as 0. If the value of a data point causes a function to attempt to divide by zero, the
    data point is dropped": a minute with no requests, or a RequestCount of 0, has no share at all."""
    alarm = math_alarm(FIVE_XX_SHARE, FIVE_XX | {"m3": ("RequestCount", "Sum")})
    datapoints = [
        alb(0, "HTTPCode_Target_5XX_Count", 3.0),
        alb(0, "HTTPCode_ELB_5XX_Count", 4.0),
        alb(0, "RequestCount", 100.0),
        alb(1, "HTTPCode_ELB_5XX_Count", 2.0),  # no target 5xx at all: FILL(m1, 0)
        alb(1, "RequestCount", 50.0),
        alb(2, "HTTPCode_Target_5XX_Count", 1.0),  # no RequestCount: divided by a missing 0, dropped
        alb(3, "RequestCount", 0.0),  # a RequestCount of 0: divided by zero, dropped
        alb(4, "RequestCount", 40.0),  # requests and no 5xx: 0 %
    ]
    assert period_values(alarm, datapoints, T + 300, 5) == [
        (T, 7.0),
        (T + 60, 4.0),
        (T + 120, None),
        (T + 180, None),
        (T + 240, 0.0),
    ]


def test_the_5xx_share_alarm_fires_on_3_bad_minutes_of_5_and_not_on_a_healthy_run():
    """MATH_DOC with MISSING_DOC: 3 of 5 minutes above 5 % fire the alarm; a healthy run, and minutes
    without requests (no datapoint, notBreaching), keep it OK."""
    alarm = math_alarm(FIVE_XX_SHARE, FIVE_XX | {"m3": ("RequestCount", "Sum")})
    healthy = [alb(m, "RequestCount", 200.0) for m in range(10)] + [alb(3, "HTTPCode_Target_5XX_Count", 2.0)]
    assert {state for _, state in evaluate(alarm, healthy, T + 60, T + 600)} == {OK}
    failing = healthy + [alb(m, "HTTPCode_ELB_5XX_Count", 50.0) for m in (5, 7, 8)]
    assert first_alarm(alarm, failing, T, T + 600) == T + 540
    assert evaluate(alarm, [], T, T) == [(T, OK)]


def test_a_share_without_fill_and_the_api_metric_stat_shape():
    """MATH_DOC: `100*m1/m2` with the numerator absent is 0 (missing is 0 in arithmetic), the divisor
    absent drops the point; FILL(m1, 0) gives the same. The MetricStat shape of the API is read too."""
    for expression in ("100*m1/m2", "100*FILL(m1,0)/m2"):
        alarm = Alarm.from_inputs(
            {
                "comparisonOperator": "GreaterThanOrEqualToThreshold",
                "threshold": 1.0,
                "evaluationPeriods": 1.0,
                "metricQueries": [
                    {"id": "e1", "expression": expression, "returnData": True},
                    {
                        "id": "m1",
                        "metricStat": {
                            "metric": {"namespace": ALB, "metricName": "HTTPCode_Target_5XX_Count", "dimensions": WEB},
                            "period": 60.0,
                            "stat": "Sum",
                        },
                        "returnData": False,
                    },
                    {
                        "id": "m2",
                        "metricStat": {
                            "metric": {"namespace": ALB, "metricName": "RequestCount", "dimensions": WEB},
                            "period": 60.0,
                            "stat": "Sum",
                        },
                        "returnData": False,
                    },
                ],
            }
        )
        datapoints = [
            alb(0, "HTTPCode_Target_5XX_Count", 1.0),
            alb(0, "RequestCount", 4.0),
            alb(1, "RequestCount", 5.0),
        ]
        datapoints.append(alb(2, "HTTPCode_Target_5XX_Count", 1.0))
        assert period_values(alarm, datapoints, T + 180, 3) == [(T, 25.0), (T + 60, 0.0), (T + 120, None)], expression


@pytest.mark.parametrize(
    ("expression", "values"),
    [
        ("metric1 < metric2", [0.0, 0.0, 1.0, 0.0]),
        ("metric1 >= 30", [1.0, 0.0, 0.0, 0.0]),
        ("metric1 > 15 AND metric2 > 15", [1.0, 0.0, 0.0, 0.0]),
        ("metric1 > 15 && metric2 > 15", [1.0, 0.0, 0.0, 0.0]),
    ],
)
def test_the_comparison_operators_table(expression, values):
    """MATH_DOC, "Comparison and logical operators": metric1 [30, 20, 0, 0] and metric2 [20, -, 20, -];
    between two series "the function treats the missing value in the other time series as 0"."""
    alarm = math_alarm(expression, {"metric1": ("A", "Maximum"), "metric2": ("B", "Maximum")})
    datapoints = [alb(m, "A", v) for m, v in enumerate([30.0, 20.0, 0.0, 0.0])]
    datapoints += [alb(0, "B", 20.0), alb(2, "B", 20.0)]
    assert period_values(alarm, datapoints, T + 240, 4) == [(T + m * 60, v) for m, v in enumerate(values)]


@pytest.mark.parametrize(
    ("expression", "values"),
    [
        ("IF(metric1, metric2, metric3)", [30.0, 0.0, 20.0, None, None]),
        ("IF(metric1, 5, metric3)", [5.0, 5.0, 20.0, None, None]),
        ("IF(metric1, metric2, 5)", [30.0, 0.0, 5.0, 5.0, None]),
        ("IF(metric1, metric2)", [30.0, 0.0, None, None, None]),
    ],
)
def test_the_if_tables(expression, values):
    """MATH_DOC, "Using IF expressions": metric1 [1, 1, 0, 0, -], metric2 [30, -, 0, 0, 30], metric3
    [0, 0, 20, -, 20] and the results its tables give; without falseValue a false point is dropped."""
    alarm = math_alarm(
        expression, {"metric1": ("A", "Maximum"), "metric2": ("B", "Maximum"), "metric3": ("C", "Maximum")}
    )
    datapoints = [alb(m, "A", v) for m, v in enumerate([1.0, 1.0, 0.0, 0.0])]
    datapoints += [alb(m, "B", v) for m, v in [(0, 30.0), (2, 0.0), (3, 0.0), (4, 30.0)]]
    datapoints += [alb(m, "C", v) for m, v in [(0, 0.0), (1, 0.0), (2, 20.0), (4, 20.0)]]
    assert period_values(alarm, datapoints, T + 300, 5) == [(T + m * 60, v) for m, v in enumerate(values)]


def test_array_functions_and_the_group_below_desired():
    """MATH_DOC: MAX/MIN/SUM of an array of series give a series (AVG of one treats missing as 0); and
    the project's `m1 - m2` (desired minus in service) with an absent in-service count taken as 0."""
    metrics = {"m1": ("A", "Maximum"), "m2": ("B", "Maximum")}
    datapoints = [alb(0, "A", 4.0), alb(0, "B", 1.0), alb(1, "A", 3.0)]
    expected = {
        "MAX([m1, m2])": [4.0, 3.0],
        "MIN([m1, m2])": [1.0, 3.0],
        "SUM([m1, m2])": [5.0, 3.0],
        "AVG([m1, m2])": [2.5, 1.5],
        "m1 - m2": [3.0, 3.0],
        "-m2 + 2 ^ 3": [7.0, None],  # a series and a scalar: at the series' timestamps only
    }
    for expression, values in expected.items():
        alarm = math_alarm(expression, metrics)
        assert period_values(alarm, datapoints, T + 120, 2) == [(T, values[0]), (T + 60, values[1])], expression


def test_what_is_not_evaluated_says_so():
    """MATH_DOC advises against scalar functions of one series in alarms; anomaly-detection alarms and
    FILL's REPEAT are outside this module: each raises rather than guessing."""
    with pytest.raises(NotImplementedError):
        period_values(math_alarm("m1 - MAX(m1)", {"m1": ("A", "Maximum")}), [], T)
    with pytest.raises(NotImplementedError):
        period_values(math_alarm("FILL(m1, REPEAT)", {"m1": ("A", "Maximum")}), [], T)
    with pytest.raises(NotImplementedError):
        metric_alarm(comparisonOperator="LessThanLowerOrGreaterThanUpperThreshold")
    with pytest.raises(ValueError, match="unknown statistic"):
        metric_alarm(statistic="Median")


def test_the_inputs_as_a_mock_sees_them():
    """PutMetricAlarm (API_PutMetricAlarm.html) fields as the aws provider's camelCase inputs, floats
    included; without a unit, a metric published with two units has no defined behaviour."""
    alarm = metric_alarm(evaluationPeriods=5.0, datapointsToAlarm=3.0, period=300.0, threshold=2.5)
    assert (alarm.evaluation_periods, alarm.datapoints_to_alarm, alarm.period, alarm.threshold) == (5, 3, 300, 2.5)
    assert alarm.treat_missing_data == "missing"
    mixed = [
        Datapoint(T - 30, 1.0, "Errors", "Test", {"Service": "web"}, "Count"),
        Datapoint(T - 20, 1.0, "Errors", "Test", {"Service": "web"}, "Percent"),
    ]
    with pytest.raises(ValueError, match="several units"):
        evaluate(metric_alarm(), mixed, T, T)
    assert period_values(metric_alarm(statistic="Sum", unit="Count"), mixed, T) == [(T - 60, 1.0)]


# --- Embedded metric format ---------------------------------------------------------------------

EMF_DOC = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html"

SPEC_EXAMPLE = {
    "_aws": {
        "Timestamp": 1574109732004,
        "CloudWatchMetrics": [
            {
                "Namespace": "lambda-function-metrics",
                "Dimensions": [["functionVersion"]],
                "Metrics": [{"Name": "time", "Unit": "Milliseconds", "StorageResolution": 60}],
            }
        ],
    },
    "functionVersion": "$LATEST",
    "time": 100,
    "requestId": "989ffbf8-9ace-4817-a57c-e4dd734019ee",
}


def test_the_specifications_example():
    """EMF_DOC, "Embedded metric format example": one metric `time` of 100 ms, one dimension."""
    assert from_emf([json.dumps(SPEC_EXAMPLE)]) == [
        Datapoint(
            1574109732.004, 100.0, "time", "lambda-function-metrics", {"functionVersion": "$LATEST"}, "Milliseconds"
        )
    ]


def test_arrays_dimension_sets_and_ordinary_lines():
    """EMF_DOC: a metric target is "a numeric value or an array of numeric values"; "Every DimensionSet
    used creates a new metric" and "A DimensionSet MAY be empty"; Unit defaults to NONE. Lines that
    are not JSON, or JSON without `_aws`, are ordinary log events."""
    document = {
        "_aws": {
            "Timestamp": 1_700_000_000_500,
            "CloudWatchMetrics": [
                {
                    "Namespace": "restdemo/agent",
                    "Dimensions": [["Stack"], ["Stack", "Node"], []],
                    "Metrics": [{"Name": "Latency", "Unit": "Seconds"}, {"Name": "Restarts"}],
                }
            ],
        },
        "Stack": "prod",
        "Node": "manager-1",
        "Latency": [0.25, 0.5],
        "Restarts": 1,
    }
    lines = [
        "2024-01-01T00:00:00Z agent started",
        json.dumps({"level": "info", "msg": "joined the swarm"}),
        json.dumps(document),
        "{not json",
    ]
    dimension_sets = [{"Stack": "prod"}, {"Stack": "prod", "Node": "manager-1"}, {}]
    expected = [
        Datapoint(1_700_000_000.5, value, name, "restdemo/agent", dims, unit)
        for dims in dimension_sets
        for name, values, unit in (("Latency", [0.25, 0.5], "Seconds"), ("Restarts", [1.0], None))
        for value in values
    ]
    assert from_emf(lines) == expected


def test_documents_that_break_the_specification_yield_nothing():
    """EMF_DOC: a dimension target "MUST have a string value", the root node "MUST contain all Target
    members", metric targets are numbers; Timestamp and a non-empty Dimensions are required (its schema)."""
    broken = [
        SPEC_EXAMPLE | {"functionVersion": 7},
        {k: v for k, v in SPEC_EXAMPLE.items() if k != "time"},
        SPEC_EXAMPLE | {"time": "100"},
        SPEC_EXAMPLE | {"_aws": {"CloudWatchMetrics": SPEC_EXAMPLE["_aws"]["CloudWatchMetrics"]}},
        SPEC_EXAMPLE
        | {"_aws": SPEC_EXAMPLE["_aws"] | {"CloudWatchMetrics": [{"Namespace": "n", "Dimensions": [], "Metrics": []}]}},
    ]
    assert from_emf([json.dumps(document) for document in broken]) == []


def test_emf_lines_through_an_alarm():
    """EMF_DOC with EVALUATION_DOC: the agent's EMF lines feed the evaluator: a restart count that stays
    at 0 keeps a Sum > 0 alarm OK, one restart fires it in the minute that holds it."""

    def line(minute: int, restarts: int) -> str:
        return json.dumps(
            {
                "_aws": {
                    "Timestamp": int((T + minute * 60 + 15) * 1000),
                    "CloudWatchMetrics": [
                        {"Namespace": "Test", "Dimensions": [["Service"]], "Metrics": [{"Name": "Errors"}]}
                    ],
                },
                "Service": "web",
                "Errors": restarts,
            }
        )

    alarm = metric_alarm(statistic="Sum", threshold=0.0, comparisonOperator="GreaterThanThreshold")
    healthy = from_emf([line(m, 0) for m in range(5)])
    assert evaluate(alarm, healthy, T + 60, T + 300) == [(T + m * 60, OK) for m in range(1, 6)]
    failing = from_emf([line(m, 1 if m == 3 else 0) for m in range(5)])
    assert first_alarm(alarm, failing, T, T + 300) == T + 240
