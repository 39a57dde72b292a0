"""The OTLP/HTTP receiver: a team without Tempo or Loki points its OpenTelemetry SDK or collector
at warroom, and investigations read what arrived through the source seam.

    app = create_app(Path("received"))                   # POST /v1/traces, /v1/logs, /v1/metrics
    uvicorn.run(app, host="127.0.0.1", port=4318)        # what `warroom receive` does
    sources(otlp_segments.Config(path=Path("received")))  # in `warroom investigate`

A request is `application/json` (OTLP/JSON) or `application/x-protobuf` (the binary encoding,
decoded with opentelemetry-proto and turned into the same JSON shape by protobuf's own JSON
mapping), optionally `Content-Encoding: gzip` or `deflate`. The body is bounded before and
after decompression (`max_request_bytes`, a gzip bomb is refused with 413 once it inflates
past it). It is parsed whole by intake/otlp.py (spans, logs) or intake/otlp_metrics.py
(metrics) and then stored as one segment (otlp_segments.py says why segments, not a DuckDB
file), so a bad payload stores nothing. The answers follow the OTLP/HTTP spec, in the request's
encoding: 200 with an Export*ServiceResponse (its partial_success counting the spans or points
rejected: spans ending before they start or repeating an id, points with no value or time),
sent only once the segment is on disk; 400 with a google.rpc.Status naming what is wrong;
413 too large, 415 an unknown content type or encoding, 503 when the disk refused the write
(exporters retry 503). fastapi, protobuf and opentelemetry-proto are the `serve` extra:
only this module imports them, so `import warroom` does not need them.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import threading
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warroom.errors import InputError
from warroom.intake import otlp
from warroom.intake.case_dir import LOG_COLUMNS, SPAN_COLUMNS
from warroom.intake.files import decode_utf8, loads
from warroom.intake.otlp_metrics import otlp_metric_rows
from warroom.telemetry.otlp_segments import Segments

if TYPE_CHECKING:
    from fastapi import FastAPI, Request, Response
    from google.protobuf.message import Message

DEFAULT_MAX_REQUEST_BYTES = 16 << 20  # the collector's own default is 20 MiB
JSON, PROTOBUF = "application/json", "application/x-protobuf"
# Requests parsed at once: parsing is CPU work and holds the payload ~10x in memory.
PARSE_SLOTS = 4
INVALID_ARGUMENT, UNAVAILABLE = 3, 14  # google.rpc.Code
INSTALL = "pip install 'warroom[serve]'"


class Refused(Exception):
    """A request the receiver does not accept: an HTTP status and what was wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Signal:
    """One of the three OTLP endpoints."""

    path: str
    table: str
    module: str  # of opentelemetry-proto, holding the two messages
    request: str
    response: str
    rejected_field: str  # the partial_success counter of its response


_PROTO = "opentelemetry.proto.collector"
SIGNALS = {
    "traces": Signal("/v1/traces", "spans", f"{_PROTO}.trace.v1.trace_service_pb2",
                     "ExportTraceServiceRequest", "ExportTraceServiceResponse", "rejected_spans"),
    "logs": Signal("/v1/logs", "logs", f"{_PROTO}.logs.v1.logs_service_pb2",
                   "ExportLogsServiceRequest", "ExportLogsServiceResponse",
                   "rejected_log_records"),
    "metrics": Signal("/v1/metrics", "metrics", f"{_PROTO}.metrics.v1.metrics_service_pb2",
                      "ExportMetricsServiceRequest", "ExportMetricsServiceResponse",
                      "rejected_data_points"),
}  # fmt: skip


@dataclass(frozen=True)
class Parsed:
    """A request's rows for its table, and what was left out of them."""

    columns: dict[str, list[Any]]
    rows: int
    rejected: int = 0
    why: str = ""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, body, content type."""

    status: int
    body: bytes
    media: str


class Receiver:
    """What the HTTP endpoints do, without the HTTP: decode, parse, store, answer."""

    def __init__(self, segments: Segments, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES):
        self.segments = segments
        self.max_request_bytes = max_request_bytes
        self._slots = threading.BoundedSemaphore(PARSE_SLOTS)

    def accept(self, name: str, body: bytes, media: str, encoding: str) -> Answer:
        """The answer to one request's body (already read, at most max_request_bytes)."""
        signal = SIGNALS[name]
        try:
            with self._slots:
                data = inflate(body, encoding, self.max_request_bytes)
                parsed = parse(name, decode(name, data, media), f"POST {signal.path}")
                if parsed.rows:
                    key = hashlib.sha256(b"%s\0%s\0" % (name.encode(), media.encode()) + data)
                    self._store(signal.table, parsed.columns, key.hexdigest()[:40])
        except Refused as refused:
            return status_answer(refused.status, refused.message, media)
        return Answer(200, export_response(signal, parsed, media), media)

    def _store(self, table: str, columns: dict[str, list[Any]], key: str) -> None:
        try:
            self.segments.write(table, columns, key)
        except OSError as err:
            raise Refused(503, f"could not store the data ({err.strerror or err})") from None


