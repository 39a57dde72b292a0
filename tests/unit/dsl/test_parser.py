"""The grammar: every construct parses to the AST it should, and prints back canonically."""

from __future__ import annotations

import pytest

from warroom.dsl import DslError, parse, unparse
from warroom.dsl.catalogue import MAX_DEPTH, MAX_SOURCE_CHARS
from warroom.dsl.syntax import (
    Binary,
    Bool,
    Call,
    Clock,
    Filter,
    Num,
    Ref,
    Selector,
    Stamp,
    Str,
    Unary,
    Window,
)

DB_CPU = Selector("metric", (Filter("service", "=", "db"), Filter("name", "=", "cpu")))


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("42", Num(42.0)),
        ("1.5", Num(1.5)),
        ("2e3", Num(2000.0)),
        ("250ms", Num(250.0, "ms")),
        ("5m", Num(5.0, "m")),
        ("20%", Num(20.0, "%")),
        ('"orders-db"', Str("orders-db")),
        ("'single'", Str("single")),
        (r'"a \"quoted\" \\ word\n"', Str('a "quoted" \\ word\n')),
        ("true", Bool(True)),
        ("false", Bool(False)),
        ("10:03", Clock(10, 3)),
        ("10:03:20", Clock(10, 3, 20)),
        ("2025-06-15T15:06:40Z", Stamp("2025-06-15T15:06:40Z")),
        ("2025-06-15T17:06:40+02:00", Stamp("2025-06-15T15:06:40Z")),
        ("alert", Ref("alert")),
        ("window.start", Ref("window.start")),
        ("-x_not_allowed" if False else "-1", Unary("-", Num(1.0))),
        ("not true", Unary("not", Bool(True))),
        ('metric("db", "cpu")', DB_CPU),
        ('metric(name="cpu", service="db")', DB_CPU),
        ('mean(metric("db", "cpu"))', Call("mean", (DB_CPU,))),
        (
            'top_templates(logs("a"))',
            Call("top_templates", (Selector("logs", (Filter("service", "=", "a"),)), None)),
        ),
    ],
)
def test_each_literal_and_call_parses_to_its_node(text: str, tree: object) -> None:
    assert parse(text) == tree


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ('metric( "db" ,"cpu" )', 'metric("db", "cpu")'),
        ("metric('db', name='cpu')", 'metric("db", "cpu")'),
        ('logs("checkout", level="ERROR")[window]', 'logs("checkout", level="ERROR")[window]'),
        ('logs(level="ERROR", service="c")', 'logs("c", level="ERROR")'),
        ('logs(message~"Fail")', 'logs(message~"Fail")'),
        (
            'spans("c", operation~"Charge", error=true)',
            'spans("c", operation~"Charge", error=true)',
        ),
        (
            'events("c", kind="deploy")[window-30m..window]',
            'events("c", kind="deploy")[window - 30m .. window]',
        ),
        ('metric("a","b")[alert-5m .. alert+2m]', 'metric("a", "b")[alert - 5m .. alert + 2m]'),
        ('metric("a","b")[10:03 .. 10:10]', 'metric("a", "b")[10:03 .. 10:10]'),
        ('metric("a","b")[baseline]', 'metric("a", "b")[baseline]'),
        ('metric("a","b")[window - 10m]', 'metric("a", "b")[window - 10m]'),
        (
            'corr(metric("a","b"), metric("c","d"), lag=30s)',
            'corr(metric("a", "b"), metric("c", "d"), lag=30s)',
        ),
        ('top_templates(logs("a"), k=3)', 'top_templates(logs("a"), 3)'),
        ("p(90, metric('a', 'b'))", 'p(90, metric("a", "b"))'),
        ("1 + 2 * 3", "1 + 2 * 3"),
        ("(1 + 2) * 3", "(1 + 2) * 3"),
        ("((1))", "1"),
        ("1 - (2 - 3)", "1 - (2 - 3)"),
        ("(1 - 2) - 3", "1 - 2 - 3"),
        ("- -1", "--1"),
        ("-(1 + 2)", "-(1 + 2)"),
        ("1 < 2 and 2 >= 1 or not false", "1 < 2 and 2 >= 1 or not false"),
        ("not (1 < 2)", "not 1 < 2"),
        ("(1 < 2) == true", "(1 < 2) == true"),
        ("a_b" if False else "alert != alert", "alert != alert"),
        ("1 # a comment\n + 2", "1 + 2"),
        ("1.50", "1.5"),
        ("1e-5", "1e-05"),
    ],
)
def test_canonical_text(text: str, canonical: str) -> None:
    assert unparse(parse(text)) == canonical
    assert parse(canonical) == parse(text)


