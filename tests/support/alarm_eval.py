"""Evaluate a CloudWatch metric alarm over metric datapoints, as CloudWatch documents it.

moto stores alarms (PutMetricAlarm) but never evaluates them, so a test that means to prove
"this alarm fires for that failure and stays OK in a healthy run" needs an evaluator of its
own. This one takes an alarm as the aws provider receives it (`Alarm.from_inputs`, the
camelCase inputs a Pulumi mock sees, numbers as floats) and datapoints (`Datapoint`, or
`from_emf` over the embedded-metric-format lines the node agent logs), and gives the alarm's
state at each evaluation time (`evaluate`, `first_alarm`).

Sources (Amazon CloudWatch User Guide; the live pages at docs.aws.amazon.com were read through
the search tool, whose answers are page openings, so their full text, tables included, was read
in AWS's own Markdown source of the guide, github.com/awsdocs/amazon-cloudwatch-user-guide, at
its last revision, b35549706cab03cdcd0a8df9956a2381c0315642 of 2023-05-18, before AWS archived it):

- EVALUATION, https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-evaluation.html
  (AlarmThatSendsEmail.md#alarm-evaluation in the source): Period, Evaluation Periods (N) and
  Datapoints to Alarm (M, "don't have to be consecutive"); "For any period of one minute or
  longer, an alarm is evaluated every minute and the evaluation is based on the window of time
  defined by the Period and Evaluation Periods. For example, if the Period is 5 minutes and
  Evaluation Periods is 1, then at the end of minute 5 the alarm evaluates based on data from
  minutes 1 to 5. Then at the end of minute 6 ... minutes 2 to 6"; periods of 10, 20 or 30 s are
  evaluated every 10 s; and an alarm whose N x Period exceeds one day is evaluated once per hour
  (the live page only, read in its Chinese rendering at docs.amazonaws.cn/zh_cn/...).
- WINDOW, https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-evaluation-window.html:
  the default evaluation window is a SlidingWindow, which "advances each time the alarm is
  evaluated"; a WallClockWindow (aligned to clock boundaries) must be asked for.
  So an alarm's periods are NOT aligned to multiples of the period since the epoch: they end at
  the evaluation time, itself on a whole minute (10 s for high resolution). For a 60 s period
  this is the same as epoch alignment; for 300 s it is a window that slides by a minute.
- MISSING, https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-missing-data.html
  ("Configuring how CloudWatch alarms treat missing data"): CloudWatch retrieves more datapoints
  than N, the "evaluation range"; if N of them exist it evaluates the N most recent real ones and
  the missing-data setting is not used; if fewer exist, it fills the missing ones "only as few
  times as possible" (the most recent missing ones, per the text under the second table), keeping
  every real one; then ALARM if at least M are breaching, else OK. `missing`: all missing ->
  INSUFFICIENT_DATA; `ignore`: the current state is kept; and "Avoiding premature transitions to
  alarm state": with real data only breaching, fewer than M of them, `missing` goes to ALARM when
  the oldest one is at least M periods old and every more recent one is breaching or missing
  (`- - X - -` for 3 of 3, `- - - X -` for 2 of 3). The tables' other outcomes fix the rest:
  with `missing` or `ignore`, fewer than N real datapoints and fewer than M breaching, the state
  is OK if any real one is not breaching; else `missing` gives INSUFFICIENT_DATA (`- - - - X`,
  3 of 3 and 2 of 3, in the tables up to revision d444eedf50fd of 2019-06-24; the section of
  2023 says only that it does not go to ALARM) and `ignore` keeps the state. And: alarms on
  metrics in AWS/DynamoDB always ignore missing data.
- STATISTICS, https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Statistics-definitions.html:
  SampleCount, Sum, Average (= Sum/SampleCount), Minimum, Maximum; percentiles ("p99 is the
  maximum value of the remaining 99%" once the highest 1% is ignored: the nearest rank,
  ceil(p/100 x n)); trimmed mean tmX / TM(a%:b%) / TM(a:b) (fixed bounds: above the lower,
  up to and including the upper), IQM = TM(25%:75%), trimmed count tc/TC and trimmed sum ts/TS;
  none of these percentile-like statistics exists for a period with a negative value.
- CONCEPTS, https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html:
  each unique combination of dimensions is its own metric (no aggregation across dimensions for
  custom metrics); statistics are stamped with the beginning of their period; datapoints with a
  unit are aggregated separately. PutMetricAlarm, https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html:
  without a Unit and with more than one unit published "the alarm's behavior is not defined"
  (an error here); DatapointsToAlarm defaults to EvaluationPeriods; EvaluateLowSampleCountPercentile.
- LOW SAMPLES, https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/percentiles-with-low-samples.html:
  for p in [0.5, 1) too few is fewer than 10/(1-p) datapoints, for p in (0, 0.5) fewer than
  10/p; with `ignore` the state does not change then.
- MATH, https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html
  (#metric-math-syntax, #using-IF-expressions): in arithmetic "Missing values in a time series
  are treated as 0. If the value of a data point causes a function to attempt to divide by zero,
  the data point is dropped" (so a period whose divisor is 0 or absent has no datapoint, and
  the alarm's missing-data setting decides it); comparison operators (== != <= >= < >) give 1 or
  0 and between two series treat the absent value as 0; AND/&& and OR/||; IF(cond, a[, b]) as its
  tables give it (cond absent: dropped; true and `a` absent: 0; false and `b` absent or omitted:
  dropped); FILL(x, value) fills every period of the range; AVG of an array treats missing as 0.
- EMF, https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html:
  see `from_emf`.

Not modelled (each raises NotImplementedError or ValueError where it would matter, else is noted):
- The size of the evaluation range. MISSING says only that it "depends on the length of the
  alarm period and whether it is based on a metric with standard resolution or high resolution"
  and gives one example: N = 3 retrieves 5. `evaluate` takes `evaluation_range`, by default N + 2.
- Anomaly-detection alarms (the band operators, thresholdMetricId), Metrics Insights and PromQL
  alarms, WallClockWindow, cross-account queries: NotImplementedError.
- Metric math beyond + - * / ^, unary -, comparisons, AND/OR, IF, FILL(x, number | series), the
  array functions MAX/MIN/SUM/AVG([...]), ABS and PERIOD: NotImplementedError. MAX/MIN/SUM/AVG of a
  single series (a scalar over however much data CloudWatch fetched, which MATH advises against
  in alarms) and FILL's REPEAT/LINEAR likewise. MATH gives no precedence table: here it is
  OR < AND < comparison < + - < * / < unary - < ^. MAX and MIN of an array take the values present
  at each timestamp (MATH does not say); SUM of an array treats missing as 0, as arithmetic does.
- When CloudWatch evaluates within the minute, and data that arrives late (an evaluation sees
  every datapoint given, at once); how CloudWatch rolls standard-resolution (60 s) storage into
  sub-minute periods (a datapoint counts in the period of its own timestamp); the exact
  percentile algorithm CloudWatch uses (it does not document one beyond the definition above);
  winsorized mean and percentile rank statistics (NotImplementedError).
- Whether the live MISSING page still has the 2023 tables: its text could not be read whole here.
  The source's history shows AWS changing those outcomes: `- - X - -` (3 of 3) was OK under
  `missing` in 2019 and ALARM from April 2020; under `ignore` ALARM until June 2020, "Retain" from
  September 2020.
- Which of two treatments wins when `ignore` for low-sample percentiles meets an all-missing
  range: here an empty range is missing data, left to treatMissingData; "too few" counts the raw
  datapoints in the N most recent periods.
"""

