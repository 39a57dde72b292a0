"""The embedded DuckDB store: typed reads of what SQL put in."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from warroom.model import LogRecord, Span, TimeRange
from warroom.telemetry.store import TelemetryStore

ALL = TimeRange(0.0, 1000.0)


@pytest.fixture
def store() -> Iterator[TelemetryStore]:
    s = TelemetryStore()
    yield s
    s.close()


def _metrics(store: TelemetryStore) -> None:
    # Deliberately out of order, with a NULL value and points outside the window used below.
    store.execute(
        "INSERT INTO metrics (service, name, ts, value) VALUES "
        "('payment', 'cpu', 30.0, 3.0), ('payment', 'cpu', 10.0, 1.0), "
        "('payment', 'cpu', 20.0, NULL), ('checkout', 'cpu', 10.0, 5.0), "
        "('payment', 'mem', 10.0, 7.0), ('payment', 'cpu', 500.0, 9.0)"
    )


def test_metric_series_are_grouped_per_service_and_name_in_time_order(
    store: TelemetryStore,
) -> None:
    _metrics(store)
    series = store.metric_series(TimeRange(0.0, 100.0))
    by_key = {(s.service, s.name): s for s in series}
    assert set(by_key) == {("payment", "cpu"), ("checkout", "cpu"), ("payment", "mem")}
    cpu = by_key[("payment", "cpu")]
    assert cpu.times.tolist() == [10.0, 20.0, 30.0]
    assert cpu.values[0] == 1.0 and cpu.values[2] == 3.0
    assert math.isnan(cpu.values[1])  # NULL becomes NaN
    assert by_key[("checkout", "cpu")].values.tolist() == [5.0]
    assert by_key[("payment", "mem")].values.tolist() == [7.0]


def test_metric_series_filter_by_service_and_name(store: TelemetryStore) -> None:
    _metrics(store)
    only = store.metric_series(ALL, service="payment", name="cpu")
    assert [(s.service, s.name) for s in only] == [("payment", "cpu")]
    assert only[0].times.tolist() == [10.0, 20.0, 30.0, 500.0]
    assert {s.service for s in store.metric_series(ALL, name="cpu")} == {"payment", "checkout"}
    assert store.metric_series(ALL, service="nobody") == []


def test_metric_window_is_half_open(store: TelemetryStore) -> None:
    _metrics(store)
    (cpu,) = store.metric_series(TimeRange(10.0, 30.0), service="payment", name="cpu")
    assert cpu.times.tolist() == [10.0, 20.0]


def test_metric_series_without_nulls_stay_numeric(store: TelemetryStore) -> None:
    store.execute(
        "INSERT INTO metrics (service, name, ts, value) "
        "VALUES ('a', 'x', 1.0, 1.5), ('a', 'x', 2.0, 2.5)"
    )
    (s,) = store.metric_series(ALL)
    assert s.values.dtype == np.float64
    assert s.values.tolist() == [1.5, 2.5]


def test_logs_are_filtered_by_window_in_time_order(store: TelemetryStore) -> None:
    store.execute(
        "INSERT INTO logs (ts, service, pod, level, message, trace_id, span_id) VALUES "
        "(20.0, 'payment', 'pod-1', 'ERROR', 'charge failed', 't1', 's1'), "
        "(10.0, 'payment', NULL, NULL, 'charge started', NULL, NULL), "
        "(99.0, 'payment', 'pod-1', 'INFO', 'late line', 't2', 's2')"
    )
    logs = store.logs(TimeRange(0.0, 50.0))
    assert logs == [
        LogRecord(10.0, "payment", "charge started", "", "", "", ""),
        LogRecord(20.0, "payment", "charge failed", "ERROR", "pod-1", "t1", "s1"),
    ]


def test_spans_are_filtered_by_start_in_window(store: TelemetryStore) -> None:
    store.execute(
        "INSERT INTO spans (trace_id, span_id, parent_id, service, pod, operation, start_ts, "
        "end_ts, error) VALUES "
        "('t1', 'b', 'a', 'payment', 'pod-2', 'charge', 12.0, 15.0, TRUE), "
        "('t1', 'a', NULL, 'frontend', NULL, 'GET /', 11.0, 20.0, NULL), "
        "('t2', 'c', NULL, 'frontend', NULL, 'GET /', 60.0, 61.0, FALSE)"
    )
    spans = store.spans(TimeRange(10.0, 50.0))
    assert spans == [
        Span("t1", "a", "", "frontend", "GET /", 11.0, 20.0, False, ""),
        Span("t1", "b", "a", "payment", "charge", 12.0, 15.0, True, "pod-2"),
    ]
    assert store.spans(TimeRange(100.0, 200.0)) == []


def test_extent_covers_every_row_and_is_none_when_empty(store: TelemetryStore) -> None:
    assert store.extent("metrics") is None
    _metrics(store)
    extent = store.extent("metrics")
    assert extent is not None
    assert extent.start == 10.0
    assert extent.contains(500.0)  # the last point is inside the half-open range
    assert not extent.contains(501.0)


def test_extent_of_spans_uses_start_times(store: TelemetryStore) -> None:
    store.execute(
        "INSERT INTO spans (trace_id, span_id, service, start_ts, end_ts) VALUES "
        "('t', 'a', 'web', 5.0, 50.0), ('t', 'b', 'web', 7.0, 8.0)"
    )
    extent = store.extent("spans")
    assert extent is not None
    assert extent.start == 5.0
    assert extent.contains(7.0) and not extent.contains(8.0)


def test_services_collects_every_table_sorted_and_distinct(store: TelemetryStore) -> None:
    assert store.services() == []
    _metrics(store)
    store.execute("INSERT INTO logs (ts, service, message) VALUES (1.0, 'auth', 'hi')")
    store.execute(
        "INSERT INTO spans (service, start_ts, end_ts) VALUES ('frontend', 1.0, 2.0), "
        "('payment', 1.0, 2.0)"
    )
    assert store.services() == ["auth", "checkout", "frontend", "payment"]


def test_count_counts_rows_and_rejects_an_unknown_table(store: TelemetryStore) -> None:
    _metrics(store)
    assert store.count("metrics") == 6
    assert store.count("logs") == 0
    with pytest.raises(ValueError, match="unknown table"):
        store.count("metrics; DROP TABLE logs")
    assert store.count("logs") == 0


def test_rows_run_parameterised_queries(store: TelemetryStore) -> None:
    _metrics(store)
    rows = store.rows("SELECT count(*) FROM metrics WHERE service = ?", ["payment"])
    assert rows == [(5,)]


HOSTILE = "x'); COPY (SELECT 42) TO '/tmp/pwned-store.csv'; --\"q\""


def test_hostile_values_travel_as_parameters(store: TelemetryStore) -> None:
    store.insert_columns(
        "metrics", {"service": [HOSTILE], "name": [HOSTILE], "ts": [1.0], "value": [2.0]}
    )
    store.insert_columns(
        "events",
        {"ts": [1.0], "service": [HOSTILE], "kind": [HOSTILE], "description": [HOSTILE]},
    )
    window = TimeRange(0.0, 10.0)
    series = store.metric_series(window, service=HOSTILE, name=HOSTILE)
    assert [(s.service, s.name) for s in series] == [(HOSTILE, HOSTILE)]
    assert store.events(window)[0].description == HOSTILE
    assert store.services() == [HOSTILE]
    assert not Path("/tmp/pwned-store.csv").exists()


def test_unknown_table_names_are_refused_everywhere(store: TelemetryStore) -> None:
    for call in (
        lambda: store.extent("metrics; DROP TABLE logs"),
        lambda: store.count("spans --"),
        lambda: store.insert_columns("logs; --", {"ts": [1.0]}),
    ):
        with pytest.raises(ValueError, match="unknown table"):
            call()
    assert store.count("logs") == 0
