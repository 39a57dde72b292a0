"""What an agent runs against: a read-only, thread-safe view of the telemetry, plus the tracer,
the cache and the injected sleep of one investigation.

The store travels in the context, not in the input: inputs must be small JSON values (they are
hashed for the cache), the store is neither. The context takes part in the cache key through
`fingerprint(tables)`: a hash of the contents of the tables an agent reads.

    ctx = AgentContext(store, tracer=Tracer(), cache=AgentCache())
    ctx.store.metric_series(window, service="checkout")
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from warroom.agents.cache import AgentCache, sha256_hex
from warroom.agents.tracing import Tracer
from warroom.errors import InputError
from warroom.model import Event, LogRecord, Series, Span, TimeRange
from warroom.telemetry.store import TABLE_COLUMNS, TelemetryStore

TABLES = tuple(TABLE_COLUMNS)
# The columns of model.Span, in its field order, from the spans table (aliased `w`).
_SPAN_COLUMNS = (
    "w.trace_id, w.span_id, coalesce(w.parent_id, ''), w.service, coalesce(w.operation, ''), "
    "w.start_ts, w.end_ts, coalesce(w.error, FALSE), coalesce(w.pod, ''), coalesce(w.peer, '')"
)
_READ_ONLY = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)


class StoreView:
    """Read-only access to a TelemetryStore that many agent threads may share.

    One DuckDB connection must not run two statements at once, so reads are serialised by a
    lock; the experts' work on the returned values runs outside it, in parallel. There are no
    write methods: agents cannot change the data another agent (or a cached result) saw.
    """

    def __init__(self, store: TelemetryStore) -> None:
        self._store = store
        self._lock = threading.RLock()
        self._fingerprints: dict[str, tuple[int, str]] = {}

    def metric_series(
        self, window: TimeRange, service: str | None = None, name: str | None = None
    ) -> list[Series]:
        """Metric series inside `window` (see TelemetryStore.metric_series)."""
        with self._lock:
            return self._store.metric_series(window, service, name)

    def logs(self, window: TimeRange, service: str | None = None) -> list[LogRecord]:
        """Log records inside `window`, in time order, optionally of one service."""
        if service is None:
            with self._lock:
                return self._store.logs(window)
        sql = (
            "SELECT ts, service, message, coalesce(level, ''), coalesce(pod, ''), "
            "coalesce(trace_id, ''), coalesce(span_id, '') FROM logs "
            "WHERE ts >= ? AND ts < ? AND service = ? ORDER BY ts"
        )
        return [LogRecord(*row) for row in self.query(sql, [window.start, window.end, service])]

    @contextmanager
    def reading(self) -> Iterator[TelemetryStore]:
        """The store itself, for a block of reads by code that takes a TelemetryStore (the
        DSL interpreter); other readers wait until the block ends. Do not write to it."""
        with self._lock:
            yield self._store

    def spans(self, window: TimeRange) -> list[Span]:
        """Spans that start inside `window`."""
        with self._lock:
            return self._store.spans(window)

    def call_spans(self, window: TimeRange, service: str) -> list[Span]:
        """The spans of `service` that start inside `window`, plus their parents and children
        there: every span on a call edge that touches the service, without the rest."""
        sql = f"""
            WITH w AS (SELECT * FROM spans WHERE start_ts >= ? AND start_ts < ?),
            mine AS (SELECT trace_id, span_id, parent_id FROM w WHERE service = ?)
            SELECT {_SPAN_COLUMNS} FROM w WHERE service = ?
            UNION SELECT {_SPAN_COLUMNS} FROM w JOIN mine m
                ON w.trace_id = m.trace_id AND w.span_id = m.parent_id
            UNION SELECT {_SPAN_COLUMNS} FROM w JOIN mine m
                ON w.trace_id = m.trace_id AND w.parent_id = m.span_id
            ORDER BY 6, 2"""
        rows = self.query(sql, [window.start, window.end, service, service])
        return [Span(*row) for row in rows]

    def events(self, window: TimeRange, service: str | None = None) -> list[Event]:
        """Change events (deploys, config changes, restarts) inside `window`, in time order."""
        sql = (
            "SELECT ts, service, coalesce(kind, ''), coalesce(description, '') FROM events "
            "WHERE ts >= ? AND ts < ?"
        )
        params: list[Any] = [window.start, window.end]
        if service is not None:
            sql += " AND service = ?"
            params.append(service)
        return [Event(*row) for row in self.query(sql + " ORDER BY ts", params)]

    def services(self) -> list[str]:
        """Every service that appears in metrics, logs or spans."""
        with self._lock:
            return self._store.services()

    def count(self, table: str) -> int:
        """Rows in one of the four tables."""
        with self._lock:
            return self._store.count(table)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a SELECT (or WITH ... SELECT) and return its rows; anything else is refused."""
        if not _READ_ONLY.match(sql) or ";" in sql.strip().rstrip(";"):
            raise InputError(f"agents may only read the store: refused {sql[:60]!r}")
        with self._lock:
            return self._store.rows(sql, params)

    def fingerprint(self, tables: Iterable[str] = TABLES) -> str:
        """A hash of the contents of `tables`: equal data gives an equal fingerprint.

        Each table's hash (row count + sum of DuckDB row hashes, order-free) is recomputed when
        its row count changes, which covers appends; call `refresh()` after rewriting rows in
        place.
        """
        parts = []
        for table in sorted(set(tables)):
            if table not in TABLE_COLUMNS:
                raise InputError(f"unknown table {table!r} (known: {', '.join(TABLES)})")
            parts.append(f"{table}={self._table_fingerprint(table)}")
        return sha256_hex(";".join(parts))

    def refresh(self) -> None:
        """Forget the memoised table hashes (after data was changed in place)."""
        with self._lock:
            self._fingerprints.clear()

    def _table_fingerprint(self, table: str) -> str:
        with self._lock:
            rows = self._store.count(table)
            memo = self._fingerprints.get(table)
            if memo is not None and memo[0] == rows:
                return memo[1]
            # The cast to HUGEINT keeps the sum of 64-bit hashes from overflowing.
            result = self._store.rows(f"SELECT count(*), sum(hash(t)::HUGEINT) FROM {table} t")
            digest = f"{result[0][0]}:{result[0][1]}"
            self._fingerprints[table] = (rows, digest)
            return digest


@dataclass(frozen=True)
class AgentContext:
    """The environment of one investigation's agent calls (shared by all of them).

    `store` may be a TelemetryStore (wrapped in a StoreView here) or None for agents that read
    no telemetry. `salt` names anything else the outputs depend on (a config hash, a model
    name); it is part of every cache key. `sleep` is injected so tests need not wait.
    """

    store: StoreView | None = None
    tracer: Tracer | None = None
    cache: AgentCache | None = None
    salt: str = ""
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def __init__(
        self,
        store: TelemetryStore | StoreView | None = None,
        tracer: Tracer | None = None,
        cache: AgentCache | None = None,
        salt: str = "",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        view = StoreView(store) if isinstance(store, TelemetryStore) else store
        object.__setattr__(self, "store", view)
        object.__setattr__(self, "tracer", tracer)
        object.__setattr__(self, "cache", cache)
        object.__setattr__(self, "salt", salt)
        object.__setattr__(self, "sleep", sleep)

    def fingerprint(self, tables: Iterable[str]) -> str:
        """What the context contributes to a cache key: the salt and the data read."""
        data = self.store.fingerprint(tables) if self.store is not None else "no-store"
        return sha256_hex(f"{len(self.salt)}:{self.salt}|{data}")
