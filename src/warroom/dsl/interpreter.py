"""evaluate(expression, context) -> Evidence: a tree walk over the AST, never Python's eval.

    context = Context.of(store, incident, baseline)
    evidence = evaluate('change(metric("orders-db", "db_pool_connections_in_use"))', context)
    evidence.statement  # "change(...) = 7.917 (mean 95 in the window vs mean 12 in the baseline)"

The evidence id hashes the normalised expression and the case's times, so the same question
about the same incident always has the same id, and its source is the expression to re-run.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from warroom.dsl.catalogue import MAX_WINDOW_S, UNITS
from warroom.dsl.errors import DslError
from warroom.dsl.functions import IMPLEMENTATIONS, Env
from warroom.dsl.parser import parse
from warroom.dsl.query import Reader
from warroom.dsl.syntax import (
    COMPARISONS,
    Binary,
    Bool,
    Call,
    Clock,
    Expr,
    Num,
    Ref,
    Selector,
    Stamp,
    Str,
    Unary,
    Window,
    unparse,
)
from warroom.dsl.values import (
    SECONDS,
    TIME,
    FilterValue,
    NoData,
    Number,
    Range,
    Selection,
    Templates,
    Text,
    Truth,
    Value,
    arithmetic,
    compare,
    describe,
    logic,
    negate,
)
from warroom.model import Evidence, Incident, TimeRange
from warroom.telemetry.store import TelemetryStore

# Without a fault-free baseline, the ten minutes before the window stand in (as in pipeline.py).
DEFAULT_BASELINE_S = 10 * 60.0


@dataclass(frozen=True, eq=False)
class Context:
    """The case an expression is evaluated against: its telemetry and its times."""

    store: TelemetryStore
    window: TimeRange
    alert: float
    baseline: TimeRange

    @classmethod
    def of(
        cls, store: TelemetryStore, incident: Incident, baseline: TimeRange | None = None
    ) -> Context:
        """The context of an incident; the baseline defaults to the ten minutes before it."""
        window = incident.window
        base = baseline or TimeRange(window.start - DEFAULT_BASELINE_S, window.start)
        return cls(store, window, incident.alert_time, base)


@dataclass(frozen=True)
class Outcome:
    """One evaluation: the normalised expression, its typed value, and the evidence."""

    expression: str
    value: Value
    evidence: Evidence


def evaluate(expression: str | Expr, context: Context) -> Evidence:
    """Evaluate an expression to Evidence (raises DslError for bad input, never for no data)."""
    return run(expression, context).evidence


def run(expression: str | Expr, context: Context) -> Outcome:
    """Evaluate an expression, keeping its typed value next to the evidence."""
    source = expression if isinstance(expression, str) else ""
    tree = parse(expression) if isinstance(expression, str) else expression
    text = unparse(tree)
    env = Env(Reader(context.store), context.window, context.baseline, context.alert)
    try:
        value = _eval(tree, env)
        number, unit = _headline(value, env)
    except DslError as exc:
        raise exc.located(source) from None
    return Outcome(text, value, _evidence(text, value, number, unit, context))


def evidence_id(expression: str, context: Context) -> str:
    """A stable id from the normalised expression and the case's times."""
    times = (*_span(context.window), *_span(context.baseline), repr(context.alert))
    digest = hashlib.sha256("\n".join((expression, *times)).encode()).hexdigest()
    return f"dsl-{digest[:16]}"


def _span(window: TimeRange) -> tuple[str, str]:
    return repr(window.start), repr(window.end)


def _evidence(text: str, value: Value, number: float, unit: str, context: Context) -> Evidence:
    baseline = value.baseline if isinstance(value, Number) else None
    return Evidence(
        id=evidence_id(text, context),
        statement=f"{text} = {describe(value)}",
        value=number,
        baseline=baseline,
        unit=unit,
        source=text,
    )


def _headline(value: Value, env: Env) -> tuple[float, str]:
    """The one number evidence carries for a value, and its unit."""
    if isinstance(value, Number):
        return value.value, {TIME: "epoch s"}.get(value.unit, value.unit)
    if isinstance(value, Truth):
        return float(value.value), "bool"
    if isinstance(value, Templates):
        return float(value.items[0].count if value.items else 0), "lines"
    if isinstance(value, Range):
        return value.value.seconds, SECONDS
    if isinstance(value, Selection):
        return float(env.reader.count(value)), "rows"
    return math.nan, ""


