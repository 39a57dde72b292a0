"""warroom traces its own investigations: one span per agent call, exportable as OTLP/JSON.

A small tracer instead of the OpenTelemetry SDK (an optional dependency we do not need for
this): spans nest through a ContextVar, so an agent called from inside another agent's `run`
becomes its child. Threads do not inherit ContextVars by themselves; whoever starts a thread
copies the caller's context into it, as `call()` and `LocalExecutor` do:

    tracer = Tracer()
    with tracer.span("investigate", incident="shop-1"):
        job = in_current_context(work, item)     # captures the current span as parent
        pool.submit(job)                         # spans opened in `work` nest under it
    print(tracer.export_json())                  # ExportTraceServiceRequest (OTLP/JSON)

Inside an agent's `run`, `current_span()` is the agent's own span, so an agent can add an
attribute (e.g. tokens spent) that a budget can later sum.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, copy_context
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
AttributeValue = str | bool | int | float

SCOPE_NAME = "warroom.agents"
SPAN_KIND_INTERNAL = 1
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2

_CURRENT: ContextVar[ActiveSpan | None] = ContextVar("warroom_current_span", default=None)


def _random_hex(n_bytes: int) -> str:
    return os.urandom(n_bytes).hex()


@dataclass(frozen=True)
class SpanRecord:
    """A finished span: ids are lowercase hex (32 for traces, 16 for spans), times in ns."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str  # "" for a root span
    start_ns: int
    end_ns: int
    attributes: tuple[tuple[str, AttributeValue], ...]
    error: bool = False
    message: str = ""

    def attribute(self, key: str) -> AttributeValue | None:
        """One attribute's value, or None when the span does not carry it."""
        return dict(self.attributes).get(key)


class ActiveSpan:
    """A span while it is open: attributes may be added and the span marked failed.

    Writes after the span ended are ignored: a timed-out agent's abandoned worker thread may
    still hold it.
    """

    def __init__(self, name: str, trace_id: str, span_id: str, parent_id: str) -> None:
        self.name, self.trace_id, self.span_id, self.parent_id = name, trace_id, span_id, parent_id
        self._attributes: dict[str, AttributeValue] = {}
        self._error, self._message, self._ended = False, "", False
        self._lock = threading.Lock()

    def set(self, key: str, value: AttributeValue) -> None:
        """Add or replace one attribute."""
        with self._lock:
            if not self._ended:
                self._attributes[key] = value

    def fail(self, message: str) -> None:
        """Mark the span failed (OTLP status code 2) with a message."""
        with self._lock:
            if not self._ended:
                self._error, self._message = True, message

    def _end(self, start_ns: int, end_ns: int) -> SpanRecord:
        with self._lock:
            self._ended = True
            return SpanRecord(
                self.name,
                self.trace_id,
                self.span_id,
                self.parent_id,
                start_ns,
                end_ns,
                tuple(self._attributes.items()),
                self._error,
                self._message,
            )


class Tracer:
    """Records finished spans in memory; thread-safe. Export with `export()` or `export_json()`.

    `clock_ns` gives span start times (wall clock, ns); durations come from a monotonic clock.
    `new_id(n)` returns n random bytes as hex; inject a seeded one for reproducible ids.
    """

    def __init__(
        self,
        service_name: str = "warroom",
        clock_ns: Callable[[], int] = time.time_ns,
        new_id: Callable[[int], str] = _random_hex,
    ) -> None:
        self.service_name = service_name
        self._clock_ns, self._new_id = clock_ns, new_id
        self._spans: list[SpanRecord] = []
        self._lock = threading.Lock()

    @contextmanager
    def span(self, name: str, **attributes: AttributeValue) -> Iterator[ActiveSpan]:
        """Open a span, child of the current one (in this thread's context), for the block.

        An exception escaping the block marks the span failed and propagates.
        """
        parent = _CURRENT.get()
        trace_id = parent.trace_id if parent else self._new_id(16)
        active = ActiveSpan(name, trace_id, self._new_id(8), parent.span_id if parent else "")
        for key, value in attributes.items():
            active.set(key, value)
        start_ns, started = self._clock_ns(), time.perf_counter_ns()
        token = _CURRENT.set(active)
        try:
            yield active
        except BaseException as exc:
            active.fail(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            _CURRENT.reset(token)
            record = active._end(start_ns, start_ns + time.perf_counter_ns() - started)
            with self._lock:
                self._spans.append(record)

    def finished(self) -> list[SpanRecord]:
        """The spans finished so far, in the order they ended."""
        with self._lock:
            return list(self._spans)

    def export(self) -> dict[str, Any]:
        """The finished spans as an OTLP ExportTraceServiceRequest, in its JSON mapping."""
        return otlp_request(self.finished(), self.service_name)

    def export_json(self) -> str:
        """`export()` as a JSON string (POST it to an OTLP/HTTP collector's /v1/traces)."""
        return json.dumps(self.export(), separators=(",", ":"))


@contextmanager
def maybe_span(
    tracer: Tracer | None, name: str, **attributes: AttributeValue
) -> Iterator[ActiveSpan]:
    """`tracer.span(...)`, or a span that records nothing when there is no tracer."""
    if tracer is None:
        yield ActiveSpan(name, "", "", "")
        return
    with tracer.span(name, **attributes) as active:
        yield active


def current_span() -> ActiveSpan | None:
    """The innermost open span in this context (inside an agent's run: the agent's span)."""
    return _CURRENT.get()


def in_current_context(fn: Callable[..., T], *args: Any) -> Callable[[], T]:
    """A thunk that runs fn(*args) in a copy of the caller's context (current span included).

    Copy once per task: one Context object cannot be entered by two threads at once.
    """
    context = copy_context()
    return lambda: context.run(fn, *args)


def otlp_request(spans: list[SpanRecord], service_name: str = "warroom") -> dict[str, Any]:
    """Encode spans as an OTLP/JSON ExportTraceServiceRequest (one resource, one scope)."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [_attribute("service.name", service_name)]},
                "scopeSpans": [
                    {"scope": {"name": SCOPE_NAME}, "spans": [_otlp_span(s) for s in spans]}
                ],
            }
        ]
    }


def _otlp_span(span: SpanRecord) -> dict[str, Any]:
    # OTLP/JSON: ids are hex strings, 64-bit integers are decimal strings, enums are numbers.
    encoded: dict[str, Any] = {
        "traceId": span.trace_id,
        "spanId": span.span_id,
        "name": span.name,
        "kind": SPAN_KIND_INTERNAL,
        "startTimeUnixNano": str(span.start_ns),
        "endTimeUnixNano": str(span.end_ns),
        "attributes": [_attribute(k, v) for k, v in span.attributes],
        "status": {"code": STATUS_ERROR if span.error else STATUS_OK},
    }
    if span.parent_id:
        encoded["parentSpanId"] = span.parent_id
    if span.message:
        encoded["status"]["message"] = span.message
    return encoded


def _attribute(key: str, value: AttributeValue) -> dict[str, Any]:
    if isinstance(value, bool):  # before int: bool is an int subclass
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": str(value)}}
