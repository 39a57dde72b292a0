from __future__ import annotations

from pathlib import Path

import pytest

from warroom.errors import InputError
from warroom.llm.backend import Message
from warroom.llm.errors import ModelTimeout, ModelUnavailable
from warroom.llm.replay import Replay

HI = [Message("user", "hi")]


def test_lines_are_served_in_order_and_calls_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"content": "one"}\n\n{"content": "two"}\n')
    replay = Replay(path)
    assert replay.complete(HI, None, 1.0) == "one"
    assert replay.complete([Message("user", "again")], {"type": "object"}, 1.0) == "two"
    assert [c[0].content for c in replay.calls] == ["hi", "again"]


def test_scripted_errors_raise_typed_failures() -> None:
    replay = Replay.from_jsonl('{"error": "timeout"}\n{"error": "unavailable"}\n')
    with pytest.raises(ModelTimeout):
        replay.complete(HI, None, 1.0)
    with pytest.raises(ModelUnavailable):
        replay.complete(HI, None, 1.0)


def test_running_past_the_end_is_unavailable() -> None:
    replay = Replay.from_jsonl('{"content": "only"}')
    replay.complete(HI, None, 1.0)
    with pytest.raises(ModelUnavailable, match="no scripted response for call 2"):
        replay.complete(HI, None, 1.0)


def test_content_is_served_verbatim_even_when_it_is_not_json() -> None:
    replay = Replay.from_jsonl('{"content": "Sure! {not json"}')
    assert replay.complete(HI, None, 1.0) == "Sure! {not json"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "<memory>:1: not JSON"),
        ('{"content": "a"}\n{"content": 3}', "<memory>:2: expected"),
        ('{"error": "boom"}', "expected"),
        ('{"content": "a", "extra": 1}', "expected"),
        ('["content"]', "expected"),
    ],
)
def test_a_malformed_script_is_an_input_error(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Replay.from_jsonl(text)


def test_the_file_is_read_on_first_call_not_in_the_constructor(tmp_path: Path) -> None:
    path = tmp_path / "later.jsonl"
    replay = Replay(path)  # no I/O yet: the file does not even exist
    path.write_text('{"content": "ok"}\n')
    assert replay.complete(HI, None, 1.0) == "ok"
