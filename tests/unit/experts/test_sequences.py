"""Code-region expert: transitions between events and the ones that stopped happening."""

from __future__ import annotations

from warroom.experts.sequences import (
    END,
    EventOccurrence,
    broken_transitions,
    call_events,
    first_occurrences,
    transitions,
)
from warroom.model import IndicatorKind, Span

SERVICE = "orders"


def _flows(flows: list[list[str]], start: float = 0.0) -> list[EventOccurrence]:
    """One span per flow; its events one second apart, spans ten seconds apart.

    Built newest span first, so nothing relies on input order.
    """
    events = []
    for i in reversed(range(len(flows))):
        t0 = start + 10.0 * i
        for j, key in enumerate(flows[i]):
            events.append(EventOccurrence(t0 + j, SERVICE, f"trace{i}/span{i}", key))
    return events


def _findings(
    base: list[list[str]], inc: list[list[str]], error_keys: frozenset[str] = frozenset()
) -> list:
    inc_events = _flows(inc, start=1000.0)
    return broken_transitions(
        transitions(_flows(base)),
        transitions(inc_events),
        first_occurrences(inc_events),
        error_keys,
    )


def test_transitions_count_consecutive_pairs_per_span_ending_in_end() -> None:
    counts = transitions(_flows([["A", "B"], ["A", "B"], ["A", "C"]]))
    assert counts[(SERVICE, "A", "B")] == 2
    assert counts[(SERVICE, "A", "C")] == 1
    assert counts[(SERVICE, "B", END)] == 2
    assert counts[(SERVICE, "C", END)] == 1


def test_transitions_order_events_by_time_not_input_order() -> None:
    events = [
        EventOccurrence(2.0, SERVICE, "t/s", "B"),
        EventOccurrence(1.0, SERVICE, "t/s", "A"),
    ]
    counts = transitions(events)
    assert counts[(SERVICE, "A", "B")] == 1
    assert (SERVICE, "B", "A") not in counts


def test_replaced_successor_is_a_broken_code_region() -> None:
    findings = _findings([["A", "B"]] * 20, [["A", "C"]] * 20)
    assert len(findings) == 1
    f = findings[0]
    assert f.service == SERVICE
    assert f.indicator == "A_B"
    assert f.kind is IndicatorKind.CODE
    assert f.direction == -1
    assert f.score >= 3.0
    # The first incident span starts at 1000: that is when A was first followed by C.
    assert f.onset == 1000.0
    assert "now followed by C" in f.evidence[0].statement
    assert "20/20" in f.evidence[0].statement and "0/20" in f.evidence[0].statement


def test_onset_is_the_first_time_the_new_successor_appeared() -> None:
    inc = [["A", "B"]] * 5 + [["A", "C"]] * 15  # the break starts at the sixth span
    findings = _findings([["A", "B"]] * 20, inc)
    assert [f.indicator for f in findings] == ["A_B"]
    assert findings[0].onset == 1050.0


def test_mild_shift_in_successor_share_is_not_a_break() -> None:
    base = [["A", "B"]] * 18 + [["A", "D"]] * 2  # B follows A 90 %
    inc = [["A", "B"]] * 14 + [["A", "D"]] * 6  # 70 %
    assert _findings(base, inc) == []


def test_vanished_error_successor_is_good_news_not_a_finding() -> None:
    base, inc = [["A", "E"]] * 20, [["A", "B"]] * 20
    assert [f.indicator for f in _findings(base, inc)] == ["A_E"]  # the control
    assert _findings(base, inc, error_keys=frozenset({"E"})) == []


def test_vanished_end_marker_is_not_an_early_exit() -> None:
    # A used to be the last event; now the flow continues past it.
    assert _findings([["A"]] * 20, [["A", "C"]] * 20) == []


def test_rare_context_is_not_judged() -> None:
    # A was seen only twice fault-free: too little to know its usual successor.
    assert _findings([["A", "B"]] * 2, [["A", "C"]] * 20) == []


def test_first_occurrences_keep_the_earliest_time() -> None:
    first = first_occurrences(_flows([["A", "B"]] * 3, start=50.0))
    assert first[(SERVICE, "A", "B")] == 50.0
    assert first[(SERVICE, "B", END)] == 51.0


def _span(
    span_id: str, parent: str, service: str, op: str, start: float, trace: str = "t1"
) -> Span:
    return Span(trace, span_id, parent, service, op, start, start + 0.5)


def test_call_events_add_child_calls_to_the_parent_sequence() -> None:
    spans = [
        _span("p", "", "frontend", "GET /cart", 0.0),
        _span("c2", "p", "shipping", "quote", 0.3),
        _span("c1", "p", "payment", "charge", 0.1),
    ]
    events = call_events(spans)
    calls = [e for e in events if e.key.startswith("-> ")]
    assert {(e.key, e.service, e.span_key, e.time) for e in calls} == {
        ("-> charge", "frontend", "t1/p", 0.1),
        ("-> quote", "frontend", "t1/p", 0.3),
    }
    starts = {e.key for e in events if e.key.endswith(" start")}
    assert starts == {"GET /cart start", "charge start", "quote start"}
    counts = transitions(events)
    assert counts[("frontend", "GET /cart start", "-> charge")] == 1
    assert counts[("frontend", "-> charge", "-> quote")] == 1
    assert counts[("frontend", "-> quote", END)] == 1


def test_call_events_link_children_only_within_their_trace() -> None:
    spans = [
        _span("p", "", "frontend", "GET /", 0.0, trace="t1"),
        _span("c", "p", "payment", "charge", 0.1, trace="t2"),  # parent id of another trace
    ]
    assert [e for e in call_events(spans) if e.key.startswith("-> ")] == []
