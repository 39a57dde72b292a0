"""The live gym's whole system on 127.0.0.1: the shop and what watches it.

    with Stack(run_dir, Layout(18000)) as stack:     # up() ... down(), whatever happens inside
        stack.restart("cart", version="v2-bad")      # what a fault injector may do
        stack.prometheus_url, stack.serve_url

Started in dependency order, each ready before the next:

    PostgreSQL, Redis          the shop's datastores (PostgreSQL as user postgres)
    edge proxy                 every call between two components passes one of its ports
    warroom receive            the OTLP/HTTP receiver the services export traces and logs to
    the shop                   7 services + the payment gateway, each in its own cgroup (a CPU
                               quota and a memory limit, as a container would have)
    exporters                  Redis, PostgreSQL, node (Debian packages) and the cgroups'
    Prometheus, Alertmanager   5 s scrapes, SLO rules on the frontend and on fulfilment, routed
                               with a bearer token to
    warroom serve              which investigates through Prometheus, the receiver's folder and
                               the changes file the faults append deploys and configs to
    load generator             steady traffic with slow variation into the frontend

A supervisor thread restarts a service or Redis that died (an OOM kill, a crash), the way a
kubelet would, and writes the restart into the changes file as Kubernetes would show it. Every
pid is kept in the run dir's pid file; `cleanup(run_dir)` stops whatever a crashed run left.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from warroom.gym.live.contracts import (
    EDGES,
    EXTERNAL,
    HOST,
    SERVICES,
    Layout,
    ServiceConfig,
    ServiceSettings,
)
from warroom.gym.live.processes import Managed, Postgres, StackError, kill_recorded, record_pids

log = logging.getLogger("warroom.gym.live")

SCRAPE_S = 5
READY_S = 40.0
CPU_CORES = 1.0  # each service's CPU quota: one of the machine's two cores
MEMORY_MIB = 300  # each service's memory limit: a leak ends in an OOM kill
LABELS_MIB = 8  # shipping's label volume: small enough to fill
LOAD_RPS = 6.0
SUPERVISE_S = 1.0
CHANGES = "changes.jsonl"
# A page's window starts this long before the alert: the fault's onset and the quiet before it;
# the metrics' baseline is the history before that (so a run warms up for longer than this).
LOOKBACK_S = 180.0
RUN_MARKER = "WARROOM_GYM_RUN"  # in every process's environment: the run it belongs to

# The SLOs the pages come from: the shop's front door and its order fulfilment.
RULES = """
groups:
  - name: shop-slo
    rules:
      - alert: FrontendErrors
        expr: |
          sum(rate(http_server_request_duration_seconds_count{service="frontend",status_code=~"5.."}[30s]))
            / sum(rate(http_server_request_duration_seconds_count{service="frontend"}[30s])) > 0.05
        for: 30s
        labels: {severity: page, service: frontend}
        annotations: {summary: "more than 5% of frontend requests fail"}
      - alert: FrontendLatency
        expr: |
          histogram_quantile(0.95, sum by (le) (
            rate(http_server_request_duration_seconds_bucket{service="frontend"}[30s]))) > 0.5
        for: 30s
        labels: {severity: page, service: frontend}
        annotations: {summary: "frontend p95 latency over 500 ms"}
      - alert: FulfilmentLag
        expr: max(queue_lag_messages{service="worker"}) > 30
        for: 30s
        labels: {severity: page, service: worker}
        annotations: {summary: "more than 30 orders wait for fulfilment"}
