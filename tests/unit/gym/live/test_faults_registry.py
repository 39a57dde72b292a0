"""The cleanup registry for real: things registered by one process are undone by another (a
crashed run's --cleanup): a stopped process continued, a child's process group killed, an nft
table, a cgroup, a tmpfs mount and a file removed; a second cleanup does nothing; a pid that
now names another process is left alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from warroom.gym.live import cgroups, nft
from warroom.gym.live.cgroups import Cgroup
from warroom.gym.live.nft import Nft
from warroom.gym.live.registry import Registry, cleanup

NEEDS = cgroups.available() or nft.available()
machine = pytest.mark.skipif(NEEDS is not None, reason=str(NEEDS))


def _state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


def _cleanup_in_a_new_process(run_dir: Path) -> list[str]:
    code = "import json, sys; from warroom.gym.live.registry import cleanup; "
    code += "print(json.dumps(cleanup(sys.argv[1])))"
    done = subprocess.run(
        [sys.executable, "-c", code, str(run_dir)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.kill(proc.pid, 18)  # SIGCONT, then it can die
            proc.kill()
        proc.wait(timeout=5)


def _sleeper(sleepers: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    sleepers.append(proc)
    return proc


@machine
def test_a_new_process_undoes_everything_registered_and_a_second_cleanup_is_a_no_op(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    registry = Registry(tmp_path)
    stopped, child = _sleeper(sleepers), _sleeper(sleepers)
    os.kill(stopped.pid, 19)  # SIGSTOP
    registry.add_stopped(stopped.pid)
    registry.add_child(child.pid)
    table = Nft(f"warroom_gym_test_{os.getpid()}")
    table.add_reject(9)
    registry.add_nft_table(table.table)
    group = Cgroup(f"test-registry-{os.getpid()}")
    group.create()
    registry.add_cgroup(group)
    volume = tmp_path / "volume"
    volume.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(volume)], check=True)
    registry.add_mount(volume)
    filler = tmp_path / "filler"
    filler.write_bytes(b"x")
    registry.add_file(filler)
    assert _state(stopped.pid) == "T"

    try:
        done = _cleanup_in_a_new_process(tmp_path)
    finally:
        if os.path.ismount(volume):
            subprocess.run(["umount", str(volume)], check=False)
        table.remove_table()
        group.remove()

    assert len(done) == 6, done
    assert _state(stopped.pid) in "SR"  # continued: sleeping again
    assert child.wait(timeout=5) == -15  # SIGTERM to its group
    assert not table.exists() and not group.exists()
    assert not os.path.ismount(volume) and not filler.exists()
    assert Registry(tmp_path).entries() == {}
    assert cleanup(tmp_path) == []


def test_a_pid_that_now_names_another_process_is_not_signalled(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    child = _sleeper(sleepers)
    registry = Registry(tmp_path)
    registry.add_child(child.pid)
    saved = json.loads(registry.path.read_text())
    saved["children"][0]["started"] -= 1  # as if the registered one died and the pid came back
    registry.path.write_text(json.dumps(saved))
    assert cleanup(tmp_path) == []
    assert child.poll() is None


def test_forgetting_leaves_nothing_to_undo_and_adding_twice_keeps_one(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    registry.add_file(tmp_path / "a")
    registry.add_file(tmp_path / "a")
    registry.add_nft_table("warroom_gym_x")
    assert Registry(tmp_path).entries() == {
        "files": [str((tmp_path / "a").resolve())],
        "nft_tables": ["warroom_gym_x"],
    }
    registry.forget_file(tmp_path / "a")
    registry.forget_nft_table("warroom_gym_x")
    assert Registry(tmp_path).entries() == {}
