"""investigate(): the product's story in one screen.

telemetry store -> experts (metrics, logs, code regions, traces) -> dependency graph ->
causal ranking -> report values. No formatting here: report/ does that.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from warroom.causal.rank import confidence, has_consequence, rank
from warroom.experts import logs as log_expert
from warroom.experts import sequences
from warroom.experts.changes import LOOKBACK_S
from warroom.experts.metrics import SMALL_SAMPLE, metric_findings
from warroom.experts.peers import unanswered_findings
from warroom.experts.specificity import judge_specificity
from warroom.experts.traces import call_edges, trace_findings
from warroom.model import Finding, Incident, LogRecord, Report, Series, Span, TimeRange
from warroom.telemetry.store import TelemetryStore
from warroom.topology.graph import service_graph

# Metric baseline: this much history before the window (median and MAD are robust to a few
# earlier incidents inside it).
METRIC_HISTORY_S = 60 * 60.0
# Without fault-free logs and traces, the baseline is this much time before the window.
PRE_WINDOW_S = 10 * 60.0
SLO_PREFIX = "slo:"  # series that describe the symptom (the alert), not a component


@dataclass(frozen=True)
class Investigation:
    """A report plus the intermediate values a benchmark or a reader may want."""

    report: Report
    findings: tuple[Finding, ...]
    edges: tuple[tuple[str, str], ...]


def investigate(
    incident: Incident,
    store: TelemetryStore,
    baseline: TimeRange | None = None,
    graph_edges: Sequence[tuple[str, str]] = (),
    top_k: int = 5,
    references: Sequence[TimeRange] = (),
) -> Investigation:
    """Find and rank the root causes of `incident` from the telemetry in `store`.

    `references`: other windows of the data (no fault known there), on which the same experts
    run to tell the incident's findings from the system's usual variation."""
    with _cycle_collector_paused():
        return _investigate(incident, store, baseline, graph_edges, top_k, tuple(references))


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """An investigation allocates millions of small objects (spans, log records, events) with
    no reference cycles; CPython's cycle collector would rescan the growing heap again and
    again (a third of the time on a 40-service case). Reference counting frees everything as
    usual; the collector runs again afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _investigate(
    incident: Incident,
    store: TelemetryStore,
    baseline: TimeRange | None,
    graph_edges: Sequence[tuple[str, str]],
    top_k: int,
    references: tuple[TimeRange, ...] = (),
) -> Investigation:
    started = time.perf_counter()
    window = incident.window
    missing: list[str] = []
    findings = _metric_findings(store, window, baseline, missing, references)
    log_baseline = baseline or TimeRange(window.start - PRE_WINDOW_S, window.start)
    # Spans are read once: both the code-region and the trace experts use them.
    base_spans, inc_spans = store.spans(log_baseline), store.spans(window)
    services = [s for s in store.services() if not s.startswith(SLO_PREFIX)]
    judged = _window_findings(store, log_baseline, window, base_spans, inc_spans, missing, services)
    if references:
        # The same experts on other windows of the data: what the system does anyway.
        usual = [
            _window_findings(store, log_baseline, r, base_spans, store.spans(r), [], services)
            for r in references
        ]
        judged = judge_specificity(judged, usual)
    findings += judged
    edges = list(graph_edges)
    if inc_spans:
        edges.extend(call_edges([*base_spans, *inc_spans]))
    graph = service_graph(edges, services)
    exclude = frozenset(s for s in {f.service for f in findings} if s.startswith(SLO_PREFIX))
    changes = store.events(TimeRange(window.start - LOOKBACK_S, window.end))
    candidates = rank(
        findings,
        graph,
        incident.symptom_service,
        top_k,
        exclude,
        incident.symptom_metric,
        changes,
        incident.also_alerting,
    )
    report = Report(
        incident=incident,
        candidates=tuple(candidates),
        confidence=confidence(
            candidates, bool(candidates) and has_consequence(findings, candidates[0].path)
        ),
        missing=tuple(missing),
        findings_count=len(findings),
        seconds=round(time.perf_counter() - started, 3),
    )
    return Investigation(report, tuple(findings), tuple(edges))


def _window_findings(
    store: TelemetryStore,
    log_baseline: TimeRange,
    window: TimeRange,
    base_spans: list[Span],
    spans: list[Span],
    missing: list[str],
    services: Sequence[str],
) -> list[Finding]:
    """What the log, code-region and trace experts find in one window against the baseline."""
    found = _log_findings(store, log_baseline, window, base_spans, spans, missing)
    return found + _trace_findings(base_spans, spans, missing, services)


def _metric_findings(
    store: TelemetryStore,
    window: TimeRange,
    baseline: TimeRange | None,
    missing: list[str],
    references: Sequence[TimeRange] = (),
) -> list[Finding]:
    """Metrics against the fault-free window when it holds enough samples, else the hour before
    the window when that holds more; judged against the same expert's findings on the reference
    windows (experts.specificity)."""
    history = TimeRange(window.start - METRIC_HISTORY_S, window.start)
    reference = baseline or history
    fault_free_points = _sample_times(store, baseline) if baseline else 0
    if fault_free_points < SMALL_SAMPLE and _sample_times(store, history) > fault_free_points:
        reference = history
    base = store.metric_series(reference)
    series = base + store.metric_series(window)
    if not series:
        missing.append("metrics: no series in the window or its baseline")
        return []
    found = metric_findings(_merge(series), reference, window)
    usual = _usual_metric_findings(store, reference, base, references)
    return judge_specificity(found, usual) if usual else found


