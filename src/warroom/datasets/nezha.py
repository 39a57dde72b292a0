"""Loader for the Nezha (FSE'23) multi-modal RCA layout.

    <root>/rca_data/<day>/{metric,log,trace,traceid}/ + <day>-fault_list.json
    <root>/construct_data/<day>/{metric,log,trace}/   fault-free phase
    <root>/construct_data/root_cause_*.json            inner-service labels

Metrics cover the whole day at one-minute resolution; logs and traces come as one-minute files
(HH_MM_log.csv) around each injected fault. A case loads the day's metrics near the fault, the
fault's minute files, and the fault-free minute files as the baseline. Missing folders degrade the
case (a note says what was missing); they never stop it.

Fault lists give `inject_time` (UTC) and `inject_timestamp` (8 hours off): we use inject_time.

Every file is untrusted: the JSON files are validated against models, CSV headers are data and
never SQL (nezha_csv), and rows left out on the way are counted in the case notes.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from warroom.datasets import nezha_csv
from warroom.datasets.base import CaseSpec, GroundTruth, LoadedCase, service_of_pod
from warroom.datasets.references import pick_references
from warroom.errors import DatasetError, InputError
from warroom.intake.files import load_json
from warroom.model import Incident, TimeRange, time_problem
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


class _FaultEntry(BaseModel):
    """One entry of a fault list, as far as the loader reads it."""

    inject_time: str
    inject_pod: str
    inject_type: str


_FAULT_LIST: TypeAdapter[dict[str, list[Any]] | list[Any]] = TypeAdapter(
    dict[str, list[Any]] | list[Any]
)
_ROOT_CAUSES: TypeAdapter[dict[str, dict[str, str | None]]] = TypeAdapter(
    dict[str, dict[str, str | None]]
)


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
    try:
        days = sorted(d for d in base.iterdir() if d.is_dir() and _fault_list_file(d) is not None)
    except OSError as err:
        raise DatasetError(f"{base}: cannot list the folder ({err.strerror or err})") from None
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
    raw = _json(path)
    try:
        groups = _FAULT_LIST.validate_python(raw)
    except ValidationError:
        raise DatasetError(
            f"{path}: expected a list of faults or an object of lists, got {type(raw).__name__}"
        ) from None
    entries = (
        [e for group in groups.values() for e in group] if isinstance(groups, dict) else groups
    )
    faults = [
        _fault(day_dir.name, entry, f"{path}: fault entry {i}") for i, entry in enumerate(entries)
    ]
    return sorted(faults, key=lambda f: f.inject_time)


def _fault(day: str, raw: Any, where: str) -> NezhaFault:
    try:
        entry = _FaultEntry.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "entry"
        raise DatasetError(f"{where} is malformed ({field}: {first['msg']})") from None
    try:
        moment = datetime.strptime(entry.inject_time, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise DatasetError(
            f"{where}: inject_time {entry.inject_time[:40]!r} is not YYYY-MM-DD HH:MM:SS"
        ) from None
    problem = time_problem(moment.timestamp())
    if problem:
        raise DatasetError(f"{where}: inject_time {entry.inject_time!r}: {problem}")
    return NezhaFault(day, moment.timestamp(), entry.inject_pod, entry.inject_type)


def _json(path: Path) -> Any:
    """A small JSON file (UTF-8, finite numbers, bounded depth), or a DatasetError."""
    try:
        return load_json(path)
    except InputError as err:
        raise DatasetError(str(err)) from None


def resolve_case(root: Path, case_id: str | None) -> NezhaFault:
    """The fault named by case_id (an id like 2023-01-29_084304, or a 1-based index)."""
    faults = list_faults(root)
    if case_id is None:
        return faults[0]
    if case_id.isascii() and case_id.isdigit() and 1 <= int(case_id) <= len(faults):
        return faults[int(case_id) - 1]
    for fault in faults:
        if fault.case_id == case_id:
            return fault
    known = ", ".join(f.case_id for f in faults[:5])
    raise DatasetError(f"no Nezha case {case_id!r} under {root} (known: {known}, ...)")


def load_case(root: Path, fault: NezhaFault, store: TelemetryStore | None = None) -> LoadedCase:
    """Load one fault's telemetry (and the fault-free baseline) into a store."""
    started = time.perf_counter()
    own = store is None
    store = store or TelemetryStore()
    rca_day = _rca_dir(root) / fault.day
    construct_day = root / "construct_data" / fault.day
    notes: list[str] = []
    headers = nezha_csv.HeaderCache()
    t0 = fault.inject_time
    try:
        metrics = TimeRange(t0 - METRIC_HISTORY_S, t0 + METRIC_AFTER_S)
        _load_metrics(store, rca_day / "metric", metrics, headers, notes)
        fault_range = TimeRange(_minute_floor(t0), t0 + FAULT_FILES_S)
        _load_minute_files(store, rca_day, fault_range, headers, notes)
        baseline = _load_baseline(store, construct_day, headers, notes)
        references = _load_references(store, rca_day, t0, baseline, headers, notes)
        truth = _ground_truth(root, fault)
        edges = _dependency_edges(rca_day / "metric", headers)
    except BaseException:
        if own:
            store.close()  # nothing half-read: a case that fails to load hands back no store
        raise
    spec = CaseSpec(
        id=fault.case_id,
        incident=Incident(
            id=fault.case_id,
            window=TimeRange(t0 - WINDOW_BEFORE_S, t0 + WINDOW_AFTER_S),
            alert_time=t0,
        ),
        baseline=baseline,
        truth=truth,
        graph_edges=edges,
        notes=tuple(notes),
        references=references,
    )
    return LoadedCase(spec, store, time.perf_counter() - started)


