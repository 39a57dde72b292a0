"""The source seam: an investigation pulls its telemetry windows from backends through the store.

    fetcher = Fetcher(store, [PrometheusSource(cfg), LokiSource(cfg)], budget_s=60)
    fetcher.cover([TimeRange(start - 3600, end)])      # concurrent, cached, bounded in time
    investigate(incident, store)                        # the experts read the store as always
    report = replace(report, missing=report.missing + fetcher.degraded())

A `Source` answers `fetch(window) -> Batch` for one store table (metrics, logs, spans, events).
The `Fetcher` cuts every window into chunks aligned to CHUNK_S and fetches each (source, chunk)
at most once: the store's `fetches` table records it in the same transaction as the rows, so a
persistent store (a DuckDB file) makes a re-run free and gives the same answer, and overlapping
windows never duplicate a row (rows outside their chunk are dropped). A chunk that ends less than
SETTLE_S ago is still filling (scrapes and exporters lag): it is kept as open and fetched again,
its own rows replaced, once it is REFRESH_S old, so live data is never frozen half-arrived. A
backend that fails or
runs out of time leaves its chunk unrecorded (a later run tries again) and says so in
`degraded()`: the report marks that evidence missing, the investigation goes on.

Once attached (`store.attach(fetcher)`), the store's typed reads cover their window first, so an
agent or a DSL check that asks for a window the first pass did not fetch goes through the same
seam, lazily and cached.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from warroom.errors import BackendError
from warroom.model import TimeRange
from warroom.telemetry.store import TABLE_COLUMNS, TIME_COLUMNS, TelemetryStore

CHUNK_S = 600.0  # fetch grid: ten minutes, a multiple of every usual scrape step
DEFAULT_BUDGET_S = 120.0  # all fetches of one cover() call together
DEFAULT_CONCURRENCY = 4
SETTLE_S = 120.0  # a chunk ending later than this before now may still receive data
REFRESH_S = 30.0  # an open chunk is fetched again when its last fetch is this old

FETCHES_SCHEMA = """
CREATE TABLE IF NOT EXISTS fetches (
    source VARCHAR NOT NULL, identity VARCHAR NOT NULL, start_ts DOUBLE NOT NULL,
    end_ts DOUBLE NOT NULL, rows BIGINT NOT NULL, degraded VARCHAR NOT NULL,
    fetched_at DOUBLE NOT NULL, complete BOOLEAN NOT NULL, PRIMARY KEY (identity, start_ts)
);
"""


@dataclass(frozen=True)
class Batch:
    """What one fetch returned: column lists for the source's table, and why it may be partial.

    `degraded` holds the backend's own warnings, partial-response flags and truncation notes:
    the data is kept, and the report says it may be incomplete."""

    columns: dict[str, list[Any]]
    degraded: tuple[str, ...] = ()

    @property
    def rows(self) -> int:
        """Number of rows (every column has the same length)."""
        return len(next(iter(self.columns.values()))) if self.columns else 0


class Source(Protocol):
    """One backend query family feeding one store table."""

    name: str  # shown in the report: "prometheus", "loki", ...
    table: str  # metrics | logs | spans | events

    def identity(self) -> str:
        """What makes two fetches the same: URL and query settings, never a secret."""
        ...

    def fetch(self, window: TimeRange, deadline: float) -> Batch:
        """Everything of the window [start, end); raises BackendError when the backend fails.

        `deadline` is a time.monotonic() value: no request may run past it."""
        ...


@dataclass
class Fetcher:
    """Fills a store from sources, chunk by chunk, each chunk once."""

    store: TelemetryStore
    sources: Sequence[Source]
    budget_s: float = DEFAULT_BUDGET_S
    concurrency: int = DEFAULT_CONCURRENCY
    progress: Callable[[str], None] | None = None
    clock: Callable[[], float] = time.monotonic  # for the budget
    now: Callable[[], float] = time.time  # for open chunks: the wall clock the data lives in
    _notes: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for source in self.sources:
            if source.table not in TABLE_COLUMNS:
                raise ValueError(f"source {source.name}: unknown table {source.table!r}")
        self.store.execute(FETCHES_SCHEMA)

    def cover(self, windows: Iterable[TimeRange], tables: Iterable[str] | None = None) -> int:
        """Fetch every chunk of `windows` not fetched yet (for the sources of `tables`, default
        all); returns the number of rows added. Never raises for a backend's failure."""
        spans = list(windows)
        wanted = set(tables) if tables is not None else set(TABLE_COLUMNS)
        return self.prefetch({table: spans for table in wanted})

    def prefetch(self, plan: Mapping[str, Sequence[TimeRange]]) -> int:
        """Like cover, with windows per table, all fetched at once (metrics want an hour of
        history, logs ten minutes): the backends are asked concurrently."""
        todo = [
            (source, chunk)
            for source in self.sources
            if source.table in plan
            for chunk in _chunks(plan[source.table])
            if not self._fetched(source, chunk)
        ]
        if not todo:
            return 0
        with self._lock:  # one cover at a time: lazy reads may come from several threads
            return self._run(todo, self.clock() + self.budget_s)

    def degraded(self) -> tuple[str, ...]:
        """What the report should mark as missing or incomplete, in order, without repeats."""
        return tuple(dict.fromkeys(self._notes))

    def _fetched(self, source: Source, chunk: TimeRange) -> bool:
        rows = self.store.rows(
            "SELECT complete, fetched_at FROM fetches WHERE identity = ? AND start_ts = ?",
            [source.identity(), chunk.start],
        )
        if not rows:
            return False
        complete, fetched_at = rows[0]
        return bool(complete) or self.now() - fetched_at < REFRESH_S

    def _run(self, todo: list[tuple[Source, TimeRange]], deadline: float) -> int:
        added = 0
        # Not a `with` block: leaving one waits for every thread, and a source that ignores
        # its deadline must not hold the investigation.
        pool = ThreadPoolExecutor(max_workers=max(1, self.concurrency))
        pending: dict[Future[Batch], tuple[Source, TimeRange]] = {
            pool.submit(source.fetch, chunk, deadline): (source, chunk) for source, chunk in todo
        }
        try:
            while pending:
                left = deadline - self.clock()
                done, _ = wait(pending, timeout=max(left, 0.0) + 1.0, return_when=FIRST_COMPLETED)
                if not done:  # past the budget (and a grace second): give up on what is left
                    for source, chunk in pending.values():
                        self._note(source, chunk, "no answer within the time budget")
                    break
                for future in done:
                    source, chunk = pending.pop(future)
                    added += self._take(future, source, chunk)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return added

    def _take(self, future: Future[Batch], source: Source, chunk: TimeRange) -> int:
        try:
            batch = future.result()
        except BackendError as err:
            self._note(source, chunk, str(err))
            return 0
        rows = self._store_batch(source, chunk, batch)
        for reason in batch.degraded:
            self._note(source, chunk, reason)
        if self.progress:
            self.progress(f"{source.name} {chunk}: {rows} rows")
        return rows

    def _store_batch(self, source: Source, chunk: TimeRange, batch: Batch) -> int:
        column, identity, now = TIME_COLUMNS[source.table], source.identity(), self.now()
        columns = _within(batch.columns, column, chunk)
        record = [
            source.name,
            identity,
            chunk.start,
            chunk.end,
            len(columns[column]) if columns else 0,
            json.dumps(list(batch.degraded)),
            now,
            chunk.end <= now - SETTLE_S,
        ]
        with self.store.transaction():
            # An open chunk fetched before: its rows give way to the fuller answer.
            self.store.execute(
                f"DELETE FROM {source.table} WHERE origin = ? AND {column} >= ? AND {column} < ?",
                [identity, chunk.start, chunk.end],
            )
            self.store.execute(
                "DELETE FROM fetches WHERE identity = ? AND start_ts = ?", [identity, chunk.start]
            )
            rows = self.store.insert_columns(source.table, columns, identity) if columns else 0
            self.store.execute("INSERT INTO fetches VALUES (?, ?, ?, ?, ?, ?, ?, ?)", record)
        return rows

    def _note(self, source: Source, chunk: TimeRange, reason: str) -> None:
        named = reason if reason.startswith(f"{source.name}:") else f"{source.name}: {reason}"
        self._notes.append(f"{named} ({chunk})")


