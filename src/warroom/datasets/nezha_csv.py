"""Nezha's CSVs into the store without trusting them: headers are data, never SQL.

A file's header is read with Python's csv module; DuckDB reads the data rows into text columns
with generated names (c0, c1, ...) and the wanted columns are picked by position, aliased to
fixed names from this module. Paths and metric names travel as query parameters. So a column
called `x'); COPY (SELECT 1) TO '/tmp/pwned.csv'; --` is a name like any other.

Rows are staged in a temp table and checked before they reach the store; each kind of row left
out is counted in the case notes: rows DuckDB could not parse (broken quoting, not UTF-8), times
that are not numbers or fall outside 1970..3000, spans that end before they start, rows without
a pod, and spans repeating ids already read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from warroom.datasets.base import POD_SUFFIX_SQL, read_csv_head
from warroom.errors import DatasetError
from warroom.model import EARLIEST_TIME, LATEST_TIME, TimeRange
from warroom.telemetry.store import TelemetryStore

Header = tuple[str, ...]
_T = TypeVar("_T")
# Metric CSV columns that are not metrics.
NON_METRIC_COLUMNS = ("Time", "TimeStamp", "PodName", "ServiceName")
LOG_COLUMNS = ("TimeUnixNano", "PodName", "TraceID", "SpanID", "Log")
SPAN_COLUMNS = (
    "TraceID",
    "SpanID",
    "ParentID",
    "PodName",
    "OperationName",
    "StartTimeUnixNano",
    "EndTimeUnixNano",
)
# The public data has rows with broken quoting; DuckDB's sniffer then misreads or rejects a
# whole file. With the dialect given, such rows are skipped one by one and recorded.
_READ_CSV = (
    "read_csv(?, header=false, skip=1, auto_detect=false, columns=?, delim=',', quote='\"', "
    "escape='\"', ignore_errors=true, store_rejects=true, rejects_table='csv_rejects', "
    "rejects_scan='csv_reject_scans')"
)
_VALID = f"BETWEEN {EARLIEST_TIME!r} AND {LATEST_TIME!r}"  # our own constants, not data


def read_header(path: Path) -> Header:
    """The column names in a CSV's first row (empty for an empty file)."""
    rows = read_csv_head(path, 1)
    return tuple(rows[0]) if rows else ()


class HeaderCache(dict[Path, Header]):
    """Each file's header, read once per load (a missing key reads it)."""

    def __missing__(self, path: Path) -> Header:
        header = read_header(path)
        self[path] = header
        return header


def by_header(paths: Iterable[Path], headers: dict[Path, Header]) -> dict[Header, list[Path]]:
    """Files grouped by their header (files with one header are read in one scan)."""
    groups: dict[Header, list[Path]] = {}
    for path in paths:
        if headers[path]:
            groups.setdefault(headers[path], []).append(path)
    return groups


def scan(paths: Sequence[Path], header: Header, wanted: Sequence[str]) -> tuple[str, list[Any]]:
    """SQL and its parameters reading CSV files of one header into the `wanted` columns (NULL
    where the header lacks one); `wanted` are this module's names, never a file's."""
    picks = ", ".join(
        f"c{header.index(name)} AS {name}" if name in header else f"NULL::VARCHAR AS {name}"
        for name in wanted
    )
    columns = {f"c{i}": "VARCHAR" for i in range(len(header))}
    return f"SELECT {picks} FROM {_READ_CSV}", [[str(p) for p in paths], columns]


def stage(
    store: TelemetryStore,
    groups: dict[Header, list[Path]],
    wanted: Sequence[str],
    table: str,
    select: str = "*",
) -> int:
    """Read every group into one temp table: `select` (this module's SQL) over the wanted
    columns. Returns the rows skipped as malformed."""
    parts = [scan(paths, header, wanted) for header, paths in groups.items()]
    sql = " UNION ALL ".join(part for part, _ in parts)
    params = [p for _, group_params in parts for p in group_params]
    store.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {select} FROM ({sql})", params)
    return rejected_rows(store)


def rejected_rows(store: TelemetryStore) -> int:
    """Rows the last scan skipped as malformed (0 when none were); clears the record."""
    try:
        count = int(store.rows("SELECT count(DISTINCT (file_id, line)) FROM csv_rejects")[0][0])
    except Exception:  # the rejects table exists only after a scan that stored rejects
        return 0
    store.execute("DROP TABLE IF EXISTS csv_rejects")
    store.execute("DROP TABLE IF EXISTS csv_reject_scans")
    return count


