"""Loader for the RCAEval case layout (RE1, RE2, RE3 and corpora converted to it).

    <root>/.../<service>_<fault>/<n>/inject_time.txt     injection time, unix seconds
    <root>/.../<service>_<fault>/<n>/data.csv            RE1 metrics (or metrics.csv: RE2/RE3)
    <root>/.../<service>_<fault>/<n>/logs.csv            RE2/RE3, when present
    <root>/.../<service>_<fault>/<n>/traces.csv          RE2/RE3, when present

Cases may sit at any depth. Metric files are wide: a `time` column and one column per series
named `<component>_<metric>`, split at the FIRST `_` as RCAEval does (`x.split("_")[0]`); a
component is a Kubernetes pod (mapped to its deployment), a service or a node (`vm1`). The
folder name is split at its LAST `_` into the ground truth service and fault: RCAEval splits it
at its only `_` (`service, fault = name.split("_")`), fault names never contain one, and a
service that does still gets its whole name.

Times may be unix seconds, milliseconds, microseconds or nanoseconds (told apart by size: RCAEval
traces carry `startTime` in microseconds, logs a nanosecond `timestamp`) or a date string (UTC
unless it says otherwise). Trace `duration` is in microseconds, as RCAEval's trace methods read it.

The incident is the injection time alone: the window runs from it to the end of the data (at most
WINDOW_MAX_S), and the data before it is the baseline; nothing is tuned per corpus.
"""

from __future__ import annotations

import os
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from warroom.datasets.base import CaseSpec, GroundTruth, LoadedCase, service_of_pod
from warroom.datasets.rcaeval_csv import (
    epoch_sql,
    find_column,
    insert_logs,
    insert_spans,
    read_header,
    stage,
    time_extent,
    to_seconds,
)
from warroom.datasets.references import pick_references
from warroom.errors import DatasetError
from warroom.experts.metrics import indicator_kind, resource_family
from warroom.intake.prom_text import escape_label
from warroom.model import Incident, TimeRange, time_problem
from warroom.telemetry.store import TelemetryStore

METRIC_FILES = ("data.csv", "metrics.csv", "simple_metrics.csv")  # first present wins
INJECT_FILE = "inject_time.txt"
TIME_COLUMNS = ("time", "Time")  # RCAEval's drop_time accepts both
# RCAEval's runs give a method the first 10 minutes after the injection (main.py: 600 rows of
# one-second data); the same cap keeps a long recording from diluting the fault window.
WINDOW_MAX_S = 10 * 60.0
# The pipeline compares metrics with the hour before the window; older rows add nothing.
BASELINE_MAX_S = 60 * 60.0
# RCAEval's fine-grained answer per fault (main.py); code faults (f1..f5) name no metric.
FAULT_INDICATORS = {
    "cpu": "cpu",
    "mem": "mem",
    "disk": "diskio",
    "delay": "latency",
    "loss": "latency",
    "socket": "socket",
}
_PANDAS_DUPLICATE_TIME = re.compile(r"^[Tt]ime\.\d+$")  # how pandas names a repeated header


@dataclass(frozen=True)
class RcaevalCase:
    """One case folder (`<service>_<fault>/<n>`) under a root."""

    root: Path
    folder: Path

    @property
    def case_id(self) -> str:
        """The folder's path below the root, e.g. re2-ob/checkoutservice_cpu/1."""
        return self.folder.relative_to(self.root).as_posix() if self.folder != self.root else "."

    @property
    def group(self) -> str:
        """The system folder above `<service>_<fault>` (the root's name when there is none)."""
        parts = self.folder.relative_to(self.root).parts
        return "/".join(parts[:-2]) or self.root.name

    def metric_file(self) -> Path:
        """The case's wide metric CSV."""
        return next(self.folder / n for n in METRIC_FILES if (self.folder / n).is_file())


def _is_case(folder: Path, files: list[str]) -> bool:
    return INJECT_FILE in files and any(name in files for name in METRIC_FILES)


