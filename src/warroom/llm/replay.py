"""The scripted double: canned model responses from a JSONL file, one line per model call.

    {"content": "{\"summary\": \"...\", \"steps\": []}"}   the text the model "replied"
    {"error": "timeout"}                                  the call times out
    {"error": "unavailable"}                              the server cannot be reached

Lines are served in order across all tasks (a repair attempt is a call too); a call past the
last line is ModelUnavailable. A reply that fails validation is handled like any bad output.
The file is read and checked when the spec is parsed, so a malformed one stops the command
before any investigation starts.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from warroom.errors import InputError
from warroom.intake.files import iter_json, read_text
from warroom.llm.backend import BackendOptions, JsonSchema, Message
from warroom.llm.errors import ModelError, ModelTimeout, ModelUnavailable

ERRORS = {"timeout": ModelTimeout, "unavailable": ModelUnavailable}
MAX_SCRIPT_BYTES = 64 << 20


@dataclass(frozen=True)
class ReplayLine:
    """One scripted call: reply text, or the name of the failure to raise."""

    content: str | None = None
    error: str | None = None


class Replay:
    """A ModelBackend that replays a JSONL script (read on first use).

        backend = Replay(Path("case.jsonl"))
        backend.complete([Message("user", "...")], schema=None, timeout=5)  # line 1's content

    `calls` keeps the messages of every call, so a test can read what the model was sent.
    """

    def __init__(self, path: Path | None = None, lines: Sequence[ReplayLine] | None = None):
        self.path = path  # read on first use unless `lines` are given
        self.name = f"replay:{path}" if path else "replay:<memory>"
        self.calls: list[tuple[Message, ...]] = []
        self._lines: list[ReplayLine] | None = list(lines) if lines is not None else None
        self._lock = threading.Lock()

    @classmethod
    def from_spec(cls, rest: str, options: BackendOptions) -> Replay:
        """Build from the FILE of `replay:FILE`; the file must exist and parse."""
        path = Path(rest)
        if not rest or not path.exists():
            raise InputError(f"replay file not found: {rest!r} (expected replay:FILE.jsonl)")
        return cls(path, read_script(path))

    @classmethod
    def from_jsonl(cls, text: str) -> Replay:
        """A replay from JSONL text in memory (tests)."""
        return cls(lines=parse_script(text, "<memory>"))

    def complete(
        self,
        messages: Sequence[Message],
        schema: JsonSchema | None,
        timeout: float,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> str:
        """The next scripted reply, or the scripted failure."""
        with self._lock:
            lines = self._load()
            index = len(self.calls)
            self.calls.append(tuple(messages))
        if index >= len(lines):
            raise ModelUnavailable(
                f"{self.name}: no scripted response for call {index + 1} "
                f"(the script has {len(lines)})"
            )
        line = lines[index]
        if line.error is not None:
            failure: type[ModelError] = ERRORS[line.error]
            raise failure(f"{self.name}: scripted {line.error} at call {index + 1}")
        return line.content or ""

    def _load(self) -> list[ReplayLine]:
        if self._lines is None:
            assert self.path is not None  # one of path and lines is always given
            self._lines = read_script(self.path)
        return self._lines


def read_script(path: Path) -> list[ReplayLine]:
    """The lines of a replay file; InputError naming the file (and line) when malformed."""
    try:
        return parse_script(read_text(path, MAX_SCRIPT_BYTES), str(path))
    except InputError as err:
        raise InputError(f"replay file {err}") from None


def parse_script(text: str, where: str) -> list[ReplayLine]:
    """Parse replay JSONL (one object per line; blank lines are skipped); InputError naming
    the line of anything malformed."""
    return [_line(item, f"{where}:{line}") for line, item in iter_json(text, where)]


def _line(item: object, where: str) -> ReplayLine:
    if isinstance(item, dict) and set(item) == {"content"} and isinstance(item["content"], str):
        return ReplayLine(content=item["content"])
    if isinstance(item, dict) and set(item) == {"error"} and str(item["error"]) in ERRORS:
        return ReplayLine(error=item["error"])
    known = ", ".join(f'{{"error": "{e}"}}' for e in ERRORS)
    raise InputError(f'{where}: expected {{"content": "<text>"}} or {known}, got {item!r:.80}')
