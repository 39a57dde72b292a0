"""Trace expert: call edges, self time, network gaps on call edges, and latency findings."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warroom.experts.traces import (
    ERRORS,
    NETWORK,
    SELF_TIME,
    call_edges,
    edge_slowdowns,
    network_gaps,
    self_times,
    trace_findings,
    wire_times,
)
from warroom.model import IndicatorKind, Modality, Span

MS = 0.001


def _span(
    trace: str,
    span_id: str,
    parent: str,
    service: str,
    start: float,
    end: float,
    error: bool = False,
) -> Span:
    return Span(trace, span_id, parent, service, f"{service}-op", start, end, error)


def test_call_edges_count_cross_service_calls_only() -> None:
    spans = [
        _span("t1", "a", "", "frontend", 0.0, 1.0),
        _span("t1", "b", "a", "checkout", 0.1, 0.9),
        _span("t1", "c", "b", "checkout", 0.2, 0.3),  # internal span: not a call edge
        _span("t1", "d", "b", "payment", 0.4, 0.5),
        _span("t2", "e", "", "frontend", 2.0, 3.0),
        _span("t2", "f", "e", "checkout", 2.1, 2.9),
        _span("t2", "g", "missing", "payment", 2.2, 2.3),  # orphan: parent not seen
    ]
    assert call_edges(spans) == {("frontend", "checkout"): 2, ("checkout", "payment"): 1}


def test_self_time_subtracts_the_union_of_overlapping_children() -> None:
    spans = [
        _span("t", "p", "", "checkout", 0.0, 100 * MS),
        _span("t", "c1", "p", "payment", 10 * MS, 50 * MS),
        _span("t", "c2", "p", "payment", 30 * MS, 70 * MS),  # overlaps c1: 10..70 covered
    ]
    times = self_times(spans)
    assert times["checkout"] == [pytest.approx(40.0)]
    assert times["payment"] == [pytest.approx(40.0), pytest.approx(40.0)]


def test_self_time_clips_children_to_the_parent_and_never_goes_negative() -> None:
    spans = [
        _span("t", "p", "", "checkout", 0.0, 100 * MS),
        _span("t", "c1", "p", "payment", 80 * MS, 150 * MS),  # async child outlives its parent
        _span("t", "c2", "p", "payment", 0.0, 30 * MS),
    ]
    assert self_times(spans)["checkout"] == [pytest.approx(50.0)]
    full = [_span("t", "p", "", "a", 0.0, 0.1), _span("t", "c", "p", "b", -0.1, 0.2)]
    assert self_times(full)["a"] == [pytest.approx(0.0)]


def test_network_gap_is_caller_end_minus_callee_end_on_cross_service_calls() -> None:
    spans = [
        _span("t", "p", "", "checkout", 0.0, 100 * MS),
        _span("t", "c", "p", "payment", 10 * MS, 70 * MS),
        _span("t", "i", "p", "checkout", 10 * MS, 20 * MS),  # same service: no network hop
    ]
    gaps = network_gaps(spans)
    assert set(gaps) == {"payment"}
    assert gaps["payment"] == [pytest.approx(30.0)]


def _traces(
    n: int, child_ms: float, gap_ms: float, start: float = 0.0, error: bool = False
) -> list[Span]:
    """n traces frontend -> backend: 5 ms in the caller before the call, then the callee's
    span of child_ms, then gap_ms until the caller's span ends. A little jitter avoids ties."""
    spans = []
    for i in range(n):
        t0 = start + i
        jitter = (i % 5) * 0.2
        c_start = t0 + 5 * MS
        c_end = c_start + (child_ms + jitter) * MS
        p_end = c_end + (gap_ms + jitter) * MS
        spans.append(_span(f"t{start}-{i}", f"p{start}-{i}", "", "frontend", t0, p_end))
        spans.append(
            _span(
                f"t{start}-{i}", f"c{start}-{i}", f"p{start}-{i}", "backend", c_start, c_end, error
            )
        )
    return spans


def _by_key(findings: list) -> dict:
    return {(f.service, f.indicator): f for f in findings}


def test_unchanged_traces_give_no_findings() -> None:
    assert trace_findings(_traces(30, 10, 5), _traces(30, 10, 5, start=1000.0)) == []


def test_slower_callee_gives_a_self_time_finding_on_the_callee_only() -> None:
    base, inc = _traces(30, 10, 5), _traces(30, 50, 5, start=1000.0)
    found = _by_key(trace_findings(base, inc))
    assert set(found) == {("backend", SELF_TIME)}
    f = found[("backend", SELF_TIME)]
    assert f.kind is IndicatorKind.SYMPTOM
    assert f.modality is Modality.TRACE
    assert f.direction == +1
    assert f.score >= 3.0
    assert f.onset == pytest.approx(1000.0 + 5 * MS)
    assert f.evidence[0].value > 4 * f.evidence[0].baseline


