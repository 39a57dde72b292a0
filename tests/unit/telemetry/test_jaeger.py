"""Jaeger connector against response files in the query service's JSON format on loopback."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import ValidationError

from loopback import FIXTURES, Loopback, Reply, Request, answer_file
from warroom.errors import BackendError
from warroom.intake.case_dir import SPAN_COLUMNS
from warroom.intake.otlp import read_spans
from warroom.model import Span, TimeRange
from warroom.telemetry.jaeger import SERVICES, TRACES, Config, JaegerSource, sources
from warroom.telemetry.sources import Batch, Fetcher
from warroom.telemetry.store import TelemetryStore

T0 = 1_700_000_400.0
WINDOW = TimeRange(T0, T0 + 600)
MAIN = "5b8efff798038103d269b633813fc60c"
NATIVE = "0" * 30 + "ab"  # a Jaeger client's 64-bit id 00000000000000ab, padded as OTLP's
REFERENCE = FIXTURES / "tempo/trace_resource_spans.json"  # the main trace as an OTLP file


def _by_service(request: Request) -> Reply:
    service = request.query["service"][0]
    path = FIXTURES / f"jaeger/traces_{service}.json"
    if not path.is_file():
        return Reply({"data": None, "errors": [{"code": 404, "msg": f"no {service}"}]}, 404)
    return answer_file(f"jaeger/traces_{service}.json")


def _routes(**overrides: Any) -> dict[str, Any]:
    return {SERVICES: answer_file("jaeger/services.json"), TRACES: _by_service, **overrides}


def _source(url: str, **settings: Any) -> JaegerSource:
    source = sources(Config.model_validate({"url": url, **settings}))[0]
    assert isinstance(source, JaegerSource)
    return source


def _fetch(source: JaegerSource, window: TimeRange = WINDOW) -> Batch:
    return source.fetch(window, time.monotonic() + 10)


def _spans(batch: Batch) -> dict[str, Span]:
    rows = [{a: batch.columns[c][i] for c, a in SPAN_COLUMNS.items()} for i in range(batch.rows)]
    return {r["span_id"]: Span(**{**r, "peer": r["peer"] or ""}) for r in rows}


def test_services_then_each_services_traces_in_microseconds() -> None:
    with Loopback(_routes()) as server:
        _fetch(_source(server.url), TimeRange(T0 + 0.000001, T0 + 600.5))
        first, *searches = server.requests
    assert first.path == SERVICES
    assert sorted(r.query["service"][0] for r in searches) == ["checkout", "frontend", "payments"]
    assert all(r.path == TRACES for r in searches)  # jaeger-all-in-one is not asked about
    assert searches[0].query["start"] == ["1700000400000001"]
    assert searches[0].query["end"] == ["1700001000500000"]
    assert searches[0].query["limit"] == ["500"]


def test_a_trace_from_jaeger_equals_the_same_trace_read_from_an_otlp_file() -> None:
    with Loopback(_routes()) as server:
        spans = _spans(_fetch(_source(server.url)))
    reference = {s.span_id: s for s in read_spans(REFERENCE)}
    assert {k: v for k, v in spans.items() if v.trace_id == MAIN} == reference


def test_a_trace_listed_for_several_services_is_stored_once() -> None:
    with Loopback(_routes()) as server:
        batch = _fetch(_source(server.url))
    pairs = list(zip(batch.columns["trace_id"], batch.columns["span_id"], strict=True))
    assert len(pairs) == len(set(pairs)) == 9  # 6 of the main trace, 3 of the client's trace


def test_parent_peer_error_and_pod_from_a_jaeger_client_trace() -> None:
    with Loopback(_routes()) as server:
        spans = _spans(_fetch(_source(server.url)))
    server_span, client, audit = (spans[f"00000000000000a{i}"] for i in (1, 2, 3))
    assert server_span.trace_id == NATIVE
    assert server_span.error and server_span.pod == "payments-1"  # http.status_code 502
    assert server_span.peer == ""  # its peer.service names its caller, not a callee
    assert (client.parent_id, client.peer, client.error) == ("00000000000000a1", "bank-api", True)
    assert audit.parent_id == ""  # FOLLOWS_FROM is a link, not a parent
    assert not audit.error  # a 404 is the caller's problem
    assert client.start == 1_700_000_450_005_000 / 10**6
    assert client.end == 1_700_000_450_075_000 / 10**6  # start + duration in microseconds first


def test_spans_that_cannot_be_read_are_skipped_and_counted() -> None:
    with Loopback(_routes()) as server:
        batch = _fetch(_source(server.url))
    assert "00000000000000a4" not in batch.columns["span_id"]  # an unknown processID
    assert "00000000000000a5" not in batch.columns["span_id"]  # a negative duration
    assert batch.degraded == (
        "jaeger: 2 malformed span(s) skipped (first: payments: data[1].spans[3])",
    )


def test_configured_services_skip_the_service_listing() -> None:
    with Loopback(_routes()) as server:
        batch = _fetch(_source(server.url, services=["payments"]))
        assert [r.path for r in server.requests] == [TRACES]
    assert batch.rows == 9


def test_a_search_at_its_limit_is_said_to_hold_more_traces() -> None:
    with Loopback(_routes()) as server:
        batch = _fetch(_source(server.url, max_traces=2))
    (note,) = [n for n in batch.degraded if "limit" in n]
    assert "limit of 2 traces for payments" in note


@pytest.mark.parametrize(
    ("routes", "words"),
    [
        (
            _routes(**{TRACES: answer_file("jaeger/error_500.json", 500)}),
            ["/api/traces answered 500", "all shards failed"],
        ),
        (
            _routes(**{SERVICES: answer_file("jaeger/error_400.json", 400)}),
            ["/api/services answered 400", "unable to parse param"],
        ),
        (
            _routes(**{TRACES: answer_file("jaeger/error_500.json", 200)}),
            ["/api/traces answered an error: 500 elastic"],
        ),
        (_routes(**{SERVICES: Reply(b"<html>jaeger</html>")}), ["not JSON"]),
        (_routes(**{SERVICES: Reply({"data": [1, 2]})}), ["not strings"]),
        (_routes(**{TRACES: Reply({"data": {"spans": []}})}), ["'data' that is not a list"]),
    ],
)
def test_bad_answers_are_backend_errors_naming_jaeger_and_the_path(
    routes: dict[str, Any], words: list[str]
) -> None:
    with Loopback(routes) as server, pytest.raises(BackendError) as caught:
        _fetch(_source(server.url))
    assert str(caught.value).startswith("jaeger: /api/")
    for word in words:
        assert word in str(caught.value)


def test_a_slow_jaeger_times_out_within_the_endpoint_timeout() -> None:
    slow = Reply((FIXTURES / "jaeger/traces_empty.json").read_bytes(), delay_s=3.0)
    with Loopback(_routes(**{TRACES: slow})) as server:
        started = time.monotonic()
        with pytest.raises(BackendError, match="timed out"):
            _fetch(_source(server.url, timeout_s=0.3))
        assert time.monotonic() - started < 2.0


def test_identity_and_settings() -> None:
    source = _source("http://jaeger:16686", username="u", password="pa55word-x")
    assert "pa55word" not in source.identity() and "jaeger:16686" in source.identity()
    with pytest.raises(ValidationError):
        Config.model_validate({"url": "http://jaeger:16686", "service": "checkout"})


def test_the_fetcher_fills_the_spans_table_through_the_source() -> None:
    store = TelemetryStore()
    with Loopback(_routes()) as server:
        fetcher = Fetcher(store, sources(Config.model_validate({"url": server.url})))
        fetcher.cover([TimeRange(T0 + 1, T0 + 60)])
    assert store.count("spans") == 9
    main = sorted((s for s in store.spans(WINDOW) if s.trace_id == MAIN), key=lambda s: s.span_id)
    assert main == sorted(read_spans(REFERENCE), key=lambda s: s.span_id)
    assert fetcher.degraded()[0].startswith("jaeger: 2 malformed span(s) skipped")
