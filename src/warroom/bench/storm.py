"""`warroom bench storm`: an alert storm against a real `warroom serve` (uvicorn on 127.0.0.1,
SQLite in a temporary folder): N notifications in G groups, firing repeats and resolves, sent
from a few client threads while the workers investigate. Measured: every notification
persisted (rows = sent), exactly one investigation per group, the webhook's answer latency
(p50, p99) and the whole storm's seconds.

The investigations run the live runner against a Prometheus address where nothing listens: each
fails its fetches at once and ends inconclusive, so the workers are busy with real pipeline
runs on empty data, not with a fake. Each investigation runs in a child process (see
server/children.py), so its work does not hold the server's GIL; against a live backend an
investigation takes longer, which this bench does not measure.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from warroom.bench.servers import free_port

TOKEN = "storm-token"
T0 = "2026-12-03T03:00:00.000000000Z"


@dataclass(frozen=True)
class StormResult:
    """What the storm did to the server."""

    sent: int
    groups: int
    accepted: int
    persisted: int
    investigations: int
    ended_during: int  # investigations that ran to an end while the storm was being sent
    ack_p50_ms: float
    ack_p99_ms: float
    ack_max_ms: float
    seconds: float
    errors: int


def notification(group: int, repeat: int, resolved: bool) -> bytes:
    """An Alertmanager v4 notification of one alert of group `group`."""
    alert = {
        "status": "resolved" if resolved else "firing",
        "labels": {"alertname": "Errors", "service": f"svc-{group}", "severity": "page"},
        "annotations": {"summary": f"repeat {repeat}"},
        "startsAt": T0,
        "endsAt": "2026-12-03T03:20:00Z" if resolved else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": f"{group:016x}",
    }
    body = {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="Errors", group="{group}"}}',
        "truncatedAlerts": 0,
        "status": alert["status"],
        "receiver": "warroom",
        "groupLabels": {"alertname": "Errors"},
        "commonLabels": alert["labels"],
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [alert],
    }
    return json.dumps(body).encode()


def run_storm(
    notifications: int = 1000,
    groups: int = 50,
    clients: int = 4,
    progress: Callable[[str], None] | None = None,
) -> StormResult:
    """Start a server, send the storm, wait for the queue to drain, count."""
    import uvicorn

    from warroom.cli.serve import build

    with tempfile.TemporaryDirectory(prefix="warroom-storm-") as scratch:
        port, dead = free_port(), free_port()
        app, url = _app(build, Path(scratch), port, dead)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            _ready(url)
            began = time.monotonic()
            latencies, errors = _send(url, notifications, groups, clients, progress)
            seconds = time.monotonic() - began
            counts = _counts(app)
        finally:
            server.should_exit = True
            thread.join(30)
    ordered = sorted(latencies)
    return StormResult(
        sent=notifications,
        groups=groups,
        accepted=len(latencies),
        persisted=counts[0],
        investigations=counts[1],
        ended_during=counts[2],
        ack_p50_ms=round(statistics.median(ordered) * 1000, 1) if ordered else 0.0,
        ack_p99_ms=round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 1) if ordered else 0.0,
        ack_max_ms=round(ordered[-1] * 1000, 1) if ordered else 0.0,
        seconds=round(seconds, 2),
        errors=errors,
    )


def _app(build: Any, scratch: Path, port: int, dead: int) -> tuple[Any, str]:
    import os

    os.environ["WARROOM_API_TOKENS"] = TOKEN
    urls: dict[str, str | None] = {"prometheus": f"http://127.0.0.1:{dead}"}
    app, url = build(None, "127.0.0.1", port, scratch, None, 2, None, False, urls)
    return app, url


def _ready(url: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready within 15 s")


def _send(
    url: str,
    total: int,
    groups: int,
    clients: int,
    progress: Callable[[str], None] | None,
) -> tuple[list[float], int]:
    per_group = max(1, total // groups)
    # Each group: repeats of the firing alert, its last notification the resolve.
    plan = [(g, r, r == per_group - 1) for r in range(per_group) for g in range(groups)][:total]
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def post(item: tuple[int, int, bool]) -> None:
        nonlocal errors
        with httpx.Client(timeout=30) as client:
            started = time.monotonic()
            answer = client.post(
                f"{url}/api/v1/alerts", content=notification(*item), headers=headers
            )
            took = time.monotonic() - started
        with lock:
            if answer.status_code == 200:
                latencies.append(took)
            else:
                errors += 1
            if progress and len(latencies) % 100 == 0:
                progress(f"{len(latencies)} of {total} notifications answered")

    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(post, plan))
    return latencies, errors


def _counts(app: Any) -> tuple[int, int, int]:
    from warroom.server.model import Status

    repository = app.state.service.repository
    waiting = repository.count(status=Status.queued) + repository.count(status=Status.running)
    everything = repository.count()
    return repository.notifications_count(), everything, everything - waiting


def as_json(result: StormResult) -> dict[str, Any]:
    """The result as plain data."""
    return asdict(result)
