"""The built-in functions: each takes evaluated arguments and returns a value (or no data).

Arity and names were checked by the parser; types are checked here, and a mismatch points at
the argument. Robust statistics follow experts/metrics.py: median and MAD (x1.4826) with floors.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from warroom.dsl import series_math
from warroom.dsl.catalogue import MAX_K
from warroom.dsl.errors import DslError
from warroom.dsl.query import Reader
from warroom.dsl.syntax import Call
from warroom.dsl.values import (
    PER_SECOND,
    SECONDS,
    TIME,
    NoData,
    Number,
    Selection,
    TemplateCount,
    Templates,
    Value,
    finite,
    type_name,
)
from warroom.experts.logs import log_events
from warroom.model import FloatArray, LogRecord, Series, TimeRange

RECORDS = ("logs", "spans", "events")


@dataclass(frozen=True, eq=False)
class Env:
    """What a function may use: the queries and the case's times."""

    reader: Reader
    window: TimeRange
    baseline: TimeRange
    alert: float

    def where(self, window: TimeRange) -> str:
        """Words for a window: 'the window', 'the baseline', or its times."""
        if window == self.window:
            return "the window"
        if window == self.baseline:
            return "the baseline"
        return str(window)


Args = list[Value | None]
Impl = Callable[[Env, Args, Call], Value]


def _at(call: Call, index: int) -> int:
    arg = call.args[index] if index < len(call.args) else None
    return call.at if arg is None else arg.at


def _selection(value: Value | None, call: Call, index: int, kinds: tuple[str, ...]) -> Selection:
    if isinstance(value, Selection) and value.kind in kinds:
        return value
    got = "nothing" if value is None else type_name(value)
    wanted = " or ".join(f"{k}(...)" for k in kinds)
    hint = ""
    if isinstance(value, Selection) and value.kind in RECORDS and "metric" in kinds:
        hint = "; count(), rate() and error_ratio() read logs, spans and events"
    if isinstance(value, Selection) and value.kind == "spans" and call.name in _POINT_FUNCTIONS:
        hint = "; for span durations use latency_p(50, spans(...))"
    raise DslError(f"{call.name} needs {wanted}, got {got}{hint}", offset=_at(call, index))


def _number(value: Value | None, call: Call, index: int, units: tuple[str, ...] = ("",)) -> float:
    if isinstance(value, Number) and value.unit in units:
        return value.value
    got = "nothing" if value is None else type_name(value)
    words = {"": "a number", SECONDS: "a duration", TIME: "a time", PER_SECOND: "a rate"}
    want = " or ".join(words[u] for u in units)
    raise DslError(f"{call.name} needs {want}, got {got}", offset=_at(call, index))


def _single(env: Env, selection: Selection) -> Series | NoData:
    found = env.reader.series(selection)
    if not found:
        return NoData(f"no points of {selection.text} in {env.where(selection.window)}")
    if len(found) > 1:
        names = ", ".join(f"{s.service}/{s.name}" for s in found[:5])
        more = f" and {len(found) - 5} more" if len(found) > 5 else ""
        raise DslError(f"{selection.text} matches {len(found)} series ({names}{more}); name one")
    series = found[0]
    if not np.isfinite(series.values).any():
        return NoData(f"{selection.text} has only missing values in {env.where(selection.window)}")
    return series


def _finite(series: Series) -> FloatArray:
    return series.values[np.isfinite(series.values)]


def _reducer(reduce: Callable[[Series], float]) -> Impl:
    def impl(env: Env, args: Args, call: Call) -> Value:
        series = _single(env, _selection(args[0], call, 0, ("metric",)))
        return series if isinstance(series, NoData) else finite(reduce(series))

    return impl


def _last(series: Series) -> float:
    mask = np.isfinite(series.values)
    return float(series.values[mask][-1])


_POINT_FUNCTIONS = ("mean", "median", "min", "max", "sum", "last", "p")


def _percentile(env: Env, args: Args, call: Call) -> Value:
    q = _number(args[0], call, 0)
    if not 0 <= q <= 100:
        raise DslError(f"percentile {q:g} is outside 0..100", offset=_at(call, 0))
    series = _single(env, _selection(args[1], call, 1, ("metric",)))
    if isinstance(series, NoData):
        return series
    return finite(float(np.percentile(_finite(series), q)))


