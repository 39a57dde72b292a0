"""OTLP/JSON: what warroom writes reads back the same; what real exporters write reads at all."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warroom.errors import InputError
from warroom.intake.otlp import (
    KIND_CLIENT,
    KIND_INTERNAL,
    KIND_SERVER,
    hex_id,
    logs_to_otlp,
    nanos_text,
    otlp_logs,
    otlp_spans,
    read_logs,
    read_spans,
    spans_to_otlp,
    write_document,
)
from warroom.model import LogRecord, Span

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
T0 = 1_750_000_000.123456


def _span(sid: str, parent: str, service: str, op: str, offset: float, **kw: Any) -> Span:
    pod = kw.pop("pod", f"{service}-0")
    return Span(TRACE, sid, parent, service, op, T0 + offset, T0 + offset + 0.3, pod=pod, **kw)


def _spans() -> list[Span]:
    return [
        _span("00f067aa0ba902b7", "", "frontend", "GET /", 0.0),
        # the frontend's call out to checkout: a client span with a peer
        _span("00f067aa0ba902b8", "00f067aa0ba902b7", "frontend", "call", 0.01, peer="checkout"),
        _span("00f067aa0ba902b9", "00f067aa0ba902b8", "checkout", "Place", 0.02, error=True),
        _span("00f067aa0ba902ba", "00f067aa0ba902b9", "checkout", "db", 0.03, pod="co-7f-abcde"),
        # its parent was never exported (a sampled-out or dropped span)
        _span("00f067aa0ba902bb", "1111111111111111", "payment", "Charge", 1.0),
    ]


def _by_id(spans: list[Span]) -> dict[str, Span]:
    return {s.span_id: s for s in spans}


def _only_spans(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        span
        for resource in doc["resourceSpans"]
        for scope in resource["scopeSpans"]
        for span in scope["spans"]
    ]


def _request(spans: list[dict[str, Any]], **resource: str) -> dict[str, Any]:
    attributes = [{"key": k, "value": {"stringValue": v}} for k, v in resource.items()]
    block = {"resource": {"attributes": attributes}, "scopeSpans": [{"spans": spans}]}
    return {"resourceSpans": [block]}


def _span_json(**fields: Any) -> dict[str, Any]:
    span = {
        "traceId": TRACE,
        "spanId": "00f067aa0ba902b7",
        "name": "op",
        "startTimeUnixNano": "1750000000000000000",
        "endTimeUnixNano": "1750000001000000000",
    }
    span.update(fields)
    return span


# --- round trips -----------------------------------------------------------------------------


def test_spans_round_trip_exactly_with_errors_peers_and_missing_parents() -> None:
    spans = _spans()
    back = otlp_spans(json.loads(json.dumps(spans_to_otlp(spans))))
    assert back == spans


def test_spans_follow_the_json_mapping() -> None:
    doc = spans_to_otlp(_spans())
    resources = {
        tuple((a["key"], a["value"]["stringValue"]) for a in r["resource"]["attributes"])
        for r in doc["resourceSpans"]
    }
    assert (("service.name", "checkout"), ("k8s.pod.name", "co-7f-abcde")) in resources
    first = _only_spans(doc)[1]
    assert first["traceId"] == TRACE and first["parentSpanId"] == "00f067aa0ba902b7"
    assert first["startTimeUnixNano"] == "1750000000133455992"  # fixed64 as a decimal string
    assert first["status"] == {}  # unset
    assert _only_spans(doc)[2]["status"] == {"code": 2}
    assert first["attributes"] == [{"key": "peer.service", "value": {"stringValue": "checkout"}}]


def test_span_kinds_come_from_the_call_structure() -> None:
    kinds = {s["spanId"]: s["kind"] for s in _only_spans(spans_to_otlp(_spans()))}
    assert kinds["00f067aa0ba902b7"] == KIND_SERVER  # a root
    assert kinds["00f067aa0ba902b8"] == KIND_CLIENT  # calls into checkout
    assert kinds["00f067aa0ba902b9"] == KIND_SERVER  # entered from the frontend
    assert kinds["00f067aa0ba902ba"] == KIND_INTERNAL  # inside checkout
    assert kinds["00f067aa0ba902bb"] == KIND_SERVER  # its parent is unknown


def test_short_hex_ids_are_padded_and_others_hashed() -> None:
    assert hex_id("a3ce929d0e0e4736", 16) == "0000000000000000a3ce929d0e0e4736"
    assert hex_id("2A", 8) == "000000000000002a"
    assert hex_id("0", 8) == hex_id("0", 8) != "0000000000000000"
    assert hex_id("span-7", 8) == hex_id("span-7", 8) != hex_id("span-8", 8)
    assert len(hex_id("3fa85f64-5717-4562-b3fc-2c963f66afa6", 16)) == 32


def test_ids_that_are_not_hex_are_hashed_the_same_everywhere() -> None:
    spans = [
        Span("trace-1", "a", "", "svc", "op", T0, T0 + 1),
        Span("trace-1", "b", "a", "svc", "op", T0, T0 + 1),
    ]
    log = LogRecord(T0, "svc", "hello", trace_id="trace-1", span_id="b")
    back = _by_id(otlp_spans(spans_to_otlp(spans)))
    record = otlp_logs(logs_to_otlp([log]))[0]
    child = back[hex_id("b", 8)]
    assert child.parent_id == hex_id("a", 8) and len(child.trace_id) == 32
    assert (record.trace_id, record.span_id) == (child.trace_id, child.span_id)


def test_logs_round_trip_exactly() -> None:
    logs = [
        LogRecord(T0, "checkout", "order placed", "INFO", "checkout-0", TRACE, "00f067aa0ba902b9"),
        LogRecord(T0 + 1e-6, "checkout", 'bad "card"\n\tat Pay.java:12', "ERROR", "checkout-0"),
        LogRecord(T0 + 2, "cart", "no level", "", "cart-0"),
        LogRecord(T0 + 3, "cart", "custom level", "notice", "cart-0"),
    ]
    doc = json.loads(json.dumps(logs_to_otlp(logs)))
    assert otlp_logs(doc) == logs
    records = doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    assert [r.get("severityNumber") for r in records] == [9, 17]
    assert records[0]["body"] == {"stringValue": "order placed"}


@given(st.floats(min_value=1e9, max_value=4e9, allow_nan=False))
def test_nanosecond_timestamps_give_the_same_float_back(seconds: float) -> None:
    span = Span(TRACE, "00f067aa0ba902b7", "", "s", "op", seconds, seconds)
    assert otlp_spans(spans_to_otlp([span]))[0].start == seconds
    # Within a few hundred ns: a double near 4e9 s is only exact to ~477 ns, and the product
    # seconds * 1e9 (~4e18) is itself rounded to a multiple of 512 ns.
    assert int(nanos_text(seconds)) == pytest.approx(seconds * 1e9, abs=1024)


# --- what real exporters write ---------------------------------------------------------------


def test_reads_base64_ids_integer_times_and_status_names() -> None:
    raw_trace, raw_span = bytes.fromhex(TRACE), bytes.fromhex("00f067aa0ba902b7")
    doc = _request(
        [
            _span_json(
                traceId=base64.b64encode(raw_trace).decode(),
                spanId=base64.b64encode(raw_span).decode(),
                parentSpanId="AAAAAAAAAAA=",  # all zeros: no parent
                startTimeUnixNano=1750000000000000000,
                status={"code": "STATUS_CODE_ERROR"},
            )
        ],
        **{"service.name": "cart"},
    )
    span = otlp_spans(doc)[0]
    assert (span.trace_id, span.span_id, span.parent_id) == (TRACE, "00f067aa0ba902b7", "")
    assert span.start == 1_750_000_000.0 and span.error
    assert span.pod == "cart"  # no k8s.pod.name: the service stands in


def test_reads_the_legacy_field_names_and_a_missing_service_name() -> None:
    doc = {"resourceSpans": [{"instrumentationLibrarySpans": [{"spans": [_span_json()]}]}]}
    span = otlp_spans(doc)[0]
    assert span.service == "unknown_service" and span.operation == "op" and not span.error


def test_reads_json_lines_and_pretty_printed_documents(tmp_path: Path) -> None:
    lines = tmp_path / "traces.jsonl"
    lines.write_text(
        json.dumps(_request([_span_json(spanId="0000000000000001")], **{"service.name": "a"}))
        + "\n"
        + json.dumps(_request([_span_json(spanId="0000000000000002")], **{"service.name": "b"}))
        + "\n"
    )
    assert [s.service for s in read_spans(lines)] == ["a", "b"]
    pretty = tmp_path / "traces.json"
    pretty.write_text(json.dumps(spans_to_otlp(_spans()), indent=2))
    assert read_spans(pretty) == _spans()
    empty = tmp_path / "empty.json"
    empty.write_text("\n")
    assert read_spans(empty) == []


def test_log_reader_takes_observed_time_severity_numbers_and_structured_bodies() -> None:
    record = {
        "timeUnixNano": "0",
        "observedTimeUnixNano": "1750000000500000000",
        "severityNumber": 18,
        "body": {"kvlistValue": {"values": [{"key": "msg", "value": {"stringValue": "boom"}}]}},
    }
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]}
    log = otlp_logs(doc)[0]
    assert log.time == 1_750_000_000.5 and log.level == "ERROR"
    assert json.loads(log.message) == {"msg": "boom"}


def test_a_log_record_s_exception_attributes_join_its_message() -> None:
    def record(**attributes: str) -> dict[str, Any]:
        return {
            "timeUnixNano": "1750000000000000000",
            "body": {"stringValue": "unhandled error in GET /cart/{user}"},
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attributes.items()],
        }

    trace = 'Traceback (most recent call last):\n  File "cart.py", line 9\nTimeoutError: slow\n'
    named = {"exception.type": "TimeoutError", "exception.message": "Timeout reading from x"}
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": [
        record(**named, **{"exception.stacktrace": trace}), record(**named), record(code="x"),
    ]}]}]}  # fmt: skip
    with_trace, with_type, plain = (log.message for log in otlp_logs(doc))
    assert with_trace == "unhandled error in GET /cart/{user}\n" + trace.rstrip()
    assert with_type == "unhandled error in GET /cart/{user}: TimeoutError: Timeout reading from x"
    assert plain == "unhandled error in GET /cart/{user}"


def test_write_document_writes_one_line(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    size = write_document(spans_to_otlp(_spans()), path)
    assert size == path.stat().st_size and path.read_text().count("\n") == 1
    assert read_spans(path) == _spans()


# --- malformed input names where and what ----------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("startTimeUnixNano", "soon", "spans[0].startTimeUnixNano: expected nanoseconds"),
        ("startTimeUnixNano", None, "spans[0].startTimeUnixNano: missing"),
        ("spanId", "abc", "spans[0].spanId: expected a 8-byte id"),
        ("traceId", 12, "spans[0].traceId: expected a string, got the number 12"),
        ("status", {"code": 7}, "spans[0].status.code: unknown status code 7"),
        ("name", ["x"], "spans[0].name: expected a string, got a list"),
    ],
)
def test_a_bad_span_field_is_named_with_its_path(field: str, value: Any, message: str) -> None:
    span = _span_json(**{field: value})
    if value is None:
        del span[field]
    with pytest.raises(InputError, match="traces.json:3: resourceSpans") as err:
        otlp_spans(_request([span]), "traces.json:3")
    assert message in str(err.value)


def test_a_bad_json_line_is_named_by_its_number(tmp_path: Path) -> None:
    path = tmp_path / "logs.jsonl"
    path.write_text(json.dumps(logs_to_otlp([LogRecord(T0, "a", "m")])) + '\n{"resourceLogs": [\n')
    with pytest.raises(InputError, match=r"logs.jsonl:2: not JSON: .* \(line 3 column 1\)"):
        read_logs(path)


def test_the_wrong_signal_or_shape_is_refused() -> None:
    with pytest.raises(InputError, match="this is OTLP logs, not traces"):
        otlp_spans(logs_to_otlp([LogRecord(T0, "a", "m")]))
    with pytest.raises(InputError, match="expected a JSON object"):
        otlp_spans([1, 2])
    with pytest.raises(InputError, match=r"resourceSpans: expected a list, got an object"):
        otlp_spans({"resourceSpans": {}})


def test_a_log_without_any_time_is_refused() -> None:
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "x"}}]}]}]}
    with pytest.raises(InputError, match=r"logRecords\[0\]: neither timeUnixNano"):
        otlp_logs(doc)


# --- hostile input: bounded, and an InputError rather than a traceback or a hang --------------


def _log_doc(body: Any) -> dict[str, Any]:
    record = {"timeUnixNano": "1750000000000000000", "body": body}
    return {"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]}


def _nested_kvlist(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"stringValue": 'a "quoted" \\ text ' * 20}
    for _ in range(levels):
        value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    return value


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("startTimeUnixNano", "9" * 5000, "startTimeUnixNano: expected nanoseconds"),
        (
            "startTimeUnixNano",
            "9" * 24,
            "startTimeUnixNano: 1000000000000000.0 is outside 1970..3000",
        ),
        ("spanId", "1" * 5000, "spanId: expected a 8-byte id"),
        ("traceId", "f" * 5000, "traceId: expected a 16-byte id"),
    ],
)
def test_huge_ids_and_times_are_named_not_converted(field: str, value: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        otlp_spans(_request([_span_json(**{field: value})]))


def test_a_5000_digit_severity_number_is_an_input_error() -> None:
    doc = _log_doc({"stringValue": "x"})
    doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["severityNumber"] = "9" * 5000
    with pytest.raises(InputError, match="severityNumber: expected 0..24"):
        otlp_logs(doc)


def test_a_file_nested_past_the_recursion_limit_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"resourceSpans": ' + "[" * 50_000 + "]" * 50_000 + "}")
    with pytest.raises(InputError, match="deep.json:1: JSON nested too deeply"):
        read_spans(path)


def test_nested_kvlist_bodies_are_encoded_once_and_bounded() -> None:
    started = time.perf_counter()
    message = otlp_logs(_log_doc(_nested_kvlist(31)))[0].message
    assert time.perf_counter() - started < 1.0
    assert len(message) < 2_000  # it used to double at every level: 2**31 times the text
    decoded = json.loads(message)
    for _ in range(30):
        decoded = decoded["k"]
    assert decoded["k"].startswith('a "quoted"')
    with pytest.raises(InputError, match="nested deeper than 32 levels"):
        otlp_logs(_log_doc(_nested_kvlist(40)))


def test_array_values_of_the_wrong_type_are_named() -> None:
    with pytest.raises(InputError, match=r"body.arrayValue.values: expected a list"):
        otlp_logs(_log_doc({"arrayValue": {"values": 5}}))
    with pytest.raises(InputError, match=r"body.stringValue: expected a string"):
        otlp_logs(_log_doc({"stringValue": {"a": 1}}))


def test_backwards_and_repeated_spans_are_dropped_and_counted(tmp_path: Path) -> None:
    good = _span_json()
    backwards = _span_json(spanId="00f067aa0ba902b8", endTimeUnixNano="1749999999000000000")
    other = _span_json(name="other")  # good's ids with other content
    path = tmp_path / "traces.json"
    path.write_text(
        json.dumps(_request([good, backwards, dict(good), other], **{"service.name": "a"}))
    )
    notes: list[str] = []
    spans = read_spans(path, notes)
    assert [s.operation for s in spans] == ["op"]
    assert len(notes) == 1 and "1 span(s) ending before they start" in notes[0]
    assert "1 repeated span(s)" in notes[0] and "1 span(s) repeating an earlier" in notes[0]
    with pytest.raises(InputError, match="traces.json: 1 span"):
        read_spans(path)  # no notes to count them in: an error, not a silent drop
