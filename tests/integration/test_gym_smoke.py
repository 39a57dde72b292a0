"""The gym's smoke suite end to end with the real simulator and the real pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from warroom.cli import app
from warroom.gym.bench import run_suite

pytestmark = pytest.mark.slow


def test_smoke_suite_finds_the_culprits_and_raises_no_false_alarm() -> None:
    result = run_suite("smoke", seeds=1)
    summary = result.summary
    assert not [s for s in result.scores if s.error], "no case may fail"
    assert summary["AC@1"] >= 0.75, summary
    assert summary["false_alarm"] in (0.0, None), summary


def test_gym_run_prints_json_with_truth_and_score() -> None:
    runner = CliRunner()
    args = ["gym", "run", "--topology", "shop", "--fault", "network-delay", "--seed", "2", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["culprit"]["service"] == payload["truth"]["service"]
    assert payload["score"]["rank"] == 1


def test_demo_writes_its_report(tmp_path: Path) -> None:
    target = tmp_path / "demo.md"
    result = CliRunner().invoke(app, ["demo", "--out", str(target)])
    assert result.exit_code == 0, result.output
    text = target.read_text()
    assert "Root cause" in text and "shipping" in text
    page = (tmp_path / "demo.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "shipping" in page
    assert page.count("<svg") >= 2, "the path and at least one chart"
    assert str(tmp_path / "demo.html") in result.output.replace("\n", "")


def test_unknown_fault_is_a_one_line_error() -> None:
    result = CliRunner().invoke(app, ["gym", "run", "--topology", "shop", "--fault", "meteor"])
    assert result.exit_code == 2
    assert "cpu-hog" in result.output and "Traceback" not in result.output
