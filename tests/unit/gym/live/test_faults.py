"""The live faults against a fake stack (contracts.Processes) and real small things: stress-ng
in a real cgroup, real nft rules, a real tmpfs volume, the real edge proxy, HTTP hooks on a
recording server. Each part skips (saying why) where the machine cannot do it."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from warroom.gym.faults import CATALOGUE
from warroom.gym.live import cgroups, faults, nft
from warroom.gym.live.cgroups import Cgroup
from warroom.gym.live.contracts import EDGES, Layout, ServiceSettings
from warroom.gym.live.episodes import TARGETS
from warroom.gym.live.faults import FaultError, make_fault
from warroom.gym.live.registry import Registry

NO_CGROUPS = cgroups.available() or (None if shutil.which("stress-ng") else "no stress-ng")
NO_NFT = nft.available()


@dataclass
class FakeStack:
    """contracts.Processes over a layout nobody else uses; restarts are recorded."""

    layout: Layout
    run_dir: Path
    pids: dict[str, int] = field(default_factory=dict)
    restarts: list[tuple[str, str | None, ServiceSettings | None]] = field(default_factory=list)

    def pid(self, name: str) -> int:
        return self.pids[name]

    def restart(
        self, name: str, *, version: str | None = None, settings: ServiceSettings | None = None
    ) -> None:
        self.restarts.append((name, version, settings))

    def postgres_dsn(self) -> str:
        return "host=127.0.0.1 port=1 user=postgres dbname=shop"

    def cgroup_name(self, name: str) -> str:
        return f"{self.layout.base_port}-{name}"

    def changes(self) -> list[dict[str, Any]]:
        lines = (self.run_dir / "changes.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]


def _free_layout() -> Layout:
    for _ in range(20):
        layout = Layout(random.randrange(20_000, 55_000, 1000))
        ports = [layout.port("proxy-control"), layout.port("payment-gateway")]
        ports += [layout.port(s) for s in ("cart", "worker")]
        ports += [layout.edge_port(a, b) for a, b in EDGES]
        if all(_free(p) for p in ports):
            return layout
    pytest.skip("no free loopback port range")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def stack(tmp_path: Path) -> FakeStack:
    return FakeStack(_free_layout(), tmp_path)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    made = Registry(tmp_path)
    yield made
    made.cleanup()  # whatever a failing test left


class Hooks:
    """A recording HTTP server standing in for a shop service's /_chaos hooks."""

    def __init__(self, port: int) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hooks.posts.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def hooks_on(port: int) -> Iterator[Hooks]:
    server = Hooks(port)
    try:
        yield server
    finally:
        server.close()


# --- ground truth ----------------------------------------------------------------------------


def test_every_live_fault_kind_of_the_episodes_has_an_injector_with_its_truth() -> None:
    assert set(faults.KINDS) == set(TARGETS)
    for kind, targets in TARGETS.items():
        for target in targets:
            fault = make_fault(kind, target, random.Random(1))
            assert (fault.name, fault.target) == (kind, target)
            assert fault.fault_type == CATALOGUE[kind][0]
            assert fault.describe().startswith(kind)
    assert make_fault("network-delay", "cart", random.Random(5)) == make_fault(
        "network-delay", "cart", random.Random(5)
    )


def test_the_red_herrings_have_no_fault_type_and_unknown_kinds_are_refused() -> None:
    assert faults.HarmlessDeploy("cart").fault_type == "none"
    assert faults.BatchJob().fault_type == "none" and faults.BatchJob().target is None
    with pytest.raises(FaultError, match="no live fault 'dns-failure'"):
        make_fault("dns-failure", "cart", random.Random(0))


# --- changes ----------------------------------------------------------------------------------


def test_a_bad_deploy_restarts_on_the_bad_version_with_deploy_events(
    stack: FakeStack, registry: Registry
) -> None:
    fault = make_fault("bad-deploy", "cart", random.Random(0))
    fault.inject(stack, registry)
    fault.heal(stack, registry)
    assert [(n, v) for n, v, _ in stack.restarts] == [("cart", "v2-bad"), ("cart", "v1")]
    events = stack.changes()
    assert [(e["service"], e["kind"]) for e in events] == [("cart", "deploy")] * 2
    assert "v2-bad" in events[0]["description"] and isinstance(events[0]["time"], float)


