"""Reading RCAEval's CSVs without trusting their headers, and its logs.csv and traces.csv.

A file's header is read with Python's csv module; DuckDB reads the data rows into text columns
with generated names (c0, c1, ...), so no name from a file is ever part of an SQL statement.
Columns are found by the names RCAEval writes (logs: time, timestamp, container_name, message;
traces: traceID, spanID, parentSpanID, serviceName, operationName, startTime in microseconds,
duration in microseconds, statusCode), with a few common aliases.
"""

from __future__ import annotations

from pathlib import Path

from warroom.datasets.base import POD_SUFFIX_SQL, read_csv_head
from warroom.errors import DatasetError
from warroom.model import EARLIEST_TIME, LATEST_TIME, TimeRange
from warroom.telemetry.store import TelemetryStore

_LEVEL_SQL = r"(?i)\b(trace|debug|info|warn|warning|error|fatal|critical)\b"


def to_seconds(value: float) -> float:
    """Unix seconds from seconds, milliseconds, microseconds or nanoseconds (told by size)."""
    for limit, scale in ((1e17, 1e9), (1e14, 1e6), (1e11, 1e3)):
        if abs(value) >= limit:
            return value / scale
    return value


def read_header(path: Path) -> list[str]:
    """The column names in a CSV's first row."""
    rows = read_csv_head(path, 1)
    if not rows or not rows[0]:
        raise DatasetError(f"{path}: empty file (no header row)")
    return rows[0]


def stage(store: TelemetryStore, path: Path, width: int, table: str, strict: bool) -> None:
    """Copy a CSV's data rows into a temp table of text columns c0..c<width-1>.

    Columns get generated names: a header is data, never SQL. A lenient read skips rows that
    do not parse (counted by rejected()) instead of failing.
    """
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width)) + "}"
    lenient = "" if strict else ", ignore_errors=true, store_rejects=true"
    try:
        store.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM read_csv(?, header=false, "
            f"skip=1, auto_detect=false, columns={columns}, delim=',', quote='\"', "
            f"escape='\"'{lenient})",
            [str(path)],
        )
    except Exception as err:  # duckdb raises several error types for a malformed CSV
        raise DatasetError(f"{path}: malformed CSV ({_first_lines(err)})") from err


def _first_lines(err: Exception) -> str:
    """DuckDB's CSV error in one line: what and where, without the echoed row."""
    lines = str(err).splitlines()
    kept = lines[:1] + [line for line in lines[1:] if line.startswith("Expected")]
    return " ".join(kept)[:300]


def rejected(store: TelemetryStore) -> int:
    """Rows a lenient read skipped (0 when none were); clears the record."""
    try:
        count = int(store.rows("SELECT count(DISTINCT (file_id, line)) FROM reject_errors")[0][0])
    except Exception:  # the rejects table exists only after a read that rejected rows
        return 0
    store.execute("DROP TABLE IF EXISTS reject_errors")
    store.execute("DROP TABLE IF EXISTS reject_scans")
    return count


def epoch_sql(column: str) -> str:
    """SQL turning a text column (a generated name) into unix seconds, NULL when unreadable or
    outside 1970..3000 (no later step then has to format an impossible time)."""
    number = f"try_cast({column} AS DOUBLE)"
    seconds = (
        f"(CASE WHEN {number} IS NULL THEN epoch(try_cast({column} AS TIMESTAMPTZ)) "
        f"WHEN abs({number}) >= 1e17 THEN {number} / 1e9 "
        f"WHEN abs({number}) >= 1e14 THEN {number} / 1e6 "
        f"WHEN abs({number}) >= 1e11 THEN {number} / 1e3 ELSE {number} END)"
    )
    return f"(CASE WHEN {seconds} BETWEEN {EARLIEST_TIME!r} AND {LATEST_TIME!r} THEN {seconds} END)"


def find_column(header: list[str], names: tuple[str, ...]) -> str | None:
    """The generated name of the first header column called one of names."""
    for name in names:
        if name in header:
            return f"c{header.index(name)}"
    return None


def present_columns(header: list[str], names: tuple[str, ...]) -> list[str]:
    """The generated names of every header column called one of names, in names' order."""
    return [f"c{header.index(name)}" for name in names if name in header]


