"""cgroup v1 groups for the live gym: a CPU quota and a memory limit on a process, as a
container runtime would set them, and the counters cAdvisor would read from them.

    reason = available()                   # None, or why cgroups cannot be used here
    group = Cgroup("18000-cart")
    group.create()
    group.set_cpu_limit(1.0)               # one core: cpu.cfs_quota_us / cpu.cfs_period_us
    group.set_memory_limit(300 << 20)      # the kernel OOM-kills a leak past it
    group.add(pid)
    subprocess.Popen(group.command(["stress-ng", "--cpu", "2"]))  # born inside the group
    group.stats()                          # CgroupStats: CPU seconds, throttling, memory, OOMs
    group.remove()                         # its processes go back to the parent, then rmdir

Each group lives under `warroom_gym/<name>` in the cpu, cpuacct and memory hierarchies (one
directory when cpu and cpuacct are co-mounted as cpu,cpuacct). `warroom_gym/` is made inside
the cgroup this process already runs in, not at the hierarchy's root: whatever accounts for us
(a sandbox, a systemd slice) keeps accounting for the gym's processes too.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PARENT = "warroom_gym"
CONTROLLERS = ("cpu", "cpuacct", "memory")
CFS_PERIOD_US = 100_000
REMOVE_TRIES = 20  # rmdir is EBUSY for a moment after the last task left
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_UNLIMITED = 1 << 62  # memory.limit_in_bytes reads about 2**63 when there is no limit


class CgroupError(OSError):
    """A cgroup could not be made, changed, read or removed (the message says which file)."""


@dataclass(frozen=True)
class CgroupStats:
    """One reading of a group's counters (the raw material of cAdvisor's container_* series)."""

    cpu_usage_s: float  # cpuacct.usage
    cpu_periods: int  # cpu.stat nr_periods
    cpu_throttled_periods: int  # cpu.stat nr_throttled
    cpu_throttled_s: float  # cpu.stat throttled_time
    cpu_quota_us: int  # -1: no quota
    cpu_period_us: int
    memory_usage_bytes: int  # memory.usage_in_bytes (page cache included)
    memory_working_set_bytes: int  # usage minus inactive file pages, as cAdvisor computes it
    memory_rss_bytes: int  # memory.stat total_rss
    memory_limit_bytes: int  # 0: no limit
    memory_failcnt: int  # times usage hit the limit
    oom_kills: int  # memory.oom_control oom_kill (0 where the kernel does not count it)


def available() -> str | None:
    """Why the gym cannot use cgroups here (not root, no cgroup v1 controller), or None."""
    if os.geteuid() != 0:
        return "cgroups need root (the gym writes cgroup v1 control files)"
    mounts = _mounts()
    missing = [c for c in CONTROLLERS if c not in mounts]
    if missing:
        return f"no cgroup v1 hierarchy mounted for {', '.join(missing)} (see /proc/mounts)"
    return None


def parent_dirs() -> dict[str, Path]:
    """controller -> this process's `warroom_gym/` directory in that controller's hierarchy."""
    return {c: _parent_dir(c) for c in CONTROLLERS}


def list_groups() -> list[str]:
    """The names of the groups under `warroom_gym/` (in any of the controllers)."""
    names: set[str] = set()
    for folder in set(parent_dirs().values()):
        if folder.is_dir():
            names |= {p.name for p in folder.iterdir() if p.is_dir()}
    return sorted(names)


class Cgroup:
    """One group, `warroom_gym/<name>`, in the cpu, cpuacct and memory hierarchies."""

    def __init__(self, name: str) -> None:
        if not _NAME.match(name):
            raise CgroupError(f"bad cgroup name {name!r} (letters, digits, '.', '_', '-')")
        self.name = name
        self.paths = {c: folder / name for c, folder in parent_dirs().items()}

    @classmethod
    def at(cls, name: str, paths: dict[str, Path]) -> Cgroup:
        """The group at known directories (controller -> path), as a registry recorded them."""
        group = cls.__new__(cls)
        group.name = name
        group.paths = dict(paths)
        return group

    def __repr__(self) -> str:
        return f"Cgroup({self.name!r})"

    @property
    def directories(self) -> list[Path]:
        """Its directories, once each (cpu and cpuacct may share one)."""
        return sorted(set(self.paths.values()))

    def exists(self) -> bool:
        return all(d.is_dir() for d in self.directories)

    def create(self) -> None:
        """Make its directories (and warroom_gym/ above them); no error if they exist."""
        for folder in self.directories:
            for attempt in range(2):  # another group's remove() may rmdir the parent between
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                    break
                except FileNotFoundError:
                    if attempt:
                        raise CgroupError(f"cannot create {folder}: parent vanished") from None
                except OSError as err:
                    raise CgroupError(f"cannot create cgroup {folder}: {err}") from err

    def add(self, pid: int) -> None:
        """Move a process (all its threads) into the group in every hierarchy."""
        for folder in self.directories:
            _write(folder / "cgroup.procs", str(int(pid)))

    def pids(self) -> list[int]:
        """The processes in the group (in any hierarchy)."""
        found: set[int] = set()
        for folder in self.directories:
            with contextlib.suppress(OSError):
                found |= {int(p) for p in (folder / "cgroup.procs").read_text().split()}
        return sorted(found)

    def command(self, argv: list[str]) -> list[str]:
        """`argv` wrapped so the process joins this group before it execs (its children are
        born inside: no window in which a forked worker escapes the quota)."""
        files = " ".join(shlex.quote(str(d / "cgroup.procs")) for d in self.directories)
        script = f'for f in {files}; do echo $$ > "$f" || exit 97; done; exec "$@"'
        return ["sh", "-c", script, "sh", *argv]

    def set_cpu_limit(self, cores: float | None) -> None:
        """A CFS quota of `cores` CPUs (None or <= 0: no quota)."""
        quota = -1 if not cores or cores <= 0 else max(1000, int(cores * CFS_PERIOD_US))
        folder = self.paths["cpu"]
        _write(folder / "cpu.cfs_period_us", str(CFS_PERIOD_US))
        _write(folder / "cpu.cfs_quota_us", str(quota))

    def set_memory_limit(self, limit_bytes: int | None) -> None:
        """A hard memory limit (None: none). Swap is held to the same limit where the kernel
        accounts it, and the OOM killer stays on, so a leak ends in a kill as in a container."""
        value = "-1" if not limit_bytes else str(int(limit_bytes))
        folder = self.paths["memory"]
        memsw = folder / "memory.memsw.limit_in_bytes"
        # memory.limit_in_bytes may never exceed memsw's: lower it first, raise it second.
        try:
            _write(folder / "memory.limit_in_bytes", value)
            if memsw.exists():
                _write(memsw, value)
        except CgroupError:
            if not memsw.exists():
                raise
            _write(memsw, value)
            _write(folder / "memory.limit_in_bytes", value)
        with contextlib.suppress(CgroupError):  # 0: the OOM killer is enabled
            _write(folder / "memory.oom_control", "0")

    def stats(self) -> CgroupStats:
        """The counters now."""
        cpu, acct, mem = self.paths["cpu"], self.paths["cpuacct"], self.paths["memory"]
        cpu_stat = _keyed(cpu / "cpu.stat")
        mem_stat = _keyed(mem / "memory.stat")
        usage = _int(mem / "memory.usage_in_bytes")
        inactive_file = mem_stat.get("total_inactive_file", mem_stat.get("inactive_file", 0))
        limit = _int(mem / "memory.limit_in_bytes")
        return CgroupStats(
            cpu_usage_s=_int(acct / "cpuacct.usage") / 1e9,
            cpu_periods=cpu_stat.get("nr_periods", 0),
            cpu_throttled_periods=cpu_stat.get("nr_throttled", 0),
            cpu_throttled_s=cpu_stat.get("throttled_time", 0) / 1e9,
            cpu_quota_us=_int(cpu / "cpu.cfs_quota_us"),
            cpu_period_us=_int(cpu / "cpu.cfs_period_us"),
            memory_usage_bytes=usage,
            memory_working_set_bytes=max(0, usage - inactive_file),
            memory_rss_bytes=mem_stat.get("total_rss", mem_stat.get("rss", 0)),
            memory_limit_bytes=0 if limit >= _UNLIMITED else limit,
            memory_failcnt=_int(mem / "memory.failcnt"),
            oom_kills=_keyed(mem / "memory.oom_control").get("oom_kill", 0),
        )

    def remove(self) -> None:
        """Move whatever still runs in it to the parent group, then remove its directories
        (and warroom_gym/ once no group is left in it). No error if it is already gone."""
        for folder in self.directories:
            if folder.is_dir():
                _empty_into_parent(folder)
                _rmdir(folder)
            with contextlib.suppress(OSError):  # not empty: another group still lives there
                folder.parent.rmdir()


# --- files -----------------------------------------------------------------------------------


def _write(path: Path, value: str) -> None:
    try:
        with path.open("w") as out:  # one write() per value: the kernel parses each write
            out.write(value)
    except OSError as err:
        raise CgroupError(f"cannot write {value!r} to {path}: {err.strerror or err}") from err


def _int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError) as err:
        raise CgroupError(f"cannot read {path}: {err}") from err


def _keyed(path: Path) -> dict[str, int]:
    """A "key value" per line file (cpu.stat, memory.stat, memory.oom_control)."""
    try:
        text = path.read_text()
    except OSError as err:
        raise CgroupError(f"cannot read {path}: {err}") from err
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            out[key] = int(value)
    return out


def _empty_into_parent(folder: Path) -> None:
    parent_procs = folder.parent.parent / "cgroup.procs"  # above warroom_gym/: where we run
    for _ in range(REMOVE_TRIES):  # a process may fork while we move its siblings
        try:
            pids = (folder / "cgroup.procs").read_text().split()
        except OSError:
            return
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(CgroupError):  # it may have exited meanwhile
                _write(parent_procs, pid)


def _rmdir(folder: Path) -> None:
    for attempt in range(REMOVE_TRIES):
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as err:
            if attempt == REMOVE_TRIES - 1:
                raise CgroupError(f"cannot remove cgroup {folder}: {err.strerror}") from err
            time.sleep(0.05)


# --- where the hierarchies are -------------------------------------------------------------


@cache
def _mounts() -> dict[str, Path]:
    """controller -> mount point of its cgroup v1 hierarchy (co-mounted ones share one)."""
    out: dict[str, Path] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) < 4 or fields[2] != "cgroup":
                continue
            for option in fields[3].split(","):
                if option in CONTROLLERS:
                    out.setdefault(option, Path(fields[1]))
    return out


def _own_path(controller: str) -> str:
    """This process's cgroup in a controller's hierarchy, above any warroom_gym/ group (a
    gym process that makes groups puts them beside its own, not inside it)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(","):
                return path.split(f"/{PARENT}/")[0].rstrip("/") if path != "/" else ""
    return ""


def _parent_dir(controller: str) -> Path:
    mount = _mounts().get(controller)
    if mount is None:
        raise CgroupError(f"no cgroup v1 hierarchy mounted for {controller}")
    return mount / _own_path(controller).lstrip("/") / PARENT
