"""LocalExecutor: results in order, failures as values, and real parallelism."""

from __future__ import annotations

import pytest

from warroom.agents import AgentCall, AgentContext, Failure, LocalExecutor
from warroom.errors import BackendError, InputError

from .helpers import Double, Flaky, Number, Sleepy


def test_results_come_back_in_call_order() -> None:
    with LocalExecutor(workers=3) as executor:
        batch = executor.map(
            [AgentCall(Sleepy(), {"value": 0.05 * (5 - v)}) for v in range(5)], AgentContext()
        )
    assert [r for r in batch] == [Number(value=0.05 * (5 - v)) for v in range(5)]
    assert len(batch) == 5 and batch[0] == Number(value=0.25)


def test_failures_are_values_in_the_batch() -> None:
    calls = [
        AgentCall(Double(), {"value": 1}),
        AgentCall(Flaky(9, BackendError("down")), {"value": 1}),
    ]
    with LocalExecutor(workers=2) as executor:
        batch = executor.map(calls, AgentContext())
    assert batch[0] == Number(value=2)
    assert isinstance(batch[1], Failure) and batch.failures == (batch[1],)


def test_an_invalid_input_fails_the_batch_before_anything_runs() -> None:
    agent = Double()
    with LocalExecutor() as executor, pytest.raises(InputError):
        executor.map([AgentCall(agent, {"value": 1}), AgentCall(agent, {"v": 1})], AgentContext())
    assert agent.runs == 0


def test_four_sleeping_agents_on_two_workers_take_about_twice_one() -> None:
    with LocalExecutor(workers=2) as executor:
        batch = executor.map(
            [AgentCall(Sleepy(), {"value": 0.3}) for _ in range(4)], AgentContext()
        )
    assert batch.agent_s >= 1.2
    assert batch.wall_s < 0.8 * batch.agent_s  # serial would be ~1.0x, two workers ~0.5x
    assert batch.speedup > 1.25


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError):
        LocalExecutor(workers=0)
