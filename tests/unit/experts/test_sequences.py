"""Code-region expert: transitions between events and the ones that stopped happening."""

from __future__ import annotations

from collections import Counter, defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

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


# The vectorised counters must give exactly what the straightforward per-event loops gave,
# including dict/Counter order (it decides most_common ties and the order of findings).


def _reference_transitions(events: list[EventOccurrence]) -> Counter[tuple[str, str, str]]:
    by_span: dict[tuple[str, str], list[tuple[float, int, str]]] = defaultdict(list)
    for order, e in enumerate(events):
        rank = 0 if e.key.endswith(" start") else 1
        by_span[(e.service, e.span_key)].append((e.time, rank * 10**9 + order, e.key))
    counts: Counter[tuple[str, str, str]] = Counter()
    for (service, _), items in by_span.items():
        keys = [k for _, _, k in sorted(items)] + [END]
        for a, b in zip(keys, keys[1:], strict=False):
            counts[(service, a, b)] += 1
    return counts


def _reference_first(events: list[EventOccurrence]) -> dict[tuple[str, str, str], float]:
    by_span: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
    for e in events:
        by_span[(e.service, e.span_key)].append((e.time, e.key))
    first: dict[tuple[str, str, str], float] = {}
    for (service, _), items in by_span.items():
        items.sort()
        for (t, a), (_, b) in zip(items, items[1:] + [(items[-1][0], END)], strict=False):
            first[(service, a, b)] = min(first.get((service, a, b), t), t)
    return first


_event = st.builds(
    EventOccurrence,
    st.sampled_from([0.0, 1.0, 2.0]) | st.floats(0.0, 3.0),  # many ties in time
    st.sampled_from(["s1", "s2"]),
    st.sampled_from(["t/1", "t/2", "t/3"]),
    st.sampled_from(["A", "B", "x start", "-> q", END]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_event, max_size=40))
def test_transitions_match_the_per_event_loop_including_order(
    events: list[EventOccurrence],
) -> None:
    assert list(transitions(events).items()) == list(_reference_transitions(events).items())
    assert first_occurrences(events) == _reference_first(events)


def test_transitions_accept_any_iterable() -> None:
    events = _flows([["A", "B"], ["A", "C"]])
    assert transitions(iter(events)) == transitions(events)
    assert first_occurrences(iter(events)) == first_occurrences(events)
    assert transitions([]) == Counter() and first_occurrences([]) == {}


def test_one_span_key_in_two_services_is_two_sequences() -> None:
    events = [
        EventOccurrence(1.0, "a", "t/s", "A"),
        EventOccurrence(2.0, "b", "t/s", "B"),
    ]
    assert transitions(events) == {("a", "A", END): 1, ("b", "B", END): 1}


def test_call_events_use_the_last_span_holding_a_repeated_parent_id() -> None:
    spans = [
        _span("p", "", "frontend", "GET /", 0.0),
        _span("p", "", "gateway", "GET /", 0.0),  # the same id again: a dict keeps this one
        _span("c", "p", "payment", "charge", 0.1),
    ]
    (call,) = [e for e in call_events(spans) if e.key.startswith("-> ")]
    assert call.service == "gateway"
