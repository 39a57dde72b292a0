"""Deploy/config markers from a JSON-lines file into the events table; bad lines counted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from warroom.errors import BackendError
from warroom.model import TimeRange
from warroom.telemetry.changes_file import Config, sources
from warroom.telemetry.sources import Fetcher
from warroom.telemetry.store import TelemetryStore

T0 = 1_764_730_800.0  # 2025-12-03T03:00:00Z


def test_markers_in_the_window_become_events_and_bad_lines_are_named(tmp_path: Path) -> None:
    path = tmp_path / "deploys.jsonl"
    path.write_text(
        '{"time": "2025-12-03T03:02:00Z", "service": "checkout", "kind": "deploy", '
        '"description": "v2.3.1"}\n'
        "\n"
        f'{{"time": {T0 + 300}, "service": "payment", "kind": "config"}}\n'
        "not json\n"
        '{"time": "yesterday", "service": "x"}\n'
        f'{{"time": {T0 + 7200}, "service": "late", "kind": "deploy"}}\n'
    )
    (source,) = sources(Config(path=path))
    batch = source.fetch(TimeRange(T0, T0 + 600), time.monotonic() + 5)
    assert batch.columns == {
        "ts": [T0 + 120, T0 + 300],
        "service": ["checkout", "payment"],
        "kind": ["deploy", "config"],
        "description": ["v2.3.1", ""],
    }
    assert batch.degraded == (
        f"changes: {path}: 2 line(s) not a marker {{time, service, kind}} (line 4, 5)",
    )
    store = TelemetryStore()
    Fetcher(store, [source]).cover([TimeRange(T0, T0 + 600)])
    assert [e.service for e in store.events(TimeRange(T0, T0 + 600))] == ["checkout", "payment"]


def test_a_missing_file_is_a_backend_error_naming_it(tmp_path: Path) -> None:
    (source,) = sources(Config(path=tmp_path / "none.jsonl"))
    with pytest.raises(BackendError, match=r"changes: .*none.jsonl"):
        source.fetch(TimeRange(T0, T0 + 600), time.monotonic() + 5)
