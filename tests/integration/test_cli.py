"""The command line as a user meets it: help, clear errors without tracebacks, JSON output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from warroom.cli import app

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("investigate", "bench", "demo"):
        assert command in result.output


def test_missing_root_is_a_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["investigate", "--dataset", "nezha", "--root", str(tmp_path / "nope")]
    )
    assert result.exit_code == 2
    assert "not found" in result.output
    assert "Traceback" not in result.output


def test_unknown_baseline_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "nezha", "--root", str(tmp_path), "--baseline", "magic"])
    assert result.exit_code == 2
    assert "unknown baseline" in result.output


@pytest.mark.slow
def test_investigate_json(nezha_root: Path) -> None:
    result = runner.invoke(
        app, ["investigate", "--dataset", "nezha", "--root", str(nezha_root), "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["culprit"]["service"] == payload["truth"]["service"]
    assert payload["culprit"]["evidence"], "the culprit must come with its evidence"
