"""Shared pieces of the model-edge and runbook fuzz tests: a hypothesis strategy that damages a
valid file the way a careless or hostile hand would, and the per-call bound every call keeps.

    @given(data=mutated(VALID_JSONL))
    def test_x(data: bytes) -> None:
        with bounded("replay"):
            ...

WARROOM_FUZZ_N scales every run (`make fuzz` sets it to 10,000); the default keeps `make test`
short. With it set, each fuzz test prints its input count and slowest call.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

BOUND_S = 5.0  # one call, as in tests/fuzz/harness.py
LONG_RUN = "WARROOM_FUZZ_N" in os.environ
EXAMPLES = int(os.environ.get("WARROOM_FUZZ_N", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # the bound below is measured per call, not per example with its setup
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,  # a run is reproduced by its seed, not from files under the repository
)

# What a hostile hand inserts: depth bombs, numbers past every limit, non-finite numbers,
# control and undecodable bytes, the syntax of each format, and very long runs.
NASTY = (
    b"[" * 3000,
    b"{" * 3000,
    b'{"a":' * 2000,
    b"]" * 50,
    b"9" * 5000,
    b"1e999",
    b"-1e999",
    b"NaN",
    b"Infinity",
    b"nan",
    b"inf",
    b"\x00",
    b"\xff\xfe",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\r\n",
    b"\n",
    b'"',
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"---",
    b"```",
    b"```warroom-dsl",
    b"```json",
    b"<think>" * 500,
    b"</think>",
    b"### ",
    b"## Checks",
    b"[[",
    b"]]",
    b"=",
    b"'''",
    b'"""',
    b"#",
    b"replay:",
    b"openai:http://127.0.0.1:1/v1#m",
    b"none",
    b"x" * 70_000,
    b" " * 10_000,
)


@dataclass(frozen=True)
class _Edit:
    """One damage: where (a share of the length), what, and how much is cut."""

    at: float
    kind: str
    payload: bytes
    cut: int


EDITS = st.builds(
    _Edit,
    at=st.floats(0.0, 1.0),
    kind=st.sampled_from(["insert", "replace", "delete", "repeat", "flip", "truncate"]),
    payload=st.one_of(st.sampled_from(NASTY), st.binary(min_size=1, max_size=12)),
    cut=st.integers(1, 64),
)


def damage(seed: bytes, edits: list[_Edit]) -> bytes:
    """`seed` with `edits` applied in order."""
    data = bytearray(seed)
    for edit in edits:
        i = min(int(edit.at * len(data)), len(data))
        if edit.kind == "insert":
            data[i:i] = edit.payload
        elif edit.kind == "replace":
            data[i : i + edit.cut] = edit.payload
        elif edit.kind == "delete":
            del data[i : i + edit.cut]
        elif edit.kind == "repeat":
            data[i:i] = bytes(data[i : i + edit.cut]) * min(edit.cut, 200)
        elif edit.kind == "flip" and i < len(data):
            data[i] ^= 1 << (edit.cut % 8)
        elif edit.kind == "truncate":
            del data[i:]
    return bytes(data)


def mutated(*seeds: bytes) -> st.SearchStrategy[bytes]:
    """A seed with one to four edits, or (now and then) arbitrary bytes."""
    damaged = st.builds(damage, st.sampled_from(seeds), st.lists(EDITS, min_size=1, max_size=4))
    return st.one_of(damaged, damaged, damaged, st.binary(max_size=400))


@dataclass
class Tally:
    """How many inputs a fuzz test saw, and its slowest call."""

    inputs: int = 0
    slowest: float = 0.0


TALLIES: dict[str, Tally] = {}


@contextmanager
def bounded(name: str) -> Iterator[None]:
    """Count one call under `name` (one that raised, too) and fail it if it takes longer than
    BOUND_S, whatever it ended in."""
    tally = TALLIES.setdefault(name, Tally())
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - started
        tally.inputs += 1
        tally.slowest = max(tally.slowest, seconds)
        if seconds > BOUND_S:
            raise AssertionError(f"{name}: one call took {seconds:.2f} s (bound {BOUND_S} s)")


def report_tallies(config: pytest.Config, names: list[str]) -> None:
    """On a long run, one line per fuzz test in pytest's own output."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if not LONG_RUN or reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():  # past pytest's capture, to the terminal
        for name in names:
            tally = TALLIES.get(name, Tally())
            reporter.write_line(
                f"fuzz {name}: {tally.inputs} inputs, 0 other errors, slowest call "
                f"{tally.slowest:.3f} s (bound {BOUND_S:g} s)"
            )
