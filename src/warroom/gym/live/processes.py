"""The live gym's processes: started with their output in a log, ready when a URL answers,
stopped by PID (TERM, then KILL), and written down in the run's pid file so a later
`warroom gym live --cleanup` stops what a crashed run left behind.

    proc = Managed("cart", [python, "-m", ...], run_dir / "logs" / "cart.log", ready=url)
    proc.start(); proc.wait_ready(20)
    proc.stop()

PostgreSQL runs as its own daemon (pg_ctl; it refuses to run as root, so as user postgres):
`Postgres` initialises, starts and stops it and reads its postmaster's pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from warroom.errors import WarroomError
from warroom.gym.live.registry import start_time

STOP_S = 5.0
PID_FILE = "pids.json"
APP_ROLE = "shop"  # the shop's own PostgreSQL role (not a superuser)
PG_BIN_DIRS = (Path("/usr/lib/postgresql/15/bin"), Path("/usr/local/bin"))


class StackError(WarroomError):
    """A part of the live gym could not start (the message names it and quotes its log)."""


@dataclass
class Managed:
    """One child process of the gym."""

    name: str
    command: Sequence[str]
    log: Path
    ready: str | None = None  # a URL that answers 200 once the process serves
    env: Mapping[str, str] | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start it (appending to its log); its own session, so a Ctrl-C does not reach it."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env} if self.env else None
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                list(self.command),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        """The live process's pid."""
        if self.process is None:
            raise StackError(f"{self.name} is not running")
        return self.process.pid

    def alive(self) -> bool:
        """Whether it is still running."""
        return self.process is not None and self.process.poll() is None

    def exit_code(self) -> int | None:
        """Its exit code once it has ended (negative: the signal that ended it)."""
        return None if self.process is None else self.process.poll()

    def wait_ready(self, timeout_s: float) -> None:
        """Until `ready` answers 200 (or the process dies, or the time is up: StackError)."""
        if self.ready is None:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise StackError(f"{self.name} exited ({self.exit_code()}): {tail(self.log)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.ready, timeout=1.0).status_code == 200:
                    return
            time.sleep(0.2)
        raise StackError(f"{self.name} not ready at {self.ready} in {timeout_s:.0f} s")

    def stop(self) -> None:
        """TERM, then KILL if it lingers; waits for it either way."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_S)


def tail(log: Path, size: int = 600) -> str:
    """The end of a log, for an error message."""
    try:
        return log.read_text(errors="replace")[-size:].strip()
    except OSError:
        return "(no log)"


# --- the pid file: what a crashed run left running ----------------------------------------


def record_pids(run_dir: Path, pids: Mapping[str, int]) -> None:
    """Write name -> pid and start time for every running process (atomically: a crash
    mid-write keeps the previous file). The start time tells a reused pid from ours: some
    servers (redis-server) rewrite their command line and environment, so neither can."""
    target = run_dir / PID_FILE
    scratch = target.with_suffix(".tmp")
    entries = {name: {"pid": pid, "started": start_time(pid)} for name, pid in pids.items()}
    scratch.write_text(json.dumps(entries, indent=1))
    scratch.replace(target)


def kill_recorded(run_dir: Path) -> list[str]:
    """Stop every process the pid file names that still runs from this run dir; what it did."""
    try:
        pids = json.loads((run_dir / PID_FILE).read_text())
    except (OSError, ValueError):
        return []
    done = []
    for name, entry in pids.items():
        if isinstance(entry, int):  # an older pid file: pid only
            pid, ours = entry, _ours(entry, run_dir)
        elif isinstance(entry, dict) and isinstance(entry.get("pid"), int):
            pid = entry["pid"]
            ours = entry.get("started") is not None and start_time(pid) == entry["started"]
        else:
            continue
        if ours and _terminate(pid):
            done.append(f"stopped {name} (pid {pid})")
    (run_dir / PID_FILE).unlink(missing_ok=True)
    return done


def _ours(pid: int, run_dir: Path) -> bool:
    """Whether `pid` is still one of ours (a pid can be reused): its command or its
    environment names this run dir."""
    marker = str(run_dir).encode()
    for part in ("cmdline", "environ"):
        with contextlib.suppress(OSError):
            if marker in Path(f"/proc/{pid}/{part}").read_bytes():
                return True
    return False


def _terminate(pid: int) -> bool:
    """TERM (after CONT: a stopped process cannot act on it), KILL past STOP_S; False if it
    was already gone."""
    try:
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + STOP_S
    while _exists(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.1)
    return True


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --- PostgreSQL ---------------------------------------------------------------------------


@dataclass
class Postgres:
    """A PostgreSQL 15 of this run: data under `root`, on 127.0.0.1:`port`."""

    root: Path
    port: int
    max_connections: int = 40

    @property
    def data(self) -> Path:
        return self.root / "data"

    def dsn(self, database: str = "shop", port: int | None = None, user: str = APP_ROLE) -> str:
        """A libpq connection string (through `port` when given: an edge proxy). The shop
        connects as its own role, not a superuser: superusers get the reserved connection
        slots, so a shop connecting as one would never run out of connections."""
        return f"host=127.0.0.1 port={port or self.port} user={user} dbname={database}"

    def start(self) -> None:
        """initdb on first use, then start and wait; a `shop` database made if missing."""
        prefix = _as_postgres()
        self.root.mkdir(parents=True, exist_ok=True)
        _give_to_postgres(self.root)
        log = self.root / "server.log"
        if not (self.data / "PG_VERSION").exists():
            auth = ["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]
            _run([*prefix, _pg("initdb"), "-D", str(self.data), *auth], self.root)
        options = (
            f"-k {self.root} -c listen_addresses=127.0.0.1 -p {self.port} -c fsync=off "
            f"-c max_connections={self.max_connections} -c superuser_reserved_connections=3"
        )
        start = [*prefix, _pg("pg_ctl"), "-D", str(self.data), "-l", str(log), "-o", options]
        _run([*start, "-w", "-t", "30", "start"], self.root)
        self._create_shop()

    def _create_shop(self) -> None:
        import psycopg

        admin = self.dsn("postgres", user="postgres")
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_ROLE])
            if role.fetchone() is None:
                conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN")  # a fixed identifier, not input
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = 'shop'").fetchone()
            if exists is None:
                conn.execute(f"CREATE DATABASE shop OWNER {APP_ROLE}")

    def pid(self) -> int:
        """The postmaster's pid."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            raise StackError("postgres is not running") from None

    def stop(self) -> None:
        """pg_ctl stop (fast), then SIGKILL the postmaster if it is still there."""
        with contextlib.suppress(StackError):
            pid = self.pid()
            with contextlib.suppress(subprocess.SubprocessError, OSError, StackError):
                stop = [*_as_postgres(), _pg("pg_ctl"), "-D", str(self.data), "-m", "fast"]
                _run([*stop, "-w", "-t", "20", "stop"], self.root)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _pg(name: str) -> str:
    for folder in PG_BIN_DIRS:
        if (folder / name).is_file():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise StackError(f"PostgreSQL's {name} is not installed: run scripts/install-servers.sh")
    return found


def _as_postgres() -> list[str]:
    """The prefix that runs a command as user postgres (PostgreSQL refuses to run as root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise StackError("running as root and there is no 'postgres' user") from None
    return ["runuser", "-u", "postgres", "--"]


def _give_to_postgres(root: Path) -> None:
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)


def _run(command: Sequence[str], cwd: Path) -> None:
    done = subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise StackError(f"{Path(command[-1]).name} failed: {done.stderr.strip()[-600:]}")
