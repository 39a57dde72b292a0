"""Loki connector against response files in Loki's documented query_range format on loopback."""

from __future__ import annotations

import json
import time
from fractions import Fraction
from typing import Any

import pytest
from pydantic import ValidationError

from loopback import FIXTURES, Loopback, Reply, Request, answer_file
from warroom.errors import BackendError
from warroom.model import TimeRange
from warroom.telemetry.loki import PATH, Config, LokiSource, line_level, sources
from warroom.telemetry.sources import Fetcher
from warroom.telemetry.store import TelemetryStore

T0 = 1_700_000_400.0  # a multiple of the fetch grid
WINDOW = TimeRange(T0, T0 + 600)


def _source(url: str, **settings: Any) -> LokiSource:
    source = sources(Config(url=url, **settings))[0]
    assert isinstance(source, LokiSource)
    return source


def _fetch(source: LokiSource, window: TimeRange = WINDOW) -> Any:
    return source.fetch(window, time.monotonic() + 10)


def _rows(batch: Any) -> list[dict[str, Any]]:
    names = list(batch.columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*batch.columns.values(), strict=True)]


def test_categorized_streams_become_log_rows_with_levels_pods_and_trace_ids() -> None:
    with Loopback({PATH: answer_file("loki/streams_categorized.json")}) as server:
        batch = _fetch(_source(server.url))
    rows = sorted(_rows(batch), key=lambda r: r["ts"])
    assert [r["service"] for r in rows] == ["checkout", "payments", "checkout", "payments"]
    assert [r["level"] for r in rows] == ["ERROR", "warn", "info", "ERROR"]
    assert rows[0]["pod"] == "checkout-7d9f-x2k4p"
    assert rows[1]["pod"] == "payments"  # no pod label: named after the service, as OTLP does
    assert rows[0]["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert rows[0]["span_id"] == "eee19b7ec3c1b174"
    assert rows[1]["trace_id"] == "5b8efff798038103d269b633813fc60c"  # from the logfmt line
    assert rows[3]["trace_id"] == "" and rows[3]["message"] == "ERROR db: connection refused"
    assert batch.degraded == ()


def test_nanosecond_times_are_exact_both_ways() -> None:
    window = TimeRange(1_700_000_400.1, 1_700_000_999.5)
    with Loopback({PATH: answer_file("loki/streams_categorized.json")}) as server:
        batch = _fetch(_source(server.url), window)
        query = server.requests[0].query
    # The float's own value to the nearest nanosecond, as an integer: a float product lands on
    # a 256 ns grid at this epoch (and str() of it would be '1.7000004001e+18').
    assert query["start"] == ["1700000400099999905"]
    assert query["start"] == [str(round(Fraction(1_700_000_400.1) * 10**9))]
    assert query["start"] != [str(int(1_700_000_400.1 * 1e9))]
    assert int(query["start"][0]) / 10**9 == window.start  # and it reads back as the same float
    assert query["end"] == ["1700000999500000000"]
    assert 1_700_000_410_123_456_789 / 10**9 in batch.columns["ts"]  # int / int: rounded once
    assert 1_700_000_412_000_000_001 / 10**9 in batch.columns["ts"]


def test_the_request_asks_forward_with_a_limit_the_selector_and_the_tenant() -> None:
    with Loopback({PATH: answer_file("loki/empty.json")}) as server:
        source = _source(server.url, headers={"X-Scope-OrgID": "team-a"}, limit=500)
        batch = _fetch(source)
        request = server.requests[0]
    assert batch.rows == 0 and batch.degraded == ()
    assert request.query["query"] == ['{service_name=~".+"}']
    assert request.query["direction"] == ["forward"]
    assert request.query["limit"] == ["500"]
    assert request.query["start"] == ["1700000400000000000"]
    assert request.query["end"] == ["1700001000000000000"]
    assert request.headers["x-scope-orgid"] == "team-a"
    assert request.headers["x-loki-response-encoding-flags"] == "categorize-labels"


def test_older_loki_merged_labels_give_service_level_and_trace_id() -> None:
    with Loopback({PATH: answer_file("loki/streams_merged.json")}) as server:
        rows = _rows(_fetch(_source(server.url)))
    cart, frontend = sorted(rows, key=lambda r: r["ts"])
    assert (cart["service"], cart["pod"], cart["level"]) == ("cart", "cart-0", "error")
    assert cart["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert frontend["service"] == "default/frontend"  # job, the last label that names one
    assert frontend["level"] == "info"  # detected_level "unknown" gives way to the line's own


def test_service_labels_are_configurable_in_order() -> None:
    with Loopback({PATH: answer_file("loki/streams_merged.json")}) as server:
        rows = _rows(_fetch(_source(server.url, service_labels=("job", "app"))))
    assert sorted(r["service"] for r in rows) == ["default/cart", "default/frontend"]


def _simulated_loki(path: str, limit_order: list[str]) -> Any:
    """Loki's forward paging over one response file: lines with start <= ts < end, oldest
    first, at most `limit`; lines of one nanosecond come in a different order on every call."""
    doc = json.loads((FIXTURES / path).read_text())
    lines = [
        (int(ns), stream["stream"], line)
        for stream in doc["data"]["result"]
        for ns, line in stream["values"]
    ]
    calls = [0]

    def answer(request: Request) -> Reply:
        start, end = int(request.query["start"][0]), int(request.query["end"][0])
        limit = int(request.query["limit"][0])
        limit_order.append(request.query["start"][0])
        calls[0] += 1
        flip = -1 if calls[0] % 2 else 1
        chosen = sorted(
            (x for x in lines if start <= x[0] < end),
            key=lambda x: (x[0], [flip * ord(c) for c in x[2]]),
        )[:limit]
        result = [{"stream": labels, "values": [[str(ns), line]]} for ns, labels, line in chosen]
        data = {"resultType": "streams", "result": result, "stats": {}}
        return Reply({"status": "success", "data": data})

    return answer


def test_full_pages_are_followed_from_the_last_nanosecond_without_losing_or_repeating() -> None:
    starts: list[str] = []
    with Loopback({PATH: _simulated_loki("loki/paging_all.json", starts)}) as server:
        batch = _fetch(_source(server.url, limit=4))
    messages = sorted(batch.columns["message"])
    assert len(messages) == 10 and len(set(messages)) == 10
    assert starts[0] == "1700000400000000000"
    assert starts[1] == "1700000403000000000"  # on from the last page's final nanosecond
    assert len(starts) == 4 and batch.degraded == ()


def test_more_lines_in_one_nanosecond_than_a_page_holds_is_said() -> None:
    starts: list[str] = []
    with Loopback({PATH: _simulated_loki("loki/paging_all.json", starts)}) as server:
        batch = _fetch(_source(server.url, limit=2))
    assert len(set(batch.columns["message"])) == len(batch.columns["message"])
    assert "1700000403000000001" in starts  # stepped past the crowded nanosecond
    assert any("one nanosecond" in note for note in batch.degraded)
    assert "a7" in batch.columns["message"]


def test_the_page_cap_keeps_what_was_read_and_notes_the_truncation() -> None:
    starts: list[str] = []
    with Loopback({PATH: _simulated_loki("loki/paging_all.json", starts)}) as server:
        batch = _fetch(_source(server.url, limit=3, max_pages=2))
    assert len(starts) == 2
    assert sorted(batch.columns["message"])[:2] == ["a1", "a2"]
    (note,) = [n for n in batch.degraded if "truncated" in n]
    assert note.startswith("loki: truncated") and "2023-11-14T22:20:03Z" in note


def test_statistics_that_report_the_limit_reached_lead_to_another_page() -> None:
    doc = json.loads((FIXTURES / "loki/streams_merged.json").read_text())
    doc["data"]["stats"]["summary"]["totalEntriesReturned"] = 5
    with Loopback({PATH: [Reply(doc), answer_file("loki/empty.json")]}) as server:
        batch = _fetch(_source(server.url, limit=5))
        assert len(server.requests) == 2
    assert batch.rows == 2


def test_malformed_entries_and_streams_are_skipped_with_a_note_and_the_rest_kept() -> None:
    with Loopback({PATH: answer_file("loki/malformed.json")}) as server:
        batch = _fetch(_source(server.url))
    assert batch.columns["message"] == ["good line one", "good line three"]
    notes = " | ".join(batch.degraded)
    assert "loki: 4 malformed entries skipped" in notes
    assert "loki: 2 malformed stream(s) skipped" in notes


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (
            Reply((FIXTURES / "loki/parse_error.txt").read_bytes(), 400),
            ["answered 400", "parse error at line 1, col 2"],
        ),
        (Reply((FIXTURES / "loki/bad_gateway.txt").read_bytes(), 502), ["answered 502", "reset"]),
        (Reply(b"<html>maintenance</html>", 200), ["not JSON"]),
        (answer_file("loki/matrix.json"), ["resultType 'matrix'", "not streams"]),
        (Reply({"status": "error", "error": "too many outstanding requests"}), ["outstanding"]),
        (Reply({"status": "success", "data": {"resultType": "streams"}}), ["no data.result"]),
    ],
)
def test_bad_answers_are_backend_errors_naming_loki_and_the_path(
    reply: Reply, words: list[str]
) -> None:
    with Loopback({PATH: reply}) as server, pytest.raises(BackendError) as caught:
        _fetch(_source(server.url))
    message = str(caught.value)
    assert message.startswith("loki:") and PATH in message
    for word in words:
        assert word in message


