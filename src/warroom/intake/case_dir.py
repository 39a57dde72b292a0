"""Case folders in the interop layout (what `warroom gym export --format otlp` writes), read as
untrusted input.

    <case>/
      incident.json      window, alert time, symptom, baseline, graph (required)
      traces.otlp.json   OTLP/JSON ExportTraceServiceRequest
      logs.otlp.json     OTLP/JSON ExportLogsServiceRequest
      metrics.prom       Prometheus text format 0.0.4: label service (or job), timestamps in ms
      events.json        {"events": [{time, service, kind, description}]}
      truth.json         the answer; only scoring reads it (read_truth)

    folder = resolve_case_dir(Path("cases"), "shop-1")
    case, store = load_case_dir(folder)       # case.incident, case.baseline, case.notes ...

Every file either reads whole or raises InputError naming it (and the line or field): JSON with
NaN, infinities, over-long numbers or depth bombs, fields of the wrong type, times outside
1970..3000, an alert outside its window. What is dropped on the way (spans ending before they
start, repeated span ids, repeated samples, infinite sample values) is counted in case.notes.
A store is handed back only when every file was read; on an error it is closed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from warroom.datasets.base import CaseSpec, GroundTruth, LoadedCase
from warroom.errors import DatasetError, InputError
from warroom.intake import otlp, prom_text
from warroom.intake.files import MAX_JSON_BYTES, load_json
from warroom.model import Event, Incident, TimeRange, time_problem
from warroom.telemetry.store import TelemetryStore

FORMAT = "warroom-case/1"
INCIDENT, TRUTH = "incident.json", "truth.json"
TRACES, LOGS, METRICS, EVENTS = "traces.otlp.json", "logs.otlp.json", "metrics.prom", "events.json"
SERVICE_LABELS = (prom_text.SERVICE_LABEL, "job")  # job: the label Prometheus gives every target

Edges = tuple[tuple[str, str], ...]
# A number, never a string or a boolean; NaN and infinities are refused by the models' config.
Number = Annotated[float, Field(strict=True)]
_M = TypeVar("_M", bound=BaseModel)


class _File(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False, frozen=True)


class Interval(_File):
    """A [start, end] pair of epoch seconds."""

    start: Number
    end: Number


class IncidentFile(_File):
    """incident.json: everything a responder (or another RCA tool) is given besides telemetry."""

    format: str = FORMAT
    id: str
    window: Interval
    alert_time: Number
    symptom_service: str | None = None
    symptom_metric: str | None = None
    labels: list[tuple[str, str]] = []
    also_alerting: list[str] = []  # other services alerting in the same storm
    baseline: Interval | None = None  # a fault-free stretch of the same telemetry
    graph_edges: list[tuple[str, str]] = []  # caller -> callee, as a deployment declares them
    # Other windows of the same telemetry (no fault known there): how usual a finding is.
    references: list[Interval] = []


class EventItem(_File):
    """One change in events.json."""

    time: Number
    service: str
    kind: str
    description: str = ""


class EventsFile(_File):
    """events.json."""

    events: list[EventItem] = []


class TruthAnswer(_File):
    """The answer in truth.json (the gym's GymTruth fields)."""

    service: str | None
    fault: str
    fault_type: str
    onset: Number
    path: tuple[str, ...]
    code_location: str | None = None


class TruthFile(_File):
    """truth.json: the generated case it came from and its answer."""

    format: str = FORMAT
    case: dict[str, str | int | float | bool | None] = {}
    truth: TruthAnswer


@dataclass(frozen=True)
class CaseFolder:
    """What a case folder says besides its telemetry, and what reading it dropped."""

    incident: Incident
    baseline: TimeRange | None
    graph_edges: Edges
    notes: tuple[str, ...] = ()
    references: tuple[TimeRange, ...] = ()


# --- reading ---------------------------------------------------------------------------------


def read_incident(path: Path) -> CaseFolder:
    """incident.json as an Incident, its baseline, its declared graph and reference windows."""
    spec = read_model(path, IncidentFile)
    window = _range(spec.window, "window", path)
    _check_time(spec.alert_time, "alert_time", path)
    if not window.start <= spec.alert_time <= window.end:
        raise InputError(
            f"{path}: alert_time {spec.alert_time} is outside its window {window} "
            f"({spec.window.start} .. {spec.window.end})"
        )
    baseline = _range(spec.baseline, "baseline", path) if spec.baseline else None
    incident = Incident(
        id=spec.id,
        window=window,
        alert_time=spec.alert_time,
        symptom_service=spec.symptom_service,
        symptom_metric=spec.symptom_metric,
        labels=tuple(spec.labels),
        also_alerting=tuple(spec.also_alerting),
    )
    references = tuple(_range(r, f"references[{i}]", path) for i, r in enumerate(spec.references))
    return CaseFolder(incident, baseline, tuple(spec.graph_edges), references=references)


def read_events(path: Path) -> list[Event]:
    """events.json as Events; a time outside 1970..3000 is an error naming the event."""
    items = read_model(path, EventsFile).events
    for i, item in enumerate(items):
        _check_time(item.time, f"events[{i}].time", path)
    return [Event(e.time, e.service, e.kind, e.description) for e in items]


def read_truth(folder: Path) -> TruthAnswer | None:
    """The answer in a case folder's truth.json, or None when the folder has none."""
    path = folder / TRUTH
    if not path.is_file():
        return None
    answer = read_model(path, TruthFile).truth
    _check_time(answer.onset, "truth.onset", path)
    return answer


def read_model(path: Path, model: type[_M]) -> _M:
    """A small JSON file validated against a pydantic model; any problem is an InputError."""
    payload = load_json(path, MAX_JSON_BYTES)
    try:
        return model.model_validate(payload)
    except ValidationError as err:
        raise InputError(f"{path}: {first_error(err)}") from None
    except RecursionError:  # a structure deep enough to exhaust the validator
        raise InputError(f"{path}: JSON nested too deeply") from None


def first_error(err: ValidationError) -> str:
    """One line from a pydantic error: the first bad field and what is wrong with it."""
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "document"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _range(span: Interval, field: str, path: Path) -> TimeRange:
    _check_time(span.start, f"{field}.start", path)
    _check_time(span.end, f"{field}.end", path)
    if span.end < span.start:
        raise InputError(f"{path}: {field} ends ({span.end}) before it starts ({span.start})")
    return TimeRange(span.start, span.end)


def _check_time(value: float, field: str, path: Path) -> None:
    problem = time_problem(value)
    if problem:
        raise InputError(f"{path}: {field}: {problem}")


# --- folders ---------------------------------------------------------------------------------


def resolve_case_dir(root: Path, case: str | None) -> Path:
    """A case folder: `root` itself, or the sub-folder named `case` (or 1-based index)."""
    if not root.is_dir():
        raise DatasetError(f"case folder {root} not found")
    if (root / INCIDENT).is_file():
        return root
    try:
        folders = sorted(p for p in root.iterdir() if (p / INCIDENT).is_file())
    except OSError as err:
        raise DatasetError(f"{root}: cannot list the folder ({err.strerror or err})") from None
    if not folders:
        raise DatasetError(f"{root}: no case folder (a folder with {INCIDENT}) found")
    if case is None:
        return folders[0]
    if case.isascii() and case.isdigit() and 1 <= int(case) <= len(folders):
        return folders[int(case) - 1]
    for folder in folders:
        if folder.name == case:
            return folder
    known = ", ".join(f.name for f in folders[:5]) + (", ..." if len(folders) > 5 else "")
    raise DatasetError(f"unknown case {case[:80]!r} under {root} ({len(folders)} cases: {known})")


def load_case_dir(path: Path) -> tuple[CaseFolder, TelemetryStore]:
    """The folder's incident and a store filled from its telemetry files; never truth.json."""
    if not (path / INCIDENT).is_file():
        raise DatasetError(f"{path}: not a case folder (no {INCIDENT})")
    head = read_incident(path / INCIDENT)
    store, notes = TelemetryStore(), list[str]()
    try:
        fill_store(store, path, notes)
    except BaseException:
        store.close()  # nothing half-read: a folder that fails loads nothing
        raise
    return replace(head, notes=tuple(notes)), store


def load_case(root: Path, case: str | None = None) -> LoadedCase:
    """A case folder as the data sets hand a case over; the truth is only for display."""
    started = time.perf_counter()
    folder = resolve_case_dir(root, case)
    read, store = load_case_dir(folder)
    try:
        answer = read_truth(folder)
    except InputError:
        store.close()
        raise
    truth = None
    if answer is not None and answer.service is not None:
        truth = GroundTruth(answer.service, answer.fault_type, answer.code_location)
    incident = read.incident
    spec = CaseSpec(
        incident.id,
        incident,
        read.baseline,
        truth,
        read.graph_edges,
        read.notes,
        read.references,
    )
    return LoadedCase(spec, store, time.perf_counter() - started)


def fill_store(store: TelemetryStore, path: Path, notes: list[str]) -> None:
    """Read every telemetry file present in the folder into the store."""
    if (path / TRACES).is_file():
        spans = otlp.read_spans(path / TRACES, notes)
        _insert(store, "spans", spans, SPAN_COLUMNS)
    if (path / LOGS).is_file():
        _insert(store, "logs", otlp.read_logs(path / LOGS), LOG_COLUMNS)
    if (path / METRICS).is_file():
        samples = prom_text.read_prom(path / METRICS, notes)
        if samples:
            store.insert_columns("metrics", metric_columns(samples, path / METRICS, notes))
    if (path / EVENTS).is_file():
        _insert(store, "events", read_events(path / EVENTS), EVENT_COLUMNS)


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


def _insert(
    store: TelemetryStore, table: str, rows: Sequence[Any], columns: dict[str, str]
) -> None:
    if rows:
        store.insert_columns(
            table, {column: [getattr(r, attr) for r in rows] for column, attr in columns.items()}
        )


def metric_columns(
    samples: list[prom_text.PromSample], path: Path, notes: list[str] | None = None
) -> dict[str, list[Any]]:
    """Samples as metrics rows: `service` (or `job`) is the service; other labels such as a
    histogram's `le` stay in the name, so each labelled series stays a series of its own.

    NaN is a missing sample (NULL inside); an infinite value is one too, counted in notes.
    """
    columns: dict[str, list[Any]] = {"service": [], "name": [], "ts": [], "value": []}
    infinite = 0
    for s in samples:
        labels = dict(s.labels)
        service = next((labels.pop(k) for k in SERVICE_LABELS if k in labels), None)
        if service is None or s.ts is None:
            missing = "a service label" if service is None else "a timestamp"
            raise InputError(f"{path}: sample {s.name}{braces(s.labels)} has no {missing}")
        columns["service"].append(service)
        columns["name"].append(s.name + braces(labels) if labels else s.name)
        columns["ts"].append(s.ts)
        finite = math.isfinite(s.value)
        infinite += not finite and not math.isnan(s.value)
        columns["value"].append(s.value if finite else None)
    if infinite and notes is not None:
        notes.append(f"{path}: {infinite} infinite sample value(s) read as missing")
    return columns


def braces(labels: dict[str, str]) -> str:
    """A label set as `{k="v",...}`, sorted, values escaped."""
    inner = ",".join(f'{k}="{prom_text.escape_label(v)}"' for k, v in sorted(labels.items()))
    return f"{{{inner}}}"
