"""call(): validation, timeouts, retries, failure mapping and output validation."""

from __future__ import annotations

import time

import pytest
from pydantic import BaseModel

from warroom.agents import (
    Agent,
    AgentContext,
    Failure,
    NoData,
    RetryPolicy,
    abandoned_workers,
    call,
    check_deadline,
)
from warroom.errors import BackendError, InputError

from .helpers import Double, Flaky, Listing, Number, Numbers, Sleepy

CTX = AgentContext()


def test_returns_the_validated_output() -> None:
    assert call(Double(), {"value": 2}, CTX) == Number(value=4.0)
    assert call(Double(), Number(value=3), CTX) == Number(value=6.0)


@pytest.mark.parametrize("bad", [{"value": "x"}, {"value": 1, "extra": 2}, {}])
def test_invalid_input_is_the_callers_bug(bad: dict[str, object]) -> None:
    with pytest.raises(InputError, match="double"):
        call(Double(), bad, CTX)


def test_input_of_another_model_is_refused() -> None:
    with pytest.raises(InputError, match="takes Number, not Numbers"):
        call(Double(), Numbers(values=[1.0]), CTX)  # type: ignore[misc]  # mypy sees it too


def test_timeout_returns_without_waiting_for_the_worker() -> None:
    agent = Sleepy()
    started = time.perf_counter()
    result = call(agent, {"value": 0.5}, CTX, timeout_s=0.1)
    assert time.perf_counter() - started < 0.4
    assert isinstance(result, Failure)
    assert (result.kind, result.attempts, result.agent) == ("timeout", 1, "sleepy")
    # Python cannot kill the worker: it finishes in the background and its result is dropped.
    assert any(t.name == "warroom-agent-sleepy" for t in abandoned_workers())
    assert agent.finished.wait(3.0)


def test_timeouts_are_retried() -> None:
    result = call(Sleepy(), {"value": 0.3}, CTX, timeout_s=0.05, retry=RetryPolicy(2, 0.0))
    assert isinstance(result, Failure)
    assert (result.kind, result.attempts) == ("timeout", 2)


def test_backend_errors_are_retried_with_backoff_until_success() -> None:
    slept: list[float] = []
    ctx = AgentContext(sleep=slept.append)
    agent = Flaky(2, BackendError("prometheus answered 503"))
    policy = RetryPolicy(attempts=3, backoff_s=0.5, multiplier=2.0)
    assert call(agent, {"value": 7}, ctx, retry=policy) == Number(value=7)
    assert agent.runs == 3
    assert slept == [0.5, 1.0]


def test_retries_stop_after_the_last_attempt() -> None:
    agent = Flaky(10, BackendError("prometheus answered 503"))
    result = call(agent, {"value": 1}, CTX)
    assert isinstance(result, Failure)
    assert (result.kind, result.attempts, agent.runs) == ("backend_error", 3, 3)
    assert "503" in result.message


@pytest.mark.parametrize(
    ("error", "kind", "runs", "message"),
    [
        (NoData("no metrics for checkout"), "no_data", 1, "no metrics for checkout"),
        (BackendError("loki down"), "backend_error", 3, "loki down"),
        (ZeroDivisionError("division by zero"), "backend_error", 3, "ZeroDivisionError"),
        (KeyError("service"), "backend_error", 3, "KeyError"),
        (TimeoutError("read timed out"), "timeout", 3, "read timed out"),
    ],
)
def test_exceptions_map_to_failure_kinds(
    error: Exception, kind: str, runs: int, message: str
) -> None:
    agent = Flaky(10, error)
    result = call(agent, {"value": 1}, CTX)
    assert isinstance(result, Failure)
    assert result.kind == kind
    assert message in result.message
    assert agent.runs == runs  # no_data is not worth a retry


class _Returns(Agent[Number, Numbers]):
    name, version = "returns", "1"
    input_model, output_model = Number, Numbers

    def __init__(self, output: object) -> None:
        self.output, self.runs = output, 0

    def run(self, input: Number, ctx: AgentContext) -> Numbers:
        self.runs += 1
        return self.output  # type: ignore[return-value]


@pytest.mark.parametrize(
    "output",
    [
        Number(value=1),  # another model
        {"values": ["not a number"]},
        Numbers.model_construct(values="garbage"),  # built without validation
        None,
    ],
)
def test_an_output_that_fails_its_model_is_invalid_output(output: object) -> None:
    agent = _Returns(output)
    result = call(agent, {"value": 1}, CTX)
    assert isinstance(result, Failure)
    assert result.kind == "invalid_output"
    assert agent.runs == 1  # deterministic: retrying would not help


def test_a_dict_that_fits_the_output_model_is_accepted() -> None:
    assert call(_Returns({"values": [1, 2]}), {"value": 1}, CTX) == Numbers(values=[1.0, 2.0])


def test_a_failure_returned_by_run_is_passed_on() -> None:
    failure = Failure(kind="no_data", agent="inner", message="nothing", attempts=1)
    result = call(_Returns(failure), {"value": 1}, CTX)
    assert isinstance(result, Failure)
    assert (result.kind, result.agent, result.message) == ("no_data", "returns", "nothing")


class _Patient(Agent[Number, Number]):
    name, version = "patient", "1"
    input_model, output_model = Number, Number
    retry = RetryPolicy(attempts=1)

    def run(self, input: Number, ctx: AgentContext) -> Number:
        while True:  # a long computation that checks its deadline between steps
            check_deadline()
            time.sleep(0.01)


def test_an_agent_can_stop_at_its_deadline() -> None:
    result = call(_Patient(), {"value": 1}, CTX, timeout_s=0.1)
    assert isinstance(result, Failure) and result.kind == "timeout"
    time.sleep(0.2)
    assert not [t for t in abandoned_workers() if t.name == "warroom-agent-patient"]


def test_without_timeout_the_agent_runs_inline() -> None:
    agent = Listing()
    assert call(agent, {"value": 1}, CTX, timeout_s=None) == Numbers(values=[1.0, 2.0])


def test_an_agent_must_declare_its_name_and_models() -> None:
    with pytest.raises(TypeError, match="must declare"):

        class _Nameless(Agent[Number, Number]):
            input_model, output_model = Number, Number

            def run(self, input: Number, ctx: AgentContext) -> Number:
                return input


def test_failure_is_a_frozen_value() -> None:
    failure = Failure(kind="timeout", agent="a", message="m", attempts=1)
    with pytest.raises(ValueError):
        failure.kind = "no_data"
    assert isinstance(failure, BaseModel)
