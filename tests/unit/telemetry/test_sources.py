"""The source seam: chunked, cached, bounded fetches into the store, and lazy reads through it."""

from __future__ import annotations

import threading
import time

from warroom.errors import BackendError
from warroom.model import TimeRange
from warroom.telemetry.sources import (
    CHUNK_S,
    REFRESH_S,
    SETTLE_S,
    Batch,
    Fetcher,
    MemorySource,
)
from warroom.telemetry.store import TelemetryStore

T0 = 1_700_000_400.0  # a multiple of CHUNK_S


def _metrics(times: list[float]) -> dict[str, list[object]]:
    return {
        "service": ["api"] * len(times),
        "name": ["cpu"] * len(times),
        "ts": times,
        "value": [1.0] * len(times),
    }


def test_each_chunk_is_fetched_once_and_rows_never_repeat() -> None:
    store = TelemetryStore()
    source = MemorySource("prom", "metrics", _metrics([T0 + 15.0 * i for i in range(200)]))
    fetcher = Fetcher(store, [source])
    first = fetcher.cover([TimeRange(T0, T0 + 900)])
    again = fetcher.cover([TimeRange(T0 + 300, T0 + 1200)])  # overlaps the first window
    assert first == 80  # two chunks of 40 samples
    assert again == 0 and len(source.calls) == 2
    assert store.count("metrics") == 80
    assert [c.start for c in source.calls] == [T0, T0 + CHUNK_S]


def test_rows_a_backend_returns_outside_its_chunk_are_dropped() -> None:
    class Sloppy(MemorySource):
        def fetch(self, window: TimeRange, deadline: float) -> Batch:
            return Batch(_metrics([window.start - 15, window.start, window.end]))

    store = TelemetryStore()
    Fetcher(store, [Sloppy("prom", "metrics", {})]).cover([TimeRange(T0, T0 + 10)])
    assert store.count("metrics") == 1


def test_a_failing_backend_is_noted_and_tried_again_next_time() -> None:
    class Down(MemorySource):
        def fetch(self, window: TimeRange, deadline: float) -> Batch:
            self.calls.append(window)
            raise BackendError("prom: /api/v1/query_range failed: connection refused")

    store = TelemetryStore()
    down = Down("prom", "metrics", {})
    fetcher = Fetcher(store, [down])
    assert fetcher.cover([TimeRange(T0, T0 + 10)]) == 0
    fetcher.cover([TimeRange(T0, T0 + 10)])
    assert len(down.calls) == 2  # a failure is not cached
    chunk = TimeRange(T0, T0 + CHUNK_S)
    assert fetcher.degraded() == (
        f"prom: /api/v1/query_range failed: connection refused ({chunk})",
    )


def test_partial_answers_are_kept_and_said_to_be_partial() -> None:
    store = TelemetryStore()
    source = MemorySource("loki", "metrics", _metrics([T0 + 1]), degraded_note="truncated at 5000")
    fetcher = Fetcher(store, [source])
    fetcher.cover([TimeRange(T0, T0 + 10)])
    assert store.count("metrics") == 1
    assert any("truncated at 5000" in note for note in fetcher.degraded())


def test_a_source_that_ignores_its_deadline_does_not_hold_the_investigation() -> None:
    release = threading.Event()

    class Hung(MemorySource):
        def fetch(self, window: TimeRange, deadline: float) -> Batch:
            release.wait(30)
            return Batch({})

    fetcher = Fetcher(TelemetryStore(), [Hung("tempo", "spans", {})], budget_s=0.2)
    started = time.monotonic()
    fetcher.cover([TimeRange(T0, T0 + 10)])
    release.set()
    assert time.monotonic() - started < 5
    assert "no answer within the time budget" in fetcher.degraded()[0]


def test_a_persistent_store_makes_a_rerun_free(tmp_path: object) -> None:
    path = str(tmp_path) + "/cache.duckdb"  # type: ignore[operator]
    source = MemorySource("prom", "metrics", _metrics([T0 + 1, T0 + 700]))
    store = TelemetryStore(path)
    Fetcher(store, [source]).cover([TimeRange(T0, T0 + 800)])
    store.close()
    store = TelemetryStore(path)
    Fetcher(store, [source]).cover([TimeRange(T0, T0 + 800)])
    assert len(source.calls) == 2 and store.count("metrics") == 2


def test_typed_reads_fetch_lazily_once_attached() -> None:
    store = TelemetryStore()
    source = MemorySource("prom", "metrics", _metrics([T0 + 1, T0 + 2]))
    store.attach(Fetcher(store, [source]))
    series = store.metric_series(TimeRange(T0, T0 + 5))
    assert len(series) == 1 and len(series[0]) == 2
    store.logs(TimeRange(T0, T0 + 5))  # no logs source: nothing fetched for it
    assert len(source.calls) == 1


def test_a_chunk_still_filling_is_fetched_again_and_its_rows_replaced() -> None:
    store, wall = TelemetryStore(), [T0 + 300.0]  # "now" inside the first chunk
    source = MemorySource("prom", "metrics", _metrics([T0 + 1.0, T0 + 200.0]))
    other = MemorySource("files", "metrics", _metrics([T0 + 2.0]))
    fetcher = Fetcher(store, [source, other], now=lambda: wall[0])
    fetcher.cover([TimeRange(T0, T0 + 10)])
    assert store.count("metrics") == 3
    fetcher.cover([TimeRange(T0, T0 + 10)])  # asked again at once: the open chunk is recent
    assert len(source.calls) == 1
    source.columns = _metrics([T0 + 1.0, T0 + 200.0, T0 + 290.0])  # a late scrape arrived
    wall[0] += REFRESH_S
    fetcher.cover([TimeRange(T0, T0 + 10)])
    assert len(source.calls) == 2 and store.count("metrics") == 4  # 3 of its own + 1 other
    wall[0] = T0 + CHUNK_S + SETTLE_S  # settled: fetched once more, then never again
    fetcher.cover([TimeRange(T0, T0 + 10)])
    wall[0] += 10 * REFRESH_S
    fetcher.cover([TimeRange(T0, T0 + 10)])
    assert len(source.calls) == 3 and store.count("metrics") == 4