from __future__ import annotations

import bisect
import json
import math
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

OK = "OK"
ALARM = "ALARM"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"

TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": operator.ge,
    "GreaterThanThreshold": operator.gt,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}
ANOMALY_COMPARISONS = (
    "LessThanLowerOrGreaterThanUpperThreshold",
    "LessThanLowerThreshold",
    "GreaterThanUpperThreshold",
)
ONE_DAY = 86_400


@dataclass(frozen=True)
class Datapoint:
    """One value as published (PutMetricData, or extracted from an EMF log line)."""

    timestamp: float  # seconds since the epoch
    value: float
    metric: str
    namespace: str
    dimensions: dict[str, str] = field(default_factory=dict)
    unit: str | None = None  # None: no unit given (CloudWatch's "None")


@dataclass(frozen=True)
class MetricStat:
    namespace: str
    metric_name: str
    dimensions: dict[str, str]
    period: int
    stat: str
    unit: str | None = None


@dataclass(frozen=True)
class Query:
    """One entry of metricQueries: a metric (with its statistic) or an expression over other ids."""

    id: str
    metric: MetricStat | None = None
    expression: str | None = None
    return_data: bool = False


def _int(value) -> int:
    if value is None:
        raise ValueError("a required number is missing")
    if float(value) != int(value):
        raise ValueError(f"{value} is not a whole number")
    return int(value)


