"""The interpreter on the hand-built case of conftest.py: exact numbers, typed no-data, errors."""

from __future__ import annotations

import math

import pytest

from warroom.dsl import Context, DslError, run
from warroom.dsl.values import NoData, Number, Range, Selection, Templates, Truth, Value


def value(text: str, context: Context) -> Value:
    return run(text, context).value


def number(text: str, context: Context) -> float:
    result = value(text, context)
    assert isinstance(result, Number), result
    return result.value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('change(metric("db", "conns"))', 2.0),
        ('change(metric("db", "conns")[window], metric("db", "conns")[baseline])', 2.0),
        ('change(metric("db", "conns")[window], metric("db", "conns")[window - 10m])', 2.0),
        ('delta(metric("db", "conns"))', 10.0),
        ('ratio(metric("db", "conns"), metric("db", "conns")[baseline])', 2.0),
        ('mean(metric("db", "conns"))', 20.0),
        ('mean(metric("db", "conns")[baseline])', 10.0),
        ('mean(metric("db", "cpu"))', 70.0),
        ('median(metric("db", "cpu"))', 70.0),
        ('min(metric("db", "cpu"))', 50.0),
        ('max(metric("db", "cpu"))', 90.0),
        ('sum(metric("db", "conns"))', 1200.0),
        ('last(metric("db", "cpu"))', 90.0),
        ('p(90, metric("db", "cpu"))', 90.0),
        ('p(0, metric("db", "cpu"))', 50.0),
        ('count(metric("db", "conns"))', 60.0),
        ('count(metric("db"))', 180.0),
        ('count(logs("checkout"))', 90.0),
        ('count(logs("checkout")[baseline])', 60.0),
        ('count(logs("checkout", level="error"))', 30.0),
        ('count(logs("checkout", message~"PAYMENT"))', 30.0),
        ('count(logs(message~"handled")[alert - 5m .. alert + 2m])', 42.0),
        ('count(logs("checkout")[00:10 .. 00:20])', 90.0),
        ('count(logs("checkout")[1970-01-01T00:10:00Z .. window.end])', 90.0),
        ('count(spans("checkout", error=true))', 25.0),
        ('count(spans(operation~"charge", error=false))', 75.0),
        ('count(events("db")[baseline.start .. window.end])', 2.0),
        ('count(events(kind="deploy"))', 1.0),
        ('rate(logs("checkout"))', 90 / 600),
        ('change(logs("checkout"))', 1.5),
        ('error_ratio(logs("checkout"))', 1 / 3),
        ('error_ratio(spans("checkout"))', 0.25),
        ('error_ratio(spans("checkout")[baseline])', 0.0),
        ('latency_p(50, spans("checkout"))', 0.1),
        ('latency_p(90, spans("checkout"))', 0.5),
        ('onset(metric("db", "cpu")) - alert', 0.0),
        ('onset(events("db", kind="deploy")[window - 10m .. window]) - alert', -50.0),
        ('onset(logs("checkout", level="ERROR")) - window.start', 5.0),
        ("1 + 2 * 3 - 4 / 8", 6.5),
        ("250ms + 1.5s", 1.75),
        ("5m / 1s", 300.0),
        ("20% * 10", 2.0),
        ("abs(-3)", 3.0),
        ("window.end - window.start", 600.0),
        ("alert - 5m - window.start", 0.0),
        ("alert - 00:10", 300.0),
    ],
)
def test_numbers_are_exact(text: str, expected: float, context: Context) -> None:
    assert number(text, context) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_change_of_a_doubling_series_is_two_with_its_baseline(context: Context) -> None:
    outcome = run('change(metric("db", "conns"))', context)
    assert outcome.evidence.value == 2.0
    assert outcome.evidence.baseline == 10.0
    assert "mean 20 in the window vs mean 10 in the baseline" in outcome.evidence.statement


def test_onset_is_the_first_point_off_the_baseline(context: Context) -> None:
    outcome = run('onset(metric("db", "cpu"))', context)
    assert outcome.evidence.value == 900.0
    assert outcome.evidence.unit == "epoch s"
    assert "1970-01-01T00:15:00Z" in outcome.evidence.statement


def test_zscore_is_the_peak_against_the_baseline(context: Context) -> None:
    # Baseline flat at 50: the scale is the 5 % floor (2.5), so 90 is 16 sigma.
    assert number('zscore(metric("db", "cpu"))', context) == pytest.approx(16.0)


def test_onset_and_zscore_take_another_reference(context: Context) -> None:
    cpu = 'metric("db", "cpu")'
    assert number(f"onset({cpu}, {cpu}[baseline])", context) == 900.0
    # Against the first half of the window (50 throughout), the step at 900 is the onset.
    assert number(f"onset({cpu}, {cpu}[window.start .. alert])", context) == 900.0
    # Against a reference at 90, the points at 50 are the outliers: 40 / (0.05 * 90) sigma.
    z = number(f"zscore({cpu}, {cpu}[alert .. window.end])", context)
    assert z == pytest.approx(-40 / 4.5)
    with pytest.raises(DslError, match="onset of records takes no base"):
        run(f'onset(logs("checkout"), {cpu})', context)


def test_corr_finds_the_lag_at_which_one_series_copies_the_other(context: Context) -> None:
    outcome = run('corr(metric("db", "cpu"), metric("api", "latency"), lag=1m)', context)
    assert outcome.evidence.value == pytest.approx(1.0)
    assert "lag +30 s: api/latency follows db/cpu by 30 s" in outcome.evidence.statement
    assert number('corr(metric("db", "cpu"), metric("api", "latency"))', context) < 0.95