def create_app(directory: Path, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> FastAPI:
    """The receiver's FastAPI app, storing under `directory` (made and checked here)."""
    fastapi = serve_import("fastapi")
    concurrency = serve_import("starlette.concurrency")
    segments = Segments(directory)
    segments.prepare()
    receiver = Receiver(segments, max_request_bytes)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        segments.close()

    app = fastapi.FastAPI(
        title="warroom OTLP/HTTP receiver", docs_url=None, redoc_url=None, lifespan=lifespan
    )

    def endpoint(name: str) -> Callable[[Request], Any]:
        async def receive(request: Request) -> Response:
            media = request.headers.get("content-type", "").split(";")[0].strip().lower()
            encoding = request.headers.get("content-encoding", "").strip().lower()
            try:
                if media not in (JSON, PROTOBUF):
                    raise Refused(
                        415, f"Content-Type {media or '(none)'!r}: send {JSON} or {PROTOBUF}"
                    )
                body = await read_body(request, max_request_bytes)
                answer = await concurrency.run_in_threadpool(
                    receiver.accept, name, body, media, encoding
                )
            except Refused as refused:
                answer = status_answer(refused.status, refused.message, media)
            return fastapi.Response(answer.body, answer.status, media_type=answer.media)

        return receive

    for name, signal in SIGNALS.items():
        # A plain Starlette route: the endpoint takes the Request itself, no FastAPI injection.
        app.add_route(signal.path, endpoint(name), methods=["POST"], name=name)
    return app


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"request body of {declared} bytes, more than the {limit} allowed")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise Refused(413, f"request body over the {limit} bytes allowed")
        chunks.append(chunk)
    return b"".join(chunks)


def inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """The body without its Content-Encoding, refused with 413 once it inflates past `limit`."""
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise Refused(415, f"Content-Encoding {encoding[:40]!r}: send gzip, deflate or none")
    # gzip: header and trailer checked by zlib; deflate: zlib-wrapped, as HTTP defines it
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    out, rest = bytearray(), body
    while rest:  # gzip allows several members one after another
        inflater = zlib.decompressobj(wbits)
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as err:
            raise Refused(400, f"body is not valid {encoding} data ({err})") from None
        if len(out) > limit or inflater.unconsumed_tail:
            raise Refused(413, f"request body inflates past the {limit} bytes allowed")
        if not inflater.eof:
            raise Refused(400, f"{encoding} body ends early (truncated)")
        rest = inflater.unused_data
    return bytes(out)


def decode(name: str, data: bytes, media: str) -> Any:
    """The request as OTLP/JSON's shape, from either encoding."""
    source = f"POST {SIGNALS[name].path}"
    if media == JSON:
        try:
            return loads(decode_utf8(data, source), source)
        except InputError as err:
            raise Refused(400, str(err)) from None
    message = _message(SIGNALS[name], SIGNALS[name].request)
    json_format = serve_import("google.protobuf.json_format")
    errors = serve_import("google.protobuf.message")
    try:
        message.ParseFromString(data)
    except (errors.DecodeError, RecursionError, ValueError) as err:
        problem = f"not a valid protobuf {SIGNALS[name].request} ({err})"
        raise Refused(400, f"{source}: {problem}") from None
    return json_format.MessageToDict(message)


def parse(name: str, doc: Any, source: str) -> Parsed:
    """Every row of the request, or Refused(400) naming what is wrong; nothing half-read."""
    try:
        if name == "traces":
            spans = otlp.otlp_spans(doc, source)
            notes: list[str] = []
            kept = otlp.checked_spans(spans, source, notes)
            columns = {c: [getattr(s, a) for s in kept] for c, a in SPAN_COLUMNS.items()}
            return Parsed(columns, len(kept), len(spans) - len(kept), "; ".join(notes))
        if name == "logs":
            logs = otlp.otlp_logs(doc, source)
            return Parsed(
                {c: [getattr(r, a) for r in logs] for c, a in LOG_COLUMNS.items()}, len(logs)
            )
        rows = otlp_metric_rows(doc, source)
        why = "; ".join(rows.reasons) + (" ..." if rows.rejected > len(rows.reasons) else "")
        return Parsed(rows.columns, len(rows.columns["ts"]), rows.rejected, why)
    except InputError as err:
        raise Refused(400, str(err)) from None


def export_response(signal: Signal, parsed: Parsed, media: str) -> bytes:
    """An Export*ServiceResponse in the request's encoding; partial_success when rows were
    rejected (the spec: leave it unset when everything was accepted)."""
    response = _message(signal, signal.response)
    if parsed.rejected:
        setattr(response.partial_success, signal.rejected_field, parsed.rejected)
        response.partial_success.error_message = parsed.why[:1000]
    if media == PROTOBUF:
        return bytes(response.SerializeToString())
    json_format = serve_import("google.protobuf.json_format")
    return _json_bytes(json_format.MessageToDict(response))


def status_answer(status: int, message: str, media: str) -> Answer:
    """A google.rpc.Status body for an error, in the request's encoding (JSON when unknown)."""
    code = UNAVAILABLE if status == 503 else INVALID_ARGUMENT
    message = message[:2000]
    if media == PROTOBUF:
        return Answer(status, rpc_status(code, message), PROTOBUF)
    return Answer(status, _json_bytes({"code": code, "message": message}), JSON)


def rpc_status(code: int, message: str) -> bytes:
    """google.rpc.Status{code, message} in the protobuf wire format (two fields: no need for
    googleapis-common-protos, which the serve extra does not pull in)."""
    text = message.encode("utf-8")
    out = b"\x08" + _varint(code) if code else b""  # proto3 leaves default values out
    return out + (b"\x12" + _varint(len(text)) + text if text else b"")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _message(signal: Signal, message: str) -> Message:
    cls: Callable[[], Message] = getattr(serve_import(signal.module), message)
    return cls()


def serve_import(module: str) -> Any:
    """A module of the serve extra, or an InputError naming the pip install to run."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"the OTLP receiver needs {module.split('.')[0]}: {INSTALL}") from None
