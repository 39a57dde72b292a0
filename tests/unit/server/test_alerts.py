"""Alertmanager's webhook payload and the investigations body, parsed into AlertRequests."""

from __future__ import annotations

import copy
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llm.hostile import bounded, mutated

from warroom.errors import InputError
from warroom.server.alerts import (
    Mapping,
    parse_investigation,
    parse_webhook,
    requests,
    rfc3339_ns,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "alertmanager"
T0 = datetime(2024, 3, 12, 10, 3, 20, tzinfo=UTC).timestamp()  # the first alert's second
LATER = T0 + 3 * 3600  # a server clock well after every alert


def raw(name: str) -> bytes:
    """A fixture payload as bytes."""
    return (FIXTURES / name).read_bytes()


def payload(name: str = "firing-group.json") -> dict[str, Any]:
    """A fixture payload as a dict, to change."""
    return json.loads(raw(name))


def body(data: object) -> bytes:
    """JSON bytes of `data`."""
    return json.dumps(data).encode("utf-8")


# --- the documented shape ---------------------------------------------------------------


def test_a_firing_group_of_three_alerts() -> None:
    notification = parse_webhook(raw("firing-group.json"))
    assert notification.version == "4"
    assert notification.status == "firing"
    assert notification.receiver == "warroom"
    assert notification.group_key == '{}/{severity="page"}:{alertname="CheckoutHighLatency"}'
    assert notification.common_labels["namespace"] == "shop"
    assert notification.external_url == "http://alertmanager:9093"
    assert notification.truncated_alerts == 0 and notification.notes == ()
    assert [a.fingerprint for a in notification.alerts] == [
        "3f4c1b7a9e2d5c80",
        "8a61d0e2f47b3c19",
        "c02e9b4d17a8f365",
    ]
    assert all(a.ends_at is None for a in notification.alerts)  # Go's zero time: unset
    wanted = requests(notification, Mapping(), LATER)
    assert [r.service for r in wanted] == ["checkout", "payments", "node"]
    assert [r.source for r in wanted] == ["alertmanager"] * 3
    assert not any(r.resolved for r in wanted)
    assert len({r.key for r in wanted}) == 3


def test_nanoseconds_and_offsets_are_read_exactly() -> None:
    notification = parse_webhook(raw("firing-group.json"))
    first, second, third = notification.alerts
    assert first.starts_at == int(T0) * 10**9 + 123_456_789
    assert second.starts_at == (int(T0) + 30) * 10**9 + 500_000_000
    assert third.starts_at == (int(T0) + 45) * 10**9  # 11:04:05+01:00 is 10:04:05Z
    assert rfc3339_ns("1970-01-01T00:00:01.000000001Z") == 1_000_000_001
    assert rfc3339_ns("1970-01-01T01:00:00+01:00") == 0
    assert rfc3339_ns("1970-01-01T00:00:00-00:30") == 1800 * 10**9


def test_labels_are_kept_as_sorted_tuples() -> None:
    request = requests(parse_webhook(raw("firing-group.json")), Mapping(), LATER)[0]
    assert request.labels == tuple(sorted(payload()["alerts"][0]["labels"].items()))
    assert request.labels[0] == ("alertname", "CheckoutHighLatency")


def test_a_resolved_alert_is_the_same_incident_marked_resolved() -> None:
    firing = requests(parse_webhook(raw("firing-group.json")), Mapping(), LATER)[0]
    resolved = requests(parse_webhook(raw("resolved.json")), Mapping(), LATER)
    assert len(resolved) == 1
    assert resolved[0].resolved is True
    assert resolved[0].key == firing.key
    assert resolved[0].service == "checkout"


def test_a_truncated_group_keeps_a_note() -> None:
    notification = parse_webhook(raw("truncated.json"))
    assert notification.truncated_alerts == 3
    assert len(notification.notes) == 1
    assert "3 alert(s)" in notification.notes[0] and "TargetDown" in notification.notes[0]
    assert notification.model_dump()["notes"] == notification.notes  # travels with the value
    assert [r.service for r in requests(notification, Mapping(), LATER)] == ["orders", "orders"]


# --- the key ----------------------------------------------------------------------------


def test_repeats_give_the_same_key() -> None:
    # group_interval / repeat_interval resend the group: later clock, same alerts
    first = requests(parse_webhook(raw("firing-group.json")), Mapping(), T0 + 60)
    again = requests(parse_webhook(raw("firing-group.json")), Mapping(), LATER)
    assert [r.key for r in first] == [r.key for r in again]
    assert all(len(r.key) == 64 and int(r.key, 16) >= 0 for r in first)


def test_the_same_instant_with_another_offset_is_the_same_key() -> None:
    data = payload()
    data["alerts"][0]["startsAt"] = "2024-03-12T12:03:20.123456789+02:00"
    moved = requests(parse_webhook(body(data)), Mapping(), LATER)[0]
    assert moved.key == requests(parse_webhook(raw("firing-group.json")), Mapping(), LATER)[0].key


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("startsAt", "2024-03-12T10:03:20.123456788Z"),  # one nanosecond earlier: it fired again
        ("fingerprint", "3f4c1b7a9e2d5c81"),
    ],
)
def test_a_different_start_or_fingerprint_is_a_different_key(field: str, value: str) -> None:
    data = payload()
    data["alerts"][0][field] = value
    changed = requests(parse_webhook(body(data)), Mapping(), LATER)[0]
    original = requests(parse_webhook(raw("firing-group.json")), Mapping(), LATER)[0]
    assert changed.key != original.key