def test_operators_bind_and_associate_as_in_arithmetic() -> None:
    one, two, three = Num(1.0), Num(2.0), Num(3.0)
    assert parse("1 + 2 * 3") == Binary("+", one, Binary("*", two, three))
    assert parse("1 - 2 - 3") == Binary("-", Binary("-", one, two), three)
    assert parse("-1 * 2") == Binary("*", Unary("-", one), two)
    assert parse("not 1 < 2 and true") == Binary(
        "and", Unary("not", Binary("<", one, two)), Bool(True)
    )
    assert parse("true or false and false") == Binary(
        "or", Bool(True), Binary("and", Bool(False), Bool(False))
    )


def test_a_window_belongs_to_its_selector() -> None:
    tree = parse('logs("c")[alert - 5m .. alert]')
    assert tree == Selector(
        "logs",
        (Filter("service", "=", "c"),),
        Window(Binary("-", Ref("alert"), Num(5.0, "m")), Ref("alert")),
    )


def test_positions_point_at_the_source_but_do_not_change_equality() -> None:
    tree = parse('1 +\n  mean(metric("db", "cpu"))')
    assert isinstance(tree, Binary)
    assert tree.at == 2  # the operator
    assert tree.right.at == 6
    assert tree == parse('1 + mean(metric("db", "cpu"))')


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("mean(", 6, "unexpected end of expression"),
        ("1 +", 4, "unexpected end"),
        ("1 @ 2", 3, "unexpected character '@'"),
        ("1 < 2 < 3", 7, "unexpected token '<'"),
        ("maen(1)", 1, "unknown function 'maen' (did you mean mean?)"),
        ("mean(metric('a', 'b'), 2)", 24, "too many arguments: mean(x)"),
        ("p(90)", 1, "missing argument 'x': p(q, x)"),
        ("corr(1, 2, lagg=3s)", 12, "corr has no argument 'lagg'"),
        ("top_templates(logs(), k~'x')", 23, "~ (contains) only filters selectors"),
        ("mean(x=1, x=2)", 11, "given twice"),
        ("mean(x=1, 2)", 11, "positional argument cannot follow"),
        ("metric('a', foo='b')", 13, "metric() has no field 'foo'"),
        ("logs(levle='ERROR')", 6, "(did you mean level?)"),
        ("spans(error='yes')", 13, "error takes true or false"),
        ("logs(level=1)", 12, "level takes a string in quotes"),
        ("logs('a', 'b')", 11, "too many arguments: logs(service"),
        ("logs(service='a', service='b')", 19, "field 'service' given twice"),
        ("mean(1)[window]", 9, "only a selector"),
        ("logs()[window][window]", 16, "already has a window"),
        ("windw", 1, "unknown name 'windw' (did you mean window?)"),
        ("mean", 1, "mean is a function"),
        ("window.middle", 1, "unknown name 'window.middle'"),
        ("25:00", 1, "not a time of day"),
        ("2025-13-01T00:00Z", 1, "not a valid timestamp"),
        ('"bad \\q"', 6, "unknown escape \\q"),
        ("5min", 1, "unknown unit in 5min"),
        ("metric('a', 'b')[alert - 1.5hours]", 26, "unknown unit in 1.5hours"),
        ("1" + "0" * 400, 1, "too large"),
    ],
)
def test_errors_say_what_and_point_where(text: str, column: int, words: str) -> None:
    with pytest.raises(DslError) as caught:
        parse(text)
    error = caught.value
    assert words in error.reason
    assert error.position == (1, column)
    lines = str(error).splitlines()
    assert lines[0].endswith(f"line 1, column {column}")
    assert lines[1] == f"  {text}"
    assert lines[2] == "  " + " " * (column - 1) + "^"


def test_syntax_errors_say_what_was_expected() -> None:
    with pytest.raises(DslError) as caught:
        parse("mean(metric('a', 'b') 2)")
    assert 'expected ")"' in caught.value.reason or '")"' in caught.value.reason


def test_the_caret_is_drawn_under_the_right_line() -> None:
    with pytest.raises(DslError) as caught:
        parse("count(logs('a'))\n  + maen(1)")
    assert caught.value.position == (2, 5)
    assert str(caught.value).splitlines()[1:] == ["    + maen(1)", "      ^"]


def test_empty_and_oversized_inputs_are_refused() -> None:
    for text in ("", "   ", "# only a comment"):
        with pytest.raises(DslError, match="empty"):
            parse(text)
    with pytest.raises(DslError, match="characters long"):
        parse("1" + " " * MAX_SOURCE_CHARS)
    with pytest.raises(DslError, match="nests"):
        parse("(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH + "+ " + "-" * (MAX_DEPTH + 5) + "1")


def test_long_chains_count_as_depth() -> None:
    text = " + ".join(["1"] * 40)
    assert unparse(parse(text)) == text
    with pytest.raises(DslError, match="nests"):
        parse(" + ".join(["1"] * 500))


def test_keywords_are_not_names_but_names_may_start_with_them() -> None:
    with pytest.raises(DslError, match="unknown name 'android'"):
        parse("android")
    assert parse("not true") == Unary("not", Bool(True))