def test_a_bad_config_push_restarts_with_the_broken_setting_and_back(
    stack: FakeStack, registry: Registry
) -> None:
    fault = make_fault("bad-config-push", "payment", random.Random(0))
    fault.inject(stack, registry)
    fault.heal(stack, registry)
    (_, _, bad), (_, _, good) = stack.restarts
    assert bad is not None and bad.client_timeout_s == 0.001
    assert good == ServiceSettings()
    assert [e["kind"] for e in stack.changes()] == ["config", "config"]
    assert "client_timeout_s: 2.0 -> 0.001" in stack.changes()[0]["description"]


def test_a_harmless_deploy_restarts_the_same_version(stack: FakeStack, registry: Registry) -> None:
    faults.HarmlessDeploy("shipping").inject(stack, registry)
    assert stack.restarts == [("shipping", "v1", None)]
    assert stack.changes()[0]["kind"] == "deploy"


# --- hooks ------------------------------------------------------------------------------------


def test_the_hook_faults_post_to_their_targets_and_heal_back(
    stack: FakeStack, registry: Registry
) -> None:
    gateway, worker = stack.layout.port("payment-gateway"), stack.layout.port("worker")
    with hooks_on(gateway) as at_gateway, hooks_on(worker) as at_worker:
        outage = make_fault("third-party-outage", "payment-gateway", random.Random(0))
        lag = make_fault("queue-consumer-lag", "worker", random.Random(0))
        for fault in (outage, lag):
            fault.inject(stack, registry)
            fault.heal(stack, registry)
    assert at_gateway.posts == [("/_chaos/outage", {"mode": "errors"}),
                                ("/_chaos/outage", {"mode": "ok"})]  # fmt: skip
    (path, slow), (_, healed) = at_worker.posts
    assert path == "/_chaos/slow" and 1500 <= slow["ms_per_message"] <= 3000
    assert healed == {"ms_per_message": 0}


def test_a_memory_leak_starts_again_after_its_oom_restart(
    stack: FakeStack, registry: Registry
) -> None:
    stack.pids["cart"] = 100
    with hooks_on(stack.layout.port("cart")) as at_cart:
        fault = make_fault("memory-leak", "cart", random.Random(0))
        fault.inject(stack, registry)
        stack.pids["cart"] = 101  # OOM-killed, restarted by the stack
        deadline = time.monotonic() + 5
        while len(at_cart.posts) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        fault.heal(stack, registry)
    assert [p for p, _ in at_cart.posts] == ["/_chaos/leak"] * 2
    assert stack.restarts == [("cart", None, None)]


def test_a_hook_that_does_not_answer_fails_the_inject_naming_the_fault(
    stack: FakeStack, registry: Registry
) -> None:
    fault = make_fault("third-party-outage", "payment-gateway", random.Random(0))
    with pytest.raises(FaultError, match="third-party-outage on payment-gateway: POST"):
        fault.inject(stack, registry)


# --- the network ------------------------------------------------------------------------------


def test_a_network_delay_sets_every_edge_of_the_target_at_the_real_proxy(
    stack: FakeStack, registry: Registry
) -> None:
    command = [sys.executable, "-m", "warroom.gym.live.proxy",
               "--layout-base", str(stack.layout.base_port)]  # fmt: skip
    proxy = subprocess.Popen(command)
    control = f"http://127.0.0.1:{stack.layout.port('proxy-control')}/edges"
    try:
        _wait_for(control, proxy)
        fault = make_fault("network-delay", "cart", random.Random(0))
        fault.inject(stack, registry)
        delayed = _delayed_edges(control)
        fault.heal(stack, registry)
        healed = _delayed_edges(control)
    finally:
        proxy.terminate()
        proxy.wait(timeout=5)
    assert delayed == {("frontend", "cart"), ("checkout", "cart"), ("cart", "redis")}
    assert healed == set()


def _delayed_edges(control: str) -> set[tuple[str, str]]:
    edges = httpx.get(control, timeout=5).json()["edges"]
    return {(e["caller"], e["callee"]) for e in edges if e["delay_ms"] > 0}


