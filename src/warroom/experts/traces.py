"""Trace expert: the call graph, per-service self time, wire time on call edges, and errors.

Self time (a span's duration minus the time covered by its children) stays with the service that
spent it, so it points at the slow component instead of every caller above it. A client span
whose one child is the callee's server span spent its uncovered time waiting on the wire, not
working: that is the edge's wire time, kept apart from the caller's self time. Wire time on a
call edge is the client span's duration minus the server span's (both directions, and immune to
clock skew between hosts); where the caller has no client span of its own, the gap between the
callee's span end and its caller's span end stands in. A delay on one component's network slows
the wire time of every edge that touches it, in and out; experts.edges charges the slowed edges
to the endpoint they have in common.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import cached_property
from itertools import repeat
from operator import attrgetter

import numpy as np
from numpy.typing import NDArray
from scipy.stats import binom, mannwhitneyu

from warroom.experts.edges import EdgeBlame, EdgeSlowdown, common_endpoints
from warroom.experts.surprise import z_from_p
from warroom.model import Evidence, Finding, IndicatorKind, Modality, Span

MIN_SAMPLES = 5
MIN_Z = 3.0
MIN_RATIO = 1.25  # a latency shift smaller than this is not worth an SRE's attention
NETWORK = "network-latency-p90(ms)"
SELF_TIME = "self-time-p90(ms)"
ERRORS = "span-error-rate"

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def parent_index(spans: Sequence[Span]) -> IntArray:
    """Index in `spans` of each span's parent, -1 when it is not among them.

    Spans are looked up by (trace_id, span_id); when an id repeats, the last span holding it is
    the parent, as a dict keyed by id would say.
    """
    return _Columns(spans).parent


class _Columns:
    """One span list as numpy columns, each built on first use.

    The experts see a few hundred thousand spans per investigation, so they work on columns
    instead of looping over Span objects in Python; a column costs one pass over the spans.
    """

    def __init__(self, spans: Sequence[Span]) -> None:
        self._spans = spans
        self.n = len(spans)

    def _floats(self, name: str) -> FloatArray:
        return np.fromiter(map(attrgetter(name), self._spans), dtype=np.float64, count=self.n)

    @cached_property
    def _service_codes(self) -> tuple[list[str], IntArray]:
        names = list(map(attrgetter("service"), self._spans))
        services = list(dict.fromkeys(names))  # in order of first appearance
        code = dict(zip(services, range(len(services)), strict=True))
        return services, np.fromiter(map(code.__getitem__, names), dtype=np.int64, count=self.n)

    @property
    def services(self) -> list[str]:
        """Distinct services, in order of first appearance."""
        return self._service_codes[0]

    @property
    def service(self) -> IntArray:
        """Each span's service, as an index into `services`."""
        return self._service_codes[1]

    @cached_property
    def start(self) -> FloatArray:
        return self._floats("start")

    @cached_property
    def end(self) -> FloatArray:
        return self._floats("end")

    @cached_property
    def error(self) -> NDArray[np.bool_]:
        errors = map(bool, map(attrgetter("error"), self._spans))
        return np.fromiter(errors, dtype=bool, count=self.n)

    @cached_property
    def _ids(self) -> list[tuple[str, str]]:
        return list(map(attrgetter("trace_id", "span_id"), self._spans))

    @cached_property
    def _last(self) -> dict[tuple[str, str], int]:
        """(trace_id, span_id) -> index of the last span holding it."""
        return dict(zip(self._ids, range(self.n), strict=True))

    @cached_property
    def parent(self) -> IntArray:
        """Index of each span's parent (the last span holding its parent id), -1 if absent."""
        parent_ids = map(attrgetter("trace_id", "parent_id"), self._spans)
        return np.fromiter(map(self._last.get, parent_ids, repeat(-1)), np.int64, self.n)

    @cached_property
    def has_parent_id(self) -> NDArray[np.bool_]:
        return np.fromiter(map(bool, map(attrgetter("parent_id"), self._spans)), bool, self.n)

    @cached_property
    def canonical(self) -> IntArray:
        """For each span, the span that a lookup of its own id finds (itself, unless repeated)."""
        return np.fromiter(map(self._last.__getitem__, self._ids), np.int64, self.n)

    @cached_property
    def children(self) -> IntArray:
        """How many spans name each span as their parent."""
        known = self.parent[self.parent >= 0]
        return np.bincount(known, minlength=self.n).astype(np.int64)

    def client(self) -> NDArray[np.bool_]:
        """Client spans: exactly one child, and it runs in another service (a call's wait)."""
        out = np.zeros(self.n, dtype=bool)
        out[self.parent[self.calls()]] = True
        return out & (self.children == 1)

    def calls(self) -> NDArray[np.bool_]:
        """Spans whose parent is known and belongs to another service: cross-service calls."""
        known = self.parent >= 0
        caller = np.where(known, self.service[np.maximum(self.parent, 0)], -1)
        return known & (caller != self.service)

    def by_service(self, rows: IntArray, values: FloatArray) -> dict[str, FloatArray]:
        """values (one per row in `rows`) per service of the row, services in order of first
        appearance among the rows, values in row order."""
        codes = self.service[rows]
        order = np.argsort(codes, kind="stable")
        distinct, first = np.unique(codes, return_index=True)
        cuts = np.searchsorted(codes[order], distinct)
        parts = np.split(values[order], cuts[1:])
        return {
            self.services[distinct[i]]: parts[i] for i in np.argsort(first, kind="stable").tolist()
        }


