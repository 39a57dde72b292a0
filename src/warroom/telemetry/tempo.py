"""Tempo: the spans of a window's traces, found by a TraceQL search and read trace by trace.

    source, = sources(Config(url="http://tempo:3200", query='{resource.namespace="shop"}'))
    batch = source.fetch(TimeRange(start, end), time.monotonic() + 60)

`GET /api/search?q=<TraceQL>&start=&end=&limit=&spss=` (seconds) lists the traces of the window,
at most `max_traces` (a search that hits the cap is noted: the window holds more traces). Each
trace is then read whole from `/api/traces/<id>` (or `/api/v2/traces/<id>`) as OTLP JSON, in
any of the shapes Tempo has answered: `{"batches": [...]}` (older releases), `{"resourceSpans":
[...]}`, and v2's `{"trace": {...}, "status": "PARTIAL", "message": ...}`. Spans are read by the
OTLP reader, so a trace from Tempo equals the same trace read from an OTLP file.

A trace Tempo no longer finds (404) or whose document has a broken span loses only that trace
or span, with a note; a failing search or a failing trace read (5xx, timeout, not JSON) is a
BackendError for the whole window, which a later run fetches again.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ConfigDict, Field

from warroom.errors import BackendError, InputError
from warroom.intake.otlp import checked_spans, otlp_spans
from warroom.model import Span, TimeRange
from warroom.telemetry._paging import HttpSource, Skips, fan_out, span_columns, tenant
from warroom.telemetry.http import Endpoint, request_json
from warroom.telemetry.sources import Batch, Source

SEARCH = "/api/search"
ACCEPT_JSON = {"Accept": "application/json"}  # Tempo answers protobuf when asked for it
HEX = frozenset("0123456789abcdefABCDEF")
SCOPE_KEYS = ("scopeSpans", "instrumentationLibrarySpans")


class Config(Endpoint):
    """A Tempo endpoint, the TraceQL query that picks a window's traces, and the caps."""

    model_config = ConfigDict(extra="forbid")

    query: str = "{}"
    max_traces: int = Field(default=500, ge=1, le=100_000)
    api: Literal["v1", "v2"] = "v1"
    concurrency: int = Field(default=4, ge=1, le=32)
    # A trace is looked up in the blocks of the window widened by this much on both sides:
    # without a range Tempo scans every block; too narrow a range returns partial traces.
    lookup_margin_s: float = Field(default=3600.0, ge=0, le=7 * 86400)


def sources(config: Config) -> list[Source]:
    """The Tempo source for one endpoint."""
    return [TempoSource(config)]


@dataclass
class _Read:
    """One trace's spans and what was wrong with it."""

    spans: list[Span] = field(default_factory=list)
    skips: Skips = field(default_factory=Skips)


