"""Reading untrusted text and JSON files: every failure is an InputError naming file and place.

    text = read_text(path, MAX_JSON_BYTES)          # UTF-8, a regular file, bounded in size
    doc = load_json(path)                            # no NaN, no 5,000-digit numbers, no bombs
    for line, doc in iter_json(text, str(path)): ... # one document or JSON lines

Python's json module accepts NaN and Infinity, turns a number past the int-string limit into a
ValueError and deep nesting into a RecursionError; here each is a one-line InputError instead.
"""

from __future__ import annotations

import json
import math
import re
import stat
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from warroom.errors import InputError

# Telemetry files (OTLP, Prometheus text) may be large; the small JSON files a case folder or a
# data set ships (incident, events, truth, fault lists, labels) never are.
MAX_TELEMETRY_BYTES = 1 << 30
MAX_JSON_BYTES = 64 << 20
# Digits in one JSON number: a fixed64 has 20; anything far longer is no measurement.
MAX_NUMBER_CHARS = 64
_BLANK = re.compile(r"\s*")


class _BadNumber(ValueError):
    """A JSON number warroom does not accept; carries its text to find its line."""

    def __init__(self, text: str, problem: str) -> None:
        super().__init__(problem)
        self.text = text


def read_bytes(path: Path, max_bytes: int = MAX_TELEMETRY_BYTES) -> bytes:
    """The bytes of a regular file of at most max_bytes; anything else is an InputError."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{path}: not a regular file")
        if info.st_size > max_bytes:
            raise InputError(f"{path}: {info.st_size} bytes, more than the {max_bytes} allowed")
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    if len(data) > max_bytes:  # it grew while being read
        raise InputError(f"{path}: more than the {max_bytes} bytes allowed")
    return data


def decode_utf8(data: bytes, source: str) -> str:
    """Bytes as UTF-8 text (a BOM is dropped); otherwise an InputError with line and byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        bad = data[err.start : err.start + 1]
        raise InputError(
            f"{source}:{line}: not UTF-8 text (byte {err.start}: {bad!r}; save the file as UTF-8)"
        ) from None


def read_text(path: Path, max_bytes: int = MAX_TELEMETRY_BYTES) -> str:
    """A regular file's UTF-8 text, bounded in size."""
    return decode_utf8(read_bytes(path, max_bytes), str(path))


def load_json(path: Path, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The one JSON document in a file."""
    text = read_text(path, max_bytes)
    documents = iter_json(text, str(path))
    first = next(documents, None)
    if first is None:
        raise InputError(f"{path}: empty file, expected a JSON document")
    extra = next(documents, None)
    if extra is not None:
        raise InputError(f"{path}:{extra[0]}: a second JSON document after the first")
    return first[1]


def loads(text: str, source: str) -> Any:
    """One JSON document from a string (the same rules as load_json)."""
    documents = list(iter_json(text, source))
    if len(documents) != 1:
        raise InputError(f"{source}: expected one JSON document, found {len(documents)}")
    return documents[0][1]


def iter_json(text: str, source: str) -> Iterator[tuple[int, Any]]:
    """Each JSON document in text with the line it starts on (one document, or several such as
    JSON lines); NaN, infinities, over-long numbers and too-deep nesting are InputErrors."""
    decoder = json.JSONDecoder(
        parse_int=_int, parse_float=_float, parse_constant=_constant, strict=True
    )
    pos, line, counted = 0, 1, 0
    while True:
        match = _BLANK.match(text, pos)
        pos = match.end() if match else pos
        if pos >= len(text):
            return
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            doc, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            raise InputError(
                f"{source}:{line}: not JSON: {err.msg} (line {err.lineno} column {err.colno})"
            ) from None
        except _BadNumber as err:
            where = text.find(err.text, pos)
            at = text.count("\n", 0, where) + 1 if where >= 0 else line
            raise InputError(f"{source}:{at}: {err}") from None
        except RecursionError:
            raise InputError(
                f"{source}:{line}: JSON nested too deeply to read (over ~900 levels)"
            ) from None
        yield line, doc


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        problem = f"a number with {len(text)} digits (at most {MAX_NUMBER_CHARS})"
        raise _BadNumber(text[:40], problem)
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        problem = f"a number of {len(text)} characters (at most {MAX_NUMBER_CHARS})"
        raise _BadNumber(text[:40], problem)
    value = float(text)
    if not math.isfinite(value):
        raise _BadNumber(text, f"the number {text} is too large for a float")
    return value


def _constant(name: str) -> float:
    raise _BadNumber(name, f"{name} is not JSON (non-finite numbers are not allowed)")


def load_toml(path: Path, what: str, max_bytes: int = MAX_JSON_BYTES) -> dict[str, Any]:
    """A TOML file's tables; InputError saying `what` the file is ("model config ...") and why."""
    try:
        text = read_text(path, max_bytes)
    except InputError as err:
        raise InputError(f"{what} {err}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{what} {path} is not valid TOML: {err}") from None
    except RecursionError:  # tomllib recurses once per level of nested arrays and tables
        raise InputError(f"{what} {path} is nested too deeply to read") from None
    except ValueError:  # an integer past Python's int-string limit (4,300 digits)
        raise InputError(f"{what} {path} holds a number too long to read") from None
