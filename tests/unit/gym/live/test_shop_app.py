"""The shop services in-process (FastAPI's TestClient, the app's real lifespan): route-template
labels, spans and their propagation, a failing callee, v2-bad's broken paths, a real ENOSPC,
and the chaos hooks' loopback guard and memory leak."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from warroom.gym.live.contracts import EDGES, ServiceConfig
from warroom.gym.live.shop.app import create_app
from warroom.gym.live.shop.chaos import MIB

SERVER = "http_server_request_duration_seconds_count"
CLIENT = "http_client_request_duration_seconds_count"
LOOPBACK = ("127.0.0.1", 40000)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def _closed_port() -> int:
    """A loopback port nobody listens on: every call to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(tmp_path: Path, service: str, version: str = "v1") -> ServiceConfig:
    nowhere = f"127.0.0.1:{_closed_port()}"
    return ServiceConfig(
        service=service,
        port=1,
        version=version,
        peers={callee: nowhere for caller, callee in EDGES if caller == service},
        postgres_dsn=f"host=127.0.0.1 port={_closed_port()} user=postgres dbname=shop",
        otlp_endpoint="",  # no receiver: spans go to the in-memory exporter only
        labels_dir=str(tmp_path / "labels"),
        log_path=str(tmp_path / f"{service}.jsonl"),
    )


class Running:
    """A service app under a TestClient, with the spans it finished."""

    def __init__(self, config: ServiceConfig, client: TestClient, spans: InMemorySpanExporter):
        self.config, self.client, self._spans = config, client, spans

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self._spans.get_finished_spans()

    def metric(self, name: str, **labels: str) -> float:
        total = 0.0
        for line in self.client.get("/metrics").text.splitlines():
            series, _, value = line.rpartition(" ")
            if series.startswith(name + "{") and all(
                f'{k}="{v}"' in series for k, v in labels.items()
            ):
                total += float(value)
        return total

    def log_lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in Path(self.config.log_path).read_text().splitlines()]


Starter = Callable[..., Running]  # (service, version="v1", client=LOOPBACK) -> Running


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Starter]:
    """Start a service app; starting another stops the one before, since an app's log handlers
    are the process's (one service per process, as in the gym)."""
    clients: list[TestClient] = []

    def started(service: str, version: str = "v1", client: tuple[str, int] = LOOPBACK) -> Running:
        if clients:
            clients.pop().__exit__(None, None, None)
        config, spans = (
            _config(tmp_path / f"{service}-{version}", service, version),
            InMemorySpanExporter(),
        )
        test_client = TestClient(create_app(config, span_exporter=spans), client=client)
        test_client.__enter__()
        clients.append(test_client)
        return Running(config, test_client, spans)

    yield started
    for test_client in clients:
        test_client.__exit__(None, None, None)


def test_requests_are_labelled_by_route_template_not_raw_path(start: Starter) -> None:
    shop = start("frontend")
    for product in ("p01", "p02", "p99"):
        shop.client.get(f"/product/{product}")
    shop.client.get("/no/such/page")
    shop.client.get("/healthz")
    route = "/product/{product_id}"
    assert shop.metric(SERVER, route=route, method="GET", status_code="200") == 2
    assert shop.metric(SERVER, route=route, method="GET", status_code="404") == 1
    assert shop.metric(SERVER, route="unmatched", status_code="404") == 1
    assert shop.metric(SERVER) == 4  # /healthz and /metrics are the platform's, not counted
    labelled = [line for line in shop.client.get("/metrics").text.splitlines() if "route=" in line]
    assert labelled and not [line for line in labelled if "p01" in line]
    server = [s for s in shop.spans() if s.kind == SpanKind.SERVER]
    assert [s.name for s in server][:2] == [f"GET {route}"] * 2
    assert server[0].attributes is not None and server[0].attributes["http.route"] == route


def test_a_server_span_continues_the_callers_trace(start: Starter) -> None:
    shop = start("frontend")
    traceparent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    shop.client.get("/product/p01", headers={"traceparent": traceparent})
    (span,) = shop.spans()
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == "00f067aa0ba902b7"


def test_a_refused_callee_is_a_503_naming_it_with_a_client_span_per_attempt(start: Starter) -> None:
    shop = start("frontend")
    answer = shop.client.get("/", params={"user": "u01"})
    assert answer.status_code == 503 and "cart failed" in answer.json()["error"]
    clients = [s for s in shop.spans() if s.kind == SpanKind.CLIENT]
    (server,) = [s for s in shop.spans() if s.kind == SpanKind.SERVER]
    assert len(clients) == 2  # a GET is idempotent: retried once (settings.retries = 1)
    for span in clients:
        assert span.attributes is not None and span.attributes["peer.service"] == "cart"
        assert span.status.status_code == StatusCode.ERROR
        assert span.parent is not None and span.parent.span_id == server.context.span_id
    assert server.status.status_code == StatusCode.ERROR
    assert shop.metric(CLIENT, peer="cart", status_code="error") == 2
    assert shop.metric(SERVER, route="/", status_code="503") == 1
    (logged,) = [x for x in shop.log_lines() if x["level"] == "ERROR"]
    assert "call to cart failed" in str(logged["message"])
    assert logged["trace_id"] == format(server.context.trace_id, "032x")