def call_edges(spans: Sequence[Span]) -> Counter[tuple[str, str]]:
    """(caller service, callee service) -> number of calls seen in the spans."""
    cols = _Columns(spans)
    calls = np.flatnonzero(cols.calls())
    edges: Counter[tuple[str, str]] = Counter()
    if len(calls) == 0:
        return edges
    pair = cols.service[cols.parent[calls]] * len(cols.services) + cols.service[calls]
    _, first, counts = np.unique(pair, return_index=True, return_counts=True)
    for i, count in sorted(zip(first.tolist(), counts.tolist(), strict=True)):  # first seen first
        caller, callee = cols.service[cols.parent[calls[i]]], cols.service[calls[i]]
        edges[(cols.services[caller], cols.services[callee])] = count
    return edges


def self_times(spans: Sequence[Span]) -> dict[str, list[float]]:
    """Per service, each span's duration minus the union of its children's intervals (ms)."""
    cols = _Columns(spans)
    return {k: v.tolist() for k, v in _self_times(cols).items()}


def _self_times(cols: _Columns, waits: bool = True) -> dict[str, FloatArray]:
    """Per service, each span's own time (ms). waits=False leaves out client spans, whose
    uncovered time is spent waiting on the wire for the callee (the edge's, not theirs)."""
    covered = _covered(cols, *_child_links(cols))
    own = np.maximum(0.0, (cols.end - cols.start) - covered) * 1000.0
    rows = np.arange(cols.n) if waits else np.flatnonzero(~cols.client())
    return cols.by_service(rows, own[rows])


def _working_times(cols: _Columns) -> dict[str, FloatArray]:
    return _self_times(cols, waits=False)


def _child_links(cols: _Columns) -> tuple[IntArray, IntArray]:
    """(child, parent) index pairs: a span with a parent id is a child of every span holding that
    id in its trace (ids normally are unique; when one repeats, each holder gets the child)."""
    kids = np.flatnonzero(cols.has_parent_id & (cols.parent >= 0))
    holders = np.argsort(cols.canonical, kind="stable")  # spans grouped by the id they hold
    sorted_ids = cols.canonical[holders]
    first = np.searchsorted(sorted_ids, cols.parent[kids], side="left")
    count = np.searchsorted(sorted_ids, cols.parent[kids], side="right") - first
    child = np.repeat(kids, count)
    nth = np.arange(len(child)) - np.repeat(np.cumsum(count) - count, count)
    return child, holders[np.repeat(first, count) + nth]


def _covered(cols: _Columns, child: IntArray, parent: IntArray) -> FloatArray:
    """Seconds of each span's interval covered by at least one child (children may overlap).

    Same arithmetic as merging each parent's sorted child intervals in a loop: the merged
    segments are identical floats and each parent's segment lengths are added in order, so
    self times (and the ties among them that the rank test sees) are unchanged to the bit.
    """
    covered = np.zeros(cols.n)
    lo = np.maximum(cols.start[child], cols.start[parent])
    hi = np.minimum(cols.end[child], cols.end[parent])
    keep = hi > lo
    lo, hi, parent = lo[keep], hi[keep], parent[keep]
    if len(lo) == 0:
        return covered
    order = np.lexsort((hi, lo, parent))
    lo, hi, parent = lo[order], hi[order], parent[order]
    first_in_parent = np.r_[True, parent[1:] != parent[:-1]]
    # Running max of `hi` within each parent: rank the ends, offset each parent's ranks above
    # the previous parent's, and a plain cumulative max never carries over between parents.
    ends, rank = np.unique(hi, return_inverse=True)
    group = np.cumsum(first_in_parent) - 1
    reach = np.maximum.accumulate(group * len(ends) + rank.ravel()) % len(ends)
    # A new merged segment starts where a child begins after everything before it has ended.
    starts = first_in_parent.copy()
    starts[1:] |= lo[1:] > ends[reach[:-1]]
    seg_first = np.flatnonzero(starts)
    seg_last = np.r_[seg_first[1:] - 1, len(lo) - 1]
    seg_len = ends[reach[seg_last]] - lo[seg_first]
    seg_parent = parent[seg_first]
    # Add each parent's k-th segment in round k: in order, as a running total would.
    nth = (
        np.arange(len(seg_first))
        - np.flatnonzero(first_in_parent[seg_first])[np.cumsum(first_in_parent[seg_first]) - 1]
    )
    by_round = np.argsort(nth, kind="stable")
    bounds = np.searchsorted(nth[by_round], np.arange(int(nth.max()) + 2))
    for k in range(len(bounds) - 1):
        rows = by_round[bounds[k] : bounds[k + 1]]
        covered[seg_parent[rows]] += seg_len[rows]
    return covered


