"""Rendering a Report: Markdown for people, JSON for scripts, confidence in words."""

from __future__ import annotations

import json

import pytest

from warroom.model import Evidence, Incident, Report, RootCause, TimeRange
from warroom.report.render import confidence_label, to_json, to_markdown

INCIDENT = Incident(
    id="inc-42",
    window=TimeRange(1_700_000_000.0, 1_700_000_600.0),
    alert_time=1_700_000_300.0,
    symptom_service="frontend",
    symptom_metric="latency-p90(ms)",
)
EVIDENCE = (
    Evidence(
        id="metric:payment:cpu",
        statement="payment CpuUsageRate(%) 3 -> 98 (x32.7, 25.0 robust sigma)",
        value=98.0,
        baseline=3.0,
        unit="CpuUsageRate(%)",
        source="experts.metrics.deviation(series=payment/CpuUsageRate(%))",
    ),
    Evidence(
        id="metric:frontend:latency",
        statement="frontend latency-p90(ms) 120 -> 900 (x7.5, 12.0 robust sigma)",
        value=900.0,
        baseline=120.0,
        source="experts.metrics.deviation(series=frontend/latency-p90(ms))",
    ),
)
CULPRIT = RootCause(
    service="payment",
    indicator="CpuUsageRate(%)",
    fault_type="cpu",
    score=17.5,
    onset=1_700_000_120.0,
    path=("payment", "checkout", "frontend"),
    explains=1.0,
    evidence=EVIDENCE,
)


def _report(candidates: tuple[RootCause, ...] = (CULPRIT,), confidence: float = 0.9) -> Report:
    return Report(INCIDENT, candidates, confidence, missing=("traces: none in window",))


def test_markdown_names_culprit_path_and_every_evidence_with_its_source() -> None:
    md = to_markdown(_report())
    assert "inc-42" in md
    assert "`payment`" in md
    assert "payment → checkout → frontend" in md
    assert "cpu" in md
    for e in EVIDENCE:
        assert e.statement in md
        assert e.source in md
    assert "2023-11-14T22:15:20Z" in md  # the onset, formatted in UTC
    assert "traces: none in window" in md
    assert "high" in md


def test_markdown_lists_other_candidates() -> None:
    other = RootCause("checkout", "latency-p90(ms)", "symptom-only", 3.2, None, ("checkout",), 0.5)
    md = to_markdown(_report((CULPRIT, other)))
    assert "Other candidates" in md
    assert "`checkout`" in md


def test_low_confidence_is_shown_as_a_best_guess() -> None:
    md = to_markdown(_report(confidence=0.1))
    assert "inconclusive" in md.lower()
    assert "`payment`" in md


def test_json_round_trips_through_json_dumps() -> None:
    data = to_json(_report())
    assert json.loads(json.dumps(data)) == data
    assert data["culprit"]["service"] == "payment"
    assert data["culprit"]["path"] == ["payment", "checkout", "frontend"]
    assert [e["source"] for e in data["culprit"]["evidence"]] == [e.source for e in EVIDENCE]
    assert data["verdict"] == "high"
    assert data["incident"]["id"] == "inc-42"


def test_empty_report_says_no_root_cause() -> None:
    report = Report(INCIDENT, (), 0.0)
    md = to_markdown(report)
    assert "none found" in md.lower()
    assert "Culprit" not in md
    data = to_json(report)
    assert data["culprit"] is None
    assert data["candidates"] == []
    assert data["verdict"] == "inconclusive"
    assert json.loads(json.dumps(data)) == data


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (1.0, "high"),
        (0.85, "high"),
        (0.84, "medium"),
        (0.7, "medium"),
        (0.69, "low"),
        (0.5, "low"),
        (0.49, "inconclusive"),
        (0.0, "inconclusive"),
    ],
)
def test_confidence_label_thresholds(value: float, label: str) -> None:
    assert confidence_label(value) == label


def test_a_calibrated_confidence_shows_the_raw_score_it_came_from() -> None:
    from dataclasses import replace

    report = replace(_report(confidence=0.93), raw_confidence=0.214)
    md = to_markdown(report)
    assert "0.93 (high, calibrated from a raw score of 0.214)" in md
    assert to_json(report)["confidence_raw"] == 0.214
    assert "calibrated from" not in to_markdown(_report())  # an uncalibrated report says nothing
