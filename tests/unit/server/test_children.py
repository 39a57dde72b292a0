"""Investigations in child processes: outcomes come back, deaths and hangs fail the
investigation with their reason, and a child whose server was killed ends itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from warroom.server.children import ChildRunner
from warroom.server.model import AlertRequest, InvestigationRecord, Status
from warroom.server.workers import Outcome


def record(id: str = "inv-1") -> InvestigationRecord:  # noqa: A002
    request = AlertRequest(key="k", service="cart", start=0.0, end=60.0, alert_time=30.0)
    return InvestigationRecord(
        id=id, key="k", status=Status.running, request=request, created_at=0.0, updated_at=0.0
    )


@dataclass
class Behaving:
    """Answers with the process it ran in, its niceness and the record's service."""

    def __call__(self, rec: InvestigationRecord) -> Outcome:
        return Outcome(
            Status.done, culprit=rec.request.service, reason=f"{os.getpid()} {os.nice(0)}"
        )


@dataclass
class Dying:
    def __call__(self, rec: InvestigationRecord) -> Outcome:
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")


@dataclass
class Raising:
    def __call__(self, rec: InvestigationRecord) -> Outcome:
        raise ValueError("no such metric")


@dataclass
class Hanging:
    pidfile: Path

    def __call__(self, rec: InvestigationRecord) -> Outcome:
        self.pidfile.write_text(str(os.getpid()))
        time.sleep(120)
        return Outcome(Status.done)


def test_the_outcome_comes_back_from_another_lower_priority_process() -> None:
    runner = ChildRunner(Behaving())
    outcome = runner(record())
    pid, nice = (int(x) for x in outcome.reason.split())
    assert outcome.status is Status.done and outcome.culprit == "cart"
    # nice caps at 19: under `nice pytest` the child cannot go 10 further
    assert pid != os.getpid() and nice >= min(os.nice(0) + 10, 19)


def test_a_killed_child_fails_its_investigation_with_the_signal() -> None:
    outcome = ChildRunner(Dying())(record())
    assert outcome.status is Status.failed and "SIGKILL" in outcome.reason


def test_an_exception_in_the_child_is_the_investigation_failure() -> None:
    outcome = ChildRunner(Raising())(record())
    assert outcome.status is Status.failed
    assert outcome.reason == "internal error: ValueError: no such metric"


def test_a_child_past_its_time_is_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    outcome = ChildRunner(Hanging(pidfile), timeout_s=3)(record())
    assert outcome.status is Status.failed and "stopped after 3 s" in outcome.reason
    assert not _alive(int(pidfile.read_text()))


def test_a_child_whose_server_is_sigkilled_ends_itself(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    server = textwrap.dedent(
        f"""
        import sys; sys.path[:0] = {sys.path!r}
        from pathlib import Path
        from server.test_children import Hanging, record
        from warroom.server.children import ChildRunner
        ChildRunner(Hanging(Path({str(pidfile)!r})))(record())
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", server])
    try:
        child = _wait_for_pid(pidfile)
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), "the orphaned investigation kept running"
    finally:
        proc.kill()


def _wait_for_pid(pidfile: Path) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if pidfile.exists() and pidfile.read_text():
            return int(pidfile.read_text())
        time.sleep(0.1)
    pytest.fail("the child never started")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): it ended, and its parent has not reaped it yet.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
