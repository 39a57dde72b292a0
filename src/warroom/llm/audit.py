"""The audit file: one JSON line per model call, saying what went to which model and what came
back. Prompts are recorded after redaction, so the file holds no secret the model did not see.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from warroom.llm.backend import Message

DEFAULT_AUDIT = Path(".warroom/llm-audit.jsonl")


@dataclass(frozen=True)
class AuditEntry:
    """One model call."""

    task: str
    template: str
    model: str
    attempt: int  # 1, or 2 for the repair attempt
    messages: tuple[Message, ...]  # after redaction
    redactions: tuple[tuple[str, int], ...]
    response: str | None = None
    failure: str | None = None
    rejection: str | None = None  # why the response was not used, if it was not


class AuditLog:
    """Appends AuditEntry lines to a JSONL file (created 0600 on first write).

    audit = AuditLog(Path("llm-audit.jsonl"))
    audit.record(AuditEntry("narrate", "narrate.v1", "replay:x", 1, messages, ()))
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()

    def record(self, entry: AuditEntry) -> None:
        """Append one entry."""
        line = json.dumps(
            {
                "time": round(self._clock(), 3),
                "task": entry.task,
                "template": entry.template,
                "model": entry.model,
                "attempt": entry.attempt,
                "messages": [{"role": m.role, "content": m.content} for m in entry.messages],
                "redactions": dict(entry.redactions),
                "response": entry.response,
                "failure": entry.failure,
                "rejection": entry.rejection,
            },
            ensure_ascii=False,
        )
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as f:
                f.write(line + "\n")