def test_top_templates_and_new_templates(context: Context) -> None:
    top = value('top_templates(logs("checkout"), 2)', context)
    assert isinstance(top, Templates)
    assert [t.count for t in top.items] == [60, 30]
    assert top.lines == 90
    assert top.items[0].template == "request <*> handled in <*> ms"
    fresh = run('new_templates(logs("checkout"))', context)
    assert isinstance(fresh.value, Templates)
    assert [(t.template, t.count) for t in fresh.value.items] == [
        ("payment failed: timeout after <*> ms", 30)
    ]
    assert fresh.evidence.value == 30.0
    assert fresh.evidence.unit == "lines"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('latency_p(90, spans("checkout")) > 250ms', True),
        ('mean(metric("db", "conns")) >= 2 * mean(metric("db", "conns")[baseline])', True),
        ('onset(metric("db", "cpu")) < onset(metric("api", "latency"))', True),
        ("alert == window.start + 5m", True),
        ('"a" != "b"', True),
        ("not (1 > 2) and (true == true)", True),
        ('mean(metric("nope", "x")) > 1 or true', True),
        ('mean(metric("nope", "x")) > 1 and false', False),
    ],
)
def test_comparisons_and_logic(text: str, expected: bool, context: Context) -> None:
    assert value(text, context) == Truth(expected)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('mean(metric("nope", "x"))', 'no points of metric("nope", "x") in the window'),
        ('mean(metric("db", "conns")[00:00 .. 00:00])', "no points"),
        ('onset(metric("db", "threads"))', "never leaves its baseline"),
        ('onset(metric("db", "conns")[baseline])', "never leaves"),
        ('onset(logs("payment"))', "no logs match"),
        ('top_templates(logs("payment"))', "no log lines"),
        ('latency_p(90, spans("payment"))', "no spans match"),
        ('error_ratio(spans("payment"))', "no spans match"),
        ('change(spans("checkout", error=true))', "no ratio: the second value is 0"),
        ('mean(metric("nope", "x")) > 1 and true', "no points"),
        ('count(logs()[onset(metric("db", "threads")) .. window])', "never leaves"),
        ("1 / 0", "division by zero"),
        ("1e300 * 1e300", "not a finite number"),
    ],
)
def test_missing_data_is_a_value_not_an_error(text: str, reason: str, context: Context) -> None:
    outcome = run(text, context)
    assert isinstance(outcome.value, NoData)
    assert reason in outcome.value.reason
    assert math.isnan(outcome.evidence.value)
    assert outcome.evidence.statement.startswith(f"{outcome.expression} = no data: ")


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ('mean(logs("checkout"))', 6, "mean needs metric(...), got a logs selector"),
        ('mean(spans("checkout"))', 6, "use latency_p(50, spans(...))"),
        ('mean(metric("db"))', 1, 'metric("db") matches 3 series'),
        ('rate(metric("db", "cpu"))', 6, "rate needs logs(...) or spans(...) or events(...)"),
        ('top_templates(spans("checkout"))', 15, "needs logs(...)"),
        ('p(120, metric("db", "cpu"))', 3, "outside 0..100"),
        ("top_templates(logs(), 0)", 23, "k must be a whole number"),
        ('corr(metric("db", "cpu"), metric("api", "latency"), lag=-1s)', 57, "lag must be"),
        ('corr(metric("db", "cpu"), metric("api", "latency"), lag=5)', 57, "needs a duration"),
        ("change(1)", 8, "for numbers give two"),
        ("alert - 5", 7, "give durations a unit"),
        ("alert + alert", 7, "cannot apply + to a time and a time"),
        ("alert < 5", 7, "cannot compare a time with a number"),
        ("window * 2", 8, "cannot apply * to a time range"),
        ("1 and true", 3, "and needs true/false, not a number"),
        ("not 1", 1, "not needs true/false"),
        ("-alert", 1, "cannot negate a time"),
        ("logs()[alert]", 8, "a window is a range"),
        ("logs()[alert .. alert - 5m]", 8, "ends before it starts"),
        ("logs()[alert - 40d .. alert]", 8, "longer than 31 days"),
        ("logs()[5 .. alert]", 8, "a window bound is a time"),
        ("logs()[window - 5 .. alert]", 15, "shifts by a duration"),
    ],
)
def test_type_errors_point_at_the_culprit(
    text: str, column: int, words: str, context: Context
) -> None:
    with pytest.raises(DslError) as caught:
        run(text, context)
    assert words in caught.value.reason
    assert caught.value.position == (1, column)


def test_top_level_selectors_ranges_and_booleans_become_evidence(context: Context) -> None:
    selected = run('logs("checkout")', context)
    assert isinstance(selected.value, Selection)
    assert (selected.evidence.value, selected.evidence.unit) == (90.0, "rows")
    window = run("baseline", context)
    assert isinstance(window.value, Range)
    assert (window.evidence.value, window.evidence.unit) == (600.0, "s")
    truth = run("1 < 2", context)
    assert (truth.evidence.value, truth.evidence.unit) == (1.0, "bool")


def test_the_query_budget_stops_runaway_expressions(context: Context) -> None:
    text = " + ".join(['count(logs("checkout"))'] * 10)
    assert number(text, context) == 900.0
    from warroom.dsl import interpreter, query

    original = query.MAX_QUERIES
    try:
        query.Reader.__init__.__defaults__ = (5,)
        with pytest.raises(DslError, match="more than 5 queries"):
            interpreter.run(text, context)
    finally:
        query.Reader.__init__.__defaults__ = (original,)
