"""The embedded telemetry store: metrics, logs, spans and events in DuckDB columnar tables.

Loaders fill it with set-based SQL (DuckDB's CSV and JSON readers), never row by row; experts
read it through the typed queries below, which return model values. Telemetry is untrusted: a
value read from a file or a label reaches SQL only as a parameter, and table names are checked
against the four known tables.

    store = TelemetryStore()
    store.execute("INSERT INTO metrics (service, name, ts, value) SELECT ... FROM read_csv(...)")
    cpu = store.metric_series(window, name="cpu")
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import duckdb
import numpy as np

from warroom.model import Event, LogRecord, Series, Span, TimeRange

SCHEMA = """
CREATE TABLE IF NOT EXISTS metrics (
    service VARCHAR NOT NULL, name VARCHAR NOT NULL, ts DOUBLE NOT NULL, value DOUBLE
);
CREATE TABLE IF NOT EXISTS logs (
    ts DOUBLE NOT NULL, service VARCHAR NOT NULL, pod VARCHAR, level VARCHAR,
    message VARCHAR, trace_id VARCHAR, span_id VARCHAR
);
CREATE TABLE IF NOT EXISTS spans (
    trace_id VARCHAR, span_id VARCHAR, parent_id VARCHAR, service VARCHAR NOT NULL,
    pod VARCHAR, operation VARCHAR, start_ts DOUBLE NOT NULL, end_ts DOUBLE NOT NULL,
    error BOOLEAN DEFAULT FALSE, peer VARCHAR
);
CREATE TABLE IF NOT EXISTS events (
    ts DOUBLE NOT NULL, service VARCHAR NOT NULL, kind VARCHAR, description VARCHAR
);
"""


# Columns a writer may leave out (NULL): a client span's peer is known only to instrumented clients.
OPTIONAL_COLUMNS: dict[str, frozenset[str]] = {"spans": frozenset({"peer"})}

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "metrics": ("service", "name", "ts", "value"),
    "logs": ("ts", "service", "pod", "level", "message", "trace_id", "span_id"),
    "spans": (
        "trace_id",
        "span_id",
        "parent_id",
        "service",
        "pod",
        "operation",
        "start_ts",
        "end_ts",
        "error",
        "peer",
    ),
    "events": ("ts", "service", "kind", "description"),
}


# The column each table is ordered and windowed by.
TIME_COLUMNS: dict[str, str] = {"metrics": "ts", "logs": "ts", "spans": "start_ts", "events": "ts"}


class Covering(Protocol):
    """Something that fills the store on demand (telemetry/sources.py's Fetcher)."""

    def cover(self, windows: Iterable[TimeRange], tables: Iterable[str] | None = None) -> int:
        """Make sure the store holds `tables` for `windows`."""
        ...


class TelemetryStore:
    """An in-process DuckDB database holding one investigation's telemetry."""

    def __init__(self, path: str = ":memory:") -> None:
        # DuckDB draws a progress bar on stdout for queries past two seconds (a loaded machine
        # gets there): it would corrupt --json output and the CLI's own progress display.
        self._con = duckdb.connect(path)
        self._con.execute("SET enable_progress_bar = false")
        self._con.execute(SCHEMA)
        for table in TABLE_COLUMNS:
            # Which source a row came from (telemetry/sources.py): an open chunk fetched again
            # replaces its own rows only. NULL for rows a loader read from files.
            self._con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS origin VARCHAR")
        self._source: Covering | None = None

    def attach(self, source: Covering | None) -> None:
        """Typed reads first ask `source` to cover their window (live backends, lazily)."""
        self._source = source

    def _cover(self, table: str, window: TimeRange) -> None:
        if self._source is not None:
            self._source.cover([window], [table])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All statements inside commit together or not at all."""
        self._con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._con.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run a statement (used by loaders to bulk-insert with DuckDB's readers)."""
        self._con.execute(sql, params or [])

    def insert_columns(
        self, table: str, columns: Mapping[str, Sequence[Any]], origin: str | None = None
    ) -> int:
        """Bulk-insert column lists (same length each) into a table; returns the row count.

        One statement for all rows (DuckDB unnests the lists), which is ~100x faster than
        executemany for the hundred thousand rows a simulated incident produces.
        """
        if table not in TABLE_COLUMNS:
            raise ValueError(f"unknown table {table!r} (known: {', '.join(TABLE_COLUMNS)})")
        optional = OPTIONAL_COLUMNS.get(table, frozenset())
        missing = [c for c in TABLE_COLUMNS[table] if c not in columns and c not in optional]
        if missing:
            raise ValueError(f"insert into {table}: missing columns {missing}")
        names = tuple(c for c in TABLE_COLUMNS[table] if c in columns)
        lengths = {len(columns[c]) for c in names}
        if len(lengths) != 1:
            raise ValueError(f"insert into {table}: columns differ in length {sorted(lengths)}")
        placeholders = ", ".join(f"unnest(${i + 1})" for i in range(len(names)))
        params: list[Any] = [list(columns[c]) for c in names]
        if origin is not None:
            names += ("origin",)
            placeholders += f", ${len(params) + 1}"
            params.append(origin)
        self._con.execute(f"INSERT INTO {table} ({', '.join(names)}) SELECT {placeholders}", params)
        return lengths.pop()

    def rows(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a query and return its rows."""
        return self._con.execute(sql, params or []).fetchall()

    def count(self, table: str) -> int:
        """Number of rows in one of the four tables."""
        if table not in {"metrics", "logs", "spans", "events"}:
            raise ValueError(f"unknown table {table!r}")
        result = self._con.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(result[0]) if result else 0

    def services(self) -> list[str]:
        """Every service that appears in any table."""
        sql = (
            "SELECT DISTINCT service FROM (SELECT service FROM metrics UNION ALL "
            "SELECT service FROM logs UNION ALL SELECT service FROM spans) ORDER BY 1"
        )
        return [r[0] for r in self.rows(sql)]

    def metric_series(
        self, window: TimeRange, service: str | None = None, name: str | None = None
    ) -> list[Series]:
        """All metric series inside `window`, optionally for one service and/or metric name."""
        self._cover("metrics", window)
        sql = "SELECT service, name, ts, value FROM metrics WHERE ts >= ? AND ts < ?"
        params: list[Any] = [window.start, window.end]
        if service is not None:
            sql += " AND service = ?"
            params.append(service)
        if name is not None:
            sql += " AND name = ?"
            params.append(name)
        sql += " ORDER BY service, name, ts"
        return list(_group_series(self._con.execute(sql, params).fetchnumpy()))

    def logs(self, window: TimeRange) -> list[LogRecord]:
        """Log records inside `window`, in time order."""
        self._cover("logs", window)
        sql = (
            "SELECT ts, service, message, coalesce(level, ''), coalesce(pod, ''), "
            "coalesce(trace_id, ''), coalesce(span_id, '') FROM logs "
            "WHERE ts >= ? AND ts < ? ORDER BY ts"
        )
        return [LogRecord(*row) for row in self.rows(sql, [window.start, window.end])]

    def spans(self, window: TimeRange) -> list[Span]:
        """Spans that start inside `window`."""
        self._cover("spans", window)
        sql = (
            "SELECT trace_id, span_id, coalesce(parent_id, ''), service, coalesce(operation, ''), "
            "start_ts, end_ts, coalesce(error, FALSE), coalesce(pod, ''), coalesce(peer, '') "
            "FROM spans "
            "WHERE start_ts >= ? AND start_ts < ? ORDER BY start_ts"
        )
        return [Span(*row) for row in self.rows(sql, [window.start, window.end])]

    def events(self, window: TimeRange) -> list[Event]:
        """Changes (deploys, config pushes, restarts) inside `window`, oldest first."""
        self._cover("events", window)
        sql = (
            "SELECT ts, service, coalesce(kind, ''), coalesce(description, '') FROM events "
            "WHERE ts >= ? AND ts < ? ORDER BY ts"
        )
        return [Event(*row) for row in self.rows(sql, [window.start, window.end])]

    def extent(self, table: str) -> TimeRange | None:
        """The time range covered by a table, or None when it is empty."""
        if table not in TIME_COLUMNS:
            raise ValueError(f"unknown table {table!r} (known: {', '.join(TIME_COLUMNS)})")
        column = TIME_COLUMNS[table]
        row = self.rows(f"SELECT min({column}), max({column}) FROM {table}")[0]
        if row[0] is None:
            return None
        return TimeRange(float(row[0]), float(row[1]) + 1e-6)

    def close(self) -> None:
        """Release the database."""
        self._con.close()


def _group_series(columns: dict[str, Any]) -> Iterator[Series]:
    """Split the sorted (service, name, ts, value) columns into one Series per (service, name)."""
    services, names = columns["service"], columns["name"]
    if len(services) == 0:
        return
    ts = np.asarray(columns["ts"], dtype=np.float64)
    # DuckDB hands NULLs back as a masked array; NaN is how the experts see a missing sample.
    values = np.ma.filled(np.ma.asarray(columns["value"], dtype=np.float64), np.nan)
    keys = np.char.add(
        np.asarray(services, dtype=str), np.char.add("\x00", np.asarray(names, dtype=str))
    )
    boundaries = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(keys)]))
    for lo, hi in zip(starts, ends, strict=True):
        yield Series(str(services[lo]), str(names[lo]), ts[lo:hi], values[lo:hi])