def network_gaps(spans: Sequence[Span]) -> dict[str, list[float]]:
    """Per callee service, caller span end minus callee span end on cross-service calls (ms)."""
    return {k: v.tolist() for k, v in _network_gaps(_Columns(spans)).items()}


def _network_gaps(cols: _Columns) -> dict[str, FloatArray]:
    calls = np.flatnonzero(cols.calls())
    gaps = np.maximum(0.0, cols.end[cols.parent[calls]] - cols.end[calls]) * 1000.0
    return cols.by_service(calls, gaps)


def error_counts(spans: Sequence[Span]) -> dict[str, tuple[int, int]]:
    """Per service, (error spans, all spans)."""
    return _error_counts(_Columns(spans))


def _error_counts(cols: _Columns) -> dict[str, tuple[int, int]]:
    k = len(cols.services)
    errors = np.bincount(cols.service, weights=cols.error, minlength=k).astype(np.int64)
    totals = np.bincount(cols.service, minlength=k)
    return {
        name: (e, t)
        for name, e, t in zip(cols.services, errors.tolist(), totals.tolist(), strict=True)
    }


def wire_times(spans: Sequence[Span]) -> dict[tuple[str, str], list[float]]:
    """Per (caller, callee) edge, each call's time on the wire (ms): the client span's duration
    minus the server span's, or the caller span's end minus the callee's without a client span."""
    return {edge: wire.tolist() for edge, (wire, _) in _wire_times(_Columns(spans)).items()}