def test_a_different_group_is_a_different_key() -> None:
    data = payload()
    data["groupKey"] = '{}/{severity="page"}:{alertname="Other"}'
    changed = requests(parse_webhook(body(data)), Mapping(), LATER)
    original = requests(parse_webhook(raw("firing-group.json")), Mapping(), LATER)
    assert not {r.key for r in changed} & {r.key for r in original}


# --- the window -------------------------------------------------------------------------


def test_window_defaults_30_minutes_before_10_after() -> None:
    request = requests(parse_webhook(raw("firing-group.json")), Mapping(), LATER)[0]
    at = T0 + 0.123456789
    assert request.alert_time == pytest.approx(at, abs=1e-6)
    assert request.start == pytest.approx(at - 1800, abs=1e-6)
    assert request.end == pytest.approx(at + 600, abs=1e-6)


def test_window_ends_now_when_now_is_earlier() -> None:
    request = requests(parse_webhook(raw("firing-group.json")), Mapping(), T0 + 120)[0]
    assert request.end == T0 + 120


def test_window_ends_at_endsAt_once_resolved() -> None:  # noqa: N802 (the payload's name)
    request = requests(parse_webhook(raw("resolved.json")), Mapping(), LATER)[0]
    ends = datetime(2024, 3, 12, 10, 8, 35, tzinfo=UTC).timestamp() + 0.000281923
    assert request.end == pytest.approx(ends, abs=1e-6)  # 5 min 15 s after, before the 10 min


def test_a_resolved_alert_ending_late_still_stops_at_the_after_bound() -> None:
    data = payload("resolved.json")
    data["alerts"][0]["endsAt"] = "2024-03-12T12:00:00Z"
    request = requests(parse_webhook(body(data)), Mapping(), LATER)[0]
    assert request.end == pytest.approx(T0 + 0.123456789 + 600, abs=1e-6)


def test_a_firing_alert_with_an_end_ignores_it() -> None:
    # Other senders put a future endsAt on firing alerts (Prometheus' resend horizon).
    data = payload()
    data["alerts"][0]["endsAt"] = "2024-03-12T10:04:00Z"
    request = requests(parse_webhook(body(data)), Mapping(), LATER)[0]
    assert request.end == pytest.approx(T0 + 0.123456789 + 600, abs=1e-6)


def test_window_settings_are_configurable() -> None:
    mapping = Mapping(lookback_s=600, after_s=60)
    request = requests(parse_webhook(raw("firing-group.json")), mapping, LATER)[0]
    assert request.end - request.start == pytest.approx(660)


