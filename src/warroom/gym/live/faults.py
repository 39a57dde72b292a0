"""The live gym's real faults: each breaks the running shop the way the fault would break a
production system, and carries its ground truth (the CATALOGUE name, the culprit component, the
fault type warroom must name).

    fault = make_fault("cpu-hog", "cart", random.Random(seed))   # parameters drawn from the rng
    fault.inject(stack, registry)      # stack: a contracts.Processes; registry: registry.Registry
    ...                                # the page, the investigation
    fault.heal(stack, registry)        # healthy again (checked where cheap)

    cpu-hog              stress-ng inside the target's cgroup: its CPU quota is shared, it starves
    memory-leak          the service's /_chaos/leak hook, again after each OOM kill and restart
    network-delay        the edge proxy delays every edge of the target, both directions
    packet-loss          nftables drops a share of the packets on those edges, both ways
    cache-down           Redis SIGSTOPped (stalled), or SIGKILLed whenever it comes back
    db-lock-contention   a process holds LOCK TABLE orders IN ACCESS EXCLUSIVE MODE
    db-pool-exhaustion   a process (a runaway batch job) holds every PostgreSQL connection slot
    bad-deploy           the target restarted on v2-bad, with a deploy event
    bad-config-push      the target restarted with a broken setting, with a config event
    disk-full            a filler file on the target's small tmpfs volume, up to ENOSPC
    third-party-outage   the payment gateway's /_chaos/outage hook answers errors
    queue-consumer-lag   the worker's /_chaos/slow hook: each message takes seconds

    HarmlessDeploy(target), BatchJob()    red herrings for the controls: changes that break nothing

Everything an injector leaves on the machine (processes, stopped pids, nft tables, files,
mounts) is written into the registry before it exists, so `warroom gym live --cleanup` undoes a
crashed run. The lock and connection holders are separate processes (this module's
`hold-lock` / `hold-connections` commands), killed by pid: a crash of the gym frees them too.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import random
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx

from warroom.gym.faults import CATALOGUE
from warroom.gym.live.cgroups import Cgroup
from warroom.gym.live.contracts import EDGES, EXTERNAL, HOST, Processes, ServiceSettings
from warroom.gym.live.nft import Nft
from warroom.gym.live.registry import Registry

HOOK_TIMEOUT_S = 5.0
HELPER_READY_S = 15.0
HELD_MAX_S = 1800  # nothing a fault starts outlives this, healed or not
WATCH_S = 1.0
REDIS_BACK_S = 30.0
FILLER = ".warroom-gym-filler"
FILL_CHUNK = 1 << 20
VOLUME_MAX_MIB = 256  # never fill anything bigger: it is not the gym's small volume
CHANGES = "changes.jsonl"  # the stack's changes file (warroom.telemetry.changes_file format)
BAD_VERSION = "v2-bad"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class FaultError(RuntimeError):
    """A fault could not be injected or healed (the message names the fault and why)."""


@dataclass
class LiveFault:
    """One live fault and its ground truth."""

    name: ClassVar[str]  # a CATALOGUE key ("none" for the red herrings)
    target: str | None

    @property
    def fault_type(self) -> str:
        """The fault type the ranking should name."""
        return CATALOGUE[self.name][0]

    def inject(self, procs: Processes, registry: Registry) -> None:
        raise NotImplementedError

    def heal(self, procs: Processes, registry: Registry) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        """One line for the progress output and the episode's notes."""
        return f"{self.name} on {self.target}"

    def _fail(self, why: str) -> FaultError:
        return FaultError(f"{self.describe()}: {why}")


# --- resources -----------------------------------------------------------------------------