def _natural(path: Path) -> tuple[tuple[int, int, str], ...]:
    """Sort key that puts case 10 after case 9."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.parts)


def list_cases(root: Path) -> list[RcaevalCase]:
    """Every case folder at any depth under root, in natural path order."""
    if not root.is_dir():
        raise DatasetError(f"RCAEval root {root} not found")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if _is_case(Path(folder), files):
            found.append(RcaevalCase(root, Path(folder)))
    if not found:
        raise DatasetError(
            f"no RCAEval cases under {root}: expected <service>_<fault>/<n>/ folders holding "
            f"{INJECT_FILE} and one of {', '.join(METRIC_FILES)}"
        )
    return sorted(found, key=lambda c: _natural(c.folder.relative_to(root)))


def resolve_case(root: Path, case_id: str | None) -> RcaevalCase:
    """The case named by case_id (its path below root, or a 1-based index)."""
    cases = list_cases(root)
    if case_id is None:
        return cases[0]
    if case_id.isascii() and case_id.isdigit() and 1 <= int(case_id) <= len(cases):
        return cases[int(case_id) - 1]
    wanted = case_id.strip("/")
    for case in cases:
        if case.case_id == wanted:
            return case
    known = ", ".join(c.case_id for c in cases[:4])
    raise DatasetError(f"no RCAEval case {case_id!r} under {root} (known: {known}, ...)")


def read_inject_time(path: Path) -> float:
    """The injection time in inject_time.txt (its first line), as unix seconds."""
    try:
        lines = path.read_text(encoding="utf-8-sig").split()
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: cannot read the injection time ({err})") from err
    try:
        value = float(lines[0])
    except (IndexError, ValueError):
        shown = lines[0][:40] if lines else "an empty file"
        raise DatasetError(
            f"{path}: the injection time must be a number, found {shown!r}"
        ) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise DatasetError(f"{path}: the injection time must be a finite number")
    seconds = to_seconds(value)
    problem = time_problem(seconds)
    if problem:
        raise DatasetError(f"{path}: the injection time {problem}")
    return seconds


def ground_truth(case: RcaevalCase) -> GroundTruth | None:
    """Service and fault from the `<service>_<fault>` folder name; None when it has no `_`."""
    service, sep, fault = case.folder.parent.name.rpartition("_")
    if not sep or not service or not fault:
        return None
    return GroundTruth(service, fault, FAULT_INDICATORS.get(fault))


def load_case(case: RcaevalCase, store: TelemetryStore | None = None) -> LoadedCase:
    """Load one case's metrics (and its logs and traces, when present) into a store."""
    started = time.perf_counter()
    inject = read_inject_time(case.folder / INJECT_FILE)
    own = store is None
    store = store or TelemetryStore()
    try:
        return _load(case, store, inject, started)
    except BaseException:
        if own:
            store.close()  # nothing half-read: a case that fails to load hands back no store
        raise


def _load(case: RcaevalCase, store: TelemetryStore, inject: float, started: float) -> LoadedCase:
    # Date strings without an offset are UTC, as every time inside warroom is.
    store.execute("SET TimeZone = 'UTC'")
    notes: list[str] = []
    metrics, step = insert_metrics(store, case.metric_file(), notes)
    extents = [metrics]
    for name, insert in (("logs.csv", insert_logs), ("traces.csv", insert_spans)):
        path = case.folder / name
        extents.append(insert(store, path, notes) if path.is_file() else None)
    window, baseline = _window(inject, step, [e for e in extents if e is not None], notes)
    truth = ground_truth(case)
    if truth is None:
        notes.append(f"folder {case.folder.parent.name!r} is not <service>_<fault>: no truth")
    incident = Incident(id=case.case_id, window=window, alert_time=inject)
    # The rows before the injection are fault-free: other windows of them tell how usual a
    # finding is (they may lie inside the baseline; never over the incident window).
    references = pick_references(window.seconds, [baseline] if baseline else [], [window])
    spec = CaseSpec(
        case.case_id, incident, baseline, truth, notes=tuple(notes), references=references
    )
    return LoadedCase(spec, store, time.perf_counter() - started)


def _window(
    inject: float, step: float, extents: list[TimeRange], notes: list[str]
) -> tuple[TimeRange, TimeRange | None]:
    """[inject, end of data) capped at WINDOW_MAX_S, and the data before inject as baseline."""
    end = max((e.end for e in extents), default=inject)
    if end <= inject:
        notes.append(f"no data at or after the injection time {inject:.0f}")
        end = inject + step
    window = TimeRange(inject, min(end, inject + WINDOW_MAX_S))
    start = max(min((e.start for e in extents), default=inject), inject - BASELINE_MAX_S)
    if start >= inject:
        notes.append("no data before the injection time: no baseline")
        return window, None
    return window, TimeRange(start, inject)


# --- metrics -----------------------------------------------------------------------------------


def series_names(header: list[str], skip: set[int]) -> dict[int, tuple[str, str]]:
    """(service, metric name) per metric column index.

    Replicas stay apart: when one deployment has several pods exporting the same metric, each
    series is named `<metric>{pod="<pod>"}` (the store keeps labels in the name, as the
    Prometheus reader does), so the service stays the deployment while no pod's series is
    merged into another's. The label must not change how the experts read the name (a pod hash
    can spell `gc` or `qps`); when it would, the label is `{replica="<n>"}` instead.
    """
    parsed: dict[int, tuple[str, str, str]] = {}
    for index, column in enumerate(header):
        component, sep, metric = column.partition("_")
        if index in skip or not component:
            continue
        parsed[index] = (
            component,
            service_of_pod(component),
            metric if sep and metric else "value",
        )
    pods: dict[tuple[str, str], set[str]] = defaultdict(set)
    for component, service, metric in parsed.values():
        pods[(service, metric)].add(component)
    names = {}
    for index, (component, service, metric) in parsed.items():
        replicas = sorted(pods[(service, metric)])
        if len(replicas) > 1:
            metric = _labelled(metric, component, replicas.index(component) + 1)
        names[index] = (service, metric)
    return names


