"""Malformed runbook files and report files: one InputError naming the file (and line or
field) each, through the store and through `warroom runbook`, never a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from warroom.errors import InputError
from warroom.runbooks import RunbookStore
from warroom.runbooks.command import build_app
from warroom.runbooks.markdown import to_markdown
from warroom.runbooks.report_json import read_report

from .conftest import recorded_runbooks

POOL = recorded_runbooks()["shop/db-pool-exhaustion/1"]
TEXT = to_markdown(POOL)
CONFIDENCE = f'"confidence": {json.dumps(POOL.provenance.confidence)}'
CREATED = f'"created": "{POOL.created}"'


def _unused(*_: object) -> None:
    raise AssertionError("no case is opened in these tests")


runbook = build_app(_unused, _unused)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (TEXT.replace('"source": ""', '"source": ' + "[" * 5000 + "]" * 5000), "nested too"),
        (TEXT.replace(CONFIDENCE, '"confidence": NaN'), "holds NaN, not a JSON number"),
        (TEXT.replace(CONFIDENCE, '"confidence": -Infinity'), "holds -Infinity"),
        (TEXT.replace(CONFIDENCE, '"confidence": 1' + "0" * 5000), "a number too long"),
        (TEXT.replace(CONFIDENCE, '"confidence": 7.5'), "provenance.confidence"),
        (TEXT.replace(CREATED, '"created": "99999-99"'), "created: String should match"),
        (TEXT.replace(CREATED, '"created": "2025-13-45T99:00:00Z"'), "created: Value error"),
    ],
)
def test_a_malformed_front_matter_is_one_error_naming_the_file(
    tmp_path: Path, text: str, words: str
) -> None:
    assert text != TEXT
    book = RunbookStore(tmp_path)
    book.path(POOL.id).write_text(text)
    with pytest.raises(InputError, match=words) as caught:
        book.load(POOL.id)
    assert str(caught.value).startswith(f"{book.path(POOL.id)}: ")
    assert "\n" not in str(caught.value)
    result = CliRunner().invoke(runbook, ["show", POOL.id, "--dir", str(tmp_path)])
    assert result.exit_code == 2 and words.split(",")[0] in result.output


def test_latin1_names_the_line(tmp_path: Path) -> None:
    book = RunbookStore(tmp_path)
    data = TEXT.replace("## Remediation", "## Remédiation").encode("latin-1", "replace")
    book.path(POOL.id).write_bytes(data)
    line = TEXT[: TEXT.index("## Remediation")].count("\n") + 1
    with pytest.raises(InputError, match=f"{POOL.id}.md:{line}: not UTF-8 text"):
        book.load(POOL.id)


def test_a_runbook_folder_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    afile = tmp_path / "books"
    afile.write_text("")
    for args in (["list"], ["show", POOL.id]):
        result = CliRunner().invoke(runbook, [*args, "--dir", str(afile)])
        assert result.exit_code == 2, result.output
        assert f"runbook folder {afile} is a file, not a folder" in result.output


def test_a_pipe_among_the_runbooks_is_not_read(tmp_path: Path) -> None:
    book = RunbookStore(tmp_path)
    book.save(POOL)
    os.mkfifo(tmp_path / "stuck.md")  # reading it would wait for a writer forever
    assert [r.id for r in book.list()] == [POOL.id]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"confidence": 1' + b"0" * 5000 + b"}", "a number too long"),
        (b'{"a": 1,\n "b": }', ":2: not a JSON report"),
        (b"\xff\xfe{}", ":1: not UTF-8 text"),
    ],
)
def test_a_malformed_report_file_is_one_error_naming_it(
    tmp_path: Path, data: bytes, words: str
) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(data)
    with pytest.raises(InputError, match=words) as caught:
        read_report(path)
    assert str(caught.value).startswith(str(path))
    result = CliRunner().invoke(runbook, ["save", "--from-report", str(path), "--dir", "x"])
    assert result.exit_code == 2 and str(path) in result.output


def test_a_report_path_that_is_a_folder_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a regular file"):
        read_report(tmp_path)


def test_saving_into_a_folder_that_is_a_file_is_one_error(tmp_path: Path) -> None:
    afile = tmp_path / "books"
    afile.write_text("")
    with pytest.raises(InputError, match="is a file, not a folder"):
        RunbookStore(afile).save(POOL)
    deeper = RunbookStore(afile / "sub")
    with pytest.raises(InputError, match=f"{afile} is not a folder"):
        deeper.save(POOL)