def _wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert process.poll() is None, "the proxy exited"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


@pytest.mark.skipif(NO_NFT is not None, reason=str(NO_NFT))
def test_packet_loss_drops_on_every_edge_port_of_the_target_both_ways(
    stack: FakeStack, registry: Registry
) -> None:
    fault = make_fault("packet-loss", "cart", random.Random(0))
    table = faults.nft_table(stack)
    try:
        fault.inject(stack, registry)
        rules = table.rules()
        assert registry.entries()["nft_tables"] == [table.table]
    finally:
        fault.heal(stack, registry)
    ports = {stack.layout.edge_port(a, b) for a, b in faults.edges_of("cart")}
    assert len(rules) == 2 * len(ports) == 6
    assert all(any(f"port {p} " in r for r in rules) for p in ports)
    assert not table.exists() and registry.entries() == {}


# --- resources --------------------------------------------------------------------------------


@pytest.mark.skipif(NO_CGROUPS is not None, reason=str(NO_CGROUPS))
def test_a_cpu_hog_runs_inside_the_targets_cgroup_and_starves_against_its_quota(
    stack: FakeStack, registry: Registry
) -> None:
    group = Cgroup(stack.cgroup_name("cart"))
    group.create()
    group.set_cpu_limit(0.5)
    fault = make_fault("cpu-hog", "cart", random.Random(0))
    assert isinstance(fault, faults.CpuHog)
    try:
        fault.inject(stack, registry)
        pid = fault.pid
        before = group.stats()
        time.sleep(1.0)
        after = group.stats()
        assert len(group.pids()) >= 3  # stress-ng and its two workers
    finally:
        fault.heal(stack, registry)
        group.remove()
    assert after.cpu_usage_s - before.cpu_usage_s <= 0.65
    assert after.cpu_throttled_periods > before.cpu_throttled_periods
    assert not Path(f"/proc/{pid}").exists() and registry.entries() == {}


@pytest.mark.skipif(NO_CGROUPS is not None, reason=str(NO_CGROUPS))
def test_a_cpu_hog_without_the_targets_cgroup_fails_clearly(
    stack: FakeStack, registry: Registry
) -> None:
    with pytest.raises(FaultError, match="cpu-hog on cart.*no cgroup"):
        make_fault("cpu-hog", "cart", random.Random(0)).inject(stack, registry)


@pytest.mark.skipif(NO_CGROUPS is not None, reason=str(NO_CGROUPS))
def test_a_batch_job_runs_outside_every_service_cgroup_and_ends(
    stack: FakeStack, registry: Registry
) -> None:
    job = faults.BatchJob(seconds=30)
    job.inject(stack, registry)
    pid = job.pid
    try:
        own = Path(f"/proc/{pid}/cgroup").read_text()
        assert cgroups.PARENT not in own
    finally:
        job.heal(stack, registry)
    assert not Path(f"/proc/{pid}").exists() and registry.entries() == {}


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_disk_full_fills_the_volume_to_enospc_and_heal_frees_it(
    stack: FakeStack, registry: Registry
) -> None:
    volume = faults.volume_path(stack, "shipping")
    faults.mount_volume(volume, 4, registry)
    fault = make_fault("disk-full", "shipping", random.Random(0))
    try:
        fault.inject(stack, registry)
        with pytest.raises(OSError, match="No space left"):
            (volume / "label-1.pdf").write_bytes(b"x" * 65536)
        fault.heal(stack, registry)
        (volume / "label-2.pdf").write_bytes(b"x" * 65536)
    finally:
        faults.umount_volume(volume, registry)
    assert registry.entries() == {}


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_disk_full_mounts_its_own_small_volume_where_the_stack_did_not(
    stack: FakeStack, registry: Registry
) -> None:
    volume = faults.volume_path(stack, "shipping")
    fault = make_fault("disk-full", "shipping", random.Random(0))
    try:
        fault.inject(stack, registry)
        assert os.path.ismount(volume) and os.statvfs(volume).f_bavail == 0
    finally:
        fault.heal(stack, registry)
    assert not os.path.ismount(volume) and registry.entries() == {}
