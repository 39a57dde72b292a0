"""`warroom investigate --prometheus URL` end to end against a real Prometheus 2.42: a gym case's
metrics backfilled with promtool, investigated through the source seam, cached, replayed.

The answer must be the one the same metrics give when read from a case folder, a second run
must ask the (by then stopped) server nothing, and --save-case must replay to the same culprit.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from integration.servers import free_port, prometheus
from warroom.bench.live import openmetrics
from warroom.cli import app
from warroom.gym import simulator
from warroom.gym.case import GymCase
from warroom.model import TimeRange
from warroom.pipeline import investigate
from warroom.telemetry.config import build_sources, from_urls
from warroom.telemetry.sources import Batch, Fetcher, Source
from warroom.telemetry.store import TelemetryStore

runner = CliRunner()


@pytest.fixture(scope="module")
def case() -> Iterator[GymCase]:
    """A CPU hog: visible in metrics alone."""
    generated = simulator.generate("shop", "cpu-hog", 1)
    yield generated
    generated.store.close()


def _metrics_only_culprit(case: GymCase) -> str | None:
    """What the pipeline names from the case's metrics alone, read straight from its store."""
    store = TelemetryStore()
    rows = case.store.rows("SELECT service, name, ts, value FROM metrics")
    columns = {k: [r[i] for r in rows] for i, k in enumerate(("service", "name", "ts", "value"))}
    store.insert_columns("metrics", columns)
    found = investigate(case.incident, store)
    store.close()
    return found.report.culprit.service if found.report.culprit else None


def _run(args: list[str | Path]) -> dict[str, Any]:
    result = runner.invoke(app, ["investigate", *map(str, args), "--json"])
    assert result.exit_code == 0, result.output
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


def test_a_live_prometheus_gives_the_case_folders_answer_cached_and_replayable(
    case: GymCase, tmp_path: Path
) -> None:
    incident = case.incident
    window = [
        "--service",
        str(incident.symptom_service),
        "--start",
        str(incident.window.start),
        "--end",
        str(incident.window.end),
        "--alert-time",
        str(incident.alert_time),
        "--references",
        "0",
    ]
    cache, saved = tmp_path / "cache.duckdb", tmp_path / "saved-case"
    with prometheus(tmp_path, backfill=openmetrics(case.store)) as url:
        live = _run(
            ["--prometheus", url, *window, "--cache", str(cache), "--save-case", str(saved)]
        )
        check = runner.invoke(app, ["sources", "check", "--prometheus", url, "--json"])
        assert check.exit_code == 0, check.output
        (probe,) = json.loads(check.stdout)
        assert probe["ok"] and probe["source"] == "prometheus" and probe["table"] == "metrics"
        assert probe["version"].startswith("2.42")
    expected = _metrics_only_culprit(case)
    assert expected == case.truth.service  # the case is one metrics can solve
    assert isinstance(live["culprit"], dict) and live["culprit"]["service"] == expected
    assert not [m for m in live["missing_evidence"] if str(m).startswith("prometheus")]
    # The server is gone: the cache answers, identically, and nothing is missing for it.
    again = _run(["--prometheus", url, *window, "--cache", str(cache)])
    assert again["culprit"] == live["culprit"] and again["confidence"] == live["confidence"]
    assert again["missing_evidence"] == live["missing_evidence"]
    # What was fetched replays offline as a case folder.
    replay = _run(["--dataset", "files", "--root", str(saved)])
    assert isinstance(replay["culprit"], dict)
    assert replay["culprit"]["service"] == expected


def test_a_dead_prometheus_is_missing_evidence_not_a_crash(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    payload = _run(
        ["--prometheus", url, "--service", "api", "--start", "-20m", "--cache", ":memory:"]
    )
    assert payload["culprit"] is None
    check = runner.invoke(app, ["sources", "check", "--prometheus", url])
    assert check.exit_code == 1 and "unreachable" in check.stdout
    missing = " ".join(str(m) for m in payload["missing_evidence"])
    assert "prometheus" in missing and "failed" in missing


def test_bench_live_compares_one_case_through_a_real_prometheus() -> None:
    result = runner.invoke(
        app, ["bench", "live", "--cases", "1", "--backend", "prometheus", "--no-scale", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    (case,) = summary["cases"]
    assert case["same_culprit"] and case["same_path"] and case["same_evidence"]
    assert case["series"] == case["series_store"] and case["requests"] > 0 and not case["missing"]


class _KillsTheServer:
    """A source that SIGKILLs the real Prometheus behind it once a fetch has brought rows."""

    def __init__(self, inner: Source, process: subprocess.Popen[bytes]) -> None:
        self.inner, self.process = inner, process
        self.name, self.table = inner.name, inner.table
        self._lock = threading.Lock()

    def identity(self) -> str:
        return self.inner.identity()

    def fetch(self, window: TimeRange, deadline: float) -> Batch:
        batch = self.inner.fetch(window, deadline)
        with self._lock:
            if batch.rows and self.process.poll() is None:
                self.process.kill()
                self.process.wait(5)
        return batch


def test_killing_the_metrics_server_mid_investigation_still_gives_a_report(
    case: GymCase, tmp_path: Path
) -> None:
    started: list[subprocess.Popen[bytes]] = []
    with prometheus(tmp_path, backfill=openmetrics(case.store), started=started) as url:
        (inner,) = build_sources(from_urls({"prometheus": url}), "test")
        source = _KillsTheServer(inner, started[0])
        store = TelemetryStore()
        fetcher = Fetcher(store, [source], budget_s=30, concurrency=1)
        store.attach(fetcher)
        begun = time.monotonic()
        found = investigate(case.incident, store)
        took = time.monotonic() - begun
    assert started[0].poll() is not None  # it really died
    assert took < 30 and found.report is not None
    degraded = fetcher.degraded()
    assert degraded and all(note.startswith("prometheus:") for note in degraded)
    assert any("failed" in note for note in degraded)
    assert store.count("metrics") > 0  # what came before the kill is kept
