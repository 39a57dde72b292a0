"""Runbook files and report files under hostile input: a Runbook (or a Report) or an
InputError, each call within the bound of tests/unit/llm/hostile.py."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import given
from llm.hostile import FUZZ, bounded, mutated, report_tallies

from warroom.errors import InputError
from warroom.runbooks.markdown import to_markdown
from warroom.runbooks.report_json import read_report
from warroom.runbooks.store import read

from .conftest import recorded_reports, recorded_runbooks

RUNBOOKS = [to_markdown(r).encode() for r in list(recorded_runbooks().values())[:4]]
REPORTS = [json.dumps(r).encode() for r in list(recorded_reports().values())[:2]]
NAMES = ["runbook file", "report file"]


@pytest.fixture(scope="module", autouse=True)
def _tallies(pytestconfig: pytest.Config) -> Iterator[None]:
    yield
    report_tallies(pytestconfig, NAMES)


@FUZZ
@given(data=mutated(*RUNBOOKS))
def test_runbook_files_give_a_runbook_or_an_input_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("runbook") / "r.md"
    path.write_bytes(data)
    with bounded("runbook file"):
        try:
            runbook = read(path)
        except InputError as err:
            assert str(err).startswith(str(path)) and "\n" not in str(err)
            return
    assert runbook.checks and 0.0 <= runbook.provenance.confidence <= 1.0


@FUZZ
@given(data=mutated(*REPORTS))
def test_report_files_give_a_report_or_an_input_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("report") / "report.json"
    path.write_bytes(data)
    with bounded("report file"):
        try:
            report = read_report(path)
        except InputError as err:
            assert str(err).startswith(str(path))
            return
    assert report.incident.window.end >= report.incident.window.start
