"""Deploy and config markers from a JSON-lines file: what a CI pipeline or a chat-ops bot appends
when it ships something, so the change actor sees real deploys without a Kubernetes API.

    {"time": "2026-12-03T03:02:11Z", "service": "checkout", "kind": "deploy", "description": "v2"}
    {"time": 1764730931, "service": "payment", "kind": "config", "description": "timeout 200ms"}

`[sources.changes] path = "deploys.jsonl"` in warroom.toml. `time` is epoch seconds or ISO 8601
(naive means UTC); `kind` one of the change kinds the actors know (deploy, config, restart,
scale, feature-flag) or anything else (kept as context). A line that is not such an object is
skipped and counted in a degraded note naming its line number; the rest is read.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from warroom.errors import BackendError, InputError
from warroom.intake.files import MAX_TELEMETRY_BYTES, read_text
from warroom.model import TimeRange, from_iso, time_problem
from warroom.telemetry.sources import Batch, Source

MAX_NOTED_LINES = 5


class Config(BaseModel):
    """The marker file (the `[sources.changes]` table)."""

    model_config = ConfigDict(extra="forbid")

    path: Path


def sources(config: Config) -> list[Source]:
    """The events source for one file."""
    return [ChangesFileSource(config)]


class ChangesFileSource:
    """Events of one JSON-lines file, read whole on each fetch (it is small and appended to)."""

    name = "changes"
    table = "events"

    def __init__(self, config: Config) -> None:
        self.config = config

    def identity(self) -> str:
        """The file's path."""
        return f"changes:{self.config.path.resolve()}"

    def fetch(self, window: TimeRange, deadline: float) -> Batch:
        """The markers whose time falls in [start, end)."""
        if deadline - time.monotonic() <= 0:
            raise BackendError(
                f"{self.name}: {self.config.path} not read, the time budget is spent"
            )
        try:
            text = read_text(self.config.path, MAX_TELEMETRY_BYTES)
        except InputError as err:
            raise BackendError(f"{self.name}: {err}") from None
        columns: dict[str, list[Any]] = {"ts": [], "service": [], "kind": [], "description": []}
        bad: list[int] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            marker = _marker(line)
            if marker is None:
                bad.append(number)
            elif window.contains(marker[0]):
                for column, value in zip(columns, marker, strict=True):
                    columns[column].append(value)
        return Batch(columns, _skipped(self.config.path, bad))


def _marker(line: str) -> tuple[float, str, str, str] | None:
    try:
        raw = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(raw, dict):
        return None
    service, kind = raw.get("service"), raw.get("kind", "deploy")
    moment = _time(raw.get("time"))
    if not isinstance(service, str) or not service or not isinstance(kind, str) or moment is None:
        return None
    return moment, service, kind, str(raw.get("description", ""))


def _time(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if time_problem(value) is None else None
    if not isinstance(value, str):
        return None
    try:
        return from_iso(value)
    except ValueError:
        return None


def _skipped(path: Path, lines: list[int]) -> tuple[str, ...]:
    if not lines:
        return ()
    shown = ", ".join(map(str, lines[:MAX_NOTED_LINES])) + (", ..." if len(lines) > 5 else "")
    return (
        f"changes: {path}: {len(lines)} line(s) not a marker {{time, service, kind}} "
        f"(line {shown})",
    )
