"""`warroom receive` in its own process on 127.0.0.1, fed by the OpenTelemetry SDK's own OTLP/HTTP
exporters (protobuf, gzip), read back by this process through the source seam while it runs."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http")

from opentelemetry.exporter.otlp.proto.http import Compression  # noqa: E402
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context  # noqa: E402

from warroom.model import TimeRange  # noqa: E402
from warroom.telemetry.otlp_segments import Config, sources  # noqa: E402
from warroom.telemetry.sources import CHUNK_S, Fetcher  # noqa: E402
from warroom.telemetry.store import TelemetryStore  # noqa: E402

START_S = 30.0
SERVE = (
    "import sys, typer\n"
    "from warroom.cli.receive import register\n"
    "app = typer.Typer()\n"
    "register(app)\n"
    "app.command('noop')(lambda: None)\n"
    "app(sys.argv[1:])\n"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"receiver exited: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"receiver not listening on {port} within {START_S} s")


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    folder, port = tmp_path / "received", _free_port()
    args = ["receive", "--dir", str(folder), "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        _wait_listening(port, proc)
        yield f"http://127.0.0.1:{port}", folder, proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def _resource(service: str) -> Resource:
    return Resource.create({"service.name": service})


def _send_traces_and_logs(url: str) -> tuple[str, str, str]:
    """A frontend server span calling payments (client span, failed), payments' server span
    and an error log in it. Returns (trace id, client span id, payments span id) as hex."""
    providers = {}
    for service in ("frontend", "payments"):
        provider = TracerProvider(resource=_resource(service))
        exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", compression=Compression.Gzip)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        providers[service] = provider
    logs = LoggerProvider(resource=_resource("payments"))
    logs.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{url}/v1/logs"))
    )
    frontend = providers["frontend"].get_tracer("test")
    with (
        frontend.start_as_current_span("GET /checkout", kind=SpanKind.SERVER),
        frontend.start_as_current_span(
            "POST /pay", kind=SpanKind.CLIENT, attributes={"peer.service": "payments"}
        ) as client,
    ):
        server = (
            providers["payments"]
            .get_tracer("test")
            .start_span("POST /pay", kind=SpanKind.SERVER, context=set_span_in_context(client))
        )
        logs.get_logger("payments").emit(
            body="card declined", severity_text="ERROR", context=set_span_in_context(server)
        )
        server.set_status(Status(StatusCode.ERROR, "declined"))
        server.end()
        client.set_status(Status(StatusCode.ERROR))
    for provider in providers.values():
        provider.shutdown()
    logs.shutdown()
    ctx = client.get_span_context()
    return (
        f"{ctx.trace_id:032x}",
        f"{ctx.span_id:016x}",
        f"{server.get_span_context().span_id:016x}",
    )


def _send_metrics(url: str) -> None:
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{url}/v1/metrics"), export_interval_millis=3_600_000
    )
    provider = MeterProvider(resource=_resource("payments"), metric_readers=[reader])
    meter = provider.get_meter("test")
    meter.create_counter("payments.declined", unit="{payment}").add(3, {"card": "visa"})
    meter.create_histogram("http.server.request.duration", unit="s").record(0.2)
    provider.shutdown()  # exports once more, and waits for it


def _window() -> TimeRange:
    start = math.floor((time.time() - CHUNK_S) / CHUNK_S) * CHUNK_S
    return TimeRange(start, start + 3 * CHUNK_S)


def test_sdk_exports_are_read_back_by_an_investigation(receiver):
    url, folder, proc = receiver
    trace_id, client_id, server_id = _send_traces_and_logs(url)
    _send_metrics(url)
    window = _window()
    store = TelemetryStore()  # this process reads while the receiver process keeps running
    fetcher = Fetcher(store, sources(Config(path=folder)))
    assert fetcher.cover([window]) > 0 and fetcher.degraded() == ()
    spans = {s.span_id: s for s in store.spans(window)}
    assert sorted({s.service for s in spans.values()}) == ["frontend", "payments"]
    client, server = spans[client_id], spans[server_id]
    assert client.trace_id == trace_id == server.trace_id
    assert (client.service, client.peer, client.error) == ("frontend", "payments", True)
    assert (server.service, server.parent_id, server.error) == ("payments", client_id, True)
    assert spans[client.parent_id].operation == "GET /checkout"
    (log,) = store.logs(window)
    assert (log.service, log.message, log.level) == ("payments", "card declined", "ERROR")
    assert (log.trace_id, log.span_id) == (trace_id, server_id)
    names = {s.name: s for s in store.metric_series(window, service="payments")}
    assert names['payments_declined_total{card="visa"}'].values[-1] == 3
    assert names["http_server_request_duration_seconds_count"].values[-1] == 1
    buckets = {le: names[f'http_server_request_duration_seconds_bucket{{le="{le}"}}'].values[-1]
               for le in ("0", "5", "10", "+Inf")}  # fmt: skip
    assert buckets == {"0": 0, "5": 1, "10": 1, "+Inf": 1}  # the SDK's default bounds, cumulative
    assert proc.poll() is None  # still serving


def test_receive_says_where_it_listens_and_stores(receiver):
    url, folder, proc = receiver
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=15)
    text = err.decode()
    assert f"listening on {url}/v1/traces" in text
    assert str(folder.resolve()) in text