def test_a_slow_loki_times_out_within_the_endpoint_timeout() -> None:
    with Loopback({PATH: Reply(b"{}", delay_s=3.0)}) as server:
        started = time.monotonic()
        with pytest.raises(BackendError, match="timed out"):
            _fetch(_source(server.url, timeout_s=0.3))
        assert time.monotonic() - started < 2.0


def test_identity_names_url_tenant_and_query_but_no_secret() -> None:
    source = _source(
        "http://loki:3100/",
        headers={"X-Scope-OrgID": "team-a"},
        username="reader",
        password="hunter2-secret",
    )
    identity = source.identity()
    assert "http://loki:3100" in identity and "team-a" in identity and "service_name" in identity
    assert "hunter2" not in identity
    other = _source("http://loki:3100", headers={"X-Scope-OrgID": "team-b"})
    assert other.identity() != identity


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ValidationError):
        Config(url="http://loki:3100", querry="{app=~'.+'}")  # type: ignore[call-arg]


def test_the_fetcher_fills_the_logs_table_through_the_source() -> None:
    store = TelemetryStore()
    with Loopback({PATH: answer_file("loki/streams_categorized.json")}) as server:
        fetcher = Fetcher(store, sources(Config.model_validate({"url": server.url})))
        added = fetcher.cover([TimeRange(T0 + 5, T0 + 60)])
        again = fetcher.cover([TimeRange(T0 + 5, T0 + 60)])
        assert len(server.requests) == 1  # the chunk is fetched once
    assert (added, again) == (4, 0)
    logs = store.logs(WINDOW)
    assert [r.service for r in logs] == ["checkout", "payments", "checkout", "payments"]
    assert logs[0].level == "ERROR" and logs[0].trace_id == "5b8efff798038103d269b633813fc60c"
    assert fetcher.degraded() == ()


def test_line_levels() -> None:
    assert line_level('{"level":"error","msg":"x"}') == "error"
    assert line_level("ts=1 lvl=WARN msg=y") == "WARN"
    assert line_level("2023-11-14 22:20:01 ERROR Pool exhausted") == "ERROR"
    assert line_level("all good, no errors here") == ""
