"""Pages in: Alertmanager's webhook payload (version 4) and the generic investigations body,
each parsed strictly into AlertRequests.

    notification = parse_webhook(body)                  # InputError names the bad field
    wanted = requests(notification, Mapping(), now)     # one AlertRequest per alert
    wanted = parse_investigation(body, now)             # POST /api/v1/investigations

The payload is Alertmanager's notify/webhook Message: template.Data (receiver, status, alerts,
groupLabels, commonLabels, commonAnnotations, externalURL) plus version, groupKey and
truncatedAlerts. Times are Go's RFC 3339 with up to nine fractional digits; Go's zero time
(0001-01-01T00:00:00Z) is how a firing alert says "no end yet".

A request's key survives Alertmanager's repeats: the sha256 of groupKey, fingerprint and the
startsAt instant (in nanoseconds, so the same instant written with another offset is the same
alert). The window runs from startsAt minus `lookback_s` to the earliest of startsAt plus
`after_s`, now, and (once resolved) endsAt.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    computed_field,
    field_validator,
)

from warroom.errors import InputError
from warroom.model import time_problem
from warroom.server.model import AlertRequest

WEBHOOK_VERSION = "4"
MAX_ALERTS = 1000  # Alertmanager's max_alerts is unbounded by default; a group this big is a storm
# Most specific first: an explicit service label, then the Kubernetes and OpenTelemetry names,
# then the scrape job (often a pool such as "kubernetes-pods", hence late). A namespace is left
# out on purpose: it holds many services, and naming one as the symptom misleads the ranking.
SERVICE_LABELS = (
    "service",
    "service_name",
    "app_kubernetes_io_name",
    "app",
    "kubernetes_name",
    "k8s_app",
    "container",
    "job",
)
SYMPTOM_LABELS = ("metric", "metric_name", "__name__")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_GO_ZERO_NS = -62_135_596_800 * 10**9  # 0001-01-01T00:00:00Z, Go's zero time.Time
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)
_NOT_TIME = "not an RFC 3339 time"


class Mapping(BaseModel):
    """How an alert becomes an investigation request (the `[alerts]` table of warroom.toml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service_labels: tuple[str, ...] = SERVICE_LABELS  # the first one present names the service
    symptom_labels: tuple[str, ...] = SYMPTOM_LABELS  # labels, then annotations
    # An alertname ("HighLatency") is not a metric; the director would look for it among the
    # indicators and find nothing, so it names the symptom only when asked to.
    symptom_from_alertname: bool = False
    lookback_s: float = Field(default=1800.0, gt=0, le=7 * 86400)
    after_s: float = Field(default=600.0, ge=0, le=86400)
    max_alerts: int = Field(default=MAX_ALERTS, ge=1, le=100_000)
    max_window_s: float = Field(default=86400.0, gt=0, le=31 * 86400)  # the API's cap


def rfc3339_ns(text: object) -> int:
    """Epoch nanoseconds of an RFC 3339 time; ValueError when `text` is not one."""
    match = _RFC3339.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(_NOT_TIME)
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7) or "", match.group(8)
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=_zone(zone))
        delta = moment - _EPOCH
    except (ValueError, OverflowError):  # 2024-13-01, 24:00, year 1 with a positive offset
        raise ValueError(_NOT_TIME) from None
    seconds = delta.days * 86400 + delta.seconds
    return seconds * 10**9 + int(fraction.ljust(9, "0"))


def _zone(text: str) -> timezone:
    if text in ("Z", "z"):
        return UTC
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 23 or minutes > 59:
        raise ValueError(_NOT_TIME)
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if text[0] == "-" else offset)


def _in_range(ns: int) -> int:
    if time_problem(ns / 1e9):
        raise ValueError("a time outside the years 1970..3000")
    return ns


def _starts_at(value: object) -> int:
    ns = rfc3339_ns(value)
    if ns == _GO_ZERO_NS:
        raise ValueError("unset (Go's zero time): an alert needs its start")
    return _in_range(ns)


def _ends_at(value: object) -> int | None:
    ns = rfc3339_ns(value)
    return None if ns == _GO_ZERO_NS else _in_range(ns)


def _null_is_empty(value: object) -> object:
    # Go marshals a nil map as null; an absent map and an empty one mean the same.
    return {} if value is None else value