def test_network_delay_gives_the_network_finding_on_the_callee() -> None:
    base, inc = _traces(30, 10, 5), _traces(30, 10, 205, start=1000.0)
    found = _by_key(trace_findings(base, inc))
    assert ("backend", NETWORK) in found
    assert ("backend", SELF_TIME) not in found  # the callee's own spans look normal
    f = found[("backend", NETWORK)]
    assert f.kind is IndicatorKind.RESOURCE
    assert f.evidence[0].value - f.evidence[0].baseline == pytest.approx(200.0, abs=1.0)


def test_too_few_spans_are_not_judged() -> None:
    assert trace_findings(_traces(3, 10, 5), _traces(3, 100, 500, start=1000.0)) == []


def test_failing_spans_give_an_error_finding() -> None:
    base = _traces(30, 10, 5)
    inc = _traces(30, 10, 5, start=1000.0, error=True)
    found = _by_key(trace_findings(base, inc))
    assert set(found) == {("backend", ERRORS)}
    assert found[("backend", ERRORS)].onset == pytest.approx(1000.0 + 5 * MS)


def test_span_ids_reused_across_traces_link_within_their_own_trace() -> None:
    spans = [
        _span("t1", "1", "", "frontend", 0.0, 0.1),
        _span("t1", "2", "1", "checkout", 0.01, 0.05),
        _span("t2", "1", "", "web", 0.0, 0.2),
        _span("t2", "2", "1", "db", 0.01, 0.15),
    ]
    assert call_edges(spans) == {("frontend", "checkout"): 1, ("web", "db"): 1}
    assert network_gaps(spans)["checkout"] == [pytest.approx(50.0)]


# The column-wise experts must give exactly what the per-span loops gave: self times feed a rank
# test, so even the last bit matters (a 0.0 that became 1e-17 would break a tie).


def _reference_self_times(spans: list[Span]) -> dict[str, list[float]]:
    children: dict[tuple[str, str], list[Span]] = defaultdict(list)
    for s in spans:
        if s.parent_id:
            children[(s.trace_id, s.parent_id)].append(s)
    out: dict[str, list[float]] = defaultdict(list)
    for s in spans:
        kids = children.get((s.trace_id, s.span_id), [])
        intervals = sorted((max(k.start, s.start), min(k.end, s.end)) for k in kids)
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
        out[s.service].append(max(0.0, s.duration - total) * 1000.0)
    return out


def _reference_gaps(spans: list[Span]) -> dict[str, list[float]]:
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    out: dict[str, list[float]] = defaultdict(list)
    for s in spans:
        parent = by_id.get((s.trace_id, s.parent_id))
        if parent is not None and parent.service != s.service:
            out[s.service].append(max(0.0, parent.end - s.end) * 1000.0)
    return out


def _reference_edges(spans: list[Span]) -> Counter[tuple[str, str]]:
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    edges: Counter[tuple[str, str]] = Counter()
    for s in spans:
        parent = by_id.get((s.trace_id, s.parent_id))
        if parent is not None and parent.service != s.service:
            edges[(parent.service, s.service)] += 1
    return edges


@st.composite
def _span_lists(draw: st.DrawFn) -> list[Span]:
    ids = st.sampled_from(["", "1", "2", "3", "4"])  # few ids: repeats, self-parents, orphans
    spans = []
    for _ in range(draw(st.integers(0, 25))):
        start = draw(st.sampled_from([0.0, 0.1, 0.2]) | st.floats(0.0, 1.0))
        end = start + draw(st.sampled_from([0.0, 0.1]) | st.floats(-0.1, 1.0))
        spans.append(
            Span(
                draw(st.sampled_from(["t1", "t2"])),
                draw(ids),
                draw(ids),
                draw(st.sampled_from(["a", "b", "c"])),
                "op",
                start,
                end,
                draw(st.booleans()),
            )
        )
    return spans


@settings(max_examples=300, deadline=None)
@given(_span_lists())
def test_trace_columns_match_the_per_span_loops(spans: list[Span]) -> None:
    assert list(self_times(spans).items()) == list(_reference_self_times(spans).items())
    assert list(network_gaps(spans).items()) == list(_reference_gaps(spans).items())
    assert list(call_edges(spans).items()) == list(_reference_edges(spans).items())