def test_a_start_ahead_of_our_clock_still_gives_a_window() -> None:
    # clock skew beyond the lookback: min(..., now) would end the window before it starts
    request = requests(parse_webhook(raw("firing-group.json")), Mapping(), T0 - 3600)[0]
    assert request.start < request.end == pytest.approx(request.alert_time)


# --- service and symptom ----------------------------------------------------------------


def alert_with(labels: dict[str, str], annotations: dict[str, str] | None = None) -> bytes:
    """A one-alert payload with these labels and annotations."""
    data = payload()
    data["alerts"] = [data["alerts"][0]]
    data["alerts"][0]["labels"] = labels
    data["alerts"][0]["annotations"] = annotations or {}
    return body(data)


def service_of(labels: dict[str, str], mapping: Mapping | None = None) -> str | None:
    """The service a one-alert payload names."""
    notification = parse_webhook(alert_with(labels))
    return requests(notification, mapping or Mapping(), LATER)[0].service


def test_service_labels_are_tried_in_order() -> None:
    every = {"job": "j", "container": "c", "app": "a", "app_kubernetes_io_name": "k"}
    assert service_of(every) == "k"
    assert service_of({"job": "j", "app": "a"}) == "a"
    assert service_of({"job": "j", "container": "c"}) == "c"
    assert service_of({"job": "j", "service": "s", "service_name": "otel"}) == "s"
    assert service_of({"job": "j"}) == "j"


def test_an_empty_service_label_is_skipped_and_none_is_none() -> None:
    assert service_of({"service": "  ", "job": "j"}) == "j"
    assert service_of({"namespace": "shop", "alertname": "X"}) is None


def test_service_labels_are_configurable() -> None:
    mapping = Mapping(service_labels=("team_service", "job"))
    assert service_of({"service": "s", "team_service": "t", "job": "j"}, mapping) == "t"
    assert service_of({"service": "s"}, mapping) is None


def test_symptom_from_a_label_then_an_annotation() -> None:
    as_label = parse_webhook(alert_with({"alertname": "A", "metric": "errors_total"}))
    assert requests(as_label, Mapping(), LATER)[0].symptom == "errors_total"
    as_annotation = parse_webhook(alert_with({"alertname": "A"}, {"metric": "latency_p99"}))
    assert requests(as_annotation, Mapping(), LATER)[0].symptom == "latency_p99"
    both = parse_webhook(alert_with({"metric": "from_label"}, {"metric": "from_annotation"}))
    assert requests(both, Mapping(), LATER)[0].symptom == "from_label"


def test_alertname_names_the_symptom_only_when_asked() -> None:
    notification = parse_webhook(alert_with({"alertname": "HighLatency"}))
    assert requests(notification, Mapping(), LATER)[0].symptom is None
    asked = Mapping(symptom_from_alertname=True)
    assert requests(notification, asked, LATER)[0].symptom == "HighLatency"


def test_mapping_refuses_unknown_settings() -> None:
    with pytest.raises(ValueError, match="lookbak_s"):
        Mapping.model_validate({"lookbak_s": 60})
    with pytest.raises(ValueError, match="lookback_s"):
        Mapping(lookback_s=0)


# --- malformed payloads name their field ------------------------------------------------


def changed(edit: Any) -> bytes:
    """The firing fixture with `edit` applied to its dict."""
    data = payload()
    edit(data)
    return body(data)


def first_alert(**fields: Any) -> Any:
    """An edit setting fields of the first alert (a value of ... deletes the field)."""

    def edit(data: dict[str, Any]) -> None:
        for name, value in fields.items():
            if value is ...:
                del data["alerts"][0][name]
            else:
                data["alerts"][0][name] = value

    return edit


def third_alert_starts(value: Any) -> Any:
    """An edit of the third alert's startsAt."""
    return lambda data: data["alerts"][2].__setitem__("startsAt", value)


