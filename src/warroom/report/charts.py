"""Which metric series a reader should see beside a report, as Chart values ready to draw.

    charts = charts_for(result.report, store, baseline, result.findings)
    html = to_html(result.report, charts)

The culprit's own metrics come first (the indicator that named it, then the metric evidence
along its path), then the symptom: the alert metric, or what changed at the symptom service, or
its latency and error series. A series the store does not hold is skipped, never an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from warroom.causal.rank import symptom_family
from warroom.model import Finding, FloatArray, Modality, Report, RootCause, Series, TimeRange
from warroom.pipeline import SLO_PREFIX
from warroom.telemetry.store import TelemetryStore

MAX_CHARTS = 4
MAX_SYMPTOM_CHARTS = 2
# Time shown before the window when no baseline adjoins it: enough to see the normal level.
MIN_CONTEXT_S = 15 * 60.0
MAX_CONTEXT_S = 60 * 60.0
_METRIC_ID = "metric:"  # experts.metrics names its evidence metric:<service>:<name>

Key = tuple[str, str]  # (service, metric name)


@dataclass(frozen=True)
class Chart:
    """One metric series over its context, with the incident window, alert and onset marked."""

    title: str
    series: Series
    window: TimeRange  # shaded: where the fault was looked for
    alert: float | None = None
    onset: float | None = None
    span: TimeRange | None = None  # x extent; None: the series' extent joined with the window
    baseline_value: float | None = None  # the baseline the evidence compared with
    caption: str = ""

    @property
    def service(self) -> str:
        """The service the series belongs to."""
        return self.series.service

    @property
    def metric(self) -> str:
        """The metric name."""
        return self.series.name

    @property
    def times(self) -> FloatArray:
        """Sample times, epoch seconds."""
        return self.series.times

    @property
    def values(self) -> FloatArray:
        """Sample values (NaN where a sample is missing)."""
        return self.series.values


def chart_span(window: TimeRange, baseline: TimeRange | None) -> TimeRange:
    """Baseline + window when the baseline adjoins the window, else some time before it."""
    before = min(max(2 * window.seconds, MIN_CONTEXT_S), MAX_CONTEXT_S)
    adjoins = baseline is not None and window.start - window.seconds <= baseline.end
    if baseline is not None and adjoins and baseline.start < window.start:
        before = min(window.start - baseline.start, MAX_CONTEXT_S)
    return TimeRange(window.start - before, window.end)


def charts_for(
    report: Report,
    store: TelemetryStore,
    baseline: TimeRange | None = None,
    findings: Sequence[Finding] = (),
) -> list[Chart]:
    """Up to MAX_CHARTS charts worth seeing: the culprit's metrics first, then the symptom's."""
    incident = report.incident
    span = chart_span(incident.window, baseline)
    onsets = {(f.service, f.indicator): f.onset for f in findings if f.modality is Modality.METRIC}
    baselines: dict[Key, float | None] = {}
    culprit = report.culprit
    if culprit is not None:
        onsets.setdefault((culprit.service, culprit.indicator), culprit.onset)
        baselines = _evidence_baselines(culprit)
    charts: list[Chart] = []
    seen: set[Key] = set()

    def add(series: Series, caption: str) -> None:
        key = (series.service, series.name)
        seen.add(key)
        charts.append(
            Chart(
                title=f"{series.service} · {series.name}",
                series=series,
                window=incident.window,
                alert=incident.alert_time,
                onset=onsets.get(key),
                span=span,
                baseline_value=baselines.get(key),
                caption=caption,
            )
        )

    if culprit is not None:
        for series, caption in _culprit_series(culprit, store, span):
            if len(charts) >= MAX_CHARTS - 1:
                break
            if (series.service, series.name) not in seen:
                add(series, caption)
    symptom_room = min(MAX_SYMPTOM_CHARTS, MAX_CHARTS - len(charts))
    for series in _symptom_series(report, store, span, findings, seen):
        if symptom_room <= 0:
            break
        add(series, "symptom")
        symptom_room -= 1
    return charts


def _evidence_baselines(culprit: RootCause) -> dict[Key, float | None]:
    return {
        key: e.baseline
        for e in culprit.evidence
        if e.id.startswith(_METRIC_ID)
        for key in _splits(e.id[len(_METRIC_ID) :])
    }


def _splits(rest: str) -> list[Key]:
    """Every (service, name) reading of '<service>:<name>' (either side may hold a colon)."""
    return [(rest[:i], rest[i + 1 :]) for i, ch in enumerate(rest) if ch == ":"]


def _culprit_series(
    culprit: RootCause, store: TelemetryStore, span: TimeRange
) -> Iterator[tuple[Series, str]]:
    """The culprit's indicator, then each metric evidence of the culprit and its path."""
    indicator = _series(store, span, [(culprit.service, culprit.indicator)])
    if indicator is not None:
        yield indicator, "the culprit's indicator"
    for e in culprit.evidence:
        if not e.id.startswith(_METRIC_ID):
            continue
        series = _series(store, span, _splits(e.id[len(_METRIC_ID) :]))
        if series is not None:
            own = series.service == culprit.service
            yield series, "the culprit" if own else "on the propagation path"


def _series(store: TelemetryStore, span: TimeRange, keys: Iterable[Key]) -> Series | None:
    """The first of `keys` the store holds with at least one finite value in `span`."""
    for service, name in keys:
        for series in store.metric_series(span, service=service, name=name):
            if np.isfinite(series.values).any():
                return series
    return None


def _symptom_series(
    report: Report,
    store: TelemetryStore,
    span: TimeRange,
    findings: Sequence[Finding],
    seen: set[Key],
) -> Iterator[Series]:
    """The alert metric, else what changed at the symptom, else its latency and error series."""
    incident = report.incident
    culprit = report.culprit
    # Unnamed, the symptom is where the path ends, unless it ends where it starts (the culprit).
    service = incident.symptom_service or (
        culprit.path[-1] if culprit and len(culprit.path) > 1 else None
    )
    services = (service, SLO_PREFIX + service) if service else ()
    changed = sorted(
        (f for f in findings if f.modality is Modality.METRIC),
        key=lambda f: -f.score,
    )
    # What users feel (latency, errors) at the symptom; without a named symptom, the SLO series
    # that changed most stands for the alert.
    wanted = [
        (f.service, f.indicator)
        for f in changed
        if f.service in services and symptom_family(f.indicator) != "traffic"
    ] or [(f.service, f.indicator) for f in changed if f.service.startswith(SLO_PREFIX)]
    if service and incident.symptom_metric:
        wanted.insert(0, (service, incident.symptom_metric))
    fallback = [key for svc in services for key in _latency_and_errors(store, span, svc)]
    yielded: set[Key] = set()
    for key in wanted + fallback:
        if key in seen or key in yielded:
            continue
        series = _series(store, span, [key])
        # A flat fallback series (an error ratio that stayed 0) is not worth a chart.
        if series is None or (key not in wanted and _flat(series)):
            continue
        yielded.add(key)
        yield series


def _flat(series: Series) -> bool:
    return bool(np.nanmax(series.values) <= np.nanmin(series.values))


def _latency_and_errors(store: TelemetryStore, span: TimeRange, service: str) -> list[Key]:
    names = sorted({s.name for s in store.metric_series(span, service=service)})
    return [
        (service, name)
        for family in ("latency", "errors")
        for name in names
        if symptom_family(name) == family
    ]