# --- the tree walk ----------------------------------------------------------------------------


def _eval(node: Expr, env: Env) -> Value:
    if isinstance(node, Num):
        return _number(node)
    if isinstance(node, Str):
        return Text(node.value)
    if isinstance(node, Bool):
        return Truth(node.value)
    if isinstance(node, Clock):
        return Number(_clock(node, env.alert), TIME)
    if isinstance(node, Stamp):
        return Number(datetime.fromisoformat(node.iso.replace("Z", "+00:00")).timestamp(), TIME)
    if isinstance(node, Ref):
        return _ref(node, env)
    if isinstance(node, Unary):
        return negate(node.op, _eval(node.operand, env), node.at)
    if isinstance(node, Binary):
        return _binary(node, env)
    if isinstance(node, Call):
        return _call(node, env)
    return _selector(node, env)


def _number(node: Num) -> Number:
    if node.unit == "%":
        return Number(node.number * UNITS["%"])
    if node.unit:
        return Number(node.number * UNITS[node.unit], SECONDS)
    return Number(node.number)


def _clock(node: Clock, alert: float) -> float:
    """A time of day on the alert's date, or the day before or after if that is nearer."""
    day = datetime.fromtimestamp(alert, tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    offset = timedelta(hours=node.hour, minutes=node.minute, seconds=node.second)
    candidates = [(day + timedelta(days=d) + offset).timestamp() for d in (-1, 0, 1)]
    return min(candidates, key=lambda t: abs(t - alert))


def _ref(node: Ref, env: Env) -> Value:
    ranges = {"window": env.window, "baseline": env.baseline}
    if node.name in ranges:
        return Range(ranges[node.name])
    if node.name == "alert":
        return Number(env.alert, TIME)
    name, edge = node.name.split(".")
    return Number(getattr(ranges[name], edge), TIME)


def _binary(node: Binary, env: Env) -> Value:
    left, right = _eval(node.left, env), _eval(node.right, env)
    if node.op in ("and", "or"):
        return logic(node.op, left, right, node.at)
    if node.op in COMPARISONS:
        return compare(node.op, left, right, node.at)
    return arithmetic(node.op, left, right, node.at)


def _call(node: Call, env: Env) -> Value:
    args = [None if a is None else _eval(a, env) for a in node.args]
    missing = next((a for a in args if isinstance(a, NoData)), None)
    if missing is not None:
        return missing
    try:
        return IMPLEMENTATIONS[node.name](env, args, node)
    except DslError as exc:
        if exc.offset is None:  # a data-dependent complaint: point at the call
            raise DslError(exc.reason, offset=node.at) from None
        raise


def _selector(node: Selector, env: Env) -> Value:
    window = _window(node.window, env)
    if isinstance(window, NoData):
        return window
    filters = tuple(FilterValue(f.name, f.op, f.value) for f in node.filters)
    return Selection(node.kind, filters, window, unparse(node))


def _window(window: Window | None, env: Env) -> TimeRange | NoData:
    if window is None:
        return env.window
    start = _eval(window.start, env)
    if window.end is None:
        if isinstance(start, Range | NoData):
            return start.value if isinstance(start, Range) else start
        raise DslError(
            "a window is a range: [window], [baseline], [alert - 5m .. alert + 2m]",
            offset=window.start.at,
        )
    end = _eval(window.end, env)
    lo, hi = _bound(start, window.start, "start"), _bound(end, window.end, "end")
    if isinstance(lo, NoData):
        return lo
    if isinstance(hi, NoData):
        return hi
    if hi < lo:
        raise DslError("the window ends before it starts", offset=window.at)
    if hi - lo > MAX_WINDOW_S:
        raise DslError(f"the window is longer than {MAX_WINDOW_S / 86400:g} days", offset=window.at)
    return TimeRange(lo, hi)


def _bound(value: Value, node: Expr, edge: str) -> float | NoData:
    if isinstance(value, NoData):
        return value
    if isinstance(value, Range):
        return value.value.start if edge == "start" else value.value.end
    if isinstance(value, Number) and value.unit == TIME:
        if not math.isfinite(value.value):  # pragma: no cover - times come from finite parts
            raise DslError("the window bound is not a finite time", offset=node.at)
        return value.value
    raise DslError(
        "a window bound is a time: alert - 5m, 10:03, window.start, or a range", offset=node.at
    )