StrMap = Annotated[dict[str, str], BeforeValidator(_null_is_empty)]
StartsAt = Annotated[int, BeforeValidator(_starts_at)]
EndsAt = Annotated[int | None, BeforeValidator(_ends_at)]


class _Strict(BaseModel):
    # strict: a label 5 or a startsAt 1700000000 is a malformed payload, not something to coerce
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore", populate_by_name=True)


class Alert(_Strict):
    """One alert of a notification (template.Alert); times in epoch nanoseconds."""

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: StrMap = Field(default_factory=dict)
    starts_at: StartsAt = Field(alias="startsAt")
    ends_at: EndsAt = Field(default=None, alias="endsAt")  # None: Go's zero time
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = Field(min_length=1, max_length=256)

    @field_validator("ends_at")
    @classmethod
    def _after_start(cls, ends_at: int | None, info: ValidationInfo) -> int | None:
        starts_at = info.data.get("starts_at")  # absent when startsAt itself was bad
        if ends_at is not None and starts_at is not None and ends_at < starts_at:
            raise ValueError("before startsAt")
        return ends_at


class Notification(_Strict):
    """One webhook delivery: a group of alerts as Alertmanager sends it (version 4)."""

    version: Literal["4"]
    group_key: str = Field(alias="groupKey", min_length=1)
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")
    status: Literal["firing", "resolved"]
    receiver: str = ""
    group_labels: StrMap = Field(default_factory=dict, alias="groupLabels")
    common_labels: StrMap = Field(default_factory=dict, alias="commonLabels")
    common_annotations: StrMap = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    alerts: list[Alert]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def notes(self) -> tuple[str, ...]:
        """What the server should record beside the notification (alerts left out, for now)."""
        if not self.truncated_alerts:
            return ()
        return (
            f"Alertmanager left {self.truncated_alerts} alert(s) of group {self.group_key} out "
            "of this notification (the receiver's max_alerts): they are not investigated",
        )


def parse_webhook(body: bytes, max_alerts: int = MAX_ALERTS) -> Notification:
    """An Alertmanager webhook body as a Notification; InputError naming the field otherwise."""
    data = decode_json(body)
    if not isinstance(data, dict):
        raise InputError(f"body: not a JSON object (got a JSON {_json_kind(data)})")
    if "version" not in data:
        raise InputError('version: required (Alertmanager sends "4")')
    if data["version"] != WEBHOOK_VERSION:
        got = json.dumps(data["version"])[:40]
        raise InputError(f'version: expected "4" (Alertmanager\'s webhook version), got {got}')
    alerts = data.get("alerts")
    if isinstance(alerts, list) and len(alerts) > max_alerts:
        raise InputError(f"alerts: {len(alerts)} alerts, more than the cap of {max_alerts}")
    return _validated(Notification, data)


