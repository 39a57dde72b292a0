"""No input crashes the language: anything but a DslError escaping parse or run is a bug.

Four generators: arbitrary text, soups of the language's own tokens (which get past the lexer
and into the parser and interpreter), well-formed expressions of random shape (which reach
every function with every kind of argument), and valid expressions damaged byte by byte. Each
parse and each evaluation must also end within the bound of tests/unit/llm/hostile.py;
WARROOM_FUZZ_N scales the run (300 examples per generator by default).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llm.hostile import bounded, mutated, report_tallies

from warroom.dsl import Context, DslError, parse, run, unparse
from warroom.dsl.syntax import Expr, Filter, Num, Selector, Str

# The recursive strategy's repr is large; hypothesis warns about building it, harmlessly.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

FUZZ = settings(
    max_examples=int(os.environ.get("WARROOM_FUZZ_N", "300")),
    deadline=None,  # bounded() times each call; a deadline would count hypothesis' own work
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NAMES = ["dsl parse", "dsl run"]


@pytest.fixture(scope="module", autouse=True)
def _tallies(pytestconfig: pytest.Config) -> Iterator[None]:
    yield
    report_tallies(pytestconfig, NAMES)


TOKENS = [
    *("metric", "logs", "spans", "events", "mean", "p", "count", "rate", "change", "delta"),
    *("ratio", "onset", "zscore", "corr", "top_templates", "new_templates", "error_ratio"),
    *("latency_p", "abs", "last", "maen", "window", "baseline", "alert", "start", "end"),
    *("service", "name", "level", "message", "operation", "error", "kind", "k", "lag"),
    *("(", ")", "[", "]", ",", "..", ".", "=", "~", "+", "-", "*", "/", "<", "<=", "=="),
    *("!=", ">", ">=", "and", "or", "not", "true", "false", "0", "1", "2.5", "90", "5m"),
    *("250ms", "20%", "1e309", "1e-300", "10:03", "00:10", "99:99", "1970-01-01T00:10:00Z"),
    *('"db"', '"conns"', '"cpu"', '"checkout"', '"ERROR"', "'x'", '"\\q"', '"open', "#", "\n"),
    *("@", "\\", "\t", "é", "\x00"),
]


def _only_dsl_errors(text: str, context: Context | None = None) -> Expr | None:
    try:
        with bounded("dsl parse"):
            tree = parse(text)
    except DslError:
        return None
    canonical = unparse(tree)
    assert parse(canonical) == tree
    assert unparse(parse(canonical)) == canonical
    if context is not None:
        try:
            with bounded("dsl run"):
                outcome = run(text, context)
        except DslError:
            return tree
        assert outcome.evidence.source == canonical
    return tree


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text_only_ever_raises_dsl_errors(text: str) -> None:
    _only_dsl_errors(text)


@FUZZ
@given(tokens=st.lists(st.sampled_from(TOKENS), max_size=40), glue=st.sampled_from(["", " "]))
def test_token_soups_only_ever_raise_dsl_errors(
    tokens: list[str], glue: str, context: Context
) -> None:
    _only_dsl_errors(glue.join(tokens), context)


SELECTORS = st.sampled_from(
    [
        'metric("db", "conns")',
        'metric("db", "cpu")',
        'metric("db")',
        'metric("nope", "x")',
        'metric(name~"c")',
        'logs("checkout")',
        'logs(level="ERROR", message~"fail")',
        "logs()",
        'spans("checkout", error=true)',
        'spans(operation~"x")',
        'events("db", kind="deploy")',
    ]
)
WINDOWS = st.sampled_from(
    [
        "",
        "[window]",
        "[baseline]",
        "[alert - 5m .. alert + 2m]",
        "[00:10 .. 00:20]",
        "[window - 10m]",
        "[alert .. alert]",
        "[alert .. alert - 1s]",
        "[1970-01-01T00:00:00Z .. window]",
    ]
)
LEAVES = st.one_of(
    st.builds(str.__add__, SELECTORS, WINDOWS),
    st.sampled_from(["0", "1", "3", "90", "250ms", "5m", "20%", "1e300", "true", "false"]),
    st.sampled_from(["alert", "window", "baseline", "window.start", "baseline.end", '"db"']),
    st.sampled_from(["10:03", "1970-01-01T00:15:00Z"]),
)
ONE = st.sampled_from(
    ["mean", "median", "min", "max", "sum", "last", "count", "rate", "change", "delta"]
    + ["onset", "zscore", "top_templates", "new_templates", "error_ratio", "abs"]
)
TWO = st.sampled_from(
    ["p", "change", "delta", "ratio", "corr", "latency_p", "top_templates", "onset", "zscore"]
)
OPS = st.sampled_from(["+", "-", "*", "/", "<", ">=", "==", "!=", "and", "or"])


def _grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds("{}({})".format, ONE, inner),
        st.builds("{}({}, {})".format, TWO, inner, inner),
        st.builds("corr({}, {}, lag={})".format, inner, inner, inner),
        st.builds("({}) {} ({})".format, inner, OPS, inner),
        st.builds("not ({})".format, inner),
        st.builds("-({})".format, inner),
    )


EXPRESSIONS = st.recursive(LEAVES, _grow, max_leaves=6)


@FUZZ
@given(text=EXPRESSIONS)
def test_well_formed_expressions_parse_and_evaluate_or_fail_cleanly(
    text: str, context: Context
) -> None:
    assert _only_dsl_errors(text, context) is not None


@FUZZ
@given(
    number=st.floats(min_value=0, max_value=1e300, allow_nan=False, allow_infinity=False),
    unit=st.sampled_from(["", "ms", "s", "m", "h", "d", "%"]),
    text=st.text(max_size=50),
)
def test_literals_print_back_to_themselves(number: float, unit: str, text: str) -> None:
    for tree in (Num(number, unit), Str(text), Selector("logs", (Filter("message", "~", text),))):
        assert parse(unparse(tree)) == tree


VALID = [
    b'max(metric("db", "conns")[window]) > 5 * median(metric("db", "conns")[baseline])',
    b'count(logs(level="ERROR", message~"fail")[alert - 5m .. alert + 2m]) >= 3',
    b'corr(metric("db", "cpu"), latency_p(spans("checkout"), 90), lag=30s) > 0.8',
    b'onset(metric("db", "conns")) < alert and not (error_ratio(spans("checkout")) < 20%)',
]


@FUZZ
@given(data=mutated(*VALID))
def test_damaged_expressions_only_ever_raise_dsl_errors(data: bytes, context: Context) -> None:
    _only_dsl_errors(data.decode("utf-8", errors="replace"), context)
