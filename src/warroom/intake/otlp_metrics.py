"""OTLP metrics as metrics rows, named as Prometheus names them, so a series received over OTLP
has the name the same series has when scraped into a case folder's metrics.prom.

    rows = otlp_metric_rows(doc, "POST /v1/metrics")   # an ExportMetricsServiceRequest (JSON)
    store.insert_columns("metrics", rows.columns)        # rows.rejected points were left out

`doc` is the OTLP/JSON encoding, or protobuf's JSON mapping of the binary one (ints as strings,
enums as names, NaN as "NaN"). The names follow OpenTelemetry's Prometheus compatibility rules:
`http.server.request.duration` in `s` becomes `http_server_request_duration_seconds`, a
monotonic sum gains `_total`, attribute keys lose their dots (`server.address` ->
`server_address`, a label the peer expert reads). The service is the resource's service.name;
`k8s.pod.name` becomes a `pod` label so replicas stay separate series, as a Kubernetes scrape
keeps them; `service.instance.id` does not become a label (the SDKs make it a random UUID per
process start, so every restart would begin new series with no baseline). A label set is
written with intake/case_dir.py's `braces`.

- gauge, sum: the value as it is. A cumulative counter keeps its running total, as a scrape
  does; no expert rates counters, and a case folder holds them the same way. A delta sum keeps
  its per-interval increase under the name without `_total` (it is no running total).
- histogram: `_count`, `_sum` and cumulative `_bucket{le=...}` series ending in `le="+Inf"`.
- exponential histogram: `_count` and `_sum` (its buckets have no fixed `le`).
- summary: `_count`, `_sum` and one series per `{quantile=...}`.

A point marked "no recorded value" (flag 1, a stale marker) is a missing sample (NULL), as is
NaN or an infinity. A point with no value or no time is rejected and counted; a malformed field
(a string where a number belongs, a time outside 1970..3000) is an InputError naming its path.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from warroom.errors import InputError
from warroom.intake.case_dir import braces
from warroom.intake.otlp import (
    MAX_INTEGER_DIGITS,
    MAX_VALUE_DEPTH,
    NANOS,
    POD_NAME,
    SERVICE_NAME,
    UNKNOWN_SERVICE,
)
from warroom.model import short_number, time_problem

NO_RECORDED_VALUE = 1  # DataPointFlags.FLAG_NO_RECORDED_VALUE_MASK
CUMULATIVE = (2, "AGGREGATION_TEMPORALITY_CUMULATIVE")
KINDS = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")
# OpenTelemetry's Prometheus compatibility table (UCUM units -> name words).
UNIT_WORDS = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
    "us": "microseconds", "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes",
    "MiBy": "mebibytes", "GiBy": "gibibytes", "TiBy": "tibibytes", "KBy": "kilobytes",
    "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes", "m": "meters", "V": "volts",
    "A": "amperes", "J": "joules", "W": "watts", "g": "grams", "Cel": "celsius",
    "Hz": "hertz", "%": "percent",
}  # fmt: skip
PER_WORDS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month"}
_NOT_NAME = re.compile(r"[^a-zA-Z0-9]+")
_NOT_LABEL = re.compile(r"[^a-zA-Z0-9_]")
MAX_REASONS = 3


class _Bad(Exception):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


@dataclass
class MetricRows:
    """The metrics rows of one request and the points left out of them."""

    columns: dict[str, list[Any]] = field(
        default_factory=lambda: {"service": [], "name": [], "ts": [], "value": []}
    )
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)  # the first few, for the client

    def add(self, service: str, name: str, ts: float, value: float | None) -> None:
        """One sample."""
        for column, item in zip(self.columns, (service, name, ts, value), strict=True):
            self.columns[column].append(item)

    def reject(self, where: str, why: str) -> None:
        """Count a point that could not be stored."""
        self.rejected += 1
        if len(self.reasons) < MAX_REASONS:
            self.reasons.append(f"{where}: {why}")


@dataclass(frozen=True)
class _Family:
    service: str
    name: str  # Prometheus name, before any _count/_sum/_bucket suffix
    labels: dict[str, str]  # from the resource (pod or instance)


def otlp_metric_rows(doc: Any, source: str = "document") -> MetricRows:
    """The samples of one ExportMetricsServiceRequest (or MetricsData); `source` names it."""
    if not isinstance(doc, dict):
        raise InputError(f"{source}: expected a JSON object with resourceMetrics")
    if "resourceMetrics" not in doc and ("resourceSpans" in doc or "resourceLogs" in doc):
        other = "traces" if "resourceSpans" in doc else "logs"
        raise InputError(f"{source}: this is OTLP {other}, not metrics")
    rows = MetricRows()
    try:
        for resource, metric, where in _metrics(doc):
            _metric(rows, resource, metric, where)
    except _Bad as bad:
        raise InputError(f"{source}: {bad}") from None
    return rows


def _metrics(doc: Mapping[str, Any]) -> Iterator[tuple[dict[str, str], dict[str, Any], str]]:
    """(resource attributes, metric, its path) for every metric of a request."""
    for r, block in enumerate(_list(doc, "resourceMetrics", "")):
        where = f"resourceMetrics[{r}]"
        _object(block, where)
        resource = _attributes(_object(block.get("resource") or {}, f"{where}.resource"), where)
        key = "instrumentationLibraryMetrics"
        key = key if key in block else "scopeMetrics"
        for s, scope in enumerate(_list(block, key, where)):
            inner = f"{where}.{key}[{s}]"
            for m, metric in enumerate(_list(_object(scope, inner), "metrics", inner)):
                yield resource, _object(metric, f"{inner}.metrics[{m}]"), f"{inner}.metrics[{m}]"


def _metric(rows: MetricRows, resource: dict[str, str], metric: dict[str, Any], where: str) -> None:
    name, unit = metric.get("name"), metric.get("unit", "")
    if not isinstance(name, str) or not name:
        raise _Bad(f"{where}.name", "expected a metric name")
    if not isinstance(unit, str):
        raise _Bad(f"{where}.unit", f"expected a string, got {_kind(unit)}")
    kind = next((k for k in KINDS if k in metric), None)
    if kind is None:
        return  # a metric without data (the spec allows it): nothing to store
    data = _object(metric[kind], f"{where}.{kind}")
    counter = kind == "sum" and bool(data.get("isMonotonic"))
    cumulative = data.get("aggregationTemporality") in CUMULATIVE
    family = _Family(
        service=resource.get(SERVICE_NAME) or UNKNOWN_SERVICE,
        name=prometheus_name(name, unit, counter=counter and cumulative, gauge=kind == "gauge"),
        labels=_resource_labels(resource),
    )
    for i, point in enumerate(_list(data, "dataPoints", f"{where}.{kind}")):
        at = f"{where}.{kind}.dataPoints[{i}]"
        _point(rows, family, kind, _object(point, at), at)


def _point(rows: MetricRows, family: _Family, kind: str, point: dict[str, Any], at: str) -> None:
    ts = _time(point, at)
    if ts is None:
        rows.reject(at, "no timeUnixNano")
        return
    labels = {**family.labels, **_labels(_attributes(point, at))}
    stale = bool((_integer(point.get("flags", 0), f"{at}.flags") or 0) & NO_RECORDED_VALUE)
    if kind in ("gauge", "sum"):
        value = _number_value(point, at)
        if value is _MISSING and not stale:
            rows.reject(at, "neither asDouble nor asInt is set")
            return
        rows.add(family.service, family.name + _braces(labels), ts, _sample(value, stale))
        return
    for suffix, extra, value in _aggregate(kind, point, at):
        name = family.name + suffix + _braces({**labels, **extra})
        rows.add(family.service, name, ts, _sample(value, stale))


_MISSING: Any = object()


def _aggregate(
    kind: str, point: dict[str, Any], at: str
) -> Iterator[tuple[str, dict[str, str], float | None]]:
    """(suffix, extra labels, value) of every series a histogram or summary point makes."""
    count = _integer(point.get("count", 0), f"{at}.count") or 0
    yield "_count", {}, float(count)
    if "sum" in point:
        yield "_sum", {}, _double(point["sum"], f"{at}.sum")
    if kind == "summary":
        for j, item in enumerate(_list(point, "quantileValues", at)):
            q_at = f"{at}.quantileValues[{j}]"
            quantile = _double(_object(item, q_at).get("quantile", 0), f"{q_at}.quantile")
            value = _double(item.get("value", 0), f"{q_at}.value")
            yield "", {"quantile": _go_float(quantile or 0.0)}, value
    if kind == "histogram":
        yield from _buckets(point, count, at)


def _buckets(
    point: dict[str, Any], count: int, at: str
) -> Iterator[tuple[str, dict[str, str], float | None]]:
    """Cumulative `le` buckets, as Prometheus keeps them (OTLP counts each bucket alone)."""
    counts = [_integer(c, f"{at}.bucketCounts") or 0 for c in _list(point, "bucketCounts", at)]
    bounds = [_double(b, f"{at}.explicitBounds") for b in _list(point, "explicitBounds", at)]
    if not counts:
        return
    if len(counts) != len(bounds) + 1:
        raise _Bad(at, f"{len(counts)} bucketCounts for {len(bounds)} explicitBounds")
    running = 0
    for bound, n in zip(bounds, counts, strict=False):
        running += n
        yield "_bucket", {"le": _go_float(bound if bound is not None else math.nan)}, running
    yield "_bucket", {"le": "+Inf"}, float(count)


def prometheus_name(name: str, unit: str, counter: bool = False, gauge: bool = False) -> str:
    """An OpenTelemetry metric name and unit as Prometheus writes it (`_seconds`, `_total`)."""
    words = [w for w in _NOT_NAME.split(name) if w]
    if counter:
        words = [w for w in words if w != "total"]
    for word in _unit_words(unit, gauge):
        if word not in words:
            words.append(word)
    if counter:
        words.append("total")
    text = "_".join(words) or "_"
    return f"_{text}" if text[0].isdigit() else text


def _unit_words(unit: str, gauge: bool) -> list[str]:
    unit = re.sub(r"\{[^}]*\}", "", unit).strip()  # annotations such as {request} name no unit
    if unit == "1":
        return ["ratio"] if gauge else []
    main, _, per = unit.partition("/")
    words = [w for w in _NOT_NAME.split(UNIT_WORDS.get(main, main)) if w] if main else []
    if per:
        words += ["per", *[w for w in _NOT_NAME.split(PER_WORDS.get(per, per)) if w]]
    return words


def _resource_labels(resource: Mapping[str, str]) -> dict[str, str]:
    return {"pod": resource[POD_NAME]} if resource.get(POD_NAME) else {}


def _labels(attributes: Mapping[str, str]) -> dict[str, str]:
    """Attribute keys as Prometheus label names; keys that become one name join their values
    with ';' in the order of the original keys (the compatibility rule)."""
    out: dict[str, str] = {}
    for key in sorted(attributes):
        label = _NOT_LABEL.sub("_", key) or "_"
        label = f"key_{label}" if label[0].isdigit() else label
        out[label] = f"{out[label]};{attributes[key]}" if label in out else attributes[key]
    return out


def _braces(labels: dict[str, str]) -> str:
    return braces(labels) if labels else ""


def _sample(value: Any, stale: bool) -> float | None:
    if stale or value is _MISSING or value is None:
        return None
    return value if math.isfinite(value) else None


def _number_value(point: Mapping[str, Any], at: str) -> Any:
    if "asDouble" in point:
        return _double(point["asDouble"], f"{at}.asDouble")
    if "asInt" in point:
        return float(_integer(point["asInt"], f"{at}.asInt") or 0)
    return _MISSING


def _time(point: Mapping[str, Any], at: str) -> float | None:
    nanos = _integer(point.get("timeUnixNano", 0), f"{at}.timeUnixNano")
    if not nanos:
        return None
    seconds = nanos / NANOS  # int / int: the same float the span and log readers make
    problem = time_problem(seconds)
    if problem:
        raise _Bad(f"{at}.timeUnixNano", problem)
    return seconds


def _integer(value: Any, where: str) -> int | None:
    """A (u)int64 as JSON writes it: a number or a decimal string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e24:
        return int(value)
    if isinstance(value, str):
        digits = value.removeprefix("-")
        if 0 < len(digits) <= MAX_INTEGER_DIGITS and digits.isascii() and digits.isdecimal():
            return int(value)
    raise _Bad(where, f"expected an integer, got {_kind(value)}")