@dataclass
class CpuHog(LiveFault):
    """stress-ng workers inside the target's cgroup: a noisy process in its container."""

    name: ClassVar[str] = "cpu-hog"
    workers: int = 2
    load: int = 100
    pid: int | None = field(default=None, repr=False)

    def inject(self, procs: Processes, registry: Registry) -> None:
        group = Cgroup(procs.cgroup_name(_named(self.target)))
        if not group.exists():
            raise self._fail(f"no cgroup {group.name} (is the stack running with cgroups?)")
        argv = ["stress-ng", "--cpu", str(self.workers), "--cpu-load", str(self.load),
                "--timeout", f"{HELD_MAX_S}s", "--quiet"]  # fmt: skip
        self.pid = _spawn(group.command(argv), registry)
        time.sleep(0.3)  # the wrapper has joined the group and exec'd stress-ng
        if self.pid not in group.pids():
            _end(registry, self.pid)
            raise self._fail(f"stress-ng (pid {self.pid}) did not start in {group.name}")

    def heal(self, procs: Processes, registry: Registry) -> None:
        if self.pid is not None:
            _end(registry, self.pid)
            self.pid = None

    def describe(self) -> str:
        return f"cpu-hog on {self.target}: stress-ng {self.workers} x {self.load} % in its cgroup"


@dataclass
class MemoryLeak(LiveFault):
    """The target leaks (its /_chaos/leak hook) until its cgroup limit gets it OOM-killed; the
    stack restarts it and the leak starts again, as a leaking release would, until healed."""

    name: ClassVar[str] = "memory-leak"
    mib_per_s: float = 10.0
    _watch: _Watch | None = field(default=None, repr=False)

    def inject(self, procs: Processes, registry: Registry) -> None:
        target = _named(self.target)
        self._leak(procs)
        leaking = {"pid": procs.pid(target)}

        def again_after_a_restart() -> None:
            with contextlib.suppress(Exception):  # restarting: not yet up, try next round
                pid = procs.pid(target)
                if pid != leaking["pid"]:
                    self._leak(procs)
                    leaking["pid"] = pid

        self._watch = _Watch(again_after_a_restart)

    def _leak(self, procs: Processes) -> None:
        _hook(self, procs, _named(self.target), "/_chaos/leak", {"mib_per_s": self.mib_per_s})

    def heal(self, procs: Processes, registry: Registry) -> None:
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        procs.restart(_named(self.target))  # a fresh process: the leaked memory is gone

    def describe(self) -> str:
        return f"memory-leak on {self.target}: {self.mib_per_s:.0f} MiB/s until OOM-killed"


@dataclass
class DiskFull(LiveFault):
    """A filler file on the target's small tmpfs volume, written until ENOSPC."""

    name: ClassVar[str] = "disk-full"
    volume_mib: int = 8
    _mounted_here: bool = field(default=False, repr=False)

    def inject(self, procs: Processes, registry: Registry) -> None:
        volume = volume_path(procs, _named(self.target))
        if not os.path.ismount(volume):  # the stack did not mount one: mount it now
            mount_volume(volume, self.volume_mib, registry)
            self._mounted_here = True
        _check_small(self, volume)
        filler = volume / FILLER
        registry.add_file(filler)
        written = fill(filler)
        if os.statvfs(volume).f_bavail > 0:
            raise self._fail(f"{volume} still has room after {written >> 20} MiB")

    def heal(self, procs: Processes, registry: Registry) -> None:
        volume = volume_path(procs, _named(self.target))
        with contextlib.suppress(FileNotFoundError):
            (volume / FILLER).unlink()
        registry.forget_file(volume / FILLER)
        if self._mounted_here:
            umount_volume(volume, registry)
            self._mounted_here = False

    def describe(self) -> str:
        return f"disk-full on {self.target}: its label volume filled to ENOSPC"


# --- the network -----------------------------------------------------------------------------


@dataclass
class NetworkDelay(LiveFault):
    """Every edge of the target (as caller and as callee) delayed at the proxy."""

    name: ClassVar[str] = "network-delay"
    delay_ms: float = 200.0
    jitter_ms: float = 20.0

    def inject(self, procs: Processes, registry: Registry) -> None:
        fault = {"delay_ms": self.delay_ms, "jitter_ms": self.jitter_ms, "reset": False}
        for caller, callee in edges_of(_named(self.target)):
            _set_edge(self, procs, caller, callee, fault)

    def heal(self, procs: Processes, registry: Registry) -> None:
        for caller, callee in edges_of(_named(self.target)):
            _set_edge(self, procs, caller, callee, {})

    def describe(self) -> str:
        return f"network-delay on {self.target}: {self.delay_ms:.0f} ± {self.jitter_ms:.0f} ms"


