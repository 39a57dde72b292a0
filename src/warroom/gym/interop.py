"""Gym cases as files other tools read, and case folders in that layout read back.

    <case>/
      incident.json      what an alert hands over: window, alert time, symptom, baseline, graph
      traces.otlp.json   OTLP/JSON ExportTraceServiceRequest (one document on one line)
      logs.otlp.json     OTLP/JSON ExportLogsServiceRequest
      metrics.prom       Prometheus text format 0.0.4: label service, timestamps in ms
      events.json        deploys, restarts: {"events": [{time, service, kind, description}]}
      truth.json         the answer: only scoring reads it, `load_case_dir` never opens it

Times in the JSON files are epoch seconds (UTC). A tool under evaluation gets the folder without
truth.json; any telemetry file may be missing (that modality then has no data).

    write_case(generate("shop", "cpu-hog", 1), Path("cases/shop-1"))
    incident, store, baseline, edges = load_case_dir(Path("cases/shop-1"))
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from warroom.datasets.base import CaseSpec, GroundTruth, LoadedCase
from warroom.errors import DatasetError, InputError
from warroom.gym.case import GymCase, GymTruth
from warroom.intake import otlp, prom_text
from warroom.model import Incident, TimeRange
from warroom.telemetry.store import TelemetryStore

if TYPE_CHECKING:
    from warroom.gym.bench import Generate, SuiteCase

FORMAT = "warroom-case/1"
INCIDENT, TRUTH = "incident.json", "truth.json"
TRACES, LOGS, METRICS, EVENTS = "traces.otlp.json", "logs.otlp.json", "metrics.prom", "events.json"
SERVICE_LABELS = (prom_text.SERVICE_LABEL, "job")  # job: the label Prometheus gives every target
SPAN_COLUMNS = {
    "trace_id": "trace_id",
    "span_id": "span_id",
    "parent_id": "parent_id",
    "service": "service",
    "pod": "pod",
    "operation": "operation",
    "start_ts": "start",
    "end_ts": "end",
    "error": "error",
    "peer": "peer",
}
LOG_COLUMNS = {
    "ts": "time",
    "service": "service",
    "pod": "pod",
    "level": "level",
    "message": "message",
    "trace_id": "trace_id",
    "span_id": "span_id",
}
EVENT_COLUMNS = {"ts": "time", "service": "service", "kind": "kind", "description": "description"}

Edges = tuple[tuple[str, str], ...]
_M = TypeVar("_M", bound=BaseModel)


class _Range(BaseModel):
    start: float
    end: float


class _IncidentFile(BaseModel):
    """incident.json: everything a responder (or another RCA tool) is given besides telemetry."""

    format: str = FORMAT
    id: str
    window: _Range
    alert_time: float
    symptom_service: str | None = None
    symptom_metric: str | None = None
    labels: list[tuple[str, str]] = []
    also_alerting: list[str] = []  # other services alerting in the same storm
    baseline: _Range | None = None  # a fault-free stretch of the same telemetry
    graph_edges: list[tuple[str, str]] = []  # caller -> callee, as a deployment declares them


class _EventItem(BaseModel):
    time: float
    service: str
    kind: str
    description: str = ""


class _EventsFile(BaseModel):
    events: list[_EventItem] = []


# --- writing ---------------------------------------------------------------------------------


def write_case(case: GymCase, out_dir: Path, variant: str = "") -> list[Path]:
    """Write one case's folder (created if needed) from its store; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    store, everything = case.store, _coverage(case.store)
    spans = store.spans(everything) if everything else []
    logs = store.logs(everything) if everything else []
    series = store.metric_series(everything) if everything else []
    incident = _incident_file(case).model_dump_json(indent=2) + "\n"
    (out_dir / INCIDENT).write_text(incident, encoding="utf-8")
    otlp.write_document(otlp.spans_to_otlp(spans), out_dir / TRACES)
    otlp.write_document(otlp.logs_to_otlp(logs), out_dir / LOGS)
    (out_dir / METRICS).write_text(prom_text.series_to_text(series), encoding="utf-8")
    _write_json(out_dir / EVENTS, {"events": _events(store)})
    _write_json(out_dir / TRUTH, _truth_json(case, variant))
    return [out_dir / name for name in (INCIDENT, TRACES, LOGS, METRICS, EVENTS, TRUTH)]