def _count(env: Env, args: Args, call: Call) -> Value:
    value = args[0]
    if isinstance(value, Templates):
        return Number(float(len(value.items)))
    selection = _selection(value, call, 0, ("metric", *RECORDS))
    return Number(float(env.reader.count(selection)))


def _rate(env: Env, args: Args, call: Call) -> Value:
    selection = _selection(args[0], call, 0, RECORDS)
    if selection.window.seconds <= 0:
        return NoData(f"the window of {selection.text} is empty")
    return finite(env.reader.count(selection) / selection.window.seconds, PER_SECOND)


def _measure(env: Env, value: Value | None, call: Call, index: int) -> tuple[Value, str]:
    """A selection's natural number (a metric's mean, a record selector's rate) and its words."""
    if isinstance(value, Number) and value.unit != TIME:
        return value, ""
    selection = _selection(value, call, index, ("metric", *RECORDS))
    place = env.where(selection.window)
    if selection.kind == "metric":
        series = _single(env, selection)
        if isinstance(series, NoData):
            return series, ""
        mean = float(np.mean(_finite(series)))
        return Number(mean), f"mean {mean:.4g} in {place}"
    rate = _rate(env, [selection], call)
    words = f"{rate.value:.4g}/s in {place}" if isinstance(rate, Number) else ""
    return rate, words


def _pair(env: Env, args: Args, call: Call) -> tuple[Value, str, Value, str]:
    first = args[0]
    second = args[1]
    if second is None:
        if not isinstance(first, Selection):
            raise DslError(
                f"{call.name}(x) compares a selector with its baseline; for numbers give two: "
                f"{call.name}(a, b)",
                offset=_at(call, 0),
            )
        second = first.at(env.baseline)
    a, a_label = _measure(env, first, call, 0)
    b, b_label = _measure(env, second, call, 1)
    return a, a_label, b, b_label


def _compare_pair(combine: Callable[[float, float], float | None], name: str) -> Impl:
    def impl(env: Env, args: Args, call: Call) -> Value:
        a, a_label, b, b_label = _pair(env, args, call)
        for side in (a, b):
            if isinstance(side, NoData):
                return side
        assert isinstance(a, Number) and isinstance(b, Number)
        result = combine(a.value, b.value)
        if result is None:
            return NoData(
                f"no {name}: the second value is 0 ({b_label})" if b_label else "division by zero"
            )
        detail = ""
        if a_label and b_label:
            detail = f"{a_label} vs {b_label}"
        unit = a.unit if name == "difference" else ""
        return finite(result, unit, detail, baseline=b.value)

    return impl


def _onset(env: Env, args: Args, call: Call) -> Value:
    selection = _selection(args[0], call, 0, ("metric", *RECORDS))
    if selection.kind != "metric":
        if args[1] is not None:
            raise DslError("onset of records takes no base", offset=_at(call, 1))
        first = env.reader.first_time(selection)
        if first is None:
            where = env.where(selection.window)
            return NoData(f"no {selection.kind} match {selection.text} in {where}")
        return Number(first, TIME, f"first of {selection.text}")
    return series_math.onset(*_with_base(env, args, call))


def _zscore(env: Env, args: Args, call: Call) -> Value:
    return series_math.peak_z(*_with_base(env, args, call))


def _with_base(env: Env, args: Args, call: Call) -> tuple[Series | NoData, Series | NoData]:
    """The metric and its reference: the base argument, else the metric over the baseline."""
    selection = _selection(args[0], call, 0, ("metric",))
    base = selection.at(env.baseline)
    if args[1] is not None:
        base = _selection(args[1], call, 1, ("metric",))
    return _single(env, selection), _single(env, base)


def _corr(env: Env, args: Args, call: Call) -> Value:
    a = _selection(args[0], call, 0, ("metric",))
    b = _selection(args[1], call, 1, ("metric",))
    lag = 0.0 if args[2] is None else _number(args[2], call, 2, (SECONDS,))
    if not 0 <= lag <= max(a.window.seconds, 0.0):
        raise DslError(
            f"lag must be between 0 and the window length ({a.window.seconds:g} s)",
            offset=_at(call, 2),
        )
    widened = b.at(TimeRange(b.window.start - lag, b.window.end + lag))
    left, right = _single(env, a), _single(env, widened)
    for side in (left, right):
        if isinstance(side, NoData):
            return side
    assert isinstance(left, Series) and isinstance(right, Series)
    return series_math.correlation(left, right, lag)


