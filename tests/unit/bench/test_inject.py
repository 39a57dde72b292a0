"""The semi-synthetic network delay: every call crossing the target is slower on the wire."""

from __future__ import annotations

import pytest

from warroom.bench.inject import inject_network_delay, pick_target
from warroom.experts.traces import wire_times
from warroom.model import TimeRange
from warroom.telemetry.store import TelemetryStore

MS = 0.001


def _store() -> TelemetryStore:
    """web -> geo -> db, client span + server span per hop, one log line in db's span."""
    rows = [
        ("t", "w", "", "web", 0.0, 20 * MS),
        ("t", "wc", "w", "web", 1 * MS, 19 * MS),
        ("t", "g", "wc", "geo", 2 * MS, 18 * MS),
        ("t", "gc", "g", "geo", 3 * MS, 17 * MS),
        ("t", "d", "gc", "db", 4 * MS, 16 * MS),
    ]
    store = TelemetryStore()
    store.insert_columns(
        "spans",
        {
            "trace_id": [r[0] for r in rows],
            "span_id": [r[1] for r in rows],
            "parent_id": [r[2] for r in rows],
            "service": [r[3] for r in rows],
            "pod": [""] * 5,
            "operation": ["op"] * 5,
            "start_ts": [r[4] for r in rows],
            "end_ts": [r[5] for r in rows],
            "error": [False] * 5,
        },
    )
    store.insert_columns(
        "logs",
        {
            "ts": [10 * MS],
            "service": ["db"],
            "pod": [""],
            "level": ["INFO"],
            "message": ["query done"],
            "trace_id": ["t"],
            "span_id": ["d"],
        },
    )
    return store


def test_a_delay_on_geo_slows_its_calls_in_and_out_and_moves_the_callee_side() -> None:
    store, window = _store(), TimeRange(0.0, 60.0)
    before = wire_times(store.spans(window))
    assert inject_network_delay(store, window, "geo", 0.1) == 2  # web->geo and geo->db
    after = wire_times(store.spans(window))
    for edge in (("web", "geo"), ("geo", "db")):
        assert after[edge][0] - before[edge][0] == pytest.approx(100.0)
    spans = {s.span_id: s for s in store.spans(window)}
    assert spans["d"].duration == pytest.approx(12 * MS)  # db's own work is unchanged
    assert spans["w"].end == pytest.approx(20 * MS + 0.2)  # the top waited for both hops
    (line,) = store.logs(window)
    assert line.time == pytest.approx(10 * MS + 0.1)  # two callee sides of 50 ms each


def test_the_target_is_never_the_excluded_culprit_and_needs_enough_calls() -> None:
    spans = _store().spans(TimeRange(0.0, 60.0))
    assert pick_target(spans, exclude="db", seed=1) is None  # two calls: too few to test on
