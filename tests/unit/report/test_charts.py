"""Which series the HTML report charts: the culprit's, then the symptom's; absent ones skipped."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from warroom.model import (
    Evidence,
    Finding,
    Incident,
    IndicatorKind,
    Modality,
    Report,
    RootCause,
    TimeRange,
)
from warroom.report.charts import MAX_CHARTS, chart_span, charts_for
from warroom.telemetry.store import TelemetryStore

T0 = 1_700_000_000.0
WINDOW = TimeRange(T0, T0 + 600)
BASELINE = TimeRange(T0 - 1200, T0)
INCIDENT = Incident("inc-1", WINDOW, T0 + 300, symptom_service="frontend")


def _evidence(service: str, name: str) -> Evidence:
    return Evidence(f"metric:{service}:{name}", f"{service} {name} up", 9.0, 1.0, name, "test")


@pytest.fixture
def store() -> Iterator[TelemetryStore]:
    times = np.arange(T0 - 1200, T0 + 600, 60.0)
    step = (times >= T0 + 120).astype(float)
    columns: dict[str, list[object]] = {"service": [], "name": [], "ts": [], "value": []}
    series = {
        ("payment", "cpu"): 3 + 90 * step,
        ("payment", "latency_ms"): 5 + 20 * step,
        ("checkout", "latency_ms"): 20 + 30 * step,
        ("frontend", "latency_ms"): 50 + 40 * step,
        ("frontend", "error_ratio"): 0 * step,  # flat: not worth a chart
        ("slo:web", "p90"): 100 + 100 * step,
    }
    for (service, name), values in series.items():
        columns["service"] += [service] * len(times)
        columns["name"] += [name] * len(times)
        columns["ts"] += times.tolist()
        columns["value"] += [None if i == 3 else v for i, v in enumerate(values.tolist())]
    s = TelemetryStore()
    s.insert_columns("metrics", columns)
    yield s
    s.close()


def _culprit(indicator: str = "cpu", evidence: tuple[Evidence, ...] = ()) -> RootCause:
    path = ("payment", "checkout", "frontend")
    return RootCause("payment", indicator, "cpu", 9.0, T0 + 120, path, 1.0, evidence)


def test_culprit_indicator_path_evidence_then_symptom(store: TelemetryStore) -> None:
    evidence = (
        _evidence("payment", "cpu"),
        _evidence("payment", "latency_ms"),
        _evidence("checkout", "latency_ms"),
    )
    report = Report(INCIDENT, (_culprit(evidence=evidence),), 0.8)
    charts = charts_for(report, store, BASELINE)
    assert [c.title for c in charts] == [
        "payment · cpu",
        "payment · latency_ms",
        "checkout · latency_ms",
        "frontend · latency_ms",
    ]
    assert len(charts) <= MAX_CHARTS
    first = charts[0]
    assert first.onset == T0 + 120 and first.alert == T0 + 300 and first.baseline_value == 1.0
    assert first.span == TimeRange(T0 - 1200, T0 + 600)
    assert np.isnan(first.values[3])  # a NULL sample stays a gap


def test_finding_onsets_are_used_for_every_chart(store: TelemetryStore) -> None:
    finding = Finding(
        "frontend", "latency_ms", IndicatorKind.SYMPTOM, Modality.METRIC, 5.0, T0 + 150, 1
    )
    report = Report(INCIDENT, (_culprit(),), 0.8)
    charts = charts_for(report, store, BASELINE, [finding])
    assert [(c.title, c.onset) for c in charts] == [
        ("payment · cpu", T0 + 120),
        ("frontend · latency_ms", T0 + 150),
    ]


def test_absent_series_are_skipped(store: TelemetryStore) -> None:
    evidence = (_evidence("payment", "no_such_metric"), _evidence("ghost", "cpu"))
    culprit = _culprit(indicator="log:timeout", evidence=evidence)
    charts = charts_for(Report(INCIDENT, (culprit,), 0.8), store, BASELINE)
    assert [c.title for c in charts] == ["frontend · latency_ms"]
    assert charts_for(Report(INCIDENT, (culprit,), 0.8), TelemetryStore(), BASELINE) == []


def test_without_a_culprit_the_symptom_is_still_charted(store: TelemetryStore) -> None:
    charts = charts_for(Report(INCIDENT, (), 0.0), store, BASELINE)
    assert [c.title for c in charts] == ["frontend · latency_ms"]  # the flat error ratio is not


def test_without_a_symptom_the_changed_slo_series_stands_for_the_alert(
    store: TelemetryStore,
) -> None:
    incident = Incident("inc-2", WINDOW, T0 + 300)
    finding = Finding("slo:web", "p90", IndicatorKind.SYMPTOM, Modality.METRIC, 8.0, T0 + 130, 1)
    culprit = RootCause("payment", "cpu", "cpu", 9.0, T0 + 120, ("payment",), 1.0)
    charts = charts_for(Report(incident, (culprit,), 0.8), store, None, [finding])
    assert [c.title for c in charts] == ["payment · cpu", "slo:web · p90"]


def test_span_uses_an_adjoining_baseline_else_some_time_before() -> None:
    assert chart_span(WINDOW, BASELINE) == TimeRange(T0 - 1200, T0 + 600)
    far = TimeRange(T0 - 86_400, T0 - 80_000)
    assert chart_span(WINDOW, far) == TimeRange(T0 - 1200, T0 + 600)  # 2 x the window
    assert chart_span(WINDOW, TimeRange(T0 - 86_400, T0)).start == T0 - 3600  # capped at 1 h
