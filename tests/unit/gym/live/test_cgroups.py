"""Real cgroup v1 groups: a CPU quota throttles a busy loop, a memory limit OOM-kills a hog,
remove() leaves nothing behind. Skipped (saying why) without root or cgroup v1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from warroom.gym.live import cgroups
from warroom.gym.live.cgroups import Cgroup

pytestmark = pytest.mark.skipif(cgroups.available() is not None, reason=str(cgroups.available()))

BUSY_LOOP = "import time\nend = time.time() + 8\nwhile time.time() < end: pass"
ALLOCATE_200_MIB = "import time\nb = bytearray(200 << 20)\ntime.sleep(5)"


@pytest.fixture
def group() -> Iterator[Cgroup]:
    made = Cgroup(f"test-{os.getpid()}")
    made.create()
    try:
        yield made
    finally:
        made.remove()
        assert not any(d.exists() for d in made.directories)


def _started(group: Cgroup, code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(group.command([sys.executable, "-c", code]))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait(timeout=5)


def test_a_cpu_quota_holds_a_busy_loop_to_it_and_counts_the_throttling(group: Cgroup) -> None:
    group.set_cpu_limit(0.2)
    proc = _started(group, BUSY_LOOP)
    try:
        time.sleep(0.3)  # the shell has exec'd python: the loop runs inside the group
        assert proc.pid in group.pids()
        before = group.stats()
        time.sleep(2.0)
        after = group.stats()
    finally:
        _stop(proc)
    cores = (after.cpu_usage_s - before.cpu_usage_s) / 2.0
    assert 0.05 < cores <= 0.3
    assert after.cpu_throttled_periods > before.cpu_throttled_periods
    assert after.cpu_quota_us == 20_000 and after.cpu_period_us == cgroups.CFS_PERIOD_US


def test_a_memory_limit_ends_a_hog_in_an_oom_kill(group: Cgroup) -> None:
    group.set_memory_limit(64 << 20)
    assert group.stats().memory_limit_bytes == 64 << 20
    before = group.stats().oom_kills
    proc = _started(group, ALLOCATE_200_MIB)
    try:
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            _stop(proc)
    assert code == -9
    assert group.stats().oom_kills == before + 1


def test_remove_returns_live_processes_to_the_parent_first(group: Cgroup) -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        group.add(proc.pid)
        assert group.pids() == [proc.pid]
        group.remove()
        assert not group.exists() and proc.poll() is None  # moved out alive, not killed
    finally:
        _stop(proc)


def test_a_name_that_could_climb_the_hierarchy_is_refused() -> None:
    with pytest.raises(cgroups.CgroupError, match="bad cgroup name"):
        Cgroup("../escape")
