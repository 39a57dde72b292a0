"""The AST of an evidence expression (frozen dataclasses) and its canonical text.

`unparse(parse(text))` is the normalised expression: one spelling per meaning of the text
(spaces, quotes, argument order and redundant parentheses gone), so it names the computation in
evidence ids and is what a report prints for a reader to re-run.

Every node remembers where it started in the source (`at`, a character offset) for error
messages; positions do not take part in equality.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from warroom.dsl.catalogue import FUNCTIONS, SELECTORS


@dataclass(frozen=True)
class Node:
    """Base of every node: the character offset it starts at (ignored by ==)."""

    at: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True)
class Num(Node):
    """A number as written: magnitude and unit (ms, s, m, h, d, % or none)."""

    number: float
    unit: str = ""


@dataclass(frozen=True)
class Str(Node):
    """A string literal."""

    value: str


@dataclass(frozen=True)
class Bool(Node):
    """true or false."""

    value: bool


@dataclass(frozen=True)
class Clock(Node):
    """A time of day (UTC) such as 10:03 or 10:03:20, on the incident's date."""

    hour: int
    minute: int
    second: int = 0


@dataclass(frozen=True)
class Stamp(Node):
    """An absolute time, kept in canonical ISO-8601 UTC text."""

    iso: str


@dataclass(frozen=True)
class Ref(Node):
    """A named time of the case: window, baseline, alert, window.start, ..."""

    name: str


@dataclass(frozen=True)
class Unary(Node):
    """`-x` or `not x`."""

    op: str
    operand: Expr


@dataclass(frozen=True)
class Binary(Node):
    """An arithmetic, comparison or boolean operator; `at` is the operator's position."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Call(Node):
    """A function call; args line up with the signature's params (None: not given)."""

    name: str
    args: tuple[Expr | None, ...]


@dataclass(frozen=True)
class Filter(Node):
    """One selector condition: field = value, or field ~ text (contains, any case)."""

    name: str
    op: str
    value: str | bool


@dataclass(frozen=True)
class Window(Node):
    """`[start .. end]`, or `[start]` alone when it is a whole range such as `baseline`."""

    start: Expr
    end: Expr | None = None


@dataclass(frozen=True)
class Selector(Node):
    """metric/logs/spans/events with filters and an optional window (default: the incident)."""

    kind: str
    filters: tuple[Filter, ...]
    window: Window | None = None


Expr = Num | Str | Bool | Clock | Stamp | Ref | Unary | Binary | Call | Selector

COMPARISONS = ("<", ">", "<=", ">=", "==", "!=")
PRECEDENCE = {"or": 1, "and": 2, "not": 3, **dict.fromkeys(COMPARISONS, 4)}
PRECEDENCE |= {"+": 5, "-": 5, "*": 6, "/": 6}
NEG = 7
ATOM = 9


def precedence(node: Expr) -> int:
    """How tightly a node binds (higher: fewer parentheses needed around it)."""
    if isinstance(node, Binary):
        return PRECEDENCE[node.op]
    if isinstance(node, Unary):
        return NEG if node.op == "-" else PRECEDENCE["not"]
    return ATOM


def unparse(node: Expr) -> str:
    """The canonical text of an expression (parses back to an equal AST)."""
    if isinstance(node, Num):
        return format_number(node.number) + node.unit
    if isinstance(node, Str):
        return quote(node.value)
    if isinstance(node, Bool):
        return "true" if node.value else "false"
    if isinstance(node, Clock):
        text = f"{node.hour:02d}:{node.minute:02d}"
        return text + (f":{node.second:02d}" if node.second else "")
    if isinstance(node, Stamp):
        return node.iso
    if isinstance(node, Ref):
        return node.name
    if isinstance(node, Unary):
        return _unary(node)
    if isinstance(node, Binary):
        return _binary(node)
    if isinstance(node, Call):
        return _call(node)
    return _selector(node)


def _wrap(node: Expr, parens: bool) -> str:
    text = unparse(node)
    return f"({text})" if parens else text


def _unary(node: Unary) -> str:
    if node.op == "-":
        return "-" + _wrap(node.operand, precedence(node.operand) < NEG)
    return "not " + _wrap(node.operand, precedence(node.operand) < PRECEDENCE["not"])


def _binary(node: Binary) -> str:
    level = PRECEDENCE[node.op]
    # Left-associative operators need parentheses on the right at equal precedence;
    # comparisons do not chain, so they need them on both sides.
    chained = node.op in COMPARISONS
    left = _wrap(node.left, precedence(node.left) < level + chained)
    right = _wrap(node.right, precedence(node.right) <= level)
    return f"{left} {node.op} {right}"


def _call(node: Call) -> str:
    params = FUNCTIONS[node.name].params
    parts: list[str] = []
    keywords = False
    for param, arg in zip(params, node.args, strict=True):
        if arg is None:
            keywords = True
            continue
        text = unparse(arg)
        parts.append(f"{param.name}={text}" if keywords or param.keyword_only else text)
    return f"{node.name}({', '.join(parts)})"


def _selector(node: Selector) -> str:
    spec = SELECTORS[node.kind]
    given = {f.name: f for f in node.filters}
    parts: list[str] = []
    positional = True
    for name in spec.fields:
        f = given.get(name)
        if f is None:
            positional = False
            continue
        value = quote(f.value) if isinstance(f.value, str) else str(f.value).lower()
        positional = positional and name in spec.positional and f.op == "="
        parts.append(value if positional else f"{name}{f.op}{value}")
    text = f"{node.kind}({', '.join(parts)})"
    if node.window is None:
        return text
    start = unparse(node.window.start)
    end = "" if node.window.end is None else f" .. {unparse(node.window.end)}"
    return f"{text}[{start}{end}]"


def format_number(number: float) -> str:
    """Shortest text that reads back as the same float (no exponent for whole numbers)."""
    if number.is_integer() and abs(number) < 1e16:
        return str(int(number))
    return repr(number)


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}


def quote(text: str) -> str:
    """A double-quoted string literal for text."""
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in text) + '"'
