"""Where the OTLP receiver keeps what it accepted, and the source that reads it back.

    segments = Segments(Path("received"))
    segments.write("spans", columns, key=sha256(body))   # durable before it returns
    source, *_ = sources(Config(path=Path("received")))   # spans, logs, metrics
    Fetcher(store, source_list).cover([window])           # in another process, while it runs

One Parquet file per accepted request and table, `<dir>/<table>/<key>.parquet`, written through
DuckDB, not one DuckDB database: DuckDB lets a single process open a database file for writing
and no other process open it at all meanwhile, so `warroom investigate` could not read while
`warroom receive` runs. Parquet files are immutable once written; readers glob them with
DuckDB's read_parquet and need no lock. A segment is written under a dot-name (which the glob
does not match), fsynced, renamed into place and its folder fsynced: a reader sees a whole file
or none, and a segment is on disk before the receiver answers 200. The key is a hash of the
request, so an exporter's retry of a request whose answer it lost names the same file and is
stored once.

Many small requests make many small files; reading costs grow with their number (each
file's footer is read). No compaction yet.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
from pydantic import BaseModel, ConfigDict

from warroom.errors import BackendError, InputError
from warroom.model import TimeRange
from warroom.telemetry.sources import Batch, Source
from warroom.telemetry.store import SCHEMA, TABLE_COLUMNS, TIME_COLUMNS

TABLES = ("spans", "logs", "metrics")
SUFFIX = ".parquet"


class Config(BaseModel):
    """The folder a `warroom receive` stores into (the `[sources.received]` table)."""

    model_config = ConfigDict(extra="forbid")

    path: Path


def sources(config: Config) -> list[Source]:
    """One source per table the receiver fills."""
    return [ReceivedSource(config, table) for table in TABLES]


class Segments:
    """The segment folders under one directory (made on first use)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._con: duckdb.DuckDBPyConnection | None = None
        # One in-memory DuckDB turns rows into Parquet; writes take turns (a COPY is
        # milliseconds, a connection per thread would be torn down in its thread at exit).
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Make the folders and prove they can be written (the receiver's start-up check)."""
        try:
            for table in TABLES:
                (self.root / table).mkdir(parents=True, exist_ok=True)
                probe = self.root / table / f".probe-{uuid.uuid4().hex}"
                probe.write_bytes(b"")
                probe.unlink()
        except OSError as err:
            raise InputError(
                f"{self.root}: cannot store received telemetry there ({err})"
            ) from None

    def write(self, table: str, columns: Mapping[str, Sequence[Any]], key: str) -> Path:
        """Store the rows as one segment, durably; a segment of the same key is kept as is."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        folder = self.root / table
        final = folder / f"{key}{SUFFIX}"
        if final.exists():
            return final
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / f".{key}.{uuid.uuid4().hex}.tmp"
        try:
            self._copy(table, columns, temp)
            _fsync(temp)
            os.replace(temp, final)
            _fsync(folder)
        finally:
            temp.unlink(missing_ok=True)
        return final

    def close(self) -> None:
        """Release the in-memory database (a later write makes a new one)."""
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    def _copy(self, table: str, columns: Mapping[str, Sequence[Any]], path: Path) -> None:
        names = TABLE_COLUMNS[table]
        placeholders = ", ".join(f"unnest(${i + 1})" for i in range(len(names)))
        values = [list(columns.get(c, [None] * _length(columns))) for c in names]
        with self._lock:
            if self._con is None:
                self._con = duckdb.connect()
                self._con.execute("SET enable_progress_bar = false")
                self._con.execute(SCHEMA)  # the store's types: a segment reads back as the store
            con = self._con
            con.execute(f"DELETE FROM {table}")
            con.execute(f"INSERT INTO {table} SELECT {placeholders}", values)
            con.execute(f"COPY {table} TO $1 (FORMAT parquet)", [str(path)])
            con.execute(f"DELETE FROM {table}")


class ReceivedSource:
    """One table of what a receiver stored, read through the source seam."""

    name = "received"

    def __init__(self, config: Config, table: str) -> None:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r} (known: {', '.join(TABLES)})")
        self.config = config
        self.table = table

    def identity(self) -> str:
        """The folder and the table."""
        return f"received:{self.config.path.resolve()}|{self.table}"

    def fetch(self, window: TimeRange, deadline: float) -> Batch:
        """The stored rows of [start, end) (every segment there is when the call starts)."""
        if deadline - time.monotonic() <= 0:
            raise BackendError(f"{self.name}: {self.table} not read, the time budget is spent")
        folder = self.config.path / self.table
        if not any(folder.glob(f"*{SUFFIX}")):
            return Batch({})
        column = TIME_COLUMNS[self.table]
        sql = (
            f"SELECT {', '.join(TABLE_COLUMNS[self.table])} FROM read_parquet($1) "
            f"WHERE {column} >= $2 AND {column} < $3 ORDER BY {column}"
        )
        try:
            with duckdb.connect() as con:
                con.execute("SET enable_progress_bar = false")
                result = con.execute(sql, [str(folder / f"*{SUFFIX}"), window.start, window.end])
                names = [d[0] for d in result.description or []]
                rows = result.fetchall()
        except duckdb.Error as err:
            raise BackendError(f"{self.name}: {folder}: unreadable segment ({err})") from None
        return Batch({name: [row[i] for row in rows] for i, name in enumerate(names)})


def _length(columns: Mapping[str, Sequence[Any]]) -> int:
    return len(next(iter(columns.values()))) if columns else 0


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