def _metric_stat(block: dict, period=None) -> MetricStat:
    """The provider's flat `metric` block, or the API's MetricStat {metric{...}, period, stat, unit}."""
    inner = block.get("metric", block)
    return MetricStat(
        namespace=inner["namespace"],
        metric_name=inner["metricName"],
        dimensions=dict(inner.get("dimensions") or {}),
        period=_int(block.get("period", period)),
        stat=block["stat"],
        unit=block.get("unit"),
    )


@dataclass(frozen=True)
class Alarm:
    """An `aws:cloudwatch/metricAlarm:MetricAlarm`, from its inputs (camelCase, numbers as floats)."""

    comparison: str
    threshold: float
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: str = "missing"
    metric: MetricStat | None = None
    queries: tuple[Query, ...] = ()
    low_sample_percentiles: str = "evaluate"  # evaluateLowSampleCountPercentiles

    @classmethod
    def from_inputs(cls, inputs: dict) -> Alarm:
        comparison = inputs.get("comparisonOperator")
        if comparison in ANOMALY_COMPARISONS or inputs.get("thresholdMetricId"):
            raise NotImplementedError("anomaly-detection alarms are not evaluated here")
        if comparison not in COMPARISONS:
            raise ValueError(f"unknown comparisonOperator {comparison!r}")
        if (inputs.get("evaluationWindow") or {}).get("wallClockWindow") is not None:
            raise NotImplementedError("only the default SlidingWindow is evaluated here")
        treatment = inputs.get("treatMissingData") or "missing"
        if treatment not in TREATMENTS:
            raise ValueError(f"unknown treatMissingData {treatment!r}")
        periods = _int(inputs["evaluationPeriods"])
        metric = None
        queries: tuple[Query, ...] = ()
        if inputs.get("metricQueries"):
            queries = tuple(
                Query(
                    id=q["id"],
                    metric=_metric_stat(block) if (block := q.get("metric") or q.get("metricStat")) else None,
                    expression=q.get("expression"),
                    return_data=bool(q.get("returnData", False)),
                )
                for q in inputs["metricQueries"]
            )
            if any(q.get("accountId") for q in inputs["metricQueries"]):
                raise NotImplementedError("cross-account metric queries are not evaluated here")
            if sum(q.return_data for q in queries) != 1:
                raise ValueError("exactly one metric query must have returnData true (PutMetricAlarm)")
            if len({q.metric.period for q in queries if q.metric}) > 1:
                raise ValueError("every metric of a math alarm must use the same period")
            if not any(q.metric for q in queries):
                raise NotImplementedError("alarms on Metrics Insights or PromQL queries are not evaluated here")
        else:
            stat = inputs.get("extendedStatistic") or inputs.get("statistic")
            if not stat:
                raise ValueError("an alarm on one metric needs statistic or extendedStatistic")
            metric = MetricStat(
                namespace=inputs["namespace"],
                metric_name=inputs["metricName"],
                dimensions=dict(inputs.get("dimensions") or {}),
                period=_int(inputs["period"]),
                stat=stat,
                unit=inputs.get("unit"),
            )
        alarm = cls(
            comparison=comparison,
            threshold=float(inputs["threshold"]),
            evaluation_periods=periods,
            datapoints_to_alarm=_int(inputs.get("datapointsToAlarm") or periods),
            treat_missing_data=treatment,
            metric=metric,
            queries=queries,
            low_sample_percentiles=inputs.get("evaluateLowSampleCountPercentiles") or "evaluate",
        )
        for stat in alarm.metric_stats():
            _statistic(stat.stat)  # an unknown statistic fails here, not at the first evaluation
        for q in alarm.queries:
            if q.expression:
                _Parser(q.expression).parse()
        return alarm

    def metric_stats(self) -> list[MetricStat]:
        return [self.metric] if self.metric else [q.metric for q in self.queries if q.metric]

    @property
    def period(self) -> int:
        return self.metric_stats()[0].period

    def evaluation_interval(self) -> int:
        """How often CloudWatch evaluates the alarm (EVALUATION)."""
        if self.period * self.evaluation_periods > ONE_DAY:
            return 3600
        return 60 if self.period >= 60 else 10

    def breaches(self, value: float) -> bool:
        return COMPARISONS[self.comparison](value, self.threshold)

    def effective_treatment(self) -> str:
        # MISSING: "Alarms that evaluate metrics in the AWS/DynamoDB namespace always ignore missing data".
        if any(m.namespace == "AWS/DynamoDB" for m in self.metric_stats()):
            return "ignore"
        return self.treat_missing_data


