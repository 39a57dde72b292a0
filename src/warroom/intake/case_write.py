"""Writing a case folder (the layout intake/case_dir.py reads) from any store: a gym case, or
what a live investigation fetched (`investigate --save-case DIR`), so it replays offline.

    write_case_folder(Path("cases/pay-1"), incident, store, baseline, edges)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from warroom.intake import otlp, prom_text
from warroom.intake.case_dir import (
    EVENTS,
    INCIDENT,
    LOGS,
    METRICS,
    TRACES,
    TRUTH,
    EventItem,
    IncidentFile,
    Interval,
)
from warroom.model import Incident, TimeRange
from warroom.telemetry.store import TIME_COLUMNS, TelemetryStore


def write_case_folder(
    out_dir: Path,
    incident: Incident,
    store: TelemetryStore,
    baseline: TimeRange | None = None,
    graph_edges: Sequence[tuple[str, str]] = (),
    references: Sequence[TimeRange] = (),
    truth: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write the folder (created if needed) with everything in the store; returns the files.

    `truth` is the whole truth.json document, written only when given."""
    out_dir.mkdir(parents=True, exist_ok=True)
    everything = coverage(store)
    spans = store.spans(everything) if everything else []
    logs = store.logs(everything) if everything else []
    series = store.metric_series(everything) if everything else []
    head = incident_file(incident, baseline, graph_edges, references)
    (out_dir / INCIDENT).write_text(head.model_dump_json(indent=2) + "\n", encoding="utf-8")
    otlp.write_document(otlp.spans_to_otlp(spans), out_dir / TRACES)
    otlp.write_document(otlp.logs_to_otlp(logs), out_dir / LOGS)
    (out_dir / METRICS).write_text(prom_text.series_to_text(series), encoding="utf-8")
    write_json(out_dir / EVENTS, {"events": _events(store)})
    written = [out_dir / name for name in (INCIDENT, TRACES, LOGS, METRICS, EVENTS)]
    if truth is not None:
        write_json(out_dir / TRUTH, truth)
        written.append(out_dir / TRUTH)
    return written


def incident_file(
    incident: Incident,
    baseline: TimeRange | None,
    graph_edges: Sequence[tuple[str, str]],
    references: Sequence[TimeRange] = (),
) -> IncidentFile:
    """incident.json's content for an incident."""
    return IncidentFile(
        id=incident.id,
        window=Interval(start=incident.window.start, end=incident.window.end),
        alert_time=incident.alert_time,
        symptom_service=incident.symptom_service,
        symptom_metric=incident.symptom_metric,
        labels=list(incident.labels),
        also_alerting=list(incident.also_alerting),
        baseline=Interval(start=baseline.start, end=baseline.end) if baseline else None,
        graph_edges=list(graph_edges),
        references=[Interval(start=r.start, end=r.end) for r in references],
    )


def coverage(store: TelemetryStore) -> TimeRange | None:
    """The time range every table of the store falls in, or None for an empty store."""
    extents = [e for t in TIME_COLUMNS if (e := store.extent(t))]
    if not extents:
        return None
    return TimeRange(min(e.start for e in extents), max(e.end for e in extents))


def write_json(path: Path, payload: Any) -> None:
    """Indented JSON; NaN or infinity is a bug here, not something to write."""
    path.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _events(store: TelemetryStore) -> list[dict[str, Any]]:
    rows = store.rows("SELECT ts, service, kind, description FROM events ORDER BY ts, service")
    return [
        EventItem(time=ts, service=service, kind=kind or "", description=text or "").model_dump()
        for ts, service, kind, text in rows
    ]
