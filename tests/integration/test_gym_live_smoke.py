"""The live gym's CI smoke: `warroom gym live` with 3 episodes of a fixed seed (a resource
fault, a dependency fault, a no-fault control) on the real stack (the shop's processes in
cgroups, PostgreSQL, Redis, the exporters, Prometheus, Alertmanager, `warroom serve`), as a user
runs it. It checks that every episode is injected, investigated and healed, that each kept case
folder replays offline to the culprit the live report named, and that nothing is left running
(no process of the run, no nft table, no cgroup, no mount).

Accuracy is not asserted here: it is measured over 24+ episodes (BENCHMARKS.md). Needs root
(cgroups, nftables, tmpfs) and the servers scripts/install-servers.sh installs; skips naming what
is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from warroom.gym.live import cgroups
from warroom.gym.live.stack import RUN_MARKER

BASE_PORT = 26000  # away from the default 18000, where a developer's own run may be up
BINARIES = ("prometheus", "prometheus-alertmanager", "redis-server", "stress-ng", "nft",
            "prometheus-node-exporter", "prometheus-redis-exporter",
            "prometheus-postgres-exporter")  # fmt: skip
RUN_TIMEOUT_S = 1500


def _missing() -> str | None:
    reason = cgroups.available()
    if reason:
        return reason
    absent = [b for b in BINARIES if shutil.which(b) is None]
    if absent:
        return f"not installed: {', '.join(absent)} (scripts/install-servers.sh)"
    return None


def _warroom(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "warroom.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    run = tmp_path_factory.mktemp("gym-live") / "run"
    done = _warroom(
        "gym", "live", "--episodes", "3", "--seed", "7", "--faults", "cpu-hog,cache-down",
        "--warm-up", "180", "--quiet", "60", "--page-wait", "120",
        "--base-port", str(BASE_PORT), "--run-dir", str(run), "--json",
        timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
    return run, json.loads(done.stdout)


def test_every_episode_is_injected_investigated_and_healed(
    smoke: tuple[Path, dict[str, Any]],
) -> None:
    _, summary = smoke
    episodes = summary["episodes"]
    kinds = [e["plan"]["kind"] for e in episodes]
    assert sorted(kinds[:2]) == ["cache-down", "cpu-hog"] and len(episodes) == 3
    control = episodes[2]
    assert control["plan"]["target"] is None and control["score"]["false_alarm"] in (True, False)
    for episode in episodes:
        assert episode["seconds_to_report"] is not None, episode
        assert episode["healed_in_s"] is not None, episode["notes"]  # healthy again
        assert not [n for n in episode["notes"] if "failed" in n], episode["notes"]
        truth = json.loads((Path(episode["case_dir"]) / "truth.json").read_text())
        assert truth["truth"]["service"] == episode["plan"]["target"]
    assert summary["cases"] == 3 and summary["paged"] == sum(e["paged"] for e in episodes)


def test_each_kept_case_replays_offline_to_the_live_culprit(
    smoke: tuple[Path, dict[str, Any]],
) -> None:
    run, summary = smoke
    for episode in summary["episodes"]:
        case = Path(episode["case_dir"])
        done = _warroom("investigate", "--dataset", "files", "--root", str(case.parent),
                        "--case", case.name, "--json")  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        report = json.loads(done.stdout)
        report = report.get("report", report)
        live = episode["score"]["top"]
        replayed = [c["service"] for c in report["candidates"]]
        assert replayed[:1] == [t[0] for t in live[:1]], (episode["plan"]["id"], live, replayed)


def test_nothing_of_the_run_is_left_behind(smoke: tuple[Path, dict[str, Any]]) -> None:
    run, _ = smoke
    ours = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"{RUN_MARKER}={run}".encode() in environ:
            ours.append(proc.name)
    assert ours == [], f"processes of the run still running: {ours}"
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert str(BASE_PORT) not in tables, tables
    left = [str(p) for d in cgroups.parent_dirs().values() for p in d.glob(f"{BASE_PORT}-*")]
    assert left == [], left
    with open("/proc/mounts") as mounts:
        assert str(run) not in mounts.read()
    assert os.path.isdir(run / "cases")
