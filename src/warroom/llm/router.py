"""The task router, a mixture of experts over models: each task (plan, judge, summarise,
narrate) goes to the model configured for it, or to none (the deterministic fallback).

A config file (TOML):

    audit = ".warroom/llm-audit.jsonl"     # where every prompt is recorded
    token_budget = 20000                    # per investigation; then deterministic fallbacks
    time_budget = 180                       # model seconds per investigation (the default)

    [models.local]                          # named models, reusable across tasks
    spec = "openai:http://127.0.0.1:8000/v1#qwen2.5-7b"
    api_key_env = "VLLM_API_KEY"            # the key itself never goes in the file
    retries = 2

    [tasks.narrate]
    model = "local"                         # a name from [models], or a spec, or "none"
    timeout = 60                            # deadline of one call, whole reply included
    max_tokens = 800
    temperature = 0.2

    [tasks.judge]
    model = "openai:http://127.0.0.1:11434/v1#llama3.1:8b"

Tasks not listed use no model. Paths are relative to the working directory.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from warroom.errors import InputError
from warroom.intake.files import load_toml
from warroom.llm.audit import DEFAULT_AUDIT, AuditLog
from warroom.llm.backend import BackendOptions, ModelBackend, parse_spec
from warroom.llm.schemas import TASKS

CHARS_PER_TOKEN = 4
DEFAULT_TIMEOUT_S = 30.0  # the deadline of one model call
MAX_TIMEOUT_S = 3600.0
# Model seconds per investigation: a handful of calls at the default deadline. A server that
# hangs costs the investigation this much at most, however many tasks it is asked to do.
DEFAULT_TIME_BUDGET_S = 180.0
MAX_CONFIG_BYTES = 1 << 20  # a config file is a few lines


class _Strict(BaseModel):
    # TOML has nan and inf; no setting here means anything with them.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ModelConfig(_Strict):
    """A named model: its spec, where its API key is, how often to retry."""

    spec: str
    api_key_env: str | None = None
    retries: int = Field(default=2, ge=0, le=10)


class TaskConfig(_Strict):
    """Which model a task goes to, and the call settings."""

    model: str = "none"
    timeout: float = Field(default=DEFAULT_TIMEOUT_S, gt=0, le=MAX_TIMEOUT_S)
    max_tokens: int = Field(default=1024, gt=0, le=65536)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)


class TasksConfig(_Strict):
    """One optional entry per task."""

    plan: TaskConfig | None = None
    judge: TaskConfig | None = None
    summarise: TaskConfig | None = None
    narrate: TaskConfig | None = None


class LlmConfig(_Strict):
    """The whole config file."""

    audit: str | None = None
    token_budget: int | None = Field(default=None, gt=0)
    time_budget: float | None = Field(default=None, gt=0, le=24 * MAX_TIMEOUT_S)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    tasks: TasksConfig = Field(default_factory=TasksConfig)


@dataclass(frozen=True)
class Route:
    """Where one task goes and how it is called."""

    backend: ModelBackend
    timeout: float = DEFAULT_TIMEOUT_S
    max_tokens: int = 1024
    temperature: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.timeout <= MAX_TIMEOUT_S:  # also false for NaN
            raise InputError(
                f"a model call deadline must be between 0 and {MAX_TIMEOUT_S:g} s, "
                f"not {self.timeout}"
            )


class Router:
    """Task name -> Route, plus the audit log every call is recorded in.

    router = Router.from_spec("replay:calls.jsonl")   # every task to one backend
    router = Router.from_config(Path("llm.toml"))      # per-task models
    router.route("narrate")                            # a Route, or None: use the fallback

    With a token budget, calls stop once the tokens spent reach it: every task then takes its
    deterministic fallback, recorded as a "budget" rejection. Tokens are estimated from the
    text (about 4 characters a token): the backend seam returns text only, and an estimate
    that is the same for every server is what a budget needs. The time budget works the same
    way on the seconds spent waiting for models (`clock` measures them), and no call is given
    a deadline past what is left of it.
    """

    def __init__(
        self,
        routes: Mapping[str, Route],
        audit: AuditLog | None = None,
        token_budget: int | None = None,
        time_budget: float = DEFAULT_TIME_BUDGET_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        unknown = set(routes) - set(TASKS)
        if unknown:
            raise InputError(f"unknown task(s) {sorted(unknown)}; known: {', '.join(TASKS)}")
        if token_budget is not None and token_budget <= 0:
            raise InputError(f"a model token budget must be positive, not {token_budget}")
        if not (time_budget > 0 and math.isfinite(time_budget)):
            raise InputError(f"a model time budget must be a positive number, not {time_budget}")
        self.routes = dict(routes)
        self.audit = audit
        self.token_budget = token_budget
        self.tokens_spent = 0
        self.time_budget = time_budget
        self.seconds_spent = 0.0
        self.clock = clock
        self._lock = threading.Lock()

    def spend(self, text_chars: int, seconds: float = 0.0) -> None:
        """Count the tokens of one call (its prompt and reply, in characters) and its time."""
        with self._lock:
            self.tokens_spent += -(-text_chars // CHARS_PER_TOKEN)
            self.seconds_spent += max(seconds, 0.0)

    @property
    def exhausted(self) -> bool:
        """Whether the token budget is spent (never, without one)."""
        return self.token_budget is not None and self.tokens_spent >= self.token_budget

    @property
    def seconds_left(self) -> float:
        """Model seconds left in the time budget (0 once spent)."""
        return max(self.time_budget - self.seconds_spent, 0.0)

    @classmethod
    def none(cls) -> Router:
        """No model for any task: every task returns its deterministic fallback."""
        return cls({})

    @classmethod
    def from_spec(
        cls,
        spec: str,
        audit: Path | None = None,
        timeout: float | None = None,
        api_key: str | None = None,
        token_budget: int | None = None,
        time_budget: float | None = None,
    ) -> Router:
        """Every task to the one backend `spec` names (`none` routes nothing); calls are
        audited to `audit` (default .warroom/llm-audit.jsonl). `timeout` is each call's
        deadline (default 30 s), `time_budget` the model seconds of the investigation."""
        timeout = timeout or DEFAULT_TIMEOUT_S
        backend = parse_spec(spec, BackendOptions(api_key=api_key, timeout=timeout))
        if backend is None:
            return cls.none()
        route = Route(backend, timeout=timeout)
        routes = {task: route for task in TASKS}
        budget = time_budget or DEFAULT_TIME_BUDGET_S
        return cls(routes, AuditLog.checked(audit or DEFAULT_AUDIT), token_budget, budget)

    @classmethod
    def from_config(
        cls,
        path: Path,
        audit: Path | None = None,
        token_budget: int | None = None,
        time_budget: float | None = None,
        timeout: float | None = None,
    ) -> Router:
        """The routes a TOML config file describes; InputError naming the bad key otherwise.
        `audit`, `token_budget`, `time_budget` and `timeout` (the CLI's --llm-audit,
        --llm-tokens, --llm-seconds, --llm-timeout) override the file's."""
        config = load_config(path)
        # One backend per model, shared by the tasks that use it: a replay script is one
        # sequence of calls, and an HTTP client keeps one connection pool.
        backends: dict[ModelConfig, ModelBackend | None] = {}
        routes: dict[str, Route] = {}
        for task in TASKS:
            entry: TaskConfig | None = getattr(config.tasks, task)
            if entry is None:
                continue
            model = _model(config, entry.model, f"{path}: tasks.{task}.model")
            if model not in backends:
                backends[model] = _backend(model, f"{path}: {_where(config, entry.model, task)}")
            backend = backends[model]
            if backend is not None:
                deadline = timeout or entry.timeout
                routes[task] = Route(backend, deadline, entry.max_tokens, entry.temperature)
        audit = audit or (Path(config.audit) if config.audit else DEFAULT_AUDIT)
        tokens = token_budget or config.token_budget
        seconds = time_budget or config.time_budget or DEFAULT_TIME_BUDGET_S
        return cls(routes, AuditLog.checked(audit) if routes else None, tokens, seconds)

    def route(self, task: str) -> Route | None:
        """The route of `task`, or None when no model is configured for it."""
        if task not in TASKS:
            raise InputError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
        return self.routes.get(task)

    def describe(self) -> str:
        """One line naming the model of each routed task (for logs and report notes)."""
        if not self.routes:
            return "no model (deterministic fallbacks)"
        return ", ".join(f"{t}: {r.backend.name}" for t, r in self.routes.items())