def _k(args: Args, call: Call, index: int) -> int:
    if args[index] is None:
        return 5
    k = _number(args[index], call, index)
    if not k.is_integer() or not 1 <= k <= MAX_K:
        raise DslError(f"k must be a whole number from 1 to {MAX_K}", offset=_at(call, index))
    return int(k)


def _top_templates(env: Env, args: Args, call: Call) -> Value:
    selection = _selection(args[0], call, 0, ("logs",))
    k = _k(args, call, 1)
    keys = _event_keys(env.reader.log_records(selection))
    if not keys:
        return NoData(f"no log lines match {selection.text} in {env.where(selection.window)}")
    return _commonest(Counter(keys), k, len(keys))


def _new_templates(env: Env, args: Args, call: Call) -> Value:
    selection = _selection(args[0], call, 0, ("logs",))
    k = _k(args, call, 1)
    before = env.reader.log_records(selection.at(env.baseline))
    during = env.reader.log_records(selection)
    if not during:
        return NoData(f"no log lines match {selection.text} in {env.where(selection.window)}")
    # Mined together, so a template means the same on both sides.
    keys = _event_keys([*before, *during])
    seen = set(keys[: len(before)])
    fresh = Counter(key for key in keys[len(before) :] if key not in seen)
    return _commonest(fresh, k, len(during))


def _event_keys(records: list[LogRecord]) -> list[str]:
    """The log expert's key per line: its code location (Class#line), else its template."""
    return [event.key for event in log_events(records)]


def _commonest(counts: Counter[str], k: int, lines: int) -> Templates:
    order = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:k]
    return Templates(tuple(TemplateCount(key, count) for key, count in order), lines)


def _error_ratio(env: Env, args: Args, call: Call) -> Value:
    selection = _selection(args[0], call, 0, ("spans", "logs"))
    errors, total = env.reader.error_counts(selection)
    if total == 0:
        return NoData(
            f"no {selection.kind} match {selection.text} in {env.where(selection.window)}"
        )
    return Number(errors / total, "", f"{errors} of {total}")


def _latency(env: Env, args: Args, call: Call) -> Value:
    q = _number(args[0], call, 0)
    if not 0 <= q <= 100:
        raise DslError(f"percentile {q:g} is outside 0..100", offset=_at(call, 0))
    selection = _selection(args[1], call, 1, ("spans",))
    value = env.reader.duration_quantile(selection, q / 100)
    if value is None:
        return NoData(f"no spans match {selection.text} in {env.where(selection.window)}")
    return finite(value, SECONDS)


def _abs(env: Env, args: Args, call: Call) -> Value:
    value = _number(args[0], call, 0, ("", SECONDS, PER_SECOND))
    unit = args[0].unit if isinstance(args[0], Number) else ""
    return Number(abs(value), unit)


def _ratio(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


IMPLEMENTATIONS: dict[str, Impl] = {
    "mean": _reducer(lambda s: float(np.mean(_finite(s)))),
    "median": _reducer(lambda s: float(np.median(_finite(s)))),
    "min": _reducer(lambda s: float(np.min(_finite(s)))),
    "max": _reducer(lambda s: float(np.max(_finite(s)))),
    "sum": _reducer(lambda s: float(np.sum(_finite(s)))),
    "last": _reducer(_last),
    "p": _percentile,
    "count": _count,
    "rate": _rate,
    "change": _compare_pair(_ratio, "ratio"),
    "delta": _compare_pair(lambda a, b: a - b, "difference"),
    "ratio": _compare_pair(_ratio, "ratio"),
    "onset": _onset,
    "zscore": _zscore,
    "corr": _corr,
    "top_templates": _top_templates,
    "new_templates": _new_templates,
    "error_ratio": _error_ratio,
    "latency_p": _latency,
    "abs": _abs,
}
