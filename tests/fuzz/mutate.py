"""A seeded mutator over valid inputs: what a careless or hostile file looks like.

Every mutation is drawn from a `random.Random`, so an input is reproduced from its reader name,
run seed and index alone. Kinds: JSON values swapped for nasty ones (NaN, Infinity, 1e300,
5,000-digit numbers, wrong types, deep nesting, repeated elements), CSV headers and cells
(hostile SQL names, quotes, 200,000-character fields, impossible times, repeated rows), text
lines, raw bytes (flips, truncation, junk, Latin-1 and UTF-16 re-encodings, a BOM) and the
layout itself (a file removed, emptied or replaced by a folder).
"""

from __future__ import annotations

import copy
import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

HOSTILE_NAME = "x'); COPY (SELECT 42) TO '{pwned}'; --"
DEEP = 3000  # deeper than the JSON decoder's recursion limit
NASTY_JSON: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1e300,
    -1e300,
    2**64,
    10**30,
    0.5,
    "",
    "NaN",
    "Infinity",
    "9" * 5000,
    "ff" * 3000,
    "x" * 200_000,
    "\u00e9\u0000\ud7ff",
    "٣",
    [],
    {},
    [1, 2],
    {"a": 1},
    {"stringValue": "s"},
    {"kvlistValue": {"values": 5}},
    {"arrayValue": {"values": "abc"}},
]
RAW_JSON = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "9" * 5000,
    "-" + "9" * 30,
    "0." + "1" * 300,
    "[" * DEEP + "]" * DEEP,
    '{"a":' * DEEP + "1" + "}" * DEEP,
]
NASTY_CELLS = [
    "",
    "0",
    "-1",
    "1e300",
    "-1e300",
    "inf",
    "-inf",
    "nan",
    "NaN",
    "soon",
    "٣",
    "9" * 5000,
    "x" * 200_000,
    '"',
    '"unterminated',
    "a,b",
    "\x00",
    "caf\u00e9",
    "1674984600",
    "root",
    "2023-01-29 09:30:00",
    "9999-12-31 23:59:59",
    "1e18",
    "-6795364578871345152",
]
NASTY_LINES = [
    "",
    "#",
    "# TYPE",
    "# TYPE cpu bogus",
    "# HELP cpu a\\qb",
    "cpu",
    "cpu 1 2 3",
    'cpu{service="a"} 1 99999999999999999',
    'cpu{service="a"} 1 -1',
    'cpu{service="a"} NaN',
    'cpu{service="a",service="b"} 1',
    'cpu{service="a\\q"} 1',
    "cpu{" + "a" * 100_000,
    'cpu{service="' + "x" * 200_000 + '"} 1 1750000000000',
    "cpu 1e999 1750000000000",
    "cpu " + "9" * 5000,
    "cpu 1 " + "9" * 5000,
    'cpu{service="a"} 7 1750000000000',
]


