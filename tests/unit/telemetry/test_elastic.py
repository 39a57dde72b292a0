"""Elasticsearch/OpenSearch logs against response files in the documented _search format."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest
from pydantic import ValidationError

from loopback import FIXTURES, Loopback, Reply, Request, answer_file
from warroom.errors import BackendError
from warroom.intake.otlp import otlp_logs
from warroom.model import TimeRange
from warroom.telemetry.elastic import Config, ElasticSource, field, iso_nanos, parse_time, sources
from warroom.telemetry.sources import Fetcher
from warroom.telemetry.store import TelemetryStore

T0 = 1_700_000_400  # 2023-11-14T22:20:00Z, on the fetch grid
WINDOW = TimeRange(T0, T0 + 600)
PATH = "/logs-*/_search"


def _source(url: str, **settings: Any) -> ElasticSource:
    source = sources(Config(url=url, **settings))[0]
    assert isinstance(source, ElasticSource)
    return source


def _fetch(source: ElasticSource, window: TimeRange = WINDOW) -> Any:
    return source.fetch(window, time.monotonic() + 10)


def _rows(batch: Any) -> list[dict[str, Any]]:
    names = list(batch.columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*batch.columns.values(), strict=True)]


def test_nested_ecs_documents_become_log_rows() -> None:
    with Loopback({PATH: answer_file("elastic/search_nested.json")}) as server:
        batch = _fetch(_source(server.url))
        request = server.requests[0]
    rows = _rows(batch)
    assert [(r["service"], r["pod"], r["level"]) for r in rows] == [
        ("checkout", "checkout-7d9f-x2k4p", "ERROR"),  # kubernetes.pod.name before host.name
        ("payments", "node-1", "warn"),
        ("payments", "payments", ""),  # no pod field: named after the service, as OTLP does
    ]
    assert rows[0]["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert rows[0]["span_id"] == "eee19b7ec3c1b174"
    assert rows[2]["trace_id"] == "" and rows[2]["message"] == "retrying"
    # 23:20:02.123456789+01:00 is 22:20:02.123456789Z, to the nanosecond
    assert rows[1]["ts"] == ((T0 + 2) * 10**9 + 123_456_789) / 10**9
    assert batch.degraded == ()
    body = json.loads(request.body)
    assert request.method == "POST" and request.headers["content-type"] == "application/json"
    assert body["sort"][0] == {"@timestamp": {"order": "asc", "numeric_type": "date_nanos"}}
    assert body["track_total_hits"] is True and body["size"] == 1000
    assert body["query"]["bool"]["filter"] == [
        {
            "range": {
                "@timestamp": {"gte": T0 * 1000, "lt": (T0 + 600) * 1000, "format": "epoch_millis"}
            }
        }
    ]


def test_dotted_and_mixed_fields_and_epoch_millis() -> None:
    with Loopback({PATH: answer_file("elastic/search_dotted.json")}) as server:
        rows = _rows(_fetch(_source(server.url)))
    assert [r["ts"] for r in rows] == [1700000400.123, 1700000400.456, 1700000400.789]
    assert [r["pod"] for r in rows] == ["cart-5c7b-qq8zr", "node-2", "cart"]
    assert [r["level"] for r in rows] == ["warn", "info", ""]  # an array gives its first value
    assert rows[0]["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert rows[2]["message"] == '{"code":7,"text":"structured"}'


def test_field_lookup_nested_dotted_mixed() -> None:
    assert field({"a": {"b": {"c": 1}}}, "a.b.c") == 1
    assert field({"a.b.c": 2}, "a.b.c") == 2
    assert field({"a": {"b.c": 3}}, "a.b.c") == 3
    assert field({"a.b": {"c": 4}}, "a.b.c") == 4
    assert field({"a": {"x": 1}, "a.b": {"c": 5}}, "a.b.c") == 5
    assert field({"a": {"b": 1}}, "a.b.c") is None


def test_times_parse_exactly_like_the_otlp_reader() -> None:
    ns = 1_700_000_400_123_456_789
    otlp = otlp_logs(
        {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": str(ns)}]}]}]}
    )[0].time
    assert parse_time("2023-11-14T22:20:00.123456789Z") == otlp
    assert parse_time("2023-11-14T17:20:00.123456789-05:00") == otlp
    assert parse_time(iso_nanos(ns)) == otlp and iso_nanos(ns) == "2023-11-14T22:20:00.123456789Z"
    assert parse_time(1_700_000_400_123) == 1_700_000_400_123 / 1000
    assert parse_time("1700000400123") == parse_time("2023-11-14T22:20:00.123Z") == 1700000400.123
    assert parse_time(1_700_000_400_123.5) == 1_700_000_400_123_500_000 / 10**9
    assert parse_time("2023-11-14") == 1_699_920_000
    for bad in ("2023-02-30T00:00:00Z", "2023-11-14T25:00:00Z", "yesterday", None, True, [], {}):
        assert parse_time(bad) is None, bad


@pytest.mark.parametrize("range_format", ["epoch_millis", "iso"])
def test_the_range_covers_the_window_exactly(range_format: str) -> None:
    window = TimeRange(1_700_000_400.1, 1_700_000_999.5)
    with Loopback({PATH: answer_file("elastic/empty.json")}) as server:
        batch = _fetch(_source(server.url, range_format=range_format), window)
        (clause,) = [
            f["range"]["@timestamp"]
            for f in json.loads(server.requests[0].body)["query"]["bool"]["filter"]
        ]
    assert batch.rows == 0 and batch.degraded == ()
    assert parse_time(clause["gte"]) == window.start  # both parse back to the window's floats
    assert parse_time(clause["lt"]) == window.end
    expected = (
        "epoch_millis" if range_format == "epoch_millis" else "strict_date_optional_time_nanos"
    )
    assert clause["format"] == expected


# --- paging ----------------------------------------------------------------------------------


def _paging(tiebreaker: str | None = None, seed: int = 0) -> Any:
    """A small simulator of _search with sort + search_after over paging_all.json: strictly
    after the cursor, `size` hits, and (as without point in time) equal sort values in an order
    that changes from one request to the next."""
    docs = json.loads((FIXTURES / "elastic/paging_all.json").read_text())["hits"]["hits"]
    shuffle = random.Random(seed)

    def key(doc: dict[str, Any]) -> list[Any]:
        extra = [doc["_source"]["event"]["id"]] if tiebreaker else []
        return [doc["sort"][0], *extra]

    def answer(request: Request) -> Reply:
        body = json.loads(request.body)
        after = body.get("search_after")
        chosen = [d for d in docs if after is None or key(d) > after]
        shuffle.shuffle(chosen)
        chosen.sort(key=key)  # stable: ties keep the shuffled order
        hits = [{**d, "sort": key(d)} for d in chosen[: body["size"]]]
        total = {"value": len(docs), "relation": "eq"} if body.get("track_total_hits") else None
        return Reply(
            {
                "timed_out": False,
                "_shards": {"total": 2, "failed": 0},
                "hits": {"total": total, "hits": hits},
            }
        )

    return answer, [d["_id"] for d in docs]


@pytest.mark.parametrize("seed", range(5))
def test_paging_without_a_tiebreaker_loses_and_repeats_nothing(seed: int) -> None:
    answer, ids = _paging(seed=seed)
    with Loopback({PATH: answer}) as server:
        batch = _fetch(_source(server.url, size=5))
        requests = [json.loads(r.body) for r in server.requests]
    messages = [r["message"] for r in _rows(batch)]
    assert sorted(messages) == sorted(f"line {int(i[1:])}" for i in ids)  # each once
    assert batch.degraded == ()
    assert "search_after" not in requests[0] and all("search_after" in r for r in requests[1:])
    assert [r["track_total_hits"] for r in requests] == [True] + [False] * (len(requests) - 1)


def test_paging_with_a_tiebreaker_follows_the_sort_values() -> None:
    answer, ids = _paging(tiebreaker="event.id")
    with Loopback({PATH: answer}) as server:
        batch = _fetch(_source(server.url, size=4, tiebreaker="event.id"))
        requests = [json.loads(r.body) for r in server.requests]
    assert [r["message"] for r in _rows(batch)] == [f"line {i}" for i in range(len(ids))]
    assert requests[0]["sort"][1] == {"event.id": {"order": "asc"}}
    assert requests[1]["search_after"] == [1_700_000_401_500_000_000, "evt-03"]
    assert len(requests) == 6  # 23 documents, 4 a page: the sixth page is short


def test_a_page_of_one_nanosecond_is_stepped_past_and_said() -> None:
    answer, _ = _paging()
    with Loopback({PATH: answer}) as server:
        batch = _fetch(_source(server.url, size=3))
    assert any("filled by one nanosecond" in note for note in batch.degraded)
    assert len(set(r["message"] for r in _rows(batch))) == batch.rows  # still no repeats


def test_the_page_cap_keeps_what_was_read_and_says_truncated() -> None:
    answer, _ = _paging()
    with Loopback({PATH: answer}) as server:
        batch = _fetch(_source(server.url, size=5, max_pages=2))
    assert 8 <= batch.rows <= 10
    (note,) = batch.degraded
    assert note.startswith("elasticsearch: truncated: ") and "of 23 documents" in note
    assert "2 pages of 5" in note and "2023-11-14T22:20:0" in note


# --- partial answers and errors --------------------------------------------------------------


def test_shard_failures_and_timeouts_keep_the_data_and_are_noted() -> None:
    with Loopback({PATH: answer_file("elastic/shard_failure.json")}) as server:
        batch = _fetch(_source(server.url))
    assert [r["message"] for r in _rows(batch)] == ["kept"]
    (note,) = batch.degraded
    assert note.startswith("elasticsearch: 1 of 5 shards failed")
    assert "circuit_breaking_exception: [parent] Data too large" in note
    with Loopback({PATH: answer_file("elastic/timed_out.json")}) as server:
        batch = _fetch(_source(server.url))
    assert [r["message"] for r in _rows(batch)] == ["partial"]
    assert batch.degraded == (
        "elasticsearch: the search timed out on the server; its hits may be incomplete",
    )


def test_error_envelopes_are_backend_errors_naming_backend_and_path() -> None:
    not_found = answer_file("elastic/error_index_not_found.json", 404)
    with Loopback({PATH: not_found}) as server, pytest.raises(BackendError) as err:
        _fetch(_source(server.url))
    expected = f"elasticsearch: {PATH} answered 404: index_not_found_exception: no such index"
    assert str(err.value) == expected + " [logs-missing]"
    parse_error = answer_file("elastic/error_query_parse.json", 400)
    answered_400 = r"^elasticsearch: /logs-\*/_search answered 400"
    with Loopback({PATH: parse_error}) as server, pytest.raises(BackendError, match=answered_400):
        _fetch(_source(server.url, query="service.name:("))
    body = json.loads((FIXTURES / "elastic/error_index_not_found.json").read_text())
    envelope = "index_not_found_exception: no such index"  # behind a proxy that says 200
    with Loopback({PATH: Reply(body, 200)}) as server, pytest.raises(BackendError, match=envelope):
        _fetch(_source(server.url))


def test_not_json_and_wrong_shapes_are_backend_errors() -> None:
    html = Reply(
        (FIXTURES / "elastic/bad_gateway.html").read_bytes(), 200, {"Content-Type": "text/html"}
    )
    with Loopback({PATH: html}) as server, pytest.raises(BackendError, match="not JSON"):
        _fetch(_source(server.url))
    with (
        Loopback({PATH: Reply([1, 2])}) as server,
        pytest.raises(BackendError, match="not an object"),
    ):
        _fetch(_source(server.url))
    unsorted = Reply({"hits": {"hits": [{"_source": {}}]}})
    no_sort = "hit 0 carries no numeric sort value"
    with Loopback({PATH: unsorted}) as server, pytest.raises(BackendError, match=no_sort):
        _fetch(_source(server.url))
    with (
        Loopback({PATH: Reply({"took": 1})}) as server,
        pytest.raises(BackendError, match="no hits.hits"),
    ):
        _fetch(_source(server.url))


def test_documents_without_a_usable_time_are_skipped_and_counted() -> None:
    hits = [
        {"_index": "i", "_id": "1", "_source": {"@timestamp": "soon", "message": "x"}, "sort": [1]},
        {"_index": "i", "_id": "2", "_source": {"@timestamp": f"{T0 * 1000 + 5}"}, "sort": [2]},
    ]
    with Loopback({PATH: Reply({"hits": {"hits": hits}})}) as server:
        batch = _fetch(_source(server.url))
    assert batch.rows == 1
    assert batch.degraded == (
        "elasticsearch: 1 documents skipped (no usable time or _source) (first: i/1)",
    )


def test_a_hung_server_costs_the_deadline_not_more() -> None:
    with Loopback({PATH: Reply({"hits": {"hits": []}}, delay_s=5)}) as server:
        started = time.monotonic()
        with pytest.raises(BackendError, match="timed out"):
            _source(server.url).fetch(WINDOW, time.monotonic() + 0.5)
    assert time.monotonic() - started < 2


def test_query_string_and_custom_fields_and_the_seam() -> None:
    with Loopback({"/app-logs,audit/_search": answer_file("elastic/search_dotted.json")}) as server:
        source = _source(
            server.url, index="app-logs,audit", query="log.level:warn", service_field="service.name"
        )
        store = TelemetryStore()
        fetcher = Fetcher(store, [source])
        fetcher.cover([WINDOW])
        request = json.loads(server.requests[0].body)
    assert request["query"]["bool"]["filter"][1] == {"query_string": {"query": "log.level:warn"}}
    assert [r.message for r in store.logs(WINDOW)][:2] == ["cache miss storm", "recovered"]
    assert "password" not in source.identity() and "app-logs,audit" in source.identity()


def test_config_refuses_unknown_keys_and_bad_indices() -> None:
    with pytest.raises(ValidationError):
        Config(url="http://es:9200", indexx="logs-*")  # type: ignore[call-arg]
    for index in ("", "logs/../_all", "a b"):
        with pytest.raises(ValidationError, match="index"):
            Config(url="http://es:9200", index=index)
    with pytest.raises(ValidationError):
        Config(url="http://es:9200", size=20_000)