def time_extent(store: TelemetryStore, sql: str) -> TimeRange | None:
    """The range [min, max] that `sql` (selecting min and max time) returns, or None."""
    row = store.rows(sql)[0]
    return TimeRange(float(row[0]), float(row[1]) + 1e-3) if row[0] is not None else None


# --- logs and traces ---------------------------------------------------------------------------


def insert_logs(store: TelemetryStore, path: Path, notes: list[str]) -> TimeRange | None:
    """RCAEval logs.csv (time/timestamp, container_name, message) into the logs table."""
    header = read_header(path)
    ts = present_columns(header, ("timestamp", "time", "Time"))  # the first readable one wins
    service = find_column(header, ("container_name", "service", "serviceName", "pod", "pod_name"))
    message = find_column(header, ("message", "log", "msg", "body"))
    if not ts or service is None or message is None:
        notes.append(f"{path.name}: no time, container_name or message column; logs skipped")
        return None
    level = find_column(header, ("level", "log_level", "severity"))
    level_sql = f"nullif({level}, '')" if level else "NULL"
    trace = find_column(header, ("trace_id", "traceID", "traceId")) or "NULL"
    span = find_column(header, ("span_id", "spanID", "spanId")) or "NULL"
    stage(store, path, len(header), "rcaeval_logs", strict=False)
    skipped = rejected(store)
    times = f"coalesce({', '.join(epoch_sql(c) for c in ts)})"
    _note_dropped(store, path, "rcaeval_logs", times, service, "log", notes)
    store.execute(f"""
        INSERT INTO logs (ts, service, pod, level, message, trace_id, span_id)
        SELECT ts, regexp_replace(src, '{POD_SUFFIX_SQL}', ''),
               CASE WHEN regexp_replace(src, '{POD_SUFFIX_SQL}', '') <> src THEN src END,
               upper(coalesce({level_sql}, nullif(regexp_extract(msg, '{_LEVEL_SQL}', 1), ''))),
               msg, {trace}, {span}
        FROM (SELECT coalesce({", ".join(epoch_sql(c) for c in ts)}) AS ts, {service} AS src,
                     coalesce({message}, '') AS msg, * FROM rcaeval_logs)
        WHERE ts IS NOT NULL AND coalesce(src, '') <> ''
    """)
    return _finish(store, path, "rcaeval_logs", ts, skipped, notes, "log")