class Mutator:
    """Mutations drawn from one seeded random source."""

    def __init__(self, rng: random.Random, pwned: Path) -> None:
        self.rng = rng
        self.pwned = pwned  # where an injected COPY would write: must never exist

    def nasty_json(self) -> Any:
        """A fresh copy of a nasty JSON value (a shared one would change across inputs)."""
        return copy.deepcopy(self.rng.choice(NASTY_JSON))

    def hostile_name(self) -> str:
        """A column or label name that breaks SQL spliced together from names."""
        return self.rng.choice(
            [HOSTILE_NAME.format(pwned=self.pwned), 'a"b', "c'd", "", "Time", "ts", "service"]
        )

    # --- files -------------------------------------------------------------------------------

    def file(self, path: Path) -> None:
        """Mutate one file in place by its kind (or as bytes, one time in five)."""
        data = path.read_bytes()
        if self.rng.random() < 0.2:
            path.write_bytes(self.damage(data))
            return
        suffix = path.suffix
        text = data.decode("utf-8", errors="replace")
        if suffix == ".json":
            out = self.json_text(text)
        elif suffix == ".csv":
            out = self.csv_text(text)
        else:
            out = self.lines(text)
        path.write_bytes(self.encode(out))

    def layout(self, files: list[Path]) -> None:
        """Break the layout: a file removed, emptied, replaced by a folder or a FIFO-like dir."""
        path = self.rng.choice(files)
        action = self.rng.randrange(3)
        if action == 0:
            path.unlink()
        elif action == 1:
            path.write_bytes(b"")
        else:
            path.unlink()
            path.mkdir()

    # --- bytes and encodings -----------------------------------------------------------------

    def damage(self, data: bytes) -> bytes:
        """Byte-level damage."""
        rng, out = self.rng, bytearray(data)
        kind = rng.randrange(6)
        if kind == 0 and out:  # flip bytes
            for _ in range(rng.randint(1, 8)):
                out[rng.randrange(len(out))] = rng.randrange(256)
        elif kind == 1:  # truncate
            del out[rng.randrange(len(out) + 1) :]
        elif kind == 2:  # junk inserted
            at = rng.randrange(len(out) + 1)
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        elif kind == 3 and out:  # a range repeated
            a = rng.randrange(len(out))
            b = min(len(out), a + rng.randint(1, 200))
            out[b:b] = out[a:b] * rng.randint(1, 20)
        elif kind == 4:
            return b"\xef\xbb\xbf" + bytes(out)
        else:
            return self.encode(data.decode("utf-8", errors="replace"), force=True)
        return bytes(out)

    def encode(self, text: str, force: bool = False) -> bytes:
        """Mostly UTF-8; sometimes Latin-1 (with an accent added) or UTF-16."""
        roll = self.rng.random()
        if force or roll < 0.06:
            if self.rng.random() < 0.5:
                at = self.rng.randrange(len(text) + 1)
                accented = text[:at] + "caf\u00e9" + text[at:]
                return accented.encode("latin-1", errors="replace")
            return text.encode("utf-16")
        return text.encode("utf-8", errors="surrogatepass")

    # --- JSON --------------------------------------------------------------------------------

    def json_text(self, text: str) -> str:
        """A JSON document (or JSON lines) with one to three values made nasty."""
        lines = [line for line in text.splitlines() if line.strip()]
        try:
            docs = [json.loads(line) for line in lines] if len(lines) > 1 else [json.loads(text)]
        except ValueError:
            return self.lines(text)
        raws: dict[str, str] = {}
        for _ in range(self.rng.randint(1, 3)):
            doc_index = self.rng.randrange(len(docs))
            docs[doc_index] = self._json_value(docs[doc_index], raws)
        out = "\n".join(json.dumps(d) for d in docs)
        for marker, raw in raws.items():
            out = out.replace(json.dumps(marker), raw)
        return out

    def _json_value(self, doc: Any, raws: dict[str, str]) -> Any:
        slots = _slots(doc)
        if not slots:
            return self.nasty_json()
        parent, key = self.rng.choice(slots)
        kind = self.rng.randrange(8)
        if kind == 0:
            marker = f"@@raw{len(raws)}@@"
            raws[marker] = self.rng.choice(RAW_JSON)
            parent[key] = marker
        elif kind == 1 and isinstance(parent, dict):
            del parent[key]
        elif kind == 2 and isinstance(parent, list):
            parent.insert(key, json.loads(json.dumps(parent[key])))  # a repeated element
        elif kind == 3:
            parent[key] = _nested(parent[key], self.rng.randint(30, 60), self.rng)
        elif kind == 4 and isinstance(parent, dict) and len(parent) > 1:
            other = self.rng.choice([k for k in parent if k != key])
            parent[key], parent[other] = parent[other], parent[key]  # e.g. start <-> end
        elif (
            kind == 5 and isinstance(parent[key], int | float) and not isinstance(parent[key], bool)
        ):
            parent[key] = self.rng.choice([-parent[key], parent[key] * 1e9, parent[key] / 1e9])
        elif kind == 6 and isinstance(parent[key], str) and len(parent[key]) < 1000:
            parent[key] = self.rng.choice([parent[key] * 1000, parent[key][::-1], "", "9" * 5000])
        else:
            parent[key] = self.nasty_json()
        return doc

    # --- CSV ---------------------------------------------------------------------------------

    def csv_text(self, text: str) -> str:
        """A CSV with its header or some rows and cells damaged."""
        rows = text.splitlines()
        for _ in range(self.rng.randint(1, 3)):
            rows = self._csv_once(rows)
        ending = self.rng.choice(["\n"] * 8 + ["\r\n", "\r"])
        return ending.join(rows) + ending

    def _csv_once(self, rows: list[str]) -> list[str]:
        rng = self.rng
        if not rows:
            return [self.hostile_name()]
        index = rng.randrange(len(rows))
        cells = rows[index].split(",")
        kind = rng.randrange(9)
        if kind == 0 or (kind == 1 and index == 0):  # a header name
            header = rows[0].split(",")
            at = rng.randrange(len(header))
            name = self.hostile_name()
            header[at] = '"' + name.replace('"', '""') + '"' if rng.random() < 0.7 else name
            rows[0] = ",".join(header)
        elif kind == 1:  # a duplicated header name
            header = rows[0].split(",")
            header[rng.randrange(len(header))] = rng.choice(header)
            rows[0] = ",".join(header)
        elif kind in (2, 3, 4):  # a cell
            cells[rng.randrange(len(cells))] = rng.choice(NASTY_CELLS)
            rows[index] = ",".join(cells)
        elif kind == 5:  # a row repeated, maybe changed
            copy = list(cells)
            if rng.random() < 0.5:
                copy[rng.randrange(len(copy))] = rng.choice(NASTY_CELLS)
            rows.insert(index, ",".join(copy))
        elif kind == 6 and len(rows) > 1:
            del rows[index]
        elif kind == 7:  # a cell added or removed
            if rng.random() < 0.5:
                cells.append("extra")
            else:
                cells.pop()
            rows[index] = ",".join(cells)
        else:  # two cells swapped (start after end, a time where a pod was)
            a, b = rng.randrange(len(cells)), rng.randrange(len(cells))
            cells[a], cells[b] = cells[b], cells[a]
            rows[index] = ",".join(cells)
        return rows

    # --- text lines --------------------------------------------------------------------------

    def lines(self, text: str) -> str:
        """Text with lines replaced, repeated with another value, or added."""
        rows = text.split("\n")
        for _ in range(self.rng.randint(1, 3)):
            index = self.rng.randrange(len(rows))
            kind = self.rng.randrange(4)
            if kind == 0:
                rows[index] = self.rng.choice(NASTY_LINES)
            elif kind == 1:
                rows.insert(index, self.rng.choice(NASTY_LINES))
            elif kind == 2 and rows[index] and not rows[index].startswith("#"):
                parts = rows[index].rsplit(" ", 2)
                parts[-2 if len(parts) > 2 else -1] = self.rng.choice(["1", "2e9", "NaN", "+Inf"])
                rows.insert(index, " ".join(parts))  # the same sample with another value
            else:
                rows[index] = rows[index] * self.rng.randint(2, 50)
        return "\n".join(rows)


def _slots(doc: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON value, outermost first."""
    found: list[tuple[Any, Any]] = []
    stack = [doc]
    while stack and len(found) < 5000:
        node = stack.pop()
        items = (
            node.items()
            if isinstance(node, dict)
            else enumerate(node)
            if isinstance(node, list)
            else ()
        )
        for key, value in items:
            found.append((node, key))
            stack.append(value)
    return found


def _nested(value: Any, depth: int, rng: random.Random) -> Any:
    """`value` wrapped `depth` times, as lists or as OTLP kvlist AnyValues."""
    wrap: Callable[[Any], Any]
    if rng.random() < 0.5:
        wrap = lambda v: {"kvlistValue": {"values": [{"key": "k", "value": v}]}}  # noqa: E731
    else:
        wrap = lambda v: [v]  # noqa: E731
    for _ in range(depth):
        value = wrap(value)
    return value


def copy_seed(seed: Path, work: Path) -> Path:
    """A fresh copy of a seed (a file or a folder) under `work`."""
    target = work / seed.name
    if seed.is_dir():
        shutil.copytree(seed, target)
    else:
        shutil.copy2(seed, target)
    return target
