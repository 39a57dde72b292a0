"""One service's telemetry: its Prometheus registry, its OpenTelemetry tracer and logger
providers, and the JSON log file, made together and shut down together.

    telemetry = Telemetry.create(config)            # no I/O; exporter threads idle until used
    telemetry.server_duration.labels("/cart/{user}", "GET", "200").observe(0.004)
    with telemetry.tracer.start_as_current_span("GET /cart/{user}", kind=SpanKind.SERVER): ...
    telemetry.attach_logging()                      # root logger -> JSON file + OTLP logs
    telemetry.shutdown()                            # flush with a short timeout, detach

Metric names follow what warroom reads (telemetry/prometheus_families.py): histograms with a
`status_code` label give the RED series, `http_client_request_duration_seconds{peer}` the
per-peer client latency experts/peers.py compares with the callee's own. Prometheus adds the
`service` label from its scrape job, so no metric carries one itself.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from warroom.gym.live.contracts import ServiceConfig

# 1 ms .. 10 s: a cache hit and a client timeout both land inside a bucket, not past the last.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
EXPORT_TIMEOUT_S = 2.0  # an exporter gives up on a dead receiver this fast (the SDK drops)
FLUSH_TIMEOUT_MS = 1500  # what SIGTERM waits for the last batch
BATCH_DELAY_MS = 1000
# Loggers whose records must not reach the OTLP log handler: the exporter's own complaints
# about a dead receiver would feed the exporter that is failing.
_NOT_EXPORTED = ("opentelemetry", "urllib3", "requests")


@dataclass
class Telemetry:
    """The instruments of one service process."""

    service: str
    version: str
    log_path: Path
    registry: CollectorRegistry
    server_duration: Histogram
    client_duration: Histogram
    tracer_provider: TracerProvider
    logger_provider: LoggerProvider
    _handlers: Sequence[logging.Handler] = ()

    @classmethod
    def create(cls, config: ServiceConfig, span_exporter: SpanExporter | None = None) -> Telemetry:
        """Instruments for `config`'s service (`span_exporter`: also export spans there,
        synchronously; tests read them back)."""
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)  # process_cpu_seconds_total, resident memory, fds
        resource = Resource.create(
            {"service.name": config.service, "service.version": config.version}
        )
        tracer_provider = TracerProvider(resource=resource)
        logger_provider = LoggerProvider(resource=resource)
        if config.otlp_endpoint:
            base = config.otlp_endpoint.rstrip("/")
            spans = OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=EXPORT_TIMEOUT_S)
            tracer_provider.add_span_processor(
                BatchSpanProcessor(spans, schedule_delay_millis=BATCH_DELAY_MS)
            )
            logs = OTLPLogExporter(endpoint=f"{base}/v1/logs", timeout=EXPORT_TIMEOUT_S)
            logger_provider.add_log_record_processor(
                BatchLogRecordProcessor(logs, schedule_delay_millis=BATCH_DELAY_MS)
            )
        if span_exporter is not None:
            tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
        build = Gauge("app_build_info", "The running build", ["version"], registry=registry)
        build.labels(config.version).set(1)
        return cls(
            service=config.service,
            version=config.version,
            log_path=Path(config.log_path),
            registry=registry,
            server_duration=Histogram(
                "http_server_request_duration_seconds",
                "Server-side duration of the HTTP requests this service answered",
                ["route", "method", "status_code"],
                buckets=BUCKETS,
                registry=registry,
            ),
            client_duration=Histogram(
                "http_client_request_duration_seconds",
                "Client-side duration of this service's calls, per callee (HTTP status, or "
                "ok/error for datastore calls and calls that got no answer)",
                ["peer", "status_code"],
                buckets=BUCKETS,
                registry=registry,
            ),
            tracer_provider=tracer_provider,
            logger_provider=logger_provider,
        )

    @property
    def tracer(self) -> trace.Tracer:
        """The tracer every span of this service comes from."""
        return self.tracer_provider.get_tracer("warroom.gym.live.shop")

    def gauge(self, name: str, documentation: str) -> Gauge:
        """A label-less gauge in this service's registry."""
        return Gauge(name, documentation, registry=self.registry)

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        """A counter in this service's registry (`name` without the _total suffix)."""
        return Counter(name, documentation, list(labels), registry=self.registry)

    def histogram(self, name: str, documentation: str) -> Histogram:
        """A label-less histogram with the shop's buckets."""
        return Histogram(name, documentation, buckets=BUCKETS, registry=self.registry)

    def attach_logging(self) -> None:
        """Send every log record of the process to the JSON file and to OTLP logs."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(self.log_path, encoding="utf-8")
        to_file.setFormatter(JsonFormatter(self.service))
        with warnings.catch_warnings():  # deprecated for the instrumentation package we lack
            warnings.simplefilter("ignore", DeprecationWarning)
            to_otlp = LoggingHandler(level=logging.INFO, logger_provider=self.logger_provider)
        to_otlp.addFilter(lambda record: not record.name.startswith(_NOT_EXPORTED))
        root = logging.getLogger()
        root.setLevel(min(root.level or logging.INFO, logging.INFO))
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per call otherwise
        for handler in (to_file, to_otlp):
            root.addHandler(handler)
        self._handlers = (to_file, to_otlp)

    def shutdown(self) -> None:
        """Flush what is buffered (bounded: a dead receiver must not hold a SIGTERM up)."""
        root = logging.getLogger()
        for handler in self._handlers:
            root.removeHandler(handler)
            if isinstance(handler, logging.FileHandler):
                handler.close()
        self._handlers = ()
        self.tracer_provider.force_flush(FLUSH_TIMEOUT_MS)
        self.logger_provider.force_flush(FLUSH_TIMEOUT_MS)
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, service, message, the active trace and span,
    and the stack trace when the record carries an exception."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        context = trace.get_current_span().get_span_context()
        line: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            "trace_id": format(context.trace_id, "032x") if context.is_valid else None,
            "span_id": format(context.span_id, "016x") if context.is_valid else None,
        }
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)