@dataclass
class PacketLoss(LiveFault):
    """A share of the packets on every edge of the target dropped (nftables), both ways."""

    name: ClassVar[str] = "packet-loss"
    percent: int = 20

    def inject(self, procs: Processes, registry: Registry) -> None:
        table = nft_table(procs)
        registry.add_nft_table(table.table)
        for caller, callee in edges_of(_named(self.target)):
            table.add_drop(procs.layout.edge_port(caller, callee), self.percent)

    def heal(self, procs: Processes, registry: Registry) -> None:
        table = nft_table(procs)
        table.remove_table()
        registry.forget_nft_table(table.table)

    def describe(self) -> str:
        return f"packet-loss on {self.target}: {self.percent} % of its packets dropped"


# --- datastores ------------------------------------------------------------------------------


@dataclass
class CacheDown(LiveFault):
    """Redis stalled (SIGSTOP: connections hang) or down (SIGKILL, again whenever the stack
    brings it back: a crash loop)."""

    name: ClassVar[str] = "cache-down"
    mode: str = "stop"  # "stop" | "kill"
    stopped_pid: int | None = field(default=None, repr=False)
    _watch: _Watch | None = field(default=None, repr=False)

    def inject(self, procs: Processes, registry: Registry) -> None:
        target = _named(self.target)
        pid = procs.pid(target)
        if self.mode == "stop":
            registry.add_stopped(pid)
            os.kill(pid, signal.SIGSTOP)
            self.stopped_pid = pid
            return
        os.kill(pid, signal.SIGKILL)

        def kill_it_again() -> None:
            with contextlib.suppress(Exception):  # between a death and its restart
                os.kill(procs.pid(target), signal.SIGKILL)

        self._watch = _Watch(kill_it_again)

    def heal(self, procs: Processes, registry: Registry) -> None:
        if self.stopped_pid is not None:
            registry.continue_stopped(self.stopped_pid)
            self.stopped_pid = None
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        if not _redis_answers(procs.layout.port(_named(self.target)), REDIS_BACK_S):
            raise self._fail(f"redis does not answer PING {REDIS_BACK_S:.0f} s after healing")

    def describe(self) -> str:
        how = "SIGSTOPped" if self.mode == "stop" else "SIGKILLed in a crash loop"
        return f"cache-down on {self.target}: {how}"


@dataclass
class DbLockContention(LiveFault):
    """A transaction holding an ACCESS EXCLUSIVE lock on a table the shop writes."""

    name: ClassVar[str] = "db-lock-contention"
    table: str = "orders"
    pid: int | None = field(default=None, repr=False)
    backend: int | None = field(default=None, repr=False)

    def inject(self, procs: Processes, registry: Registry) -> None:
        if not _IDENTIFIER.match(self.table):
            raise self._fail(f"bad table name {self.table!r}")
        self.pid, ready = _helper(self, registry, procs.postgres_dsn(), "hold-lock", self.table)
        self.backend = int(ready.split()[1])

    def heal(self, procs: Processes, registry: Registry) -> None:
        if self.pid is not None:
            _end(registry, self.pid)
            self.pid = None
        if self.backend is not None:  # the session ends with its client; make sure of it
            _terminate_backends(procs.postgres_dsn(), [self.backend])
            self.backend = None

    def describe(self) -> str:
        return f"db-lock-contention on {self.target}: LOCK TABLE {self.table} held"


