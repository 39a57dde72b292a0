"""Loader for the Nezha (FSE'23) multi-modal RCA layout.

    <root>/rca_data/<day>/{metric,log,trace,traceid}/ + <day>-fault_list.json
    <root>/construct_data/<day>/{metric,log,trace}/   fault-free phase
    <root>/construct_data/root_cause_*.json            inner-service labels

Metrics cover the whole day at one-minute resolution; logs and traces come as one-minute files
(HH_MM_log.csv) around each injected fault. A case loads the day's metrics near the fault, the
fault's minute files, and the fault-free minute files as the baseline. Missing folders degrade the
case (a note says what was missing); they never stop it.

Fault lists give `inject_time` (UTC) and `inject_timestamp` (8 hours off): we use inject_time.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from warroom.datasets.base import POD_SUFFIX_SQL, CaseSpec, GroundTruth, LoadedCase, service_of_pod
from warroom.errors import DatasetError
from warroom.model import Incident, TimeRange
from warroom.telemetry.store import TelemetryStore

# How much metric history to load before the fault (the metric baseline) and after it.
METRIC_HISTORY_S = 60 * 60.0
METRIC_AFTER_S = 10 * 60.0
# Minute files that belong to a fault: from its injection minute for this long.
FAULT_FILES_S = 3 * 60.0
# Where the pipeline looks for the fault, relative to the injection time.
WINDOW_BEFORE_S = 0.0
WINDOW_AFTER_S = 4 * 60.0

# Other minutes of the same day, judged like the fault's own to see how usual its findings are
# (experts.specificity): this many, spread over the day, at least this far from the injection.
REFERENCES = 4
REFERENCE_GAP_S = 10 * 60.0

# Metric CSV columns that are not metrics.
_NON_METRIC_COLUMNS = ("Time", "TimeStamp", "PodName", "ServiceName")


@dataclass(frozen=True)
class NezhaFault:
    """One entry of a day's fault list."""

    day: str
    inject_time: float
    pod: str
    fault_type: str

    @property
    def case_id(self) -> str:
        """Stable id: <day>_<HHMMSS> of the injection."""
        return f"{self.day}_{datetime.fromtimestamp(self.inject_time, UTC):%H%M%S}"


def find_days(root: Path) -> list[Path]:
    """Every rca_data/<day> folder under root that has a fault list."""
    base = root / "rca_data" if (root / "rca_data").is_dir() else root
    if not base.is_dir():
        raise DatasetError(f"Nezha root {root} not found (expected {root}/rca_data/<day>/)")
    days = sorted(d for d in base.iterdir() if d.is_dir() and _fault_list_file(d) is not None)
    if not days:
        raise DatasetError(f"no <day>/<day>-fault_list.json under {base}: not a Nezha layout")
    return days


def _fault_list_file(day_dir: Path) -> Path | None:
    """<day>/<day>-fault_list.json, or the same file beside the day folder."""
    candidates = sorted(day_dir.glob("*fault_list*")) + sorted(
        day_dir.parent.glob(f"{day_dir.name}*fault_list*")
    )
    return candidates[0] if candidates else None


def list_faults(root: Path) -> list[NezhaFault]:
    """All faults of all days under root, in time order."""
    return [fault for day in find_days(root) for fault in _read_fault_list(day)]


