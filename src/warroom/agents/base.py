"""Agent: a typed unit of work. `call()` turns any run into its typed output or a typed Failure.

    class Double(Agent[NumberIn, NumberOut]):
        name, version = "double", "1"
        input_model, output_model = NumberIn, NumberOut

        def run(self, input: NumberIn, ctx: AgentContext) -> NumberOut:
            return NumberOut(value=2 * input.value)

    result = call(Double(), {"value": 2}, AgentContext(store))
    if isinstance(result, Failure):
        ...  # result.kind: timeout | no_data | backend_error | invalid_output

What `call` adds around `run`: input validation (a fresh copy: the agent never shares the
caller's object), the cache, a per-attempt timeout, retries with backoff for the transient
kinds, output validation (the output goes through its JSON form, so a cache hit and a fresh
run return equal values) and one trace span. No exception from `run` ever reaches the caller.

Timeouts: `run` executes in a daemon worker thread and the caller waits until the deadline.
Python cannot kill a thread, so a timed-out worker keeps running in the background until its
`run` returns; its result is then discarded (never cached). A long-running agent can stop early
by calling `check_deadline()` now and then; nested calls never get more time than their parent
has left. `abandoned_workers()` lists the timed-out workers still running.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from contextvars import ContextVar, copy_context
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from warroom.agents.cache import CacheEntry, cache_key, canonical_json, sha256_hex
from warroom.agents.context import TABLES, AgentContext
from warroom.agents.tracing import ActiveSpan, maybe_span
from warroom.errors import BackendError, InputError, WarroomError

FailureKind = Literal["timeout", "no_data", "backend_error", "invalid_output"]
In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)

_DEADLINE: ContextVar[float | None] = ContextVar("warroom_agent_deadline", default=None)
_ABANDONED: set[threading.Thread] = set()
_ABANDONED_LOCK = threading.Lock()


class AgentModel(BaseModel):
    """Base for agent inputs and outputs: frozen, strict about unknown fields, and NaN/inf
    safe in JSON (so any output can be cached on disk)."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")


class NoData(WarroomError):
    """Raised in `run` when the telemetry the agent needs is absent (-> Failure "no_data").

    Different from an empty output: "no data" means the question cannot be answered (missing
    evidence); an empty output means it was answered and nothing was found (evidence against).
    """


class Failure(AgentModel):
    """The typed result of an agent call that did not produce its output."""

    kind: FailureKind
    agent: str
    message: str
    attempts: int  # 0 when served from the cache


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, how long to wait between them, and which failures are worth it."""

    attempts: int = 3
    backoff_s: float = 0.2
    multiplier: float = 2.0
    max_backoff_s: float = 5.0
    retry_on: frozenset[str] = frozenset({"backend_error", "timeout"})

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return min(self.max_backoff_s, self.backoff_s * self.multiplier ** (attempt - 1))


class Agent(ABC, Generic[In, Out]):
    """A typed unit of work: subclasses declare their models and implement `run`.

    `run` may raise NoData, BackendError or anything else; `call` maps it to a Failure.
    The cache knows an agent by name and version only: keep agents stateless (whatever changes
    the output belongs in the input, the context salt, or a new `version`). `reads` names the
    store tables `run` reads; only their contents key the cache.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    reads: ClassVar[frozenset[str]] = frozenset(TABLES)
    timeout_s: ClassVar[float | None] = 30.0
    retry: ClassVar[RetryPolicy] = RetryPolicy()
    input_model: type[In]
    output_model: type[Out]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "__abstractmethods__", None):
            return  # an intermediate base class
        missing = [a for a in ("input_model", "output_model") if not hasattr(cls, a)]
        if not cls.name or missing:
            raise TypeError(f"agent {cls.__qualname__} must declare name and {missing}")

    @abstractmethod
    def run(self, input: In, ctx: AgentContext) -> Out:
        """Do the work for one validated input."""