def test_v2_bad_breaks_the_sale_product_page_only(start: Starter) -> None:
    good = start("frontend")
    for product in ("p01", "p02", "p03", "p07", "p10"):
        assert good.client.get(f"/product/{product}").status_code == 200
    assert not [x for x in good.log_lines() if x["level"] == "ERROR"]
    bad = start("frontend", "v2-bad")
    assert bad.client.get("/product/p01").status_code == 200
    assert bad.client.get("/product/p03").status_code == 500
    route = "/product/{product_id}"
    assert bad.metric(SERVER, route=route, status_code="500") == 1
    (crash,) = [x for x in bad.log_lines() if x["level"] == "ERROR"]
    assert "KeyError: 'sale_price'" in str(crash["exc_info"]) and "render_product" in str(
        crash["exc_info"]
    )
    failed = [s for s in bad.spans() if s.status.status_code == StatusCode.ERROR]
    assert [e.name for e in failed[0].events] == ["exception"]


def test_v2_bad_shipping_quotes_divide_by_zero_for_small_parcels(start: Starter) -> None:
    good, bad = start("shipping"), start("shipping", "v2-bad")
    for items in (1, 2, 3, 7):
        assert (
            good.client.get("/quote", params={"items": items, "weight_kg": 1.5}).status_code == 200
        )
    assert bad.client.get("/quote", params={"items": 3, "weight_kg": 1.5}).status_code == 200
    assert bad.client.get("/quote", params={"items": 2, "weight_kg": 1.5}).status_code == 500
    (crash,) = [x for x in bad.log_lines() if x["level"] == "ERROR"]
    assert "ZeroDivisionError" in str(crash["exc_info"])


def test_a_full_disk_fails_the_label_with_its_stack_trace(start: Starter) -> None:
    shop = start("shipping")
    assert shop.client.post("/ship", json={"order_id": 1}).status_code == 200
    labels = Path(shop.config.labels_dir)
    assert (labels / "order-1.txt").stat().st_size == 4096
    (labels / "order-2.txt").symlink_to("/dev/full")  # every write there fails with ENOSPC
    assert shop.client.post("/ship", json={"order_id": 2}).status_code == 500
    (crash,) = [x for x in shop.log_lines() if x["level"] == "ERROR"]
    assert "No space left on device" in str(crash["exc_info"]) and "in ship" in str(
        crash["exc_info"]
    )


def test_chaos_hooks_refuse_clients_off_the_loopback(start: Starter) -> None:
    remote = start("cart", client=("10.1.2.3", 5555))
    assert remote.client.post("/_chaos/leak", json={"mib_per_s": 1}).status_code == 403
    assert remote.client.post("/_chaos/slow", json={"ms_per_message": 5}).status_code == 404
    worker = start("worker", client=("192.168.0.7", 5555))
    assert worker.client.post("/_chaos/slow", json={"ms_per_message": 5}).status_code == 403
    assert worker.client.post("/_chaos/leak", json={"mib_per_s": 1}).status_code == 403
    local = start("worker")
    assert local.client.post("/_chaos/slow", json={"ms_per_message": 5}).json() == {
        "ms_per_message": 5
    }
    assert local.client.post("/_chaos/leak", json={"mib_per_s": 0}).status_code == 200


def _rss() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def test_the_leak_grows_resident_memory_at_the_asked_rate_and_stops(start: Starter) -> None:
    shop = start("payment")
    leak = shop.client.app.state.runtime.leak  # type: ignore[attr-defined]
    before, started = _rss(), time.monotonic()
    assert shop.client.post("/_chaos/leak", json={"mib_per_s": 40}).status_code == 200
    time.sleep(1.5)
    stopped = shop.client.post("/_chaos/leak", json={"mib_per_s": 0}).json()
    elapsed = time.monotonic() - started
    grown = (_rss() - before) / MIB
    assert 40 * (elapsed - 0.3) <= stopped["retained_mib"] <= 40 * (elapsed + 0.2)
    assert grown >= 0.8 * stopped["retained_mib"], (grown, stopped)  # touched pages: resident
    time.sleep(0.3)
    assert leak.retained_bytes / MIB == stopped["retained_mib"]  # stopped, kept
