"""The cgroup exporter for real: `python -m warroom.gym.live.exporter` scraped over HTTP and
parsed by prometheus_client's parser, showing a test cgroup's cAdvisor series with its service
label and a registered volume's filesystem size. Skipped (saying why) without cgroups."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from warroom.gym.live import cgroups
from warroom.gym.live.cgroups import Cgroup
from warroom.gym.live.exporter import service_of

PREFIX = f"{os.getpid()}-"
READY_S = 15.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def group() -> Iterator[Cgroup]:
    reason = cgroups.available()
    if reason is not None:
        pytest.skip(reason)
    made = Cgroup(f"{PREFIX}cart")
    made.create()
    made.set_cpu_limit(0.5)
    made.set_memory_limit(64 << 20)
    sleeper = subprocess.Popen(made.command(["sleep", "30"]))
    try:
        yield made
    finally:
        sleeper.kill()
        sleeper.wait(timeout=5)
        made.remove()


def _scrape(port: int, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        assert process.poll() is None, "the exporter exited"
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
            if answer.status_code == 200:
                return answer.text
        time.sleep(0.1)
    raise AssertionError("the exporter never answered")


def test_a_scrape_shows_the_groups_series_with_the_service_label(
    group: Cgroup, tmp_path: Path
) -> None:
    port = _free_port()
    command = [sys.executable, "-m", "warroom.gym.live.exporter", "--port", str(port),
               "--cgroup-prefix", PREFIX, "--volume", f"cart={tmp_path}"]  # fmt: skip
    process = subprocess.Popen(command)
    try:
        text = _scrape(port, process)
    finally:
        process.terminate()
        process.wait(timeout=5)
    samples = {
        s.name: s
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.labels.get("service") == "cart"
    }
    assert samples["container_spec_cpu_quota"].value == 50_000
    assert samples["container_spec_memory_limit_bytes"].value == 64 << 20
    assert samples["container_cpu_usage_seconds_total"].labels["container"] == "cart"
    for name in ("container_cpu_cfs_periods_total", "container_cpu_cfs_throttled_periods_total",
                 "container_cpu_cfs_throttled_seconds_total", "container_memory_rss",
                 "container_memory_working_set_bytes", "container_memory_usage_bytes",
                 "container_oom_events_total", "container_spec_cpu_period"):  # fmt: skip
        assert name in samples
    assert samples["container_fs_limit_bytes"].value > 0
    assert samples["container_fs_usage_bytes"].labels["device"] == str(tmp_path)


def test_the_run_prefix_comes_off_the_service_name() -> None:
    assert service_of("18000-cart") == "cart"
    assert service_of("run7-payment-gateway", prefix="run7-") == "payment-gateway"
    assert service_of("worker") == "worker"
