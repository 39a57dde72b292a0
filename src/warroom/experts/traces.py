"""Trace expert: the call graph, per-service self time, network time on call edges, and errors.

Self time (a span's duration minus the time covered by its children) stays with the service that
spent it, so it points at the slow component instead of every caller above it. Network time on
a call edge is the gap between the callee's span end and its caller's span end: the time the
answer spent on the wire and in the caller's client, which grows when the callee's network is
delayed even though the callee's own spans look normal.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np
from scipy.stats import binom, mannwhitneyu

from warroom.experts.surprise import z_from_p
from warroom.model import Evidence, Finding, IndicatorKind, Modality, Span

MIN_SAMPLES = 5
MIN_Z = 3.0
MIN_RATIO = 1.25  # a latency shift smaller than this is not worth an SRE's attention
NETWORK = "network-latency-p90(ms)"
SELF_TIME = "self-time-p90(ms)"
ERRORS = "span-error-rate"


def call_edges(spans: Sequence[Span]) -> Counter[tuple[str, str]]:
    """(caller service, callee service) -> number of calls seen in the spans."""
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    edges: Counter[tuple[str, str]] = Counter()
    for s in spans:
        parent = by_id.get((s.trace_id, s.parent_id))
        if parent is not None and parent.service != s.service:
            edges[(parent.service, s.service)] += 1
    return edges


def self_times(spans: Sequence[Span]) -> dict[str, list[float]]:
    """Per service, each span's duration minus the union of its children's intervals (ms)."""
    children: dict[tuple[str, str], list[Span]] = defaultdict(list)
    for s in spans:
        if s.parent_id:
            children[(s.trace_id, s.parent_id)].append(s)
    out: dict[str, list[float]] = defaultdict(list)
    for s in spans:
        covered = _covered(s, children.get((s.trace_id, s.span_id), []))
        out[s.service].append(max(0.0, s.duration - covered) * 1000.0)
    return out


def _covered(parent: Span, kids: list[Span]) -> float:
    """Seconds of parent's interval covered by at least one child (children may overlap)."""
    intervals = sorted((max(k.start, parent.start), min(k.end, parent.end)) for k in kids)
    total, cur_start, cur_end = 0.0, None, None
    for lo, hi in intervals:
        if hi <= lo:
            continue
        if cur_end is None or lo > cur_end:
            if cur_end is not None and cur_start is not None:
                total += cur_end - cur_start
            cur_start, cur_end = lo, hi
        else:
            cur_end = max(cur_end, hi)
    if cur_end is not None and cur_start is not None:
        total += cur_end - cur_start
    return total


def network_gaps(spans: Sequence[Span]) -> dict[str, list[float]]:
    """Per callee service, caller span end minus callee span end on cross-service calls (ms)."""
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    out: dict[str, list[float]] = defaultdict(list)
    for s in spans:
        parent = by_id.get((s.trace_id, s.parent_id))
        if parent is not None and parent.service != s.service:
            out[s.service].append(max(0.0, parent.end - s.end) * 1000.0)
    return out


def error_counts(spans: Sequence[Span]) -> dict[str, tuple[int, int]]:
    """Per service, (error spans, all spans)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for s in spans:
        counts[s.service][0] += int(s.error)
        counts[s.service][1] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}


def trace_findings(baseline: Sequence[Span], incident: Sequence[Span]) -> list[Finding]:
    """Services whose self time or incoming network time grew, or whose spans started failing."""
    findings = []
    for name, kind, extract in (
        (SELF_TIME, IndicatorKind.SYMPTOM, self_times),
        (NETWORK, IndicatorKind.RESOURCE, network_gaps),
    ):
        base, inc = extract(baseline), extract(incident)
        for service in sorted(inc):
            f = _latency_shift(service, name, kind, base.get(service, []), inc[service], incident)
            if f is not None:
                findings.append(f)
    findings += _error_findings(baseline, incident)
    return findings


def _latency_shift(
    service: str,
    name: str,
    kind: IndicatorKind,
    base: list[float],
    inc: list[float],
    incident: Sequence[Span],
) -> Finding | None:
    if len(base) < MIN_SAMPLES or len(inc) < MIN_SAMPLES:
        return None
    b90, i90 = float(np.percentile(base, 90)), float(np.percentile(inc, 90))
    ratio = (i90 + 1.0) / (b90 + 1.0)  # +1 ms keeps sub-millisecond jitter from looking huge
    if ratio < MIN_RATIO:
        return None
    p_value = float(mannwhitneyu(inc, base, alternative="greater").pvalue)
    z = z_from_p(p_value)
    if z < MIN_Z:
        return None
    statement = (
        f"{service} {name}: {b90:.1f} ms fault-free -> {i90:.1f} ms (x{ratio:.2f}, "
        f"{len(inc)} spans, Mann-Whitney z={z:.1f})"
    )
    evidence = Evidence(
        id=f"trace:{service}:{name}",
        statement=statement,
        value=i90,
        baseline=b90,
        unit="ms",
        source=f"experts.traces.trace_findings(service={service}, indicator={name})",
    )
    onset = min((s.start for s in incident if s.service == service), default=None)
    return Finding(service, name, kind, Modality.TRACE, z, onset, +1, (evidence,))


def _error_findings(baseline: Sequence[Span], incident: Sequence[Span]) -> list[Finding]:
    base, inc = error_counts(baseline), error_counts(incident)
    out = []
    for service, (errors, total) in inc.items():
        b_err, b_total = base.get(service, (0, 0))
        p0 = (b_err + 0.5) / (b_total + 1.0)
        if errors < MIN_SAMPLES or errors <= total * p0:
            continue
        z = z_from_p(float(binom.sf(errors - 1, total, p0)))
        if z < MIN_Z:
            continue
        statement = f"{service} span errors: {b_err}/{b_total} fault-free -> {errors}/{total} now"
        evidence = Evidence(
            id=f"trace:{service}:{ERRORS}",
            statement=statement,
            value=errors / total,
            baseline=b_err / b_total if b_total else None,
            unit="share of spans",
            source=f"experts.traces.trace_findings(service={service}, indicator={ERRORS})",
        )
        onset = min((s.start for s in incident if s.service == service and s.error), default=None)
        out.append(
            Finding(
                service, ERRORS, IndicatorKind.SYMPTOM, Modality.TRACE, z, onset, +1, (evidence,)
            )
        )
    return out
