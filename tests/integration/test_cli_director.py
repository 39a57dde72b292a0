"""The director from the CLI: --planner director, its trace as OTLP/JSON, bad planner names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from warroom.cli import app

runner = CliRunner()


@pytest.mark.slow
def test_gym_run_with_the_director_writes_its_own_trace(tmp_path: Path) -> None:
    trace = tmp_path / "trace.json"
    args = ["gym", "run", "--topology", "shop", "--fault", "cpu-hog", "--seed", "2"]
    options = ["--planner", "director", "--trace-out", str(trace), "--json"]
    result = runner.invoke(app, [*args, *options])
    assert result.exit_code == 0, result.output
    spans = json.loads(trace.read_text())["resourceSpans"][0]["scopeSpans"][0]["spans"]
    names = {s["name"] for s in spans}
    assert {"investigate", "first-pass", "round-1", "dsl-check"} <= names
    report = json.loads(result.stdout[result.stdout.index("{") :].rsplit("}", 1)[0] + "}")
    assert report["culprit"]["service"] == report["truth"]["service"]
    assert any(note.startswith("director: round 1") for note in report["notes"])


def test_an_unknown_planner_is_one_clear_line() -> None:
    args = ["gym", "run", "--topology", "shop", "--fault", "cpu-hog", "--planner", "oracle"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "unknown planner 'oracle'" in result.output and "Traceback" not in result.output
