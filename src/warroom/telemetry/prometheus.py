"""Prometheus HTTP API (also VictoriaMetrics, Thanos Query, Mimir/Cortex): the RED and USE
series of the services in scope, for a window, into the store's metrics table.

    source, = sources(Config(url="http://mimir:8080/prometheus", headers={"X-Scope-OrgID": "a"}))
    batch = source.fetch(TimeRange(start, end), time.monotonic() + 30)

Each fetch discovers what exists in its window (`/api/v1/label/__name__/values` and
`/api/v1/series` for the series that carry one of the service labels, types from
`/api/v1/metadata` where the server keeps them, else from name suffixes), keeps the families
that fit under `max_series` (RED first: see prometheus_families.py for the order and the names)
and asks for each with `query_range` (POST form), or for other gauges their raw samples through
a range selector. The window is [start, end): Prometheus includes the end, so points there are
dropped.

The step keeps every series under 11,000 points (Prometheus refuses more) and is at least
`min_step_s`; range queries start on a multiple of it, so chunks fetched apart line up.

An answer with `status: error` is a BackendError with the server's errorType and words.
`warnings` and `infos`, Thanos' partial responses (reported as warnings; `partial_response`
asks for them or refuses them) and VictoriaMetrics' `isPartial: true` keep the data and become
degraded notes. Mimir and Cortex take their path prefix in `url` and the tenant in
`headers = {"X-Scope-OrgID" = "..."}`.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterable
from typing import Any

import httpx
from pydantic import ConfigDict, Field, field_validator

from warroom.errors import BackendError
from warroom.model import TimeRange
from warroom.telemetry import prometheus_families as fam
from warroom.telemetry.http import Endpoint, connect, request_json
from warroom.telemetry.sources import Batch, Source

MAX_POINTS = 11_000  # per series and query: Prometheus answers 400 beyond it
TENANT_HEADER = "x-scope-orgid"
MAX_NAMED = 5  # metrics named in a note before "+N more"
RAW_LOOKBACK_MS = 1  # raw samples are read as of 1 ms before the end: the end is excluded
_MATCHER = r'\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*'
_SELECTOR = re.compile(rf"\{{\s*(?P<inner>(?:{_MATCHER})(?:,{_MATCHER})*)?,?\s*\}}")
SETTINGS = {
    "selector",
    "service_labels",
    "pod_labels",
    "services",
    "min_step_s",
    "rate_window_s",
    "max_series",
    "partial_response",
}


class Config(Endpoint):
    """A Prometheus-compatible endpoint and how its series map to services."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="prometheus", min_length=1, max_length=64)  # in notes and the report
    selector: str = ""  # limits the scope, e.g. '{namespace="shop"}'
    # The first of these labels that a series carries names its service.
    service_labels: tuple[str, ...] = ("service", "job", "app", "k8s_pod_name", "pod", "namespace")
    pod_labels: tuple[str, ...] = ("k8s_pod_name", "pod")  # replica suffixes are stripped
    services: tuple[str, ...] = ()  # empty: every service found
    min_step_s: float = Field(default=15.0, ge=1, le=3600)
    rate_window_s: float = Field(default=60.0, ge=1, le=86_400)  # at least 2 scrape intervals
    max_series: int = Field(default=2000, ge=1, le=1_000_000)
    partial_response: bool | None = None  # Thanos: allow (true) or refuse (false) partial data

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: str) -> str:
        if value.strip() and _SELECTOR.fullmatch(value.strip()) is None:
            raise ValueError(
                f'selector must be label matchers like {{namespace="shop"}}: {value!r}'
            )
        return value.strip()

    @field_validator("service_labels", "pod_labels")
    @classmethod
    def _labels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [label for label in value if not fam.is_label_name(label)]
        if bad:
            raise ValueError(f"not label names: {', '.join(map(repr, bad))}")
        return value

    @field_validator("service_labels")
    @classmethod
    def _some(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("service_labels must name at least one label")
        return value


def sources(config: Config) -> list[Source]:
    """The metrics source for one endpoint."""
    return [PrometheusSource(config)]


def step_for(window: TimeRange, min_step_s: float) -> float:
    """Whole seconds, at least `min_step_s`, giving fewer than MAX_POINTS points per series."""
    span = max(window.end - window.start, 0.0)
    return float(math.ceil(max(min_step_s, span / (MAX_POINTS - 2))))


class Notes:
    """Degraded notes of one fetch, one per distinct message, naming the metrics it hit."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._hits: dict[str, list[str]] = {}

    def add(self, message: str, metric: str = "") -> None:
        """Record a message (about `metric`, when it is about one)."""
        hits = self._hits.setdefault(message, [])
        if metric and metric not in hits:
            hits.append(metric)

    def notes(self) -> tuple[str, ...]:
        """The messages, each with the metrics it concerned."""
        return tuple(
            f"{self.backend}: {message}" + (f" ({named(metrics)})" if metrics else "")
            for message, metrics in self._hits.items()
        )


def named(metrics: list[str]) -> str:
    """A few names, then how many more."""
    more = len(metrics) - MAX_NAMED
    return ", ".join(metrics[:MAX_NAMED]) + (f" +{more} more" if more > 0 else "")


def envelope(body: Any, backend: str, path: str, metric: str, notes: Notes) -> Any:
    """The `data` of a Prometheus API answer; its warnings, infos and partial flags as notes."""
    if not isinstance(body, dict) or "status" not in body:
        raise BackendError(f"{backend}: {path} answered JSON that is not a Prometheus API envelope")
    if body["status"] != "success":
        kind = _text(body.get("errorType")) or "error"
        reason = _text(body.get("error")) or "no reason given"
        raise BackendError(f"{backend}: {path} answered {kind}: {reason}")
    for key, label in (("warnings", "warning"), ("infos", "info")):
        texts = body.get(key)
        for text in texts if isinstance(texts, list) else [texts] if texts else []:
            notes.add(f"{label}: {_text(text)}", metric)
    if body.get("isPartial") is True:
        notes.add("partial response (isPartial): some storage nodes did not answer", metric)
    return body.get("data")


def _text(value: Any) -> str:
    return str(value)[:300] if value is not None else ""


class PrometheusSource:
    """RED/USE series of one Prometheus-compatible endpoint; safe to fetch from many threads."""

    table = "metrics"

    def __init__(self, config: Config) -> None:
        self.config = config
        self.name = config.name
        matchers = _SELECTOR.fullmatch(config.selector) if config.selector else None
        self.scope = fam.Scope(
            service_labels=config.service_labels,
            pod_labels=config.pod_labels,
            matchers=(matchers["inner"] or "").strip().rstrip(",") if matchers else "",
            services=frozenset(config.services),
        )
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._types: dict[str, str] | None = None

    def identity(self) -> str:
        """URL, tenant and query settings: what the rows depend on (never a credential)."""
        c = self.config
        tenant = {k.lower(): v for k, v in c.headers.items()}.get(TENANT_HEADER, "")
        settings = json.dumps(c.model_dump(include=SETTINGS), sort_keys=True)
        return f"prometheus:{c.url.rstrip('/')}|tenant={tenant}|{settings}"

    def close(self) -> None:
        """Release the HTTP connections."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def fetch(self, window: TimeRange, deadline: float) -> Batch:
        """The window's series of every family that fits under the cap."""
        notes = Notes(self.name)
        families = self._families(window, deadline, notes)
        columns: dict[str, list[Any]] = {"service": [], "name": [], "ts": [], "value": []}
        for family in families:
            for query in family.queries:
                services, names, times, values = self._rows(
                    query, family.metric, window, deadline, notes
                )
                columns["service"] += services
                columns["name"] += names
                columns["ts"] += times
                columns["value"] += values
        return Batch(columns if columns["ts"] else {}, notes.notes())

    # --- discovery ---------------------------------------------------------------------------

    def _families(self, window: TimeRange, deadline: float, notes: Notes) -> list[fam.Family]:
        names = self._names(window, deadline, notes)
        kinds = fam.candidates(names, self._metadata(deadline))
        catalog = self._catalog(names, list(kinds), window, deadline, notes)
        window_s = max(self.config.rate_window_s, step_for(window, self.config.min_step_s))
        families = fam.plan(catalog, kinds, self.scope, f"{math.ceil(window_s)}s")
        kept, left = fam.cap(families, self.config.max_series)
        if left:
            found = sum(f.series for f in families)
            notes.add(
                f"{found} series in scope, over the cap of {self.config.max_series}: "
                f"{len(left)} metric(s) with {sum(f.series for f in left)} series left out: "
                f"{named([f.metric for f in left])}"
            )
        return kept

    def _names(self, window: TimeRange, deadline: float, notes: Notes) -> frozenset[str]:
        path = "/api/v1/label/__name__/values"
        params = [("match[]", m) for m in fam.scope_matchers(self.scope)]
        params += [("start", _time(window.start)), ("end", _time(window.end))]
        data = self._ask("GET", path, deadline, notes, "", params=self._extra(params))
        if not isinstance(data, list):
            raise BackendError(f"{self.name}: {path} answered data that is not a list of names")
        return frozenset(n for n in data if isinstance(n, str))

    def _metadata(self, deadline: float) -> dict[str, str]:
        """Metric types the server keeps (none for backfilled data): asked once per source."""
        with self._lock:
            if self._types is not None:
                return self._types
        try:
            data = self._ask("GET", "/api/v1/metadata", deadline, Notes(self.name), "")
        except BackendError:
            return {}  # not every server keeps it, or it was slow: names decide this time
        types: dict[str, str] = {}
        if isinstance(data, dict):
            for metric, entries in data.items():
                if isinstance(entries, list) and entries and isinstance(entries[0], dict):
                    types[metric] = str(entries[0].get("type", ""))
        with self._lock:
            self._types = types
        return types

    def _catalog(
        self,
        names: frozenset[str],
        metrics: list[str],
        window: TimeRange,
        deadline: float,
        notes: Notes,
    ) -> fam.Catalog:
        if not metrics:
            return fam.Catalog(names)
        path = "/api/v1/series"
        form = [("match[]", fam.selector(m, self.scope)) for m in metrics]
        form += [("start", _time(window.start)), ("end", _time(window.end))]
        data = self._ask("POST", path, deadline, notes, "", data=self._extra(form))
        if not isinstance(data, list):
            raise BackendError(f"{self.name}: {path} answered data that is not a list of series")
        labels: dict[str, set[str]] = {}
        counts: dict[str, int] = {}
        for series in data:
            if not isinstance(series, dict) or self.scope.service_of(series) is None:
                continue
            metric = str(series.get("__name__", ""))
            counts[metric] = counts.get(metric, 0) + 1
            labels.setdefault(metric, set()).update(series)
        frozen = {m: frozenset(v) for m, v in labels.items()}
        return fam.Catalog(names, frozen, counts)

    # --- queries -----------------------------------------------------------------------------

    def _rows(
        self, query: fam.Query, metric: str, window: TimeRange, deadline: float, notes: Notes
    ) -> tuple[list[str], list[str], list[float], list[float | None]]:
        if query.raw:
            ms = max(1, round((window.end - window.start) * 1000))
            form = [("query", f"{query.promql}[{ms}ms]")]
            form.append(("time", _time(window.end - RAW_LOOKBACK_MS / 1000)))
            path = "/api/v1/query"
        else:
            step = step_for(window, self.config.min_step_s)
            first = math.ceil(window.start / step) * step
            if first >= window.end:
                return [], [], [], []
            form = [("query", query.promql), ("start", _time(first))]
            form += [("end", _time(window.end)), ("step", f"{step:g}")]
            path = "/api/v1/query_range"
        data = self._ask("POST", path, deadline, notes, metric, data=self._extra(form))
        return self._matrix(data, query, metric, window, path, notes)

    def _matrix(
        self, data: Any, query: fam.Query, metric: str, window: TimeRange, path: str, notes: Notes
    ) -> tuple[list[str], list[str], list[float], list[float | None]]:
        if not isinstance(data, dict) or data.get("resultType") != "matrix":
            raise BackendError(f"{self.name}: {path} answered data that is not a matrix")
        services: list[str] = []
        names: list[str] = []
        times: list[float] = []
        values: list[float | None] = []
        for series in data.get("result") or ():
            labels = series.get("metric") if isinstance(series, dict) else None
            named_as = (
                self._series_name(query, metric, labels) if isinstance(labels, dict) else None
            )
            if named_as is None:
                continue
            for ts, value in _points(series.get("values"), window, metric, notes):
                services.append(named_as[0])
                names.append(named_as[1])
                times.append(ts)
                values.append(value)
        return services, names, times, values

    def _series_name(
        self, query: fam.Query, metric: str, labels: dict[str, Any]
    ) -> tuple[str, str] | None:
        """(service, store name) of one answered series; None when it is out of scope."""
        labels = {str(k): str(v) for k, v in labels.items()}
        if not query.raw:
            service = labels.get(fam.SERVICE, "")
            if not service or (self.scope.services and service not in self.scope.services):
                return None
            return service, query.name
        found = self.scope.service_of(labels)
        if found is None:
            return None
        return found[0], fam.raw_name(metric, labels, found[1], self.scope)

    def version(self, deadline: float) -> str:
        """The server's version from /api/v1/status/buildinfo ("" when it does not say:
        VictoriaMetrics and some proxies do not serve it)."""
        try:
            body = request_json(
                self._http(), self.name, "GET", "/api/v1/status/buildinfo", deadline
            )
        except BackendError:
            return ""
        data = body.get("data") if isinstance(body, dict) else None
        version = data.get("version") if isinstance(data, dict) else None
        return str(version) if version else ""

    # --- HTTP --------------------------------------------------------------------------------

    def _ask(
        self, method: str, path: str, deadline: float, notes: Notes, metric: str, **kwargs: Any
    ) -> Any:
        body = request_json(self._http(), self.name, method, path, deadline, **kwargs)
        return envelope(body, self.name, path, metric, notes)

    def _extra(self, params: list[tuple[str, str]]) -> dict[str, list[str]]:
        """Parameters as httpx takes them for a query string or a form (repeated keys: lists)."""
        if self.config.partial_response is not None:
            params = [*params, ("partial_response", str(self.config.partial_response).lower())]
        out: dict[str, list[str]] = {}
        for key, value in params:
            out.setdefault(key, []).append(value)
        return out

    def _http(self) -> httpx.Client:
        """One client per source, made on first use (a token file is read then, not before)."""
        with self._lock:
            if self._client is None:
                self._client = connect(self.config)
            return self._client


def _time(seconds: float) -> str:
    return f"{seconds:.3f}"


def _points(
    values: Any, window: TimeRange, metric: str, notes: Notes
) -> Iterable[tuple[float, float | None]]:
    """[ts, "value"] pairs inside [start, end); NaN and infinities are missing samples."""
    if not isinstance(values, list):
        notes.add("series without a values list skipped", metric)
        return
    for point in values:
        try:
            ts, value = float(point[0]), float(point[1])
        except (TypeError, ValueError, IndexError, KeyError):
            notes.add("malformed points skipped", metric)
            continue
        if window.start <= ts < window.end:
            yield ts, value if math.isfinite(value) else None
