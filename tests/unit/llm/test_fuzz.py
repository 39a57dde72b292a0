"""The model edge under hostile input: replay files, the TOML config, spec strings, and the
replies a model sends. Only warroom's own errors may escape (or, for a reply, a rejection and
the fallback), and each call stays within the bound of hostile.py."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warroom.errors import InputError, WarroomError
from warroom.llm.audit import AuditLog
from warroom.llm.backend import parse_spec
from warroom.llm.errors import ModelBadOutput
from warroom.llm.narrate import narrate
from warroom.llm.openai_compat import _content, _Reply
from warroom.llm.replay import Replay, read_script
from warroom.llm.router import Route, Router, load_config
from warroom.model import Report

from .conftest import make_report
from .hostile import FUZZ, bounded, mutated, report_tallies

REPLAY = (
    b'{"content": "{\\"summary\\": \\"orders-db 12 -> 95\\", \\"steps\\": []}"}\n'
    b'{"error": "timeout"}\n\n{"error": "unavailable"}\n{"content": ""}\n'
)
CONFIG = b"""audit = "audit.jsonl"
token_budget = 20000
time_budget = 120.5

[models.local]
spec = "openai:http://127.0.0.1:8000/v1#qwen2.5-7b"
retries = 2

[tasks.narrate]
model = "local"
timeout = 60
max_tokens = 800
temperature = 0.2

[tasks.judge]
model = "none"
"""
REPLY = json.dumps(
    {"choices": [{"message": {"role": "assistant", "content": '{"summary": "x"}'}}]}
).encode()
NARRATIVE = b'{"summary": "orders-db connections 12 -> 95 (x7.9).", "steps": ["Raise it."]}'
NAMES = ["replay file", "llm config", "llm spec", "chat completion", "model reply"]


@pytest.fixture(scope="module", autouse=True)
def _tallies(pytestconfig: pytest.Config) -> Iterator[None]:
    yield
    report_tallies(pytestconfig, NAMES)


@FUZZ
@given(data=mutated(REPLAY))
def test_replay_files_give_lines_or_an_input_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("replay") / "calls.jsonl"
    path.write_bytes(data)
    with bounded("replay file"):
        try:
            lines = read_script(path)
        except InputError:
            return
    assert all((line.content is None) != (line.error is None) for line in lines)


@FUZZ
@given(data=mutated(CONFIG))
def test_config_files_give_a_router_or_an_input_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("config") / "llm.toml"
    path.write_bytes(data)
    with bounded("llm config"):
        try:
            load_config(path)
            router = Router.from_config(path, audit=path.with_name("audit.jsonl"))
        except InputError:
            return
    for route in router.routes.values():
        assert 0 < route.timeout <= 3600 and route.max_tokens > 0
    assert router.time_budget > 0


SPEC_PARTS = st.sampled_from(
    ["openai:", "replay:", "none", "http://", "https://", "127.0.0.1", "[::1]", ":8000", ":0"]
    + [":99999", "/v1", "#", "m", " ", "\x00", "\n", "%", "@", "user:pw@", "é", "..", "/"]
)


@FUZZ
@given(spec=st.one_of(st.text(max_size=80), st.lists(SPEC_PARTS, max_size=10).map("".join)))
def test_spec_strings_give_a_backend_or_an_input_error(spec: str) -> None:
    with bounded("llm spec"), contextlib.suppress(InputError):
        parse_spec(spec)


@FUZZ
@given(body=mutated(REPLY))
def test_chat_completion_bodies_give_text_or_bad_output(body: bytes) -> None:
    with bounded("chat completion"):
        try:
            text = _content(_Reply(200, body), "fuzz")
        except ModelBadOutput:
            return
    assert isinstance(text, str)


@pytest.fixture(scope="module")
def report() -> Report:
    return make_report()


@FUZZ
@given(reply=mutated(NARRATIVE))
def test_any_model_reply_ends_in_an_output_never_an_exception(
    tmp_path_factory: pytest.TempPathFactory, report: Report, reply: bytes
) -> None:
    text = reply.decode("utf-8", errors="replace")
    backend = Replay.from_jsonl(
        json.dumps({"content": text}) + "\n" + json.dumps({"content": text})
    )
    audit = AuditLog(tmp_path_factory.mktemp("audit") / "audit.jsonl")
    router = Router({"narrate": Route(backend, timeout=5.0)}, audit)
    with bounded("model reply"):
        try:
            result = narrate(router, report)
        except WarroomError as err:  # pragma: no cover - a reply must never raise
            raise AssertionError(f"a reply raised {err!r}") from err
    assert result is not None and result.output.summary
    assert result.source == "fallback" or not result.rejections or len(result.rejections) == 1
