"""`warroom dsl ...`: evidence on stdout, one clear error and exit code 2 otherwise."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from warroom.cli import app
from warroom.datasets.base import CaseSpec, LoadedCase
from warroom.dsl.command import build_app
from warroom.model import Incident

from .handbuilt import ALERT, BASELINE, WINDOW, build_store

runner = CliRunner()
opened: list[tuple[str, ...]] = []


def _case() -> LoadedCase:
    incident = Incident("hand-1", WINDOW, ALERT)
    return LoadedCase(CaseSpec("hand-1", incident, BASELINE, None), build_store())


def _dataset(name: str, root: Path, case: str | None) -> LoadedCase:
    opened.append(("dataset", name, str(root), str(case)))
    return _case()


def _gym(topology: str, fault: str, seed: int) -> LoadedCase:
    opened.append(("gym", topology, fault, str(seed)))
    if topology == "nope":
        raise KeyError("unknown topology 'nope'")
    return _case()


dsl = build_app(_dataset, _gym)


def test_eval_prints_the_statement_the_id_and_how_to_re_run() -> None:
    result = runner.invoke(
        dsl, ["eval", "change(metric('db','conns'))", "--gym-topology", "t", "--gym-fault", "f"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith('change(metric("db", "conns")) = 2 (mean 20 in the window')
    assert "dsl-36e0f2fa0fbff4ed" in lines[1]
    assert lines[3].strip() == (
        're-run  warroom dsl eval \'change(metric("db", "conns"))\' '
        "--gym-topology t --gym-fault f --gym-seed 0"
    )


def test_eval_json_has_the_evidence_and_the_case_times() -> None:
    result = runner.invoke(
        dsl,
        ["eval", "top_templates(logs('checkout'), 1)", "--dataset", "x", "--root", "/r", "--json"],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["id"].startswith("dsl-")
    assert payload["type"] == "templates"
    assert payload["value"] == 60.0
    assert payload["templates"] == [{"template": "request <*> handled in <*> ms", "count": 60}]
    assert payload["window"] == [600.0, 1200.0]
    assert payload["rerun"].endswith("--dataset x --root /r")
    assert opened[-1] == ("dataset", "x", "/r", "None")


def test_no_data_is_printed_as_null_in_json() -> None:
    result = runner.invoke(
        dsl,
        ["eval", "mean(metric('nope', 'x'))", "--gym-topology", "t", "--gym-fault", "f", "--json"],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["value"] is None
    assert payload["type"] == "nodata"


def test_errors_are_short_with_a_caret_and_exit_2() -> None:
    result = runner.invoke(
        dsl, ["eval", "mean(logs('checkout'))", "--gym-topology", "t", "--gym-fault", "f"]
    )
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("error: dsl: mean needs metric(...), got a logs selector")
    assert lines[1:] == ["  mean(logs('checkout'))", "       ^"]


def test_syntax_errors_fail_before_a_case_is_opened() -> None:
    before = len(opened)
    result = runner.invoke(dsl, ["eval", "mean(", "--gym-topology", "t", "--gym-fault", "f"])
    assert result.exit_code == 2
    assert "unexpected end of expression" in result.output
    assert len(opened) == before


def test_a_case_must_be_named_once() -> None:
    for options in (
        [],
        ["--dataset", "x", "--root", "/r", "--gym-topology", "t", "--gym-fault", "f"],
    ):
        result = runner.invoke(dsl, ["eval", "1", *options])
        assert result.exit_code == 2
        assert "name one case" in result.output
    result = runner.invoke(dsl, ["eval", "1", "--gym-topology", "nope", "--gym-fault", "f"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: unknown topology 'nope'"


def test_check_prints_the_normalised_expression_and_functions_lists_the_language() -> None:
    result = runner.invoke(app, ["dsl", "check", "mean( metric('a','b') [alert-5m..alert] )"])
    assert result.exit_code == 0
    assert result.output.strip() == 'mean(metric("a", "b")[alert - 5m .. alert])'
    listing = runner.invoke(app, ["dsl", "functions"]).output
    for name in ("metric(service, name)", "corr(a, b, lag=...)", "top_templates(x, [k])"):
        assert name in listing


def test_the_real_cli_evaluates_against_a_gym_case_and_rejects_unknown_datasets() -> None:
    result = runner.invoke(
        app,
        ["dsl", "eval", "count(events()) >= 0", "--gym-topology", "shop", "--gym-fault", "cpu-hog"]
        + ["--gym-seed", "1", "--json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["value"] == 1.0
    result = runner.invoke(app, ["dsl", "eval", "1", "--dataset", "nope", "--root", "/tmp"])
    assert result.exit_code == 2
    assert "unknown dataset 'nope'" in result.output
