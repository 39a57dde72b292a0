"""Careless and hostile options, through the real CLI: each is one line naming the option or
file and exit 2, found before any case is generated or read (so each test takes a moment)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from warroom.cli import app

runner = CliRunner()
GYM = ["gym", "run", "--topology", "shop", "--fault", "cpu-hog", "--planner", "ranking"]
DEEP = "[" * 100_000 + "]" * 100_000


def _refused(args: list[str], *words: str) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output
    return result.output


def _one_line(args: list[str], *words: str) -> None:
    output = _refused(args, *words)
    assert len(output.strip().splitlines()) == 1, output


@pytest.mark.parametrize(
    ("knob", "value", "words"),
    [
        ("--drop-traces", "nan", "knob drop_traces is a share from 0 to 1, not nan"),
        ("--drop-logs", "-0.5", "knob drop_logs is a share from 0 to 1, not -0.5"),
        ("--drop-logs", "7", "not 7.0"),
        ("--clock-skew", "inf", "knob clock_skew_s is at most 1800 s"),
        ("--clock-skew", "-inf", "not -inf"),
        ("--clock-skew", "nan", "not nan"),
    ],
)
def test_nonsense_gym_knobs_are_refused(knob: str, value: str, words: str) -> None:
    _one_line([*GYM, knob, value], words)


@pytest.mark.parametrize(
    ("topology", "words"),
    [
        ("random-100000", "random-N takes 2 to 1000 services, not 100000"),
        ("random-1", "not 1"),
        ("random-" + "9" * 5000, "unknown topology"),
        ("random-\u00b2", "unknown topology"),
    ],
)
def test_a_topology_out_of_bounds_is_refused_at_once(topology: str, words: str) -> None:
    args = ["gym", "run", "--topology", topology, "--fault", "cpu-hog", "--planner", "ranking"]
    _one_line(args, words)


@pytest.mark.parametrize(
    "args",
    [
        ["gym", "bench", "--suite", "smoke", "--seed-offset", "-5"],
        ["gym", "export", "--out", "x.jsonl", "--suite", "smoke", "--seed-offset", "-1"],
        [*GYM, "--seed", "-1"],
    ],
)
def test_a_negative_seed_is_refused(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _refused(args, "Invalid value for '--seed")
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.parametrize("planner", ["", ",", " , "])
def test_an_empty_planner_list_is_refused(planner: str) -> None:
    _one_line(["gym", "bench", "--suite", "smoke", "--planner", planner], "no planner named")


def test_an_empty_planner_name_is_refused() -> None:
    _one_line([*GYM, "--planner", ""], "unknown planner ''")


def test_a_repo_that_is_missing_or_not_git_is_refused(tmp_path: Path) -> None:
    _one_line([*GYM, "--repo", str(tmp_path / "nope")], "--repo", "no such folder")
    plain = tmp_path / "plain"
    plain.mkdir()
    _one_line([*GYM, "--repo", str(plain)], "not a git repository")
    afile = tmp_path / "file"
    afile.write_text("")
    _one_line([*GYM, "--repo", str(afile)], "not a folder")


def test_a_git_repository_is_accepted_as_repo(tmp_path: Path) -> None:
    from warroom.cli.checks import check_repo

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "src").mkdir()
    assert check_repo(tmp_path / "src") == tmp_path / "src"  # a folder inside a work tree


def test_a_missing_runbooks_folder_is_refused(tmp_path: Path) -> None:
    _one_line([*GYM, "--runbooks", str(tmp_path / "nope")], "--runbooks", "no such folder")
    afile = tmp_path / "file"
    afile.write_text("")
    _one_line([*GYM, "--runbooks", str(afile)], "not a folder")


@pytest.mark.parametrize(
    "spec",
    ["openai:http://[::1/v1#m", "openai:http://127.0.0.1:abc/v1#m", "openai:http://\x01/v1#m"],
)
def test_an_llm_spec_that_does_not_parse_is_one_line(spec: str) -> None:
    _one_line([*GYM, "--llm", spec], "bad model spec")


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("calls.jsonl", b"\xff\xfe\x00garbage", "not UTF-8"),
        ("calls.jsonl", ('{"content": ' + DEEP + "}\n").encode(), "nested too deeply"),
    ],
)
def test_a_malformed_replay_file_is_one_line(
    tmp_path: Path, name: str, data: bytes, words: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    _one_line([*GYM, "--llm", f"replay:{path}"], f"replay file {path}", words)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (("a = " + DEEP + "\n").encode(), "nested too deeply"),
    ],
)
def test_a_malformed_llm_config_is_one_line(tmp_path: Path, data: bytes, words: str) -> None:
    path = tmp_path / "llm.toml"
    path.write_bytes(data)
    _one_line([*GYM, "--llm-config", str(path)], f"model config {path}", words)


def test_an_llm_config_that_is_a_folder_is_one_line(tmp_path: Path) -> None:
    _one_line([*GYM, "--llm-config", str(tmp_path)], "not a regular file")


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--llm-timeout", "nan", "--llm-timeout"),
        ("--llm-timeout", "0", "--llm-timeout"),
        ("--llm-timeout", "inf", "--llm-timeout"),
        ("--llm-seconds", "-1", "--llm-seconds"),
        ("--llm-seconds", "inf", "--llm-seconds"),
    ],
)
def test_nonsense_model_deadlines_are_refused(option: str, value: str, words: str) -> None:
    _one_line([*GYM, "--llm", "openai:http://127.0.0.1:9/v1#m", option, value], words)


def test_an_audit_path_that_is_a_folder_or_a_device_is_one_line(tmp_path: Path) -> None:
    script = tmp_path / "calls.jsonl"
    script.write_text('{"content": "{}"}\n')
    llm = ["--llm", f"replay:{script}"]
    _one_line([*GYM, *llm, "--llm-audit", str(tmp_path)], "model audit file", "is a directory")
    _one_line([*GYM, *llm, "--llm-audit", "/dev/full"], "model audit file", "not a regular file")


@pytest.mark.parametrize("option", ["--out", "--html", "--trace-out"])
def test_an_output_that_is_a_folder_is_refused_before_the_work(tmp_path: Path, option: str) -> None:
    _one_line([*GYM, option, str(tmp_path)], f"{option} {tmp_path} is a directory")
    below_a_file = tmp_path / "file"
    below_a_file.write_text("")
    _one_line([*GYM, option, str(below_a_file / "r.md")], f"{below_a_file} is not a folder")


def test_investigate_refuses_a_folder_as_its_report_before_reading_the_case(
    tmp_path: Path,
) -> None:
    args = ["investigate", "--dataset", "nezha", "--root", str(tmp_path / "nope")]
    _one_line([*args, "--out", str(tmp_path)], "--out", "is a directory")


def test_a_pipe_nobody_reads_is_refused_not_waited_on(tmp_path: Path) -> None:
    from warroom.report.files import OutputError, write_text

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="a pipe that nobody reads"):
        write_text(fifo, "report", "--out")


def test_gym_export_refuses_a_folder_for_jsonl_and_a_file_for_otlp(tmp_path: Path) -> None:
    _one_line(["gym", "export", "--out", str(tmp_path), "--suite", "smoke"], "is a directory")
    afile = tmp_path / "file"
    afile.write_text("")
    args = ["gym", "export", "--out", str(afile), "--format", "otlp", "--suite", "smoke"]
    _one_line(args, "is a file; --format otlp writes a folder")