def call(
    agent: Agent[In, Out],
    input: In | Mapping[str, Any],
    ctx: AgentContext,
    *,
    timeout_s: float | None | Literal["default"] = "default",
    retry: RetryPolicy | None = None,
) -> Out | Failure:
    """Run `agent` on `input`: its validated output, or a Failure. Never raises for failures
    of the agent; raises InputError when `input` does not fit the agent's input model."""
    request = validate_input(agent, input)
    input_json = canonical_json(request)
    timeout = agent.timeout_s if timeout_s == "default" else timeout_s
    policy = retry or agent.retry
    attributes = {
        "warroom.agent.version": agent.version,
        "warroom.agent.input_hash": sha256_hex(input_json)[:16],
    }
    with maybe_span(ctx.tracer, agent.name, **attributes) as span:
        started = time.perf_counter()
        # Unpacked in a second step: unpacked in one, mypy would widen Out to Out | Failure.
        ran = _cached_or_run(agent, request, input_json, ctx, timeout, policy)
        result, attempts, hit = ran
        _annotate(span, result, attempts, hit, time.perf_counter() - started)
        return result


def validate_input(agent: Agent[In, Out], input: In | Mapping[str, Any]) -> In:
    """A fresh, validated copy of `input`; InputError when it does not fit the model."""
    model = agent.input_model
    try:
        if isinstance(input, BaseModel):
            if not isinstance(input, model):
                raise InputError(
                    f"agent {agent.name} takes {model.__name__}, not {type(input).__name__}"
                )
            return model.model_validate(input.model_dump())
        return model.model_validate(input)
    except ValidationError as exc:
        raise InputError(f"agent {agent.name}: invalid input: {exc}") from exc


def check_deadline() -> None:
    """Raise TimeoutError when the current agent call is past its deadline (cooperative stop)."""
    remaining = remaining_s()
    if remaining is not None and remaining <= 0:
        raise TimeoutError("agent deadline passed")


def remaining_s() -> float | None:
    """Seconds left before the current agent call times out (None: no deadline)."""
    deadline = _DEADLINE.get()
    return None if deadline is None else deadline - time.monotonic()


def abandoned_workers() -> list[threading.Thread]:
    """Worker threads of timed-out calls that are still running."""
    with _ABANDONED_LOCK:
        _ABANDONED.difference_update([t for t in _ABANDONED if not t.is_alive()])
        return list(_ABANDONED)


def _annotate(span: ActiveSpan, result: object, attempts: int, hit: bool, seconds: float) -> None:
    span.set("warroom.agent.cache_hit", hit)
    span.set("warroom.agent.attempts", attempts)
    span.set("warroom.agent.duration_ms", round(seconds * 1000.0, 3))
    if isinstance(result, Failure):
        span.set("warroom.agent.outcome", result.kind)
        span.fail(f"{result.kind}: {result.message}")
    else:
        span.set("warroom.agent.outcome", "ok")


def _cached_or_run(
    agent: Agent[In, Out],
    request: In,
    input_json: str,
    ctx: AgentContext,
    timeout: float | None,
    policy: RetryPolicy,
) -> tuple[Out | Failure, int, bool]:
    """(result, attempts, cache hit)."""
    if ctx.cache is None:
        return (*_run_with_retries(agent, request, ctx, timeout, policy), False)
    key = cache_key(agent.name, agent.version, input_json, ctx.fingerprint(agent.reads))
    with ctx.cache.claim(key):
        cached = _from_entry(agent, ctx.cache.get(key))
        if cached is not None:
            return cached, 0, True
        ran = _run_with_retries(agent, request, ctx, timeout, policy)
        result, attempts = ran
        if isinstance(result, Failure):
            if result.kind == "no_data":
                ctx.cache.put(key, CacheEntry("no_data", result.message))
        else:
            ctx.cache.put(key, CacheEntry("output", result.model_dump_json()))
        return result, attempts, False


def _from_entry(agent: Agent[In, Out], entry: CacheEntry | None) -> Out | Failure | None:
    """A fresh value decoded from the entry; None (a miss) when there is none or it no longer
    fits the output model (a model changed without a version bump)."""
    if entry is None:
        return None
    if entry.kind == "no_data":
        return Failure(kind="no_data", agent=agent.name, message=entry.payload, attempts=0)
    try:
        return agent.output_model.model_validate_json(entry.payload)
    except ValidationError:
        return None


