"""Elasticsearch / OpenSearch: log documents of a window from `POST /<index>/_search` into the
store's logs table.

    source, = sources(Config(url="https://es:9200", index="logs-*", username="warroom", ...))
    batch = source.fetch(TimeRange(start, end), time.monotonic() + 30)

One search per page: a `range` on the time field (epoch_millis, or ISO 8601 with nanoseconds),
optionally AND a `query_string`, sorted ascending by time as nanoseconds (`numeric_type:
date_nanos`, so `date` and `date_nanos` indices page alike), `size` hits a page, the next page
after the last hit (`search_after`), up to `max_pages`, then a "truncated" note counting what
was left (the first page asks `track_total_hits`). Without point-in-time the documents do not
say in which order equal timestamps come, so the documented advice is a tiebreaker field with
one unique value per document: give it as `tiebreaker` and pages follow its sort values
exactly. Without one (most log indices have none; `_id` must not be sorted on), each next page
starts at the last page's final nanosecond again and the hits seen there (by index and id) are
recognised, so nothing is lost or repeated unless more than a page of documents share one
nanosecond (then the rest of it is skipped, and a note says so).

Fields come from `_source`, nested (`{"service": {"name": ...}}`) or dotted (`{"service.name":
...}`) or mixed, as real indices hold them; ECS names by default. A timestamp may be ISO 8601
(up to nanoseconds, any offset) or epoch milliseconds; both become the same float the OTLP
reader makes of that instant. `timed_out: true` and failed shards keep the hits and become
degraded notes; an error envelope (`error.type`, `error.reason`) is a BackendError naming the
backend, the path and the backend's words.
"""

from __future__ import annotations

import calendar
import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal
from urllib.parse import quote

from pydantic import ConfigDict, Field, field_validator

from warroom.errors import BackendError
from warroom.intake.otlp import SPAN_ID_BYTES, TRACE_ID_BYTES, UNKNOWN_SERVICE, hex_id
from warroom.model import LogRecord, TimeRange, is_valid_time, iso
from warroom.telemetry._paging import NANOS, LazyClient, Skips, integer, log_columns
from warroom.telemetry.http import Endpoint, request_json
from warroom.telemetry.sources import Batch, Source

BACKEND = "elasticsearch"
MAPPING_FIELDS = {
    "index",
    "time_field",
    "service_field",
    "level_field",
    "message_field",
    "trace_id_field",
    "span_id_field",
    "pod_fields",
    "query",
    "tiebreaker",
    "range_format",
    "size",
    "max_pages",
}
_ISO = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d{1,9}))?)?)?"
    r"(Z|[+-]\d\d(?::?\d\d)?)?",
    re.IGNORECASE,
)
_MILLIS = re.compile(r"-?\d{1,16}(?:\.\d{1,6})?")


class Config(Endpoint):
    """An Elasticsearch or OpenSearch endpoint, the indices to search and their field names."""

    model_config = ConfigDict(extra="forbid")

    index: str = "logs-*"
    time_field: str = "@timestamp"
    service_field: str = "service.name"
    level_field: str = "log.level"
    message_field: str = "message"
    trace_id_field: str = "trace.id"
    span_id_field: str = "span.id"
    pod_fields: tuple[str, ...] = ("kubernetes.pod.name", "host.name")
    query: str | None = None  # a query_string filter, e.g. 'service.name:(cart OR checkout)'
    tiebreaker: str | None = None  # a field with one unique value per document, if any
    range_format: Literal["epoch_millis", "iso"] = "epoch_millis"
    # index.max_result_window (10,000 by default) bounds one page's size
    size: int = Field(1000, ge=1, le=10_000)
    max_pages: int = Field(20, ge=1, le=10_000)

    @field_validator("index")
    @classmethod
    def _index(cls, value: str) -> str:
        if not value or any(c in value for c in '/ #?\\"<>|'):
            raise ValueError(f"index {value!r}: give an index name or pattern such as logs-*")
        return value