def decode_json(body: bytes) -> Any:
    """UTF-8 JSON text as Python values; InputError for anything else (NaN included)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"body: not UTF-8 (byte {err.start})") from None
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise InputError("body: JSON nested too deeply") from None
    except ValueError as err:  # JSONDecodeError, and ints past Python's digit limit
        raise InputError(f"body: not JSON ({str(err)[:120]})") from None
    try:
        # A \ud800 escape decodes to a lone surrogate, which no store or hash can encode.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("body: a \\u escape is a lone surrogate, not Unicode text") from None
    except RecursionError:
        raise InputError("body: JSON nested too deeply") from None
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_kind(value: Any) -> str:
    kinds = {list: "array", str: "string", bool: "boolean", type(None): "null"}
    return kinds.get(type(value), "number")


M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise InputError(describe(err)) from None


def describe(err: ValidationError, most: int = 3) -> str:
    """A pydantic error as `alerts[3].startsAt: not an RFC 3339 time; ...` (the first few)."""
    problems = err.errors(include_url=False, include_input=False)
    parts = [f"{_where(p['loc'])}: {_why(p)}" for p in problems[:most]]
    if len(problems) > most:
        parts.append(f"and {len(problems) - most} more")
    return "; ".join(parts)


def _where(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part == "[key]":
            text += " (a key)"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)[:60]}]"
    return text or "body"


_WHY = {
    "missing": "required",
    "dict_type": "not an object (a map of strings)",
    "list_type": "not a list",
    "string_type": "not a string",
    "int_type": "not an integer",
    "extra_forbidden": "not a known field",
}


def _why(problem: Any) -> str:
    kind = problem["type"]
    if kind == "value_error":
        return str(problem["ctx"]["error"])
    return _WHY.get(kind, problem["msg"])


def requests(notification: Notification, mapping: Mapping, now: float) -> list[AlertRequest]:
    """One investigation request per alert of the notification."""
    return [_request(notification.group_key, alert, mapping, now) for alert in notification.alerts]


def _request(group_key: str, alert: Alert, mapping: Mapping, now: float) -> AlertRequest:
    start, end = window(alert, mapping, now)
    return AlertRequest(
        key=alert_key(group_key, alert.fingerprint, alert.starts_at),
        service=_first(alert.labels, {}, mapping.service_labels),
        start=start,
        end=end,
        alert_time=alert.starts_at / 1e9,
        symptom=symptom(alert, mapping),
        labels=tuple(sorted(alert.labels.items())),
        resolved=alert.status == "resolved",
        source="alertmanager",
    )


def alert_key(group_key: str, fingerprint: str, starts_at_ns: int) -> str:
    """The key Alertmanager's repeats of one alert share: sha256 hex of its three parts."""
    text = "\n".join((group_key, fingerprint, str(starts_at_ns)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def window(alert: Alert, mapping: Mapping, now: float) -> tuple[float, float]:
    """The investigation window of an alert (epoch seconds)."""
    at = alert.starts_at / 1e9
    start = at - mapping.lookback_s
    end = min(at + mapping.after_s, now)
    if alert.status == "resolved" and alert.ends_at is not None:
        end = min(end, alert.ends_at / 1e9)
    # A startsAt ahead of our clock by more than the lookback (clock skew) would leave nothing;
    # the page is still worth investigating, up to the moment it names.
    return start, end if end > start else at


def _first(
    labels: dict[str, str], annotations: dict[str, str], names: tuple[str, ...]
) -> str | None:
    for source in (labels, annotations):
        for name in names:
            value = source.get(name, "").strip()
            if value:
                return value
    return None


def symptom(alert: Alert, mapping: Mapping) -> str | None:
    """The alerting metric, where a label or an annotation names it."""
    named = _first(alert.labels, alert.annotations, mapping.symptom_labels)
    if named is None and mapping.symptom_from_alertname:
        return alert.labels.get("alertname", "").strip() or None
    return named


def _api_time(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("not a time (RFC 3339 text or epoch seconds)")
    if isinstance(value, str):
        return _in_range(rfc3339_ns(value)) / 1e9
    problem = time_problem(value)
    if problem:
        raise ValueError(f"not a usable time ({problem})")
    return float(value)


ApiTime = Annotated[float, BeforeValidator(_api_time)]


class InvestigationBody(BaseModel):
    """The body of POST /api/v1/investigations: a window to investigate, from any source."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    service: str | None = Field(default=None, min_length=1, max_length=253)
    start: ApiTime
    end: ApiTime | None = None  # now
    alert_time: ApiTime | None = None  # end
    symptom: str | None = Field(default=None, min_length=1, max_length=512)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)


def parse_investigation(body: bytes, now: float, mapping: Mapping | None = None) -> AlertRequest:
    """A POST /api/v1/investigations body as a request; InputError naming the field otherwise."""
    mapping = mapping or Mapping()
    data = decode_json(body)
    if not isinstance(data, dict):
        raise InputError(f"body: not a JSON object (got a JSON {_json_kind(data)})")
    given = _validated(InvestigationBody, data)
    end = now if given.end is None else given.end
    alert_time = end if given.alert_time is None else given.alert_time
    _check_window(given.start, end, alert_time, mapping.max_window_s)
    return AlertRequest(
        key=api_key(given),
        service=given.service,
        start=given.start,
        end=end,
        alert_time=alert_time,
        symptom=given.symptom,
        source="api",
    )


def _check_window(start: float, end: float, alert_time: float, cap_s: float) -> None:
    if end <= start:
        raise InputError("end: not after start")
    if end - start > cap_s:
        raise InputError(
            f"end: the window is {end - start:.0f} s, more than the cap of {cap_s:.0f} s"
        )
    if not start <= alert_time <= end:
        raise InputError("alert_time: outside the window start..end")


def api_key(given: InvestigationBody) -> str:
    """The key of an API request: its contents as given (an omitted end stays omitted, so a
    retried request keeps its key) and the client's idempotency key."""
    text = json.dumps({"source": "api", **given.model_dump()}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
