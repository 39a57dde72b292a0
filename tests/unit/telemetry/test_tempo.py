"""Tempo connector against response files in Tempo's documented search and trace formats."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import ValidationError

from loopback import FIXTURES, Loopback, Reply, answer_file
from warroom.errors import BackendError
from warroom.intake.case_dir import SPAN_COLUMNS
from warroom.intake.otlp import read_spans
from warroom.model import Span, TimeRange
from warroom.telemetry.sources import Batch, Fetcher
from warroom.telemetry.store import TelemetryStore
from warroom.telemetry.tempo import SEARCH, Config, TempoSource, sources

T0 = 1_700_000_400.0
WINDOW = TimeRange(T0, T0 + 600)
MAIN = "5b8efff798038103d269b633813fc60c"
SHORT = "d6e9329d67b6146a"  # a 64-bit id, as Tempo's search lists it
REFERENCE = FIXTURES / "tempo/trace_resource_spans.json"


def _routes(**overrides: Any) -> dict[str, Any]:
    routes: dict[str, Any] = {
        SEARCH: answer_file("tempo/search.json"),
        f"/api/traces/{MAIN}": answer_file("tempo/trace_resource_spans.json"),
        f"/api/traces/{SHORT}": answer_file("tempo/trace_batches.json"),
    }
    routes.update({k.replace("__", "/"): v for k, v in overrides.items()})
    return routes


def _source(url: str, **settings: Any) -> TempoSource:
    source = sources(Config.model_validate({"url": url, **settings}))[0]
    assert isinstance(source, TempoSource)
    return source


def _fetch(source: TempoSource, window: TimeRange = WINDOW) -> Batch:
    return source.fetch(window, time.monotonic() + 10)


def _spans(batch: Batch) -> dict[str, Span]:
    rows = [{a: batch.columns[c][i] for c, a in SPAN_COLUMNS.items()} for i in range(batch.rows)]
    return {r["span_id"]: Span(**{**r, "peer": r["peer"] or ""}) for r in rows}


def test_search_then_each_trace_by_id_with_the_documented_parameters() -> None:
    with Loopback(_routes()) as server:
        batch = _fetch(_source(server.url, headers={"X-Scope-OrgID": "team-a"}))
        search, *traces = server.requests
    assert search.query == {
        "q": ["{}"],
        "start": ["1700000400"],
        "end": ["1700001000"],
        "limit": ["500"],
        "spss": ["1"],
    }
    assert sorted(r.path for r in traces) == [f"/api/traces/{MAIN}", f"/api/traces/{SHORT}"]
    assert all(r.headers["accept"] == "application/json" for r in traces)
    assert all(r.headers["x-scope-orgid"] == "team-a" for r in server.requests)
    assert traces[0].query["start"] == ["1699996800"] and traces[0].query["end"] == ["1700004600"]
    assert batch.rows == 8
    assert batch.degraded == (
        "tempo: 1 search result(s) without a usable traceID skipped (first: traces[2])",
    )


def test_a_trace_from_tempo_equals_the_same_trace_read_from_an_otlp_file() -> None:
    with Loopback(_routes()) as server:
        fetched = _spans(_fetch(_source(server.url)))
    reference = {s.span_id: s for s in read_spans(REFERENCE)}
    assert {k: fetched[k] for k in reference} == reference


def test_parent_peer_error_and_the_older_batches_shape_with_base64_ids() -> None:
    with Loopback(_routes()) as server:
        spans = _spans(_fetch(_source(server.url)))
    assert spans["2222222222222222"].peer == "checkout"
    assert spans["4444444444444444"].peer == "payments.shop.svc"
    assert spans["4444444444444444"].error and not spans["3333333333333333"].error
    assert spans["3333333333333333"].parent_id == "2222222222222222"
    assert spans["3333333333333333"].pod == "checkout-7d9f-x2k4p"
    redis = spans["b2b2b2b2b2b2b2b2"]
    assert redis.trace_id == "0000000000000000" + SHORT  # base64 ids as hex, padded like OTLP's
    assert (redis.parent_id, redis.peer, redis.error) == ("a1a1a1a1a1a1a1a1", "redis-master", True)
    assert redis.start == 1_700_000_420_001_000_000 / 10**9


def test_a_search_at_its_limit_is_said_to_hold_more_traces() -> None:
    with Loopback(_routes()) as server:
        batch = _fetch(_source(server.url, max_traces=3))
    assert any("hit its limit of 3 traces" in note for note in batch.degraded)


def test_v2_trace_by_id_and_a_partial_trace_noted() -> None:
    routes = {
        SEARCH: answer_file("tempo/search.json"),
        f"/api/v2/traces/{MAIN}": answer_file("tempo/trace_v2_partial.json"),
        f"/api/v2/traces/{SHORT}": Reply({"trace": {}, "status": "COMPLETE"}),
    }
    with Loopback(routes) as server:
        batch = _fetch(_source(server.url, api="v2"))
    assert batch.rows == 6
    (note,) = [n for n in batch.degraded if "partial" in n]
    assert MAIN in note and "exceeds maximum size" in note


def test_a_trace_gone_since_the_search_costs_only_itself() -> None:
    with Loopback(_routes(**{f"__api__traces__{SHORT}": Reply(b"trace not found", 404)})) as s:
        batch = _fetch(_source(s.url))
    assert batch.rows == 6
    assert any("not by id (404)" in note and SHORT in note for note in batch.degraded)


def test_a_broken_span_is_skipped_and_the_rest_of_its_trace_kept() -> None:
    routes = _routes(**{f"__api__traces__{MAIN}": answer_file("tempo/trace_malformed.json")})
    with Loopback(routes) as server:
        spans = _spans(_fetch(_source(server.url)))
        batch = _fetch(_source(server.url))
    assert "2222222222222222" not in spans and "5555555555555555" not in spans
    assert {"1111111111111111", "3333333333333333", "4444444444444444"} <= set(spans)
    assert any("2 malformed span(s) skipped" in note for note in batch.degraded)


@pytest.mark.parametrize(
    ("routes", "words"),
    [
        (
            _routes(**{"__api__search": answer_file("tempo/traceql_error.txt", 400)}),
            ["/api/search answered 400", "invalid TraceQL query"],
        ),
        (
            _routes(**{f"__api__traces__{MAIN}": Reply(b"internal error", 500)}),
            [f"/api/traces/{MAIN} answered 500", "internal error"],
        ),
        (_routes(**{"__api__search": Reply(b"<html>", 200)}), ["not JSON"]),
        (_routes(**{"__api__search": Reply({"traces": {"a": 1}})}), ["not a list"]),
        (_routes(**{f"__api__traces__{MAIN}": Reply([1, 2])}), ["not an object"]),
    ],
)
def test_bad_answers_are_backend_errors_naming_tempo_and_the_path(
    routes: dict[str, Any], words: list[str]
) -> None:
    with Loopback(routes) as server, pytest.raises(BackendError) as caught:
        _fetch(_source(server.url))
    assert str(caught.value).startswith("tempo: /api/")
    for word in words:
        assert word in str(caught.value)


def test_a_slow_trace_read_times_out_within_the_endpoint_timeout() -> None:
    slow = Reply((FIXTURES / "tempo/trace_batches.json").read_bytes(), delay_s=3.0)
    with Loopback(_routes(**{f"__api__traces__{SHORT}": slow})) as server:
        started = time.monotonic()
        with pytest.raises(BackendError, match="timed out"):
            _fetch(_source(server.url, timeout_s=0.3))
        assert time.monotonic() - started < 2.0


def test_an_empty_search_asks_for_no_trace() -> None:
    with Loopback(_routes(**{"__api__search": answer_file("tempo/search_empty.json")})) as s:
        batch = _fetch(_source(s.url))
        assert len(s.requests) == 1
    assert batch.rows == 0 and batch.degraded == ()


def test_identity_and_settings() -> None:
    source = _source("http://tempo:3200", bearer_token="s3cret-token", query="{status=error}")
    assert "s3cret" not in source.identity() and "{status=error}" in source.identity()
    with pytest.raises(ValidationError):
        Config.model_validate({"url": "http://tempo:3200", "max_trace": 5})


def test_the_fetcher_fills_the_spans_table_like_the_otlp_file() -> None:
    store = TelemetryStore()
    with Loopback(_routes()) as server:
        fetcher = Fetcher(store, sources(Config.model_validate({"url": server.url})))
        fetcher.cover([TimeRange(T0 + 1, T0 + 30)])
    in_store = [s for s in store.spans(WINDOW) if s.trace_id == MAIN]
    assert sorted(in_store, key=lambda s: s.span_id) == sorted(
        read_spans(REFERENCE), key=lambda s: s.span_id
    )
    assert store.count("spans") == 8
    assert len(fetcher.degraded()) == 1  # the search result without a traceID
