"""The pid file a crashed run leaves: `kill_recorded` stops what it names by pid and start time
(redis-server rewrites its command line and environment, so neither can name the run), and
leaves a process alone whose pid was reused."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from warroom.gym.live.processes import PID_FILE, kill_recorded, record_pids


def test_a_recorded_process_is_stopped_though_nothing_in_it_names_the_run(tmp_path: Path) -> None:
    proc = subprocess.Popen(["sleep", "60"], env={})  # no marker in its command or environment
    try:
        record_pids(tmp_path, {"redis": proc.pid})
        assert kill_recorded(tmp_path) == [f"stopped redis (pid {proc.pid})"]
        assert proc.wait(5) is not None and not (tmp_path / PID_FILE).exists()
    finally:
        proc.kill()
        proc.wait(5)


def test_a_reused_pid_is_left_alone(tmp_path: Path) -> None:
    proc = subprocess.Popen(["sleep", "60"])
    try:
        record_pids(tmp_path, {"redis": proc.pid})
        entries = json.loads((tmp_path / PID_FILE).read_text())
        entries["redis"]["started"] -= 1  # another process had this pid when it was recorded
        (tmp_path / PID_FILE).write_text(json.dumps(entries))
        assert kill_recorded(tmp_path) == [] and proc.poll() is None
    finally:
        proc.kill()
        proc.wait(5)
