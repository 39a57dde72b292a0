"""The four tasks warroom asks models to do, with typed entry points.

narrate lives in narrate.py (it reads a Report); judge, plan and summarise are here. Each takes
its deterministic fallback, so a caller always gets an output, from a model or not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from warroom.llm.router import Router
from warroom.llm.schemas import (
    JudgeInput,
    Judgement,
    LogSummary,
    Narrative,
    Plan,
    PlanInput,
    SummariseInput,
    TaskInput,
)
from warroom.llm.tasks import TaskResult, TaskSpec, run_task
from warroom.model import Evidence

_CITATION = re.compile(r"\[([^\]\s]+)\]")


def _cites_known(output: Judgement, _: TaskInput, evidence: Sequence[Evidence]) -> str | None:
    known = {e.id for e in evidence}
    cited = [c for c in _CITATION.findall(output.reason) if not c.startswith("REDACTED:")]
    unknown = [c for c in cited if c not in known]
    return f"cites evidence that does not exist: {', '.join(unknown)}" if unknown else None


def _known_actors(output: Plan, situation: TaskInput, _: Sequence[Evidence]) -> str | None:
    actors = situation.actors if isinstance(situation, PlanInput) else []
    unknown = sorted({s.actor for s in output.steps} - set(actors))
    return f"unknown actors {unknown}; known: {', '.join(actors)}" if unknown else None


NARRATE = TaskSpec("narrate", "narrate.v1", Narrative, lambda n: [n.summary, *n.steps])
JUDGE = TaskSpec("judge", "judge.v1", Judgement, lambda j: [j.reason], _cites_known)
PLAN = TaskSpec("plan", "plan.v2", Plan, lambda p: [s.check for s in p.steps], _known_actors)
# Notable lines are copies of log lines, so only the summary is grounded.
SUMMARISE = TaskSpec("summarise", "summarise.v1", LogSummary, lambda s: [s.summary])

INCONCLUSIVE = Judgement(verdict="inconclusive", confidence=0.0, reason="no model judgement")


def judge(
    router: Router,
    hypothesis: str,
    evidence: Sequence[Evidence],
    fallback: Judgement = INCONCLUSIVE,
) -> TaskResult[Judgement]:
    """Does the evidence support `hypothesis`? The model's verdict, or `fallback`."""
    return run_task(router, JUDGE, JudgeInput(hypothesis=hypothesis), evidence, fallback)


def plan(
    router: Router, situation: PlanInput, evidence: Sequence[Evidence], fallback: Plan
) -> TaskResult[Plan]:
    """The next checks to run; the director's playbook is the fallback."""
    return run_task(router, PLAN, situation, evidence, fallback)


def summarise(
    router: Router, logs: SummariseInput, evidence: Sequence[Evidence], fallback: LogSummary
) -> TaskResult[LogSummary]:
    """A short summary of one service's logs; the template list is the fallback."""
    return run_task(router, SUMMARISE, logs, evidence, fallback)
