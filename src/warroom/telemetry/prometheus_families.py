"""Which Prometheus metrics an investigation asks for, the PromQL that asks, and the names the
answers get in the store. Pure functions: no I/O (prometheus.py runs the queries).

    families = plan(catalog, types, scope)          # RED first, then USE, runtime, the rest
    kept, left_out = cap(families, max_series=2000)
    kept[0].queries[0].promql  # 'histogram_quantile(0.5, sum by (warroom_service, le) (...))'

Names written to the store (the metric expert and the actors classify by name):

- histogram `H` (`H_bucket`, `H_count`): `H_p50`, `H_p99` (histogram_quantile of the bucket
  rates summed by service and le), `H_count_per_second`, and `H_error_ratio` when `H_count`
  carries a status label (the 5xx share of the calls);
- counter `C_total`: `C_per_second` (`http_requests_total` -> `http_requests_per_second`,
  `process_cpu_seconds_total` -> `process_cpu_seconds_per_second`, CPU cores in use) and
  `C_error_ratio` with a status label;
- the USE and runtime gauges (memory, goroutines, JVM heap and threads, open fds): their own
  name, summed over the service's replicas;
- every other gauge: its raw samples under its own name with its other labels in braces, the
  way intake/case_dir.py names a series read from metrics.prom, so a case folder backfilled
  into Prometheus reads back under the same names and values.

The service is a label chosen in PromQL (label_replace, highest priority applied last), so
histograms are aggregated per service on the server, before the quantile.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from warroom.datasets.base import POD_SUFFIX_SQL, service_of_pod
from warroom.intake.case_dir import braces

SERVICE = "warroom_service"  # the label the queries put the service into
STATUS_LABELS = (
    "code",
    "status",
    "status_code",
    "http_status_code",
    "http_response_status_code",
    "response_code",
)
SERVER_ERROR = '"5.."'  # the 5xx share is the server's own failure; 4xx are the caller's
# Pod names lose the ReplicaSet hash and pod suffix, as the data set loaders strip them.
POD_REGEX = "(.+?)(?:" + POD_SUFFIX_SQL.removesuffix("$") + ")?"
CPU_COUNTERS = (
    "process_cpu_seconds_total",
    "container_cpu_usage_seconds_total",
    "container_cpu_cfs_throttled_seconds_total",
)
MEMORY_GAUGES = (
    "process_resident_memory_bytes",
    "container_memory_working_set_bytes",
    "container_memory_rss",
)
RUNTIME_GAUGES = (
    "go_goroutines",
    "go_threads",
    "go_memstats_heap_inuse_bytes",
    "jvm_memory_used_bytes",
    "jvm_memory_bytes_used",
    "jvm_threads_live_threads",
    "jvm_threads_current",
    "process_open_fds",
    "nodejs_eventloop_lag_seconds",
)
# Time spent collecting garbage (summaries: the rate of their _sum is seconds per second).
RUNTIME_COUNTERS = ("go_gc_duration_seconds_sum", "jvm_gc_pause_seconds_sum")
_SKIPPED = re.compile(r"^(scrape_|ALERTS)|_(created|info)$")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class Priority(IntEnum):
    """What is kept first when the series are over the cap: RED, then USE, then the rest."""

    LATENCY = 0
    REQUESTS = 1
    RESOURCES = 2
    RUNTIME = 3
    COUNTER = 4
    GAUGE = 5


@dataclass(frozen=True)
class Scope:
    """Which series are in scope and which label names their service."""

    service_labels: tuple[str, ...]
    pod_labels: tuple[str, ...]
    matchers: str = ""  # the inside of the configured selector, e.g. 'namespace="shop"'
    services: frozenset[str] = frozenset()  # empty: every service found

    def service_of(self, labels: Mapping[str, str]) -> tuple[str, str] | None:
        """(service, the label it came from) for a label set, or None when none is set."""
        for label in self.service_labels:
            value = labels.get(label, "")
            if value:
                service = service_of_pod(value) if label in self.pod_labels else value
                if self.services and service not in self.services:
                    return None
                return service, label
        return None


@dataclass(frozen=True)
class Catalog:
    """What discovery found in the window: metric names, and per metric the label names its
    in-scope series carry and how many there are."""

    names: frozenset[str]
    labels: Mapping[str, frozenset[str]] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Query:
    """One PromQL expression and the store name of its answers ("" for raw: named per series)."""

    promql: str
    name: str
    raw: bool = False  # raw samples through a range selector, not an evaluated range


@dataclass(frozen=True)
class Family:
    """The queries over one metric, its series count and how much it matters."""

    metric: str
    priority: Priority
    series: int
    queries: tuple[Query, ...]


def metric_kind(name: str, types: Mapping[str, str], names: frozenset[str]) -> str:
    """histogram | counter | gauge | other: the server's metadata first, then name suffixes."""
    if name.endswith("_bucket") and f"{name[:-7]}_count" in names:
        return "histogram"
    if _SKIPPED.search(name):
        return "other"
    declared = types.get(name) or types.get(name.removesuffix("_total"))
    if name in RUNTIME_COUNTERS or name.endswith("_total") or declared == "counter":
        return "counter"
    if declared in ("histogram", "summary", "info", "stateset"):
        return "other"
    if name.endswith(("_bucket", "_count", "_sum")):
        return "other"  # parts of a summary or of a histogram read through its buckets
    return "gauge"