@dataclass
class DbPoolExhaustion(LiveFault):
    """A runaway batch job holding every connection slot of PostgreSQL, idle."""

    name: ClassVar[str] = "db-pool-exhaustion"
    pid: int | None = field(default=None, repr=False)
    held: int = field(default=0, repr=False)

    def inject(self, procs: Processes, registry: Registry) -> None:
        self.pid, ready = _helper(self, registry, procs.postgres_dsn(), "hold-connections")
        self.held = int(ready.split()[1])

    def heal(self, procs: Processes, registry: Registry) -> None:
        if self.pid is not None:
            _end(registry, self.pid)  # its sockets close: the backends exit
            self.pid = None
        if not _postgres_accepts(procs.postgres_dsn(), 10.0):
            raise self._fail("PostgreSQL still refuses connections after healing")

    def describe(self) -> str:
        return f"db-pool-exhaustion on {self.target}: {self.held} idle connections held"


# --- changes -------------------------------------------------------------------------------


@dataclass
class BadDeploy(LiveFault):
    """The target rolled out on its faulty version (with the deploy event CI would write)."""

    name: ClassVar[str] = "bad-deploy"

    def inject(self, procs: Processes, registry: Registry) -> None:
        target = _named(self.target)
        record_change(procs, target, "deploy", f"{target} {BAD_VERSION} rolled out")
        procs.restart(target, version=BAD_VERSION)

    def heal(self, procs: Processes, registry: Registry) -> None:
        target = _named(self.target)
        record_change(procs, target, "deploy", f"{target} rolled back to v1")
        procs.restart(target, version="v1")


@dataclass
class BadConfigPush(LiveFault):
    """The target restarted with one setting pushed wrong (with a config event)."""

    name: ClassVar[str] = "bad-config-push"
    setting: str = "client_timeout_s"
    value: float = 0.001

    def inject(self, procs: Processes, registry: Registry) -> None:
        target = _named(self.target)
        bad = ServiceSettings.model_validate({self.setting: self.value})
        was = getattr(ServiceSettings(), self.setting)
        change = f"{self.setting}: {was} -> {getattr(bad, self.setting)}"
        record_change(procs, target, "config", change)
        procs.restart(target, settings=bad)

    def heal(self, procs: Processes, registry: Registry) -> None:
        target = _named(self.target)
        record_change(procs, target, "config", f"{self.setting} reverted to its default")
        procs.restart(target, settings=ServiceSettings())

    def describe(self) -> str:
        return f"bad-config-push on {self.target}: {self.setting} = {self.value}"


# --- dependencies and the queue ----------------------------------------------------------------


@dataclass
class ThirdPartyOutage(LiveFault):
    """The payment gateway (a third party) answers errors."""

    name: ClassVar[str] = "third-party-outage"
    mode: str = "errors"

    def inject(self, procs: Processes, registry: Registry) -> None:
        _hook(self, procs, _named(self.target), "/_chaos/outage", {"mode": self.mode})

    def heal(self, procs: Processes, registry: Registry) -> None:
        _hook(self, procs, _named(self.target), "/_chaos/outage", {"mode": "ok"})


@dataclass
class QueueConsumerLag(LiveFault):
    """The worker slow on every message: the stream's backlog grows."""

    name: ClassVar[str] = "queue-consumer-lag"
    ms_per_message: float = 2000.0

    def inject(self, procs: Processes, registry: Registry) -> None:
        body = {"ms_per_message": self.ms_per_message}
        _hook(self, procs, _named(self.target), "/_chaos/slow", body)

    def heal(self, procs: Processes, registry: Registry) -> None:
        _hook(self, procs, _named(self.target), "/_chaos/slow", {"ms_per_message": 0})

    def describe(self) -> str:
        return f"queue-consumer-lag on {self.target}: {self.ms_per_message:.0f} ms per message"


# --- red herrings (the controls' harmless changes) -------------------------------------------


@dataclass
class HarmlessDeploy(LiveFault):
    """A healthy service redeployed on the same v1: a change event that breaks nothing."""

    name: ClassVar[str] = "none"

    def inject(self, procs: Processes, registry: Registry) -> None:
        target = _named(self.target)
        record_change(procs, target, "deploy", f"{target} v1 redeployed (dependency bump)")
        procs.restart(target, version="v1")

    def heal(self, procs: Processes, registry: Registry) -> None:
        """Nothing to undo."""

    def describe(self) -> str:
        return f"harmless deploy of {self.target}"


