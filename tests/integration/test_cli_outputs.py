"""Where a finished investigation goes, and what a model server that never finishes costs it,
through the real CLI. The case is generated and investigated once (memoised, as in
test_cli_llm.py); each test then costs the model task and the writing only."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import warroom.cli.gym
import warroom.cli.incident
import warroom.gym.simulator
from warroom.cli import app

from .test_llm_server import Hostile

pytestmark = pytest.mark.slow

CASE = ["gym", "run", "--topology", "shop", "--fault", "cpu-hog", "--seed", "1"]
runner = CliRunner()


def _once(function: Callable[..., Any]) -> Callable[..., Any]:
    memory: list[Any] = []

    def remembered(*args: Any, **kwargs: Any) -> Any:
        if not memory:
            memory.append(function(*args, **kwargs))
        return memory[0]

    return remembered


@pytest.fixture(scope="module", autouse=True)
def _one_case() -> Iterator[None]:
    """One case for the module, its store kept open across commands (the CLI closes it after
    each; HTML charts read it) and closed at the end."""
    case = warroom.gym.simulator.generate("shop", "cpu-hog", 1)
    close = case.store.close
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(case.store, "close", lambda: None)
        patch.setattr(warroom.gym.simulator, "generate", lambda *args, **kw: case)
        for command in (warroom.cli.gym, warroom.cli.incident):  # each imports the pipeline
            patch.setattr(command, "run_pipeline", _once(command.run_pipeline))
        yield
    close()


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default audit file lands here, not in the repository


def test_missing_parent_folders_of_outputs_are_made(tmp_path: Path) -> None:
    report, page, trace = (
        tmp_path / d / "x" / n for d, n in [("a", "r.md"), ("b", "r.html")] + [("c", "t.json")]
    )
    args = ["--out", str(report), "--html", str(page), "--trace-out", str(trace)]
    result = runner.invoke(app, [*CASE, *args])
    assert result.exit_code == 0, result.output
    assert report.read_text().startswith("#")
    assert "<html" in page.read_text()
    assert json.loads(trace.read_text())["resourceSpans"]
    assert not list(tmp_path.rglob("*.tmp"))  # no scratch file left behind


@pytest.mark.parametrize("option", ["--out", "--html", "--trace-out"])
def test_a_full_disk_is_one_line_and_exit_2(option: str) -> None:
    result = runner.invoke(app, [*CASE, "--json", option, "/dev/full"])
    assert result.exit_code == 2, result.output
    assert f"cannot write {option} /dev/full: no space left on the device" in result.stderr
    assert "Traceback" not in result.output


def test_a_full_disk_leaves_an_old_report_whole(tmp_path: Path) -> None:
    from warroom.report.files import OutputError, write_text

    target = tmp_path / "r.md"
    target.write_text("the old report\n")
    with pytest.raises(OutputError):
        write_text(Path("/dev/full"), "x" * 10, "--out")
    assert target.read_text() == "the old report\n"


def test_gym_export_makes_the_missing_folders_of_its_file(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "cases.jsonl"
    args = ["gym", "export", "--out", str(target), "--suite", "smoke", "--seeds", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert target.read_text().count("\n") >= 1


@pytest.fixture(params=["silent", "drip"])
def hostile(request: pytest.FixtureRequest) -> Iterator[Hostile]:
    server = Hostile(request.param)
    yield server
    server.close()


def test_a_model_server_that_never_finishes_costs_one_deadline(hostile: Hostile) -> None:
    llm = ["--llm", f"{'openai:'}{hostile.url}#m", "--llm-timeout", "2", "--json"]
    started = time.perf_counter()
    result = runner.invoke(app, [*CASE, *llm])
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    assert elapsed < 3.5, elapsed  # the narrate call's 2 s deadline, and the rest is quick
    report = json.loads(result.stdout)
    assert report["narrative"]["source"] == "fallback"
    [rejected] = report["rejected_model_outputs"]
    assert (rejected["task"], rejected["reason"]) == ("narrate", "timeout")
    assert "no answer within 2 s" in rejected["detail"]
