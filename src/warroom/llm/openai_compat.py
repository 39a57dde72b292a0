"""A backend for any server that speaks the OpenAI chat-completions API (vLLM, Ollama,
llama.cpp server, LM Studio, ...), over httpx, with structured output, a deadline and retries.

The deadline covers the whole call: connecting, waiting, and reading the reply, retries and
backoff included. httpx's own timeouts are per read, so a server that sends one byte a second
would never trip them; each attempt therefore runs under asyncio.wait_for, which cancels it
(and closes its connection) wherever it is when the time is up.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import ssl
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from warroom.errors import InputError
from warroom.llm.backend import BackendOptions, JsonSchema, Message
from warroom.llm.errors import ModelBadOutput, ModelTimeout, ModelUnavailable

T = TypeVar("T")

# How the reply is constrained, strongest first. A server that rejects one with HTTP 400 is
# asked again with the next, and remembered: older llama.cpp and Ollama know only json_object.
JSON_SCHEMA, JSON_OBJECT, PLAIN = 0, 1, 2
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_BACKOFF_S = 10.0
CONNECT_TIMEOUT_S = 5.0
# A chat completion of the largest max_tokens a task may ask for (65,536) is well under 1 MiB;
# a body past twice that is a misbehaving server, not a reply (and would cost seconds to check).
MAX_REPLY_BYTES = 2 << 20


@dataclass(frozen=True)
class _Reply:
    """What one HTTP attempt got back: the status and the whole body."""

    status: int
    body: bytes

    @property
    def text(self) -> str:
        """The body as text, undecodable bytes replaced (for messages only)."""
        return self.body.decode("utf-8", errors="replace")


class OpenAICompatible:
    """POST {base_url}/chat/completions; typed ModelError on give-up.

        backend = OpenAICompatible("http://127.0.0.1:8000/v1", "qwen2.5-7b", timeout=30)
        text = backend.complete([Message("user", "hi")], schema=None, timeout=30)

    `timeout` is the deadline of the whole call in seconds. Timeouts are not retried (a model
    that was too slow once will be again, and the caller's time budget is what the deadline
    protects); connection errors, 429 and 5xx are, with exponential backoff, while time is left.
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
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
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
        self._clock = clock
        self._format = JSON_SCHEMA
        self._ssl: ssl.SSLContext | None = None

    @classmethod
    def from_spec(cls, rest: str, options: BackendOptions) -> OpenAICompatible:
        """Build from the part of `openai:URL#MODEL` after the scheme."""
        url, _, model = rest.partition("#")
        problem = _url_problem(url) or ("" if model.strip() else "no model name after '#'")
        if problem:
            raise InputError(
                f"bad model spec 'openai:{rest}': {problem}; expected openai:URL#MODEL, "
                "e.g. openai:http://127.0.0.1:8000/v1#qwen2.5-7b"
            )
        key = options.api_key
        if key is not None and not (key.isascii() and key.isprintable()):
            raise InputError("the model API key holds characters an HTTP header cannot carry")
        return cls(url, model, key, options.timeout, options.retries)

    def complete(
        self,
        messages: Sequence[Message],
        schema: JsonSchema | None,
        timeout: float,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> str:
        """The content of the first choice of one chat completion, within `timeout` seconds."""
        deadline = self._clock() + timeout
        level = self._format if schema is not None else PLAIN
        while True:
            body = self._body(messages, schema, level, max_tokens, temperature)
            reply = self._post(body, deadline, timeout)
            if reply.status == 400 and level < PLAIN:
                level += 1  # the server does not know this response_format: ask more simply
                self._format = max(self._format, level)
                continue
            if reply.status >= 400:
                raise ModelUnavailable(f"{self.name}: {_describe(reply)}")
            return _content(reply, self.name)

    def close(self) -> None:
        """Nothing to close: each attempt opens and closes its own connection."""

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

    def _post(self, body: dict[str, Any], deadline: float, timeout: float) -> _Reply:
        """POST with retries on connection errors, 429 and 5xx, all before `deadline`."""
        last, attempts = "", 0
        for attempt in range(self.retries + 1):
            if attempt:
                pause = min(self._backoff * 2 ** (attempt - 1), MAX_BACKOFF_S)
                if self._clock() + pause >= deadline:
                    break  # no time for another attempt: give up with what went wrong
                self._sleep(pause)
            left = deadline - self._clock()
            if left <= 0:
                break
            attempts += 1
            outcome = self._attempt(body, left, timeout)
            if isinstance(outcome, _Reply):
                return outcome
            last = outcome
        if not last:
            raise ModelTimeout(
                f"{self.name}: no answer within {timeout:g} s (the deadline of the whole call)"
            )
        raise ModelUnavailable(f"{self.name}: gave up after {attempts} attempts ({last})")

    def _attempt(self, body: dict[str, Any], left: float, timeout: float) -> _Reply | str:
        """One POST within `left` seconds: a final reply, or why it is worth another try."""
        try:
            reply = _run(self._exchange(body, left), left)
        except httpx.ConnectTimeout as err:
            return f"connect timeout: {err}"
        except (TimeoutError, httpx.TimeoutException):
            raise ModelTimeout(
                f"{self.name}: no answer within {timeout:g} s (the deadline of the whole call)"
            ) from None
        except httpx.DecodingError as err:
            raise ModelBadOutput(f"{self.name}: the reply cannot be decoded: {err}") from None
        except httpx.HTTPError as err:  # refused, reset, a broken HTTP exchange
            return f"{type(err).__name__}: {err}"
        return _describe(reply) if reply.status in RETRY_STATUS else reply

    async def _exchange(self, body: dict[str, Any], left: float) -> _Reply:
        """One POST, its body read whole (up to MAX_REPLY_BYTES)."""
        limits = httpx.Timeout(left, connect=min(left, CONNECT_TIMEOUT_S))
        async with (
            httpx.AsyncClient(
                base_url=self.base_url,
                headers=self._headers(),
                transport=self._transport,
                timeout=limits,
                verify=self._verify(),
            ) as client,
            client.stream("POST", "/chat/completions", json=body) as response,
        ):
            data = bytearray()
            async for chunk in response.aiter_bytes():  # decoded (gzip...) as it arrives
                data += chunk
                if len(data) > MAX_REPLY_BYTES:
                    raise ModelBadOutput(f"{self.name}: a reply over {MAX_REPLY_BYTES} bytes")
            return _Reply(response.status_code, bytes(data))

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def _verify(self) -> ssl.SSLContext:
        # One TLS context per backend: building it (loading the CA bundle) is the slow part.
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return self._ssl


def _run(work: Coroutine[Any, Any, T], left: float) -> T:
    """Run one attempt to completion or cancel it after `left` seconds (TimeoutError)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _in_new_loop(work, left)
    # Called from inside an event loop (a server): a loop of its own, in a thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(_in_new_loop, work, left).result()


def _in_new_loop(work: Coroutine[Any, Any, T], left: float) -> T:
    # Not asyncio.run: it waits for the loop's resolver threads, so a DNS lookup that hangs
    # would outlive the deadline; close() leaves them to finish on their own.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(work, left))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _url_problem(url: str) -> str:
    """Why `url` cannot be a server's base URL, or ''."""
    if not url.startswith(("http://", "https://")):
        return "the URL must start with http:// or https://"
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as err:
        return f"not a URL ({err})"
    if not parsed.host:
        return "the URL has no host"
    if any(c.isspace() for c in url):
        return "the URL contains white space"
    if parsed.port is not None and not 0 < parsed.port < 65536:
        return f"port {parsed.port} is not between 1 and 65535"
    return ""


def _describe(reply: _Reply) -> str:
    hint = {
        401: " (check the API key)",
        403: " (check the API key)",
        404: " (is the URL the server's /v1 root, and the model name right?)",
    }.get(reply.status, "")
    return f"HTTP {reply.status}{hint}: {reply.text[:200]}"


def _content(reply: _Reply, name: str) -> str:
    try:
        content = json.loads(reply.body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError, RecursionError) as err:
        raise ModelBadOutput(f"{name}: not a chat completion: {reply.text[:200]}") from err
    if not isinstance(content, str):
        raise ModelBadOutput(f"{name}: the reply has no text content")
    return content