@dataclass
class BatchJob(LiveFault):
    """A short, light CPU job outside every service's cgroup (a cron job on the host)."""

    name: ClassVar[str] = "none"
    target: str | None = None
    seconds: int = 60
    pid: int | None = field(default=None, repr=False)

    def inject(self, procs: Processes, registry: Registry) -> None:
        argv = ["stress-ng", "--cpu", "1", "--cpu-load", "30",
                "--timeout", f"{self.seconds}s", "--quiet"]  # fmt: skip
        self.pid = _spawn(argv, registry)

    def heal(self, procs: Processes, registry: Registry) -> None:
        if self.pid is not None:
            _end(registry, self.pid)
            self.pid = None

    def describe(self) -> str:
        return f"a {self.seconds} s batch job (stress-ng, 30 % of a core)"


# --- making them ---------------------------------------------------------------------------

Maker = Callable[[str, random.Random], LiveFault]

_MAKERS: dict[str, Maker] = {
    "cpu-hog": lambda t, rng: CpuHog(t, workers=2, load=100),
    "memory-leak": lambda t, rng: MemoryLeak(t, mib_per_s=round(rng.uniform(8, 15), 1)),
    "network-delay": lambda t, rng: NetworkDelay(
        t, delay_ms=float(rng.randrange(150, 301, 10)), jitter_ms=20.0
    ),
    "packet-loss": lambda t, rng: PacketLoss(t, percent=rng.randrange(15, 31)),
    "cache-down": lambda t, rng: CacheDown(t, mode=rng.choice(("stop", "stop", "kill"))),
    "db-lock-contention": lambda t, rng: DbLockContention(t),
    "db-pool-exhaustion": lambda t, rng: DbPoolExhaustion(t),
    "bad-deploy": lambda t, rng: BadDeploy(t),
    "bad-config-push": lambda t, rng: BadConfigPush(t, "client_timeout_s", 0.001),
    "disk-full": lambda t, rng: DiskFull(t),
    "third-party-outage": lambda t, rng: ThirdPartyOutage(t, mode="errors"),
    "queue-consumer-lag": lambda t, rng: QueueConsumerLag(
        t, ms_per_message=float(rng.randrange(1500, 3001, 100))
    ),
}
KINDS = tuple(_MAKERS)


def make_fault(kind: str, target: str | None, rng: random.Random) -> LiveFault:
    """The live fault of a kind on a target, its parameters drawn from `rng`."""
    if kind not in _MAKERS:
        raise FaultError(f"no live fault {kind!r}: the live gym has {', '.join(KINDS)}")
    if not target:
        raise FaultError(f"{kind} needs a target component")
    return _MAKERS[kind](target, rng)


# --- helpers the faults share ----------------------------------------------------------------


def edges_of(component: str) -> list[tuple[str, str]]:
    """Every edge the component is on, as caller or callee."""
    return [(a, b) for a, b in EDGES if component in (a, b)]


def nft_table(procs: Processes) -> Nft:
    """The run's nft table (named by its base port: two runs on one machine keep apart)."""
    return Nft(f"warroom_gym_{procs.layout.base_port}")


def volume_path(procs: Processes, service: str) -> Path:
    """Where the stack keeps a service's volume (shipping's labels_dir)."""
    return Path(procs.run_dir) / "volumes" / service


def record_change(procs: Processes, service: str, kind: str, description: str) -> None:
    """One change event in the run's changes file (warroom.telemetry.changes_file's format)."""
    import json

    line = {"time": time.time(), "service": service, "kind": kind, "description": description}
    with (Path(procs.run_dir) / CHANGES).open("a") as out:
        out.write(json.dumps(line) + "\n")