MALFORMED = [
    (b"\xff\xfe{}", "body: not UTF-8"),
    (b"{'version': '4'}", "body: not JSON"),
    (b"", "body: not JSON"),
    (b'{"version": "4", "x": NaN}', "NaN is not a JSON number"),
    (b"[" * 5000 + b"]" * 5000, "body: "),
    (b'{"version": "4", "groupKey": "\\ud800"}', "lone surrogate"),
    (b"[]", "body: not a JSON object (got a JSON array)"),
    (b'"4"', "got a JSON string"),
    (changed(lambda d: d.__setitem__("version", "3")), 'version: expected "4"'),
    (changed(lambda d: d.__setitem__("version", 4)), 'version: expected "4"'),
    (changed(lambda d: d.pop("version")), "version: required"),
    (changed(lambda d: d.pop("groupKey")), "groupKey: required"),
    (changed(lambda d: d.__setitem__("groupKey", "")), "groupKey: "),
    (changed(lambda d: d.pop("alerts")), "alerts: required"),
    (changed(lambda d: d.__setitem__("alerts", {})), "alerts: not a list"),
    (changed(lambda d: d.__setitem__("status", "pending")), "status: "),
    (changed(lambda d: d.__setitem__("truncatedAlerts", -1)), "truncatedAlerts: "),
    (changed(lambda d: d.__setitem__("truncatedAlerts", "3")), "truncatedAlerts: not an integer"),
    (changed(lambda d: d.__setitem__("commonLabels", {"a": 1})), "commonLabels.a: not a string"),
    (changed(lambda d: d.__setitem__("groupLabels", [])), "groupLabels: not an object"),
    (changed(third_alert_starts("yesterday")), "alerts[2].startsAt: not an RFC 3339 time"),
    (changed(third_alert_starts("2024-03-12")), "alerts[2].startsAt: not an RFC 3339 time"),
    (changed(third_alert_starts("2024-03-12 10:03:20")), "alerts[2].startsAt: not an RFC 3339"),
    (changed(third_alert_starts("2024-13-12T10:03:20Z")), "alerts[2].startsAt: not an RFC 3339"),
    (changed(third_alert_starts("2024-03-12T10:03:20+25:00")), "alerts[2].startsAt: not an RFC"),
    (changed(third_alert_starts("2024-03-12T10:03:20.1234567891Z")), "alerts[2].startsAt: not"),
    (changed(third_alert_starts(1710237800)), "alerts[2].startsAt: not an RFC 3339 time"),
    (changed(third_alert_starts("0001-01-01T00:00:00Z")), "alerts[2].startsAt: unset"),
    (changed(third_alert_starts("3024-03-12T10:03:20Z")), "alerts[2].startsAt: a time outside"),
    (changed(third_alert_starts("1969-12-31T23:59:59Z")), "alerts[2].startsAt: a time outside"),
    (changed(first_alert(startsAt=...)), "alerts[0].startsAt: required"),
    (changed(first_alert(endsAt="2024-03-12T10:00:00Z")), "alerts[0].endsAt: before startsAt"),
    (changed(first_alert(endsAt="soon")), "alerts[0].endsAt: not an RFC 3339 time"),
    (changed(first_alert(fingerprint=...)), "alerts[0].fingerprint: required"),
    (changed(first_alert(fingerprint="")), "alerts[0].fingerprint: "),
    (changed(first_alert(status="pending")), "alerts[0].status: "),
    (changed(first_alert(labels=...)), "alerts[0].labels: required"),
    (changed(first_alert(labels=["job", "x"])), "alerts[0].labels: not an object"),
    (changed(first_alert(labels={"job": 5})), "alerts[0].labels.job: not a string"),
    (changed(first_alert(labels={"job": None})), "alerts[0].labels.job: not a string"),
    (changed(first_alert(annotations={"a b": True})), 'alerts[0].annotations["a b"]: not a'),
    (changed(lambda d: d["alerts"].__setitem__(1, "alert")), "alerts[1]: "),
]


