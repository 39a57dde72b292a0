"""Notifications out: a finished investigation's Summary POSTed to chat and to other systems.

    notifier = Notifier([Target(kind="slack", url=...), Target(kind="json", url=...)])
    notifier.send(summary)        # returns at once, never raises; delivered on a thread
    notifier.stats()              # sent / failed / dropped per target, for /metrics
    notifier.close(timeout=10)    # drains what is queued

Each target has its own thread and bounded queue, so a dead receiver delays only its own
messages, and a full queue drops (and counts) rather than blocks an investigation. A delivery
is retried with exponential backoff and jitter on connection errors, timeouts, 429 (after its
Retry-After) and 5xx, up to `Retry.attempts` tries within `Retry.deadline_s`; any other status
is final. Webhook URLs carry their secret in the path (Slack's do), so results, logs and
metric labels name a target only by scheme and host (or the name it was given).
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import string
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from warroom.server.model import Status, Summary

log = logging.getLogger(__name__)

MESSAGE_KIND = "warroom.investigation"
MESSAGE_VERSION = 1
USER_AGENT = "warroom-notify/1"
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits)  # RFC 9110


class Target(BaseModel):
    """One webhook to tell (an entry of the `[[notify]]` list of warroom.toml)."""

    # The URL and headers are secrets: never in a repr, nor echoed by a validation error.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    kind: Literal["slack", "json"]
    url: str = Field(repr=False)
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    name: str | None = Field(default=None, min_length=1, max_length=100)  # shown instead of host

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be http:// or https:// with a host")
        if any(c.isspace() or ord(c) < 32 for c in url):
            raise ValueError("url must not hold spaces or control characters")
        return url

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for key, value in headers.items():
            if not key or not set(key) <= _TOKEN_CHARS:
                raise ValueError(f"header name {key[:40]!r} is not an HTTP token")
            if any(c in value for c in "\r\n\0"):
                raise ValueError(f"header {key}: the value holds a line break")
        return headers

    @property
    def label(self) -> str:
        """How results, logs and metrics name this target: never the secret parts."""
        if self.name:
            return self.name
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{self.kind} {parts.scheme}://{parts.hostname}{port}"

    def secrets(self) -> tuple[str, ...]:
        """What must never be shown: the URL past its host, its userinfo, header values."""
        parts = urlsplit(self.url)
        found = [self.url, parts.path, parts.query, parts.password or "", parts.username or ""]
        found += [s for s in parts.path.split("/") if len(s) >= 6]
        found += list(self.headers.values())
        return tuple(sorted({s for s in found if len(s) >= 4}, key=len, reverse=True))


# --- messages ---------------------------------------------------------------------------


def _confidence(summary: Summary) -> float | None:
    value = summary.confidence
    return value if value is not None and math.isfinite(value) else None


def title(summary: Summary) -> str:
    """One line: what the investigation concluded."""
    service = summary.service or "an alert"
    if summary.status is Status.failed:
        return f"warroom: the investigation of {service} failed"
    if summary.status is not Status.done or not summary.culprit:
        return f"warroom: {service}: inconclusive, no culprit named"
    fault = f" ({summary.fault_type})" if summary.fault_type else ""
    confidence = _confidence(summary)
    at = f" at {confidence:.0%} confidence" if confidence is not None else ""
    return f"warroom: root cause of {service}: {summary.culprit}{fault}{at}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _escape(text: str, limit: int = 2900) -> str:
    # Slack's mrkdwn reserves exactly these three; everything else is sent as is.
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if len(escaped) <= limit:
        return escaped
    # cut after escaping (escaping lengthens), never through the middle of an entity
    return re.sub(r"&[a-z]{0,3}$", "", escaped[: limit - 3]) + "..."


def _code(text: str | None, absent: str) -> str:
    # a name as code, so orders_db is not read as italics; fields hold at most 2000 characters
    return "`" + _escape(text.replace("`", "'"), 1900) + "`" if text else absent


def _link(url: str) -> str:
    safe = url.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E").replace("&", "&amp;")
    return f"<{safe}|Open the report>"


def slack_message(summary: Summary) -> dict[str, Any]:
    """A Slack incoming-webhook message: `text` for notifications, Block Kit blocks to read."""
    head = title(summary)
    confidence = _confidence(summary)
    fields = [
        f"*Culprit*\n{_code(summary.culprit, 'none named')}",
        f"*Confidence*\n{f'{confidence:.0%}' if confidence is not None else 'n/a'}",
        f"*Alerting service*\n{_code(summary.service, 'unknown')}",
        f"*Fault*\n{_escape(summary.fault_type or 'n/a', 1900)}",
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(head, 150)}},
        {"type": "section", "fields": [_mrkdwn(f) for f in fields]},
        {"type": "section", "text": _mrkdwn(f"*Evidence*\n{_escape(summary.evidence)}")},
    ]
    if summary.path:
        path = _escape(" -> ".join(summary.path))
        blocks.append({"type": "context", "elements": [_mrkdwn(path)]})
    if summary.url:
        blocks.append({"type": "section", "text": _mrkdwn(_link(summary.url))})
    text = f"{head}. {summary.evidence}" + (f" {summary.url}" if summary.url else "")
    return {"text": _escape(text, 3000), "blocks": blocks}


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def json_message(summary: Summary) -> dict[str, Any]:
    """The generic message: the Summary as an object, with what kind of message it is."""
    return {
        "kind": MESSAGE_KIND,
        "version": MESSAGE_VERSION,
        "summary": {
            "investigation_id": summary.investigation_id,
            "service": summary.service,
            "status": summary.status.value,
            "culprit": summary.culprit,
            "confidence": _confidence(summary),
            "fault_type": summary.fault_type,
            "evidence": summary.evidence,
            "path": list(summary.path),
            "url": summary.url,
        },
    }


def encode(kind: str, summary: Summary) -> bytes:
    """The body a target of `kind` is sent."""
    message = slack_message(summary) if kind == "slack" else json_message(summary)
    return json.dumps(message, ensure_ascii=False, allow_nan=False).encode("utf-8")


# --- delivery ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Retry:
    """How hard to try one delivery."""

    attempts: int = 5
    deadline_s: float = 120.0  # from the first try; a later retry would be too late to help
    base_s: float = 1.0  # the first backoff; doubled each time
    max_s: float = 30.0


@dataclass(frozen=True)
class Delivery:
    """How one summary's delivery to one target ended."""

    target: str  # Target.label: scheme and host, never the secret path
    investigation_id: str
    ok: bool
    attempts: int
    status: int | None = None  # the last HTTP status, None when none came
    error: str = ""  # why it failed, secrets redacted
    seconds: float = 0.0


