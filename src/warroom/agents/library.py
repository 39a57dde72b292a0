"""The first agents: typed wrappers of the experts over one question each.

Inputs are small JSON values (a service, a window, a baseline); the telemetry comes from the
context's read-only StoreView. Each agent raises NoData when the data to answer is absent,
and returns an empty output when it looked and found nothing: the director tells the two apart
(missing evidence vs evidence against).

    ctx = AgentContext(store)
    call(MetricAnomalies(), {"service": "checkout", "window": {"start": t0, "end": t1}}, ctx)
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field

from warroom.agents.base import Agent, AgentModel, NoData, RetryPolicy
from warroom.agents.context import AgentContext, StoreView
from warroom.experts import changes
from warroom.experts import logs as log_expert
from warroom.experts.metrics import metric_findings
from warroom.model import Event, Evidence, Finding, Series, Span, TimeRange

METRIC_HISTORY_S = 60 * 60.0  # default metric baseline: the hour before the window
PRE_WINDOW_S = 10 * 60.0  # default log/trace baseline: ten minutes before the window
EXAMPLE_CHARS = 300
_RETRY = RetryPolicy(attempts=2, backoff_s=0.1)


def _store(ctx: AgentContext) -> StoreView:
    if ctx.store is None:
        raise NoData("no telemetry store in the agent context")
    return ctx.store


def _baseline(given: TimeRange | None, window: TimeRange, seconds: float) -> TimeRange:
    return given or TimeRange(window.start - seconds, window.start)


# --- metrics ------------------------------------------------------------------------------


class MetricAnomaliesIn(AgentModel):
    """Which service (None: all) and window to check against which baseline."""

    service: str | None = None
    window: TimeRange
    baseline: TimeRange | None = None  # default: the hour before the window


class MetricAnomaliesOut(AgentModel):
    """Deviating series as findings (strongest first), and how many series were compared."""

    findings: tuple[Finding, ...]
    series: int
    baseline: TimeRange


class MetricAnomalies(Agent[MetricAnomaliesIn, MetricAnomaliesOut]):
    """Metric series of a service that deviate from their baseline (experts.metrics)."""

    name, version = "metric-anomalies", "1"
    input_model, output_model = MetricAnomaliesIn, MetricAnomaliesOut
    reads = frozenset({"metrics"})
    retry = _RETRY

    def run(self, input: MetricAnomaliesIn, ctx: AgentContext) -> MetricAnomaliesOut:
        """Compare each series in the window with its own baseline."""
        store = _store(ctx)
        baseline = _baseline(input.baseline, input.window, METRIC_HISTORY_S)
        current = store.metric_series(input.window, input.service)
        if not current:
            raise NoData(f"no metrics for {input.service or 'any service'} in {input.window}")
        reference = store.metric_series(baseline, input.service)
        if not reference:
            raise NoData(f"no metrics for {input.service or 'any service'} in {baseline}")
        merged = _merge([*reference, *current])
        findings = metric_findings(merged, baseline, input.window)
        findings.sort(key=lambda f: (-f.score, f.service, f.indicator))
        return MetricAnomaliesOut(findings=tuple(findings), series=len(merged), baseline=baseline)


def _merge(series: Sequence[Series]) -> list[Series]:
    """Join the baseline and window parts of each (service, name) series."""
    parts: dict[tuple[str, str], list[Series]] = defaultdict(list)
    for s in series:
        parts[(s.service, s.name)].append(s)
    merged = []
    for (service, name), items in sorted(parts.items()):
        times = np.concatenate([s.times for s in items])
        order = np.argsort(times, kind="stable")
        values = np.concatenate([s.values for s in items])
        merged.append(Series(service, name, times[order], values[order]))
    return merged


# --- logs ---------------------------------------------------------------------------------


class ErrorLogsIn(AgentModel):
    """One service's error logs in a window, compared with a baseline."""

    service: str
    window: TimeRange
    baseline: TimeRange | None = None  # default: ten minutes before the window
    top_k: int = Field(default=10, ge=1, le=100)