def mount_volume(path: Path, mib: int, registry: Registry) -> None:
    """A `mib` MiB tmpfs at `path` (made if missing), registered for cleanup."""
    if not 1 <= int(mib) <= VOLUME_MAX_MIB:
        raise FaultError(f"a gym volume is 1..{VOLUME_MAX_MIB} MiB, not {mib}")
    path.mkdir(parents=True, exist_ok=True)
    registry.add_mount(path)
    options = f"size={int(mib)}m,mode=0777"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "warroom_gym", str(path)],
                          capture_output=True, text=True, timeout=20)  # fmt: skip
    if done.returncode != 0:
        registry.forget_mount(path)
        raise FaultError(f"cannot mount a tmpfs at {path}: {done.stderr.strip()}")


def umount_volume(path: Path, registry: Registry) -> None:
    """Unmount a volume mount_volume made (no error if it is not mounted)."""
    if os.path.ismount(path):
        done = subprocess.run(["umount", str(path)], capture_output=True, text=True, timeout=20)
        if done.returncode != 0:
            raise FaultError(f"cannot unmount {path}: {done.stderr.strip()}")
    registry.forget_mount(path)


def fill(path: Path) -> int:
    """Write `path` until the filesystem is full (bounded by the volume cap); bytes written."""
    written = 0
    chunk = b"\0" * FILL_CHUNK
    with path.open("wb", buffering=0) as out:  # unbuffered: the last write comes back short
        for _ in range(VOLUME_MAX_MIB + 2):
            try:
                written += out.write(chunk) or 0
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
                break
    return written


def _check_small(fault: LiveFault, volume: Path) -> None:
    stat = os.statvfs(volume)
    size_mib = stat.f_blocks * stat.f_frsize >> 20
    if size_mib > VOLUME_MAX_MIB:
        raise fault._fail(f"{volume} is {size_mib} MiB: not a gym volume, not filling it")


def _named(target: str | None) -> str:
    if not target:
        raise FaultError("this fault needs a target component")
    return target


def _spawn(argv: list[str], registry: Registry) -> int:
    """Start a helper in its own process group (killed as a group), registered at once."""
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    except OSError as err:
        raise FaultError(f"cannot start {argv[0]}: {err}") from err
    registry.add_child(proc.pid)
    _CHILDREN[proc.pid] = proc
    return proc.pid


# The helpers this process started, so ending one also reaps it (no zombie left behind).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _end(registry: Registry, pid: int) -> None:
    """Kill a helper (its process group) and, when it is our child, reap it."""
    registry.end_child(pid)
    proc = _CHILDREN.pop(pid, None)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def _helper(
    fault: LiveFault, registry: Registry, dsn: str, command: str, *args: str
) -> tuple[int, str]:
    """Start one of this module's holder commands; (pid, its 'ready ...' line)."""
    argv = [sys.executable, "-m", "warroom.gym.live.faults", command, *args]
    env = {**os.environ, "WARROOM_GYM_DSN": dsn}
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)  # fmt: skip
    registry.add_child(proc.pid)
    _CHILDREN[proc.pid] = proc
    line = _first_line(proc, HELPER_READY_S)
    if not line.startswith("ready"):
        _end(registry, proc.pid)
        error = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise fault._fail(f"{command} did not get ready: {line or error.strip()[-400:]}")
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()  # it writes nothing more
    return proc.pid, line


