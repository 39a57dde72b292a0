"""Jaeger: the spans of a window from the query service's HTTP API (the one the Jaeger UI uses).

    source, = sources(Config(url="http://jaeger-query:16686"))
    batch = source.fetch(TimeRange(start, end), time.monotonic() + 60)

`GET /api/services` names the services (or the config does), then `GET /api/traces?service=
&start=&end=&limit=` (microseconds) lists each one's traces with all their spans. A span's
service is its `processes[processID].serviceName`, its pod the process's `k8s.pod.name` (or a
Jaeger client's `hostname`); its parent the CHILD_OF reference; it is an error when tagged
`error=true`, `otel.status_code=ERROR` or an HTTP status of 500 or more; a client (or producer)
span's peer is its `peer.service`, `server.address` or `net.peer.name`, as OTLP's is. A trace
that touches several services comes back for each: it is stored once.

Jaeger's error envelope (`{"data": null, "errors": [{"code", "msg"}]}`) is a BackendError
naming Jaeger, the path and the message; a span that cannot be read is skipped and counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict, Field

from warroom.errors import BackendError
from warroom.intake.otlp import PEER_KEYS, POD_NAME, SPAN_ID_BYTES, TRACE_ID_BYTES, hex_id
from warroom.model import Span, TimeRange
from warroom.telemetry._paging import (
    MICROS,
    HttpSource,
    Skips,
    fan_out,
    from_units,
    integer,
    span_columns,
    to_units,
)
from warroom.telemetry.http import Endpoint, request_json
from warroom.telemetry.sources import Batch, Source

SERVICES = "/api/services"
TRACES = "/api/traces"
HEX = frozenset("0123456789abcdefABCDEF")
POD_TAGS = (POD_NAME, "hostname")  # OpenTelemetry's resource attribute, a Jaeger client's tag
PEER_KINDS = {"client", "producer"}  # the kinds whose peer tags name the callee
STATUS_TAGS = ("http.status_code", "http.response.status_code")


class Config(Endpoint):
    """A Jaeger query endpoint, the services to ask for and the per-service cap."""

    model_config = ConfigDict(extra="forbid")

    services: tuple[str, ...] = ()  # empty: every service /api/services lists
    # Jaeger traces itself under these names: its own queries are not the incident.
    exclude_services: tuple[str, ...] = ("jaeger-query", "jaeger-all-in-one", "jaeger")
    max_traces: int = Field(default=500, ge=1, le=100_000)
    concurrency: int = Field(default=4, ge=1, le=32)


def sources(config: Config) -> list[Source]:
    """The Jaeger source for one endpoint."""
    return [JaegerSource(config)]


class JaegerSource(HttpSource):
    """Spans of every trace of every service in a window, each span once."""

    name = "jaeger"
    table = "spans"

    config: Config

    def identity(self) -> str:
        """URL, services and cap: what the rows depend on (never a credential)."""
        c = self.config
        services = ",".join(c.services) or "*"
        excluded = ",".join(c.exclude_services)
        return f"jaeger:{c.url.rstrip('/')}|{services}|-{excluded}|max={c.max_traces}"

    def fetch(self, window: TimeRange, deadline: float) -> Batch:
        """Every service's traces starting in the window, their spans stored once."""
        services = self._services(deadline)
        start, end = to_units(window.start, MICROS), to_units(window.end, MICROS)
        answers = fan_out(
            lambda s: self._traces(s, start, end, deadline), services, self.config.concurrency
        )
        skips = Skips()
        kept: dict[tuple[str, str], Span] = {}
        capped = []
        for service, traces in zip(services, answers, strict=True):
            if len(traces) >= self.config.max_traces:
                capped.append(service)
            for i, trace in enumerate(traces):
                for span in _trace_spans(trace, f"{service}: data[{i}]", skips):
                    kept.setdefault((span.trace_id, span.span_id), span)
        notes = list(skips.notes(self.name))
        if capped:
            notes.append(
                f"{self.name}: the trace search hit its limit of {self.config.max_traces} traces "
                f"for {', '.join(capped)}: the window holds more, and only these were read"
            )
        return Batch(span_columns(kept.values()), tuple(notes))

    def _services(self, deadline: float) -> list[str]:
        if self.config.services:
            names = list(self.config.services)
        else:
            data = self._get(SERVICES, deadline, {})
            if not all(isinstance(name, str) for name in data):
                raise BackendError(f"{self.name}: {SERVICES} answered names that are not strings")
            names = sorted(data)
        excluded = set(self.config.exclude_services)
        return [name for name in names if name and name not in excluded]

    def _traces(self, service: str, start: int, end: int, deadline: float) -> list[Any]:
        params = {
            "service": service,
            "start": str(start),
            "end": str(end),
            "limit": str(self.config.max_traces),
        }
        return self._get(TRACES, deadline, params)

    def _get(self, path: str, deadline: float, params: dict[str, str]) -> list[Any]:
        """The `data` list of a Jaeger answer; its `errors` envelope becomes a BackendError."""
        body = request_json(self._client.get(), self.name, "GET", path, deadline, params=params)
        if not isinstance(body, dict):
            raise BackendError(f"{self.name}: {path} answered JSON that is not an object")
        errors = body.get("errors")
        data = body.get("data")
        if errors and not isinstance(data, list):
            raise BackendError(f"{self.name}: {path} answered an error: {_first_error(errors)}")
        if data is None:
            return []
        if not isinstance(data, list):
            raise BackendError(f"{self.name}: {path} answered 'data' that is not a list")
        return data


