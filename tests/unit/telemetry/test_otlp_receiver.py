"""The OTLP/HTTP receiver through FastAPI's TestClient, and reading back what it stored."""

from __future__ import annotations

import base64
import gzip
import json
import time
import warnings
import zlib
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("opentelemetry.proto")

import typer  # noqa: E402
from google.rpc import status_pb2  # noqa: E402
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2  # noqa: E402
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

with warnings.catch_warnings():  # starlette's note about httpx2 is no concern of these tests
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from warroom.intake import prom_text  # noqa: E402
from warroom.intake.case_dir import metric_columns  # noqa: E402
from warroom.model import Span, TimeRange  # noqa: E402
from warroom.telemetry import otlp_receiver  # noqa: E402
from warroom.telemetry.otlp_receiver import create_app, rpc_status  # noqa: E402
from warroom.telemetry.otlp_segments import Config, ReceivedSource, Segments, sources  # noqa: E402
from warroom.telemetry.sources import Fetcher  # noqa: E402
from warroom.telemetry.store import TelemetryStore  # noqa: E402

T0 = 1_699_999_800  # seconds; on the fetch grid (a multiple of 600 s)
TRACE = "5b8efff798038103d269b633813fc60c"
ROOT, CHILD = "eee19b7ec3c1b174", "eee19b7ec3c1b173"
JSON_HEADERS = {"content-type": "application/json"}
PROTO_HEADERS = {"content-type": "application/x-protobuf"}
WINDOW = TimeRange(T0, T0 + 600)


def _resource(service: str) -> dict[str, Any]:
    return {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}


def _span(span_id: str, parent: str = "", start: int = 0, end: int = 1, **extra: Any) -> dict:
    return {
        "traceId": TRACE,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": "GET /cart",
        "startTimeUnixNano": str((T0 + start) * 10**9),
        "endTimeUnixNano": str((T0 + end) * 10**9),
        **extra,
    }


def _traces(service: str, *spans: dict) -> dict[str, Any]:
    return {
        "resourceSpans": [{"resource": _resource(service), "scopeSpans": [{"spans": list(spans)}]}]
    }


def _logs(service: str, *records: dict) -> dict[str, Any]:
    return {
        "resourceLogs": [
            {"resource": _resource(service), "scopeLogs": [{"logRecords": list(records)}]}
        ]
    }


def _metrics(service: str, *metrics: dict, resource: dict | None = None) -> dict[str, Any]:
    return {
        "resourceMetrics": [
            {
                "resource": resource or _resource(service),
                "scopeMetrics": [{"metrics": list(metrics)}],
            }
        ]
    }


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "received"


@pytest.fixture
def client(folder: Path) -> TestClient:
    return TestClient(create_app(folder, max_request_bytes=64 * 1024))


def _post(client: TestClient, path: str, doc: Any, **headers: str) -> Any:
    return client.post(path, content=json.dumps(doc), headers={**JSON_HEADERS, **headers})


def _read(folder: Path, table: str, window: TimeRange = WINDOW) -> TelemetryStore:
    """What an investigation in another process would see: the seam's Fetcher into a store."""
    store = TelemetryStore()
    fetcher = Fetcher(store, sources(Config(path=folder)))
    fetcher.cover([window], [table])
    assert fetcher.degraded() == ()
    return store