def candidates(names: frozenset[str], types: Mapping[str, str]) -> dict[str, str]:
    """Metric -> kind for what is worth asking; a histogram is named by its `_count` series
    (the label sets of its calls: the buckets only add `le`)."""
    out: dict[str, str] = {}
    for name in sorted(names):
        kind = metric_kind(name, types, names)
        if kind == "histogram":
            out[f"{name[:-7]}_count"] = kind
        elif kind != "other":
            out[name] = kind
    return out


def plan(
    catalog: Catalog, kinds: Mapping[str, str], scope: Scope, rate_window: str
) -> list[Family]:
    """The families to fetch, most important first."""
    families = []
    names = catalog.names
    for metric, kind in kinds.items():
        series = catalog.counts.get(metric, 0)
        if not series:
            continue  # nothing of it in scope
        status = _status_label(catalog.labels.get(metric, frozenset()))
        if kind == "histogram":
            family = _histogram(metric.removesuffix("_count"), status, scope, rate_window)
        elif kind == "counter":
            family = _counter(metric, status, scope, rate_window)
        else:
            family = _gauge(metric, catalog.labels.get(metric, frozenset()), scope)
        # A derived name that is also a real metric's (an exporter's own `x_per_second` gauge)
        # would mix two series in one: the real one keeps the name.
        queries = tuple(q for q in family[1] if q.raw or q.name == metric or q.name not in names)
        if queries:
            families.append(Family(metric, family[0], series, queries))
    return sorted(families, key=lambda f: (f.priority, f.metric))


def cap(families: Sequence[Family], max_series: int) -> tuple[list[Family], list[Family]]:
    """(kept, left out): families in priority order while their series fit under the cap."""
    kept: list[Family] = []
    left: list[Family] = []
    total = 0
    for family in families:
        if total + family.series <= max_series:
            kept.append(family)
            total += family.series
        else:
            left.append(family)
    return kept, left


def raw_name(metric: str, labels: Mapping[str, str], service_label: str, scope: Scope) -> str:
    """A raw series' store name: the metric and its labels but the one that named the service
    (a pod label stays: it keeps the replicas apart), as case folders name theirs."""
    rest = {k: v for k, v in labels.items() if k != "__name__"}
    if service_label not in scope.pod_labels:
        rest.pop(service_label, None)
    return metric + braces(rest) if rest else metric


def quantile_name(q: float) -> str:
    """0.5 -> p50, 0.99 -> p99, 0.999 -> p99_9."""
    return "p" + f"{q * 100:g}".replace(".", "_")


QUANTILES: tuple[float, ...] = (0.5, 0.99)


