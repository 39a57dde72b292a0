"""The HTML report: well-formed, self-contained, escaped, one chart per series, robust to gaps."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np

from warroom.model import Evidence, Incident, Report, RootCause, Series, TimeRange
from warroom.report.charts import Chart
from warroom.report.html import to_html
from warroom.report.svg import fmt_number, line_chart, nice_ticks, thin, time_ticks

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
WINDOW = TimeRange(T0, T0 + 600)
INCIDENT = Incident("inc-42", WINDOW, T0 + 300, "frontend", "latency-p90(ms)")
EVIDENCE = (
    Evidence(
        "metric:payment:cpu",
        "payment cpu 3 -> 98 (x32.7, 25.0 robust sigma)",
        98.0,
        3.0,
        "cpu(%)",
        "experts.metrics.deviation(series=payment/cpu)",
    ),
)
CULPRIT = RootCause(
    "payment", "cpu", "cpu", 17.5, T0 + 120, ("payment", "checkout", "frontend"), 1.0, EVIDENCE
)
VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "source"}


class _Checker(HTMLParser):
    """Records every start tag and fails on an end tag that closes the wrong element."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def _parse(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert not checker.errors, checker.errors[:5]
    assert not checker.stack, f"unclosed: {checker.stack}"
    return checker


def _chart(values: list[float | None], title: str = "payment · cpu") -> Chart:
    times = T0 - 300 + 60.0 * np.arange(len(values), dtype=np.float64)
    series = Series("payment", "cpu", times, np.array(values, dtype=np.float64))
    return Chart(title, series, WINDOW, INCIDENT.alert_time, T0 + 120, baseline_value=3.0)


def _report(candidates: tuple[RootCause, ...] = (CULPRIT,), confidence: float = 0.8) -> Report:
    return Report(INCIDENT, candidates, confidence, missing=("traces: none in the window",))


def test_page_is_well_formed_and_needs_no_network() -> None:
    page = to_html(_report(), [_chart([3, 3, 4, 3, 3, 90, 95, 97, 96, 98, 97, 99, 98, 97])])
    checker = _parse(page)
    assert page.startswith("<!DOCTYPE html>")
    assert {"html", "head", "body", "main", "style", "svg", "table"} <= set(checker.tags)
    assert not {"script", "link", "img", "iframe"} & set(checker.tags)
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "")


def test_verdict_path_evidence_and_missing_evidence_are_shown() -> None:
    page = to_html(_report(), [])
    assert "Root cause" in page and "payment" in page
    assert "high" in page  # render.confidence_label(0.8)
    assert "payment → checkout → frontend" in page  # the path's accessible label
    for text in ("98", "3", "cpu(%)", "experts.metrics.deviation(series=payment/cpu)"):
        assert text in page
    assert "Missing evidence" in page and "traces: none in the window" in page
    assert "2023-11-14T22:15:20Z" in page  # the onset, UTC


def test_hostile_strings_are_escaped() -> None:
    evil = "<script>alert(1)</script>"
    evidence = Evidence('e"1', '<img src=x onerror="alert(1)">', 1.0, None, "&amp;", evil)
    culprit = RootCause(evil, evil, evil, 1.0, None, (evil, "b&b"), 1.0, (evidence,))
    incident = Incident("</title><script>", WINDOW, T0 + 300, evil, '"><b>')
    report = Report(incident, (culprit,), 0.9, missing=(evil,), notes=(evil,))
    series = Series(evil, evil, np.array([T0, T0 + 60]), np.array([1.0, 2.0]))
    page = to_html(report, [Chart(evil, series, WINDOW, caption=evil)])
    checker = _parse(page)
    assert not {"script", "img", "b"} & set(checker.tags)
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;" in page and "&amp;amp;" in page


def test_one_svg_per_chart_plus_the_path() -> None:
    charts = [_chart([1, 2, 3]), _chart([4, 5, 6], "frontend · latency"), _chart([7, 8])]
    checker = _parse(to_html(_report(), charts))
    assert checker.tags.count("svg") == len(charts) + 1


def test_missing_samples_break_the_line_not_the_chart() -> None:
    svg = line_chart(_chart([1, float("nan"), None, 3, 4, float("nan"), 5]), "c")
    _parse(svg)
    assert "nan" not in svg.lower()
    path = svg.split('class="series" d="')[1].split('"')[0]
    assert path.count("M") == 1  # 3 -> 4 is the only run of two or more samples
    assert svg.count('class="dot"') == 2  # the lone 1 and the lone 5


def test_a_series_without_a_single_value_still_draws_its_frame() -> None:
    for values in ([None, float("nan")], []):
        svg = line_chart(_chart(values), "c")
        _parse(svg)
        assert "no samples" in svg and "window" in svg


def test_chart_marks_window_alert_onset_and_baseline_with_utc_ticks() -> None:
    svg = line_chart(_chart([3, 3, 4, 3, 3, 90, 95, 97, 96, 98, 97]), "c")
    assert 'class="win"' in svg
    assert "alert 22:18:20" in svg and "onset 22:15:20" in svg
    assert "baseline 3" in svg
    assert "22:10" in svg  # a tick on a round minute, UTC
    assert 'role="img"' in svg and "<title" in svg and "<desc" in svg


def test_empty_report_says_no_root_cause_found() -> None:
    page = to_html(Report(INCIDENT, (), 0.0), [])
    _parse(page)
    assert "No root cause found" in page
    assert "Propagation path" not in page and "Candidates" not in page


def test_low_confidence_is_a_best_guess() -> None:
    assert "Best guess (inconclusive)" in to_html(_report(confidence=0.1), [])


def test_number_and_tick_helpers() -> None:
    numbers = (0.0, 0.034, 12.5, 99.97, 980.0, 2500.0, 9999.6, 12_300.0, 999_999.0, 4.5e6, -7e-5)
    assert [fmt_number(v) for v in numbers] == [
        "0",
        "0.034",
        "12.5",
        "100",
        "980",
        "2500",
        "10000",
        "12.3k",
        "1000k",
        "4.5M",
        "-7.00e-05",
    ]
    ticks = nice_ticks(3.2, 98.7)
    assert ticks[0] <= 3.2 and ticks[-1] >= 98.7 and len(ticks) <= 6
    assert nice_ticks(0.0, 0.0)[0] == 0.0  # a flat zero series gets no negative axis
    assert all(t % 300 == 0 for t in time_ticks(T0, T0 + 1800))


def test_thinning_keeps_the_spike() -> None:
    times = np.arange(10_000, dtype=np.float64)
    values = np.zeros(10_000)
    values[4321] = 50.0
    t, v = thin(times, values, 100)
    assert len(t) <= 200 and v.max() == 50.0 and np.all(np.diff(t) > 0)
