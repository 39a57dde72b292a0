"""Log expert: error lines, events keyed by code location, and template share changes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warroom.experts.logs import _TRACE_CONTEXT, is_error, log_events, template_findings
from warroom.experts.sequences import EventOccurrence
from warroom.experts.templates import code_location, event_key, mine
from warroom.model import IndicatorKind, LogRecord, Modality


@pytest.mark.parametrize(
    ("level", "message"),
    [
        ("ERROR", "something happened"),
        ("error", "something happened"),
        ("FATAL", "bye"),
        ("INFO", "java.lang.NullPointerException at Foo"),
        ("INFO", "connect to db: Connection refused"),
        ("", "upstream request timed out"),
        ("WARN", "call failed after 3 retries"),
    ],
)
def test_error_level_or_error_words_make_an_error(level: str, message: str) -> None:
    assert is_error(level, message)


@pytest.mark.parametrize(
    ("level", "message"),
    [("INFO", "order 12 created"), ("DEBUG", "cache hit"), ("WARN", "slow query 120 ms"), ("", "")],
)
def test_ordinary_lines_are_not_errors(level: str, message: str) -> None:
    assert not is_error(level, message)


def test_log_events_use_the_code_location_as_key() -> None:
    records = [
        LogRecord(1.0, "orders", "c.s.FooImpl#31 did x 12", trace_id="t1", span_id="s1"),
        LogRecord(2.0, "orders", "c.s.FooImpl#31 did x 13", trace_id="t2", span_id="s2"),
        LogRecord(3.0, "orders", "c.s.BarImpl#40 sent order 99 to queue", trace_id="t2"),
        LogRecord(4.0, "orders", "c.s.BarImpl#40 failed", level="ERROR", trace_id="t3"),
    ]
    events = log_events(records)
    assert [e.key for e in events] == [
        "c.s.FooImpl#31",
        "c.s.FooImpl#31",
        "c.s.BarImpl#40",
        "c.s.BarImpl#40",
    ]
    assert [e.time for e in events] == [1.0, 2.0, 3.0, 4.0]
    assert all(e.service == "orders" for e in events)
    # A line without a span id belongs to its trace and service.
    assert [e.span_key for e in events] == ["t1/s1", "t2/s2", "t2/orders", "t3/orders"]
    assert [e.error for e in events] == [False, False, False, True]


def test_log_events_without_location_share_a_key_across_variable_values() -> None:
    records = [
        LogRecord(float(i), "cart", f"user {i} added item {100 + i} to cart") for i in range(5)
    ]
    keys = {e.key for e in log_events(records)}
    assert len(keys) == 1
    assert "added item" in keys.pop()


def test_log_events_of_nothing_is_nothing() -> None:
    assert log_events([]) == []


def _events(
    counts: dict[str, int], start: float, error_keys: frozenset[str] = frozenset()
) -> list[EventOccurrence]:
    events: list[EventOccurrence] = []
    t = start
    for key, n in counts.items():
        for _ in range(n):
            events.append(EventOccurrence(t, "orders", f"t{t}/orders", key, key in error_keys))
            t += 1.0
    return events


BASE_MIX = {"c.s.OrderImpl#10": 25, "c.s.OrderImpl#12": 25, "c.s.OrderImpl#20": 25, "c.s.Pay#7": 25}
INC_MIX = {"c.s.OrderImpl#10": 23, "c.s.OrderImpl#12": 22, "c.s.OrderImpl#20": 23, "c.s.Pay#7": 22}


def test_new_error_template_is_reported_as_appearing() -> None:
    base = _events(BASE_MIX, start=0.0)
    err = "c.s.OrderImpl#55"
    inc = _events({**INC_MIX, err: 10}, start=1000.0, error_keys=frozenset({err}))
    findings = template_findings(base, inc)
    assert len(findings) == 1
    f = findings[0]
    assert f.service == "orders"
    assert f.indicator == f"log:{err}"
    assert f.direction == +1
    assert f.modality is Modality.LOG
    assert f.kind is IndicatorKind.SYMPTOM
    assert f.score >= 3.0
    assert f.onset == 1090.0  # the first incident line of the new template (after 90 others)
    assert "new" in f.evidence[0].statement
    assert "0/100" in f.evidence[0].statement and "10/100" in f.evidence[0].statement


def test_error_template_scores_higher_than_the_same_info_template() -> None:
    base = _events(BASE_MIX, start=0.0)
    key = "c.s.OrderImpl#55"
    as_error = _events({**INC_MIX, key: 10}, 1000.0, frozenset({key}))
    as_info = _events({**INC_MIX, key: 10}, 1000.0)
    (err,) = template_findings(base, as_error)
    (info,) = template_findings(base, as_info)
    assert err.score > info.score


def test_vanished_template_is_reported_going_down() -> None:
    base = _events({"c.s.A#1": 50, "c.s.B#2": 50}, start=0.0)
    inc = _events({"c.s.A#1": 100}, start=1000.0)
    by_key = {f.indicator: f for f in template_findings(base, inc)}
    assert by_key["log:c.s.B#2"].direction == -1
    assert by_key["log:c.s.B#2"].onset is None


def test_identical_distributions_report_nothing() -> None:
    counts = {"c.s.A#1": 60, "c.s.B#2": 30, "c.s.C#3": 10}
    assert template_findings(_events(counts, 0.0), _events(counts, 1000.0)) == []


def test_traffic_change_alone_reports_nothing() -> None:
    base = _events({"c.s.A#1": 60, "c.s.B#2": 40}, 0.0)
    inc = _events({"c.s.A#1": 300, "c.s.B#2": 200}, 1000.0)  # five times the traffic, same mix
    assert template_findings(base, inc) == []


def test_service_without_baseline_lines_is_not_judged() -> None:
    base = _events({"c.s.A#1": 50}, 0.0)
    inc = [EventOccurrence(1000.0 + i, "newsvc", "t/newsvc", "c.s.X#9", True) for i in range(20)]
    assert template_findings(base, inc) == []


def test_trace_context_inside_the_message_is_not_part_of_the_event() -> None:
    records = [
        LogRecord(
            float(i), "checkout", f"TraceID: {i:032x} SpanID: {i:016x} Start charge card", "info"
        )
        for i in range(5)
    ]
    keys = {e.key for e in log_events(records)}
    assert keys == {"Start charge card"}


def _reference_log_events(records: list[LogRecord]) -> list[EventOccurrence]:
    """The per-line version: clean, locate or mine, check for errors, one line at a time."""
    messages = [_TRACE_CONTEXT.sub("", r.message).strip() for r in records]
    keys = [code_location(m) for m in messages]
    unkeyed = [i for i, k in enumerate(keys) if k is None]
    result = mine([messages[i] for i in unkeyed])
    for i, template_id in zip(unkeyed, result.ids, strict=True):
        keys[i] = event_key(messages[i], result.templates[template_id])
    return [
        EventOccurrence(
            r.time,
            r.service,
            f"{r.trace_id}/{r.span_id or r.service}",
            str(k),
            is_error(r.level, r.message),
        )
        for r, k in zip(records, keys, strict=True)
    ]


_MESSAGES = [
    "c.s.FooImpl#31 did x 12",
    "c.s.FooImpl#31 did x 12",
    "user 7 added item 12 to cart",
    "user 8 added item 3 to cart",
    "trace_id=abc c.s.Bar#2 ok",
    "connect to db: Connection refused",
    "span-id: ab12 cache miss for key users",
    "12:00:01 GET /x/1 200",
]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.builds(
            LogRecord,
            st.floats(0.0, 10.0),
            st.sampled_from(["a", "b"]),
            st.sampled_from(_MESSAGES),
            st.sampled_from(["INFO", "error", "", "Fatal"]),
            st.just(""),
            st.sampled_from(["t1", ""]),
            st.sampled_from(["s1", ""]),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_log_events_match_the_per_line_version(records: list[LogRecord]) -> None:
    assert log_events(records) == _reference_log_events(records)


def test_repeated_message_takes_its_error_flag_from_each_line_level() -> None:
    records = [
        LogRecord(1.0, "orders", "c.s.A#1 done", "INFO"),
        LogRecord(2.0, "orders", "c.s.A#1 done", "ERROR"),
    ]
    assert [e.error for e in log_events(records)] == [False, True]
