"""Selections -> SQL on the TelemetryStore: counts and quantiles in DuckDB, points only when needed.

Column names come from the fixed tables below, values are always bound parameters, so no text
of an expression ever becomes SQL. Every query counts against a per-evaluation budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from warroom.dsl.catalogue import MAX_LINES, MAX_POINTS, MAX_QUERIES
from warroom.dsl.errors import DslError
from warroom.dsl.values import Selection
from warroom.model import LogRecord, Series
from warroom.telemetry.store import TelemetryStore

# Levels that count as errors in error_ratio(logs(...)) (as the log expert reads them).
ERROR_LEVELS = ("ERROR", "ERR", "SEVERE", "FATAL", "CRITICAL", "PANIC", "EMERG", "ALERT")


@dataclass(frozen=True)
class Table:
    """Where a selector's rows live: table, time column, and field -> column."""

    name: str
    time: str
    columns: dict[str, str]


TABLES = {
    "metric": Table("metrics", "ts", {"service": "service", "name": "name"}),
    "logs": Table(
        "logs",
        "ts",
        {"service": "service", "level": "level", "message": "message", "pod": "pod"}
        | {"trace_id": "trace_id"},
    ),
    "spans": Table(
        "spans",
        "start_ts",
        {"service": "service", "operation": "operation", "error": "error", "pod": "pod"}
        | {"trace_id": "trace_id"},
    ),
    "events": Table(
        "events", "ts", {"service": "service", "kind": "kind", "description": "description"}
    ),
}


def where(selection: Selection) -> tuple[str, list[Any]]:
    """The FROM ... WHERE clause of a selection and its parameters."""
    table = TABLES[selection.kind]
    clauses = [f"{table.time} >= ?", f"{table.time} < ?"]
    params: list[Any] = [selection.window.start, selection.window.end]
    for f in selection.filters:
        column = table.columns[f.name]
        if isinstance(f.value, bool):
            clauses.append(f"coalesce({column}, FALSE) = ?")
        elif f.op == "~":
            clauses.append(f"strpos(lower(coalesce({column}, '')), lower(?)) > 0")
        elif f.name == "level":  # levels are spelled ERROR, error, Error across data sets
            clauses.append(f"upper(coalesce({column}, '')) = upper(?)")
        else:
            clauses.append(f"{column} = ?")
        params.append(f.value)
    return f"FROM {table.name} WHERE {' AND '.join(clauses)}", params


class Reader:
    """Runs the queries of one evaluation against the store, within the query budget."""

    def __init__(self, store: TelemetryStore, max_queries: int = MAX_QUERIES) -> None:
        self._store = store
        self._left = max_queries
        self._max = max_queries

    def _rows(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        if self._left <= 0:
            raise DslError(f"the expression needs more than {self._max} queries; split it up")
        self._left -= 1
        return self._store.rows(sql, params)

    def count(self, selection: Selection) -> int:
        """Rows (points, lines, spans or events) the selection matches."""
        clause, params = where(selection)
        return int(self._rows(f"SELECT count(*) {clause}", params)[0][0])

    def series(self, selection: Selection) -> list[Series]:
        """The metric series the selection matches, each in time order."""
        points = self.count(selection)
        if points > MAX_POINTS:
            raise DslError(
                f"{selection.text} matches {points} points (limit {MAX_POINTS}); "
                "name a service and metric or shorten the window"
            )
        clause, params = where(selection)
        rows = self._rows(f"SELECT service, name, ts, value {clause} ORDER BY 1, 2, 3", params)
        return _group(rows)

    def first_time(self, selection: Selection) -> float | None:
        """Time of the first matching record."""
        clause, params = where(selection)
        time = TABLES[selection.kind].time
        value = self._rows(f"SELECT min({time}) {clause}", params)[0][0]
        return None if value is None else float(value)

    def log_records(self, selection: Selection) -> list[LogRecord]:
        """Log lines in time order (at most MAX_LINES, else an error)."""
        clause, params = where(selection)
        columns = "ts, service, coalesce(message, ''), coalesce(level, ''), coalesce(pod, '')"
        columns += ", coalesce(trace_id, ''), coalesce(span_id, '')"
        rows = self._rows(f"SELECT {columns} {clause} ORDER BY ts LIMIT {MAX_LINES + 1}", params)
        if len(rows) > MAX_LINES:
            raise DslError(
                f"{selection.text} selects more than {MAX_LINES} lines; narrow it to mine templates"
            )
        return [LogRecord(*row) for row in rows]

    def error_counts(self, selection: Selection) -> tuple[int, int]:
        """(errors, total): spans with the error flag, or log lines at an error level."""
        clause, params = where(selection)
        if selection.kind == "spans":
            flag = "coalesce(error, FALSE)"
        else:
            levels = ", ".join(f"'{level}'" for level in ERROR_LEVELS)
            flag = f"upper(coalesce(level, '')) IN ({levels})"
        row = self._rows(f"SELECT count(*) FILTER (WHERE {flag}), count(*) {clause}", params)[0]
        return int(row[0]), int(row[1])

    def duration_quantile(self, selection: Selection, q: float) -> float | None:
        """The q-quantile (0..1) of span durations in seconds, None without spans."""
        clause, params = where(selection)
        # DuckDB wants a constant quantile; q is a float the interpreter checked, not text.
        sql = f"SELECT quantile_cont(end_ts - start_ts, {float(q)!r}) {clause}"
        value = self._rows(sql, params)[0][0]
        return None if value is None else float(value)


def _group(rows: list[tuple[Any, ...]]) -> list[Series]:
    groups: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for service, name, ts, value in rows:
        times, values = groups.setdefault((str(service), str(name)), ([], []))
        times.append(float(ts))
        values.append(np.nan if value is None else float(value))
    return [Series(s, n, np.array(t), np.array(v)) for (s, n), (t, v) in groups.items()]
