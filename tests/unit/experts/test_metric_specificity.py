"""Metric findings judged on reference windows: a jump the system also makes elsewhere is not
this incident's, one only the incident shows is kept (pipeline + experts.specificity)."""

from __future__ import annotations

import numpy as np
import pytest

from warroom.model import Finding, Incident, TimeRange
from warroom.pipeline import investigate
from warroom.telemetry.store import TelemetryStore

STEP = 60.0
BASELINE = TimeRange(0.0, 3600.0)
WINDOW = TimeRange(6000.0, 6300.0)
# Four windows as long as the incident's, after the baseline; db's CPU jumps in the first three.
REFERENCES = tuple(TimeRange(3600.0 + k * 600.0, 3900.0 + k * 600.0) for k in range(4))
JUMPS = {"db": (10.0, [*REFERENCES[:3], WINDOW]), "api": (5.0, [WINDOW])}


def _store() -> TelemetryStore:
    rng = np.random.default_rng(7)
    times = np.arange(0.0, WINDOW.end, STEP)
    store = TelemetryStore()
    for service, (level, where) in JUMPS.items():
        values = 1.0 + 0.02 * rng.standard_normal(len(times))
        for w in where:
            values[(times >= w.start) & (times < w.end)] = level
        store.insert_columns(
            "metrics",
            {
                "service": [service] * len(times),
                "name": ["cpu_usage"] * len(times),
                "ts": times.tolist(),
                "value": values.tolist(),
            },
        )
    return store


def _cpu(findings: tuple[Finding, ...], service: str) -> Finding:
    (found,) = [f for f in findings if f.service == service and f.indicator == "cpu_usage"]
    return found


def _run(references: tuple[TimeRange, ...]) -> tuple[Finding, ...]:
    incident = Incident("t", WINDOW, WINDOW.start)
    return investigate(incident, _store(), BASELINE, references=references).findings


def test_a_jump_three_of_four_other_windows_also_make_is_discounted_and_says_so() -> None:
    alone, judged = _cpu(_run(()), "db"), _cpu(_run(REFERENCES), "db")
    assert judged.score == pytest.approx(alone.score / 4)
    note = judged.evidence[-1].statement
    assert "also changed in 3 of 4 other windows" in note and "not specific" in note


def test_a_jump_only_the_incident_makes_is_kept_and_overtakes_the_habitual_one() -> None:
    alone, findings = _run(()), _run(REFERENCES)
    assert _cpu(alone, "db").score > _cpu(alone, "api").score  # the bigger jump, without refs
    kept = _cpu(findings, "api")
    assert kept.score == pytest.approx(_cpu(alone, "api").score)
    assert "0 of 4 other windows" in kept.evidence[-1].statement
    assert kept.score > _cpu(findings, "db").score


def test_windows_without_metric_samples_do_not_count_as_windows_that_showed_nothing() -> None:
    empty = (TimeRange(90_000.0, 90_300.0),)
    findings = _run((*REFERENCES, *empty))
    assert "3 of 4 other windows" in _cpu(findings, "db").evidence[-1].statement
    untouched = _run(empty)
    assert _cpu(untouched, "db") == _cpu(_run(()), "db")


def test_references_inside_the_baseline_are_judged_against_that_baseline() -> None:
    # Quiet stretches of the baseline itself: nothing there, the incident's jumps are kept whole
    # (the baseline's rows are not read twice).
    inside = tuple(TimeRange(600.0 + k * 900.0, 900.0 + k * 900.0) for k in range(4))
    alone, findings = _run(()), _run(inside)
    for service in JUMPS:
        assert _cpu(findings, service).score == pytest.approx(_cpu(alone, service).score)
        assert "0 of 4 other windows" in _cpu(findings, service).evidence[-1].statement