# --- statistics -------------------------------------------------------------------------------

_NUMBER = r"(\d+(?:\.\d+)?)"


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered) - 1e-9))
    return ordered[rank - 1]


def _trimmed(values: list[float], low: str, high: str) -> list[float]:
    """The values a TM/TC/TS range keeps: percent bounds by rank, fixed bounds as (low, high]."""
    ordered = sorted(values)
    n = len(ordered)
    if (low.endswith("%") or not low) and (high.endswith("%") or not high):
        start = math.floor(float(low.rstrip("%") or 0) / 100 * n + 1e-9)
        stop = math.ceil(float(high.rstrip("%") or 100) / 100 * n - 1e-9)
        return ordered[start:stop]
    if low.endswith("%") or high.endswith("%"):
        raise NotImplementedError("a range mixing a percentage and a value")
    lo = float(low) if low else -math.inf
    hi = float(high) if high else math.inf
    return [v for v in ordered if lo < v <= hi]


def _statistic(stat: str) -> tuple[Callable[[list[float]], float | None], float | None]:
    """The aggregation for a statistic name, and the percentile it is about (for low samples)."""
    simple = {
        "SampleCount": lambda v: float(len(v)),
        "Sum": lambda v: float(sum(v)),
        "Average": lambda v: sum(v) / len(v),
        "Minimum": lambda v: float(min(v)),
        "Maximum": lambda v: float(max(v)),
    }
    if stat in simple:
        return simple[stat], None
    if match := re.fullmatch(r"p" + _NUMBER, stat):
        p = float(match[1])
        if not 0 <= p <= 100:
            raise ValueError(f"percentile {stat} is out of range")
        return _nonnegative(lambda v: _percentile(v, p)), p
    if match := re.fullmatch(r"(tm|tc|ts)" + _NUMBER, stat):
        return _trimmed_statistic(match[1].upper(), "", match[2] + "%"), None
    if stat == "IQM":
        return _trimmed_statistic("TM", "25%", "75%"), None
    if match := re.fullmatch(r"(TM|TC|TS)\(([\d.]*%?):([\d.]*%?)\)", stat):
        return _trimmed_statistic(match[1], match[2], match[3]), None
    if re.fullmatch(r"(wm|pr|WM|PR).*", stat):
        raise NotImplementedError(f"statistic {stat} is not evaluated here")
    raise ValueError(f"unknown statistic {stat!r}")


def _nonnegative(aggregate: Callable[[list[float]], float | None]) -> Callable[[list[float]], float | None]:
    # STATISTICS: these statistics "are not available for metrics when any of the metric values are negative".
    return lambda values: None if any(v < 0 for v in values) else aggregate(values)


def _trimmed_statistic(kind: str, low: str, high: str) -> Callable[[list[float]], float | None]:
    def aggregate(values: list[float]) -> float | None:
        kept = _trimmed(values, low, high)
        if kind == "TC":
            return float(len(kept))
        if kind == "TS":
            return float(sum(kept))
        return sum(kept) / len(kept) if kept else None

    return _nonnegative(aggregate)


def low_sample_limit(p: float) -> float | None:
    """Fewer datapoints than this make a percentile not significant (LOW SAMPLES)."""
    q = p / 100
    if 0.5 <= q < 1:
        return 10 / (1 - q)
    if 0 < q < 0.5:
        return 10 / q
    return None


# --- datapoints per period --------------------------------------------------------------------


class _Index:
    """The datapoints of each metric (namespace, name, exact dimensions), sorted by time."""

    def __init__(self, datapoints: Iterable[Datapoint]):
        self._series: dict[tuple, list[tuple[float, float, str | None]]] = {}
        for dp in datapoints:
            key = (dp.namespace, dp.metric, frozenset(dp.dimensions.items()))
            self._series.setdefault(key, []).append((float(dp.timestamp), float(dp.value), dp.unit))
        for points in self._series.values():
            points.sort(key=lambda p: p[0])
        self._times = {key: [p[0] for p in points] for key, points in self._series.items()}

    def values(self, stat: MetricStat, start: float, end: float) -> list[float]:
        """The raw values of the metric with timestamps in [start, end) (CONCEPTS, GetMetricStatistics)."""
        key = (stat.namespace, stat.metric_name, frozenset((k, str(v)) for k, v in stat.dimensions.items()))
        points = self._series.get(key, [])
        times = self._times.get(key, [])
        chosen = points[bisect.bisect_left(times, start) : bisect.bisect_left(times, end)]
        if stat.unit is not None:
            wanted = None if stat.unit == "None" else stat.unit
            return [v for _, v, unit in chosen if (unit if unit != "None" else None) == wanted]
        if len({None if unit == "None" else unit for _, _, unit in points}) > 1:
            raise ValueError(
                f"{stat.metric_name} is published with several units and the alarm names none: "
                "PutMetricAlarm calls the alarm's behaviour not defined"
            )
        return [v for _, v, _ in chosen]


