"""Agents: typed units of work (input -> output | Failure) with retry, timeout, cache and
tracing; executors that run them in parallel; and the first library of expert agents.

    from warroom.agents import AgentContext, AgentCache, Tracer, call
    from warroom.agents.library import MetricAnomalies

    ctx = AgentContext(store, tracer=Tracer(), cache=AgentCache())
    result = call(MetricAnomalies(), {"service": "checkout", "window": window}, ctx)

The library (and its expert imports) loads only when imported itself.
"""

from __future__ import annotations

from warroom.agents.base import (
    Agent,
    AgentModel,
    Failure,
    FailureKind,
    NoData,
    RetryPolicy,
    abandoned_workers,
    call,
    check_deadline,
    remaining_s,
)
from warroom.agents.cache import AgentCache
from warroom.agents.context import AgentContext, StoreView
from warroom.agents.executor import AgentCall, Batch, Executor, LocalExecutor
from warroom.agents.tracing import Tracer, current_span, in_current_context

__all__ = [
    "Agent",
    "AgentCache",
    "AgentCall",
    "AgentContext",
    "AgentModel",
    "Batch",
    "Executor",
    "Failure",
    "FailureKind",
    "LocalExecutor",
    "NoData",
    "RetryPolicy",
    "StoreView",
    "Tracer",
    "abandoned_workers",
    "call",
    "check_deadline",
    "current_span",
    "in_current_context",
    "remaining_s",
]