def sources(config: Config) -> list[Source]:
    """The logs source for one endpoint."""
    return [ElasticSource(config)]


@dataclass(frozen=True)
class _Hit:
    key: tuple[str, str]  # (_index, _id): what makes a document the same one
    sort: list[Any]
    ns: int  # the primary sort value
    record: LogRecord | None  # None when its fields are unusable (counted)


class ElasticSource:
    """Log documents of a window from one index pattern, paged with search_after."""

    name = BACKEND
    table = "logs"

    def __init__(self, config: Config) -> None:
        self.config = config
        self.path = f"/{quote(config.index, safe='*,-_.:+')}/_search"
        self._client = LazyClient(config)

    def identity(self) -> str:
        """URL, index, field mapping, query and paging (never a credential)."""
        settings = json.dumps(self.config.model_dump(include=MAPPING_FIELDS), sort_keys=True)
        return f"{BACKEND}:{self.config.url.rstrip('/')}|{settings}"

    def close(self) -> None:
        """Release the HTTP connections."""
        self._client.close()

    def fetch(self, window: TimeRange, deadline: float) -> Batch:
        """Every document of [start, end), paged; partial answers and truncation are noted."""
        skips, notes = Skips(), dict[str, None]()
        records: list[LogRecord] = []
        seen: set[tuple[str, str]] = set()
        after: list[Any] | None = None
        total: int | None = None
        for page_number in range(self.config.max_pages):
            body = self._search(window, after, deadline, first=page_number == 0)
            hits = self._hits(body, notes, skips)
            if page_number == 0:
                total = _total(body)
            fresh = [h for h in hits if h.key not in seen]
            seen.update(h.key for h in fresh)
            records.extend(h.record for h in fresh if h.record and _inside(h.record, window))
            if len(hits) < self.config.size:
                return Batch(log_columns(records), (*notes, *skips.notes(self.name)))
            after = self._after(hits, bool(fresh), skips)
        notes[self._truncated(len(seen), total, after)] = None
        return Batch(log_columns(records), (*notes, *skips.notes(self.name)))

    def _search(
        self, window: TimeRange, after: list[Any] | None, deadline: float, first: bool
    ) -> Any:
        c = self.config
        sort: list[Any] = [{c.time_field: {"order": "asc", "numeric_type": "date_nanos"}}]
        if c.tiebreaker:
            sort.append({c.tiebreaker: {"order": "asc"}})
        filters: list[Any] = [{"range": {c.time_field: self._range(window)}}]
        if c.query:
            filters.append({"query_string": {"query": c.query}})
        request: dict[str, Any] = {
            "size": c.size,
            "sort": sort,
            "query": {"bool": {"filter": filters}},
            "_source": [
                c.time_field,
                c.service_field,
                c.level_field,
                c.message_field,
                c.trace_id_field,
                c.span_id_field,
                *c.pod_fields,
            ],
            "track_total_hits": first,
            # the server's own limit, a second under ours: it answers what it has, timed_out
            "timeout": f"{max(int((deadline - time.monotonic() - 1) * 1000), 100)}ms",
        }
        if after is not None:
            request["search_after"] = after
        return request_json(
            self._client.get(), self.name, "POST", self.path, deadline, json=request
        )

    def _range(self, window: TimeRange) -> dict[str, Any]:
        """[start, end) in the chosen format, each end written so that it reads back as the
        window's own float (the rows are cut to the window exactly afterwards too)."""
        if self.config.range_format == "iso":
            gte, lt = _units(window.start, NANOS, up=False), _units(window.end, NANOS, up=True)
            fmt = "strict_date_optional_time_nanos"
            return {"gte": iso_nanos(gte), "lt": iso_nanos(lt), "format": fmt}
        gte, lt = _units(window.start, 1000, up=False), _units(window.end, 1000, up=True)
        return {"gte": gte, "lt": lt, "format": "epoch_millis"}

    def _hits(self, body: Any, notes: dict[str, None], skips: Skips) -> list[_Hit]:
        if not isinstance(body, dict):
            raise BackendError(f"{self.name}: {self.path} answered JSON that is not an object")
        if body.get("error"):
            raise BackendError(
                f"{self.name}: {self.path} answered an error: {_error(body['error'])}"
            )
        for note in _partial(body):
            notes[f"{self.name}: {note}"] = None
        hits = body.get("hits")
        items = hits.get("hits") if isinstance(hits, dict) else None
        if not isinstance(items, list):
            raise BackendError(f"{self.name}: {self.path} answered no hits.hits list")
        return [self._hit(item, i, skips) for i, item in enumerate(items)]

    def _hit(self, item: Any, i: int, skips: Skips) -> _Hit:
        sort = item.get("sort") if isinstance(item, dict) else None
        ns = integer(sort[0]) if isinstance(sort, list) and sort else None
        if ns is None or not isinstance(sort, list):
            raise BackendError(
                f"{self.name}: {self.path} hit {i} carries no numeric sort value to page on"
            )
        key = (str(item.get("_index", "")), str(item.get("_id", i)))
        source = item.get("_source")
        record = self._record(source) if isinstance(source, dict) else None
        if record is None:
            skips.add("documents skipped (no usable time or _source)", f"{key[0]}/{key[1]}")
        return _Hit(key, sort, ns, record)

    def _record(self, source: Mapping[str, Any]) -> LogRecord | None:
        c = self.config
        seconds = parse_time(field(source, c.time_field))
        if seconds is None:
            return None
        service = _text(field(source, c.service_field)) or UNKNOWN_SERVICE
        pod = next((p for p in (_text(field(source, f)) for f in c.pod_fields) if p), service)
        return LogRecord(
            time=seconds,
            service=service,
            message=_text(field(source, c.message_field)),
            level=_text(field(source, c.level_field)),
            pod=pod,
            trace_id=hex_id(_text(field(source, c.trace_id_field)), TRACE_ID_BYTES),
            span_id=hex_id(_text(field(source, c.span_id_field)), SPAN_ID_BYTES),
        )

    def _after(self, hits: list[_Hit], fresh: bool, skips: Skips) -> list[Any]:
        """Where the next page starts (see the module docstring for the two ways)."""
        last = hits[-1]
        if self.config.tiebreaker:
            return last.sort
        if not fresh or hits[0].ns == last.ns:
            # A whole page of one nanosecond: the overlap cannot move on, step past it.
            skips.add("page(s) filled by one nanosecond; documents beyond the page there lost")
            return [last.ns]
        return [last.ns - 1]  # search_after is strict: from the last nanosecond again

    def _truncated(self, read: int, total: int | None, after: list[Any] | None) -> str:
        c = self.config
        of = f" of {total}" if total is not None else ""
        since = f", documents from {iso(int(after[0]) / NANOS)} on not fetched" if after else ""
        return (
            f"{self.name}: truncated: {read}{of} documents read in the limit of "
            f"{c.max_pages} pages of {c.size}{since}"
        )