"""


class Stack:
    """The running gym; implements contracts.Processes for the fault injectors."""

    def __init__(self, run_dir: Path, layout: Layout | None = None, cgroups: bool = True) -> None:
        self.run_dir = run_dir.resolve()
        self.layout = layout or Layout()
        self.token = secrets.token_hex(16)
        self.postgres = Postgres(postgres_root(self.run_dir), self.layout.port("postgres"))
        self.processes: dict[str, Managed] = {}
        self.versions: dict[str, str] = {}
        self.settings: dict[str, ServiceSettings] = {}
        self._cgroups: dict[str, Any] = {}
        self._use_cgroups = cgroups
        from warroom.gym.live.registry import Registry

        self.registry = Registry(self.run_dir)  # what a crashed run must undo (cgroups, mounts)
        self._restarting: set[str] = set()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None

    # -- contracts.Processes ------------------------------------------------------------------

    def pid(self, name: str) -> int:
        """The live pid of a component."""
        if name == "postgres":
            return self.postgres.pid()
        with self._lock:
            return self.processes[name].pid

    def postgres_dsn(self) -> str:
        """A superuser DSN straight to PostgreSQL (not through the proxy)."""
        return self.postgres.dsn()

    def cgroup_name(self, name: str) -> str:
        """The cgroup a component runs in (under warroom_gym/)."""
        return f"{self.layout.base_port}-{name}"

    def restart(
        self, name: str, *, version: str | None = None, settings: ServiceSettings | None = None
    ) -> None:
        """Roll a service out again (another version or settings when given): the new process
        starts on the same port beside the old one (SO_REUSEPORT), and the old one stops once
        the new one answers, as a rolling update with a surge pod does."""
        with self._lock:
            self._restarting.add(name)
            old = self.processes[name]
            try:
                if version is not None:
                    self.versions[name] = version
                if settings is not None:
                    self.settings[name] = settings
                if old.alive():
                    self._start_service(name)
                    self._wait_answering(name, self.processes[name].pid)
                else:
                    self._start_service(name)
            finally:
                old.stop()
                self._restarting.discard(name)

    def _wait_answering(self, name: str, pid: int) -> None:
        """Until the process `pid` answers on the service's port (connections are spread over
        the processes sharing it, so a few tries reach it)."""
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                if httpx.get(f"{self.url(name)}/healthz", timeout=1.0).json().get("pid") == pid:
                    return
            time.sleep(0.05)
        raise StackError(f"the new {name} (pid {pid}) did not answer in {READY_S:.0f} s")

    # -- addresses ----------------------------------------------------------------------------

    def url(self, name: str) -> str:
        return f"http://{HOST}:{self.layout.port(name)}"

    @property
    def prometheus_url(self) -> str:
        return self.url("prometheus")

    @property
    def alertmanager_url(self) -> str:
        return self.url("alertmanager")

    @property
    def serve_url(self) -> str:
        return self.url("serve")

    @property
    def changes_path(self) -> Path:
        return self.run_dir / CHANGES

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> Stack:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.down()

    def up(self) -> None:
        """Start everything, each part ready before the next."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.chmod(0o755)  # PostgreSQL, running as postgres, lives under it
        self.changes_path.touch()
        self.postgres.start()
        self._start("redis", self._redis_command(), ready=None)
        self._wait_redis()
        self._start("proxy", self._proxy_command(), ready=f"{self.url('proxy-control')}/edges")
        received = self.run_dir / "received"
        self._start(
            "receiver",
            [
                *_warroom(),
                "receive",
                "--dir",
                str(received),
                "--port",
                str(self.layout.port("receiver")),
            ],
            ready=None,
        )
        self._wait_port("receiver")
        self._start("payment-gateway", _shop("gateway", "--port", str(self.layout.port(EXTERNAL))))
        self._wait_port(EXTERNAL)
        for service in SERVICES:
            self.versions.setdefault(service, "v1")
            self.settings.setdefault(service, ServiceSettings())
            self._start_service(service)
        self._start_exporters()
        self._start_prometheus()
        self._start_alertmanager()
        self._start_serve()
        target = f"http://{HOST}:{self.layout.port('frontend')}"
        load = _shop("load", "--target", target, "--rps", str(LOAD_RPS), "--seconds", "86400")
        self._start("load", load, ready=None)
        self._supervisor = threading.Thread(target=self._supervise, name="gym-supervisor")
        self._supervisor.daemon = True
        self._supervisor.start()

    def down(self) -> None:
        """Stop everything started, the load first, the datastores last; remove cgroups."""
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(5)
        with self._lock:
            order = ["load", "serve", "alertmanager", "prometheus", *reversed(list(self.processes))]
            seen: set[str] = set()
            for name in order:
                if name in self.processes and name not in seen:
                    seen.add(name)
                    with contextlib.suppress(Exception):
                        self.processes[name].stop()
            self.postgres.stop()
            if (self.run_dir / "postgres").is_symlink():  # its data lived outside the run dir
                shutil.rmtree(self.postgres.root, ignore_errors=True)
            self._cgroups.clear()
            for undone in self.registry.cleanup():  # cgroups, the volume, faults' leftovers
                log.info("cleanup: %s", undone)
            with contextlib.suppress(OSError):
                (self.run_dir / "pids.json").unlink()

    def healthy(self) -> list[str]:
        """The components that are not running (empty: all are)."""
        with self._lock:
            return [n for n, p in self.processes.items() if not p.alive()]

    # -- starting the parts -------------------------------------------------------------------

    def _start(
        self,
        name: str,
        command: list[str],
        ready: str | None = "",
        env: dict[str, str] | None = None,
    ) -> Managed:
        """Start one process (ready: a URL; "" for its /healthz; None when there is none);
        its environment names the run, so a later --cleanup can tell it is ours."""
        url = f"{self.url(name)}/healthz" if ready == "" else ready
        marked = {RUN_MARKER: str(self.run_dir), **(env or {})}
        proc = Managed(name, command, self.run_dir / "logs" / f"{name}.log", url, marked)
        proc.start()
        with self._lock:
            self.processes[name] = proc
            self._record()
        proc.wait_ready(READY_S)
        return proc

    def _start_service(self, service: str) -> None:
        config = self._service_config(service)
        path = self.run_dir / "config" / f"{service}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config.model_dump_json(indent=1))
        self._start(service, self._confined(service, _shop("serve", "--config", str(path))))

    def _service_config(self, service: str) -> ServiceConfig:
        peers = self.layout.peers(service)
        dsn = ""
        if "postgres" in peers:
            dsn = self.postgres.dsn(port=self.layout.edge_port(service, "postgres"))
        labels = ""
        if service == "shipping":
            labels = str(self._labels_volume())
        return ServiceConfig(
            service=service,
            port=self.layout.port(service),
            version=self.versions.get(service, "v1"),
            peers=peers,
            postgres_dsn=dsn,
            otlp_endpoint=self.url("receiver"),
            labels_dir=labels,
            log_path=str(self.run_dir / "logs" / f"{service}.jsonl"),
            settings=self.settings.get(service, ServiceSettings()),
        )

    def _labels_volume(self) -> Path:
        """Shipping's small tmpfs, mounted before shipping starts (mounting it only when a
        disk-full fault comes would make the filesystem series jump at the injection)."""
        path = self.run_dir / "volumes" / "shipping"
        if self._use_cgroups and not path.is_mount():  # root: the same needs as cgroups
            from warroom.gym.live.faults import mount_volume

            mount_volume(path, LABELS_MIB, self.registry)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _confined(self, service: str, argv: list[str]) -> list[str]:
        """`argv` started inside the service's cgroup, as a container's process is: a CPU quota
        and a memory limit. Started inside, not moved in: cgroup v1 leaves the memory a
        process already has charged to its old group, so a moved service would seem to use
        next to nothing, and every allocation after the move would look like a leak."""
        if not self._use_cgroups:
            return argv
        from warroom.gym.live import cgroups

        if service not in self._cgroups:
            group = cgroups.Cgroup(self.cgroup_name(service))
            group.create()
            group.set_cpu_limit(CPU_CORES)
            group.set_memory_limit(MEMORY_MIB * 1024 * 1024)
            self.registry.add_cgroup(group)
            self._cgroups[service] = group
        return self._cgroups[service].command(argv)

    def _redis_command(self) -> list[str]:
        redis = _binary("redis-server")
        port = str(self.layout.port("redis"))
        return [redis, "--port", port, "--bind", HOST, "--save", "", "--appendonly", "no",
                "--dir", str(self.run_dir)]  # fmt: skip

    def _wait_redis(self) -> None:
        import redis

        client = redis.Redis(host=HOST, port=self.layout.port("redis"), socket_timeout=1)
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    return
            time.sleep(0.2)
        raise StackError("redis did not answer PING")

    def _wait_port(self, name: str) -> None:
        import socket

        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection((HOST, self.layout.port(name)), timeout=1),
            ):
                return
            if not self.processes[name].alive():
                raise StackError(f"{name} exited: see {self.processes[name].log}")
            time.sleep(0.2)
        raise StackError(f"{name} does not listen on {self.layout.port(name)}")

    def _proxy_command(self) -> list[str]:
        return [sys.executable, "-m", "warroom.gym.live.proxy",
                "--layout-base", str(self.layout.base_port),
                "--control-port", str(self.layout.port("proxy-control"))]  # fmt: skip

    def _start_exporters(self) -> None:
        listen = "--web.listen-address={host}:{port}"
        pg_url = f"postgresql://postgres@{HOST}:{self.layout.port('postgres')}/shop?sslmode=disable"
        redis = [_binary("prometheus-redis-exporter"),
                 f"--redis.addr=redis://{HOST}:{self.layout.port('redis')}",
                 listen.format(host=HOST, port=self.layout.port("redis-exporter"))]  # fmt: skip
        self._start("redis-exporter", redis, ready=f"{self.url('redis-exporter')}/metrics")
        pg_listen = listen.format(host=HOST, port=self.layout.port("postgres-exporter"))
        postgres = [_binary("prometheus-postgres-exporter"), pg_listen]
        ready = f"{self.url('postgres-exporter')}/metrics"
        self._start("postgres-exporter", postgres, ready, env={"DATA_SOURCE_NAME": pg_url})
        node = [_binary("prometheus-node-exporter"), "--collector.disable-defaults",
                "--collector.cpu", "--collector.meminfo", "--collector.loadavg",
                "--collector.filesystem", "--collector.pressure",
                listen.format(host=HOST, port=self.layout.port("node-exporter"))]  # fmt: skip
        self._start("node-exporter", node, ready=f"{self.url('node-exporter')}/metrics")
        if self._use_cgroups:
            volumes = self.run_dir / "volumes.json"
            volumes.write_text(json.dumps({"shipping": str(self.run_dir / "volumes" / "shipping")}))
            cgroup = [sys.executable, "-m", "warroom.gym.live.exporter",
                      "--port", str(self.layout.port("cgroup-exporter")),
                      "--volumes", str(volumes),
                      "--cgroup-prefix", f"{self.layout.base_port}-"]  # fmt: skip
            self._start("cgroup-exporter", cgroup, ready=f"{self.url('cgroup-exporter')}/metrics")

    def _start_prometheus(self) -> None:
        folder = self.run_dir / "prometheus"
        folder.mkdir(exist_ok=True)
        (folder / "rules.yml").write_text(RULES)
        (folder / "prometheus.yml").write_text(self._prometheus_yml(folder / "rules.yml"))
        command = [_binary("prometheus"), f"--config.file={folder / 'prometheus.yml'}",
                   f"--storage.tsdb.path={folder / 'data'}",
                   f"--web.listen-address={HOST}:{self.layout.port('prometheus')}"]  # fmt: skip
        self._start("prometheus", command, ready=f"{self.prometheus_url}/-/ready")

    def _prometheus_yml(self, rules: Path) -> str:
        jobs = [(s, self.layout.port(s)) for s in SERVICES]
        jobs += [("redis", self.layout.port("redis-exporter"))]
        jobs += [("postgres", self.layout.port("postgres-exporter"))]
        jobs += [("node", self.layout.port("node-exporter"))]
        scrape = [
            f"  - job_name: {name}\n"
            f"    static_configs: [{{targets: ['{HOST}:{port}'], labels: {{service: {name}}}}}]"
            for name, port in jobs
        ]
        if self._use_cgroups:  # its series carry their own service label
            exporter = f"{HOST}:{self.layout.port('cgroup-exporter')}"
            scrape.append(
                "  - job_name: cgroups\n    honor_labels: true\n"
                f"    static_configs: [{{targets: ['{exporter}']}}]"
            )
        return (
            f"global: {{scrape_interval: {SCRAPE_S}s, evaluation_interval: {SCRAPE_S}s}}\n"
            f'rule_files: ["{rules}"]\n'
            "alerting:\n  alertmanagers:\n"
            f"    - static_configs: [{{targets: ['{HOST}:{self.layout.port('alertmanager')}']}}]\n"
            "scrape_configs:\n" + "\n".join(scrape) + "\n"
        )

    def _start_alertmanager(self) -> None:
        folder = self.run_dir / "alertmanager"
        folder.mkdir(exist_ok=True)
        (folder / "alertmanager.yml").write_text(
            f"""route:
  receiver: warroom
  group_by: [alertname]
  group_wait: 5s
  group_interval: 30s
  repeat_interval: 1h
receivers:
  - name: warroom
    webhook_configs:
      - url: {self.serve_url}/api/v1/alerts
        send_resolved: true
        http_config:
          authorization: {{type: Bearer, credentials: {self.token}}}
"""
        )
        command = [_binary("prometheus-alertmanager"),
                   f"--config.file={folder / 'alertmanager.yml'}",
                   f"--storage.path={folder / 'data'}", "--cluster.listen-address=",
                   f"--web.listen-address={HOST}:{self.layout.port('alertmanager')}"]  # fmt: skip
        self._start("alertmanager", command, ready=f"{self.alertmanager_url}/-/ready")

    def _start_serve(self) -> None:
        config = self.run_dir / "warroom.toml"
        config.write_text(
            f"""[fetch]
budget_s = 60

[sources.prometheus]
url = "{self.prometheus_url}"
service_labels = ["service"]
min_step_s = {SCRAPE_S}
rate_window_s = {6 * SCRAPE_S}

[sources.received]
path = "{self.run_dir / "received"}"

[sources.changes]
path = "{self.changes_path}"

[server]
workers = 1

[alerts]
lookback_s = {LOOKBACK_S:g}
after_s = 60
"""
        )
        command = [*_warroom(), "serve", "--config", str(config),
                   "--port", str(self.layout.port("serve")),
                   "--data-dir", str(self.run_dir / "serve")]  # fmt: skip
        self._start("serve", command, env={"WARROOM_API_TOKENS": self.token})

    # -- supervision --------------------------------------------------------------------------

    def _supervise(self) -> None:
        """Restart a service or Redis that died on its own (bounded by the stack's life)."""
        watched = (*SERVICES, "redis")
        while not self._stop.wait(SUPERVISE_S):
            for name in watched:
                with self._lock:
                    proc = self.processes.get(name)
                    if proc is None or proc.alive() or name in self._restarting:
                        continue
                    code = proc.exit_code()
                    self._restarted(name, code)

    def _restarted(self, name: str, code: int | None) -> None:
        reason = "OOMKilled" if code == -9 else f"exit code {code}"
        append_change(self.changes_path, name, "restart", f"container restarted ({reason})")
        log.warning("%s died (%s): restarting it", name, reason)
        try:
            if name == "redis":
                self._start("redis", self._redis_command(), ready=None)
            else:
                self._start_service(name)
        except StackError as err:
            log.error("restarting %s failed: %s", name, err)

    def _record(self) -> None:
        record_pids(self.run_dir, {n: p.pid for n, p in self.processes.items() if p.alive()})


