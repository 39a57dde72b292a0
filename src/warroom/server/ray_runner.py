"""Investigations as Ray tasks: `warroom serve --executor ray [--ray-address ADDR]` for a team
that runs many at once on a Ray cluster it already has.

    runner = RayRunner(LiveRunner(data_dir, config), address="ray://head:10001")
    outcome = runner(record)        # one task, one CPU; blocks the calling worker thread
    runner.close()                  # shuts down a Ray this runner started (not a cluster's)

The server keeps its queue, its repository and its worker threads; each worker thread hands
its investigation to Ray instead of a local child process (children.py) and waits for the
outcome. Without an address Ray starts a local instance with one CPU per worker. The cluster's
nodes need the same warroom installed and must reach the same sources; the fetch cache is
written under the server's --data-dir, so on a cluster that folder must be shared (or each
re-run fetches again: slower, same report). A task that raises, whose worker dies, or that runs
past the timeout fails its investigation with that reason, as a local child's would.
"""

from __future__ import annotations

import threading
from typing import Any

from warroom.optional import import_ray
from warroom.server.children import DEFAULT_TIMEOUT_S
from warroom.server.model import InvestigationRecord, Status
from warroom.server.workers import Outcome, Runner


class RayRunner:
    """Runs a picklable runner's investigations as Ray tasks of one CPU each."""

    def __init__(
        self,
        runner: Runner,
        address: str | None = None,
        cpus: int = 2,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.runner, self.address, self.cpus, self.timeout_s = runner, address, cpus, timeout_s
        self._lock = threading.Lock()
        self._ray: Any = None
        self._task: Any = None
        self._started = False

    def __call__(self, record: InvestigationRecord) -> Outcome:
        """Run `record` as a task and wait for its outcome (or its failure, or the timeout)."""
        ray, task = self.connect()
        ref = task.remote(self.runner, record)
        try:
            outcome: Outcome = ray.get(ref, timeout=self.timeout_s)
            return outcome
        except ray.exceptions.GetTimeoutError:
            ray.cancel(ref, force=True)
            return Outcome(Status.failed, reason=f"stopped after {self.timeout_s:.0f} s")
        except ray.exceptions.RayTaskError as err:
            cause = err.cause if err.cause is not None else err
            return Outcome(Status.failed, reason=f"internal error: {type(cause).__name__}: {cause}")
        except ray.exceptions.RayError as err:  # the worker or its node died
            return Outcome(Status.failed, reason=f"the investigation's Ray task failed: {err}")

    def close(self) -> None:
        """Shut down the local Ray instance this runner started; a cluster is left running."""
        with self._lock:
            if self._started and self._ray is not None:
                self._ray.shutdown()
            self._ray, self._task, self._started = None, None, False

    def connect(self) -> tuple[Any, Any]:
        """Join (or start) Ray. Call it from the main thread before the web server installs its
        signal handlers: Ray's driver installs a SIGTERM handler that ends the process at once,
        which would skip the graceful stop that shuts a local Ray down (its agents would be
        left running); installed after it, uvicorn's handlers win."""
        with self._lock:
            if self._task is None:
                ray = import_ray()
                if not ray.is_initialized():
                    ray.init(**self._init_options())
                    self._started = True
                self._ray, self._task = ray, ray.remote(num_cpus=1)(_run)
            return self._ray, self._task

    def _init_options(self) -> dict[str, Any]:
        quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": "WARNING"}
        if self.address:
            return {"address": self.address, **quiet}
        return {"num_cpus": self.cpus, "include_dashboard": False, **quiet}


def _run(runner: Runner, record: InvestigationRecord) -> Outcome:
    """On a Ray worker: the investigation, its exceptions left to Ray to carry back."""
    return runner(record)