def _double(value: Any, where: str) -> float | None:
    """A double as JSON writes it: a number, or "NaN"/"Infinity"/"-Infinity" (None for NaN)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        return number if not math.isnan(number) else None
    if value in ("Infinity", "-Infinity"):
        return math.inf if value == "Infinity" else -math.inf
    if value == "NaN":
        return None
    if isinstance(value, str) and len(value) <= MAX_INTEGER_DIGITS + 8:
        try:
            return float(value)
        except ValueError:
            pass
    raise _Bad(where, f"expected a number, got {_kind(value)}")


def _go_float(value: float) -> str:
    """A float as Go's strconv.FormatFloat(v, 'g', -1, 64) writes it, which is how Prometheus
    clients write `le` and `quantile` (1e+06, 0.005, 2.5, +Inf)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits))
    exp = len(text) + int(exponent) - 1  # the decimal exponent of the first digit
    minus = "-" if sign else ""
    if exp < -4 or exp >= 6:  # Go: with the shortest precision, %e from an exponent of 6 on
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{minus}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return minus + _plain_digits(text, exp)


def _plain_digits(text: str, exp: int) -> str:
    if exp < 0:
        return "0." + "0" * (-exp - 1) + text
    if exp + 1 >= len(text):
        return text + "0" * (exp + 1 - len(text))
    return f"{text[: exp + 1]}.{text[exp + 1 :]}"