def note_skips(notes: list[str], kind: str, files: list[Path], counts: dict[str, int]) -> None:
    """One note naming the files and each non-zero count of rows left out."""
    parts = [f"{n} {why}" for why, n in counts.items() if n]
    if parts:
        names = ", ".join(f.name for f in files)
        notes.append(f"skipped {kind} row(s) in {names}: {', '.join(parts)}")


def run(kind: str, files: list[Path], steps: Callable[[], _T]) -> _T:
    """Run `steps()` (the SQL of one insert); a DuckDB failure becomes a DatasetError."""
    try:
        return steps()
    except DatasetError:
        raise
    except Exception as err:  # duckdb raises several error types for a malformed CSV
        names = ", ".join(f.name for f in files)
        first = str(err).splitlines()[0][:300] if str(err) else type(err).__name__
        raise DatasetError(
            f"cannot read {kind} CSV ({names}) in {files[0].parent}: {first}"
        ) from err


def extent(store: TelemetryStore, sql: str) -> TimeRange | None:
    """The [min, max] a query of min and max time returns, or None."""
    row = store.rows(sql)[0]
    return TimeRange(float(row[0]), float(row[1]) + 1e-3) if row[0] is not None else None


# --- logs ----------------------------------------------------------------------------------------


def insert_logs(
    store: TelemetryStore, files: list[Path], headers: dict[Path, Header], notes: list[str]
) -> TimeRange | None:
    """Unwrap the Kubernetes JSON envelope; the body is plain text (Java) or JSON (Go/Node).
    Returns the time range of the rows kept.

    Neighbouring minute files overlap, so identical rows are kept once.
    """
    if not files:
        return None
    groups = by_header(files, headers)
    return run("log", files, lambda: _insert_logs(store, groups, files, notes))


def _insert_logs(
    store: TelemetryStore, groups: dict[Header, list[Path]], files: list[Path], notes: list[str]
) -> TimeRange | None:
    if not groups:
        return None
    select = "*, try_cast(TimeUnixNano AS DOUBLE) / 1e9 AS ts"
    malformed = stage(store, groups, LOG_COLUMNS, "nezha_logs_t", select)
    bad_time, no_pod = store.rows(
        f"SELECT count(*) FILTER (WHERE ts IS NULL OR NOT ts {_VALID}), "
        f"count(*) FILTER (WHERE ts {_VALID} AND coalesce(PodName, '') = '') FROM nezha_logs_t"
    )[0]
    store.execute(f"""
        INSERT INTO logs (ts, service, pod, level, message, trace_id, span_id)
        SELECT DISTINCT ts, regexp_replace(PodName, '{POD_SUFFIX_SQL}', ''), PodName,
               CASE WHEN is_json THEN upper(coalesce(json_extract_string(body, '$.severity'),
                                                     json_extract_string(body, '$.level'), ''))
                    ELSE regexp_extract(body, '^\\S+\\s+([A-Za-z]+)\\s', 1) END,
               CASE WHEN is_json THEN coalesce(json_extract_string(body, '$.message'),
                                               json_extract_string(body, '$.msg'), body)
                    ELSE (regexp_replace(body, '^\\S+\\s+[A-Za-z]+\\s+', '')) END,
               TraceID, SpanID
        FROM (
            SELECT ts, PodName, TraceID, SpanID, body,
                   (body LIKE '{{%' AND json_valid(body)) AS is_json
            FROM (SELECT *, regexp_replace(coalesce(
                      CASE WHEN json_valid(Log) THEN json_extract_string(Log, '$.log') END, Log),
                      '\\s+$', '') AS body
                  FROM nezha_logs_t WHERE ts {_VALID} AND coalesce(PodName, '') <> '')
        )
    """)
    found = extent(
        store,
        f"SELECT min(ts), max(ts) FROM nezha_logs_t WHERE ts {_VALID} AND "
        "coalesce(PodName, '') <> ''",
    )
    store.execute("DROP TABLE nezha_logs_t")
    counts = {
        "malformed (broken quoting, wrong cell count, not UTF-8)": malformed,
        "without a time in 1970..3000": int(bad_time),
        "without a pod": int(no_pod),
    }
    note_skips(notes, "log", files, counts)
    return found