def load_config(path: Path) -> LlmConfig:
    """Read and validate a config file."""
    raw = load_toml(path, "model config", MAX_CONFIG_BYTES)
    try:
        return LlmConfig.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in err.errors()
        )
        raise InputError(f"model config {path}: {problems}") from err


def _model(config: LlmConfig, model: str, where: str) -> ModelConfig:
    """The model a task's `model` value names: a [models] entry, or a spec string."""
    named = config.models.get(model)
    if named is not None:
        return named
    if ":" not in model and model.lower() != "none":
        known = ", ".join(sorted(config.models)) or "none defined"
        raise InputError(
            f"{where}: unknown model {model!r} (models: {known}); "
            "or give a spec: openai:URL#MODEL, replay:FILE, none"
        )
    return ModelConfig(spec=model)


def _where(config: LlmConfig, model: str, task: str) -> str:
    return f"models.{model}" if model in config.models else f"tasks.{task}.model"


def _backend(model: ModelConfig, where: str) -> ModelBackend | None:
    api_key = None
    if model.api_key_env:
        api_key = os.environ.get(model.api_key_env)
        if api_key is None:
            raise InputError(
                f"{where}.api_key_env: environment variable {model.api_key_env} is not set"
            )
    try:
        return parse_spec(model.spec, BackendOptions(api_key=api_key, retries=model.retries))
    except InputError as err:
        raise InputError(f"{where}: {err}") from err
