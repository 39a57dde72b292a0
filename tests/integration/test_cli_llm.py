"""`warroom gym run --json --llm replay:FILE` end to end: the real simulator and pipeline, the
replay double as the model. Whatever the model does (bad JSON, a timeout, a made-up number, a
good reply), the JSON report holds a narrative and says which model outputs were rejected and
why. (The planted-secret check is in tests/unit/llm/test_replay_scenarios.py: gym cases hold
no secrets.)

The case is generated and investigated once, by the first command; the later commands reuse
that case and pipeline result (memoised below), so each one costs the CLI and the model task
only, not another ~5 s of simulation and investigation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import warroom.cli.gym
import warroom.cli.incident
import warroom.gym.simulator
from warroom.cli import app

pytestmark = pytest.mark.slow

CASE = ["gym", "run", "--topology", "shop", "--fault", "cpu-hog", "--seed", "1", "--json"]
NOT_JSON = {"content": "Sure! Here is the summary: {summary: shipping ..."}


def _run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [*CASE, *args])
    return result.exit_code, result.stdout, result.stderr


def _investigate(tmp_path: Path, *lines: dict[str, str]) -> tuple[dict[str, Any], list[Any]]:
    """The JSON report of the case with the model replaying `lines`, and the audit entries."""
    script = tmp_path / "calls.jsonl"
    script.write_text("".join(json.dumps(line) + "\n" for line in lines))
    audit = tmp_path / "audit.jsonl"
    code, stdout, stderr = _run(tmp_path, "--llm", f"replay:{script}", "--llm-audit", str(audit))
    assert code == 0, stderr
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    return json.loads(stdout), entries


def _content(narrative: dict[str, Any]) -> dict[str, str]:
    return {"content": json.dumps(narrative)}


def _once(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function`, called for real the first time and answering from memory after that."""
    memory: list[Any] = []

    def remembered(*args: Any, **kwargs: Any) -> Any:
        if not memory:
            memory.append(function(*args, **kwargs))
        return memory[0]

    return remembered


@pytest.fixture(scope="module", autouse=True)
def _one_case() -> Iterator[None]:
    """Every command of this module gets the same generated case and pipeline result (the
    CLI closes the case's store after the first run; the memoised result needs it no more)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(warroom.gym.simulator, "generate", _once(warroom.gym.simulator.generate))
        for command in (warroom.cli.gym, warroom.cli.incident):  # each imports the pipeline
            patch.setattr(command, "run_pipeline", _once(command.run_pipeline))
        yield


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may land in the repository (.warroom/)


@pytest.fixture(scope="module")
def plain() -> dict[str, Any]:
    """The report without a model (the default --llm none)."""
    result = CliRunner().invoke(app, CASE)
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_without_a_model_the_report_has_the_template_narrative(plain: dict[str, Any]) -> None:
    culprit = plain["culprit"]
    assert culprit["service"] and culprit["fault_type"] and culprit["path"]
    assert isinstance(plain["confidence"], float)
    narrative = plain["narrative"]
    assert narrative["source"] == "template" and narrative["steps"]
    assert narrative["summary"].startswith(culprit["service"])
    assert f"{plain['confidence']:.2f}" in narrative["summary"]
    assert plain["rejected_model_outputs"] == []
    assert not any(n.startswith("llm ") for n in plain["notes"])
    for e in culprit["evidence"]:
        assert e["id"] and isinstance(e["value"], float) and e["expression"]
    assert not Path(".warroom").exists()


def test_invalid_json_twice_ends_in_the_fallback(tmp_path: Path, plain: dict[str, Any]) -> None:
    data, audit = _investigate(tmp_path, NOT_JSON, NOT_JSON)
    assert data["narrative"] == dict(plain["narrative"], source="fallback")
    rejected = data["rejected_model_outputs"]
    assert [(r["task"], r["reason"], r["attempt"]) for r in rejected] == [
        ("narrate", "invalid_output", 1),
        ("narrate", "invalid_output", 2),
    ]
    assert all(r["detail"].startswith("not JSON") for r in rejected)
    assert [e["attempt"] for e in audit] == [1, 2]
    assert data["culprit"] == plain["culprit"]  # the model never changes the answer


def test_a_timeout_ends_in_the_fallback(tmp_path: Path, plain: dict[str, Any]) -> None:
    data, audit = _investigate(tmp_path, {"error": "timeout"})
    assert data["narrative"]["source"] == "fallback"
    [rejected] = data["rejected_model_outputs"]
    assert rejected["reason"] == "timeout" and "timeout" in rejected["detail"]
    [entry] = audit
    assert entry["failure"] and entry["response"] is None


def test_a_number_not_in_the_evidence_is_rejected(tmp_path: Path, plain: dict[str, Any]) -> None:
    service = plain["culprit"]["service"]
    lie = {"summary": f"CPU of {service} rose 987.6 % in a minute.", "steps": ["Restart it."]}
    data, audit = _investigate(tmp_path, _content(lie), _content(lie))
    assert data["narrative"]["source"] == "fallback"
    assert "987.6" not in json.dumps(data["narrative"])
    rejected = data["rejected_model_outputs"]
    assert [r["reason"] for r in rejected] == ["ungrounded_number", "ungrounded_number"]
    assert "987.6 %" in rejected[0]["detail"]
    assert all(str(e["rejection"]).startswith("ungrounded_number") for e in audit)


def test_a_grounded_narrative_is_used(tmp_path: Path, plain: dict[str, Any]) -> None:
    culprit = plain["culprit"]
    good = {
        "summary": f"{culprit['service']} ({culprit['fault_type']}) changed first, with "
        f"confidence {plain['confidence']:.2f}, and the slowdown spread along "
        f"{' -> '.join(culprit['path'])}.",
        "steps": [f"Check the CPU limits of {culprit['service']}."],
    }
    data, audit = _investigate(tmp_path, _content(good))
    assert data["narrative"] == dict(good, source="model")
    assert data["rejected_model_outputs"] == []
    assert any(n.startswith("llm narrate: model output (replay:") for n in data["notes"])
    [entry] = audit
    assert entry["task"] == "narrate" and entry["rejection"] is None
    assert culprit["evidence"][0]["statement"] in entry["messages"][1]["content"]


def test_a_bad_model_spec_or_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "llm.toml"
    config.write_text('[tasks.narrate]\nmodel = "nowhere"\n')
    for args in (
        ["--llm", "gpt:4"],
        ["--llm", "replay:missing.jsonl"],
        ["--llm-config", str(config)],
        ["--llm-config", str(tmp_path / "absent.toml")],
        ["--llm", "replay:x", "--llm-config", str(config)],
    ):
        code, stdout, stderr = _run(tmp_path, *args)
        assert code == 2, args
        assert stdout == "" and stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
