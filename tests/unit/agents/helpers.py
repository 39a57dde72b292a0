"""Small agents for the framework tests: they sleep, fail on cue, or misbehave."""

from __future__ import annotations

import threading
import time

from warroom.agents import Agent, AgentContext, AgentModel, RetryPolicy, call

NO_WAIT = RetryPolicy(attempts=3, backoff_s=0.0)


class Number(AgentModel):
    """An input or output holding one number."""

    value: float


class Numbers(AgentModel):
    """An output holding a list (mutable inside a frozen model, if it were a list)."""

    values: list[float]


class Double(Agent[Number, Number]):
    """Counts its runs, so tests can tell a cache hit from a run."""

    name, version = "double", "1"
    input_model, output_model = Number, Number
    reads = frozenset({"metrics"})

    def __init__(self) -> None:
        self.runs = 0

    def run(self, input: Number, ctx: AgentContext) -> Number:
        """Twice the value."""
        self.runs += 1
        return Number(value=2 * input.value)


class Sleepy(Agent[Number, Number]):
    """Sleeps input.value seconds, then echoes it."""

    name, version = "sleepy", "1"
    input_model, output_model = Number, Number
    retry = RetryPolicy(attempts=1)

    def __init__(self) -> None:
        self.finished = threading.Event()

    def run(self, input: Number, ctx: AgentContext) -> Number:
        """Sleep, then echo."""
        time.sleep(input.value)
        self.finished.set()
        return input


class Flaky(Agent[Number, Number]):
    """Raises `error` for the first `failures` runs, then succeeds."""

    name, version = "flaky", "1"
    input_model, output_model = Number, Number
    retry = NO_WAIT

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.runs = failures, error, 0

    def run(self, input: Number, ctx: AgentContext) -> Number:
        """Fail on cue."""
        self.runs += 1
        if self.runs <= self.failures:
            raise self.error
        return input


class Listing(Agent[Number, Numbers]):
    """Returns a list output: the copy-on-write test mutates it."""

    name, version = "listing", "1"
    input_model, output_model = Number, Numbers

    def __init__(self) -> None:
        self.runs = 0

    def run(self, input: Number, ctx: AgentContext) -> Numbers:
        """[value, value + 1]."""
        self.runs += 1
        return Numbers(values=[input.value, input.value + 1])


class Nested(Agent[Number, Number]):
    """Calls Double from inside its run (the span test checks the nesting)."""

    name, version = "nested", "1"
    input_model, output_model = Number, Number

    def run(self, input: Number, ctx: AgentContext) -> Number:
        """Double the value through another agent."""
        result = call(Double(), input, ctx)
        return result if isinstance(result, Number) else Number(value=-1)