def field(source: Mapping[str, Any], name: str) -> Any:
    """A field of `_source` by its dotted name, whether the document nests it, writes the dots
    in its keys, or mixes both ({"kubernetes": {"pod.name": ...}})."""
    if name in source:
        return source[name]
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:cut])
        inner = source.get(head)
        if isinstance(inner, dict):
            found = field(inner, ".".join(parts[cut:]))
            if found is not None:
                return found
    return None


def parse_time(value: Any) -> float | None:
    """A document's timestamp (ISO 8601 text or epoch milliseconds) as epoch seconds, or None.

    Computed in whole nanoseconds and divided once, so the float equals what the OTLP reader
    makes of the same instant."""
    if isinstance(value, list) and value:
        value = value[0]
    ns: int | None = None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and math.isfinite(value):
        ns = round(Fraction(repr(value)) * 10**6) if isinstance(value, float) else value * 10**6
    elif isinstance(value, str):
        ns = _millis_text(value) if _MILLIS.fullmatch(value) else _iso_ns(value)
    if ns is None:
        return None
    seconds = ns / NANOS
    return seconds if is_valid_time(seconds) else None


def iso_nanos(ns: int) -> str:
    """Nanoseconds since the epoch as ISO 8601 UTC with nine fraction digits."""
    whole, frac = divmod(ns, NANOS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{frac:09d}Z"


def _units(seconds: float, per_second: int, up: bool) -> int:
    """Seconds as whole units: the nearest when it reads back as the same float (a window on
    whole milliseconds stays exact), else rounded outwards so the range loses nothing."""
    exact = Fraction(seconds) * per_second
    nearest = round(exact)
    if nearest / per_second == seconds:
        return nearest
    return math.ceil(exact) if up else math.floor(exact)


def _millis_text(text: str) -> int:
    return round(Fraction(text) * 10**6)


def _iso_ns(text: str) -> int | None:
    match = _ISO.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, sec, frac, zone = match.groups()
    fields = [int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(sec or 0)]
    try:
        _check_date(*fields)
        whole = calendar.timegm(tuple(fields))
    except (ValueError, OverflowError):
        return None
    return (whole - _offset(zone)) * NANOS + int((frac or "").ljust(9, "0") or 0)


def _check_date(year: int, month: int, day: int, hour: int, minute: int, sec: int) -> None:
    """timegm accepts February 31st and hour 25 (it just adds them up): refuse them."""
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        raise ValueError("no such day")
    if hour > 23 or minute > 59 or sec > 59:
        raise ValueError("no such time")


def _offset(zone: str | None) -> int:
    if not zone or zone.upper() == "Z":
        return 0  # ES reads a time without a zone as UTC
    digits = zone[1:].replace(":", "")
    seconds = int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60
    return seconds if zone[0] == "+" else -seconds


def _text(value: Any) -> str:
    """A field's value as text: an ES array gives its first element."""
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return json.dumps(value)


def _inside(record: LogRecord, window: TimeRange) -> bool:
    return window.start <= record.time < window.end


def _total(body: Mapping[str, Any]) -> int | None:
    """hits.total: {value, relation} (7.0 on, OpenSearch) or a number (6.x); None unknown or
    only a lower bound."""
    hits = body.get("hits")
    total = hits.get("total") if isinstance(hits, dict) else None
    if isinstance(total, dict):
        value = integer(total.get("value"))
        return value if total.get("relation", "eq") == "eq" else None
    return integer(total)


def _partial(body: Mapping[str, Any]) -> list[str]:
    """What makes an answer incomplete: the server's timeout, shards that failed."""
    notes = []
    if body.get("timed_out") is True:
        notes.append("the search timed out on the server; its hits may be incomplete")
    shards = body.get("_shards")
    shards = shards if isinstance(shards, dict) else {}
    failed = integer(shards.get("failed"))
    if failed:
        total = integer(shards.get("total"))
        failures = shards.get("failures")
        first = failures[0] if isinstance(failures, list) and failures else {}
        why = _error(first.get("reason")) if isinstance(first, dict) else ""
        of = f" of {total}" if total else ""
        because = f" ({why})" if why else ""
        notes.append(f"{failed}{of} shards failed, their documents are missing{because}")
    return notes


def _error(error: Any) -> str:
    """`type: reason` of an error object (the root cause's when it says more), else the text."""
    if isinstance(error, dict):
        kind, reason = error.get("type"), error.get("reason")
        text = f"{kind}: {reason}" if kind and reason else str(reason or kind or "")
        return text[:300]
    return str(error)[:300] if error else ""