def _segments(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


# --- traces ----------------------------------------------------------------------------------


def test_json_traces_are_stored_and_read_back_through_the_seam(client, folder):
    doc = _traces(
        "frontend",
        _span(ROOT, end=3, kind=2),
        _span(
            CHILD,
            ROOT,
            start=1,
            end=2,
            kind=3,
            status={"code": 2},
            attributes=[{"key": "peer.service", "value": {"stringValue": "checkout"}}],
        ),
    )
    answer = _post(client, "/v1/traces", doc)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {}  # everything accepted: no partialSuccess
    spans = _read(folder, "spans").spans(WINDOW)
    assert spans == [
        Span(TRACE, ROOT, "", "frontend", "GET /cart", T0, T0 + 3, False, "frontend", ""),
        Span(
            TRACE,
            CHILD,
            ROOT,
            "frontend",
            "GET /cart",
            T0 + 1,
            T0 + 2,
            True,
            "frontend",
            "checkout",
        ),
    ]


def test_base64_ids_read_as_the_same_hex(client, folder):
    b64 = {"traceId": base64.b64encode(bytes.fromhex(TRACE)).decode()}
    span = {**_span(ROOT), **b64, "spanId": base64.b64encode(bytes.fromhex(ROOT)).decode()}
    assert _post(client, "/v1/traces", _traces("api", span)).status_code == 200
    (read,) = _read(folder, "spans").spans(WINDOW)
    assert (read.trace_id, read.span_id) == (TRACE, ROOT)


def _proto_traces() -> trace_service_pb2.ExportTraceServiceRequest:
    request = trace_service_pb2.ExportTraceServiceRequest()
    block = request.resource_spans.add()
    attribute = block.resource.attributes.add()
    attribute.key, attribute.value.string_value = "service.name", "checkout"
    span = block.scope_spans.add().spans.add()
    span.trace_id, span.span_id = bytes.fromhex(TRACE), bytes.fromhex(CHILD)
    span.parent_span_id = bytes.fromhex(ROOT)
    span.name, span.kind = "POST /pay", 2
    span.start_time_unix_nano = T0 * 10**9 + 123_456_789
    span.end_time_unix_nano = (T0 + 1) * 10**9
    span.status.code = 2
    return request


def test_protobuf_traces_answer_in_protobuf(client, folder):
    answer = client.post(
        "/v1/traces", content=_proto_traces().SerializeToString(), headers=PROTO_HEADERS
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/x-protobuf"
    response = trace_service_pb2.ExportTraceServiceResponse.FromString(answer.content)
    assert not response.HasField("partial_success")
    (span,) = _read(folder, "spans").spans(WINDOW)
    assert (span.trace_id, span.span_id, span.parent_id) == (TRACE, CHILD, ROOT)
    assert (span.service, span.operation, span.error) == ("checkout", "POST /pay", True)
    assert span.start == (T0 * 10**9 + 123_456_789) / 10**9  # nanoseconds kept exactly


def test_a_malformed_span_stores_nothing_and_names_the_field(client, folder):
    doc = _traces("api", _span(ROOT), {**_span(CHILD), "traceId": "not-an-id"})
    answer = _post(client, "/v1/traces", doc)
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == 3  # google.rpc.Code INVALID_ARGUMENT
    assert "resourceSpans[0].scopeSpans[0].spans[1].traceId" in body["message"]
    assert _segments(folder) == []  # the good span before it was not stored either


def test_a_bad_protobuf_payload_gets_a_protobuf_status(client, folder):
    answer = client.post("/v1/traces", content=b"\xff\xff\xff\xff", headers=PROTO_HEADERS)
    assert answer.status_code == 400
    status = status_pb2.Status.FromString(answer.content)
    assert status.code == 3 and "ExportTraceServiceRequest" in status.message
    assert _segments(folder) == []


def test_rpc_status_is_the_google_rpc_wire_format():
    for message in ("", "bad", "é" * 300):
        expected = status_pb2.Status(code=3, message=message).SerializeToString()
        assert rpc_status(3, message) == expected


def test_not_json_and_the_wrong_signal_are_400(client, folder):
    answer = client.post("/v1/traces", content=b"{not json", headers=JSON_HEADERS)
    assert answer.status_code == 400 and "not JSON" in answer.json()["message"]
    answer = _post(client, "/v1/traces", _logs("api", {"timeUnixNano": str(T0 * 10**9)}))
    assert answer.status_code == 400 and "OTLP logs, not traces" in answer.json()["message"]
    assert _segments(folder) == []


def test_partial_success_counts_rejected_spans_and_keeps_the_rest(client, folder):
    doc = _traces("api", _span(ROOT), _span(CHILD, start=5, end=4))  # ends before it starts
    answer = _post(client, "/v1/traces", doc)
    assert answer.status_code == 200
    partial = answer.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"  # int64 as the JSON mapping writes it
    assert "ending before they start" in partial["errorMessage"]
    assert [s.span_id for s in _read(folder, "spans").spans(WINDOW)] == [ROOT]


def test_partial_success_in_protobuf(client):
    request = _proto_traces()
    bad = request.resource_spans[0].scope_spans[0].spans.add()
    bad.CopyFrom(request.resource_spans[0].scope_spans[0].spans[0])
    bad.span_id = bytes.fromhex(ROOT)
    bad.end_time_unix_nano = bad.start_time_unix_nano - 10**6
    answer = client.post("/v1/traces", content=request.SerializeToString(), headers=PROTO_HEADERS)
    response = trace_service_pb2.ExportTraceServiceResponse.FromString(answer.content)
    assert response.partial_success.rejected_spans == 1


def test_a_retried_request_is_stored_once(client, folder):
    doc = _traces("api", _span(ROOT))
    for _ in range(3):
        assert _post(client, "/v1/traces", doc).status_code == 200
    assert len(_segments(folder)) == 1
    assert len(_read(folder, "spans").spans(WINDOW)) == 1


# --- encodings and bounds --------------------------------------------------------------------


def test_gzip_and_deflate_logs(client, folder):
    record = {
        "timeUnixNano": str(T0 * 10**9 + 5),
        "severityNumber": 17,
        "body": {"stringValue": "payment declined"},
        "traceId": TRACE,
        "spanId": ROOT,
    }
    body = json.dumps(_logs("checkout", record)).encode()
    headers = {**JSON_HEADERS, "content-encoding": "gzip"}
    assert client.post("/v1/logs", content=gzip.compress(body), headers=headers).status_code == 200
    other = json.dumps(_logs("cart", {**record, "body": {"stringValue": "x"}})).encode()
    headers["content-encoding"] = "deflate"
    assert client.post("/v1/logs", content=zlib.compress(other), headers=headers).status_code == 200
    logs = _read(folder, "logs").logs(WINDOW)
    assert sorted((r.service, r.level, r.message, r.trace_id, r.span_id) for r in logs) == [
        ("cart", "ERROR", "x", TRACE, ROOT),
        ("checkout", "ERROR", "payment declined", TRACE, ROOT),
    ]


def test_protobuf_logs(client, folder):
    request = logs_service_pb2.ExportLogsServiceRequest()
    block = request.resource_logs.add()
    attribute = block.resource.attributes.add()
    attribute.key, attribute.value.string_value = "service.name", "cart"
    record = block.scope_logs.add().log_records.add()
    record.time_unix_nano, record.severity_number = T0 * 10**9, 13
    record.body.string_value = "slow redis"
    record.trace_id = bytes.fromhex(TRACE)
    answer = client.post("/v1/logs", content=request.SerializeToString(), headers=PROTO_HEADERS)
    assert answer.status_code == 200
    logs_service_pb2.ExportLogsServiceResponse.FromString(answer.content)
    (log,) = _read(folder, "logs").logs(WINDOW)
    assert (log.service, log.level, log.message, log.trace_id) == (
        "cart",
        "WARN",
        "slow redis",
        TRACE,
    )


def test_too_large_is_413_before_and_after_gzip(client, folder):
    big = json.dumps(_traces("api", _span(ROOT))).encode() + b" " * (64 * 1024)
    answer = client.post("/v1/traces", content=big, headers=JSON_HEADERS)
    assert answer.status_code == 413
    bomb = gzip.compress(b" " * (8 << 20))  # 8 MiB of spaces in ~8 KiB: under the body limit
    assert len(bomb) < 64 * 1024
    headers = {**JSON_HEADERS, "content-encoding": "gzip"}
    answer = client.post("/v1/traces", content=bomb, headers=headers)
    assert answer.status_code == 413 and "inflates" in answer.json()["message"]
    assert _segments(folder) == []


def test_bad_gzip_and_unknown_types(client):
    headers = {**JSON_HEADERS, "content-encoding": "gzip"}
    assert client.post("/v1/logs", content=b"not gzip", headers=headers).status_code == 400
    truncated = gzip.compress(b'{"resourceLogs": []}')[:-6]
    assert client.post("/v1/logs", content=truncated, headers=headers).status_code == 400
    headers["content-encoding"] = "br"
    assert client.post("/v1/logs", content=b"{}", headers=headers).status_code == 415
    answer = client.post("/v1/logs", content=b"{}", headers={"content-type": "text/plain"})
    assert answer.status_code == 415 and "application/x-protobuf" in answer.json()["message"]


def test_a_failed_write_is_503_so_the_exporter_retries(client, folder, monkeypatch):
    def refuse(*args: Any) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Segments, "write", refuse)
    answer = _post(client, "/v1/traces", _traces("api", _span(ROOT)))
    assert answer.status_code == 503
    assert answer.json() == {
        "code": 14,
        "message": "could not store the data (No space left on device)",
    }


# --- metrics ---------------------------------------------------------------------------------


def _point(value: dict, **extra: Any) -> dict:
    return {"timeUnixNano": str(T0 * 10**9), **value, **extra}


def test_metrics_are_named_as_a_case_folder_names_them(client, folder):
    route = [{"key": "http.route", "value": {"stringValue": "/cart"}}]
    histogram = {
        "name": "http.server.request.duration",
        "unit": "s",
        "histogram": {
            "aggregationTemporality": 2,
            "dataPoints": [
                _point(
                    {"count": "6", "sum": 1.25, "bucketCounts": ["1", "4", "1"]},
                    explicitBounds=[0.1, 1.0],
                    attributes=route,
                )
            ],
        },
    }
    counter = {
        "name": "http.server.requests",
        "unit": "{request}",
        "sum": {
            "isMonotonic": True,
            "aggregationTemporality": 2,
            "dataPoints": [_point({"asInt": "42"})],
        },
    }
    gauge = {
        "name": "process.cpu.utilization",
        "unit": "1",
        "gauge": {"dataPoints": [_point({"asDouble": 0.5})]},
    }
    assert (
        _post(client, "/v1/metrics", _metrics("cart", histogram, counter, gauge)).status_code == 200
    )
    got = {(s.name, float(s.values[0])) for s in _read(folder, "metrics").metric_series(WINDOW)}
    ms = T0 * 1000
    prom = f"""
http_server_request_duration_seconds_bucket{{service="cart",http_route="/cart",le="0.1"}} 1 {ms}
http_server_request_duration_seconds_bucket{{service="cart",http_route="/cart",le="1"}} 5 {ms}
http_server_request_duration_seconds_bucket{{service="cart",http_route="/cart",le="+Inf"}} 6 {ms}
http_server_request_duration_seconds_sum{{service="cart",http_route="/cart"}} 1.25 {ms}
http_server_request_duration_seconds_count{{service="cart",http_route="/cart"}} 6 {ms}
http_server_requests_total{{service="cart"}} 42 {ms}
process_cpu_utilization_ratio{{service="cart"}} 0.5 {ms}
"""
    samples = prom_text.parse_text(prom, source="metrics.prom")
    columns = metric_columns(samples, Path("metrics.prom"))
    assert got == set(zip(columns["name"], columns["value"], strict=True))


def test_metric_points_without_a_value_are_rejected_and_stale_ones_are_missing(client, folder):
    gauge = {
        "name": "queue.depth",
        "gauge": {
            "dataPoints": [
                _point({"asDouble": 3.0}),
                _point({}),  # no value: rejected
                {"asDouble": 1.0},  # no time: rejected
                _point({"asDouble": 9.0}, timeUnixNano=str((T0 + 1) * 10**9), flags=1),
                _point({"asDouble": "NaN"}, timeUnixNano=str((T0 + 2) * 10**9)),
            ]
        },
    }
    pod = {
        "attributes": [
            *_resource("q")["attributes"],
            {"key": "k8s.pod.name", "value": {"stringValue": "q-1"}},
        ]
    }
    answer = _post(client, "/v1/metrics", _metrics("q", gauge, resource=pod))
    assert answer.status_code == 200
    partial = answer.json()["partialSuccess"]
    assert partial["rejectedDataPoints"] == "2" and "dataPoints[1]" in partial["errorMessage"]
    (series,) = _read(folder, "metrics").metric_series(WINDOW)
    assert series.name == 'queue_depth{pod="q-1"}'
    assert series.values[0] == 3.0 and all(v != v for v in series.values[1:])  # NaN = missing


def test_a_malformed_metric_stores_nothing(client, folder):
    bad = {
        "name": "x",
        "gauge": {"dataPoints": [_point({"asDouble": 1.0}), _point({"asInt": "1.5"})]},
    }
    answer = _post(client, "/v1/metrics", _metrics("api", bad))
    assert answer.status_code == 400
    assert "metrics[0].gauge.dataPoints[1].asInt" in answer.json()["message"]
    histogram = {
        "name": "h",
        "histogram": {
            "dataPoints": [_point({"count": "1", "bucketCounts": ["1"]}, explicitBounds=[1.0])]
        },
    }
    answer = _post(client, "/v1/metrics", _metrics("api", histogram))
    assert (
        answer.status_code == 400
        and "1 bucketCounts for 1 explicitBounds" in answer.json()["message"]
    )
    assert _segments(folder) == []


# --- the source ------------------------------------------------------------------------------


def test_the_source_reads_its_window_and_ignores_half_written_files(client, folder):
    early, late = _span(ROOT, start=10, end=11), _span(CHILD, start=700, end=701)
    assert _post(client, "/v1/traces", _traces("api", early, late)).status_code == 200
    (folder / "spans" / ".abc.123.tmp").write_bytes(b"PAR1 half a file")
    source = ReceivedSource(Config(path=folder), "spans")
    batch = source.fetch(WINDOW, time.monotonic() + 10)
    assert batch.columns["span_id"] == [ROOT]
    assert [
        s.span_id
        for s in _read(folder, "spans", TimeRange(T0, T0 + 1200)).spans(TimeRange(T0, T0 + 1200))
    ] == [ROOT, CHILD]


def test_an_empty_folder_is_no_data_and_a_broken_segment_a_backend_error(folder):
    source = ReceivedSource(Config(path=folder), "logs")
    assert source.fetch(WINDOW, time.monotonic() + 10).rows == 0
    (folder / "logs").mkdir(parents=True)
    (folder / "logs" / "x.parquet").write_bytes(b"not parquet")
    store = TelemetryStore()
    fetcher = Fetcher(store, [source])
    fetcher.cover([WINDOW])
    (note,) = fetcher.degraded()
    assert note.startswith("received: ") and "x.parquet" in note
    with pytest.raises(ValueError, match="unknown table"):
        ReceivedSource(Config(path=folder), "events")


# --- the command -----------------------------------------------------------------------------


def _cli() -> typer.Typer:
    from warroom.cli.receive import register

    app = typer.Typer()
    register(app)

    @app.command()
    def other() -> None:  # a second command, so typer keeps `receive` a named sub-command
        pass

    return app


def test_receive_help_and_a_folder_that_cannot_be_used(tmp_path):
    runner = CliRunner()
    result = runner.invoke(_cli(), ["receive", "--help"])
    assert result.exit_code == 0
    for option in ("--dir", "--host", "--port", "--max-request-bytes", "/v1/traces"):
        assert option in result.output
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = runner.invoke(_cli(), ["receive", "--dir", str(blocker / "sub")])
    assert result.exit_code == 2
    assert "cannot store received telemetry" in result.output


def test_serve_import_names_the_extra():
    with pytest.raises(Exception, match=r"pip install 'warroom\[serve\]'"):
        otlp_receiver.serve_import("no_such_module_for_warroom")