def _first_error(errors: Any) -> str:
    first = errors[0] if isinstance(errors, list) and errors else errors
    if isinstance(first, dict):
        code, msg = first.get("code"), first.get("msg")
        return f"{code} {msg}"[:300] if code else str(msg)[:300]
    return str(first)[:300]


def _trace_spans(trace: Any, where: str, skips: Skips) -> list[Span]:
    if not isinstance(trace, dict) or not isinstance(trace.get("spans"), list):
        skips.add("malformed trace(s) skipped", where)
        return []
    processes = trace.get("processes")
    processes = processes if isinstance(processes, dict) else {}
    out = []
    for j, raw in enumerate(trace["spans"]):
        span = _span(raw, processes)
        if span is None:
            skips.add("malformed span(s) skipped", f"{where}.spans[{j}]")
        else:
            out.append(span)
    return out


def _span(raw: Any, processes: Mapping[str, Any]) -> Span | None:
    """One Jaeger span as a Span, or None when it lacks what a span must have."""
    if not isinstance(raw, dict):
        return None
    trace_id, span_id = _hex(raw.get("traceID"), 32), _hex(raw.get("spanID"), 16)
    begin, took = integer(raw.get("startTime")), integer(raw.get("duration"))
    process = processes.get(str(raw.get("processID"))) or raw.get("process")
    if not isinstance(process, dict):
        return None
    service = process.get("serviceName")
    if not (trace_id and span_id and isinstance(service, str) and service):
        return None
    if begin is None or took is None or took < 0:
        return None
    start, end = from_units(begin, MICROS), from_units(begin + took, MICROS)
    tags, process_tags = _tags(raw.get("tags")), _tags(process.get("tags"))
    operation = raw.get("operationName")
    if start is None or end is None or tags is None or process_tags is None:
        return None
    kind = str(tags.get("span.kind", "")).lower()
    return Span(
        trace_id=hex_id(trace_id, TRACE_ID_BYTES),
        span_id=hex_id(span_id, SPAN_ID_BYTES),
        parent_id=_parent(raw, trace_id),
        service=service,
        operation=operation if isinstance(operation, str) else "",
        start=start,
        end=end,
        error=_is_error(tags),
        pod=next((str(process_tags[k]) for k in POD_TAGS if process_tags.get(k)), service),
        peer=next((str(tags[k]) for k in PEER_KEYS if tags.get(k)), "")
        if kind in PEER_KINDS
        else "",
    )


def _hex(value: Any, digits: int) -> str:
    if isinstance(value, str) and 0 < len(value) <= digits and set(value) <= HEX:
        return value
    return ""


def _tags(value: Any) -> dict[str, Any] | None:
    """Jaeger's [{key, type, value}] as a dict (absent: empty; not a tag list: None)."""
    if value is None:
        return {}
    if not isinstance(value, list):
        return None
    out: dict[str, Any] = {}
    for tag in value:
        if not isinstance(tag, dict) or not isinstance(tag.get("key"), str):
            return None
        out[tag["key"]] = tag.get("value")
    return out


def _parent(raw: Mapping[str, Any], trace_id: str) -> str:
    """The CHILD_OF reference within the same trace (FOLLOWS_FROM is a link, as OTLP's are);
    the deprecated parentSpanID field when there are no references."""
    references = raw.get("references")
    for ref in references if isinstance(references, list) else []:
        if not isinstance(ref, dict) or ref.get("refType") != "CHILD_OF":
            continue
        parent = _hex(ref.get("spanID"), 16)
        if parent and ref.get("traceID", trace_id) == trace_id:
            return hex_id(parent, SPAN_ID_BYTES)
    return hex_id(_hex(raw.get("parentSpanID"), 16), SPAN_ID_BYTES)


def _is_error(tags: Mapping[str, Any]) -> bool:
    if tags.get("error") in (True, "true"):
        return True
    if str(tags.get("otel.status_code", "")).upper() == "ERROR":
        return True
    for key in STATUS_TAGS:
        value = tags.get(key)
        code = value if isinstance(value, int) and not isinstance(value, bool) else integer(value)
        if code is not None and code >= 500:
            return True
    return False
