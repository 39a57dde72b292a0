"""The whole shop for real: a redis-server, a PostgreSQL 15, `warroom receive`, the gateway stub
and the seven services as their own processes (peers dialled straight, no edge proxy), driven
by the load generator; then what a responder would look at: the orders table, /metrics, the
spans the receiver stored, and a gateway outage showing as 5xx in checkout's metrics."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import httpx
import psycopg
import pytest

from integration.postgres import PostgresServer, postgres_server
from integration.servers import free_port
from warroom.gym.live.contracts import EDGES, EXTERNAL, SERVICES, ServiceConfig

READY_S = 40.0
HOST = "127.0.0.1"
SHOP = [sys.executable, "-m", "warroom.gym.live.shop"]


@dataclass
class Shop:
    """The running shop: ports by component, its processes, where its files are."""

    root: Path
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"http://{HOST}:{self.ports[name]}"

    def metrics(self, name: str) -> str:
        return httpx.get(f"{self.url(name)}/metrics", timeout=5).text


def _start(shop: Shop, name: str, command: list[str]) -> None:
    log = (shop.root / f"{name}.out").open("wb")
    with log:
        shop.processes[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def _stop_all(shop: Shop) -> None:
    """The shop first, then what it exports to and stores in (so its last batches land)."""
    infrastructure = ("receiver", "redis")
    _stop([p for n, p in shop.processes.items() if n not in infrastructure])
    _stop([p for n, p in shop.processes.items() if n in infrastructure])


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each by PID, then SIGKILL whatever has not exited a few seconds later."""
    for proc in processes:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 8
    for proc in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.1, deadline - time.monotonic()))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _wait_ready(shop: Shop, name: str, path: str = "/healthz") -> None:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        if shop.processes[name].poll() is not None:
            output = (shop.root / f"{name}.out").read_text(errors="replace")[-2000:]
            raise AssertionError(f"{name} exited: {output}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{shop.url(name)}{path}", timeout=1).status_code < 500:
                return
        time.sleep(0.2)
    raise AssertionError(f"{name} not ready within {READY_S} s")


def _config(shop: Shop, service: str, dsn: str) -> Path:
    peers = {b: f"{HOST}:{shop.ports[b]}" for a, b in EDGES if a == service}
    config = ServiceConfig(
        service=service,
        port=shop.ports[service],
        peers=peers,
        postgres_dsn=dsn if "postgres" in peers else "",
        otlp_endpoint=shop.url("receiver"),
        labels_dir=str(shop.root / "labels") if service == "shipping" else "",
        log_path=str(shop.root / "logs" / f"{service}.jsonl"),
    )
    path = shop.root / "config" / f"{service}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config.model_dump_json())
    return path


@contextlib.contextmanager
def _redis(shop: Shop) -> Iterator[None]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not found on PATH (apt-get install redis-server)")
    port = str(shop.ports["redis"])
    _start(shop, "redis", [binary, "--port", port, "--bind", HOST, "--save", "",
                           "--appendonly", "no", "--daemonize", "no"])  # fmt: skip
    yield


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[tuple[Shop, PostgresServer]]:
    names = [*SERVICES, EXTERNAL, "redis", "receiver"]
    running = Shop(tmp_path, {name: free_port() for name in names})
    with postgres_server() as pg:
        pg.create_database("shop")
        running.ports["postgres"] = pg.port
        dsn = f"host={HOST} port={pg.port} user=postgres dbname=shop"
        try:
            with _redis(running):
                warroom = str(Path(sys.executable).parent / "warroom")
                received = ["--dir", str(tmp_path / "received")]
                port = ["--port", str(running.ports["receiver"])]
                _start(running, "receiver", [warroom, "receive", *received, *port])
                _start(
                    running, EXTERNAL, [*SHOP, "gateway", "--port", str(running.ports[EXTERNAL])]
                )
                for service in SERVICES:  # all at once: each takes a second or two to import
                    _start(
                        running,
                        service,
                        [*SHOP, "serve", "--config", str(_config(running, service, dsn))],
                    )
                _wait_ready(running, "receiver", "/")
                for name in (EXTERNAL, *SERVICES):
                    _wait_ready(running, name)
                yield running, pg
        finally:
            _stop_all(running)


