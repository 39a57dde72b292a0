"""Untrusted JSON and text: every problem is an InputError naming the file and line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from warroom.errors import InputError
from warroom.intake.files import iter_json, load_json, loads, read_text
from warroom.model import LATEST_TIME, iso, time_problem


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": NaN}', "NaN is not JSON"),
        ('{"a": Infinity}', "Infinity is not JSON"),
        ('{"a": -Infinity}', "-Infinity is not JSON"),
        ('{"a": 1e400}', "too large for a float"),
        ('{"a": ' + "7" * 5000 + "}", "a number with 5000 digits"),
        ('{"a": 0.' + "1" * 200 + "}", "a number of 202 characters"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"a": 1', "not JSON"),
    ],
)
def test_hostile_json_is_an_input_error(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        loads(text, "doc.json")


def test_the_error_names_the_line_of_a_bad_number() -> None:
    with pytest.raises(InputError, match=r"doc.json:3: NaN"):
        loads('{\n"a": 1,\n"b": NaN}', "doc.json")


def test_ordinary_json_reads_and_json_lines_count_their_lines() -> None:
    assert loads('{"a": [1, 2.5, "x", null, true]}', "d") == {"a": [1, 2.5, "x", None, True]}
    assert [line for line, _ in iter_json('{"a": 1}\n\n{"b": 2}\n', "d")] == [1, 3]


def test_files_must_be_utf8_regular_and_small(tmp_path: Path) -> None:
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"name": "caf\u00e9"}'.encode("latin-1"))
    with pytest.raises(InputError, match=r"latin.json:1: not UTF-8 text \(byte 13"):
        load_json(latin)
    with pytest.raises(InputError, match="not a regular file"):
        read_text(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        read_text(fifo)  # would block for ever if it were opened
    big = tmp_path / "big.json"
    big.write_text("[" + "0," * 100 + "0]")
    with pytest.raises(InputError, match="bytes, more than the 10 allowed"):
        load_json(big, max_bytes=10)
    with pytest.raises(InputError, match="cannot read"):
        read_text(tmp_path / "missing.json")


def test_one_document_per_json_file(tmp_path: Path) -> None:
    path = tmp_path / "two.json"
    path.write_text('{"a": 1}\n{"b": 2}\n')
    with pytest.raises(InputError, match="two.json:2: a second JSON document"):
        load_json(path)
    path.write_text("  \n")
    with pytest.raises(InputError, match="empty file"):
        load_json(path)
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}')  # a BOM, as some Windows editors write
    assert load_json(path) == {"a": 1}


@pytest.mark.parametrize(
    "ts",
    [1e300, float("nan"), float("inf"), -1e20, 10**5000],
    ids=["1e300", "nan", "inf", "negative", "5000-digits"],
)
def test_iso_never_raises_on_an_impossible_time(ts: float) -> None:
    assert iso(ts).startswith("<invalid time ")


def test_time_problem_names_what_readers_refuse() -> None:
    assert time_problem(1_750_000_000.0) is None and iso(0.0) == "1970-01-01T00:00:00Z"
    assert time_problem(float("nan")) == "nan is not a finite time"
    assert (
        time_problem(10**5000)
        == "an integer of about 5000 digits is outside 1970..3000 (epoch seconds)"
    )
    assert time_problem(True) == "expected a number of epoch seconds, got bool"
    assert time_problem(LATEST_TIME) is not None and time_problem(LATEST_TIME - 1) is None