def _first_line(proc: subprocess.Popen[bytes], timeout_s: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            return ""
    return proc.stdout.readline().decode(errors="replace").strip()


def _hook(fault: LiveFault, procs: Processes, name: str, path: str, body: dict[str, Any]) -> None:
    url = f"http://{HOST}:{procs.layout.port(name)}{path}"
    try:
        answer = httpx.post(url, json=body, timeout=HOOK_TIMEOUT_S)
        answer.raise_for_status()
    except httpx.HTTPError as err:
        raise fault._fail(f"POST {url} failed: {err}") from err


def _set_edge(
    fault: LiveFault, procs: Processes, caller: str, callee: str, body: dict[str, Any]
) -> None:
    url = f"http://{HOST}:{procs.layout.port('proxy-control')}/edges/{caller}/{callee}"
    try:
        httpx.put(url, json=body, timeout=HOOK_TIMEOUT_S).raise_for_status()
    except httpx.HTTPError as err:
        raise fault._fail(f"the edge proxy refused {caller} -> {callee}: {err}") from err


class _Watch:
    """A daemon thread calling `action` every WATCH_S until stopped (at most HELD_MAX_S)."""

    def __init__(self, action: Callable[[], None]) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(action,), daemon=True)
        self._thread.start()

    def _run(self, action: Callable[[], None]) -> None:
        deadline = time.monotonic() + HELD_MAX_S
        while not self._stop.wait(WATCH_S) and time.monotonic() < deadline:
            action()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _redis_answers(port: int, within_s: float) -> bool:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # no retries inside a PING (redis-py's default turns a 1 s timeout into ~10 s): we poll
    client = redis.Redis(
        host=HOST,
        port=port,
        socket_timeout=1,
        socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 0),
    )
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError):
            if client.ping():
                return True
        time.sleep(0.2)
    return False


def _postgres_accepts(dsn: str, within_s: float) -> bool:
    import psycopg

    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        with contextlib.suppress(psycopg.Error), psycopg.connect(dsn, connect_timeout=2):
            return True
        time.sleep(0.3)
    return False


def _terminate_backends(dsn: str, backends: list[int]) -> None:
    import psycopg

    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn,
    ):
        for backend in backends:
            conn.execute("SELECT pg_terminate_backend(%s)", (backend,))


# --- the holders (separate processes, killed by pid) --------------------------------------------


def hold_lock(dsn: str, table: str, seconds: float) -> None:
    """BEGIN; LOCK TABLE <table> IN ACCESS EXCLUSIVE MODE; then hold it; prints 'ready <pid>'
    (the backend's pid) once the lock is held."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, connect_timeout=5, application_name="warroom-gym-lock") as conn:
        conn.execute("SET lock_timeout = '10s'")
        statement = sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(table))
        conn.execute(statement)  # psycopg opened the transaction: the lock lasts until its end
        print(f"ready {conn.info.backend_pid}", flush=True)
        time.sleep(seconds)
        conn.rollback()


def hold_connections(dsn: str, seconds: float, cap: int = 1000) -> None:
    """Open connections until the server refuses one, print 'ready <count>', then keep taking
    any slot that frees up (a leaking job grabs it) until `seconds` have passed."""
    import psycopg

    held: list[Any] = []

    def grab() -> bool:
        try:
            held.append(psycopg.connect(dsn, connect_timeout=3, application_name="batch-job"))
        except psycopg.OperationalError as err:
            if "too many clients" in str(err) or "connection slots" in str(err):
                return False
            raise
        return True

    while len(held) < cap and grab():
        pass
    print(f"ready {len(held)}", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.5)
        while len(held) < cap and grab():
            pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the live gym's PostgreSQL holders")
    sub = parser.add_subparsers(dest="command", required=True)
    lock = sub.add_parser("hold-lock")
    lock.add_argument("table")
    lock.add_argument("--seconds", type=float, default=HELD_MAX_S)
    conns = sub.add_parser("hold-connections")
    conns.add_argument("--seconds", type=float, default=HELD_MAX_S)
    args = parser.parse_args(argv)
    dsn = os.environ["WARROOM_GYM_DSN"]
    if args.command == "hold-lock":
        if not _IDENTIFIER.match(args.table):
            parser.error(f"bad table name {args.table!r}")
        hold_lock(dsn, args.table, args.seconds)
    else:
        hold_connections(dsn, args.seconds)


if __name__ == "__main__":
    main()


__all__ = [
    "EXTERNAL",
    "KINDS",
    "BatchJob",
    "FaultError",
    "HarmlessDeploy",
    "LiveFault",
    "make_fault",
    "mount_volume",
    "umount_volume",
]