def _starts(alarm: Alarm, at: float, periods: int) -> list[float]:
    """The beginnings of the `periods` periods that end at the evaluation time (WINDOW: sliding), oldest first."""
    return [at - (periods - k) * alarm.period for k in range(periods)]


# --- metric math ------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[-+*/^<>(),\[\]]))"
)
_COMPARE = {
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}


class _Parser:
    """Recursive descent over the subset of metric math this module evaluates; gives a tuple tree."""

    def __init__(self, text: str):
        self.tokens: list[tuple[str, str]] = []
        position = 0
        text = text.rstrip()
        while position < len(text):
            match = _TOKEN.match(text, position)
            if not match or match.end() == position:
                raise ValueError(f"cannot read the expression {text!r} at {position}")
            kind = match.lastgroup
            self.tokens.append((kind, match[kind]))
            position = match.end()
        self.at = 0

    def parse(self):
        tree = self._or()
        if self.at != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.at][1]!r} in the expression")
        return tree

    def _peek(self) -> str | None:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        if self.at >= len(self.tokens):
            raise ValueError("the expression ends too soon")
        token = self.tokens[self.at]
        if expected is not None and token[1] != expected:
            raise ValueError(f"expected {expected!r}, found {token[1]!r}")
        self.at += 1
        return token

    def _or(self):
        tree = self._and()
        while self._peek() in ("OR", "||"):
            self._take()
            tree = ("or", tree, self._and())
        return tree

    def _and(self):
        tree = self._comparison()
        while self._peek() in ("AND", "&&"):
            self._take()
            tree = ("and", tree, self._comparison())
        return tree

    def _comparison(self):
        tree = self._sum()
        if self._peek() in _COMPARE:
            op = self._take()[1]
            tree = ("compare", op, tree, self._sum())
        return tree

    def _sum(self):
        tree = self._product()
        while self._peek() in ("+", "-"):
            op = self._take()[1]
            tree = ("arith", op, tree, self._product())
        return tree

    def _product(self):
        tree = self._unary()
        while self._peek() in ("*", "/"):
            op = self._take()[1]
            tree = ("arith", op, tree, self._unary())
        return tree

    def _unary(self):
        if self._peek() == "-":
            self._take()
            return ("neg", self._unary())
        return self._power()

    def _power(self):
        tree = self._primary()
        if self._peek() == "^":
            self._take()
            tree = ("arith", "^", tree, self._unary())
        return tree

    def _primary(self):
        kind, text = self._take()
        if kind == "number":
            return ("number", float(text))
        if text == "(":
            tree = self._or()
            self._take(")")
            return tree
        if text == "[":
            items = [self._or()]
            while self._peek() == ",":
                self._take()
                items.append(self._or())
            self._take("]")
            return ("array", items)
        if kind == "name" and self._peek() == "(":
            self._take("(")
            args = []
            if self._peek() != ")":
                args.append(self._or())
                while self._peek() == ",":
                    self._take()
                    args.append(self._or())
            self._take(")")
            return ("call", text, args)
        if kind == "name" and text in ("REPEAT", "LINEAR"):
            return ("keyword", text)
        if kind == "name":
            return ("id", text)
        raise ValueError(f"unexpected {text!r} in the expression")


def _is_series(value) -> bool:
    return isinstance(value, dict)


def _divide(a: float, b: float) -> float | None:
    return None if b == 0 else a / b  # MATH: a division by zero drops the data point


def _power(a: float, b: float) -> float | None:
    try:
        result = a**b
    except (OverflowError, ZeroDivisionError):
        return None
    return None if isinstance(result, complex) else float(result)


_ARITH: dict[str, Callable[[float, float], float | None]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _divide,
    "^": _power,
}


