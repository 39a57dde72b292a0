"""parse(text) -> AST: lark's LALR parser over grammar.lark, then a checked tree walk.

Names and arity are checked here, so a typo fails before any query runs and the error can
point at it. Every failure is a DslError with the position and, for syntax, what was expected.

    >>> unparse(parse("mean( metric('db','cpu')[window] )"))
    'mean(metric("db", "cpu")[window])'
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from importlib.resources import files

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from warroom.dsl.catalogue import (
    ANCHORS,
    FUNCTIONS,
    MAX_DEPTH,
    MAX_SOURCE_CHARS,
    SELECTORS,
    Signature,
)
from warroom.dsl.errors import DslError, syntax_error
from warroom.dsl.syntax import (
    Binary,
    Bool,
    Call,
    Clock,
    Expr,
    Filter,
    Num,
    Ref,
    Selector,
    Stamp,
    Str,
    Unary,
    Window,
    unparse,
)

__all__ = ["parse", "unparse"]

Handler = Callable[[Tree[Token]], Expr]

_LARK = Lark(
    files("warroom.dsl").joinpath("grammar.lark").read_text(encoding="utf-8"),
    parser="lalr",
    propagate_positions=True,
    maybe_placeholders=True,
)
# Terminals written as a literal in the grammar ("(", "and", ...), for "expected ..." lists.
_LITERALS = {t.name: str(t.pattern.value) for t in _LARK.terminals if t.pattern.type == "str"}
_NUMBER = re.compile(r"(?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?P<unit>ms|s|m|h|d|%)?")


def parse(source: str) -> Expr:
    """Parse an expression; raises DslError pointing at the first problem."""
    if len(source) > MAX_SOURCE_CHARS:
        raise DslError(f"expression is {len(source)} characters long (limit {MAX_SOURCE_CHARS})")
    if not source.strip() or not _strip_comments(source).strip():
        raise DslError("the expression is empty")
    try:
        tree = _LARK.parse(source)
    except UnexpectedInput as exc:
        raise syntax_error(exc, source, _LITERALS) from None
    deepest = _depth(tree)
    if deepest > MAX_DEPTH:
        raise DslError(f"expression nests {deepest} levels deep (limit {MAX_DEPTH})")
    try:
        return _build(tree)
    except DslError as exc:
        raise exc.located(source) from None


def _strip_comments(source: str) -> str:
    return re.sub(r"#[^\n]*", "", source)


def _depth(tree: Tree[Token]) -> int:
    """Depth of the AST this tree becomes (a chain a + b + c folds into n - 1 levels).

    Counted without recursion, so the builder, the interpreter and unparse (which recurse)
    only ever see bounded depths.
    """
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        kids = [c for c in node.children if isinstance(c, Tree)]
        step = len(kids) if str(node.data) in _CHAINS else 1
        stack.extend((c, level + step) for c in kids)
    return deepest


_CHAINS = {"or_test", "and_test", "comparison", "sum", "product"}


# --- tree -> AST ------------------------------------------------------------------------------


def _at(node: Tree[Token] | Token) -> int:
    if isinstance(node, Token):
        return node.start_pos or 0
    return getattr(node.meta, "start_pos", 0) if not node.meta.empty else 0


def _build(node: Tree[Token] | Token) -> Expr:
    if isinstance(node, Token):  # pragma: no cover - every token sits inside a named rule
        raise DslError(f"unexpected {node!s}", offset=_at(node))
    handler = _HANDLERS.get(str(node.data))
    if handler is None:  # pragma: no cover - the grammar and the handlers move together
        raise DslError(f"unsupported construct {node.data}", offset=_at(node))
    return handler(node)


def _number(node: Tree[Token]) -> Expr:
    token = node.children[0]
    assert isinstance(token, Token)
    found = _NUMBER.fullmatch(str(token))
    assert found is not None  # the grammar's NUMBER has this shape
    number = float(found.group("number"))
    if number > 1e300:
        raise DslError(f"number {token!s} is too large", offset=_at(token))
    return Num(number, found.group("unit") or "", at=_at(token))


def _string(node: Tree[Token]) -> Expr:
    token = node.children[0]
    assert isinstance(token, Token)
    return Str(_unescape(str(token)[1:-1], _at(token)), at=_at(token))


_UNESCAPE = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


def _unescape(body: str, at: int) -> str:
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]  # the grammar never ends a string on a lone backslash
            if nxt not in _UNESCAPE:
                raise DslError(
                    f"unknown escape \\{nxt} (known: \\n \\t \\\\ \\\" \\')", offset=at + i + 1
                )
            out.append(_UNESCAPE[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _clock(node: Tree[Token]) -> Expr:
    token = node.children[0]
    parts = [int(p) for p in str(token).split(":")]
    hour, minute, second = (parts + [0])[:3]
    if hour > 23 or minute > 59 or second > 59:
        raise DslError(f"{token!s} is not a time of day (00:00 .. 23:59:59)", offset=_at(node))
    return Clock(hour, minute, second, at=_at(node))


def _stamp(node: Tree[Token]) -> Expr:
    token = node.children[0]
    try:
        moment = datetime.fromisoformat(str(token).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise DslError(f"{token!s} is not a valid timestamp", offset=_at(node)) from None
    fraction = f".{moment.microsecond:06d}" if moment.microsecond else ""
    return Stamp(moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z", at=_at(node))


def _ref(node: Tree[Token]) -> Expr:
    name = ".".join(str(t) for t in node.children if t is not None)
    if name in ANCHORS:
        return Ref(name, at=_at(node))
    if name in FUNCTIONS or name in SELECTORS:
        raise DslError(f"{name} is a function: call it as {name}(...)", offset=_at(node))
    hint = _suggest(name, ANCHORS)
    raise DslError(
        f"unknown name {name!r}{hint} (names: {', '.join(ANCHORS)}; strings need quotes)",
        offset=_at(node),
    )


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _unary(op: str) -> Handler:
    def build(node: Tree[Token]) -> Expr:
        return Unary(op, _build(node.children[0]), at=_at(node))

    return build


def _fold(node: Tree[Token]) -> Expr:
    """Left-fold `a op b op c`; an operator is a token (and, or) or a one-token tree (+, <)."""
    children = node.children
    result = _build(children[0])
    for i in range(1, len(children), 2):
        op = children[i]
        token = op if isinstance(op, Token) else op.children[0]
        assert isinstance(token, Token)
        result = Binary(str(token), result, _build(children[i + 1]), at=_at(token))
    return result


# --- calls and selectors ----------------------------------------------------------------------


def _arguments(node: Tree[Token]) -> tuple[list[Expr], list[tuple[str, str, Expr, int]]]:
    """Positional args and (name, op, value, at) keywords, in the order written."""
    positional: list[Expr] = []
    keywords: list[tuple[str, str, Expr, int]] = []
    args = node.children[1]
    for arg in args.children if isinstance(args, Tree) else []:
        if isinstance(arg, Tree) and arg.data in ("keyword", "contains"):
            name = arg.children[0]
            op = "=" if arg.data == "keyword" else "~"
            keywords.append((str(name), op, _build(arg.children[1]), _at(arg)))
            continue
        if keywords:
            raise DslError("a positional argument cannot follow a keyword one", offset=_at(arg))
        positional.append(_build(arg))
    return positional, keywords


def _call(node: Tree[Token]) -> Expr:
    name = str(node.children[0])
    if name in SELECTORS:
        return _selector(node, name)
    signature = FUNCTIONS.get(name)
    if signature is None:
        hint = _suggest(name, [*FUNCTIONS, *SELECTORS])
        raise DslError(f"unknown function {name!r}{hint}", offset=_at(node))
    positional, keywords = _arguments(node)
    return Call(name, _bind(signature, positional, keywords, _at(node)), at=_at(node))


def _bind(
    signature: Signature,
    positional: list[Expr],
    keywords: list[tuple[str, str, Expr, int]],
    at: int,
) -> tuple[Expr | None, ...]:
    params = signature.params
    slots: list[Expr | None] = [None] * len(params)
    allowed = sum(not p.keyword_only for p in params)
    if len(positional) > allowed:
        raise DslError(
            f"too many arguments: {signature.usage}", offset=_at_expr(positional[allowed])
        )
    slots[: len(positional)] = positional
    names = [p.name for p in params]
    for name, op, value, kw_at in keywords:
        if name not in names:
            raise DslError(
                f"{signature.name} has no argument {name!r}: {signature.usage}", offset=kw_at
            )
        if op == "~":
            raise DslError("~ (contains) only filters selectors; use name=value", offset=kw_at)
        index = names.index(name)
        if slots[index] is not None:
            raise DslError(f"argument {name!r} given twice", offset=kw_at)
        slots[index] = value
    missing = [p.name for p, s in zip(params, slots, strict=True) if s is None and not p.optional]
    if missing:
        raise DslError(f"missing argument {missing[0]!r}: {signature.usage}", offset=at)
    return tuple(slots)


def _at_expr(expr: Expr) -> int:
    return expr.at


def _selector(node: Tree[Token], kind: str) -> Expr:
    spec = SELECTORS[kind]
    positional, keywords = _arguments(node)
    if len(positional) > len(spec.positional):
        raise DslError(
            f"too many arguments: {spec.usage}", offset=positional[len(spec.positional)].at
        )
    given = [
        (name, "=", value, value.at)
        for name, value in zip(spec.positional, positional, strict=False)
    ]
    filters: dict[str, Filter] = {}
    for name, op, value, at in [*given, *keywords]:
        if name not in spec.fields:
            hint = _suggest(name, spec.fields)
            raise DslError(f"{kind}() has no field {name!r}{hint}: {spec.usage}", offset=at)
        if name in filters:
            raise DslError(f"field {name!r} given twice", offset=at)
        filters[name] = _filter(spec.boolean, name, op, value, at)
    ordered = tuple(filters[f] for f in spec.fields if f in filters)
    return Selector(kind, ordered, at=_at(node))


def _filter(boolean: frozenset[str], name: str, op: str, value: Expr, at: int) -> Filter:
    if name in boolean:
        if op != "=" or not isinstance(value, Bool):
            raise DslError(f"{name} takes true or false: {name}=true", offset=value.at)
        return Filter(name, op, value.value, at=at)
    if not isinstance(value, Str):
        raise DslError(f'{name} takes a string in quotes: {name}="..."', offset=value.at)
    return Filter(name, op, value.value, at=at)


def _windowed(node: Tree[Token]) -> Expr:
    target = _build(node.children[0])
    if not isinstance(target, Selector):
        raise DslError(
            "only a selector (metric, logs, spans, events) takes a [window]",
            offset=_at(node.children[1]),
        )
    if target.window is not None:
        raise DslError("this selector already has a window", offset=_at(node.children[1]))
    spec = node.children[1]
    assert isinstance(spec, Tree)
    parts = [_build(c) for c in spec.children]
    window = Window(parts[0], parts[1] if len(parts) > 1 else None, at=_at(spec))
    return Selector(target.kind, target.filters, window, at=target.at)


def _constant(value: bool) -> Handler:
    def build(node: Tree[Token]) -> Expr:
        return Bool(value, at=_at(node))

    return build


_HANDLERS: dict[str, Handler] = {
    "number": _number,
    "string": _string,
    "clock": _clock,
    "stamp": _stamp,
    "true": _constant(True),
    "false": _constant(False),
    "ref": _ref,
    "call": _call,
    "windowed": _windowed,
    "neg": _unary("-"),
    "not_op": _unary("not"),
    "or_test": _fold,
    "and_test": _fold,
    "comparison": _fold,
    "sum": _fold,
    "product": _fold,
}