def _attributes(obj: Mapping[str, Any], where: str) -> dict[str, str]:
    """A KeyValue list as text values (numbers and booleans as JSON writes them)."""
    out: dict[str, str] = {}
    for i, item in enumerate(_list(obj, "attributes", where)):
        at = f"{where}.attributes[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise _Bad(at, "expected {key, value}")
        plain = _plain(item.get("value"), f"{at}.value", 0)
        out[item["key"]] = plain if isinstance(plain, str) else json.dumps(plain, sort_keys=True)
    return out


def _plain(value: Any, where: str, depth: int) -> Any:
    """An AnyValue as the Python value it stands for."""
    if value is None or value == {}:
        return ""
    if not isinstance(value, dict) or len(value) != 1:
        raise _Bad(where, "expected an AnyValue with one field")
    if depth >= MAX_VALUE_DEPTH:
        raise _Bad(where, f"values nested deeper than {MAX_VALUE_DEPTH} levels")
    kind, inner = next(iter(value.items()))
    if kind in ("stringValue", "bytesValue") and isinstance(inner, str):
        return inner
    if kind == "boolValue" and isinstance(inner, bool):
        return inner
    if kind == "intValue":
        return _integer(inner, f"{where}.intValue")
    if kind == "doubleValue":
        return _double(inner, f"{where}.doubleValue")
    if kind in ("arrayValue", "kvlistValue") and isinstance(inner, dict):
        items = _list(inner, "values", f"{where}.{kind}")
        at = f"{where}.{kind}.values"
        if kind == "arrayValue":
            return [_plain(v, f"{at}[{i}]", depth + 1) for i, v in enumerate(items)]
        pairs = [(_object(v, f"{at}[{i}]"), f"{at}[{i}]") for i, v in enumerate(items)]
        return {str(v.get("key")): _plain(v.get("value"), w, depth + 1) for v, w in pairs}
    raise _Bad(where, f"unknown or mistyped AnyValue field {str(kind)[:40]!r}")


def _list(obj: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad(f"{where}.{key}" if where else key, f"expected a list, got {_kind(value)}")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(where, f"expected an object, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, bool | int | float):
        return f"the value {short_number(value)}"
    return "null" if value is None else type(value).__name__