def _rca_dir(root: Path) -> Path:
    return root / "rca_data" if (root / "rca_data").is_dir() else root


def _minute_floor(ts: float) -> float:
    return ts - ts % 60


def _load_metrics(
    store: TelemetryStore,
    metric_dir: Path,
    window: TimeRange,
    headers: nezha_csv.HeaderCache,
    notes: list[str],
) -> None:
    files = sorted(metric_dir.glob("*.csv")) if metric_dir.is_dir() else []
    pod_files = [f for f in files if "PodName" in headers[f]]
    front_files = [f for f in files if "ServiceName" in headers[f]]
    if not pod_files:
        notes.append(f"no per-pod metric files in {metric_dir}")
    # Files with the same header are read in one scan; union_by_name would sniff every file.
    for header, group in nezha_csv.by_header(pod_files, headers).items():
        nezha_csv.insert_metrics(store, group, header, "PodName", window, notes)
    for header, group in nezha_csv.by_header(front_files, headers).items():
        nezha_csv.insert_metrics(store, group, header, "ServiceName", window, notes, "slo:")


def _load_references(
    store: TelemetryStore,
    day_dir: Path,
    t0: float,
    baseline: TimeRange | None,
    headers: nezha_csv.HeaderCache,
    notes: list[str],
) -> tuple[TimeRange, ...]:
    """Load a few other minutes of the day (logs and traces) as reference windows.

    The day's other minutes hold other faults, mostly of other components: a finding that shows
    in most of them is the system's habit. Spread over the day, so that the repeats of one
    fault (often injected a few times in a row) weigh one window, not all."""
    windows = reference_windows(day_dir, t0, baseline)
    if not windows:
        notes.append("no other minutes of the day to judge how usual the findings are")
        return ()
    for window in windows:
        _load_minute_files(store, day_dir, window, headers, notes)
    return windows


def reference_windows(
    day_dir: Path, t0: float, baseline: TimeRange | None
) -> tuple[TimeRange, ...]:
    """Blocks of minutes that have both log and trace files, as long as the fault's own files
    (a count test on fewer minutes has less power, and a finding would look specific only
    because its reference was too short to show it), at least REFERENCE_GAP_S from the fault
    and clear of the baseline, picked like every loader's (datasets.references)."""
    midnight = datetime.fromtimestamp(t0, UTC).replace(hour=0, minute=0, second=0).timestamp()
    day = TimeRange(midnight, midnight + 86400.0)
    logs = {_minute_start(p, t0) for p in _minute_files(day_dir / "log", "log", day)}
    traces = {_minute_start(p, t0) for p in _minute_files(day_dir / "trace", "trace", day)}
    covered = [TimeRange(m, m + 60.0) for m in sorted(logs & traces)]
    # Files hold whole minutes: what to avoid ends at a minute boundary.
    avoid = [TimeRange(_minute_floor(t0) - REFERENCE_GAP_S, _minute_ceil(t0 + REFERENCE_GAP_S))]
    if baseline is not None:
        avoid.append(TimeRange(baseline.start, _minute_ceil(baseline.end)))
    return pick_references(FAULT_FILES_S, covered, avoid, REFERENCES)


