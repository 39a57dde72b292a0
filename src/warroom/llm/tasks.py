"""run_task: one language task, end to end, always ending in a usable output.

    prompt template -> redact -> routed model -> JSON -> schema -> number grounding
         \\-> on bad output: one repair attempt (the problem sent back), then the fallback

Every call is written to the router's audit log; every reason a reply was not used is returned
as a Rejection, so the report can say what happened.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from warroom.llm import grounding, prompts
from warroom.llm.audit import AuditEntry
from warroom.llm.backend import Message
from warroom.llm.errors import ModelBadOutput, ModelError, ModelTimeout
from warroom.llm.redact import Redacted, merge_counts, redact
from warroom.llm.router import Route, Router
from warroom.llm.schemas import TaskInput
from warroom.model import Evidence

OutT = TypeVar("OutT", bound=BaseModel)
MAX_DETAIL = 300
# Below this, what is left of the time budget cannot hold a model call: not worth starting.
MIN_CALL_S = 0.05
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


class Reason(StrEnum):
    """Why a model reply was not used."""

    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    INVALID_OUTPUT = "invalid_output"  # not JSON, or not the schema
    UNGROUNDED = "ungrounded_number"  # states a number the evidence does not hold
    BUDGET = "budget"  # the investigation's model token or time budget was spent: not called


@dataclass(frozen=True)
class Rejection:
    """One reply (or failed call) that was not used, and why."""

    reason: Reason
    detail: str
    attempt: int = 1


@dataclass(frozen=True)
class TaskSpec(Generic[OutT]):
    """A task: its prompt template, its output schema, and which output text must be grounded."""

    name: str
    template: str  # e.g. "narrate.v1" -> prompts/narrate.v1.txt
    output: type[OutT]
    texts: Callable[[OutT], list[str]] | None = None  # text whose numbers must be grounded
    # A check beyond the schema (known actors, cited evidence ids): a problem, or None.
    check: Callable[[OutT, TaskInput, Sequence[Evidence]], str | None] | None = None


@dataclass(frozen=True)
class TaskResult(Generic[OutT]):
    """The output, where it came from, and what was rejected or redacted on the way."""

    output: OutT
    source: Literal["model", "fallback"]
    rejections: tuple[Rejection, ...] = ()
    redactions: tuple[tuple[str, int], ...] = ()
    model: str | None = None
    template: str = ""

    def notes(self, task: str) -> tuple[str, ...]:
        """Lines for a report's notes: who wrote the output, what was rejected or redacted."""
        if self.model is None:
            return ()
        lines = [f"llm {task}: {self.source} output ({self.model}, prompt {self.template})"]
        lines += [f"llm {task}: rejected {r.reason.value}: {r.detail}" for r in self.rejections]
        if self.redactions:
            kinds = ", ".join(f"{k} x{n}" for k, n in self.redactions)
            lines.append(f"llm {task}: redacted before prompting: {kinds}")
        return tuple(lines)


@dataclass
class _Run(Generic[OutT]):
    """The state of one task run (mutable, private to run_task)."""

    spec: TaskSpec[OutT]
    route: Route
    router: Router
    evidence: Sequence[Evidence]
    context: TaskInput
    facts: list[str]
    rejections: list[Rejection] = field(default_factory=list)
    redactions: tuple[tuple[str, int], ...] = ()


def run_task(
    router: Router,
    spec: TaskSpec[OutT],
    context: TaskInput,
    evidence: Sequence[Evidence],
    fallback: OutT,
) -> TaskResult[OutT]:
    """The model's output for `spec` if it passes every check, else `fallback`; never raises
    ModelError (a failed call is a Rejection)."""
    route = router.route(spec.name)
    if route is None:
        return TaskResult(fallback, "fallback", template=spec.template)
    run = _Run(spec, route, router, evidence, context, context.facts())
    output, reply = None, None
    messages = _redacted_prompt(run)
    if _affordable(run, 1):
        output, reply = _attempt(run, messages, 1)
    if output is None and reply is not None and _affordable(run, 2):  # a bad reply: one repair
        messages = messages + _repair(run, reply)
        output, _ = _attempt(run, messages, 2)
    source: Literal["model", "fallback"] = "model" if output is not None else "fallback"
    return TaskResult(
        output if output is not None else fallback,
        source,
        tuple(run.rejections),
        run.redactions,
        route.backend.name,
        spec.template,
    )


def _affordable(run: _Run[OutT], attempt: int) -> bool:
    """Whether the token and time budgets allow another call; if not, say so as a rejection."""
    router = run.router
    if router.exhausted:
        detail = f"model token budget spent ({router.tokens_spent} of {router.token_budget})"
    elif router.seconds_left < MIN_CALL_S:
        spent, budget = router.seconds_spent, router.time_budget
        detail = f"model time budget spent ({spent:.1f} of {budget:g} s)"
    else:
        return True
    run.rejections.append(Rejection(Reason.BUDGET, detail, attempt))
    return False


def _redacted_prompt(run: _Run[OutT]) -> list[Message]:
    schema = json.dumps(run.spec.output.model_json_schema(), separators=(",", ":"))
    user = prompts.render(
        run.spec.template,
        facts="\n".join(f"- {f}" for f in run.facts) or "- (none)",
        evidence="\n".join(_evidence_line(e) for e in run.evidence) or "- (none)",
        schema=schema,
    )
    return [_message(run, "system", prompts.render(prompts.SYSTEM)), _message(run, "user", user)]