# --- spans ---------------------------------------------------------------------------------------


def insert_spans(
    store: TelemetryStore, files: list[Path], headers: dict[Path, Header], notes: list[str]
) -> TimeRange | None:
    """Trace rows into spans, each (trace, span) id once; returns the range of start times."""
    if not files:
        return None
    groups = by_header(files, headers)
    return run("trace", files, lambda: _insert_spans(store, groups, files, notes))


def _insert_spans(
    store: TelemetryStore, groups: dict[Header, list[Path]], files: list[Path], notes: list[str]
) -> TimeRange | None:
    if not groups:
        return None
    select = f"""DISTINCT TraceID, SpanID,
        CASE WHEN ParentID = 'root' THEN '' ELSE ParentID END AS ParentID, PodName, OperationName,
        try_cast(StartTimeUnixNano AS DOUBLE) / 1e9 AS s,
        try_cast(EndTimeUnixNano AS DOUBLE) / 1e9 AS e,
        CASE WHEN s IS NULL OR e IS NULL OR NOT s {_VALID} OR NOT e {_VALID} THEN 'time'
             WHEN e < s THEN 'backwards'
             WHEN coalesce(PodName, '') = '' THEN 'pod'
             WHEN coalesce(TraceID, '') = '' OR coalesce(SpanID, '') = '' THEN 'ids'
             END AS problem"""
    malformed = stage(store, groups, SPAN_COLUMNS, "nezha_spans_t", select)
    # One span per id: the first by time among rows that disagree, none that is already stored.
    store.execute("""
        CREATE OR REPLACE TEMP TABLE nezha_spans_k AS
        SELECT t.* FROM nezha_spans_t t
        ANTI JOIN spans ON spans.trace_id = t.TraceID AND spans.span_id = t.SpanID
        WHERE t.problem IS NULL
        QUALIFY row_number() OVER (PARTITION BY t.TraceID, t.SpanID
                                   ORDER BY t.s, t.e, t.ParentID, t.PodName, t.OperationName) = 1
    """)
    counts = dict(
        store.rows(
            "SELECT problem, count(*) FROM nezha_spans_t WHERE problem IS NOT NULL GROUP BY 1"
        )
    )
    good = store.rows("SELECT count(*) FROM nezha_spans_t WHERE problem IS NULL")[0][0]
    kept = store.rows("SELECT count(*) FROM nezha_spans_k")[0][0]
    store.execute(f"""
        INSERT INTO spans (trace_id, span_id, parent_id, service, pod, operation, start_ts, end_ts,
                           error)
        SELECT TraceID, SpanID, ParentID, regexp_replace(PodName, '{POD_SUFFIX_SQL}', ''),
               PodName, OperationName, s, e, FALSE
        FROM nezha_spans_k
    """)
    found = extent(store, "SELECT min(s), max(s) FROM nezha_spans_k")
    for table in ("nezha_spans_t", "nezha_spans_k"):
        store.execute(f"DROP TABLE {table}")
    skipped = {
        "malformed (broken quoting, wrong cell count, not UTF-8)": malformed,
        "without start and end times in 1970..3000": counts.get("time", 0),
        "ending before they start": counts.get("backwards", 0),
        "without a pod": counts.get("pod", 0),
        "without a trace or span id": counts.get("ids", 0),
        "repeating the ids of a span already read": int(good) - int(kept),
    }
    note_skips(notes, "trace", files, skipped)
    return found


# --- metrics -------------------------------------------------------------------------------------


def insert_metrics(
    store: TelemetryStore,
    paths: list[Path],
    header: Header,
    id_column: str,
    window: TimeRange,
    notes: list[str],
    service_prefix: str = "",
) -> None:
    """Unpivot wide metric CSVs of one header into (service, name, ts, value) rows."""
    run(
        "metric",
        paths,
        lambda: _insert_metrics(store, paths, header, id_column, window, notes, service_prefix),
    )