def _read_fault_list(day_dir: Path) -> list[NezhaFault]:
    path = _fault_list_file(day_dir)
    assert path is not None
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from err
    entries = [e for group in raw.values() for e in group] if isinstance(raw, dict) else raw
    faults = []
    for index, entry in enumerate(entries):
        try:
            moment = datetime.strptime(entry["inject_time"], "%Y-%m-%d %H:%M:%S").replace(
                tzinfo=UTC
            )
            faults.append(
                NezhaFault(
                    day_dir.name, moment.timestamp(), entry["inject_pod"], entry["inject_type"]
                )
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DatasetError(f"{path}: fault entry {index} is malformed ({err!r})") from err
    return sorted(faults, key=lambda f: f.inject_time)


def resolve_case(root: Path, case_id: str | None) -> NezhaFault:
    """The fault named by case_id (an id like 2023-01-29_084304, or a 1-based index)."""
    faults = list_faults(root)
    if case_id is None:
        return faults[0]
    if case_id.isdigit() and 1 <= int(case_id) <= len(faults):
        return faults[int(case_id) - 1]
    for fault in faults:
        if fault.case_id == case_id:
            return fault
    known = ", ".join(f.case_id for f in faults[:5])
    raise DatasetError(f"no Nezha case {case_id!r} under {root} (known: {known}, ...)")


def load_case(root: Path, fault: NezhaFault, store: TelemetryStore | None = None) -> LoadedCase:
    """Load one fault's telemetry (and the fault-free baseline) into a store."""
    started = time.perf_counter()
    store = store or TelemetryStore()
    rca_day = _rca_dir(root) / fault.day
    construct_day = root / "construct_data" / fault.day
    notes: list[str] = []
    t0 = fault.inject_time
    _load_metrics(
        store, rca_day / "metric", TimeRange(t0 - METRIC_HISTORY_S, t0 + METRIC_AFTER_S), notes
    )
    fault_range = TimeRange(_minute_floor(t0), t0 + FAULT_FILES_S)
    _load_minute_files(store, rca_day, fault_range, notes)
    baseline = _load_baseline(store, construct_day, notes)
    references = _load_references(store, rca_day, t0, baseline, notes)
    spec = CaseSpec(
        id=fault.case_id,
        incident=Incident(
            id=fault.case_id,
            window=TimeRange(t0 - WINDOW_BEFORE_S, t0 + WINDOW_AFTER_S),
            alert_time=t0,
        ),
        baseline=baseline,
        truth=_ground_truth(root, fault),
        graph_edges=_dependency_edges(rca_day / "metric"),
        notes=tuple(notes),
        references=references,
    )
    return LoadedCase(spec, store, time.perf_counter() - started)


def _rca_dir(root: Path) -> Path:
    return root / "rca_data" if (root / "rca_data").is_dir() else root


def _minute_floor(ts: float) -> float:
    return ts - ts % 60


def _load_metrics(
    store: TelemetryStore, metric_dir: Path, window: TimeRange, notes: list[str]
) -> None:
    files = sorted(metric_dir.glob("*.csv")) if metric_dir.is_dir() else []
    pod_files = [f for f in files if "PodName" in _header(f)]
    front_files = [f for f in files if "ServiceName" in _header(f)]
    if not pod_files:
        notes.append(f"no per-pod metric files in {metric_dir}")
    # Files with the same header are read in one scan; union_by_name would sniff every file.
    for group in _by_header(pod_files):
        _insert_metric_files(store, group, "PodName", window)
    for group in _by_header(front_files):
        _insert_metric_files(store, group, "ServiceName", window, service_prefix="slo:")


def _by_header(paths: list[Path]) -> list[list[Path]]:
    groups: dict[tuple[str, ...], list[Path]] = {}
    for path in paths:
        groups.setdefault(tuple(_header(path)), []).append(path)
    return list(groups.values())


def _header(path: Path) -> list[str]:
    with path.open() as handle:
        return handle.readline().strip().split(",")


def _insert_metric_files(
    store: TelemetryStore,
    paths: list[Path],
    id_column: str,
    window: TimeRange,
    service_prefix: str = "",
) -> None:
    """Unpivot wide metric CSVs into (service, name, ts, value) rows, in one scan."""
    if not paths:
        return
    source = _csv_source(paths)
    service = f"regexp_replace({id_column}, '{POD_SUFFIX_SQL}', '')"
    if service_prefix:
        service = f"'{service_prefix}' || {id_column}"
    # The Time column (Go time.String(), UTC) is the trustworthy clock: one public file carries
    # a corrupted TimeStamp column, so TimeStamp is only the fallback.
    ts = (
        "coalesce(epoch(try_strptime(substr(Time, 1, 19), '%Y-%m-%d %H:%M:%S')), "
        "try_cast(TimeStamp AS DOUBLE))"
    )
    excluded = ", ".join(c for c in _NON_METRIC_COLUMNS if c in _header(paths[0]))
    sql = f"""
        INSERT INTO metrics
        SELECT service, name, ts, try_cast(value AS DOUBLE) FROM (
            UNPIVOT (SELECT {service} AS service, {ts} AS ts, COLUMNS(* EXCLUDE ({excluded}))
                     FROM {source})
            ON COLUMNS(* EXCLUDE (service, ts)) INTO NAME name VALUE value
        ) WHERE ts >= ? AND ts < ?
    """
    try:
        store.execute(sql, [window.start, window.end])
    except Exception as err:  # duckdb raises several error types for a malformed CSV
        raise DatasetError(f"cannot read metric CSVs in {paths[0].parent}: {err}") from err


def _csv_source(files: list[Path]) -> str:
    """A DuckDB scan of CSV files with the dialect and columns stated, not sniffed.

    The public data has rows with broken quoting; DuckDB's sniffer then misreads or rejects a
    whole file. With the dialect given, such rows are skipped one by one and recorded in the
    `csv_rejects` table, which the loader reports in the case notes.
    """
    groups: dict[tuple[str, ...], list[Path]] = {}
    for f in files:
        groups.setdefault(tuple(_header(f)), []).append(f)
    scans = []
    for header, paths in groups.items():
        sources = ", ".join(f"'{_sql_path(p)}'" for p in paths)
        columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in header) + "}"
        scans.append(
            f"SELECT * FROM read_csv([{sources}], header=true, auto_detect=false, "
            f"columns={columns}, delim=',', quote='\"', escape='\"', ignore_errors=true, "
            "store_rejects=true, rejects_table='csv_rejects', rejects_scan='csv_reject_scans')"
        )
    return "(" + " UNION ALL BY NAME ".join(scans) + ")"


