"""A real page on the real path: a test app's error counter scraped by a real Prometheus 2.42, an
alert rule firing, a real Alertmanager 0.25 routing it with a bearer token to `warroom serve`
(its own process, uvicorn on 127.0.0.1), which investigates through that Prometheus and keeps
the report; every process stopped by PID.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from integration.servers import alertmanager, free_port, prometheus, running

TOKEN = "live-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FINAL = {"done", "inconclusive", "failed"}
WAIT_S = 90.0  # alert firing + group_wait + the investigation, on a loaded 2-core machine

pytestmark = pytest.mark.slow


@pytest.fixture
def shop_app() -> Iterator[int]:
    """A process-local exporter whose checkout errors keep rising (what the rule fires on)."""
    registry = CollectorRegistry()
    errors = Counter("shop_errors", "Failed checkouts", ["service"], registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(0.2):  # bounded: ends with the test
            errors.labels("checkout").inc(3)

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield port
    finally:
        stop.set()
        server.shutdown()
        thread.join(5)


def _prometheus_yml(app_port: int, am_url: str, rules: Path) -> str:
    return f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["{rules}"]
alerting:
  alertmanagers:
    - static_configs: [{{targets: ["{am_url.removeprefix("http://")}"]}}]
scrape_configs:
  - job_name: shop
    static_configs: [{{targets: ["127.0.0.1:{app_port}"]}}]
"""


RULES = """
groups:
  - name: shop
    rules:
      - alert: CheckoutErrors
        expr: rate(shop_errors_total[10s]) > 0
        labels: {severity: page}
        annotations: {summary: "checkout is failing"}
"""


def _alertmanager_yml(warroom_url: str) -> str:
    return f"""
route:
  receiver: warroom
  group_by: [alertname]
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 1h
receivers:
  - name: warroom
    webhook_configs:
      - url: {warroom_url}/api/v1/alerts
        send_resolved: true
        http_config:
          authorization: {{type: Bearer, credentials: {TOKEN}}}
"""


def _wait_for_report(url: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        items = httpx.get(f"{url}/api/v1/investigations", headers=AUTH, timeout=5).json()["items"]
        done = [i for i in items if i["status"] in FINAL]
        if done:
            return done[0]
        time.sleep(0.5)
    raise AssertionError(f"no finished investigation within {WAIT_S} s: {items}")


def test_an_alert_travels_from_prometheus_through_alertmanager_to_a_report(
    tmp_path: Path, shop_app: int
) -> None:
    warroom_port = free_port()
    warroom_url = f"http://127.0.0.1:{warroom_port}"
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    with alertmanager(tmp_path, _alertmanager_yml(warroom_url)) as am_url:
        settings = _prometheus_yml(shop_app, am_url, rules)
        with prometheus(tmp_path, settings=settings) as prom_url:
            command = [
                sys.executable, "-m", "warroom.cli", "serve", "--port", str(warroom_port),
                "--prometheus", prom_url, "--data-dir", str(tmp_path / "serve"),
                "--workers", "1",
            ]  # fmt: skip
            env = {**os.environ, "WARROOM_API_TOKENS": TOKEN}
            with running(command, f"{warroom_url}/healthz", tmp_path / "serve.log", env):
                began = time.monotonic()
                finished = _wait_for_report(warroom_url)
                seconds = time.monotonic() - began
                page = httpx.get(f"{warroom_url}{finished['links']['page']}", headers=AUTH)
                anonymous = httpx.get(f"{warroom_url}/api/v1/investigations")
    assert finished["status"] in ("done", "inconclusive"), finished
    assert finished["service"] == "checkout" and seconds < WAIT_S
    assert page.status_code == 200 and "checkout" in page.text
    assert anonymous.status_code == 401


def _serve_process(port: int, sources: list[str], data_dir: Path, log: Path) -> Any:
    command = [sys.executable, "-m", "warroom.cli", "serve", "--port", str(port), *sources]
    command += ["--data-dir", str(data_dir), "--workers", "1"]
    env = {**os.environ, "WARROOM_API_TOKENS": TOKEN}
    return running(command, f"http://127.0.0.1:{port}/healthz", log, env)


def _status(url: str, investigation: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/api/v1/investigations/{investigation}", headers=AUTH, timeout=5)
    return answer.json()


def _finished(url: str, investigation: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        body = _status(url, investigation)
        if body["status"] in FINAL:
            return body
        time.sleep(0.2)
    raise AssertionError(f"{investigation} not finished within {WAIT_S} s")


def _same_answer(report: dict[str, Any]) -> dict[str, Any]:
    """What must not change between two runs of one investigation (not its timing)."""
    keep = ("culprit", "candidates", "confidence", "confidence_raw", "missing_evidence")
    return {k: report[k] for k in keep}


def test_a_server_sigkilled_mid_investigation_finishes_it_after_restart_with_the_same_report(
    tmp_path: Path,
) -> None:
    from loopback import Loopback, Reply
    from warroom.bench.live import openmetrics
    from warroom.gym import simulator

    case = simulator.generate("shop", "cpu-hog", 1)
    window = case.incident.window
    request = {"service": case.incident.symptom_service, "start": window.start, "end": window.end}
    # A slow log backend with nothing to say: it keeps the investigation running for seconds,
    # long enough to kill the server in the middle of it.
    empty = {"status": "success", "data": {"resultType": "streams", "result": []}}
    slow = {"/loki/api/v1/query_range": Reply(empty, delay_s=1.5)}
    with prometheus(tmp_path, backfill=openmetrics(case.store)) as prom, Loopback(slow) as loki:
        sources = ["--prometheus", prom, "--loki", loki.url]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with _serve_process(port, sources, tmp_path / "a", tmp_path / "a1.log") as first:
            posted = httpx.post(f"{url}/api/v1/investigations", json=request, headers=AUTH)
            investigation = posted.json()["id"]
            deadline = time.monotonic() + WAIT_S
            while _status(url, investigation)["status"] != "running":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            time.sleep(0.5)  # inside the fetches now
            first.kill()  # SIGKILL: no shutdown, no cleanup
            first.wait(5)
        with _serve_process(port, sources, tmp_path / "a", tmp_path / "a2.log"):
            resumed = _finished(url, investigation)
        other = free_port()
        again = f"http://127.0.0.1:{other}"
        with _serve_process(other, sources, tmp_path / "b", tmp_path / "b.log"):
            posted = httpx.post(f"{again}/api/v1/investigations", json=request, headers=AUTH)
            uninterrupted = _finished(again, posted.json()["id"])
    case.store.close()
    with sqlite3.connect(tmp_path / "a" / "warroom.db") as db:
        (attempts,) = db.execute("SELECT attempts FROM investigations").fetchone()
    assert attempts == 2  # it really was running when killed, and ran again
    assert resumed["status"] == uninterrupted["status"] != "failed"
    assert _same_answer(resumed["report"]) == _same_answer(uninterrupted["report"])
