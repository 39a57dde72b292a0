"""Case folders read as untrusted input: values, or an InputError naming the file and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from warroom.errors import DatasetError, InputError
from warroom.intake import case_dir, otlp
from warroom.model import LogRecord, Span
from warroom.telemetry.store import TelemetryStore

T0 = 1_750_000_000.0
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _incident(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": case_dir.FORMAT,
        "id": "inc-1",
        "window": {"start": T0 + 600, "end": T0 + 1200},
        "alert_time": T0 + 900,
        "symptom_service": "frontend",
        "baseline": {"start": T0, "end": T0 + 600},
        "graph_edges": [["frontend", "checkout"]],
    }
    doc.update(fields)
    return doc


def _folder(tmp_path: Path, incident: Any = None, raw: str | None = None) -> Path:
    folder = tmp_path / "case-1"
    folder.mkdir(exist_ok=True)
    text = raw if raw is not None else json.dumps(incident or _incident())
    (folder / case_dir.INCIDENT).write_text(text)
    spans = [
        Span(TRACE, "00f067aa0ba902b7", "", "frontend", "GET /", T0 + 700, T0 + 700.2),
        Span(
            TRACE,
            "00f067aa0ba902b8",
            "00f067aa0ba902b7",
            "checkout",
            "Pay",
            T0 + 700.1,
            T0 + 700.15,
        ),
    ]
    otlp.write_document(otlp.spans_to_otlp(spans), folder / case_dir.TRACES)
    otlp.write_document(
        otlp.logs_to_otlp([LogRecord(T0 + 700, "checkout", "boom", "ERROR")]),
        folder / case_dir.LOGS,
    )
    ms = int(T0 * 1000)
    metrics = f'cpu{{service="checkout"}} 0.5 {ms}\ncpu{{service="checkout"}} +Inf {ms + 60000}\n'
    (folder / case_dir.METRICS).write_text(metrics)
    events = {"events": [{"time": T0 + 650, "service": "checkout", "kind": "deploy"}]}
    (folder / case_dir.EVENTS).write_text(json.dumps(events))
    truth = {
        "format": case_dir.FORMAT,
        "case": {"id": "inc-1", "seed": 1},
        "truth": {
            "service": "checkout",
            "fault": "cpu-hog",
            "fault_type": "cpu",
            "onset": T0 + 690,
            "path": ["checkout", "frontend"],
        },
    }
    (folder / case_dir.TRUTH).write_text(json.dumps(truth))
    return folder


def test_a_valid_folder_loads_whole(tmp_path: Path) -> None:
    loaded = case_dir.load_case(_folder(tmp_path))
    spec = loaded.spec
    assert spec.incident.alert_time == T0 + 900 and spec.graph_edges == (("frontend", "checkout"),)
    assert spec.truth is not None and spec.truth.service == "checkout"
    store = loaded.store
    assert [store.count(t) for t in ("spans", "logs", "metrics", "events")] == [2, 1, 2, 1]
    assert spec.notes == (
        f"{tmp_path / 'case-1' / 'metrics.prom'}: 1 infinite sample value(s) read as missing",
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"id": "x", "window": {"start": NaN, "end": 1}, "alert_time": 1}', "NaN is not JSON"),
        (
            '{"id": "x", "window": {"start": 1, "end": Infinity}, "alert_time": 1}',
            "Infinity is not JSON",
        ),
        (
            '{"id": "x", "window": {"start": 1, "end": 2}, "alert_time": 1e999}',
            "too large for a float",
        ),
        (
            '{"id": "x", "window": {"start": 1, "end": 2}, "alert_time": ' + "9" * 5000 + "}",
            "5000 digits",
        ),
        ('{"id": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
        ('{"id": ' + "[" * 500 + "]" * 500 + "}", "id: Input should be a valid string"),
    ],
)
def test_hostile_incident_json_is_named(tmp_path: Path, raw: str, message: str) -> None:
    with pytest.raises(InputError, match=f"incident.json.*{message}"):
        case_dir.load_case_dir(_folder(tmp_path, raw=raw))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"alert_time": 1e300}, "alert_time: 1e\\+300 is outside 1970..3000"),
        ({"alert_time": 10**30}, "alert_time: 1e\\+30 is outside 1970..3000"),
        ({"window": {"start": -5.0, "end": T0}}, "window.start: -5.0 is outside"),
        ({"window": {"start": T0 + 5, "end": T0}}, "window ends .* before it starts"),
        ({"alert_time": T0 + 5000}, "alert_time .* is outside its window"),
        ({"baseline": {"start": T0, "end": 4e10}}, "baseline.end: 40000000000.0 is outside"),
        ({"alert_time": "soon"}, "alert_time: Input should be a valid number"),
        ({"alert_time": True}, "alert_time: Input should be a valid number"),
        ({"window": [1, 2]}, "window: Input should be a valid dictionary"),
        ({"id": 5}, "id: Input should be a valid string"),
        ({"labels": [["a"]]}, "labels.0"),
        ({"graph_edges": {"a": "b"}}, "graph_edges: Input should be a valid list"),
    ],
)
def test_incident_fields_out_of_range_or_of_the_wrong_type(
    tmp_path: Path, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=f"incident.json: {message}"):
        case_dir.load_case_dir(_folder(tmp_path, _incident(**fields)))


@pytest.mark.parametrize(
    ("events", "message"),
    [
        (
            {"events": [{"time": 1e300, "service": "a", "kind": "deploy"}]},
            r"events\[0\].time: 1e\+300",
        ),
        (
            {"events": [{"time": "NaN", "service": "a", "kind": "deploy"}]},
            "events.0.time: Input should be a valid number",
        ),
        ({"events": {"time": 1}}, "events: Input should be a valid list"),
        ([1, 2], "document: Input should be"),
    ],
)
def test_bad_events_are_named(tmp_path: Path, events: Any, message: str) -> None:
    folder = _folder(tmp_path)
    (folder / case_dir.EVENTS).write_text(json.dumps(events))
    with pytest.raises(InputError, match=f"events.json: {message}"):
        case_dir.load_case_dir(folder)


def test_event_times_that_are_not_json_numbers_are_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / case_dir.EVENTS).write_text(
        '{"events": [{"time": NaN, "service": "a", "kind": "x"}]}'
    )
    with pytest.raises(InputError, match="events.json:1: NaN is not JSON"):
        case_dir.load_case_dir(folder)


@pytest.mark.parametrize(
    ("truth", "message"),
    [
        ({"truth": None}, "truth: Input should be a valid dictionary"),
        (
            {"truth": {"service": 1, "fault": "x", "fault_type": "y", "onset": T0, "path": []}},
            "truth.service",
        ),
        (
            {
                "truth": {
                    "service": "a",
                    "fault": "x",
                    "fault_type": "y",
                    "onset": 1e300,
                    "path": [],
                }
            },
            "truth.onset",
        ),
        ({}, "truth: Field required"),
    ],
)
def test_bad_truth_is_named(tmp_path: Path, truth: Any, message: str) -> None:
    folder = _folder(tmp_path)
    (folder / case_dir.TRUTH).write_text(json.dumps(truth))
    with pytest.raises(InputError, match=f"truth.json: {message}"):
        case_dir.read_truth(folder)


def test_dropped_spans_are_counted_in_the_case_notes(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    spans = [
        Span(TRACE, "00f067aa0ba902b7", "", "frontend", "GET /", T0 + 700, T0 + 699),
        Span(TRACE, "00f067aa0ba902b8", "", "frontend", "GET /", T0 + 700, T0 + 701),
        Span(TRACE, "00f067aa0ba902b8", "", "frontend", "GET /", T0 + 700, T0 + 701),
    ]
    otlp.write_document(otlp.spans_to_otlp(spans), folder / case_dir.TRACES)
    loaded = case_dir.load_case(folder)
    assert loaded.store.count("spans") == 1
    assert any(
        "ending before they start" in n and "1 repeated span" in n for n in loaded.spec.notes
    )


def test_a_conflicting_sample_fails_the_folder_and_loads_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _folder(tmp_path)
    (folder / case_dir.METRICS).write_text(
        'cpu{service="a"} 1 1750000000000\ncpu{service="a"} 20 1750000000000\n'
    )
    closed: list[TelemetryStore] = []
    original = TelemetryStore.close
    monkeypatch.setattr(TelemetryStore, "close", lambda self: (closed.append(self), original(self)))
    with pytest.raises(InputError, match="metrics.prom:2: value 20.0 conflicts"):
        case_dir.load_case_dir(folder)
    assert len(closed) == 1  # the half-filled store is not handed back


def test_a_folder_that_cannot_be_read_is_a_dataset_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: Path) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "iterdir", refuse)
    with pytest.raises(DatasetError, match="cannot list the folder .Permission denied"):
        case_dir.resolve_case_dir(tmp_path, None)


def test_folders_and_cases_that_are_not_there(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        case_dir.resolve_case_dir(tmp_path / "nope", None)
    (tmp_path / "a" / case_dir.INCIDENT).mkdir(parents=True)  # a directory, not a file
    with pytest.raises(DatasetError, match="no case folder"):
        case_dir.resolve_case_dir(tmp_path, None)
    _folder(tmp_path)
    assert case_dir.resolve_case_dir(tmp_path, "1").name == "case-1"
    with pytest.raises(DatasetError, match="unknown case '\u0663'"):
        case_dir.resolve_case_dir(tmp_path, "\u0663")  # an Arabic-Indic digit is not an index
