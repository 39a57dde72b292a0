"""Spans: one per agent call, nesting across threads, and the OTLP/JSON encoding."""

from __future__ import annotations

import base64
import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from warroom.agents import (
    AgentCall,
    AgentContext,
    LocalExecutor,
    Tracer,
    call,
    current_span,
    in_current_context,
)
from warroom.errors import BackendError

from .helpers import Double, Flaky, Nested, Number

HEX32, HEX16 = re.compile(r"^[0-9a-f]{32}$"), re.compile(r"^[0-9a-f]{16}$")


def test_one_span_per_call_with_its_attributes() -> None:
    tracer = Tracer()
    call(Double(), {"value": 1}, AgentContext(tracer=tracer))
    (span,) = tracer.finished()
    assert span.name == "double"
    assert span.parent_id == "" and not span.error
    assert span.attribute("warroom.agent.outcome") == "ok"
    assert span.attribute("warroom.agent.attempts") == 1
    assert span.attribute("warroom.agent.cache_hit") is False
    assert HEX16.match(str(span.attribute("warroom.agent.input_hash")))
    assert span.end_ns >= span.start_ns


def test_a_failed_call_is_an_error_span() -> None:
    tracer = Tracer()
    call(Flaky(9, BackendError("down")), {"value": 1}, AgentContext(tracer=tracer))
    (span,) = tracer.finished()
    assert span.error and "backend_error: down" in span.message
    assert span.attribute("warroom.agent.outcome") == "backend_error"
    assert span.attribute("warroom.agent.attempts") == 3


def test_an_agent_called_inside_another_is_its_child() -> None:
    tracer = Tracer()
    call(Nested(), {"value": 1}, AgentContext(tracer=tracer))
    inner, outer = tracer.finished()  # the inner call ends first
    assert (inner.name, outer.name) == ("double", "nested")
    assert inner.parent_id == outer.span_id  # across the worker thread of the timeout
    assert inner.trace_id == outer.trace_id


def test_calls_on_an_executor_nest_under_the_span_open_at_map() -> None:
    tracer = Tracer()
    ctx = AgentContext(tracer=tracer)
    with LocalExecutor(workers=2) as executor, tracer.span("round-1") as round_span:
        executor.map([AgentCall(Nested(), {"value": v}) for v in range(4)], ctx)
    spans = tracer.finished()
    by_id = {s.span_id: s for s in spans}
    nested = [s for s in spans if s.name == "nested"]
    assert len(nested) == 4 and len(spans) == 9
    assert {s.parent_id for s in nested} == {round_span.span_id}
    assert all(by_id[s.parent_id].name == "nested" for s in spans if s.name == "double")
    assert {s.trace_id for s in spans} == {round_span.trace_id}


def test_a_plain_thread_pool_keeps_the_parent_when_the_context_is_copied() -> None:
    tracer = Tracer()

    def work() -> str:
        with tracer.span("task"):
            span = current_span()
            return span.parent_id if span else ""

    with tracer.span("parent") as parent, ThreadPoolExecutor(2) as pool:
        copied = pool.submit(in_current_context(work)).result()
        bare = pool.submit(work).result()  # without the copy the thread has no parent
    assert copied == parent.span_id
    assert bare == ""


def test_an_exception_in_a_span_marks_it_failed() -> None:
    tracer = Tracer()
    with pytest.raises(RuntimeError), tracer.span("boom"):
        raise RuntimeError("bad")
    (span,) = tracer.finished()
    assert span.error and span.message == "RuntimeError: bad"


def test_otlp_json_shape() -> None:
    tracer = Tracer(service_name="warroom-test")
    ctx = AgentContext(tracer=tracer)
    call(Nested(), {"value": 1}, ctx)
    call(Flaky(9, BackendError("down")), {"value": 1}, ctx)
    request = json.loads(tracer.export_json())
    (resource_spans,) = request["resourceSpans"]
    assert resource_spans["resource"]["attributes"] == [
        {"key": "service.name", "value": {"stringValue": "warroom-test"}}
    ]
    (scope_spans,) = resource_spans["scopeSpans"]
    assert scope_spans["scope"]["name"] == "warroom.agents"
    spans = scope_spans["spans"]
    assert [s["name"] for s in spans] == ["double", "nested", "flaky"]
    for span in spans:
        assert HEX32.match(span["traceId"]) and HEX16.match(span["spanId"])
        assert span["startTimeUnixNano"].isdigit() and span["endTimeUnixNano"].isdigit()
        assert int(span["endTimeUnixNano"]) >= int(span["startTimeUnixNano"])
        assert span["kind"] == 1
    assert spans[0]["parentSpanId"] == spans[1]["spanId"]
    assert "parentSpanId" not in spans[1]
    assert spans[1]["status"] == {"code": 1}
    assert spans[2]["status"]["code"] == 2 and "down" in spans[2]["status"]["message"]
    attributes = {a["key"]: a["value"] for a in spans[2]["attributes"]}
    assert attributes["warroom.agent.attempts"] == {"intValue": "3"}
    assert attributes["warroom.agent.cache_hit"] == {"boolValue": False}
    assert "doubleValue" in attributes["warroom.agent.duration_ms"]


def test_otlp_json_parses_as_the_protobuf_message() -> None:
    service = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")
    json_format = pytest.importorskip("google.protobuf.json_format")
    tracer = Tracer()
    call(Nested(), {"value": 1}, AgentContext(tracer=tracer))
    request = tracer.export()
    # OTLP/JSON writes ids as hex, where the generic protobuf mapping expects base64.
    for span in request["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        for key in ("traceId", "spanId", "parentSpanId"):
            if key in span:
                span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    message = json_format.Parse(json.dumps(request), service.ExportTraceServiceRequest())
    spans = message.resource_spans[0].scope_spans[0].spans
    assert [s.name for s in spans] == ["double", "nested"]
    assert spans[0].parent_span_id == spans[1].span_id
    assert spans[0].trace_id.hex() == tracer.finished()[0].trace_id
    assert spans[0].status.code == 1 and spans[0].start_time_unix_nano > 0


def test_ids_can_be_made_reproducible() -> None:
    counter = iter(range(100))
    tracer = Tracer(new_id=lambda n: f"{next(counter):0{2 * n}x}", clock_ns=lambda: 5)
    call(Double(), Number(value=1), AgentContext(tracer=tracer))
    (span,) = tracer.finished()
    assert (span.trace_id, span.span_id, span.start_ns) == ("0" * 32, "0" * 15 + "1", 5)