def _rejected_rows(store: TelemetryStore) -> int:
    """Rows the last scan skipped as malformed (0 when none were); clears the record."""
    try:
        count = int(store.rows("SELECT count(DISTINCT (file_id, line)) FROM csv_rejects")[0][0])
    except Exception:  # the rejects table exists only after a scan that stored rejects
        return 0
    store.execute("DROP TABLE IF EXISTS csv_rejects")
    store.execute("DROP TABLE IF EXISTS csv_reject_scans")
    return count


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _load_references(
    store: TelemetryStore,
    day_dir: Path,
    t0: float,
    baseline: TimeRange | None,
    notes: list[str],
) -> tuple[TimeRange, ...]:
    """Load a few other minutes of the day (logs and traces) as reference windows.

    The day's other minutes hold other faults, mostly of other components: a finding that shows
    in most of them is the system's habit. Spread over the day, so that the repeats of one
    fault (often injected a few times in a row) weigh one window, not all."""
    midnight = datetime.fromtimestamp(t0, UTC).replace(hour=0, minute=0, second=0).timestamp()
    day = TimeRange(midnight, midnight + 86400.0)
    logs = {_minute_start(p, t0) for p in _minute_files(day_dir / "log", "log", day)}
    traces = {_minute_start(p, t0) for p in _minute_files(day_dir / "trace", "trace", day)}
    both, span = logs & traces, FAULT_FILES_S
    # Blocks as long as the fault's own files: a count test on fewer minutes has less power,
    # and a finding would look specific only because its reference was too short to show it.
    blocks = [
        m
        for m in sorted(both)
        if all(m + k * 60.0 in both for k in range(int(span // 60)))
        and (m + span <= _minute_floor(t0) - REFERENCE_GAP_S or m >= t0 + REFERENCE_GAP_S)
        and (baseline is None or m + span <= baseline.start or m >= baseline.end)
    ]
    disjoint: list[float] = []
    for m in blocks:
        if not disjoint or m >= disjoint[-1] + span:
            disjoint.append(m)
    if not disjoint:
        notes.append("no other minutes of the day to judge how usual the findings are")
        return ()
    spread = np.linspace(0, len(disjoint) - 1, min(REFERENCES, len(disjoint)))
    windows = tuple(TimeRange(disjoint[round(i)], disjoint[round(i)] + span) for i in spread)
    for window in windows:
        _load_minute_files(store, day_dir, window, notes)
    return windows


def _minute_start(path: Path, t0: float) -> float:
    """The epoch second a HH_MM_<kind>.csv file's minute starts, on t0's UTC day."""
    day = datetime.fromtimestamp(t0, UTC).replace(hour=0, minute=0, second=0)
    hour, minute = path.name.split("_")[:2]
    return day.timestamp() + int(hour) * 3600 + int(minute) * 60


def _minute_files(folder: Path, kind: str, window: TimeRange) -> list[Path]:
    """HH_MM_<kind>.csv files whose minute starts inside window (same UTC day as window)."""
    if not folder.is_dir():
        return []
    day = datetime.fromtimestamp(window.start, UTC).replace(hour=0, minute=0, second=0)
    chosen = []
    for path in sorted(folder.glob(f"*_{kind}.csv")):
        parts = path.name.split("_")
        if len(parts) < 3 or not (parts[0].isdigit() and parts[1].isdigit()):
            continue
        minute = day.timestamp() + int(parts[0]) * 3600 + int(parts[1]) * 60
        if window.start <= minute < window.end:
            chosen.append(path)
    return chosen


def _load_minute_files(
    store: TelemetryStore, day_dir: Path, window: TimeRange, notes: list[str]
) -> None:
    logs = _minute_files(day_dir / "log", "log", window)
    traces = _minute_files(day_dir / "trace", "trace", window)
    if not logs:
        notes.append(f"no log files for {window} in {day_dir / 'log'}")
    if not traces:
        notes.append(f"no trace files for {window} in {day_dir / 'trace'}")
    _insert_logs(store, logs, notes)
    _insert_spans(store, traces, notes)


def _load_baseline(
    store: TelemetryStore, construct_day: Path, notes: list[str]
) -> TimeRange | None:
    logs = sorted((construct_day / "log").glob("*_log.csv")) if construct_day.is_dir() else []
    traces = sorted((construct_day / "trace").glob("*_trace.csv")) if construct_day.is_dir() else []
    if not logs and not traces:
        notes.append(f"no fault-free data in {construct_day}; baseline is the pre-fault window")
        return None
    _insert_logs(store, logs, notes)
    _insert_spans(store, traces, notes)
    return _files_extent(store, [(logs, "TimeUnixNano"), (traces, "StartTimeUnixNano")])


def _files_extent(store: TelemetryStore, groups: list[tuple[list[Path], str]]) -> TimeRange | None:
    """The time range spanned by the rows of some CSV files (nanosecond time columns)."""
    bounds: list[float] = []
    for files, column in groups:
        if not files:
            continue
        row = store.rows(
            f"SELECT min(try_cast({column} AS DOUBLE)), max(try_cast({column} AS DOUBLE)) "
            f"FROM {_csv_source(files)}"
        )[0]
        _rejected_rows(store)  # already reported by the insert that read these files
        if row[0] is not None:
            bounds += [row[0] / 1e9, row[1] / 1e9]
    return TimeRange(min(bounds), max(bounds) + 1e-3) if bounds else None


def _insert_logs(store: TelemetryStore, files: list[Path], notes: list[str]) -> None:
    """Unwrap the Kubernetes JSON envelope; the body is plain text (Java) or JSON (Go/Node).

    Neighbouring minute files overlap, so identical rows are kept once.
    """
    if not files:
        return
    sql = f"""
        INSERT INTO logs
        SELECT DISTINCT ts, regexp_replace(PodName, '{POD_SUFFIX_SQL}', ''), PodName,
               CASE WHEN is_json THEN upper(coalesce(json_extract_string(body, '$.severity'),
                                                     json_extract_string(body, '$.level'), ''))
                    ELSE regexp_extract(body, '^\\S+\\s+([A-Za-z]+)\\s', 1) END,
               CASE WHEN is_json THEN coalesce(json_extract_string(body, '$.message'),
                                               json_extract_string(body, '$.msg'), body)
                    ELSE (regexp_replace(body, '^\\S+\\s+[A-Za-z]+\\s+', '')) END,
               TraceID, SpanID
        FROM (
            SELECT try_cast(TimeUnixNano AS DOUBLE) / 1e9 AS ts, PodName, TraceID, SpanID, body,
                   (body LIKE '{{%' AND json_valid(body)) AS is_json
            FROM (SELECT *, regexp_replace(coalesce(json_extract_string(Log, '$.log'), Log),
                                           '\\s+$', '') AS body
                  FROM {_csv_source(files)})
        ) WHERE ts IS NOT NULL
    """
    _run(store, sql, files, "log", notes)


def _insert_spans(store: TelemetryStore, files: list[Path], notes: list[str]) -> None:
    if not files:
        return
    sql = f"""
        INSERT INTO spans (trace_id, span_id, parent_id, service, pod, operation, start_ts, end_ts,
                           error)
        SELECT DISTINCT TraceID, SpanID, CASE WHEN ParentID = 'root' THEN '' ELSE ParentID END,
               regexp_replace(PodName, '{POD_SUFFIX_SQL}', ''), PodName, OperationName,
               try_cast(StartTimeUnixNano AS DOUBLE) / 1e9,
               try_cast(EndTimeUnixNano AS DOUBLE) / 1e9,
               FALSE
        FROM {_csv_source(files)}
        WHERE try_cast(StartTimeUnixNano AS DOUBLE) IS NOT NULL
          AND try_cast(EndTimeUnixNano AS DOUBLE) IS NOT NULL
    """
    _run(store, sql, files, "trace", notes)


def _run(store: TelemetryStore, sql: str, files: list[Path], kind: str, notes: list[str]) -> None:
    try:
        store.execute(sql)
        skipped = _rejected_rows(store)
        if skipped:
            names = ", ".join(f.name for f in files)
            notes.append(f"skipped {skipped} malformed {kind} row(s) in {names}")
    except Exception as err:  # duckdb raises several error types for a malformed CSV
        names = ", ".join(f.name for f in files)
        raise DatasetError(f"cannot read {kind} CSV ({names}) in {files[0].parent}: {err}") from err


def _dependency_edges(metric_dir: Path) -> tuple[tuple[str, str], ...]:
    """Caller -> callee edges from a Source,Target[,Weight] CSV, when the day ships one."""
    edges: list[tuple[str, str]] = []
    for path in sorted(metric_dir.glob("*.csv")) if metric_dir.is_dir() else []:
        header = _header(path)
        if "Source" not in header or "Target" not in header:
            continue
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                source, target = row.get("Source") or "", row.get("Target") or ""
                if source and target:
                    edges.append((service_of_pod(source), service_of_pod(target)))
    return tuple(edges)


def _ground_truth(root: Path, fault: NezhaFault) -> GroundTruth:
    service = service_of_pod(fault.pod)
    labels: dict[str, dict[str, str]] = {}
    for path in sorted((root / "construct_data").glob("root_cause_*.json")):
        try:
            labels.update(json.loads(path.read_text()))
        except json.JSONDecodeError as err:
            raise DatasetError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from err
    indicator = labels.get(service, {}).get(fault.fault_type)
    return GroundTruth(service, fault.fault_type, indicator)