def test_self_time_sums_many_disjoint_children_in_order() -> None:
    kids = [_span("t", f"c{i}", "p", "db", i * 0.01 + 0.001, i * 0.01 + 0.004) for i in range(50)]
    spans = [_span("t", "p", "", "api", 0.0, 1.0), *kids]
    assert self_times(spans)["api"] == _reference_self_times(spans)["api"]


def test_every_span_holding_a_repeated_id_gets_its_children() -> None:
    spans = [
        _span("t", "p", "", "a", 0.0, 0.1),
        _span("t", "p", "", "b", 0.0, 0.2),
        _span("t", "c", "p", "c", 0.0, 0.05),
    ]
    assert self_times(spans) == {
        "a": [pytest.approx(50.0)],
        "b": [pytest.approx(150.0)],
        "c": [pytest.approx(50.0)],
    }


def test_onset_is_the_first_of_the_earliest_spans() -> None:
    base, inc = _traces(30, 10, 5), _traces(30, 50, 5, start=1000.0)
    early = _span("x", "x", "", "backend", 999.0, 999.001)  # a fast span starts first
    (f,) = trace_findings(base, [*inc, early])
    assert f.onset == 999.0


def _chain(n: int, start: float, delay_ms: float) -> list[Span]:
    """n requests web -> geo -> db (client span + server span per hop) and n requests
    api -> db, with `delay_ms` added to every packet geo sends: geo's answers to web and geo's
    requests to db. Processing times stay the same."""
    spans: list[Span] = []
    d = delay_ms * MS
    for i in range(n):
        t, j, tid = start + i, (i % 5) * 0.1 * MS, f"{start}-{i}"
        # web (server) -> web client -> geo server -> geo client -> db server
        db_start = t + 4 * MS + d + j  # geo's request to db travels late
        db_end = db_start + 3 * MS
        geo_client_end = db_end + 0.5 * MS
        geo_end = geo_client_end + 1 * MS
        web_client_end = geo_end + 0.5 * MS + d  # geo's answer travels late
        spans += [
            _span(tid, "w", "", "web", t, web_client_end + 1 * MS),
            _span(tid, "wc", "w", "web", t + 1 * MS, web_client_end),
            _span(tid, "g", "wc", "geo", t + 1.5 * MS, geo_end),
            _span(tid, "gc", "g", "geo", t + 3.5 * MS, geo_client_end),
            _span(tid, "d", "gc", "db", db_start, db_end),
        ]
        tid2 = f"{start}-{i}-api"
        spans += [
            _span(tid2, "a", "", "api", t, t + 6 * MS + j),
            _span(tid2, "ac", "a", "api", t + 1 * MS, t + 5 * MS + j),
            _span(tid2, "d", "ac", "db", t + 1.5 * MS, t + 4.5 * MS + j),
        ]
    return spans


def test_wire_time_is_client_minus_server_span_time_in_both_directions() -> None:
    wire = wire_times(_chain(5, 0.0, 100.0))
    # web -> geo: 1 ms of request/answer travel, plus geo's late answer (100 ms).
    assert wire[("web", "geo")][0] == pytest.approx(101.0, abs=0.01)
    # geo -> db: geo's late request (100 ms) plus 1 ms of travel; db's own 3 ms excluded.
    assert wire[("geo", "db")][0] == pytest.approx(101.0, abs=0.01)
    assert wire[("api", "db")][0] == pytest.approx(1.0, abs=0.01)


def test_a_delay_on_one_component_is_charged_to_it_not_to_its_callee() -> None:
    base, inc = _chain(30, 0.0, 0.0), _chain(30, 1000.0, 100.0)
    slowed, measured = edge_slowdowns(base, inc)
    assert {(e.caller, e.callee) for e in slowed} == {("web", "geo"), ("geo", "db")}
    assert ("api", "db") in measured
    found = _by_key(trace_findings(base, inc))
    assert ("geo", NETWORK) in found
    assert ("db", NETWORK) not in found and ("web", NETWORK) not in found
    assert "2 of 2 call edges" in found[("geo", NETWORK)].evidence[0].statement
    # Waiting for a slow answer is not working: web's and geo's own time did not change.
    assert ("web", SELF_TIME) not in found and ("geo", SELF_TIME) not in found


def test_one_slowed_edge_goes_to_the_end_whose_other_edges_stayed_fast() -> None:
    # Only api -> db slows: db's other edge (geo -> db) is fine, so api's network is named.
    base = _chain(30, 0.0, 0.0)
    inc = [
        replace(s, end=s.end + 0.1) if s.span_id in ("ac", "a") and "api" in s.trace_id else s
        for s in _chain(30, 1000.0, 0.0)
    ]
    found = _by_key(trace_findings(base, inc))
    assert ("api", NETWORK) in found and ("db", NETWORK) not in found
