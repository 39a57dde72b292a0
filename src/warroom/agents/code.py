"""The code actor's agent: stack frames in a service's error logs -> source files -> the recent
commits that touched them, when a git repository is configured.

Frames are read from the multi-line messages themselves (JVM `at pkg.Class.method(File.java:12)`
and Python `File "x.py", line 12, in f`), counted, and the commonest returned. With a
repository, each frame's file is found by name (`git ls-files`) and its last commits listed
(`git log`), each git call under a timeout: a slow or missing repository degrades the evidence,
never the investigation.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

from pydantic import Field

from warroom.agents.base import Agent, AgentModel, NoData, RetryPolicy
from warroom.agents.context import AgentContext
from warroom.model import TimeRange

JAVA_FRAME = re.compile(r"\bat ([\w.$]+)\.([\w$<>]+)\(([\w$]+\.\w+):(\d+)\)")
PYTHON_FRAME = re.compile(r'File "([^"]+)", line (\d+), in ([\w<>]+)')
GIT_TIMEOUT_S = 5.0
TOP_FRAMES = 3


class StackFramesIn(AgentModel):
    """Whose error logs, when, and where its code lives (optional)."""

    service: str
    window: TimeRange
    repo: str | None = None
    commits: int = Field(default=3, ge=1, le=20)


class Frame(AgentModel):
    """One source location that error stacks pass through, and who changed it lately."""

    file: str
    line: int
    function: str
    count: int
    path: str | None = None  # the file in the repository, when found
    commits: tuple[str, ...] = ()  # "abc1234 2026-11-27 alice: message", newest first


class StackFramesOut(AgentModel):
    """The commonest frames, commonest first."""

    frames: tuple[Frame, ...]
    error_lines: int


class StackFrames(Agent[StackFramesIn, StackFramesOut]):
    """Stack frames of a service's error logs, and the commits behind them."""

    name, version = "stack-frames", "1"
    input_model, output_model = StackFramesIn, StackFramesOut
    reads = frozenset({"logs"})
    retry = RetryPolicy(attempts=1, backoff_s=0.0)
    timeout_s = 30.0

    def run(self, input: StackFramesIn, ctx: AgentContext) -> StackFramesOut:
        """Count frames in the window's error lines; look their files up in the repository."""
        if ctx.store is None:
            raise NoData("no telemetry store in the agent context")
        lines = [r.message for r in ctx.store.logs(input.window, input.service)]
        counts: Counter[tuple[str, int, str]] = Counter()
        error_lines = 0
        for message in lines:
            frames = frames_in(message)
            error_lines += bool(frames)
            counts.update(set(frames))
        if not counts:
            raise NoData(f"no stack frames in {input.service}'s logs in {input.window}")
        top = [
            Frame(file=f, line=n, function=fn, count=c)
            for (f, n, fn), c in counts.most_common(TOP_FRAMES)
        ]
        if input.repo:
            top = [_with_history(frame, Path(input.repo), input.commits) for frame in top]
        return StackFramesOut(frames=tuple(top), error_lines=error_lines)


def frames_in(message: str) -> list[tuple[str, int, str]]:
    """(file, line, function) of every frame in a message."""
    frames = [(f, int(n), fn) for _, fn, f, n in JAVA_FRAME.findall(message)]
    frames += [(Path(f).name, int(n), fn) for f, n, fn in PYTHON_FRAME.findall(message)]
    return frames


def _with_history(frame: Frame, repo: Path, commits: int) -> Frame:
    paths = _git(repo, "ls-files", "--", f"*/{frame.file}", frame.file)
    if not paths:
        return frame
    path = paths[0]
    log = _git(repo, "log", f"-n{commits}", "--date=short", "--format=%h %ad %an: %s", "--", path)
    return frame.model_copy(update={"path": path, "commits": tuple(log)})


def _git(repo: Path, *args: str) -> list[str]:
    """Output lines of a git command, or none when git or the repository fails or is slow."""
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return (
        [line for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []
    )