def _wire_times(cols: _Columns) -> dict[tuple[str, str], tuple[FloatArray, FloatArray]]:
    """Per edge: each call's wire time (ms) and its start (s), in span order."""
    calls = np.flatnonzero(cols.calls())
    if len(calls) == 0:
        return {}
    parent = cols.parent[calls]
    duration = cols.end - cols.start
    wire = np.where(
        cols.client()[parent],
        duration[parent] - duration[calls],  # both directions of the call
        cols.end[parent] - cols.end[calls],  # the answer's way back only
    )
    wire = np.maximum(0.0, wire) * 1000.0
    pair = cols.service[parent] * len(cols.services) + cols.service[calls]
    order = np.argsort(pair, kind="stable")
    distinct, first = np.unique(pair[order], return_index=True)
    out = {}
    for code, rows in zip(distinct.tolist(), np.split(order, first[1:]), strict=True):
        edge = (cols.services[code // len(cols.services)], cols.services[code % len(cols.services)])
        out[edge] = (wire[rows], cols.start[calls[rows]])
    return out


def edge_slowdowns(
    baseline: Sequence[Span], incident: Sequence[Span]
) -> tuple[list[EdgeSlowdown], set[tuple[str, str]]]:
    """Call edges whose wire time grew, and every edge with enough calls to tell."""
    return _edge_slowdowns(_Columns(baseline), _Columns(incident))


def _edge_slowdowns(
    base_cols: _Columns, inc_cols: _Columns
) -> tuple[list[EdgeSlowdown], set[tuple[str, str]]]:
    base, inc = _wire_times(base_cols), _wire_times(inc_cols)
    slowed, measured = [], set()
    for edge in sorted(inc):
        before, (now, starts) = base.get(edge, (np.empty(0),))[0], inc[edge]
        if len(before) < MIN_SAMPLES or len(now) < MIN_SAMPLES:
            continue
        measured.add(edge)
        shift = _shift(before, now)
        if shift is None:
            continue
        b90, i90, z = shift
        late = starts[now > float(np.percentile(before, 99))]
        onset = float(late.min()) if len(late) else None
        slowed.append(EdgeSlowdown(*edge, z, b90, i90, onset, len(now), "traces.wire"))
    return slowed, measured


def _shift(base: FloatArray, inc: FloatArray) -> tuple[float, float, float] | None:
    """(baseline p90, window p90, Mann-Whitney z) when the window is clearly slower."""
    b90, i90 = float(np.percentile(base, 90)), float(np.percentile(inc, 90))
    if (i90 + 1.0) / (b90 + 1.0) < MIN_RATIO:  # +1 ms: sub-millisecond jitter is not a shift
        return None
    z = z_from_p(float(mannwhitneyu(inc, base, alternative="greater").pvalue))
    return (b90, i90, z) if z >= MIN_Z else None


def trace_findings(baseline: Sequence[Span], incident: Sequence[Span]) -> list[Finding]:
    """Services whose self time grew, whose network the slowed call edges have in common, or
    whose spans started failing."""
    base_cols, inc_cols = _Columns(baseline), _Columns(incident)
    first_start = _first_start(inc_cols, np.ones(inc_cols.n, dtype=bool))
    findings = []
    base, inc = _working_times(base_cols), _working_times(inc_cols)
    for service in sorted(inc):
        f = _latency_shift(
            service,
            SELF_TIME,
            IndicatorKind.SYMPTOM,
            base.get(service, np.empty(0)),
            inc[service],
            first_start,
        )
        if f is not None:
            findings.append(f)
    slowed, measured = _edge_slowdowns(base_cols, inc_cols)
    for blame in common_endpoints(slowed, measured):
        findings.append(_network_finding(blame, base.get(blame.service), inc.get(blame.service)))
    findings += _error_findings(base_cols, inc_cols)
    return findings


def _network_finding(
    blame: EdgeBlame, base_work: FloatArray | None, inc_work: FloatArray | None
) -> Finding:
    """The slowed edges charged to one endpoint, scored by their strongest and by how many of
    its own edges slowed (a component whose other calls stayed fast is a weaker suspect)."""
    service = blame.service
    shown = "; ".join(
        f"{e.caller}->{e.callee} {e.before_ms:.1f} -> {e.now_ms:.1f} ms (z={e.z:.1f})"
        for e in blame.edges[:4]
    )
    statement = (
        f"{service}: {blame.slowed_touching} of {blame.measured} call edges touching it slower "
        f"on the wire (client minus server span time, p90): {shown}"
    )
    if base_work is not None and inc_work is not None and len(base_work) and len(inc_work):
        b, i = float(np.percentile(base_work, 90)), float(np.percentile(inc_work, 90))
        statement += f"; its own working time p90 {b:.1f} -> {i:.1f} ms"
    top = blame.edges[0]
    evidence = Evidence(
        id=f"trace:{service}:{NETWORK}",
        statement=statement,
        value=top.now_ms,
        baseline=top.before_ms,
        unit="ms",
        source=f"experts.traces.trace_findings(service={service}, indicator={NETWORK})",
    )
    onsets = [e.onset for e in blame.edges if e.onset is not None]
    return Finding(
        service,
        NETWORK,
        IndicatorKind.RESOURCE,
        Modality.TRACE,
        blame.z * blame.purity,
        min(onsets) if onsets else None,
        +1,
        (evidence,),
    )


def _first_start(cols: _Columns, rows: NDArray[np.bool_]) -> dict[str, float]:
    """The earliest start of the selected spans, per service (the first such span on ties)."""
    service, start = cols.service[rows], cols.start[rows]
    order = np.lexsort((start, service))  # stable: equal starts keep span order
    codes, first = np.unique(service[order], return_index=True)
    earliest = start[order[first]]
    return {cols.services[c]: t for c, t in zip(codes.tolist(), earliest.tolist(), strict=True)}


def _latency_shift(
    service: str,
    name: str,
    kind: IndicatorKind,
    base: FloatArray,
    inc: FloatArray,
    first_start: dict[str, float],
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
    onset = first_start.get(service)
    return Finding(service, name, kind, Modality.TRACE, z, onset, +1, (evidence,))


def _error_findings(base_cols: _Columns, inc_cols: _Columns) -> list[Finding]:
    base, inc = _error_counts(base_cols), _error_counts(inc_cols)
    first_error = _first_start(inc_cols, inc_cols.error)
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
        onset = first_error.get(service)
        out.append(
            Finding(
                service, ERRORS, IndicatorKind.SYMPTOM, Modality.TRACE, z, onset, +1, (evidence,)
            )
        )
    return out