def export_cases(
    out_dir: Path,
    suite: str,
    seeds: int,
    seed_offset: int = 0,
    progress: Callable[[str], None] | None = None,
    generate: Generate | None = None,
    cases: Sequence[SuiteCase] | None = None,
) -> int:
    """One folder per generated case of a suite under `out_dir`; returns how many were written.

    Folders are named by the incident id, which does not give the fault away; a combination the
    generator rejects is skipped for all its seeds, as the gym bench does.
    """
    from warroom.gym.bench import SUITE_NAMES, check_seed_offset, knobs_label, suites

    check_seed_offset(seed_offset)
    if cases is None and suite not in SUITE_NAMES:
        raise ValueError(f"unknown suite {suite!r} (known: {', '.join(SUITE_NAMES)})")
    if generate is None:
        from warroom.gym.simulator import generate as simulate

        generate = simulate
    out_dir.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for topology, fault, knobs in cases if cases is not None else suites()[suite]:
        rejected = False
        for seed in range(seed_offset, seed_offset + seeds):
            if progress:
                progress(f"{topology}/{fault}/{seed}")
            if rejected:
                continue
            try:
                case = generate(topology, fault, seed, knobs)
            except ValueError:
                rejected = True
                continue
            try:
                write_case(case, out_dir / _unique(case.id, used), knobs_label(knobs))
            finally:
                case.store.close()
    return len(used)


def _unique(name: str, used: set[str]) -> str:
    """`name`, or name-2, name-3... (the hard suite's controls share a topology and seed)."""
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{name}-{n}"
    used.add(candidate)
    return candidate


def _coverage(store: TelemetryStore) -> TimeRange | None:
    """The time range every table of the store falls in, or None for an empty store."""
    extents = [e for t in ("metrics", "logs", "spans", "events") if (e := store.extent(t))]
    if not extents:
        return None
    return TimeRange(min(e.start for e in extents), max(e.end for e in extents))


def _events(store: TelemetryStore) -> list[dict[str, Any]]:
    rows = store.rows("SELECT ts, service, kind, description FROM events ORDER BY ts, service")
    return [
        _EventItem(time=ts, service=service, kind=kind or "", description=text or "").model_dump()
        for ts, service, kind, text in rows
    ]


def _incident_file(case: GymCase) -> _IncidentFile:
    incident = case.incident
    return _IncidentFile(
        id=incident.id,
        window=_Range(start=incident.window.start, end=incident.window.end),
        alert_time=incident.alert_time,
        symptom_service=incident.symptom_service,
        symptom_metric=incident.symptom_metric,
        labels=list(incident.labels),
        also_alerting=list(incident.also_alerting),
        baseline=_Range(start=case.baseline.start, end=case.baseline.end),
        graph_edges=list(case.graph_edges),
    )


def _truth_json(case: GymCase, variant: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "case": {
            "id": case.id,
            "topology": case.topology,
            "fault": case.fault,
            "seed": case.seed,
            "variant": variant,
        },
        "truth": asdict(case.truth),
    }


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n", encoding="utf-8")


# --- reading ---------------------------------------------------------------------------------


def load_case_dir(path: Path) -> tuple[Incident, TelemetryStore, TimeRange | None, Edges]:
    """The incident, a store filled from the telemetry files, the baseline and the graph.

    Reads incident.json and whichever telemetry files exist; never truth.json.
    """
    if not (path / INCIDENT).is_file():
        raise DatasetError(f"{path}: not a case folder (no {INCIDENT})")
    spec = _read_model(path / INCIDENT, _IncidentFile)
    try:
        incident = Incident(
            id=spec.id,
            window=TimeRange(spec.window.start, spec.window.end),
            alert_time=spec.alert_time,
            symptom_service=spec.symptom_service,
            symptom_metric=spec.symptom_metric,
            labels=tuple(spec.labels),
            also_alerting=tuple(spec.also_alerting),
        )
        baseline = TimeRange(spec.baseline.start, spec.baseline.end) if spec.baseline else None
    except ValueError as err:
        raise InputError(f"{path / INCIDENT}: {err}") from None
    store = TelemetryStore()
    try:
        _fill(store, path)
    except BaseException:
        store.close()
        raise
    return incident, store, baseline, tuple(spec.graph_edges)


