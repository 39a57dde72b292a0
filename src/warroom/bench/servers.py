"""Real servers for integration tests: started on a free 127.0.0.1 port with a temporary data
directory, ready within a bound, stopped by PID however the test ends.

    with prometheus(tmp_path, backfill=openmetrics_text) as url:
        ...                                   # http://127.0.0.1:<port>, history in place
    with victoria_metrics(tmp_path) as url:
        import_prometheus(url, exposition_text)

A missing binary raises ServerMissing naming the script that installs it (the tests turn it
into a skip through `on_missing`). Used by the integration tests and by `warroom bench live`.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx

from warroom.errors import WarroomError

INSTALL = "scripts/install-servers.sh"
READY_S = 15.0  # a cold start on a loaded 2-core machine takes a few seconds
STOP_S = 5.0


class ServerMissing(WarroomError):
    """A server binary is not installed here."""


# Called with the message before ServerMissing is raised: the test suite makes it a skip.
on_missing: Callable[[str], None] | None = None


def binary(name: str) -> str:
    """The path of an installed server binary, or ServerMissing saying how to install it."""
    found = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/sbin")
    if found is None:
        message = f"{name} is not installed: run {INSTALL} (Debian packages, needs root or sudo)"
        if on_missing is not None:
            on_missing(message)
        raise ServerMissing(message)
    return found


def free_port() -> int:
    """A TCP port nobody listens on at 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running(
    command: Sequence[str], ready_url: str, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` until the block ends; yields once `ready_url` answers 200."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_ready(process, ready_url, log)
        yield process
    finally:
        _stop(process)


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited {process.returncode}: {_tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready within {READY_S} s: {_tail(log)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the one process we started, by its PID: TERM, then KILL if it lingers."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_S)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-800:].strip()


@contextlib.contextmanager
def serve(
    workdir: Path,
    name: str,
    flags: list[str],
    listen: str,
    ready: str,
    started: list[subprocess.Popen[bytes]] | None = None,
) -> Iterator[str]:
    """Run binary `name` with `flags` and `listen` (a flag with `{port}`) on a free port;
    yields its URL once `ready` (a path) answers 200. `started` receives the process (a test
    that kills the server mid-run)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [binary(name), *flags, listen.format(port=port)]
    with running(command, url + ready, workdir / f"{name}.log") as process:
        if started is not None:
            started.append(process)
        yield url


@contextlib.contextmanager
def prometheus(
    workdir: Path,
    backfill: str = "",
    extra: Sequence[str] = (),
    started: list[subprocess.Popen[bytes]] | None = None,
    settings: str = "",
) -> Iterator[str]:
    """A Prometheus with no scrape targets, or the given prometheus.yml `settings`; `backfill`
    (OpenMetrics text ending in `# EOF`) is written into its data directory with promtool."""
    data = workdir / "prometheus-data"
    data.mkdir()
    if backfill:
        source = workdir / "backfill.om"
        source.write_text(backfill)
        command = [binary("promtool"), "tsdb", "create-blocks-from", "openmetrics"]
        done = subprocess.run(
            [*command, str(source), str(data)], capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            raise RuntimeError(f"promtool backfill failed: {done.stderr[-800:]}")
    config = workdir / "prometheus.yml"
    config.write_text(settings or "global:\n  scrape_interval: 15s\n")
    flags = [
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        # Backfilled blocks hours old must not be deleted as past retention.
        "--storage.tsdb.retention.time=3650d",
        *extra,
    ]
    with serve(
        workdir, "prometheus", flags, "--web.listen-address=127.0.0.1:{port}", "/-/ready", started
    ) as url:
        yield url


@contextlib.contextmanager
def victoria_metrics(workdir: Path, extra: Sequence[str] = ()) -> Iterator[str]:
    """A single-node VictoriaMetrics keeping 100 years of data."""
    flags = [f"-storageDataPath={workdir / 'vm-data'}", "-retentionPeriod=100y", *extra]
    with serve(
        workdir, "victoria-metrics", flags, "-httpListenAddr=127.0.0.1:{port}", "/health"
    ) as url:
        yield url


def import_prometheus(url: str, exposition: str) -> None:
    """Load Prometheus text (millisecond timestamps) into VictoriaMetrics, searchable at once."""
    response = httpx.post(f"{url}/api/v1/import/prometheus", content=exposition, timeout=30)
    response.raise_for_status()
    # Imported rows sit in memory buffers for up to a second before searches see them.
    httpx.get(f"{url}/internal/force_flush", timeout=30).raise_for_status()


@contextlib.contextmanager
def alertmanager(workdir: Path, settings: str) -> Iterator[str]:
    """An Alertmanager 0.25 with `settings` as its alertmanager.yml, clustering off."""
    config = workdir / "alertmanager.yml"
    config.write_text(settings)
    flags = [
        f"--config.file={config}",
        f"--storage.path={workdir / 'alertmanager-data'}",
        "--cluster.listen-address=",  # a lone instance: no gossip port, no peers
    ]
    with serve(
        workdir,
        "prometheus-alertmanager",
        flags,
        "--web.listen-address=127.0.0.1:{port}",
        "/-/ready",
    ) as url:
        yield url