def _pointwise(op: Callable[[float, float], float | None], a, b):
    """Apply op per timestamp: series with series over the union (an absent value is 0), with a scalar per point."""
    if isinstance(a, list):
        return [_pointwise(op, x, b) for x in a]
    if isinstance(b, list):
        return [_pointwise(op, a, y) for y in b]
    if not _is_series(a) and not _is_series(b):
        result = op(a, b)
        if result is None:
            raise ValueError("a scalar division by zero in the expression")
        return result
    if _is_series(a) and _is_series(b):
        pairs = ((t, a.get(t, 0.0), b.get(t, 0.0)) for t in sorted(set(a) | set(b)))
    elif _is_series(a):
        pairs = ((t, v, b) for t, v in a.items())
    else:
        pairs = ((t, a, v) for t, v in b.items())
    out = {}
    for t, x, y in pairs:
        result = op(x, y)
        if result is not None:
            out[t] = float(result)
    return out


class _Math:
    """Evaluates the alarm's expressions on a grid of period beginnings."""

    def __init__(self, alarm: Alarm, series: dict[str, dict[float, float]], grid: list[float]):
        self.alarm = alarm
        self.queries = {q.id: q for q in alarm.queries}
        self.series = series
        self.grid = grid
        self.done: dict[str, object] = {}

    def value_of(self, query_id: str, seen: tuple[str, ...] = ()):
        if query_id in seen:
            raise ValueError(f"the expression {query_id} refers to itself")
        if query_id not in self.done:
            query = self.queries.get(query_id)
            if query is None:
                raise ValueError(f"the expression names {query_id!r}, which is no metric query")
            if query.metric is not None:
                self.done[query_id] = self.series[query_id]
            else:
                self.done[query_id] = self.eval(_Parser(query.expression).parse(), (*seen, query_id))
        return self.done[query_id]

    def eval(self, tree, seen: tuple[str, ...]):
        kind = tree[0]
        if kind == "number":
            return tree[1]
        if kind == "id":
            return self.value_of(tree[1], seen)
        if kind == "array":
            items = [self.eval(item, seen) for item in tree[1]]
            flat = []
            for item in items:
                flat.extend(item if isinstance(item, list) else [item])
            return flat
        if kind == "neg":
            return _pointwise(operator.sub, 0.0, self.eval(tree[1], seen))
        if kind == "arith":
            return _pointwise(_ARITH[tree[1]], self.eval(tree[2], seen), self.eval(tree[3], seen))
        if kind == "compare":
            compare = _COMPARE[tree[1]]
            return _pointwise(lambda x, y: float(compare(x, y)), self.eval(tree[2], seen), self.eval(tree[3], seen))
        if kind in ("and", "or"):
            logic = operator.and_ if kind == "and" else operator.or_
            left, right = self.eval(tree[1], seen), self.eval(tree[2], seen)
            return _pointwise(lambda x, y: float(logic(bool(x), bool(y))), left, right)
        if kind == "call":
            return self.call(tree[1], tree[2], seen)
        raise NotImplementedError(f"{tree[1]} is not evaluated here")

    def call(self, name: str, args: list, seen: tuple[str, ...]):
        if name == "IF":
            return self._if(args, seen)
        if name == "FILL":
            if len(args) != 2:
                raise ValueError("FILL takes a series and a filler")
            if args[1][0] == "keyword":
                raise NotImplementedError(f"FILL(..., {args[1][1]}) is not evaluated here")
            return self._fill(self.eval(args[0], seen), self.eval(args[1], seen))
        if name == "PERIOD":
            return float(self.alarm.period)
        values = [self.eval(arg, seen) for arg in args]
        if name == "ABS" and len(values) == 1:
            return _pointwise(lambda x, _: abs(x), values[0], 0.0)
        if name in ("MAX", "MIN", "SUM", "AVG") and len(values) == 1:
            if not isinstance(values[0], list):
                raise NotImplementedError(
                    f"{name} of one series is a scalar over all the data CloudWatch fetched (MATH advises "
                    "against it in alarms); not evaluated here"
                )
            return self._across(name, values[0])
        raise NotImplementedError(f"the metric math function {name} is not evaluated here")

    def _across(self, name: str, items: list):
        series = [item if _is_series(item) else dict.fromkeys(self.grid, float(item)) for item in items]
        out = {}
        for t in sorted(set().union(*series)):
            present = [s[t] for s in series if t in s]
            if name == "MAX":
                out[t] = max(present)
            elif name == "MIN":
                out[t] = min(present)
            elif name == "SUM":
                out[t] = float(sum(present))
            else:  # AVG of an array: "Missing values are treated as 0"
                out[t] = sum(present) / len(series)
        return out

    def _fill(self, series, filler):
        if isinstance(series, list):
            return [self._fill(s, filler) for s in series]
        if not _is_series(series):
            raise ValueError("FILL fills a series")
        out = dict(series)
        for t in self.grid:
            if t not in out:
                value = filler.get(t) if _is_series(filler) else filler
                if value is not None:
                    out[t] = float(value)
        return dict(sorted(out.items()))

    def _if(self, args: list, seen: tuple[str, ...]):
        if len(args) not in (2, 3):
            raise ValueError("IF takes a condition, a value, and optionally another")
        condition = self.eval(args[0], seen)
        then = self.eval(args[1], seen)
        otherwise = self.eval(args[2], seen) if len(args) == 3 else None
        if not _is_series(condition):
            return then if condition else ({} if otherwise is None else otherwise)
        out = {}
        for t, c in condition.items():
            if c:
                value = then.get(t, 0.0) if _is_series(then) else then
            elif otherwise is None:
                continue
            else:
                value = otherwise.get(t) if _is_series(otherwise) else otherwise
            if value is not None:
                out[t] = float(value)
        return out