def _minute_ceil(ts: float) -> float:
    return ts if ts % 60 == 0 else _minute_floor(ts) + 60.0


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
        if len(parts) < 3 or not all(p.isascii() and p.isdigit() for p in parts[:2]):
            continue
        minute = day.timestamp() + int(parts[0]) * 3600 + int(parts[1]) * 60
        if window.start <= minute < window.end:
            chosen.append(path)
    return chosen


def _load_minute_files(
    store: TelemetryStore,
    day_dir: Path,
    window: TimeRange,
    headers: nezha_csv.HeaderCache,
    notes: list[str],
) -> None:
    logs = _minute_files(day_dir / "log", "log", window)
    traces = _minute_files(day_dir / "trace", "trace", window)
    if not logs:
        notes.append(f"no log files for {window} in {day_dir / 'log'}")
    if not traces:
        notes.append(f"no trace files for {window} in {day_dir / 'trace'}")
    nezha_csv.insert_logs(store, logs, headers, notes)
    nezha_csv.insert_spans(store, traces, headers, notes)


def _load_baseline(
    store: TelemetryStore, construct_day: Path, headers: nezha_csv.HeaderCache, notes: list[str]
) -> TimeRange | None:
    logs = sorted((construct_day / "log").glob("*_log.csv")) if construct_day.is_dir() else []
    traces = sorted((construct_day / "trace").glob("*_trace.csv")) if construct_day.is_dir() else []
    if not logs and not traces:
        notes.append(f"no fault-free data in {construct_day}; baseline is the pre-fault window")
        return None
    extents = [
        nezha_csv.insert_logs(store, logs, headers, notes),
        nezha_csv.insert_spans(store, traces, headers, notes),
    ]
    found = [e for e in extents if e is not None]
    if not found:
        return None
    return TimeRange(min(e.start for e in found), max(e.end for e in found))


def _dependency_edges(
    metric_dir: Path, headers: nezha_csv.HeaderCache
) -> tuple[tuple[str, str], ...]:
    """Caller -> callee edges from a Source,Target[,Weight] CSV, when the day ships one."""
    edges: list[tuple[str, str]] = []
    for path in sorted(metric_dir.glob("*.csv")) if metric_dir.is_dir() else []:
        header = headers[path]
        if "Source" in header and "Target" in header:
            edges += _edges_of(path)
    return tuple(edges)


def _edges_of(path: Path) -> list[tuple[str, str]]:
    edges: list[tuple[str, str]] = []
    line = 1
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            for row in reader:
                line = reader.line_num
                source, target = row.get("Source") or "", row.get("Target") or ""
                if isinstance(source, str) and isinstance(target, str) and source and target:
                    edges.append((service_of_pod(source), service_of_pod(target)))
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path}: not UTF-8 (byte {err.start})") from None
    except csv.Error as err:
        raise DatasetError(f"{path}:{line + 1}: unreadable CSV ({err})") from None
    except OSError as err:
        raise DatasetError(f"{path}: cannot read ({err.strerror or err})") from None
    return edges


def _ground_truth(root: Path, fault: NezhaFault) -> GroundTruth:
    service = service_of_pod(fault.pod)
    labels: dict[str, dict[str, str | None]] = {}
    for path in sorted((root / "construct_data").glob("root_cause_*.json")):
        try:
            labels.update(_ROOT_CAUSES.validate_python(_json(path)))
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "document"
            raise DatasetError(
                f"{path}: expected {{service: {{fault type: indicator}}}} ({where}: {first['msg']})"
            ) from None
    indicator = labels.get(service, {}).get(fault.fault_type)
    return GroundTruth(service, fault.fault_type, indicator)