def _labelled(metric: str, pod: str, replica: int) -> str:
    name = f'{metric}{{pod="{escape_label(pod)}"}}'
    same_kind = indicator_kind(name) is indicator_kind(metric)
    if same_kind and resource_family(name) in (resource_family(metric), name.lower()):
        return name
    return f'{metric}{{replica="{replica}"}}'


def insert_metrics(
    store: TelemetryStore, path: Path, notes: list[str]
) -> tuple[TimeRange | None, float]:
    """Unpivot a wide RCAEval metric CSV into the store; returns its time range and step."""
    header = read_header(path)
    time_col = find_column(header, TIME_COLUMNS)
    if time_col is None:
        raise DatasetError(f"{path}: no 'time' column (header starts: {', '.join(header[:5])})")
    skip = {i for i, c in enumerate(header) if c in TIME_COLUMNS or _PANDAS_DUPLICATE_TIME.match(c)}
    names = series_names(header, skip)
    if len(header) - len(skip) - len(names):
        notes.append(f"{path.name}: columns without a component before '_' ignored")
    stage(store, path, len(header), "rcaeval_raw", strict=True)
    _check_times(store, path, time_col)
    _unpivot(store, time_col, names)
    # NaN is how pandas writes a missing value: skipped without a note, as blank cells are.
    text, odd = store.rows(
        "SELECT count(*) FILTER (WHERE value IS NULL), count(*) FILTER (WHERE isinf(value))"
        " FROM rcaeval_rows"
    )[0]
    if text:
        notes.append(f"{path.name}: skipped {text} non-numeric value(s)")
    if odd:
        notes.append(f"{path.name}: skipped {odd} infinite value(s)")
    extent = time_extent(store, "SELECT min(ts), max(ts) FROM rcaeval_rows WHERE isfinite(value)")
    step = _step(store)
    for table in ("rcaeval_raw", "rcaeval_rows", "rcaeval_columns"):
        store.execute(f"DROP TABLE IF EXISTS {table}")
    if extent is None:
        notes.append(f"{path.name}: no numeric values")
        return None, step
    return TimeRange(extent.start, extent.end - 1e-3 + step), step


def _unpivot(store: TelemetryStore, time_col: str, names: dict[int, tuple[str, str]]) -> None:
    """Staged wide rows -> (service, name, ts, value) rows; finite values go into metrics.

    The series names travel as query parameters into a lookup table joined on the generated
    column names, so no name read from the file is ever part of the SQL text.
    """
    store.execute(
        "CREATE OR REPLACE TEMP TABLE rcaeval_columns (col TEXT, service TEXT, name TEXT)"
    )
    store.execute(
        "INSERT INTO rcaeval_columns SELECT unnest(?), unnest(?), unnest(?)",
        [[f"c{i}" for i in names], [s for s, _ in names.values()], [n for _, n in names.values()]],
    )
    store.execute(f"""
        CREATE OR REPLACE TEMP TABLE rcaeval_rows AS
        SELECT m.service, m.name, u.ts, try_cast(u.value AS DOUBLE) AS value
        FROM (UNPIVOT (SELECT {epoch_sql(time_col)} AS ts, * EXCLUDE ({time_col})
                       FROM rcaeval_raw)
              ON COLUMNS(* EXCLUDE (ts)) INTO NAME col VALUE value) AS u
        JOIN rcaeval_columns AS m USING (col)
        WHERE u.ts IS NOT NULL
    """)
    # Blank cells never become rows (UNPIVOT drops NULLs); NaN and infinities are skipped here.
    store.execute(
        "INSERT INTO metrics (service, name, ts, value) "
        "SELECT service, name, ts, value FROM rcaeval_rows "
        "WHERE isfinite(value)"
    )


def _check_times(store: TelemetryStore, path: Path, time_col: str) -> None:
    """Raise DatasetError when a non-blank time is neither a number nor a date."""
    row = store.rows(
        f"SELECT count(*), any_value({time_col}) FROM rcaeval_raw "
        f"WHERE trim({time_col}) <> '' AND {epoch_sql(time_col)} IS NULL"
    )[0]
    if row[0]:
        raise DatasetError(
            f"{path}: {row[0]} row(s) with a time that is neither a number nor a date in "
            f"1970..3000 (first: {str(row[1])[:40]!r})"
        )


def _step(store: TelemetryStore) -> float:
    """The median sampling interval of the staged metric rows (60 s when unknown)."""
    rows = store.rows(
        "SELECT median(d) FROM (SELECT ts - lag(ts) OVER (ORDER BY ts) AS d FROM "
        "(SELECT DISTINCT ts FROM rcaeval_rows)) WHERE d > 0"
    )
    return float(rows[0][0]) if rows and rows[0][0] else 60.0
