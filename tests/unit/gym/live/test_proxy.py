"""The edge proxy for real: `python -m warroom.gym.live.proxy` on loopback ports in front of an
echo server standing in for the callee. Healthy it is fast; a delay holds both directions and
keeps the order; a reset refuses; DELETE heals; a live connection survives the changes."""

from __future__ import annotations

import contextlib
import random
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from warroom.gym.live.contracts import EDGES, Layout

CALLER, CALLEE = "checkout", "cart"
READY_S = 15.0


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(10)
        with contextlib.suppress(OSError):
            while data := self.request.recv(65536):
                self.request.sendall(data)
            self.request.shutdown(socket.SHUT_WR)  # the client's half-close, answered


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@dataclass
class Running:
    layout: Layout
    control: str

    @property
    def edge_port(self) -> int:
        return self.layout.edge_port(CALLER, CALLEE)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.edge_port), timeout=5)

    def set(self, **fault: object) -> httpx.Response:
        return httpx.put(f"{self.control}/edges/{CALLER}/{CALLEE}", json=fault, timeout=5)

    def edge(self) -> dict[str, int | str | bool | float]:
        edges = httpx.get(f"{self.control}/edges", timeout=5).json()["edges"]
        return next(e for e in edges if (e["caller"], e["callee"]) == (CALLER, CALLEE))


def _free_layout() -> Layout:
    """A base whose every port the proxy and the echo need is free on loopback."""
    for _ in range(20):
        layout = Layout(random.randrange(20_000, 55_000, 1000))
        ports = [layout.port("proxy-control"), layout.port(CALLEE)]
        ports += [layout.edge_port(a, b) for a, b in EDGES]
        if all(_free(p) for p in ports):
            return layout
    pytest.skip("no free loopback port range for the proxy")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def proxy(started: Running) -> Iterator[Running]:
    """The module's proxy, every edge healthy before and after the test."""
    httpx.delete(f"{started.control}/edges", timeout=5)
    yield started
    httpx.delete(f"{started.control}/edges", timeout=5)


@pytest.fixture(scope="module")
def started() -> Iterator[Running]:
    layout = _free_layout()
    echo = _EchoServer(("127.0.0.1", layout.port(CALLEE)), _Echo)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    command = [sys.executable, "-m", "warroom.gym.live.proxy",
               "--layout-base", str(layout.base_port)]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE)
    running = Running(layout, f"http://127.0.0.1:{layout.port('proxy-control')}")
    try:
        _wait_ready(running, process)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        echo.shutdown()
        echo.server_close()


def _wait_ready(running: Running, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"proxy exited: {process.stderr.read().decode() if process.stderr else ''}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{running.control}/edges", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError("proxy not ready")


def _round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    start = time.monotonic()
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid round trip"
        got += chunk
    assert got == payload
    return time.monotonic() - start


def test_a_healthy_edge_is_fast_and_counted(proxy: Running) -> None:
    before = proxy.edge()
    with proxy.connect() as sock:
        assert max(_round_trip(sock) for _ in range(20)) < 0.1
        edge = proxy.edge()
    grew = {k: int(edge[k]) - int(before[k]) for k in ("connections", "bytes_up", "bytes_down")}
    assert edge["active"] == 1 and grew == {"connections": 1, "bytes_up": 80, "bytes_down": 80}


def test_a_delay_holds_both_directions_and_keeps_the_bytes_in_order(proxy: Running) -> None:
    assert proxy.set(delay_ms=200, jitter_ms=20).status_code == 200
    with proxy.connect() as sock:
        assert _round_trip(sock) >= 0.4 - 0.05  # jitter may take up to 20 ms off each way
        messages = b"".join(f"message {i:04d};".encode() for i in range(200))
        sent = time.monotonic()
        for i in range(200):  # 200 separate writes, each its own chunk at the proxy
            sock.sendall(messages[i * 13 : (i + 1) * 13])
        got = b""
        while len(got) < len(messages):
            chunk = sock.recv(65536)
            assert chunk
            got += chunk
        assert got == messages
        assert time.monotonic() - sent >= 0.35


def test_a_live_connection_survives_a_delay_and_its_healing(proxy: Running) -> None:
    with proxy.connect() as sock:
        assert _round_trip(sock) < 0.1
        proxy.set(delay_ms=150)
        assert _round_trip(sock) >= 0.3
        assert httpx.delete(f"{proxy.control}/edges", timeout=5).status_code == 200
        _round_trip(sock)  # a chunk read while the delay was on may still be held
        assert _round_trip(sock) < 0.1


def test_a_reset_edge_refuses_new_connections_and_breaks_live_ones(proxy: Running) -> None:
    live = proxy.connect()
    try:
        _round_trip(live)
        proxy.set(reset=True)
        with pytest.raises((ConnectionError, AssertionError)):
            _round_trip(live)
        with pytest.raises((ConnectionError, AssertionError)), proxy.connect() as fresh:
            _round_trip(fresh)  # reset at once: the connect or the first read sees it
        assert int(proxy.edge()["refused"]) >= 1
    finally:
        live.close()
    httpx.delete(f"{proxy.control}/edges", timeout=5)
    with proxy.connect() as healed:
        assert _round_trip(healed) < 0.1


def test_a_half_close_is_passed_on(proxy: Running) -> None:
    with proxy.connect() as sock:
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
        assert got == b"last words"  # the echo saw our EOF, answered, and closed its side


def test_the_control_api_refuses_unknown_edges_and_bad_faults(proxy: Running) -> None:
    assert httpx.put(f"{proxy.control}/edges/cart/frontend", json={}, timeout=5).status_code == 404
    assert proxy.set(delay_ms=-5).status_code == 422
    assert proxy.set(loss=3).status_code == 422
