"""Hostile and careless input at the model edge: specs, replay and config files, the audit
path, replies, and the time budget. Each case is one InputError naming the file or field (or
a typed rejection for a model's reply), never a traceback."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from warroom.errors import InputError
from warroom.llm.audit import AuditEntry, AuditLog
from warroom.llm.backend import JsonSchema, Message, parse_spec
from warroom.llm.errors import ModelTimeout
from warroom.llm.narrate import narrate
from warroom.llm.replay import Replay
from warroom.llm.router import Route, Router, load_config
from warroom.llm.tasks import Reason
from warroom.model import Report

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("openai:http://[::1/v1#m", "not a URL"),
        ("openai:http://127.0.0.1:abc/v1#m", "not a URL"),
        ("openai:http://\x00/v1#m", "not a URL"),
        ("openai:http://127.0.0.1:99999/v1#m", "port 99999 is not between 1 and 65535"),
        ("openai:http:///v1#m", "no host"),
        ("openai:http://a b/v1#m", "white space"),
        ("openai:http://127.0.0.1:8000/v1#  ", "no model name"),
    ],
)
def test_a_spec_that_does_not_parse_is_one_input_error(spec: str, words: str) -> None:
    with pytest.raises(InputError, match=words) as caught:
        parse_spec(spec)
    assert "\n" not in str(caught.value) and "expected openai:URL#MODEL" in str(caught.value)


def test_an_api_key_a_header_cannot_carry_is_refused() -> None:
    with pytest.raises(InputError, match="API key"):
        Router.from_spec("openai:http://127.0.0.1:8000/v1#m", api_key="sk-\u00e9\n")


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\xff\xfe\x00\x01garbage", ":1: not UTF-8 text"),
        (b'{"content": "ok"}\n{"content": ' + DEEP.encode() + b"}\n", ":2: JSON nested too deep"),
        (b'{"content": "ok"}\n{"content": 1' + b"0" * 5000 + b"}\n", ":2: a number with 5001"),
        (b'{"content": NaN}\n', ":1: NaN is not JSON"),
        (b'{"content": "a"} {"content": "b"} [\n', ":1: not JSON"),
    ],
)
def test_a_malformed_replay_file_stops_at_the_spec(tmp_path: Path, data: bytes, words: str) -> None:
    path = _file(tmp_path, "calls.jsonl", data)
    with pytest.raises(InputError, match=f"replay file {path}{words}"):
        Router.from_spec(f"replay:{path}")


def test_a_replay_spec_naming_a_folder_or_a_pipe_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a regular file"):
        Router.from_spec(f"replay:{tmp_path}")
    fifo = tmp_path / "calls.jsonl"
    os.mkfifo(fifo)  # opening it to read would wait for a writer forever
    with pytest.raises(InputError, match="not a regular file"):
        Router.from_spec(f"replay:{fifo}")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\xff\xfe\x00\x01garbage", ":1: not UTF-8 text"),
        (b"a = " + DEEP.encode() + b"\n", "nested too deeply"),
        (b"[tasks.narrate]\nmodel = 'none'\ntimeout = nan\n", "tasks.narrate.timeout"),
        (b"[tasks.narrate]\nmodel = 'none'\ntimeout = inf\n", "tasks.narrate.timeout"),
        (b"time_budget = -1\n", "time_budget"),
        (b"\x00\x01\x02", "not valid TOML"),
    ],
)
def test_a_malformed_config_file_is_one_input_error(
    tmp_path: Path, data: bytes, words: str
) -> None:
    path = _file(tmp_path, "llm.toml", data)
    with pytest.raises(InputError, match=words) as caught:
        load_config(path)
    assert str(path) in str(caught.value)


def test_a_config_path_that_is_a_folder_is_one_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=f"model config {tmp_path}: not a regular file"):
        load_config(tmp_path)


def test_an_audit_path_that_is_a_folder_or_a_device_is_refused_up_front(
    tmp_path: Path,
) -> None:
    with pytest.raises(InputError, match="is a directory"):
        Router.from_spec("openai:http://127.0.0.1:8000/v1#m", audit=tmp_path)
    with pytest.raises(InputError, match="not a regular file .a character device"):
        Router.from_spec("openai:http://127.0.0.1:8000/v1#m", audit=Path("/dev/full"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InputError, match="is not a folder"):
        Router.from_spec("openai:http://127.0.0.1:8000/v1#m", audit=blocker / "a" / "b.jsonl")


def test_an_audit_write_that_fails_later_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog.checked(path)
    path.mkdir()  # the path turned into a folder after the check
    entry = AuditEntry("narrate", "narrate.v1", "replay:x", 1, (Message("user", "hi"),), ())
    with pytest.raises(InputError, match=f"cannot write the model audit file {path}"):
        audit.record(entry)


def _router(tmp_path: Path, backend: Replay | Slow, timeout: float = 5.0, **kw: float) -> Router:
    route = Route(backend, timeout=timeout)
    return Router({"narrate": route}, AuditLog(tmp_path / "audit.jsonl"), **kw)  # type: ignore[arg-type]


def test_a_reply_nested_past_the_parser_is_rejected_not_raised(
    tmp_path: Path, report: Report
) -> None:
    replay = Replay.from_jsonl(json.dumps({"content": DEEP}) + "\n" + json.dumps({"content": DEEP}))
    result = narrate(_router(tmp_path, replay), report)
    assert result is not None and result.source == "fallback"
    assert [r.reason for r in result.rejections] == [Reason.INVALID_OUTPUT] * 2
    assert "nested too deeply" in result.rejections[0].detail


class Slow:
    """A backend that uses its whole deadline and then times out, on a fake clock."""

    name = "slow:test"

    def __init__(self) -> None:
        self.now = 0.0
        self.deadlines: list[float] = []

    def clock(self) -> float:
        return self.now

    def complete(
        self,
        messages: Sequence[Message],
        schema: JsonSchema | None,
        timeout: float,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> str:
        self.deadlines.append(timeout)
        self.now += timeout
        raise ModelTimeout(f"{self.name}: no answer within {timeout:g} s")


def test_the_time_budget_bounds_every_deadline_then_stops_the_calls(
    tmp_path: Path, report: Report
) -> None:
    slow = Slow()
    route = Route(slow, timeout=4.0)  # type: ignore[arg-type]
    router = Router({"narrate": route}, None, time_budget=10.0, clock=slow.clock)
    results = [narrate(router, report) for _ in range(4)]
    assert slow.deadlines == [4.0, 4.0, 2.0]  # the third call gets what is left, no more
    assert router.seconds_spent == 10.0 and router.seconds_left == 0.0
    reasons = [[r.reason for r in res.rejections] for res in results if res is not None]
    assert reasons[:3] == [[Reason.TIMEOUT]] * 3  # a timeout is not repaired
    [last] = reasons[3:]
    assert last == [Reason.BUDGET]
    assert "model time budget spent (10.0 of 10 s)" in results[3].rejections[0].detail  # type: ignore[union-attr]


@pytest.mark.parametrize("budget", [0.0, -1.0, float("nan"), float("inf")])
def test_a_time_budget_must_be_a_positive_number(budget: float) -> None:
    with pytest.raises(InputError, match="time budget"):
        Router({}, time_budget=budget)


@pytest.mark.parametrize("timeout", [0.0, -2.0, float("nan"), float("inf"), 1e9])
def test_a_call_deadline_must_be_a_sane_number(timeout: float) -> None:
    with pytest.raises(InputError, match="deadline"):
        Route(Replay.from_jsonl(""), timeout=timeout)


# Found by the fuzz run (test_fuzz.py), kept as plain regression tests.


def test_a_replay_error_that_is_not_a_name_is_an_input_error() -> None:
    with pytest.raises(InputError, match=":1: expected"):
        Replay.from_jsonl('{"error": []}')


def test_a_config_integer_past_the_int_string_limit_is_an_input_error(tmp_path: Path) -> None:
    path = _file(tmp_path, "llm.toml", b"token_budget = " + b"9" * 5000 + b"\n")
    with pytest.raises(InputError, match="a number too long to read"):
        load_config(path)


@pytest.mark.parametrize("number", ["1e999", "7e308 s", "5e" + "9" * 5000, "-2.5E+400 ms"])
def test_a_reply_stating_a_number_past_the_float_range_is_ungrounded(number: str) -> None:
    from warroom.llm.grounding import check
    from warroom.model import Evidence

    result = check(f"the pool grew to {number}", [Evidence("m", "pool 12 -> 95", 95.0, 12.0)])
    assert not result.ok and len(result.ungrounded) == 1


@pytest.mark.parametrize(
    "reply", ["<think>" * 100_000, "```" + " " * 200_000 + "x", '<think>a</think>{"a": 1}']
)
def test_parse_json_is_linear_in_the_reply(reply: str) -> None:
    import time

    from warroom.llm.tasks import parse_json

    started = time.perf_counter()
    try:
        parsed = parse_json(reply)
    except ValueError:
        parsed = None
    assert time.perf_counter() - started < 1.0  # a lazy regex took 250 s on the first one
    assert parsed in (None, {"a": 1})


def test_checking_a_reply_does_not_spend_the_time_budget(tmp_path: Path, report: Report) -> None:
    ticks = iter(range(100))
    line = json.dumps({"content": "<think>" * 1000})
    router = Router(
        {"narrate": Route(Replay.from_jsonl(f"{line}\n{line}"), timeout=5.0)},
        None,
        time_budget=10.0,
        clock=lambda: float(next(ticks)),  # one "second" per reading of the clock
    )
    narrate(router, report)
    assert router.seconds_spent == 2.0  # one per call, none for parsing and grounding
