"""Case runners: map a picklable function over picklable items, here, on a process pool or on Ray.

    runner = ProcessRunner(workers=2)
    results = [None] * len(jobs)
    for index, result in runner.map(run_job, jobs):  # as each finishes
        results[index] = result

Results come as they finish, with the item's index, so a caller can show progress and still put
them back in order. Each `map` starts its own pool (or Ray instance) and ends it before it
returns. The function must catch its own errors: an exception that escapes it (or a worker
that dies: WorkerDied) ends the `map`. Items and results cross process boundaries, so they
hold names and numbers, never an open store.

This is the "many investigations" executor; the agent calls inside one investigation run on
agents/executor.py's thread pool.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol, TypeVar

from warroom.errors import WarroomError
from warroom.optional import import_ray

T = TypeVar("T")
R = TypeVar("R")


class WorkerDied(WarroomError):
    """A worker process ended without returning its result."""


class CaseRunner(Protocol):
    """Runs `fn` on every item and yields (index, result) as each finishes.

    for index, result in runner.map(fn, items): ...
    """

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        """(index, fn(items[index])) for every item, in the order they finish."""
        ...


class SerialRunner:
    """One item after another in this process (the default; test doubles need not pickle)."""

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        """(index, result) in item order."""
        for index, item in enumerate(items):
            yield index, fn(item)


class ProcessRunner:
    """A pool of `workers` fresh processes ('spawn': no forked DuckDB or thread state)."""

    def __init__(self, workers: int = 2, context: str = "spawn") -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, not {workers}")
        self.workers = workers
        self.context = context

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        """(index, result) as each finishes; a consumer that stops early cancels the rest."""
        if not items:
            return
        context = multiprocessing.get_context(self.context)
        workers = min(self.workers, len(items))
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_ignore_sigint)
        futures: dict[Future[R], int] = {}
        try:
            futures = {pool.submit(fn, item): index for index, item in enumerate(items)}
            for future in as_completed(futures):
                try:
                    result = future.result()
                except BrokenProcessPool as err:  # killed (OOM, a signal): name it, no traceback
                    raise WorkerDied(
                        f"a worker process died ({err}); the run is incomplete: rerun, with "
                        "fewer --workers if memory is short"
                    ) from err
                yield futures[future], result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group: the parent stops the pool, workers stay quiet.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class RayRunner:
    """Ray tasks, one CPU each: on the cluster at `address` ('auto', 'ray://head:10001'), or
    on a local instance with `workers` CPUs. An already connected Ray is used and left running;
    an instance this runner started is shut down when its `map` ends.

    The cluster's workers must have the same warroom installed (its functions go by reference).
    """

    def __init__(self, workers: int = 2, address: str | None = None) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, not {workers}")
        self.workers = workers
        self.address = address

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        """(index, result) as each task finishes; a consumer that stops early cancels the rest."""
        ray = import_ray()
        started = not ray.is_initialized()
        if started:
            ray.init(**self._init_options())
        pending: dict[Any, int] = {}
        try:
            task = ray.remote(num_cpus=1)(_apply)
            shared = ray.put(fn)
            pending = {task.remote(shared, item): index for index, item in enumerate(items)}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                yield pending.pop(done[0]), ray.get(done[0])
        finally:
            for ref in pending:
                ray.cancel(ref)
            if started:
                ray.shutdown()

    def _init_options(self) -> dict[str, Any]:
        # Worker output would tear the progress bar; a case's errors come back in its result.
        quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        if self.address:
            return {"address": self.address, **quiet}
        return {"num_cpus": self.workers, "include_dashboard": False, **quiet}


def _apply(fn: Callable[[T], R], item: T) -> R:
    return fn(item)


def make_runner(workers: int = 1, ray: bool = False, address: str | None = None) -> CaseRunner:
    """Serial for one worker, a process pool for more, Ray when asked (or given an address)."""
    if ray or address:
        return RayRunner(workers, address)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, not {workers}")
    return SerialRunner() if workers == 1 else ProcessRunner(workers)