def _chunks(windows: Iterable[TimeRange]) -> list[TimeRange]:
    """The CHUNK_S-aligned chunks that together cover every window, each once, in time order."""
    starts: set[float] = set()
    for window in windows:
        first = math.floor(window.start / CHUNK_S)
        last = math.ceil(window.end / CHUNK_S)
        starts.update(k * CHUNK_S for k in range(first, max(last, first + 1)))
    return [TimeRange(s, s + CHUNK_S) for s in sorted(starts)]


Columns = dict[str, list[Any]]


def _within(columns: Columns, time_column: str, chunk: TimeRange) -> Columns:
    """Only the rows whose time falls in the chunk: a backend's edges may overlap the next one."""
    if not columns:
        return {}
    if time_column not in columns:
        raise BackendError(f"a source returned rows without a {time_column!r} column")
    keep = [i for i, ts in enumerate(columns[time_column]) if chunk.start <= ts < chunk.end]
    if len(keep) == len(columns[time_column]):
        return columns
    return {name: [values[i] for i in keep] for name, values in columns.items()}


@dataclass
class MemorySource:
    """A source double serving fixed rows (tests, replays): what a backend would answer."""

    name: str
    table: str
    columns: Columns
    degraded_note: str = ""
    calls: list[TimeRange] = field(default_factory=list)

    def identity(self) -> str:
        """Rows are fixed, so the name is the identity."""
        return f"memory:{self.name}"

    def fetch(self, window: TimeRange, deadline: float) -> Batch:
        """The rows whose time falls inside the window."""
        self.calls.append(window)
        kept = _within(self.columns, TIME_COLUMNS[self.table], window)
        return Batch(kept, (self.degraded_note,) if self.degraded_note else ())
