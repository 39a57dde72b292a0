"""Gym cases as OTLP/Prometheus files: written, read back identical, investigated the same."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from warroom.cli import app
from warroom.errors import DatasetError, InputError
from warroom.gym import bench, simulator
from warroom.gym.case import GymCase, GymTruth
from warroom.gym.interop import (
    INCIDENT,
    LOGS,
    METRICS,
    TRACES,
    TRUTH,
    export_cases,
    load_case,
    read_truth,
    resolve_case_dir,
    write_case,
)
from warroom.intake.case_dir import load_case_dir as read_case_dir
from warroom.model import Incident, TimeRange
from warroom.pipeline import investigate
from warroom.telemetry.store import TelemetryStore

T0 = 1_750_000_000.0
ORDERED = {
    "metrics": "SELECT service, name, ts, value FROM metrics ORDER BY ALL",
    "logs": "SELECT ts, service, pod, level, message, trace_id, span_id FROM logs ORDER BY ALL",
    "spans": "SELECT * FROM spans ORDER BY ALL",
    "events": "SELECT * FROM events ORDER BY ALL",
}
runner = CliRunner()


def tiny_case(case_id: str = "tiny-1", seed: int = 1) -> GymCase:
    """Two services, a minute of telemetry and a deploy: enough for every file, in milliseconds."""
    store = TelemetryStore()
    times = [T0 + 10 * i for i in range(6)]
    store.insert_columns(
        "metrics",
        {
            "service": ["cart"] * 6 + ["db"] * 6,
            "name": ["cpu"] * 12,
            "ts": times * 2,
            "value": [1.0, 2.0, None, 4.0, 5.0, 6.0] + [0.5] * 6,
        },
    )
    store.insert_columns(
        "spans",
        {
            "trace_id": ["ab" * 16] * 2,
            "span_id": ["01" * 8, "02" * 8],
            "parent_id": ["", "01" * 8],
            "service": ["cart", "db"],
            "pod": ["cart-0", "db-0"],
            "operation": ["GET /cart", "SELECT"],
            "start_ts": [T0 + 1, T0 + 1.1],
            "end_ts": [T0 + 1.5, T0 + 1.4],
            "error": [False, True],
        },
    )
    store.insert_columns(
        "logs",
        {
            "ts": [T0 + 1.2],
            "service": ["db"],
            "pod": ["db-0"],
            "level": ["ERROR"],
            "message": ['deadlock on "orders"\n\tat Db.java:3'],
            "trace_id": ["ab" * 16],
            "span_id": ["02" * 8],
        },
    )
    store.insert_columns(
        "events",
        {"ts": [T0 + 5], "service": ["db"], "kind": ["deploy"], "description": ["v2"]},
    )
    window = TimeRange(T0 + 30, T0 + 60)
    incident = Incident(case_id, window, T0 + 50, "cart", None, (("team", "shop"),))
    truth = GymTruth("db", "bad-deploy", "code-exception", T0 + 30, ("db", "cart"), "Db.query")
    baseline = TimeRange(T0, T0 + 30)
    edges = (("cart", "db"),)
    return GymCase(case_id, "tiny", "bad-deploy", seed, incident, baseline, truth, store, edges)


def _fake_generate(topology: str, fault: str, seed: int, knobs: Any) -> GymCase:
    if fault == "impossible":
        raise ValueError("no place for this fault")
    return tiny_case(f"{topology}-{seed}", seed)


Loaded = tuple[Incident, TelemetryStore, TimeRange | None, tuple[tuple[str, str], ...]]


def load_case_dir(folder: Path) -> Loaded:
    """The folder read by intake/case_dir.py, as the four values a test compares."""
    read, store = read_case_dir(folder)
    return read.incident, store, read.baseline, read.graph_edges


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GymCase, Path, Loaded]]:
    """The demo incident, generated once, written to a folder and loaded back from it."""
    case = simulator.generate("shop", "cpu-hog", 1)
    folder = tmp_path_factory.mktemp("cases") / case.id
    write_case(case, folder)
    loaded = load_case_dir(folder)
    yield case, folder, loaded
    case.store.close()
    loaded[1].close()


# --- the real simulator, end to end (seconds: two investigations of 64k spans) --------------


@pytest.mark.slow
def test_a_written_case_loads_back_identical(shop: tuple[GymCase, Path, Loaded]) -> None:
    case, folder, (incident, store, baseline, edges) = shop
    assert (incident, baseline, edges) == (case.incident, case.baseline, case.graph_edges)
    for table, sql in ORDERED.items():
        assert store.rows(sql) == case.store.rows(sql), table
    assert read_truth(folder) == case.truth


@pytest.mark.slow
def test_the_same_culprit_from_the_files(shop: tuple[GymCase, Path, Loaded]) -> None:
    case, _, (incident, store, baseline, edges) = shop
    from_files = investigate(incident, store, baseline, edges).report
    direct = investigate(case.incident, case.store, case.baseline, case.graph_edges).report
    assert direct.culprit is not None and from_files.culprit is not None
    assert from_files.culprit.service == direct.culprit.service == case.truth.service
    assert from_files.culprit.indicator == direct.culprit.indicator


@pytest.mark.slow
def test_only_truth_json_holds_the_answer(shop: tuple[GymCase, Path, Loaded]) -> None:
    case, folder, _ = shop
    assert case.truth.service is not None
    incident_text = (folder / INCIDENT).read_text()
    assert case.fault not in incident_text and "truth" not in incident_text
    assert json.loads((folder / TRUTH).read_text())["truth"]["service"] == case.truth.service
    # Standard readers can take the telemetry files as they are.
    assert json.loads((folder / TRACES).read_text())["resourceSpans"]
    assert (folder / METRICS).read_text().startswith("# HELP ")


# --- the folder layout with a tiny case -----------------------------------------------------


def test_loading_never_reads_truth_and_tolerates_missing_files(tmp_path: Path) -> None:
    write_case(tiny_case(), tmp_path)
    (tmp_path / TRUTH).write_text("not json")
    (tmp_path / LOGS).unlink()
    incident, store, _, _ = load_case_dir(tmp_path)
    assert incident.labels == (("team", "shop"),)
    assert store.count("logs") == 0 and store.count("spans") == 2 and store.count("events") == 1
    store.close()
    with pytest.raises(InputError, match=r"truth.json:1: not JSON"):
        read_truth(tmp_path)


def test_malformed_files_name_the_file_and_the_field(tmp_path: Path) -> None:
    write_case(tiny_case(), tmp_path)
    incident = json.loads((tmp_path / INCIDENT).read_text())
    incident["window"]["start"] = "yesterday"
    (tmp_path / INCIDENT).write_text(json.dumps(incident))
    with pytest.raises(InputError, match=r"incident.json: window.start: Input should be"):
        load_case_dir(tmp_path)
    incident["window"] = {"start": T0 + 60, "end": T0}
    (tmp_path / INCIDENT).write_text(json.dumps(incident))
    with pytest.raises(InputError, match=r"incident.json: window ends .* before it starts"):
        load_case_dir(tmp_path)


def test_metrics_need_a_service_label_and_a_time(tmp_path: Path) -> None:
    write_case(tiny_case(), tmp_path)
    (tmp_path / METRICS).write_text('cpu{job="cart",zone="a"} 1 1750000000000\ncpu{x="1"} 2 5\n')
    with pytest.raises(InputError, match=r'metrics.prom: sample cpu\{x="1"\} has no a service'):
        load_case_dir(tmp_path)
    (tmp_path / METRICS).write_text('cpu{job="cart",zone="a"} 1 1750000000000\n')
    _, store, _, _ = load_case_dir(tmp_path)
    assert store.rows("SELECT service, name FROM metrics") == [("cart", 'cpu{zone="a"}')]
    store.close()


def test_case_folders_resolve_by_name_or_index(tmp_path: Path) -> None:
    for name in ("b-case", "a-case"):
        write_case(tiny_case(name), tmp_path / name)
    assert resolve_case_dir(tmp_path, None).name == "a-case"
    assert resolve_case_dir(tmp_path, "2").name == "b-case"
    assert resolve_case_dir(tmp_path / "b-case", None).name == "b-case"
    with pytest.raises(DatasetError, match=r"unknown case 'c-case' .*\(2 cases: a-case, b-case"):
        resolve_case_dir(tmp_path, "c-case")
    with pytest.raises(DatasetError, match="not found"):
        resolve_case_dir(tmp_path / "nope", None)
    loaded = load_case(tmp_path, "b-case")
    assert loaded.spec.truth is not None and loaded.spec.truth.service == "db"
    loaded.store.close()
    (tmp_path / "a-case" / TRUTH).unlink()  # what a tool under evaluation is handed
    loaded = load_case(tmp_path, "a-case")
    assert loaded.spec.truth is None and loaded.store.count("spans") == 2
    loaded.store.close()


def test_export_cases_names_folders_by_incident_id(tmp_path: Path) -> None:
    plan = [("tiny", "bad-deploy", None), ("tiny", "impossible", None), ("tiny", "none", None)]
    seen: list[str] = []
    written = export_cases(tmp_path, "ignored", 2, 5, seen.append, _fake_generate, plan)
    assert written == 4 and len(seen) == 6
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["tiny-5", "tiny-5-2", "tiny-6", "tiny-6-2"]
    assert json.loads((tmp_path / "tiny-6-2" / TRUTH).read_text())["case"]["seed"] == 6


# --- the command line -----------------------------------------------------------------------


def test_cli_investigates_a_case_folder(tmp_path: Path) -> None:
    write_case(tiny_case(), tmp_path / "tiny-1")
    args = ["investigate", "--dataset", "files", "--root", str(tmp_path), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["truth"]["service"] == "db"


def test_cli_reports_a_bad_case_folder_in_one_line(tmp_path: Path) -> None:
    write_case(tiny_case(), tmp_path)
    (tmp_path / TRACES).write_text('{"resourceSpans": [{"scopeSpans": [{"spans": [{}]}]}]}\n')
    result = runner.invoke(app, ["investigate", "--dataset", "files", "--root", str(tmp_path)])
    assert result.exit_code == 2
    message = "traces.otlp.json:1: resourceSpans[0].scopeSpans[0].spans[0].traceId: missing"
    assert message.replace(" ", "") in "".join(result.output.split())  # rich wraps long lines
    assert "Traceback" not in result.output


def test_cli_exports_case_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "suites", lambda: {"smoke": [("tiny", "bad-deploy", None)]})
    monkeypatch.setattr(simulator, "generate", _fake_generate)
    out = tmp_path / "cases"
    args = ["gym", "export", "--format", "otlp", "--suite", "smoke", "--out", str(out)]
    result = runner.invoke(app, [*args, "--seeds", "2"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["tiny-0", "tiny-1"]
    assert (out / "tiny-1" / TRACES).is_file()
    bad = runner.invoke(app, ["gym", "export", "--format", "parquet", "--out", str(out)])
    assert bad.exit_code == 2 and "unknown format 'parquet' (known: jsonl, otlp)" in bad.output