# --- evaluation -------------------------------------------------------------------------------


def period_values(
    alarm: Alarm, datapoints: Iterable[Datapoint] | _Index, at: float, periods: int | None = None
) -> list[tuple[float, float | None]]:
    """(beginning, value or None) of each period ending at `at`, oldest first: what the alarm compares."""
    values, _ = _periods(alarm, datapoints if isinstance(datapoints, _Index) else _Index(datapoints), at, periods)
    return values


def _periods(alarm: Alarm, index: _Index, at: float, periods: int | None):
    count = periods or alarm.evaluation_periods
    grid = _starts(alarm, at, count)
    samples = [0] * count
    series: dict[str, dict[float, float]] = {}
    stats = [("", alarm.metric)] if alarm.metric else [(q.id, q.metric) for q in alarm.queries if q.metric]
    for query_id, stat in stats:
        aggregate, _ = _statistic(stat.stat)
        values = {}
        for k, start in enumerate(grid):
            raw = index.values(stat, start, start + stat.period)
            samples[k] += len(raw)
            if raw and (value := aggregate(raw)) is not None:
                values[start] = value
        series[query_id] = values
    if alarm.metric:
        result = series[""]
    else:
        returned = next(q for q in alarm.queries if q.return_data)
        result = _Math(alarm, series, grid).value_of(returned.id)
        if not _is_series(result):
            raise ValueError("an alarm's expression must give a single time series")
    return [(start, result.get(start)) for start in grid], samples


def decide(values: list[bool | None], alarm: Alarm, current: str) -> str:
    """The state for the evaluation range's datapoints (oldest first; True breaching, None missing), per MISSING."""
    n, m = alarm.evaluation_periods, alarm.datapoints_to_alarm
    treatment = alarm.effective_treatment()
    real = [v for v in values if v is not None]
    if len(real) >= n:
        # Enough real datapoints: the N most recent of them; the missing-data setting is not used.
        return ALARM if sum(real[-n:]) >= m else OK
    breaching = sum(real)
    fill = n - len(real)  # "uses missing data points only as few times as possible"
    if treatment == "breaching":
        return ALARM if breaching + fill >= m else OK
    if treatment == "notBreaching":
        return ALARM if breaching >= m else OK
    if breaching >= m:
        return ALARM
    if not real:
        return INSUFFICIENT_DATA if treatment == "missing" else current
    if not all(real):
        return OK
    if treatment == "missing":
        # Avoiding premature transitions: the oldest (breaching) datapoint at least M periods old.
        oldest_age = len(values) - next(k for k, v in enumerate(values) if v is not None)
        return ALARM if oldest_age >= m else INSUFFICIENT_DATA
    return current


def evaluation_times(alarm: Alarm, start: float, end: float, step: float | None = None) -> list[float]:
    step = step or alarm.evaluation_interval()
    first = math.ceil(start / step - 1e-9) * step
    count = int(math.floor((end - first) / step + 1e-9)) + 1
    return [first + k * step for k in range(max(0, count))]


