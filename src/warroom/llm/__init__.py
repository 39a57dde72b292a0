"""The shared model interface: tasks routed to configured models, with redaction, validation,
number grounding, an audit file, and a deterministic fallback for every task.

    router = Router.from_spec("replay:calls.jsonl")      # or Router.from_config(path), none()
    result = narrate(router, report)                     # TaskResult[Narrative] | None
    report = with_narrative(report, result)              # notes: narrative, source, rejections

Nothing outside llm/ knows which model runs; with Router.none() every task is deterministic.
"""

from __future__ import annotations

from warroom.llm.backend import BackendOptions, Message, ModelBackend, parse_spec
from warroom.llm.catalog import JUDGE, NARRATE, PLAN, SUMMARISE, judge, plan, summarise
from warroom.llm.errors import ModelBadOutput, ModelError, ModelTimeout, ModelUnavailable
from warroom.llm.narrate import fallback_narrative, narrate, narrate_input, with_narrative
from warroom.llm.router import Route, Router, load_config
from warroom.llm.schemas import Judgement, LogSummary, Narrative, Plan, PlanInput, SummariseInput
from warroom.llm.tasks import Reason, Rejection, TaskResult, TaskSpec, run_task

__all__ = [
    "JUDGE",
    "NARRATE",
    "PLAN",
    "SUMMARISE",
    "BackendOptions",
    "Judgement",
    "LogSummary",
    "Message",
    "ModelBackend",
    "ModelBadOutput",
    "ModelError",
    "ModelTimeout",
    "ModelUnavailable",
    "Narrative",
    "Plan",
    "PlanInput",
    "Reason",
    "Rejection",
    "Route",
    "Router",
    "SummariseInput",
    "TaskResult",
    "TaskSpec",
    "fallback_narrative",
    "judge",
    "load_config",
    "narrate",
    "narrate_input",
    "parse_spec",
    "plan",
    "run_task",
    "summarise",
    "with_narrative",
]