def append_change(path: Path, service: str, kind: str, description: str) -> None:
    """One change event, as a CI pipeline or Kubernetes would report it (changes_file.py)."""
    line = {"time": time.time(), "service": service, "kind": kind, "description": description}
    with path.open("a") as out:
        out.write(json.dumps(line) + "\n")


def postgres_root(run_dir: Path) -> Path:
    """Where the run's PostgreSQL keeps its data: in the run dir, or, when user postgres
    cannot reach the run dir (a folder only root may enter, as pytest's are), in a folder of
    its own under /tmp that the run dir links to (`cleanup` follows the link)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    link = run_dir / "postgres"
    if link.is_symlink():
        return link.resolve()
    if all(folder.stat().st_mode & stat.S_IXOTH for folder in (run_dir, *run_dir.parents)):
        return link
    outside = Path(tempfile.mkdtemp(prefix="warroom-gym-postgres-"))
    outside.chmod(0o755)
    link.symlink_to(outside, target_is_directory=True)
    return outside


def cleanup(run_dir: Path) -> list[str]:
    """Undo what a crashed run left: its processes, PostgreSQL, faults' leftovers, cgroups."""
    run_dir = run_dir.resolve()
    done = kill_recorded(run_dir)
    pg = Postgres((run_dir / "postgres").resolve(), 0)
    if (pg.data / "postmaster.pid").exists():
        pg.stop()
        done.append("stopped postgres")
    if (run_dir / "postgres").is_symlink():
        shutil.rmtree(pg.root, ignore_errors=True)
        done.append(f"removed {pg.root}")
    from warroom.gym.live import registry

    done += registry.cleanup(run_dir)
    return done


@contextlib.contextmanager
def fresh_run_dir(root: Path | None, base_port: int) -> Iterator[Path]:
    """The run's folder: given, or one under /tmp kept after the run (logs, episodes)."""
    folder = root or Path("/tmp") / f"warroom-gym-live-{base_port}"
    if folder.exists() and (folder / "pids.json").exists():
        raise StackError(
            f"{folder} belongs to a running or crashed gym: warroom gym live --cleanup"
        )
    folder.mkdir(parents=True, exist_ok=True)
    yield folder


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/sbin")
    if found is None:
        raise StackError(f"{name} is not installed: run scripts/install-servers.sh")
    return found


def _warroom() -> list[str]:
    return [sys.executable, "-m", "warroom.cli"]


def _shop(*args: str) -> list[str]:
    return [sys.executable, "-m", "warroom.gym.live.shop", *args]


__all__ = ["EDGES", "Stack", "append_change", "cleanup", "fresh_run_dir"]