def evaluate(
    alarm: Alarm,
    datapoints: Iterable[Datapoint],
    start: float,
    end: float,
    step: float | None = None,
    *,
    evaluation_range: int | None = None,
    initial_state: str = INSUFFICIENT_DATA,
) -> list[tuple[float, str]]:
    """The alarm's state at each evaluation time in [start, end].

    Times are whole multiples of `step` (by default how often CloudWatch evaluates it: every
    minute, every 10 s for a 10/20/30 s period, hourly when N x Period exceeds a day); at each, the
    `evaluation_range` periods (default N + 2) that end there are aggregated and judged.
    """
    index = _Index(datapoints)
    size = max(evaluation_range or alarm.evaluation_periods + 2, alarm.evaluation_periods)
    percentile = next((p for s in alarm.metric_stats() if (p := _statistic(s.stat)[1]) is not None), None)
    ignoring = percentile is not None and alarm.low_sample_percentiles == "ignore"
    limit = low_sample_limit(percentile) if ignoring else None
    state = initial_state
    states = []
    for at in evaluation_times(alarm, start, end, step):
        values, samples = _periods(alarm, index, at, size)
        recent = sum(samples[-alarm.evaluation_periods :])
        if limit is not None and 0 < recent < limit:
            states.append((at, state))  # LOW SAMPLES, `ignore`: the state does not change
            continue
        state = decide([None if v is None else alarm.breaches(v) for _, v in values], alarm, state)
        states.append((at, state))
    return states


def first_alarm(alarm: Alarm, datapoints: Iterable[Datapoint], start: float, end: float, **options) -> float | None:
    """The first evaluation time in [start, end] at which the alarm is in ALARM, or None."""
    return next((at for at, state in evaluate(alarm, datapoints, start, end, **options) if state == ALARM), None)


# --- embedded metric format -------------------------------------------------------------------


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _emf_document(line: str) -> dict | None:
    """The line as an EMF document, or None for an ordinary log line or an invalid document."""
    try:
        document = json.loads(line, parse_constant=_refuse_constant)
    except ValueError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("_aws"), dict):
        return None
    metadata = document["_aws"]
    directives = metadata.get("CloudWatchMetrics")
    if not _number(metadata.get("Timestamp")) or not isinstance(directives, list):
        return None
    for directive in directives:
        if not isinstance(directive, dict) or not isinstance(directive.get("Namespace"), str):
            return None
        dimension_sets, metrics = directive.get("Dimensions"), directive.get("Metrics")
        if not isinstance(dimension_sets, list) or not dimension_sets or not isinstance(metrics, list):
            return None
        if len(metrics) > 100:
            return None
        for keys in dimension_sets:
            if not isinstance(keys, list) or len(keys) > 30:
                return None
            for key in keys:
                value = document.get(key) if isinstance(key, str) else None
                if not isinstance(value, str) or len(value) > 1024:
                    return None
        for definition in metrics:
            name = definition.get("Name") if isinstance(definition, dict) else None
            value = document.get(name) if isinstance(name, str) else None
            values = value if isinstance(value, list) else [value]
            if len(values) > 100 or not all(_number(v) for v in values):
                return None
    return document


def from_emf(lines: Iterable[str]) -> list[Datapoint]:
    """The datapoints CloudWatch Logs extracts from embedded-metric-format log lines (EMF).

    Per the specification: a line is a document when it is one JSON object with an `_aws`
    member holding `Timestamp` (ms since the epoch) and `CloudWatchMetrics`, an array of
    directives {Namespace, Dimensions: an array of dimension sets (arrays of keys, at most 30,
    possibly empty), Metrics: at most 100 {Name, Unit?}}; each key names a root member with a
    string value, each Name a root member with a number or an array of at most 100 numbers.
    "Every DimensionSet used creates a new metric", so each value yields one datapoint per
    dimension set. Unit defaults to None ("NONE is assumed"). Lines that are not JSON, or JSON
    without `_aws`, are ordinary log events; a document that breaks these rules yields nothing
    (CloudWatch Logs counts it as an EMF validation error; whether it extracts the valid part of
    such a document is not documented). StorageResolution is not kept.
    """
    extracted: list[Datapoint] = []
    for line in lines:
        document = _emf_document(line.strip())
        if document is None:
            continue
        metadata = document["_aws"]
        timestamp = metadata["Timestamp"] / 1000
        for directive in metadata["CloudWatchMetrics"]:
            for keys in directive["Dimensions"]:
                dimensions = {key: document[key] for key in keys}
                for definition in directive["Metrics"]:
                    value = document[definition["Name"]]
                    for number in value if isinstance(value, list) else [value]:
                        extracted.append(
                            Datapoint(
                                timestamp=timestamp,
                                value=float(number),
                                metric=definition["Name"],
                                namespace=directive["Namespace"],
                                dimensions=dict(dimensions),
                                unit=definition.get("Unit"),
                            )
                        )
    return extracted