class TempoSource(HttpSource):
    """Spans of the traces a TraceQL search finds in a window."""

    name = "tempo"
    table = "spans"

    config: Config

    def identity(self) -> str:
        """URL, tenant, query and cap: what the rows depend on (never a credential)."""
        c = self.config
        return f"tempo:{c.url.rstrip('/')}|tenant={tenant(c)}|{c.query}|max={c.max_traces}|{c.api}"

    def fetch(self, window: TimeRange, deadline: float) -> Batch:
        """The spans of every trace the search finds in the window (at most max_traces)."""
        skips = Skips()
        ids, capped = self._search(window, deadline, skips)
        reads = fan_out(lambda t: self._trace(t, window, deadline), ids, self.config.concurrency)
        spans = [span for read in reads for span in read.spans]
        notes: list[str] = []
        spans = checked_spans(spans, self.name, notes)
        degraded = [*skips.notes(self.name), *(n for r in reads for n in r.skips.notes(self.name))]
        if capped:
            degraded.append(
                f"{self.name}: the search hit its limit of {self.config.max_traces} traces: "
                "the window holds more, and only these were read"
            )
        return Batch(span_columns(spans), tuple(dict.fromkeys([*degraded, *notes])))

    def _search(self, window: TimeRange, deadline: float, skips: Skips) -> tuple[list[str], bool]:
        params = {
            "q": self.config.query,
            "start": str(math.floor(window.start)),
            "end": str(math.ceil(window.end)),
            "limit": str(self.config.max_traces),
            "spss": "1",  # the traces are read whole afterwards: span sets only cost bytes
        }
        body = request_json(self._client.get(), self.name, "GET", SEARCH, deadline, params=params)
        if not isinstance(body, dict):
            raise BackendError(f"{self.name}: {SEARCH} answered JSON that is not an object")
        traces = body.get("traces") or []
        if not isinstance(traces, list):
            raise BackendError(f"{self.name}: {SEARCH} answered 'traces' that is not a list")
        ids: dict[str, None] = {}
        for i, trace in enumerate(traces):
            trace_id = trace.get("traceID") if isinstance(trace, dict) else None
            if isinstance(trace_id, str) and 0 < len(trace_id) <= 32 and set(trace_id) <= HEX:
                ids.setdefault(trace_id.lower(), None)
            else:
                skips.add("search result(s) without a usable traceID skipped", f"traces[{i}]")
        return list(ids), len(traces) >= self.config.max_traces

    def _trace(self, trace_id: str, window: TimeRange, deadline: float) -> _Read:
        prefix = "/api/v2/traces/" if self.config.api == "v2" else "/api/traces/"
        path = prefix + trace_id
        margin = self.config.lookup_margin_s
        params = {
            "start": str(math.floor(window.start - margin)),
            "end": str(math.ceil(window.end + margin)),
        }
        read = _Read()
        try:
            body = request_json(
                self._client.get(),
                self.name,
                "GET",
                path,
                deadline,
                params=params,
                headers=ACCEPT_JSON,
            )
        except BackendError as err:
            # Found by the search, gone now (retention, a compaction race): lose only it.
            if err.status != 404:
                raise
            read.skips.add("trace(s) found by the search but not by id (404)", trace_id)
            return read
        doc = _document(body, path, read.skips)
        read.spans = _spans(doc, f"{path}", read.skips)
        return read


def _document(body: Any, path: str, skips: Skips) -> dict[str, Any]:
    """The trace as an OTLP document ({"resourceSpans": [...]}), whichever shape Tempo used."""
    if not isinstance(body, dict):
        raise BackendError(f"tempo: {path} answered JSON that is not an object")
    if "trace" in body:  # v2: a TraceByIDResponse
        if str(body.get("status", "")).upper() == "PARTIAL":
            why = str(body.get("message") or "no reason given")[:200]
            skips.add("trace(s) answered as partial", f"{path.rsplit('/', 1)[-1]}: {why}")
        body = body["trace"] or {}
        if not isinstance(body, dict):
            raise BackendError(f"tempo: {path} answered a 'trace' that is not an object")
    if "batches" in body and "resourceSpans" not in body:
        return {"resourceSpans": body["batches"]}
    return body


def _spans(doc: dict[str, Any], source: str, skips: Skips) -> list[Span]:
    """The spans of one trace; when one is broken, the others are kept and it is counted."""
    try:
        return otlp_spans(doc, source)
    except InputError as err:
        first = str(err)
    spans: list[Span] = []
    pieces = list(_one_span_documents(doc))
    if not pieces:  # not even a list of resources to cut into spans
        skips.add("trace document(s) not readable as OTLP skipped", first)
    for piece in pieces:
        try:
            spans.extend(otlp_spans(piece, source))
        except InputError as err:
            skips.add("malformed span(s) skipped", str(err))
    return spans


def _one_span_documents(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The document cut into one document per span, each with its resource and scope, so that
    a broken span costs only itself (a broken resource costs its spans)."""
    blocks = doc.get("resourceSpans")
    for block in blocks if isinstance(blocks, list) else [blocks]:
        if not isinstance(block, dict):
            yield {"resourceSpans": [block]}
            continue
        key = next((k for k in SCOPE_KEYS if k in block), SCOPE_KEYS[0])
        scopes = block.get(key)
        for scope in scopes if isinstance(scopes, list) else [scopes]:
            items = scope.get("spans") if isinstance(scope, dict) else None
            for item in items if isinstance(items, list) else [items]:
                inner = {**scope, "spans": [item]} if isinstance(scope, dict) else scope
                yield {"resourceSpans": [{**block, key: [inner]}]}
