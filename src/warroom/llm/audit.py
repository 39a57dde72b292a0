"""The audit file: one JSON line per model call, saying what went to which model and what came
back. Prompts are recorded after redaction, so the file holds no secret the model did not see.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from warroom.errors import InputError
from warroom.llm.backend import Message
from warroom.report.files import check_output

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

    @classmethod
    def checked(cls, path: Path) -> AuditLog:
        """An audit log at `path`, refused now (InputError) if it could never be written: a
        directory, a device, a pipe, a folder on the way that is a file."""
        return cls(check_output(path, "model audit file", special_ok=False))

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
            try:
                self._append(line + "\n")
            except OSError as err:
                # What went to a model must be on record: a call we cannot record stops here.
                why = err.strerror or str(err)
                raise InputError(f"cannot write the model audit file {self.path}: {why}") from None

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_NONBLOCK: should the path have become a pipe, fail rather than wait for a reader.
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK
        fd = os.open(self.path, flags, 0o600)
        with os.fdopen(fd, "ab") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "not a regular file")
            f.write(line.encode("utf-8"))