def _insert_metrics(
    store: TelemetryStore,
    paths: list[Path],
    header: Header,
    id_column: str,
    window: TimeRange,
    notes: list[str],
    service_prefix: str,
) -> None:
    metrics = _metric_columns(header)
    if not metrics or id_column not in header:
        return
    wanted = [c for c in ("Time", "TimeStamp") if c in header] + [id_column]
    service = f"regexp_replace({id_column}, '{POD_SUFFIX_SQL}', '')"
    if service_prefix:
        service = f"? || {id_column}"
    # The Time column (Go time.String(), UTC) is the trustworthy clock: one public file carries
    # a corrupted TimeStamp column, so TimeStamp is only the fallback.
    clocks = []
    if "Time" in header:
        clocks.append("epoch(try_strptime(substr(Time, 1, 19), '%Y-%m-%d %H:%M:%S'))")
    if "TimeStamp" in header:
        clocks.append("try_cast(TimeStamp AS DOUBLE)")
    ts = f"coalesce({', '.join(clocks)})" if clocks else "NULL::DOUBLE"
    picks = ", ".join(f"c{header.index(c)} AS {c}" for c in wanted)
    picks += "".join(f", c{i} AS m{i}" for i in metrics)
    columns = {f"c{i}": "VARCHAR" for i in range(len(header))}
    store.execute(
        f"""CREATE OR REPLACE TEMP TABLE nezha_metrics AS
        SELECT * FROM (SELECT {service} AS service, {ts} AS ts, * EXCLUDE ({", ".join(wanted)})
                       FROM (SELECT {picks} FROM {_READ_CSV}))
        WHERE (ts >= ? AND ts < ?) OR ts IS NULL OR NOT ts {_VALID}""",
        ([service_prefix] if service_prefix else [])
        + [[str(p) for p in paths], columns, window.start, window.end],
    )
    malformed = rejected_rows(store)
    bad_time, no_service = store.rows(
        f"SELECT count(*) FILTER (WHERE ts IS NULL OR NOT ts {_VALID}), "
        "count(*) FILTER (WHERE coalesce(service, '') = '' AND ts >= ? AND ts < ?) "
        "FROM nezha_metrics",
        [window.start, window.end],
    )[0]
    store.execute("CREATE OR REPLACE TEMP TABLE nezha_metric_names (col VARCHAR, name VARCHAR)")
    store.execute(
        "INSERT INTO nezha_metric_names SELECT unnest(?), unnest(?)",
        [[f"m{i}" for i in metrics], [header[i] for i in metrics]],
    )
    store.execute(
        """
        CREATE OR REPLACE TEMP TABLE nezha_metric_rows AS
        SELECT service, m.name, ts, try_cast(value AS DOUBLE) AS v, value
        FROM (UNPIVOT (SELECT * FROM nezha_metrics
                       WHERE ts >= ? AND ts < ? AND coalesce(service, '') <> '')
              ON COLUMNS(* EXCLUDE (service, ts)) INTO NAME col VALUE value) AS u
        JOIN nezha_metric_names AS m USING (col)
        """,
        [window.start, window.end],
    )
    text, infinite = store.rows(
        "SELECT count(*) FILTER (WHERE v IS NULL AND trim(value) <> ''), "
        "count(*) FILTER (WHERE isinf(v)) FROM nezha_metric_rows"
    )[0]
    # An infinite value is a missing sample (NULL); NaN stays NaN, as the files have it.
    store.execute(
        "INSERT INTO metrics (service, name, ts, value) "
        "SELECT service, name, ts, CASE WHEN isinf(v) THEN NULL ELSE v END "
        "FROM nezha_metric_rows"
    )
    for table in ("nezha_metrics", "nezha_metric_names", "nezha_metric_rows"):
        store.execute(f"DROP TABLE {table}")
    counts = {
        "malformed (broken quoting, wrong cell count, not UTF-8)": malformed,
        "without a readable time in 1970..3000": int(bad_time),
    }
    note_skips(notes, "metric", paths, counts)
    values = {
        "row(s) without a pod or service": int(no_service),
        "non-numeric value(s) read as missing": int(text),
        "infinite value(s) read as missing": int(infinite),
    }
    note_skips(notes, "metric", paths, values)


def _metric_columns(header: Header) -> list[int]:
    """Indices of the metric columns, each name once (a repeated name keeps its first column)."""
    seen: set[str] = set()
    chosen = []
    for i, name in enumerate(header):
        if name in NON_METRIC_COLUMNS or name in seen or not name:
            continue
        seen.add(name)
        chosen.append(i)
    return chosen