def _load(shop: Shop, seconds: float, rps: float) -> str:
    command = [*SHOP, "load", "--target", shop.url("frontend"), "--rps", str(rps),
               "--seconds", str(seconds), "--seed", "7"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


SERVER = "http_server_request_duration_seconds_count"
CLIENT = "http_client_request_duration_seconds_count"


def _count(metrics: str, name: str, **labels: str) -> float:
    """The sum of `name` over the series carrying all of `labels`."""
    total = 0.0
    for line in metrics.splitlines():
        if not line.startswith(name + "{"):
            continue
        series, value = line.rsplit(" ", 1)
        if all(f'{k}="{v}"' in series for k, v in labels.items()):
            total += float(value)
    return total


def _stored_spans(shop: Shop) -> list[tuple[str, str, str | None]]:
    """(trace id, service, peer) of every span `warroom receive` stored."""
    segments = shop.root / "received" / "spans" / "*.parquet"
    query = f"SELECT trace_id, service, peer FROM read_parquet('{segments}')"
    return [(t, s, p) for t, s, p in duckdb.sql(query).fetchall()]


def _check_orders_fulfilled(pg: PostgresServer) -> int:
    with psycopg.connect(f"host={HOST} port={pg.port} user=postgres dbname=shop") as conn:
        row = conn.execute("SELECT count(*), count(shipped_at) FROM orders").fetchone()
    assert row is not None
    orders, shipped = row
    assert orders >= 5 and shipped >= orders - 2, (orders, shipped)  # the last may be in flight
    return int(orders)


def _check_metrics(shop: Shop, orders: int) -> None:
    frontend = shop.metrics("frontend")
    route = "/product/{product_id}"
    assert _count(frontend, SERVER, route=route, method="GET", status_code="200") > 0
    assert _count(frontend, SERVER, route="/checkout/{user}", method="POST") > 0
    assert 'route="/product/p0' not in frontend  # templates, never raw paths
    checkout = shop.metrics("checkout")
    for peer in ("payment", "cart", "orders", "shipping"):
        assert _count(checkout, CLIENT, peer=peer, status_code="200") > 0, peer
    assert _count(shop.metrics("cart"), CLIENT, peer="redis", status_code="ok") > 0
    assert _count(shop.metrics("orders"), CLIENT, peer="postgres", status_code="ok") >= orders
    worker = shop.metrics("worker")
    assert _count(worker, "queue_messages_processed_total", status="ok") >= orders - 2
    assert "queue_lag_messages " in worker and "db_pool_connections_max 5.0" in worker
    assert 'app_build_info{version="v1"} 1.0' in worker
    assert "process_resident_memory_bytes " in worker


def _check_traces(shop: Shop) -> None:
    spans = _stored_spans(shop)
    peers = {peer for _, _, peer in spans if peer}
    assert {"cart", "checkout", "payment", "orders", "redis", "postgres", EXTERNAL} <= peers
    services_per_trace: dict[str, set[str]] = {}
    for trace_id, service, _ in spans:
        services_per_trace.setdefault(trace_id, set()).add(service)
    widest = max(services_per_trace.values(), key=len)
    # one checkout's trace, through the stream into the worker and on to shipping
    assert {"frontend", "checkout", "payment", "orders", "worker", "shipping"} <= widest, widest


def _check_gateway_outage(shop: Shop) -> None:
    payment_failures = {"peer": "payment", "status_code": "502"}
    before = _count(shop.metrics("checkout"), CLIENT, **payment_failures)
    outage = httpx.post(f"{shop.url(EXTERNAL)}/_chaos/outage", json={"mode": "errors"}, timeout=5)
    outage.raise_for_status()
    front = shop.url("frontend")
    for user in ("u001", "u002", "u003"):
        added = httpx.post(f"{front}/cart/{user}/add", json={"product_id": "p01"}, timeout=5)
        added.raise_for_status()
        assert httpx.post(f"{front}/checkout/{user}", timeout=10).status_code == 502
    # retries=1: checkout tries payment twice per checkout, payment the gateway twice per try
    after = _count(shop.metrics("checkout"), CLIENT, **payment_failures)
    assert after - before == 3 * 2
    gateway_failures = {"peer": EXTERNAL, "status_code": "503"}
    assert _count(shop.metrics("payment"), CLIENT, **gateway_failures) == 3 * 2 * 2
    log_path = shop.root / "logs" / "checkout.jsonl"
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    named = [x for x in lines if x["level"] == "ERROR" and "payment" in x["message"]]
    assert named and all(x["trace_id"] for x in named)


def test_the_shop_serves_fulfils_and_reports_what_happened(
    shop: tuple[Shop, PostgresServer],
) -> None:
    running, pg = shop
    summary = _load(running, seconds=10, rps=12)
    sent, ok = (int(x) for x in re.findall(r"(?:sent|ok)=(\d+)", summary))
    assert sent > 80 and ok / sent > 0.95, summary
    time.sleep(2.5)  # the worker's last entries, the exporters' last batches
    orders = _check_orders_fulfilled(pg)
    _check_metrics(running, orders)
    _check_traces(running)
    _check_gateway_outage(running)