def _run_with_retries(
    agent: Agent[In, Out],
    request: In,
    ctx: AgentContext,
    timeout: float | None,
    policy: RetryPolicy,
) -> tuple[Out | Failure, int]:
    attempt = 0
    while True:
        attempt += 1
        result = _attempt(agent, request, ctx, timeout)
        if not isinstance(result, _Failed):
            return result, attempt
        if attempt >= policy.attempts or result.kind not in policy.retry_on:
            failure = Failure(
                kind=result.kind, agent=agent.name, message=result.message, attempts=attempt
            )
            return failure, attempt
        ctx.sleep(policy.delay(attempt))


@dataclass(frozen=True)
class _Failed:
    kind: FailureKind
    message: str


def _attempt(
    agent: Agent[In, Out], request: In, ctx: AgentContext, timeout: float | None
) -> Out | _Failed:
    """One run: its validated output, or why it failed."""
    parent_left = remaining_s()
    if parent_left is not None:
        timeout = parent_left if timeout is None else min(timeout, parent_left)
    if timeout is not None and timeout <= 0:
        return _Failed("timeout", "no time left in the calling agent's deadline")
    outcome = _with_deadline(lambda: agent.run(request, ctx), timeout, agent.name)
    if isinstance(outcome, _Failed):
        return outcome
    return _validate_output(agent, outcome)


def _with_deadline(fn: Callable[[], object], timeout: float | None, name: str) -> object:
    """fn() in a worker thread (inline when there is no timeout); exceptions become _Failed."""
    if timeout is None:
        return _guarded(fn)
    box: list[object] = []
    done = threading.Event()
    deadline = time.monotonic() + timeout

    def work() -> None:
        _DEADLINE.set(deadline)  # inside the copied context: invisible to the caller
        try:
            box.append(_guarded(fn))
        finally:
            done.set()

    context = copy_context()  # the worker sees the caller's span: nested calls nest
    worker = threading.Thread(
        target=context.run, args=(work,), name=f"warroom-agent-{name}", daemon=True
    )
    worker.start()
    if not done.wait(timeout):
        with _ABANDONED_LOCK:
            _ABANDONED.add(worker)
        return _Failed("timeout", f"no result within {timeout:.3g} s")
    return box[0] if box else _Failed("backend_error", "the worker ended without a result")


def _guarded(fn: Callable[[], object]) -> object:
    try:
        return fn()
    except NoData as exc:
        return _Failed("no_data", str(exc) or "no data")
    except BackendError as exc:
        return _Failed("backend_error", str(exc) or type(exc).__name__)
    except TimeoutError as exc:  # a client's own timeout, or check_deadline()
        return _Failed("timeout", str(exc) or "timed out")
    except ValidationError as exc:  # the agent could not build a valid output
        return _Failed("invalid_output", _short(exc))
    except Exception as exc:  # the edge of an agent: nothing may escape to the director
        return _Failed("backend_error", f"{type(exc).__name__}: {exc}")


def _validate_output(agent: Agent[In, Out], raw: object) -> Out | _Failed:
    """The output re-validated through its JSON form, or why it is not a valid output."""
    model = agent.output_model
    if isinstance(raw, Failure):  # a composite agent passing on a failure of an agent it called
        return _Failed(raw.kind, raw.message)
    try:
        if isinstance(raw, model):
            raw = raw.model_dump(warnings=False)  # built unvalidated: checked just below
        elif isinstance(raw, BaseModel) or not isinstance(raw, Mapping):
            return _Failed(
                "invalid_output", f"returned {type(raw).__name__}, expected {model.__name__}"
            )
        checked = model.model_validate(raw)
        return model.model_validate_json(checked.model_dump_json())
    except (ValidationError, ValueError, TypeError) as exc:
        return _Failed("invalid_output", _short(exc))


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:500]
