"""What expressions evaluate to, and the arithmetic between those values.

Units are kept only as far as they change the meaning: "s" (a duration), "time" (an epoch
instant), "/s" (a rate); other numbers are plain. "No data" is a value that flows through
arithmetic (like NULL in SQL), and `and`/`or` use three-valued logic around it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from warroom.dsl.errors import DslError
from warroom.model import TimeRange, iso

SECONDS, TIME, PER_SECOND = "s", "time", "/s"


@dataclass(frozen=True)
class Number:
    """A number, its unit, and how it was obtained (for the evidence statement)."""

    value: float
    unit: str = ""
    detail: str = ""
    baseline: float | None = None


@dataclass(frozen=True)
class Truth:
    """A boolean."""

    value: bool


@dataclass(frozen=True)
class Text:
    """A string (only as an argument or for == and !=)."""

    value: str


@dataclass(frozen=True)
class Range:
    """A time range such as the incident window."""

    value: TimeRange


@dataclass(frozen=True)
class FilterValue:
    """One resolved selector condition."""

    name: str
    op: str
    value: str | bool


@dataclass(frozen=True)
class Selection:
    """A selector with its window resolved: a query not yet run (functions decide how)."""

    kind: str
    filters: tuple[FilterValue, ...]
    window: TimeRange
    text: str  # the selector's canonical text, for messages

    def at(self, window: TimeRange) -> Selection:
        """The same selector over another window."""
        return Selection(self.kind, self.filters, window, self.text)


@dataclass(frozen=True)
class TemplateCount:
    """A log template and how many lines it covers."""

    template: str
    count: int


@dataclass(frozen=True)
class Templates:
    """Log templates, commonest first, with the number of lines they were mined from."""

    items: tuple[TemplateCount, ...]
    lines: int


@dataclass(frozen=True)
class NoData:
    """There was nothing to compute on; the reason says what was missing."""

    reason: str


Value = Number | Truth | Text | Range | Selection | Templates | NoData


def type_name(value: Value) -> str:
    """What a value is, in the words error messages use."""
    if isinstance(value, Number):
        return {TIME: "a time", SECONDS: "a duration"}.get(value.unit, "a number")
    if isinstance(value, Selection):
        return {"metric": "a metric selector"}.get(value.kind, f"a {value.kind} selector")
    names = {Truth: "true/false", Text: "a string", Range: "a time range", Templates: "templates"}
    return names.get(type(value), "no data")


def finite(value: float, unit: str = "", detail: str = "", baseline: float | None = None) -> Value:
    """A Number, or NoData when the arithmetic left the finite numbers."""
    if not math.isfinite(value):
        return NoData("the result is not a finite number")
    return Number(value, unit, detail, baseline)


def arithmetic(op: str, left: Value, right: Value, at: int) -> Value:
    """`left op right` for + - * /, with unit rules for times and durations."""
    if isinstance(left, NoData):
        return left
    if isinstance(right, NoData):
        return right
    if isinstance(left, Range) and isinstance(right, Number) and op in "+-":
        return _shift(left, right, op, at)
    if not isinstance(left, Number) or not isinstance(right, Number):
        raise DslError(f"cannot apply {op} to {type_name(left)} and {type_name(right)}", offset=at)
    unit = _unit(op, left.unit, right.unit, at)
    if op == "+":
        return finite(left.value + right.value, unit)
    if op == "-":
        return finite(left.value - right.value, unit)
    if op == "*":
        return finite(left.value * right.value, unit)
    if right.value == 0:
        return NoData("division by zero")
    return finite(left.value / right.value, unit)


def _unit(op: str, left: str, right: str, at: int) -> str:
    if TIME in (left, right):
        return _time_unit(op, left, right, at)
    if op in "+-":
        return left or right
    if op == "*":
        return left or right if "" in (left, right) else ""
    return left if not right else ""


def _time_unit(op: str, left: str, right: str, at: int) -> str:
    if op == "-" and left == right == TIME:
        return SECONDS
    if op in "+-" and left == TIME and right == SECONDS:
        return TIME
    if op == "+" and left == SECONDS and right == TIME:
        return TIME
    hint = " (give durations a unit: 5m, 30s)" if "" in (left, right) else ""
    raise DslError(
        f"cannot apply {op} to {_unit_name(left)} and {_unit_name(right)}{hint}", offset=at
    )


def _unit_name(unit: str) -> str:
    return {TIME: "a time", SECONDS: "a duration", "": "a plain number"}.get(unit, unit)


def _shift(left: Range, right: Number, op: str, at: int) -> Value:
    if right.unit != SECONDS:
        raise DslError("a time range shifts by a duration: window - 10m", offset=at)
    by = right.value if op == "+" else -right.value
    return Range(left.value.shifted(by))


def compare(op: str, left: Value, right: Value, at: int) -> Value:
    """`left op right` for the six comparisons."""
    if isinstance(left, NoData):
        return left
    if isinstance(right, NoData):
        return right
    if isinstance(left, Text) and isinstance(right, Text) and op in ("==", "!="):
        return Truth((left.value == right.value) == (op == "=="))
    if isinstance(left, Truth) and isinstance(right, Truth) and op in ("==", "!="):
        return Truth((left.value == right.value) == (op == "=="))
    if not isinstance(left, Number) or not isinstance(right, Number):
        raise DslError(f"cannot compare {type_name(left)} with {type_name(right)}", offset=at)
    if TIME in (left.unit, right.unit) and left.unit != right.unit:
        raise DslError(f"cannot compare {type_name(left)} with {type_name(right)}", offset=at)
    a, b = left.value, right.value
    outcome = {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b, "==": a == b, "!=": a != b}
    return Truth(outcome[op])


def logic(op: str, left: Value, right: Value, at: int) -> Value:
    """`and` / `or` in three-valued logic: no data is 'unknown'."""
    for side in (left, right):
        if not isinstance(side, Truth | NoData):
            raise DslError(f"{op} needs true/false, not {type_name(side)}", offset=at)
    decisive = op == "or"  # true decides `or`, false decides `and`
    if any(isinstance(s, Truth) and s.value is decisive for s in (left, right)):
        return Truth(decisive)
    unknown = next((s for s in (left, right) if isinstance(s, NoData)), None)
    return unknown if unknown is not None else Truth(not decisive)


def negate(op: str, operand: Value, at: int) -> Value:
    """Unary `-x` and `not x`."""
    if isinstance(operand, NoData):
        return operand
    if op == "not":
        if not isinstance(operand, Truth):
            raise DslError(f"not needs true/false, not {type_name(operand)}", offset=at)
        return Truth(not operand.value)
    if not isinstance(operand, Number) or operand.unit == TIME:
        raise DslError(f"cannot negate {type_name(operand)}", offset=at)
    return Number(-operand.value, operand.unit)


def describe(value: Value) -> str:
    """A short human rendering of a value (the right-hand side of a statement)."""
    if isinstance(value, Number):
        text = format_quantity(value.value, value.unit)
        return f"{text} ({value.detail})" if value.detail else text
    if isinstance(value, Truth):
        return "true" if value.value else "false"
    if isinstance(value, Text):
        return repr(value.value)
    if isinstance(value, Range):
        return str(value.value)
    if isinstance(value, Templates):
        shown = "; ".join(f"{t.template!r} x{t.count}" for t in value.items)
        return f"{len(value.items)} templates of {value.lines} lines: {shown or 'none'}"
    if isinstance(value, Selection):
        return f"{value.text} over {value.window}"
    return f"no data: {value.reason}"


def format_quantity(value: float, unit: str) -> str:
    """A number in its unit: times as ISO, durations in ms or s, the rest to 4 digits."""
    if unit == TIME:
        return iso(value)
    if unit == SECONDS:
        return f"{value * 1000:.4g} ms" if abs(value) < 1 else f"{value:.4g} s"
    return f"{value:.4g}{' ' + unit if unit else ''}"