class ErrorTemplate(AgentModel):
    """One error event (code location or mined template) and how often it occurred."""

    template: str
    count: int
    baseline_count: int
    first_seen: float
    example: str


class ErrorLogsOut(AgentModel):
    """The most frequent error templates in the window, with line totals for scale."""

    templates: tuple[ErrorTemplate, ...]
    lines: int
    error_lines: int
    baseline_lines: int
    baseline_error_lines: int


class ErrorLogs(Agent[ErrorLogsIn, ErrorLogsOut]):
    """Top error templates of a service with counts now and in the baseline (experts.logs)."""

    name, version = "error-logs", "1"
    input_model, output_model = ErrorLogsIn, ErrorLogsOut
    reads = frozenset({"logs"})
    retry = _RETRY

    def run(self, input: ErrorLogsIn, ctx: AgentContext) -> ErrorLogsOut:
        """Mine templates over baseline and window lines together, count the error ones."""
        store = _store(ctx)
        baseline = _baseline(input.baseline, input.window, PRE_WINDOW_S)
        current = store.logs(input.window, input.service)
        if not current:
            raise NoData(f"no log lines of {input.service} in {input.window}")
        reference = store.logs(baseline, input.service)
        events = log_expert.log_events([*reference, *current])
        base_events, events = events[: len(reference)], events[len(reference) :]
        base_counts = Counter(e.key for e in base_events if e.error)
        counts = Counter(e.key for e in events if e.error)
        first: dict[str, tuple[float, str]] = {}
        for event, record in zip(events, current, strict=True):
            if event.error and event.key not in first:
                first[event.key] = (event.time, record.message[:EXAMPLE_CHARS])
        top = sorted(counts.items(), key=lambda kv: (-kv[1], first[kv[0]][0]))[: input.top_k]
        templates = tuple(
            ErrorTemplate(
                template=key,
                count=n,
                baseline_count=base_counts[key],
                first_seen=first[key][0],
                example=first[key][1],
            )
            for key, n in top
        )
        return ErrorLogsOut(
            templates=templates,
            lines=len(current),
            error_lines=sum(counts.values()),
            baseline_lines=len(reference),
            baseline_error_lines=sum(base_counts.values()),
        )


# --- traces -------------------------------------------------------------------------------


class TraceEdgesIn(AgentModel):
    """Call edges into and out of one service, in a window and a baseline."""

    service: str
    window: TimeRange
    baseline: TimeRange | None = None  # default: ten minutes before the window


class EdgeStats(AgentModel):
    """One caller -> callee edge: volume, errors, and latency as each side saw it (ms)."""

    caller: str
    callee: str
    calls: int
    errors: int
    server_p50_ms: float  # the callee's span
    server_p90_ms: float
    client_p90_ms: float  # the caller's span around the call
    network_p90_ms: float  # caller span end minus callee span end
    baseline_calls: int
    baseline_errors: int
    baseline_server_p90_ms: float | None
    baseline_network_p90_ms: float | None


class TraceEdgesOut(AgentModel):
    """The service's call edges, busiest first."""

    edges: tuple[EdgeStats, ...]


class TraceEdges(Agent[TraceEdgesIn, TraceEdgesOut]):
    """Latency and error statistics of the call edges around a service (as experts.traces)."""

    name, version = "trace-edges", "1"
    input_model, output_model = TraceEdgesIn, TraceEdgesOut
    reads = frozenset({"spans"})
    retry = _RETRY

    def run(self, input: TraceEdgesIn, ctx: AgentContext) -> TraceEdgesOut:
        """Group cross-service parent/child span pairs by edge, now and in the baseline."""
        store = _store(ctx)
        baseline = _baseline(input.baseline, input.window, PRE_WINDOW_S)
        current = store.call_spans(input.window, input.service)
        if not any(s.service == input.service for s in current):
            raise NoData(f"no spans of {input.service} in {input.window}")
        now = _edge_pairs(current, input.service)
        before = _edge_pairs(store.call_spans(baseline, input.service), input.service)
        edges = [_edge_stats(edge, pairs, before.get(edge, [])) for edge, pairs in now.items()]
        edges.sort(key=lambda e: (-e.calls, e.caller, e.callee))
        return TraceEdgesOut(edges=tuple(edges))