def _usual_metric_findings(
    store: TelemetryStore, reference: TimeRange, base: list[Series], windows: Sequence[TimeRange]
) -> list[list[Finding]]:
    """The metric expert on each reference window, against the incident's own baseline (a
    window may lie inside it). Windows without a metric sample are left out: they could show
    nothing, and would make every finding look specific."""
    merged_base: list[Series] | None = None
    usual = []
    for w in windows:
        if _sample_times(store, w) == 0:
            continue
        # Only the parts of the window outside the baseline are read again (no duplicate rows).
        outside = [
            TimeRange(start, end)
            for start, end in (
                (w.start, min(w.end, reference.start)),
                (max(w.start, reference.end), w.end),
            )
            if end > start
        ]
        own = [s for r in outside for s in store.metric_series(r)]
        if own:
            series = _merge(base + own)
        else:
            merged_base = merged_base if merged_base is not None else _merge(base)
            series = merged_base
        usual.append(metric_findings(series, reference, w))
    return usual


def _sample_times(store: TelemetryStore, window: TimeRange) -> int:
    rows = store.rows(
        "SELECT count(DISTINCT ts) FROM metrics WHERE ts >= ? AND ts < ?",
        [window.start, window.end],
    )
    return int(rows[0][0])


def _merge(series: list[Series]) -> list[Series]:
    """Join the baseline and window parts of each (service, name) series."""
    parts: dict[tuple[str, str], list[Series]] = {}
    for s in series:
        parts.setdefault((s.service, s.name), []).append(s)
    merged = []
    for (service, name), items in parts.items():
        times = np.concatenate([s.times for s in items])
        values = np.concatenate([s.values for s in items])
        order = np.argsort(times, kind="stable")
        merged.append(Series(service, name, times[order], values[order]))
    return merged


def _log_findings(
    store: TelemetryStore,
    baseline: TimeRange,
    window: TimeRange,
    base_spans: list[Span],
    inc_spans: list[Span],
    missing: list[str],
) -> list[Finding]:
    base_logs, inc_logs = store.logs(baseline), store.logs(window)
    if not inc_logs:
        missing.append("logs: none in the window")
        return []
    if not base_logs:
        missing.append("logs: no fault-free baseline to compare with")
        return []
    events = log_expert.log_events([*base_logs, *inc_logs])
    base_events, inc_events = events[: len(base_logs)], events[len(base_logs) :]
    # Logs and spans often cover slightly different times; a span whose logs fall outside the
    # log coverage would look like a broken code path, so sequences use the common coverage.
    base_seq = base_events + sequences.span_events(_covered_spans(base_spans, base_logs))
    inc_seq = inc_events + sequences.span_events(_covered_spans(inc_spans, inc_logs))
    findings = _with_sample_lines(
        log_expert.template_findings(base_events, inc_events), inc_events, inc_logs
    )
    findings += sequences.broken_transitions(
        sequences.transitions(base_seq),
        sequences.transitions(inc_seq),
        sequences.first_occurrences(inc_seq),
        frozenset(e.key for e in events if e.error),
    )
    return findings


def _with_sample_lines(
    findings: list[Finding], events: list[sequences.EventOccurrence], logs: list[LogRecord]
) -> list[Finding]:
    """Quote one real line of each new or growing template: a template keyed by its code
    location says where, the line says what ("No space left on device")."""
    sample: dict[tuple[str, str], str] = {}
    for event, record in zip(events, logs, strict=True):
        sample.setdefault((event.service, event.key), record.message)
    out = []
    for f in findings:
        line = sample.get((f.service, f.indicator.removeprefix("log:")))
        if line is None or f.direction < 0:
            out.append(f)
            continue
        first = f.evidence[0]
        quoted = replace(first, statement=f"{first.statement}; e.g. {_one_line(line)!r}")
        out.append(replace(f, evidence=(quoted, *f.evidence[1:])))
    return out


def _one_line(message: str, limit: int = 200) -> str:
    head = message.splitlines()[0] if message else ""
    return head if len(head) <= limit else head[: limit - 1] + "…"


def _covered_spans(spans: list[Span], logs: list[LogRecord]) -> list[Span]:
    """Spans that lie inside the time covered by the logs."""
    if not logs:
        return []
    first, last = logs[0].time, logs[-1].time
    return [s for s in spans if s.start >= first and s.end <= last]


def _trace_findings(
    base_spans: list[Span],
    inc_spans: list[Span],
    missing: list[str],
    instrumented: Sequence[str] = (),
) -> list[Finding]:
    if not inc_spans:
        missing.append("traces: none in the window")
        return []
    if not base_spans:
        missing.append("traces: no fault-free baseline to compare with")
        return []
    base_calls, inc_calls = sequences.call_events(base_spans), sequences.call_events(inc_spans)
    findings = trace_findings(base_spans, inc_spans)
    # Services exporting their own telemetry: without server spans, theirs are lost.
    findings += unanswered_findings(base_spans, inc_spans, instrumented)
    findings += sequences.broken_transitions(
        sequences.transitions(base_calls),
        sequences.transitions(inc_calls),
        sequences.first_occurrences(inc_calls),
        frozenset(k for k in {e.key for e in inc_calls + base_calls} if log_expert.is_error("", k)),
    )
    return findings
