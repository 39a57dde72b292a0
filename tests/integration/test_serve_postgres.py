"""`warroom serve --database postgresql+psycopg://...` end to end, on a real PostgreSQL 15: an
Alertmanager webhook and an API request persisted and investigated, the rows in PostgreSQL's
own tables, and all of it still there, served the same, after the server is SIGKILLed and a new
one starts on the same database. The investigations run against a Prometheus address where
nothing listens: they fail their fetches at once and end inconclusive, which is a real run of
the pipeline on empty data (the live path against a real Prometheus is test_serve_live.py).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from integration.postgres import postgres_server
from integration.servers import free_port, running

TOKEN = "pg-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FINAL = {"done", "inconclusive", "failed"}
WAIT_S = 60.0

pytestmark = pytest.mark.slow

WEBHOOK = {
    "version": "4",
    "groupKey": '{}:{alertname="CheckoutErrors"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "warroom",
    "groupLabels": {"alertname": "CheckoutErrors"},
    "commonLabels": {"alertname": "CheckoutErrors", "service": "checkout"},
    "commonAnnotations": {},
    "externalURL": "http://127.0.0.1:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "CheckoutErrors", "service": "checkout"},
            "annotations": {"summary": "checkout is failing"},
            "startsAt": "2026-12-04T03:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://127.0.0.1:9090/graph",
            "fingerprint": "c0ffee0000000001",
        }
    ],
}


def _serve(port: int, database: str, data_dir: Path, log: Path) -> Any:
    dead_prometheus = f"http://127.0.0.1:{free_port()}"
    command = [
        sys.executable, "-m", "warroom.cli", "serve", "--port", str(port),
        "--prometheus", dead_prometheus, "--database", database,
        "--data-dir", str(data_dir), "--workers", "1",
    ]  # fmt: skip
    env = {**os.environ, "WARROOM_API_TOKENS": TOKEN}
    return running(command, f"http://127.0.0.1:{port}/healthz", log, env)


def _all_finished(url: str, expected: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        answer = httpx.get(f"{url}/api/v1/investigations", headers=AUTH, timeout=5).json()
        items = answer["items"]
        if len(items) == expected and all(i["status"] in FINAL for i in items):
            return sorted(items, key=lambda i: i["id"])
        time.sleep(0.3)
    raise AssertionError(f"not {expected} finished investigations within {WAIT_S} s: {items}")


def test_serve_keeps_notifications_and_reports_in_postgresql_across_a_sigkill(
    tmp_path: Path,
) -> None:
    with postgres_server() as pg:
        database = pg.create_database("warroom_serve")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with _serve(port, database, tmp_path / "a", tmp_path / "a.log") as first:
            hook = httpx.post(f"{url}/api/v1/alerts", json=WEBHOOK, headers=AUTH, timeout=5)
            repeat = httpx.post(f"{url}/api/v1/alerts", json=WEBHOOK, headers=AUTH, timeout=5)
            now = time.time()
            request = {"service": "cart", "start": now - 900, "end": now, "symptom": "latency"}
            api = httpx.post(f"{url}/api/v1/investigations", json=request, headers=AUTH)
            before = _all_finished(url, 2)
            reports = {i["id"]: _report(url, i["id"]) for i in before}
            first.kill()  # SIGKILL: nothing flushed on the way out
            first.wait(5)
        with psycopg.connect(pg.admin.replace("dbname=postgres", "dbname=warroom_serve")) as db:
            notifications = db.execute(
                "SELECT count(*), count(processed_at) FROM notifications"
            ).fetchone()
            services = db.execute("SELECT service FROM investigations ORDER BY service").fetchall()
        # A new server, another data dir: everything it shows comes from PostgreSQL.
        with _serve(port, database, tmp_path / "b", tmp_path / "b.log"):
            after = _all_finished(url, 2)
            reread = {i["id"]: _report(url, i["id"]) for i in after}
    assert hook.status_code == repeat.status_code == 200 and api.status_code in (200, 201, 202)
    # every body kept and processed (two deliveries, the API request); the repeat joined
    assert notifications == (3, 3)
    assert [s for (s,) in services] == ["cart", "checkout"]
    assert [(i["id"], i["status"]) for i in after] == [(i["id"], i["status"]) for i in before]
    assert reread == reports


def _report(url: str, investigation: str) -> str:
    answer = httpx.get(f"{url}/api/v1/investigations/{investigation}", headers=AUTH, timeout=5)
    assert answer.status_code == 200, answer.text
    return json.dumps(answer.json(), sort_keys=True)
