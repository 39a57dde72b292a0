"""Executors run a batch of agent calls in parallel and return their results in order.

    with LocalExecutor(workers=4) as executor:
        batch = executor.map([AgentCall(MetricAnomalies(), {...}), ...], ctx)
    for result in batch:                     # outputs or Failures, in call order
        ...
    batch.wall_s, batch.agent_s, batch.speedup

Each call keeps the caller's trace context, so the spans of a batch nest under the span that
was open when `map` was called (e.g. the director's "round 2" span).

Within one investigation only a thread pool ships: agents spend their time in numpy/scipy and
DuckDB, which release the GIL for the heavy parts, and the context holds one in-process DuckDB
store that cannot be pickled. Many investigations spread over processes or a Ray cluster
instead (gym/parallel.py: each worker builds its own case and store), which is where the
machines are needed: a benchmark or a training-data run, not one 3 a.m. incident.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, Protocol, overload

from pydantic import BaseModel

from warroom.agents.base import Agent, Failure, In, Out, call, validate_input
from warroom.agents.context import AgentContext
from warroom.agents.tracing import in_current_context


@dataclass(frozen=True)
class AgentCall(Generic[In, Out]):
    """One agent and the input to run it on."""

    agent: Agent[In, Out]
    input: In | Mapping[str, Any]


@dataclass(frozen=True)
class Batch(Sequence[BaseModel | Failure]):
    """The results of one `map`, in call order, with how long it took.

    `agent_s` sums the calls' own durations; `speedup` (agent_s / wall_s) is the evidence of
    parallelism: ~1 when calls ran one after another, ~workers when they overlapped.
    """

    results: tuple[BaseModel | Failure, ...]
    wall_s: float
    agent_s: float

    @property
    def speedup(self) -> float:
        """Summed agent time over wall-clock time."""
        return self.agent_s / self.wall_s if self.wall_s > 0 else 1.0

    @property
    def failures(self) -> tuple[Failure, ...]:
        """The results that are Failures."""
        return tuple(r for r in self.results if isinstance(r, Failure))

    @overload
    def __getitem__(self, index: int) -> BaseModel | Failure: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[BaseModel | Failure, ...]: ...

    def __getitem__(
        self, index: int | slice
    ) -> BaseModel | Failure | tuple[BaseModel | Failure, ...]:
        return self.results[index]

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[BaseModel | Failure]:
        return iter(self.results)


class Executor(Protocol):
    """Runs agent calls, possibly in parallel; results come back in the order of `calls`.

    batch = executor.map([AgentCall(agent, input), ...], ctx)
    """

    def map(self, calls: Sequence[AgentCall[Any, Any]], ctx: AgentContext) -> Batch:
        """Run every call (each through `call()`, so failures are values) and wait for all."""
        ...


class LocalExecutor:
    """A thread pool executor (the default). The pool starts on first use; close() ends it.

    Do not call `map` from inside an agent running on the same executor: a full pool would
    wait for itself. Agents that need sub-calls use `call()` directly.
    """

    def __init__(self, workers: int = 4) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, not {workers}")
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def map(self, calls: Sequence[AgentCall[Any, Any]], ctx: AgentContext) -> Batch:
        """Run the calls on the pool; InputError before anything runs if an input is invalid."""
        for c in calls:  # fail fast on a caller's bug, before any work starts
            validate_input(c.agent, c.input)
        started = time.perf_counter()
        pool = self._ensure_pool()
        futures = [pool.submit(in_current_context(_timed, c, ctx)) for c in calls]
        timed = [f.result() for f in futures]
        wall = time.perf_counter() - started
        return Batch(tuple(r for r, _ in timed), wall, sum(s for _, s in timed))

    def close(self) -> None:
        """Stop the pool after the running calls finish."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="warroom-exec")
            return self._pool


def _timed(agent_call: AgentCall[Any, Any], ctx: AgentContext) -> tuple[BaseModel, float]:
    started = time.perf_counter()
    result = call(agent_call.agent, agent_call.input, ctx)
    return result, time.perf_counter() - started
