"""`warroom serve --executor ray` end to end: a real server hands an API request's
investigation to a local Ray it starts, the report comes back through the API, and stopping the
server (SIGTERM) shuts that Ray down: no Ray process is left. The investigation runs against a
Prometheus address where nothing listens, so it ends inconclusive: a real pipeline run on empty
data, not a fake."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from integration.servers import free_port, running

pytest.importorskip("ray", reason="ray is not installed (pip install 'warroom[ray]')")
pytestmark = pytest.mark.slow

TOKEN = "ray-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WAIT_S = 120.0


def _ray_processes(ray_tmp: Path) -> list[int]:
    """Processes started with this test's RAY_TMPDIR (Ray's agents do not name it in argv)."""
    marker = f"RAY_TMPDIR={ray_tmp}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            with contextlib.suppress(OSError):
                if marker in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
    return found


def _ray_gone(ray_tmp: Path, wait_s: float = 30.0) -> list[int]:
    """What is still running of that Ray after up to `wait_s` (its agents poll, then exit)."""
    deadline = time.monotonic() + wait_s
    while (left := _ray_processes(ray_tmp)) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in left:  # leave nothing behind, whatever the assertion says
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


def test_serve_runs_investigations_as_ray_tasks_and_stops_its_ray(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ray_tmp = Path("/tmp") / f"wr-ray-{os.getpid()}"  # Ray's socket paths must stay short
    command = [
        sys.executable, "-m", "warroom.cli", "serve", "--port", str(port),
        "--prometheus", f"http://127.0.0.1:{free_port()}", "--executor", "ray",
        "--data-dir", str(tmp_path / "serve"), "--workers", "1",
    ]  # fmt: skip
    env = {**os.environ, "WARROOM_API_TOKENS": TOKEN, "RAY_TMPDIR": str(ray_tmp)}
    with running(command, f"{url}/healthz", tmp_path / "serve.log", env):
        now = time.time()
        request = {"service": "cart", "start": now - 900, "end": now, "symptom": "latency"}
        posted = httpx.post(f"{url}/api/v1/investigations", json=request, headers=AUTH)
        investigation = posted.json()["id"]
        deadline = time.monotonic() + WAIT_S
        while True:
            body = httpx.get(f"{url}/api/v1/investigations/{investigation}", headers=AUTH).json()
            if body["status"] in ("done", "inconclusive", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        during = _ray_processes(ray_tmp)
    after = _ray_gone(ray_tmp)
    log = (tmp_path / "serve.log").read_text(errors="replace")[-1500:]
    assert body["status"] == "inconclusive", (body, log)
    assert "prometheus" in str(body.get("report", {}).get("missing_evidence", "")) or body.get(
        "reason"
    ), body
    assert during, "no Ray process ran during the investigation"
    assert not after, after