_Pairs = dict[tuple[str, str], list[tuple[Span, Span]]]


def _edge_pairs(spans: Sequence[Span], service: str) -> _Pairs:
    """(caller span, callee span) pairs of cross-service calls that involve `service`."""
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    pairs: _Pairs = defaultdict(list)
    for child in spans:
        parent = by_id.get((child.trace_id, child.parent_id))
        if parent is None or parent.service == child.service:
            continue
        if service in (parent.service, child.service):
            pairs[(parent.service, child.service)].append((parent, child))
    return pairs


def _p(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _edge_stats(
    edge: tuple[str, str], now: list[tuple[Span, Span]], before: list[tuple[Span, Span]]
) -> EdgeStats:
    def server(pairs: list[tuple[Span, Span]]) -> list[float]:
        return [c.duration * 1000.0 for _, c in pairs]

    def network(pairs: list[tuple[Span, Span]]) -> list[float]:
        return [max(0.0, p.end - c.end) * 1000.0 for p, c in pairs]

    return EdgeStats(
        caller=edge[0],
        callee=edge[1],
        calls=len(now),
        errors=sum(c.error for _, c in now),
        server_p50_ms=_p(server(now), 50) or 0.0,
        server_p90_ms=_p(server(now), 90) or 0.0,
        client_p90_ms=_p([p.duration * 1000.0 for p, _ in now], 90) or 0.0,
        network_p90_ms=_p(network(now), 90) or 0.0,
        baseline_calls=len(before),
        baseline_errors=sum(c.error for _, c in before),
        baseline_server_p90_ms=_p(server(before), 90),
        baseline_network_p90_ms=_p(network(before), 90),
    )


# --- events -------------------------------------------------------------------------------


class ChangeEventsIn(AgentModel):
    """Changes near an onset (or inside the window when no onset is known)."""

    service: str | None = None
    window: TimeRange
    onset: float | None = Field(default=None, allow_inf_nan=False)
    before_s: float = Field(default=changes.LOOKBACK_S, ge=0, allow_inf_nan=False)
    after_s: float = Field(default=changes.SLACK_S, ge=0, allow_inf_nan=False)


class NearbyEvent(AgentModel):
    """A change event, how long before the onset it happened (negative: after), and that
    distance as evidence (experts.changes) when an onset was given."""

    event: Event
    before_onset_s: float | None
    evidence: Evidence | None


class ChangeEventsOut(AgentModel):
    """Events in the searched range, nearest to the onset first."""

    events: tuple[NearbyEvent, ...]
    searched: TimeRange


class ChangeEvents(Agent[ChangeEventsIn, ChangeEventsOut]):
    """Deploys, config changes and restarts of a service near the anomaly's onset."""

    name, version = "change-events", "1"
    input_model, output_model = ChangeEventsIn, ChangeEventsOut
    reads = frozenset({"events"})
    retry = _RETRY

    def run(self, input: ChangeEventsIn, ctx: AgentContext) -> ChangeEventsOut:
        """Events in [onset - before_s, onset + after_s), or in the window without an onset."""
        store = _store(ctx)
        if store.count("events") == 0:
            raise NoData("no change events recorded for any service")
        searched = input.window
        if input.onset is not None:
            searched = TimeRange(input.onset - input.before_s, input.onset + input.after_s)
        onset = input.onset
        nearby = [
            NearbyEvent(
                event=e,
                before_onset_s=None if onset is None else onset - e.time,
                evidence=None if onset is None else changes.change_evidence(e, onset),
            )
            for e in store.events(searched, input.service)
        ]
        if onset is not None:
            nearby.sort(key=lambda n: abs(n.before_onset_s or 0.0))
        return ChangeEventsOut(events=tuple(nearby), searched=searched)


AGENTS: dict[str, type[Agent[Any, Any]]] = {
    a.name: a for a in (MetricAnomalies, ErrorLogs, TraceEdges, ChangeEvents)
}
