"""Each investigation in its own child process, so the webhook keeps answering in milliseconds.

    runner = ChildRunner(LiveRunner(data_dir, config), timeout_s=900)
    outcome = runner(record)        # blocks the calling worker thread, not the server
    runner.close()

Investigations are CPU-bound Python: in the server's process they hold the GIL and put the
webhook's answer over its budget (the storm measured p99 128 ms with them, 72 ms without).
A child has its own interpreter and runs at a lower priority (nice), so on a busy machine the
kernel serves the webhook first.

Children are forked by multiprocessing's forkserver, which imports the pipeline once; a fork
from it is a few milliseconds, and it is single-threaded (forking the server itself would copy
uvicorn's and the workers' threads mid-flight). A child that dies (killed, out of memory) or runs
past its time fails its investigation with that reason; it never takes a worker with it. A
child whose server is killed ends itself within a second (it watches the server's pid), so a
restarted server re-running the investigation finds its fetch cache unlocked.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from multiprocessing.connection import Connection, wait
from typing import Any

from warroom.server.model import InvestigationRecord, Status
from warroom.server.workers import Outcome, Runner

log = logging.getLogger("warroom.server")

# Imported once by the forkserver, so every child starts with them loaded.
PRELOAD = ["warroom.server.workers", "warroom.cli.live", "warroom.planner", "warroom.report.html"]
CHILD_NICE = 10  # background work: the webhook and the pages come first
WATCH_S = 0.5  # how often a child checks that its server is still alive
DEFAULT_TIMEOUT_S = 900.0  # a live investigation's fetch budget is far below this


class ChildRunner:
    """Runs a picklable runner's investigations in forked children, one child each."""

    def __init__(self, runner: Runner, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.runner, self.timeout_s = runner, timeout_s
        self._context: Any = None
        self._lock = threading.Lock()
        self._children: set[Any] = set()

    def __call__(self, record: InvestigationRecord) -> Outcome:
        """Run `record` in a child and wait for its outcome (or its death, or the timeout)."""
        receive, send = self._start_context().Pipe(duplex=False)
        child = self._context.Process(
            target=_child_main,
            args=(self.runner, record, send, os.getpid()),
            name=f"warroom-investigation-{record.id}",
            daemon=True,
        )
        child.start()
        send.close()  # the child holds the only write end: its death is our EOF
        with self._lock:
            self._children.add(child)
        try:
            return self._outcome(child, receive)
        finally:
            receive.close()
            child.join(5)
            with self._lock:
                self._children.discard(child)

    def close(self) -> None:
        """Kill the children still running (the server is stopping; a restart re-runs them)."""
        with self._lock:
            children = list(self._children)
        for child in children:
            child.kill()

    def _start_context(self) -> Any:
        with self._lock:
            if self._context is None:
                self._context = multiprocessing.get_context("forkserver")
                self._context.set_forkserver_preload(PRELOAD)
            return self._context

    def _outcome(self, child: Any, receive: Connection) -> Outcome:
        deadline = time.monotonic() + self.timeout_s
        # Read before joining: a large report would otherwise fill the pipe and stall both.
        ready = wait([receive], timeout=self.timeout_s)
        if not ready:
            child.kill()
            return Outcome(Status.failed, reason=f"stopped after {self.timeout_s:.0f} s")
        try:
            outcome: Outcome = receive.recv()
            return outcome
        except EOFError:  # the child ended without an answer
            child.join(max(0.0, min(5.0, deadline - time.monotonic())))
            return Outcome(Status.failed, reason=_death(child.exitcode))


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        signal_name = {9: "SIGKILL (out of memory?)", 15: "SIGTERM", 11: "SIGSEGV"}
        how = signal_name.get(-exitcode, f"signal {-exitcode}")
        return f"the investigation's process was killed by {how}"
    return f"the investigation's process ended without a report (exit code {exitcode})"


def _child_main(runner: Runner, record: InvestigationRecord, send: Connection, server: int) -> None:
    """In the child: lower priority, watch the server, run, send the outcome back."""
    os.nice(CHILD_NICE)
    threading.Thread(target=_watch, args=(server,), name="server-watch", daemon=True).start()
    try:
        outcome = runner(record)
    except Exception as err:  # a bug in one investigation: its outcome says so
        log.exception("investigation %s crashed", record.id)
        outcome = Outcome(Status.failed, reason=f"internal error: {type(err).__name__}: {err}")
    send.send(outcome)
    send.close()


def _watch(server: int) -> None:
    """End this child once the server that started it is gone (killed, not stopped)."""
    while True:
        time.sleep(WATCH_S)
        try:
            os.kill(server, 0)
        except ProcessLookupError:
            os._exit(75)  # no one is waiting for the outcome; free the fetch cache now
        except PermissionError:  # the pid was reused by another user's process
            os._exit(75)