def _histogram(
    base: str, status: str | None, scope: Scope, w: str
) -> tuple[Priority, tuple[Query, ...]]:
    buckets = f"rate({selector(f'{base}_bucket', scope)}[{w}])"
    by_le = f"sum by ({SERVICE}, le) ({with_service(buckets, scope)})"
    queries = [
        Query(f"histogram_quantile({q:g}, {by_le})", f"{base}_{quantile_name(q)}")
        for q in QUANTILES
    ]
    queries.append(Query(_rate(f"{base}_count", scope, w), f"{base}_count_per_second"))
    if status:
        queries.append(_error_ratio(f"{base}_count", status, scope, w, f"{base}_error_ratio"))
    return Priority.LATENCY, tuple(queries)


def _counter(
    metric: str, status: str | None, scope: Scope, w: str
) -> tuple[Priority, tuple[Query, ...]]:
    base = metric.removesuffix("_total")
    queries = [Query(_rate(metric, scope, w), f"{base}_per_second")]
    if status:
        queries.append(_error_ratio(metric, status, scope, w, f"{base}_error_ratio"))
    if metric in CPU_COUNTERS:
        return Priority.RESOURCES, tuple(queries)
    if metric in RUNTIME_COUNTERS:
        return Priority.RUNTIME, tuple(queries)
    requests = status is not None or bool(re.search("request|error|fail", metric))
    return (Priority.REQUESTS if requests else Priority.COUNTER), tuple(queries)


def _gauge(metric: str, labels: frozenset[str], scope: Scope) -> tuple[Priority, tuple[Query, ...]]:
    if metric in MEMORY_GAUGES or metric in RUNTIME_GAUGES:
        # cAdvisor also reports the pod's own cgroup (container="") and the pause container:
        # summing those with the containers would count the memory twice.
        extra = 'container!="", container!="POD"' if "container" in labels else ""
        summed = f"sum by ({SERVICE}) ({with_service(selector(metric, scope, extra), scope)})"
        priority = Priority.RESOURCES if metric in MEMORY_GAUGES else Priority.RUNTIME
        return priority, (Query(summed, metric),)
    return Priority.GAUGE, (Query(selector(metric, scope), "", raw=True),)


def _rate(metric: str, scope: Scope, w: str, extra: str = "") -> str:
    rate = f"rate({selector(metric, scope, extra)}[{w}])"
    return f"sum by ({SERVICE}) ({with_service(rate, scope)})"


def _error_ratio(metric: str, status: str, scope: Scope, w: str, name: str) -> Query:
    failed = _rate(metric, scope, w, f"{status}=~{SERVER_ERROR}")
    total = _rate(metric, scope, w)
    # A service with no 5xx at all has no failed series: `or` gives it a ratio of 0.
    return Query(f"({failed} / {total}) or ({total} * 0)", name)


def _status_label(labels: frozenset[str]) -> str | None:
    return next((label for label in STATUS_LABELS if label in labels), None)


def selector(metric: str, scope: Scope, extra: str = "") -> str:
    """`{__name__="metric", <scope matchers>, <extra>}`: names of any spelling stay quoted."""
    parts = [f"__name__={quote(metric)}", scope.matchers, extra]
    return "{" + ", ".join(p for p in parts if p) + "}"


def with_service(expr: str, scope: Scope) -> str:
    """`expr` with the SERVICE label set from the first configured label that has a value."""
    for label in reversed(scope.service_labels):  # applied last wins: highest priority last
        regex = POD_REGEX if label in scope.pod_labels else "(.+)"
        expr = f'label_replace({expr}, "{SERVICE}", "$1", "{label}", {quote(regex)})'
    return expr


def scope_matchers(scope: Scope) -> list[str]:
    """One series selector per service label (match[] ORs them): a series in scope has one."""
    inner = f"{scope.matchers}, " if scope.matchers else ""
    return [f'{{{inner}{label}!=""}}' for label in scope.service_labels]


def quote(value: str) -> str:
    """A PromQL double-quoted string (Go escapes)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def is_label_name(name: str) -> bool:
    """Whether `name` is a valid Prometheus label name."""
    return bool(_LABEL_NAME.fullmatch(name))
