"""What the live gym must undo, written down before it is done: cgroups made, nft tables
loaded, processes stopped (SIGSTOP) or started (stress-ng, lock holders), tmpfs volumes mounted,
files written. Kept as JSON in the run dir (`cleanup.json`, replaced atomically on each change,
under a file lock so the stack and a fault may share it), so a crashed run can be undone by a
later process that never saw it.

    registry = Registry(run_dir)
    registry.add_child(proc.pid)           # killed (its process group) by cleanup
    registry.add_stopped(redis_pid)        # sent SIGCONT by cleanup
    registry.forget_child(proc.pid)        # the fault healed itself: nothing left to undo
    cleanup(run_dir)                       # -> ["killed pid 4242 (stress-ng)", ...]

cleanup() is idempotent and each step is independent: one that fails is reported and kept for
the next cleanup, the others still run. A pid is only signalled while it is the same process
that was registered (its start time in /proc matches), never a later one that reused the pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import operator
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from warroom.gym.live.cgroups import Cgroup
from warroom.gym.live.nft import Nft

FILE = "cleanup.json"
KILL_WAIT_S = 3.0
KINDS = ("stopped", "children", "nft_tables", "files", "mounts", "cgroups")  # undo order

Entries = dict[str, list[Any]]


class Registry:
    """The cleanup registry of one run dir."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / FILE

    # -- what to undo -------------------------------------------------------------------------

    def add_cgroup(self, group: Cgroup) -> None:
        """A cgroup to remove (by its absolute directories: a later process may sit elsewhere
        in the hierarchy and would compute other ones)."""
        paths = {c: str(p) for c, p in group.paths.items()}
        self._add("cgroups", {"name": group.name, "paths": paths}, key="name")

    def add_nft_table(self, table: str) -> None:
        self._add("nft_tables", table)

    def add_stopped(self, pid: int) -> None:
        """A process sent SIGSTOP: cleanup sends SIGCONT."""
        self._add("stopped", _process(pid), key="pid")

    def add_child(self, pid: int, group: bool = True) -> None:
        """A process the gym started: cleanup kills it (its whole process group when `group`:
        start it with start_new_session so the group is its own)."""
        self._add("children", {**_process(pid), "group": group}, key="pid")

    def add_mount(self, path: Path) -> None:
        self._add("mounts", str(Path(path).resolve()))

    def add_file(self, path: Path) -> None:
        self._add("files", str(Path(path).resolve()))

    def forget_cgroup(self, name: str) -> None:
        self._remove("cgroups", lambda e: e["name"] == name)

    def forget_nft_table(self, table: str) -> None:
        self._remove("nft_tables", lambda e: e == table)

    def forget_stopped(self, pid: int) -> None:
        self._remove("stopped", lambda e: e["pid"] == pid)

    def forget_child(self, pid: int) -> None:
        self._remove("children", lambda e: e["pid"] == pid)

    def forget_mount(self, path: Path) -> None:
        self._remove("mounts", lambda e: e == str(Path(path).resolve()))

    def forget_file(self, path: Path) -> None:
        self._remove("files", lambda e: e == str(Path(path).resolve()))

    def end_child(self, pid: int) -> str:
        """Kill a registered child now (as cleanup would) and forget it; what was done."""
        entry = next((e for e in self.entries().get("children", []) if e["pid"] == pid), None)
        done = _kill(entry) if entry is not None else ""
        self.forget_child(pid)
        return done

    def continue_stopped(self, pid: int) -> str:
        """SIGCONT a registered stopped process now and forget it; what was done."""
        entry = next((e for e in self.entries().get("stopped", []) if e["pid"] == pid), None)
        done = _continue(entry) if entry is not None else ""
        self.forget_stopped(pid)
        return done

    def entries(self) -> Entries:
        """Everything registered now."""
        with self._locked():
            return self._read()

    def cleanup(self) -> list[str]:
        """Undo everything registered; what was done (and what failed, kept for next time)."""
        done: list[str] = []
        for kind in KINDS:
            for entry in self.entries().get(kind, []):
                try:
                    message = UNDO[kind](entry)
                except Exception as err:  # each step alone: one failure stops no other
                    done.append(f"could not undo {kind} {entry!r}: {err}")
                    continue
                self._remove(kind, functools.partial(operator.eq, entry))
                if message:
                    done.append(message)
        return done

    # -- the file -----------------------------------------------------------------------------

    def _add(self, kind: str, entry: Any, key: str | None = None) -> None:
        with self._locked():
            entries = self._read()
            kept = [e for e in entries.get(kind, []) if not _same_entry(e, entry, key)]
            entries[kind] = [*kept, entry]
            self._write(entries)

    def _remove(self, kind: str, match: Callable[[Any], bool]) -> None:
        with self._locked():
            entries = self._read()
            entries[kind] = [e for e in entries.get(kind, []) if not match(e)]
            self._write(entries)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.run_dir / f"{FILE}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> Entries:
        try:
            loaded = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError:  # a torn file cannot happen (os.replace), a hand-edited one can
            return {}
        return {k: v for k, v in loaded.items() if k in KINDS and isinstance(v, list)}

    def _write(self, entries: Entries) -> None:
        tmp = self.path.with_name(f".{FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({k: v for k, v in entries.items() if v}, indent=1))
        os.replace(tmp, self.path)


def _same_entry(old: Any, new: Any, key: str | None) -> bool:
    """Whether `new` replaces `old` (the same pid or name again: the newer one is kept)."""
    return bool(old[key] == new[key]) if key else bool(old == new)


def cleanup(run_dir: Path) -> list[str]:
    """Undo whatever the run dir's registry holds (see Registry.cleanup)."""
    return Registry(run_dir).cleanup()


# --- undoing one entry (each returns what it did, "" when there was nothing left to do) -----


def _continue(entry: dict[str, Any]) -> str:
    pid = int(entry["pid"])
    if not _same_process(entry):
        return ""
    os.kill(pid, signal.SIGCONT)
    return f"sent SIGCONT to pid {pid} ({entry.get('comm', '?')})"


def _kill(entry: dict[str, Any]) -> str:
    pid = int(entry["pid"])
    if not _same_process(entry):
        return ""
    group = bool(entry.get("group")) and _pgid(pid) == pid

    def send(signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(pid, signum)
            else:
                os.kill(pid, signum)

    send(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
    send(signal.SIGTERM)
    deadline = time.monotonic() + KILL_WAIT_S
    while _same_process(entry) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _same_process(entry):
        send(signal.SIGKILL)
    return f"killed pid {pid} ({entry.get('comm', '?')}){' and its group' if group else ''}"


def _remove_nft_table(table: str) -> str:
    return f"removed nft table inet {table}" if Nft(table).remove_table() else ""


def _delete_file(path: str) -> str:
    try:
        Path(path).unlink()
    except FileNotFoundError:
        return ""
    return f"deleted {path}"


def _umount(path: str) -> str:
    if not os.path.ismount(path):
        return ""
    done = subprocess.run(["umount", path], capture_output=True, text=True, timeout=20)
    if done.returncode != 0:  # busy: detach it now, the kernel frees it when unused
        lazy = subprocess.run(["umount", "-l", path], capture_output=True, text=True, timeout=20)
        if lazy.returncode != 0:
            raise OSError(f"umount {path}: {lazy.stderr.strip() or done.stderr.strip()}")
    return f"unmounted {path}"


def _remove_cgroup(entry: dict[str, Any]) -> str:
    group = Cgroup.at(str(entry["name"]), {c: Path(p) for c, p in entry["paths"].items()})
    if not any(d.exists() for d in group.directories):
        return ""
    group.remove()
    return f"removed cgroup {group.name}"


UNDO: dict[str, Callable[[Any], str]] = {
    "stopped": _continue,
    "children": _kill,
    "nft_tables": _remove_nft_table,
    "files": _delete_file,
    "mounts": _umount,
    "cgroups": _remove_cgroup,
}


# --- which process a pid is -----------------------------------------------------------------


def _process(pid: int) -> dict[str, Any]:
    """A pid with what tells it apart from a later process given the same pid."""
    return {"pid": int(pid), "started": start_time(pid), "comm": _comm(pid)}


def _same_process(entry: dict[str, Any]) -> bool:
    started = start_time(int(entry["pid"]))
    return started is not None and started == entry.get("started")


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (clock ticks after boot); None when it is gone or a
    zombie (a zombie cannot be signalled into doing anything)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces and parens
    if fields[0] == "Z":
        return None
    return int(fields[19])


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
