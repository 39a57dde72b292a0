"""The model seam: a Protocol with one method, the message value, and spec strings.

A spec string names a backend on the command line or in a config file:

    openai:http://127.0.0.1:8000/v1#qwen2.5-7b   an OpenAI-compatible server (vLLM, Ollama,
                                                 llama.cpp server) and the model it serves
    replay:FILE                                  canned responses from a JSONL file (tests)
    none                                         no model: deterministic fallbacks only

Backends load lazily by name (a registry of "module:Class"), so importing warroom.llm does not
import httpx or touch any file.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from warroom.errors import InputError

Role = Literal["system", "user", "assistant"]
JsonSchema = Mapping[str, Any]


@dataclass(frozen=True)
class Message:
    """One chat message."""

    role: Role
    content: str


@runtime_checkable
class ModelBackend(Protocol):
    """Something that turns chat messages into the text of one reply.

    `schema`, when given, is the JSON schema the reply must follow (servers that support it
    constrain decoding to it); `timeout` is in seconds. Raises a ModelError subclass on failure.

        backend = parse_spec("replay:tests/data/narrate.jsonl")
        text = backend.complete([Message("user", "Say hi as JSON")], {"type": "object"}, 10.0)
    """

    name: str  # what the audit log records as "model"

    def complete(
        self,
        messages: Sequence[Message],
        schema: JsonSchema | None,
        timeout: float,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> str:
        """The text of the model's reply to `messages`."""
        ...


@dataclass(frozen=True)
class BackendOptions:
    """Settings a spec string cannot carry (a key never goes into a spec or a config file)."""

    api_key: str | None = None
    retries: int = 2
    timeout: float = 30.0


# scheme -> "module:Class"; the class has `from_spec(rest: str, options) -> ModelBackend`.
BACKENDS: dict[str, str] = {
    "openai": "warroom.llm.openai_compat:OpenAICompatible",
    "replay": "warroom.llm.replay:Replay",
}
NONE_SPECS = frozenset({"", "none"})


def parse_spec(spec: str, options: BackendOptions | None = None) -> ModelBackend | None:
    """The backend a spec string names, or None for `none`; InputError for anything else."""
    spec = spec.strip()
    if spec.lower() in NONE_SPECS:
        return None
    scheme, sep, rest = spec.partition(":")
    target = BACKENDS.get(scheme.lower())
    if not sep or target is None:
        known = ", ".join(f"{s}:..." for s in BACKENDS)
        raise InputError(f"unknown model spec {spec!r}: expected one of {known} or none")
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    backend: ModelBackend = cls.from_spec(rest, options or BackendOptions())
    return backend
