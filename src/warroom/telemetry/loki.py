"""Loki: log lines of a window from `GET /loki/api/v1/query_range` into the store's logs table.

    source, = sources(Config(url="http://loki:3100", headers={"X-Scope-OrgID": "team-a"}))
    batch = source.fetch(TimeRange(start, end), time.monotonic() + 30)

One LogQL selector (default: every stream with a service_name) is asked with nanosecond
`start`/`end` written as integers, `direction=forward` and a `limit`. A page that comes back
full (or whose `stats.summary.totalEntriesReturned` reaches the limit) is followed from its last
timestamp: lines of that nanosecond already read are recognised and not repeated. After
`max_pages` pages the rest is left out and a "truncated" note says from when. Lines that are not
[ns, line] or [ns, line, metadata] are skipped and counted, the rest of the page is kept.

Loki answers plain text for many errors (a LogQL parse error is a 400 with a text body): every
failure is a BackendError naming Loki, the path and the backend's words.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ConfigDict, Field

from warroom.errors import BackendError
from warroom.intake.otlp import SPAN_ID_BYTES, TRACE_ID_BYTES, UNKNOWN_SERVICE, hex_id
from warroom.model import LogRecord, TimeRange, iso
from warroom.telemetry._paging import (
    NANOS,
    HttpSource,
    Skips,
    from_units,
    integer,
    log_columns,
    tenant,
    to_units,
)
from warroom.telemetry.http import Endpoint, request_json
from warroom.telemetry.sources import Batch, Source

PATH = "/loki/api/v1/query_range"
# Asks Loki 3 to keep structured metadata and parsed labels apart from the stream labels, in a
# third element of each entry; older Loki ignores the header and merges them into the labels.
ENCODING_HEADER = {"X-Loki-Response-Encoding-Flags": "categorize-labels"}
UNKNOWN_LEVELS = {"unknown", ""}  # Loki's detected_level when it could not tell
_LEVEL_FIELD = re.compile(
    r"""(?:^|[\s{,;])["']?(?:level|lvl|severity)["']?\s*[=:]\s*["']?([A-Za-z]{3,8})\b""",
    re.IGNORECASE,
)
_LEVEL_WORD = re.compile(r"\b(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|FATAL|CRITICAL|PANIC)\b")
_TRACE_IN_LINE = re.compile(r"""\btrace_?id["']?\s*[=:]\s*["']?([0-9a-fA-F]{16,32})\b""", re.I)
_SPAN_IN_LINE = re.compile(r"""\bspan_?id["']?\s*[=:]\s*["']?([0-9a-fA-F]{16})\b""", re.I)
MAPPING_FIELDS = {
    "query",
    "service_labels",
    "pod_labels",
    "level_labels",
    "trace_id_keys",
    "span_id_keys",
    "limit",
    "max_pages",
}
LEVEL_SCAN_CHARS = 200  # a level word further into a line is part of the message, not its level


class Config(Endpoint):
    """A Loki endpoint and how its streams map to services, pods, levels and trace ids."""

    model_config = ConfigDict(extra="forbid")

    query: str = '{service_name=~".+"}'
    service_labels: tuple[str, ...] = ("service_name", "service", "app", "job", "container")
    pod_labels: tuple[str, ...] = ("k8s_pod_name", "pod", "pod_name")
    level_labels: tuple[str, ...] = ("level", "severity_text", "detected_level", "severity")
    trace_id_keys: tuple[str, ...] = ("trace_id", "traceid", "traceID", "trace.id")
    span_id_keys: tuple[str, ...] = ("span_id", "spanid", "spanID", "span.id")
    # Loki refuses a limit above its max_entries_limit_per_query (5000 by default).
    limit: int = Field(default=5000, ge=1, le=100_000)
    max_pages: int = Field(default=20, ge=1, le=10_000)


def sources(config: Config) -> list[Source]:
    """The Loki source for one endpoint."""
    return [LokiSource(config)]


@dataclass(frozen=True)
class _Entry:
    ns: int
    key: tuple[Any, ...]  # what makes two entries of one nanosecond the same line
    record: LogRecord


@dataclass(frozen=True)
class _Page:
    entries: list[_Entry]  # sorted by time
    full: bool  # the limit was reached: there may be more


class LokiSource(HttpSource):
    """Log lines of a window from one Loki (one LogQL selector), paged."""

    name = "loki"
    table = "logs"

    config: Config

    def identity(self) -> str:
        """URL, tenant, query and paging: what the rows depend on (never a credential)."""
        c = self.config
        settings = json.dumps(c.model_dump(include=MAPPING_FIELDS), sort_keys=True)
        return f"loki:{c.url.rstrip('/')}|tenant={tenant(c)}|{settings}"

    def fetch(self, window: TimeRange, deadline: float) -> Batch:
        """Every line of [start, end), paged forward; truncation and skips are noted."""
        start, end = to_units(window.start, NANOS), to_units(window.end, NANOS)
        skips = Skips()
        records: list[LogRecord] = []
        edge: Counter[tuple[Any, ...]] = Counter()  # lines at `start` already taken
        for _ in range(self.config.max_pages):
            page = self._page(start, end, deadline, skips)
            fresh = _without_repeats(page.entries, start, edge)
            records.extend(e.record for e in fresh)
            if not page.full:
                return Batch(log_columns(records), skips.notes(self.name))
            if not page.entries:  # a full page of nothing readable: no time to page on from
                break
            last = page.entries[-1].ns
            if last == start and not fresh:
                # More lines in one nanosecond than a page holds: step past it, and say so.
                skips.add("page(s) held only one nanosecond's lines: more of it may be missing")
                start, edge = last + 1, Counter()
                continue
            # What is taken at `last` now: the fresh lines there, and, when the page did not get
            # past its first nanosecond, those taken there before (the order may differ per page).
            taken = Counter(e.key for e in fresh if e.ns == last)
            start, edge = last, (edge + taken if last == start else taken)
        note = (
            f"{self.name}: truncated: the limit of {self.config.max_pages} pages of "
            f"{self.config.limit} lines was reached, lines from {iso(start / NANOS)} on not fetched"
        )
        return Batch(log_columns(records), (*skips.notes(self.name), note))

    def _page(self, start: int, end: int, deadline: float, skips: Skips) -> _Page:
        params = {
            "query": self.config.query,
            "start": str(start),
            "end": str(end),
            "limit": str(self.config.limit),
            "direction": "forward",
        }
        body = request_json(
            self._client.get(),
            self.name,
            "GET",
            PATH,
            deadline,
            params=params,
            headers=ENCODING_HEADER,
        )
        result, returned = _result(body)
        entries: list[_Entry] = []
        raw_count = 0
        for i, stream in enumerate(result):
            parsed, seen = self._stream(stream, f"result[{i}]", skips)
            entries.extend(parsed)
            raw_count += seen
        entries.sort(key=lambda e: e.ns)
        full = max(raw_count, returned) >= self.config.limit
        return _Page(entries, full)

    def _stream(self, stream: Any, where: str, skips: Skips) -> tuple[list[_Entry], int]:
        """The entries of one stream, and how many values it held (bad ones included)."""
        if not isinstance(stream, dict) or not isinstance(stream.get("values"), list):
            skips.add("malformed stream(s) skipped", f"{where} is not {{stream, values}}")
            return [], 0
        labels = _labels(stream.get("stream"))
        if labels is None:
            skips.add("malformed stream(s) skipped", f"{where}.stream is not a label object")
            return [], len(stream["values"])
        out = []
        for j, value in enumerate(stream["values"]):
            entry = self._entry(labels, value)
            if entry is None:
                skips.add("malformed entries skipped", f"{where}.values[{j}]: {_brief(value)}")
            else:
                out.append(entry)
        return out, len(stream["values"])

    def _entry(self, labels: dict[str, str], value: Any) -> _Entry | None:
        if not isinstance(value, list) or len(value) not in (2, 3):
            return None
        ns, line = integer(value[0]) if isinstance(value[0], str) else None, value[1]
        extra = _metadata(value[2]) if len(value) == 3 else {}
        if ns is None or not isinstance(line, str) or extra is None:
            return None
        seconds = from_units(ns, NANOS)
        if seconds is None:
            return None
        fields = {**labels, **extra}
        service = _first(labels, self.config.service_labels) or UNKNOWN_SERVICE
        record = LogRecord(
            time=seconds,
            service=service,
            message=line,
            level=self._level(fields, line),
            # The OTLP reader names the pod after the service when none is known: so here.
            pod=_first(fields, self.config.pod_labels) or service,
            trace_id=_id(fields, self.config.trace_id_keys, _TRACE_IN_LINE, line, TRACE_ID_BYTES),
            span_id=_id(fields, self.config.span_id_keys, _SPAN_IN_LINE, line, SPAN_ID_BYTES),
        )
        key = (tuple(sorted(labels.items())), line, tuple(sorted(extra.items())))
        return _Entry(ns, key, record)

    def _level(self, fields: Mapping[str, str], line: str) -> str:
        for key in self.config.level_labels:
            value = fields.get(key, "")
            if value.lower() not in UNKNOWN_LEVELS:
                return value
        return line_level(line)


def line_level(line: str) -> str:
    """The level a line states (`level=warn`, `"level":"error"`, `ERROR ...`), or ''."""
    head = line[:LEVEL_SCAN_CHARS]
    match = _LEVEL_FIELD.search(head) or _LEVEL_WORD.search(head)
    return match.group(1) if match else ""


def _result(body: Any) -> tuple[list[Any], int]:
    """The streams of a query_range answer and the entry count its statistics report."""
    if not isinstance(body, dict):
        raise BackendError(f"loki: {PATH} answered JSON that is not an object")
    if body.get("status") != "success":
        why = body.get("error") or body.get("message") or f"status {str(body.get('status'))[:40]!r}"
        raise BackendError(f"loki: {PATH} answered an error: {str(why)[:300]}")
    data = body.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("result"), list):
        raise BackendError(f"loki: {PATH} answered no data.result list")
    kind = data.get("resultType")
    if kind != "streams":
        raise BackendError(
            f"loki: {PATH} answered resultType {str(kind)[:40]!r}, not streams "
            "(the query must select log lines, not compute a metric)"
        )
    return data["result"], _returned(data.get("stats"))


def _returned(stats: Any) -> int:
    summary = stats.get("summary") if isinstance(stats, dict) else None
    value = summary.get("totalEntriesReturned") if isinstance(summary, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _without_repeats(
    entries: list[_Entry], start: int, edge: Counter[tuple[Any, ...]]
) -> list[_Entry]:
    """The entries not read before: a page starts at the last page's final nanosecond, so the
    lines of that nanosecond come again (each as often as it was already taken)."""
    left = Counter(edge)
    fresh = []
    for entry in entries:
        if entry.ns == start and left[entry.key] > 0:
            left[entry.key] -= 1
            continue
        fresh.append(entry)
    return fresh


def _labels(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None
    if not all(isinstance(v, str) for v in value.values()):
        return None
    return dict(value)


def _metadata(value: Any) -> dict[str, str] | None:
    """The third element: {structuredMetadata, parsed} (categorized) or a flat label map."""
    if not isinstance(value, dict):
        return None
    if "structuredMetadata" in value or "parsed" in value:
        merged: dict[str, str] = {}
        for group in ("parsed", "structuredMetadata"):  # metadata wins: it was sent, not guessed
            labels = _labels(value.get(group) or {})
            if labels is None:
                return None
            merged.update(labels)
        return merged
    return _labels(value)


def _first(fields: Mapping[str, str], keys: tuple[str, ...]) -> str:
    return next((fields[k] for k in keys if fields.get(k)), "")


def _id(
    fields: Mapping[str, str], keys: tuple[str, ...], pattern: re.Pattern[str], line: str, size: int
) -> str:
    """A trace or span id as the span tables hold it (lowercase hex, padded like OTLP's)."""
    value = _first(fields, keys)
    if not value:
        match = pattern.search(line)
        value = match.group(1) if match else ""
    return hex_id(value, size)


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."