@pytest.mark.parametrize(("data", "named"), MALFORMED)
def test_malformed_payloads_name_their_field(data: bytes, named: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_webhook(data)
    assert named in str(caught.value)


def test_more_alerts_than_the_cap() -> None:
    data = payload()
    data["alerts"] = [copy.deepcopy(data["alerts"][0]) for _ in range(11)]
    with pytest.raises(InputError, match="alerts: 11 alerts, more than the cap of 10"):
        parse_webhook(body(data), max_alerts=10)
    assert len(parse_webhook(body(data), max_alerts=11).alerts) == 11


def test_many_problems_are_counted_not_all_listed() -> None:
    data = payload()
    for alert in data["alerts"]:
        alert["startsAt"] = "bad"
        alert["fingerprint"] = 3
    with pytest.raises(InputError) as caught:
        parse_webhook(body(data))
    assert str(caught.value).endswith("and 3 more")


def test_unknown_fields_are_ignored_and_null_maps_are_empty() -> None:
    # Grafana and newer Alertmanagers add fields; Go writes a nil map as null
    data = payload()
    data["orgId"] = 1
    data["alerts"][0]["silenceURL"] = "http://x"
    data["commonAnnotations"] = None
    data["alerts"][0]["annotations"] = None
    notification = parse_webhook(body(data))
    assert notification.common_annotations == {} and notification.alerts[0].annotations == {}


def test_an_empty_group_is_no_requests() -> None:
    notification = parse_webhook(changed(lambda d: d.__setitem__("alerts", [])))
    assert requests(notification, Mapping(), LATER) == []


# --- the generic investigations body ----------------------------------------------------


def test_an_api_body_with_rfc3339_times() -> None:
    request = parse_investigation(
        body(
            {
                "service": "checkout",
                "start": "2024-03-12T10:00:00Z",
                "end": "2024-03-12T10:30:00Z",
                "symptom": "latency_p99",
            }
        ),
        LATER,
    )
    start = datetime(2024, 3, 12, 10, tzinfo=UTC).timestamp()
    assert (request.start, request.end, request.alert_time) == (start, start + 1800, start + 1800)
    assert request.service == "checkout" and request.symptom == "latency_p99"
    assert request.source == "api" and request.resolved is False and request.labels == ()


def test_an_api_body_with_epoch_seconds_and_an_alert_time() -> None:
    given = {"service": "a", "start": T0, "end": int(T0) + 60, "alert_time": T0 + 10}
    request = parse_investigation(body(given), LATER)
    assert (request.start, request.end, request.alert_time) == (T0, int(T0) + 60, T0 + 10)


def test_an_api_body_without_an_end_ends_now_and_keeps_its_key() -> None:
    given = body({"service": "a", "start": T0})
    first, retried = parse_investigation(given, T0 + 100), parse_investigation(given, T0 + 200)
    assert (first.end, retried.end) == (T0 + 100, T0 + 200)
    assert first.key == retried.key  # a client retrying the same body joins the same one


def test_api_keys_follow_contents_and_the_idempotency_key() -> None:
    base = {"service": "a", "start": T0, "end": T0 + 60}
    key = parse_investigation(body(base), LATER).key
    assert parse_investigation(body(dict(base)), LATER).key == key
    as_text = {**base, "start": "2024-03-12T10:03:20Z"}  # the same instant written as text
    assert parse_investigation(body(as_text), LATER).key == key
    assert parse_investigation(body({**base, "service": "b"}), LATER).key != key
    once = parse_investigation(body({**base, "idempotency_key": "page-1"}), LATER).key
    twice = parse_investigation(body({**base, "idempotency_key": "page-2"}), LATER).key
    assert len({key, once, twice}) == 3
    assert parse_investigation(body({**base, "idempotency_key": "page-1"}), LATER).key == once


def test_api_key_differs_from_any_alert_key() -> None:
    request = parse_investigation(body({"start": T0, "end": T0 + 60}), LATER)
    assert request.service is None
    alerts = requests(parse_webhook(raw("firing-group.json")), Mapping(), LATER)
    assert request.key not in {r.key for r in alerts}


API_MALFORMED = [
    (b"[1]", "body: not a JSON object"),
    (b"{", "body: not JSON"),
    (body({"service": "a"}), "start: required"),
    (body({"start": "yesterday"}), "start: not an RFC 3339 time"),
    (body({"start": True}), "start: not a time"),
    (body({"start": [T0]}), "start: not a time"),
    (body({"start": -5.0}), "start: not a usable time"),
    (b'{"start": 1e999}', "start: not a usable time"),
    (body({"start": T0, "end": "then"}), "end: not an RFC 3339 time"),
    (body({"start": T0, "end": T0}), "end: not after start"),
    (body({"start": T0, "end": T0 - 60}), "end: not after start"),
    (body({"start": T0, "end": T0 + 2 * 86400}), "more than the cap of 86400 s"),
    (body({"start": T0, "end": T0 + 60, "alert_time": T0 + 61}), "alert_time: outside"),
    (body({"start": T0, "service": ""}), "service: "),
    (body({"start": T0, "service": 5}), "service: "),
    (body({"start": T0, "symptom": ["x"]}), "symptom: "),
    (body({"start": T0, "idempotency_key": "k" * 201}), "idempotency_key: "),
    (body({"start": T0, "servce": "a"}), "servce: not a known field"),
]


@pytest.mark.parametrize(("data", "named"), API_MALFORMED)
def test_malformed_api_bodies_name_their_field(data: bytes, named: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_investigation(data, LATER)
    assert named in str(caught.value)


def test_the_api_window_cap_is_configurable() -> None:
    given = body({"start": T0, "end": T0 + 7200})
    with pytest.raises(InputError, match="cap of 3600 s"):
        parse_investigation(given, LATER, Mapping(max_window_s=3600))
    assert parse_investigation(given, LATER).end == T0 + 7200


# --- fuzz: only InputError or a value ---------------------------------------------------

FUZZ = settings(
    max_examples=int(os.environ.get("WARROOM_FUZZ_N", "300")),
    deadline=None,  # bounded() times each call
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
SEEDS = (raw("firing-group.json"), raw("resolved.json"), raw("truncated.json"))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(
        [
            "4",
            "firing",
            "resolved",
            "0001-01-01T00:00:00Z",
            "2024-03-12T10:03:20.123456789Z",
            "9999-12-31T23:59:59.999999999-23:59",
            "0001-01-01T00:00:00+00:01",
        ]
    ),
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
FIELDS = st.sampled_from(
    ["version", "groupKey", "status", "alerts", "truncatedAlerts", "commonLabels", "receiver"]
)
ALERT_FIELDS = st.sampled_from(
    ["status", "labels", "annotations", "startsAt", "endsAt", "fingerprint", "generatorURL"]
)


@st.composite
def edited(draw: st.DrawFn) -> bytes:
    """A fixture with a few of its fields (top level or in an alert) replaced or removed."""
    data = json.loads(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        alerts = data.get("alerts")
        in_alert = isinstance(alerts, list) and alerts and draw(st.booleans())
        target = draw(st.sampled_from(alerts)) if in_alert else data
        name = draw(ALERT_FIELDS if in_alert else FIELDS)
        if not isinstance(target, dict):
            continue
        if draw(st.booleans()):
            target[name] = draw(JSONISH)
        else:
            target.pop(name, None)
    return body(data)


def parse_all(data: bytes) -> None:
    """Parse, and turn a parsed notification into requests: InputError is the only failure."""
    try:
        notification = parse_webhook(data)
    except InputError:
        return
    for request in requests(notification, Mapping(), LATER):
        assert request.start < request.end and len(request.key) == 64


@FUZZ
@given(data=st.one_of(edited(), mutated(*SEEDS), JSONISH.map(body)))
def test_fuzz_the_webhook_parser(data: bytes) -> None:
    with bounded("alertmanager webhook"):
        parse_all(data)


@FUZZ
@given(
    data=st.one_of(
        JSONISH.map(body),
        st.dictionaries(
            st.sampled_from(
                ["service", "start", "end", "alert_time", "symptom", "idempotency_key"]
            ),
            SCALARS,
        ).map(body),
    )
)
def test_fuzz_the_investigations_body(data: bytes) -> None:
    with bounded("investigations body"):
        try:
            request = parse_investigation(data, LATER)
        except InputError:
            return
        assert request.start < request.end
