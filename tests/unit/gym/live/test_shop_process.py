"""A shop service as the stack runs it: its own process on a loopback port, answering until
SIGTERM, then exiting after flushing (with no OTLP receiver listening)."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from warroom.gym.live.contracts import ServiceConfig

READY_S = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_service_serves_until_sigterm_and_exits_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    config = ServiceConfig(
        service="shipping",
        port=port,
        peers={},
        otlp_endpoint=f"http://127.0.0.1:{_free_port()}",  # nobody there: the SDK must drop
        labels_dir=str(tmp_path / "labels"),
        log_path=str(tmp_path / "shipping.jsonl"),
    )
    path = tmp_path / "shipping.json"
    path.write_text(config.model_dump_json())
    command = [sys.executable, "-m", "warroom.gym.live.shop", "serve", "--config", str(path)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + READY_S
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "not ready"
                time.sleep(0.2)
        assert health.json() == {
            "status": "ok", "service": "shipping", "version": "v1", "pid": proc.pid
        }  # fmt: skip
        quote = httpx.get(f"http://127.0.0.1:{port}/quote?items=2&weight_kg=1", timeout=5)
        assert quote.status_code == 200
        started = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        # uvicorn re-raises the captured SIGTERM once its graceful shutdown is done
        assert proc.wait(10) in (0, -signal.SIGTERM)
        assert time.monotonic() - started < 6  # the flush is bounded though the receiver is gone
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    messages = [
        json.loads(line)["message"] for line in Path(config.log_path).read_text().splitlines()
    ]
    assert f"shipping v1 listening on {port}" in messages and "shipping shutting down" in messages


def _start(path: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "warroom.gym.live.shop", "serve", "--config", str(path)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _answering(port: int, pid: int) -> None:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json()["pid"] == pid:
                return
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} never answered")


def test_a_new_release_takes_over_the_port_without_failing_a_request(tmp_path: Path) -> None:
    port = _free_port()
    config = ServiceConfig(
        service="shipping", port=port, peers={}, otlp_endpoint=f"http://127.0.0.1:{_free_port()}",
        labels_dir=str(tmp_path / "labels"), log_path=str(tmp_path / "shipping.jsonl"),
    )  # fmt: skip
    path = tmp_path / "shipping.json"
    path.write_text(config.model_dump_json())
    old = _start(path)
    new: subprocess.Popen[bytes] | None = None
    outcomes: list[int | str] = []
    done = threading.Event()

    quote = f"http://127.0.0.1:{port}/quote?items=1&weight_kg=1"

    def shop() -> None:  # a fresh connection per request, as callers behind a proxy make
        while not done.is_set() and len(outcomes) < 5000:
            try:
                outcomes.append(httpx.get(quote, timeout=5).status_code)
            except httpx.HTTPError as err:
                outcomes.append(type(err).__name__)

    try:
        _answering(port, old.pid)
        shopper = threading.Thread(target=shop)
        shopper.start()
        new = _start(path)  # binds the same port beside the old one (SO_REUSEPORT)
        _answering(port, new.pid)
        old.terminate()
        old.wait(10)
        time.sleep(1.0)
        done.set()
        shopper.join(10)
        _answering(port, new.pid)
    finally:
        done.set()
        for proc in (old, new):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(5)
    assert len(outcomes) > 20 and set(outcomes) == {200}, collections.Counter(outcomes)
