"""A real PostgreSQL 15 for a test: initdb into a fresh directory as user postgres, pg_ctl
start on a free loopback port, stopped (immediate, then by PID) and removed however the test
ends. Missing binaries or a missing postgres user skip, saying which.

    with postgres_server() as server:
        url = server.create_database("t1")     # postgresql+psycopg://postgres@127.0.0.1:PORT/t1
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from integration.servers import free_port

BIN_DIRS = (Path("/usr/lib/postgresql/15/bin"), Path("/usr/local/bin"))
READY_S = 30.0
STOP_S = 20.0


@dataclass(frozen=True)
class PostgresServer:
    """A running server: its port and the admin connection string."""

    port: int
    socket_dir: Path

    @property
    def admin(self) -> str:
        """A libpq connection string for the postgres superuser over TCP."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of one database on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _binary(name: str) -> str:
    for folder in BIN_DIRS:
        if (folder / name).is_file():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"PostgreSQL's {name} not found in {', '.join(map(str, BIN_DIRS))} or on PATH")
    return found


def _as_owner() -> tuple[list[str], pwd.struct_passwd | None]:
    """The command prefix that runs as the server's owner (PostgreSQL refuses to run as root)."""
    if os.geteuid() != 0:
        return [], None
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
    if shutil.which("runuser") is None:
        pytest.skip("running as root and runuser is missing to switch to user postgres")
    return ["runuser", "-u", "postgres", "--"], owner


def _run(name: str, command: Sequence[str], cwd: Path, timeout: float) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed ({done.returncode}): {done.stderr.strip()}")


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL on 127.0.0.1 for the block."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    prefix, owner = _as_owner()
    # mkdtemp, not pytest's tmp_path: that one sits in a root-only folder postgres cannot enter
    root = Path(tempfile.mkdtemp(prefix="warroom-pg-"))
    data, log = root / "data", root / "server.log"
    try:
        if owner is not None:
            os.chown(root, owner.pw_uid, owner.pw_gid)
        auth = ["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]
        _run("initdb", [*prefix, initdb, "-D", str(data), *auth], root, READY_S)
        port = free_port()
        options = f"-k {root} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off"
        start = [*prefix, pg_ctl, "-D", str(data), "-l", str(log), "-o", options]
        try:
            _run(
                "pg_ctl start", [*start, "-w", "-t", str(int(READY_S)), "start"], root, READY_S + 5
            )
            server = PostgresServer(port, root)
            _wait_ready(server, log)
            yield server
        finally:
            _stop(prefix, pg_ctl, data)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(server: PostgresServer, log: Path) -> None:
    deadline = time.monotonic() + READY_S
    while True:
        try:
            with psycopg.connect(server.admin, connect_timeout=2):
                return
        except psycopg.OperationalError as err:
            if time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"PostgreSQL not ready in {READY_S} s: {err}\n{tail}") from err
            time.sleep(0.2)


def _stop(prefix: list[str], pg_ctl: str, data: Path) -> None:
    """pg_ctl stop -m immediate; if the postmaster is still there, SIGKILL it by its PID."""
    pid = _postmaster_pid(data)
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=STOP_S,
        )
    if pid is not None and _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