def _evidence_line(e: Evidence) -> str:
    baseline = f", baseline {e.baseline:.6g}" if e.baseline is not None else ""
    unit = f" {e.unit}" if e.unit else ""
    return f"- [{e.id}] {e.statement} (value {e.value:.6g}{unit}{baseline})"


def _message(run: _Run[OutT], role: Literal["system", "user", "assistant"], text: str) -> Message:
    cleaned: Redacted = redact(text)
    run.redactions = merge_counts(run.redactions, cleaned.counts)
    return Message(role, cleaned.text)


def _attempt(
    run: _Run[OutT], messages: list[Message], attempt: int
) -> tuple[OutT | None, str | None]:
    """One call: (accepted output, reply text). A failed call gives (None, None)."""
    route = run.route
    reply: str | None = None
    failure: str | None = None
    rejection: Rejection | None = None
    output: OutT | None = None
    clock = run.router.clock
    started = clock()
    try:
        reply = route.backend.complete(
            messages,
            run.spec.output.model_json_schema(),
            min(route.timeout, run.router.seconds_left),  # no deadline past the budget's end
            max_tokens=route.max_tokens,
            temperature=route.temperature,
        )
    except ModelError as err:
        failure = str(err)
        rejection = Rejection(_failure_reason(err), _short(failure), attempt)
    waited = clock() - started  # the model's time, not ours checking its reply
    if reply is not None:
        output, rejection = _accept(run, reply, attempt)
    if rejection is not None:
        run.rejections.append(rejection)
    run.router.spend(sum(len(m.content) for m in messages) + len(reply or ""), waited)
    _audit(run, messages, attempt, reply, failure, rejection)
    return output, reply


def _failure_reason(err: ModelError) -> Reason:
    if isinstance(err, ModelTimeout):
        return Reason.TIMEOUT
    if isinstance(err, ModelBadOutput):
        return Reason.INVALID_OUTPUT
    return Reason.UNAVAILABLE


def _accept(run: _Run[OutT], reply: str, attempt: int) -> tuple[OutT | None, Rejection | None]:
    """Parse, validate and ground one reply."""
    try:
        output = run.spec.output.model_validate(parse_json(reply))
    except ValueError as err:  # JSONDecodeError and ValidationError are both ValueErrors
        return None, Rejection(Reason.INVALID_OUTPUT, _short(_explain(err)), attempt)
    except RecursionError:  # a reply nested deeper than the parser can follow
        return None, Rejection(Reason.INVALID_OUTPUT, "JSON nested too deeply to read", attempt)
    problem = run.spec.check(output, run.context, run.evidence) if run.spec.check else None
    if problem:
        return None, Rejection(Reason.INVALID_OUTPUT, _short(problem), attempt)
    if run.spec.texts is not None:
        text = "\n".join(run.spec.texts(output))
        for e in run.evidence:  # an evidence id may hold digits (cpu_p99, pod-2): not a claim
            text = text.replace(e.id, " ")
        checked = grounding.check(text, run.evidence, run.facts)
        if not checked.ok:
            detail = "not in the evidence: " + ", ".join(checked.ungrounded)
            return None, Rejection(Reason.UNGROUNDED, _short(detail), attempt)
    return output, None


def _repair(run: _Run[OutT], reply: str) -> list[Message]:
    """The bad reply and what was wrong with it, for the one repair attempt."""
    problem = run.rejections[-1]
    if problem.reason is Reason.UNGROUNDED:
        ask = (
            f"Your reply states numbers that are {problem.detail}. Rewrite it using only "
            "numbers from the facts and evidence, or describe the change in words."
        )
    else:
        ask = f"Your reply was not valid: {problem.detail}. Reply with only the JSON object."
    return [_message(run, "assistant", reply), _message(run, "user", ask)]


def parse_json(text: str) -> object:
    """The JSON value in a model reply, tolerating code fences and <think> blocks around it."""
    text = _without_think(text).strip()
    if len(text) >= 6 and text.startswith("```") and text.endswith("```"):
        inner = text[3:-3]
        text = (inner[4:] if inner.startswith("json") else inner).strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:
            return json.loads(text[start : end + 1])
        raise


def _without_think(text: str) -> str:
    """`text` without its <think>...</think> blocks (an unclosed one stays). str.find, not a
    regex: a lazy `.*?` over a reply of many unclosed tags takes quadratic time."""
    kept, pos = [], 0
    while (start := text.find(THINK_OPEN, pos)) >= 0:
        end = text.find(THINK_CLOSE, start + len(THINK_OPEN))
        if end < 0:
            break
        kept.append(text[pos:start])
        pos = end + len(THINK_CLOSE)
    kept.append(text[pos:])
    return "".join(kept)


def _explain(err: ValueError) -> str:
    """A validation problem in words, without echoing the (possibly sensitive) input."""
    if isinstance(err, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'reply'}: {e['msg']}" for e in err.errors()
        )
    if isinstance(err, json.JSONDecodeError):
        return f"not JSON ({err.msg} at line {err.lineno} column {err.colno})"
    return str(err)


def _short(text: str) -> str:
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."


def _audit(
    run: _Run[OutT],
    messages: list[Message],
    attempt: int,
    reply: str | None,
    failure: str | None,
    rejection: Rejection | None,
) -> None:
    if run.router.audit is None:
        return
    run.router.audit.record(
        AuditEntry(
            task=run.spec.name,
            template=run.spec.template,
            model=run.route.backend.name,
            attempt=attempt,
            messages=tuple(messages),
            redactions=run.redactions,
            response=redact(reply).text if reply is not None else None,
            failure=failure,
            rejection=f"{rejection.reason.value}: {rejection.detail}" if rejection else None,
        )
    )
