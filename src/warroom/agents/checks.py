"""The DSL check agent: one evidence expression evaluated against the investigation's store.

Actors write their playbooks as DSL expressions (the same language a reader uses to re-run a
number of the report), so every check the director weighs is an Evidence whose source is the
expression. The input is the expression and the case's times: JSON, hashable, cacheable.
"""

from __future__ import annotations

import math

from pydantic import Field

from warroom.agents.base import Agent, AgentModel, NoData, RetryPolicy
from warroom.agents.context import AgentContext
from warroom.dsl.interpreter import Context, run
from warroom.dsl.values import NoData as DslNoData
from warroom.dsl.values import Number
from warroom.model import Evidence, TimeRange


class DslCheckIn(AgentModel):
    """An expression and the times it is evaluated at."""

    expression: str = Field(min_length=1, max_length=2000)
    window: TimeRange
    alert: float
    baseline: TimeRange


class DslCheckOut(AgentModel):
    """The evidence, and its number when the expression gave one."""

    evidence: Evidence
    value: float | None


class DslCheck(Agent[DslCheckIn, DslCheckOut]):
    """Evaluate one evidence expression (warroom.dsl) against the store."""

    name, version = "dsl-check", "1"
    input_model, output_model = DslCheckIn, DslCheckOut
    reads = frozenset({"metrics", "logs", "spans", "events"})
    retry = RetryPolicy(attempts=1, backoff_s=0.0)
    timeout_s = 20.0

    def run(self, input: DslCheckIn, ctx: AgentContext) -> DslCheckOut:
        """Evaluate; no data (an empty selector) is a NoData failure, not a number."""
        if ctx.store is None:
            raise NoData("no telemetry store in the agent context")
        with ctx.store.reading() as store:
            outcome = run(
                input.expression, Context(store, input.window, input.alert, input.baseline)
            )
        value = outcome.value
        if isinstance(value, DslNoData):
            raise NoData(f"{outcome.expression}: {value.reason}")
        number = value.value if isinstance(value, Number) else None
        if number is not None and not math.isfinite(number):
            number = None
        return DslCheckOut(evidence=outcome.evidence, value=number)