def insert_spans(store: TelemetryStore, path: Path, notes: list[str]) -> TimeRange | None:
    """RCAEval traces.csv (traceID, spanID, parentSpanID, serviceName, startTime us, duration
    us, statusCode) into the spans table."""
    header = read_header(path)
    starts = present_columns(header, ("startTime", "startTimeMillis", "time"))
    service = find_column(header, ("serviceName", "service_name", "service"))
    if not starts or service is None:
        notes.append(f"{path.name}: no startTime or serviceName column; traces skipped")
        return None
    trace = find_column(header, ("traceID", "trace_id", "traceId")) or "NULL"
    span = find_column(header, ("spanID", "span_id", "spanId")) or "NULL"
    parent = find_column(header, ("parentSpanID", "parent_span_id", "parentSpanId", "ParentSpanId"))
    operation = find_column(header, ("operationName", "operation", "methodName")) or "NULL"
    duration = find_column(header, ("duration",))
    status = find_column(header, ("statusCode", "status_code", "status"))
    stage(store, path, len(header), "rcaeval_spans", strict=False)
    skipped = rejected(store)
    times = f"coalesce({', '.join(epoch_sql(c) for c in starts)})"
    _note_dropped(store, path, "rcaeval_spans", times, service, "span", notes)
    parent_sql = f"nullif(nullif(nullif({parent}, 'root'), '0'), '')" if parent else "NULL"
    # A duration that is not a finite, positive number of microseconds counts as none.
    micros = f"try_cast({duration} AS DOUBLE)" if duration else "0.0"
    duration_sql = f"(CASE WHEN isfinite({micros}) AND {micros} > 0 THEN {micros} ELSE 0 END / 1e6)"
    store.execute(f"""
        CREATE OR REPLACE TEMP TABLE rcaeval_spans_t AS
        SELECT {trace} AS trace_id, {span} AS span_id, {parent_sql} AS parent_id,
               regexp_replace(src, '{POD_SUFFIX_SQL}', '') AS service,
               CASE WHEN regexp_replace(src, '{POD_SUFFIX_SQL}', '') <> src THEN src END AS pod,
               {operation} AS operation, ts AS start_ts, ts + {duration_sql} AS end_ts,
               {_error_sql(status)} AS error
        FROM (SELECT coalesce({", ".join(epoch_sql(c) for c in starts)}) AS ts,
                     {service} AS src, * FROM rcaeval_spans)
        WHERE ts IS NOT NULL AND coalesce(src, '') <> ''
    """)
    late, repeated = store.rows(
        f"SELECT count(*) FILTER (WHERE end_ts > {LATEST_TIME!r}), "
        "count(*) - count(DISTINCT (trace_id, span_id)) FILTER (WHERE trace_id IS NOT NULL "
        "AND span_id IS NOT NULL) - count(*) FILTER (WHERE trace_id IS NULL OR span_id IS NULL) "
        "FROM rcaeval_spans_t"
    )[0]
    # One span per (trace, span) id: the earliest; spans without both ids are all kept.
    store.execute(f"""
        INSERT INTO spans (trace_id, span_id, parent_id, service, pod, operation, start_ts,
                           end_ts, error)
        SELECT * FROM rcaeval_spans_t WHERE end_ts <= {LATEST_TIME!r}
        QUALIFY trace_id IS NULL OR span_id IS NULL OR row_number() OVER (
            PARTITION BY trace_id, span_id ORDER BY start_ts, end_ts, service, operation) = 1
    """)
    store.execute("DROP TABLE rcaeval_spans_t")
    extra = [
        f"{n} {why}"
        for n, why in ((late, "ending after 3000"), (repeated, "repeating an earlier span's ids"))
        if n
    ]
    if extra:
        notes.append(f"{path.name}: skipped span row(s) {', '.join(extra)}")
    return _finish(store, path, "rcaeval_spans", starts, skipped, notes, "trace")


def _note_dropped(
    store: TelemetryStore,
    path: Path,
    table: str,
    times: str,
    service: str,
    kind: str,
    notes: list[str],
) -> None:
    """Count the staged rows the insert leaves out: no readable time, or no service."""
    no_time, no_service = store.rows(
        f"SELECT count(*) FILTER (WHERE {times} IS NULL), "
        f"count(*) FILTER (WHERE {times} IS NOT NULL AND coalesce({service}, '') = '') "
        f"FROM {table}"
    )[0]
    parts = [
        f"{n} {why}"
        for n, why in ((no_time, "without a time in 1970..3000"), (no_service, "without a service"))
        if n
    ]
    if parts:
        notes.append(f"{path.name}: skipped {kind} row(s) {', '.join(parts)}")


def _error_sql(status: str | None) -> str:
    """A span failed when its status says so: HTTP 4xx/5xx, a non-zero gRPC code (below 100:
    no HTTP status is that small), or a textual status containing ERROR (OpenTelemetry's)."""
    if status is None:
        return "FALSE"
    code = f"try_cast({status} AS DOUBLE)"
    return (
        f"coalesce(CASE WHEN {code} IS NOT NULL THEN {code} >= 400 OR ({code} >= 1 AND "
        f"{code} < 100) ELSE upper({status}) LIKE '%ERROR%' END, FALSE)"
    )


def _finish(
    store: TelemetryStore,
    path: Path,
    table: str,
    times: list[str],
    skipped: int,
    notes: list[str],
    kind: str,
) -> TimeRange | None:
    """Note skipped rows, drop the staging table, and return the file's time range."""
    if skipped:
        notes.append(f"{path.name}: skipped {skipped} malformed {kind} row(s)")
    ts = f"coalesce({', '.join(epoch_sql(c) for c in times)})"
    extent = time_extent(store, f"SELECT min({ts}), max({ts}) FROM {table}")
    store.execute(f"DROP TABLE IF EXISTS {table}")
    return extent