def read_truth(path: Path) -> GymTruth | None:
    """The answer in a case folder's truth.json, or None when the folder has none."""
    if not (path / TRUTH).is_file():
        return None
    payload = _read_json(path / TRUTH)
    try:
        return TypeAdapter(GymTruth).validate_python(payload["truth"])
    except (KeyError, TypeError, ValidationError) as err:
        raise InputError(f"{path / TRUTH}: not a gym truth ({_first_error(err)})") from None


def resolve_case_dir(root: Path, case: str | None) -> Path:
    """A case folder: `root` itself, or the sub-folder named `case` (or 1-based index)."""
    if not root.is_dir():
        raise DatasetError(f"case folder {root} not found")
    if (root / INCIDENT).is_file():
        return root
    folders = sorted(p for p in root.iterdir() if (p / INCIDENT).is_file())
    if not folders:
        raise DatasetError(f"{root}: no case folder (a folder with {INCIDENT}) found")
    if case is None:
        return folders[0]
    if case.isdigit() and 1 <= int(case) <= len(folders):
        return folders[int(case) - 1]
    for folder in folders:
        if folder.name == case:
            return folder
    known = ", ".join(f.name for f in folders[:5]) + (", ..." if len(folders) > 5 else "")
    raise DatasetError(f"unknown case {case!r} under {root} ({len(folders)} cases: {known})")


def load_case(root: Path, case: str | None = None) -> LoadedCase:
    """A case folder as the CLI's data sets hand it over; the truth is only for display."""
    started = time.perf_counter()
    folder = resolve_case_dir(root, case)
    incident, store, baseline, edges = load_case_dir(folder)
    try:
        truth = read_truth(folder)
    except InputError:
        store.close()
        raise
    ground = None
    if truth is not None and truth.service is not None:
        ground = GroundTruth(truth.service, truth.fault_type, truth.code_location)
    spec = CaseSpec(incident.id, incident, baseline, ground, edges)
    return LoadedCase(spec, store, time.perf_counter() - started)


def _fill(store: TelemetryStore, path: Path) -> None:
    if (path / TRACES).is_file():
        _insert(store, "spans", otlp.read_spans(path / TRACES), SPAN_COLUMNS)
    if (path / LOGS).is_file():
        _insert(store, "logs", otlp.read_logs(path / LOGS), LOG_COLUMNS)
    if (path / METRICS).is_file():
        samples = prom_text.read_prom(path / METRICS)
        if samples:
            store.insert_columns("metrics", _metric_columns(samples, path / METRICS))
    if (path / EVENTS).is_file():
        events = _read_model(path / EVENTS, _EventsFile).events
        _insert(store, "events", events, EVENT_COLUMNS)


def _insert(
    store: TelemetryStore, table: str, rows: Sequence[Any], columns: dict[str, str]
) -> None:
    if rows:
        store.insert_columns(
            table, {column: [getattr(r, attr) for r in rows] for column, attr in columns.items()}
        )


def _metric_columns(samples: list[prom_text.PromSample], path: Path) -> dict[str, list[Any]]:
    """Samples as metrics rows: `service` (or `job`) is the service; other labels such as a
    histogram's `le` stay in the name, so each labelled series stays a series of its own."""
    columns: dict[str, list[Any]] = {"service": [], "name": [], "ts": [], "value": []}
    for s in samples:
        labels = dict(s.labels)
        service = next((labels.pop(k) for k in SERVICE_LABELS if k in labels), None)
        if service is None or s.ts is None:
            missing = "a service label" if service is None else "a timestamp"
            raise InputError(f"{path}: sample {s.name}{_braces(s.labels)} has no {missing}")
        columns["service"].append(service)
        columns["name"].append(s.name + _braces(labels) if labels else s.name)
        columns["ts"].append(s.ts)
        columns["value"].append(None if math.isnan(s.value) else s.value)  # NaN is NULL inside
    return columns


def _braces(labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{prom_text.escape_label(v)}"' for k, v in sorted(labels.items()))
    return f"{{{inner}}}"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not JSON ({err})") from None


def _read_model(path: Path, model: type[_M]) -> _M:
    try:
        return model.model_validate(_read_json(path))
    except ValidationError as err:
        raise InputError(f"{path}: {_first_error(err)}") from None


def _first_error(err: Exception) -> str:
    """One line from a pydantic error: the first bad field and what is wrong with it."""
    if isinstance(err, ValidationError):
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
        return f"{where}: {first['msg']}{more}"
    return str(err)
