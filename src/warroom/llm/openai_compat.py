"""A backend for any server that speaks the OpenAI chat-completions API (vLLM, Ollama,
llama.cpp server, LM Studio, ...), over httpx, with structured output, timeouts and retries."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from warroom.errors import InputError
from warroom.llm.backend import BackendOptions, JsonSchema, Message
from warroom.llm.errors import ModelBadOutput, ModelTimeout, ModelUnavailable

# How the reply is constrained, strongest first. A server that rejects one with HTTP 400 is
# asked again with the next, and remembered: older llama.cpp and Ollama know only json_object.
JSON_SCHEMA, JSON_OBJECT, PLAIN = 0, 1, 2
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_BACKOFF_S = 10.0
CONNECT_TIMEOUT_S = 5.0


class OpenAICompatible:
    """POST {base_url}/chat/completions; typed ModelError on give-up.

        backend = OpenAICompatible("http://127.0.0.1:8000/v1", "qwen2.5-7b", timeout=30)
        text = backend.complete([Message("user", "hi")], schema=None, timeout=30)

    Timeouts are not retried (a model that was too slow once will be again, and the caller's
    time budget is what the timeout protects); connection errors, 429 and 5xx are, with
    exponential backoff.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        retries: int = 2,
        *,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"openai:{self.base_url}#{model}"
        self.timeout = timeout
        self.retries = retries
        self._api_key = api_key
        self._backoff = backoff
        self._transport = transport
        self._sleep = sleep
        self._format = JSON_SCHEMA
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_spec(cls, rest: str, options: BackendOptions) -> OpenAICompatible:
        """Build from the part of `openai:URL#MODEL` after the scheme."""
        url, _, model = rest.partition("#")
        if not url.startswith(("http://", "https://")) or not model:
            raise InputError(
                f"bad model spec 'openai:{rest}': expected openai:URL#MODEL, "
                "e.g. openai:http://127.0.0.1:8000/v1#qwen2.5-7b"
            )
        return cls(url, model, options.api_key, options.timeout, options.retries)

    def complete(
        self,
        messages: Sequence[Message],
        schema: JsonSchema | None,
        timeout: float,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> str:
        """The content of the first choice of one chat completion."""
        level = self._format if schema is not None else PLAIN
        while True:
            body = self._body(messages, schema, level, max_tokens, temperature)
            response = self._post(body, timeout)
            if response.status_code == 400 and level < PLAIN:
                level += 1  # the server does not know this response_format: ask more simply
                self._format = max(self._format, level)
                continue
            if response.status_code >= 400:
                raise ModelUnavailable(f"{self.name}: {_describe(response)}")
            return _content(response, self.name)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _body(
        self,
        messages: Sequence[Message],
        schema: JsonSchema | None,
        level: int,
        max_tokens: int | None,
        temperature: float | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": False,
        }
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if temperature is not None:
            body["temperature"] = temperature
        if schema is not None and level == JSON_SCHEMA:
            name = re.sub(r"[^A-Za-z0-9_-]", "_", str(schema.get("title", "reply")))[:64]
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": dict(schema)},
            }
        elif schema is not None and level == JSON_OBJECT:
            body["response_format"] = {"type": "json_object"}
        return body

    def _post(self, body: dict[str, Any], timeout: float) -> httpx.Response:
        """POST with retries on connection errors, 429 and 5xx; raises on give-up."""
        limits = httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_S))
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(min(self._backoff * 2 ** (attempt - 1), MAX_BACKOFF_S))
            try:
                response = self._http().post("/chat/completions", json=body, timeout=limits)
            except httpx.ConnectTimeout as err:
                last = f"connect timeout: {err}"
            except httpx.TimeoutException as err:
                raise ModelTimeout(f"{self.name}: no answer within {timeout:g} s") from err
            except httpx.TransportError as err:
                last = f"{type(err).__name__}: {err}"
            else:
                if response.status_code not in RETRY_STATUS:
                    return response
                last = _describe(response)
        raise ModelUnavailable(f"{self.name}: gave up after {self.retries + 1} attempts ({last})")

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
                self._client = httpx.Client(
                    base_url=self.base_url, headers=headers, transport=self._transport
                )
            return self._client


def _describe(response: httpx.Response) -> str:
    hint = {
        401: " (check the API key)",
        403: " (check the API key)",
        404: " (is the URL the server's /v1 root, and the model name right?)",
    }.get(response.status_code, "")
    return f"HTTP {response.status_code}{hint}: {response.text[:200]}"


def _content(response: httpx.Response, name: str) -> str:
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as err:
        raise ModelBadOutput(f"{name}: not a chat completion: {response.text[:200]}") from err
    if not isinstance(content, str):
        raise ModelBadOutput(f"{name}: the reply has no text content")
    return content