@dataclass(frozen=True)
class TargetStats:
    """Counters of one target, for /metrics."""

    target: str
    sent: int
    failed: int  # tried and given up
    dropped: int  # never tried: the queue was full, or the notifier closed
    retries: int
    queued: int


@dataclass(frozen=True)
class _Try:
    ok: bool
    retryable: bool
    status: int | None = None
    error: str = ""
    wait_s: float | None = None  # the receiver's Retry-After


def retry_after(value: str | None, wall: float) -> float | None:
    """Seconds a Retry-After header asks for (delta seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - wall
        except (TypeError, ValueError, IndexError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def scrub(text: str, secrets: Sequence[str]) -> str:
    """`text` with every secret replaced."""
    for secret in secrets:
        text = text.replace(secret, "[REDACTED]")
    return text


_STOP = object()


@dataclass
class _Lane:
    """One target's queue, thread and counters."""

    target: Target
    queue: deque[Any] = field(default_factory=deque)
    ready: threading.Condition = field(default_factory=threading.Condition)
    thread: threading.Thread | None = None
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    retries: int = 0


class Notifier:
    """Sends each Summary to every target on background threads; see the module docstring."""

    def __init__(
        self,
        targets: Sequence[Target],
        *,
        retry: Retry | None = None,
        queue_size: int = 100,
        keep: int = 1000,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        jitter: Callable[[], float] = random.random,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retry = retry or Retry()
        self._lanes = [_Lane(t) for t in targets]
        self._queue_size = queue_size
        self._results: deque[Delivery] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._closed = False
        self._abort = threading.Event()  # close() ran out of time: stop retrying
        self._clock = clock
        self._sleep = sleep or self._abort.wait
        self._jitter = jitter
        self._transport = transport

    def send(self, summary: Summary) -> None:
        """Queue the summary for every target; never blocks, never raises."""
        try:
            if not isinstance(summary, Summary):
                raise TypeError(f"expected a Summary, got {type(summary).__name__}")
            for lane in self._lanes:
                self._enqueue(lane, summary)
        except Exception:  # an edge: telling the channel must never fail an investigation
            which = getattr(summary, "investigation_id", "?")
            log.exception("notify: could not queue investigation %s", which)

    def _enqueue(self, lane: _Lane, summary: Summary) -> None:
        with lane.ready:
            why = "notifier closed" if self._closed else ""
            if not why and len(lane.queue) >= self._queue_size:
                why = f"queue full ({self._queue_size} waiting)"
            if not why:
                lane.queue.append(summary)
                lane.ready.notify()
        if why:
            self._drop(lane, summary, why)
        else:
            self._start(lane)

    def _start(self, lane: _Lane) -> None:
        with self._lock:
            if lane.thread is None:
                name = f"warroom-notify-{self._lanes.index(lane)}"
                lane.thread = threading.Thread(target=self._run, args=(lane,), name=name)
                lane.thread.daemon = True  # a stuck receiver must not keep the process alive
                lane.thread.start()

    def _drop(self, lane: _Lane, summary: Summary, why: str) -> None:
        log.warning("notify %s: not sent (%s)", lane.target.label, why)
        self._record(
            lane, Delivery(lane.target.label, summary.investigation_id, False, 0, None, why)
        )

    def _record(self, lane: _Lane, delivery: Delivery) -> None:
        with self._lock:
            self._results.append(delivery)
            if delivery.ok:
                lane.sent += 1
            elif delivery.attempts:
                lane.failed += 1
            else:
                lane.dropped += 1
            lane.retries += max(0, delivery.attempts - 1)

    def _run(self, lane: _Lane) -> None:
        with httpx.Client(transport=self._transport, follow_redirects=False) as client:
            while (item := self._next(lane)) is not _STOP:
                try:
                    self._record(lane, self._deliver(client, lane.target, item))
                except Exception:  # a bug here must not kill the lane for later messages
                    log.exception("notify %s: delivery crashed", lane.target.label)
                    failed = Delivery(lane.target.label, item.investigation_id, False, 1)
                    self._record(lane, replace(failed, error="crashed (see the log)"))

    def _next(self, lane: _Lane) -> Any:
        while True:
            with lane.ready:
                while not lane.queue:
                    lane.ready.wait()
                item = lane.queue.popleft()
            if item is _STOP or not self._abort.is_set():
                return item
            self._drop(lane, item, "not sent: the notifier closed before its turn")

    def _deliver(self, client: httpx.Client, target: Target, summary: Summary) -> Delivery:
        body = encode(target.kind, summary)
        started = self._clock()
        attempt, outcome = 0, _Try(False, False, error="not tried")
        while attempt < self.retry.attempts and not self._abort.is_set():
            attempt += 1
            left = self.retry.deadline_s - (self._clock() - started)
            outcome = self._attempt(client, target, body, max(0.05, min(target.timeout_s, left)))
            if outcome.ok or not outcome.retryable or attempt == self.retry.attempts:
                break
            wait = self._backoff(attempt) if outcome.wait_s is None else outcome.wait_s
            if self._clock() - started + wait > self.retry.deadline_s:
                outcome = _Try(False, False, outcome.status, f"{outcome.error}; past the deadline")
                break
            self._sleep(wait)
        seconds = self._clock() - started
        error = "" if outcome.ok else scrub(outcome.error, target.secrets())
        if error:
            log.warning("notify %s: gave up after %d attempt(s): %s", target.label, attempt, error)
        return Delivery(
            target.label,
            summary.investigation_id,
            outcome.ok,
            attempt,
            outcome.status,
            error,
            seconds,
        )

    def _backoff(self, attempt: int) -> float:
        cap = min(self.retry.max_s, self.retry.base_s * 2 ** (attempt - 1))
        return cap / 2 + self._jitter() * cap / 2  # "equal jitter": spread, never zero

    def _attempt(self, client: httpx.Client, target: Target, body: bytes, timeout: float) -> _Try:
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **target.headers}
        try:
            response = client.post(target.url, content=body, headers=headers, timeout=timeout)
        except httpx.TimeoutException as err:
            return _Try(False, True, error=f"timed out ({type(err).__name__})")
        except httpx.TransportError as err:
            return _Try(False, True, error=f"connection failed ({type(err).__name__}: {err})")
        except httpx.HTTPError as err:
            return _Try(False, False, error=f"{type(err).__name__}: {err}")
        status = response.status_code
        if 200 <= status < 300:
            return _Try(True, False, status)
        words = f"HTTP {status}: {_cut(response.text.strip(), 200)}".rstrip(": ")
        if status == 429 or status >= 500:
            wait = retry_after(response.headers.get("Retry-After"), time.time())
            return _Try(False, True, status, words, wait)
        return _Try(False, False, status, words)  # 4xx: a bad URL or token, not a passing fault

    @property
    def results(self) -> tuple[Delivery, ...]:
        """The latest deliveries (at most `keep`), oldest first."""
        with self._lock:
            return tuple(self._results)

    def stats(self) -> tuple[TargetStats, ...]:
        """Counters per target."""
        with self._lock:
            return tuple(
                TargetStats(
                    lane.target.label,
                    lane.sent,
                    lane.failed,
                    lane.dropped,
                    lane.retries,
                    sum(1 for item in lane.queue if item is not _STOP),
                )
                for lane in self._lanes
            )

    def close(self, timeout: float = 10.0) -> bool:
        """Stop taking summaries and deliver what is queued within `timeout` seconds; False
        when some were cut short (recorded as dropped or failed)."""
        ends = time.monotonic() + timeout
        with self._lock:
            self._closed = True
        for lane in self._lanes:
            with lane.ready:
                lane.queue.append(_STOP)
                lane.ready.notify()
        drained = self._join(ends)
        if not drained:
            self._abort.set()  # retries stop, queued summaries are dropped, sleeps end now
            self._join(time.monotonic() + 1.0)
        return drained

    def _join(self, ends: float) -> bool:
        for lane in self._lanes:
            if lane.thread is not None:
                lane.thread.join(max(0.0, ends - time.monotonic()))
        return all(lane.thread is None or not lane.thread.is_alive() for lane in self._lanes)

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
