"""The gym's cAdvisor: every cgroup under warroom_gym/ exported with cAdvisor's metric names,
labelled service=<name> and container=<name>, so warroom reads the live shop's containers as it
would read a Kubernetes cluster's.

    python -m warroom.gym.live.exporter --port 18205 [--volumes run/volumes.json]
        [--volume shipping=/run/gym/volumes/shipping] [--cgroup-prefix 18000-]

A group's name is the service's, optionally after a run's prefix ("18000-cart" -> cart: a
leading "<digits>-" is always taken off). `--volumes` is a JSON file {service: mount path},
read again on every scrape (the stack may add volumes later); each volume is exported as
container_fs_usage_bytes / container_fs_limit_bytes. The counters are read from the cgroup
files on each scrape (a custom Collector); a group removed mid-scrape is left out of it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from warroom.gym.live import cgroups
from warroom.gym.live.cgroups import PARENT, Cgroup, CgroupError, CgroupStats
from warroom.gym.live.contracts import HOST

LABELS = ["service", "container", "id"]
FS_LABELS = ["service", "container", "id", "device"]
_RUN_PREFIX = re.compile(r"^\d+-")

# (name, help, kind, the CgroupStats field); counters get their _total from prometheus_client
SERIES: tuple[tuple[str, str, str, str], ...] = (
    ("container_cpu_usage_seconds", "Cumulative CPU time consumed", "counter", "cpu_usage_s"),
    ("container_cpu_cfs_periods", "Elapsed enforcement periods", "counter", "cpu_periods"),
    ("container_cpu_cfs_throttled_periods", "Throttled periods", "counter",
     "cpu_throttled_periods"),
    ("container_cpu_cfs_throttled_seconds", "Total time throttled", "counter",
     "cpu_throttled_s"),
    ("container_memory_working_set_bytes", "Current working set", "gauge",
     "memory_working_set_bytes"),
    ("container_memory_rss", "Size of RSS", "gauge", "memory_rss_bytes"),
    ("container_memory_usage_bytes", "Current memory usage, page cache included", "gauge",
     "memory_usage_bytes"),
    ("container_memory_failcnt", "Times memory usage hit the limit", "counter",
     "memory_failcnt"),
    ("container_spec_memory_limit_bytes", "Memory limit (0: none)", "gauge",
     "memory_limit_bytes"),
    ("container_oom_events", "OOM kills in the container", "counter", "oom_kills"),
    ("container_spec_cpu_quota", "CPU quota in microseconds per period (-1: none)", "gauge",
     "cpu_quota_us"),
    ("container_spec_cpu_period", "CPU period in microseconds", "gauge", "cpu_period_us"),
)  # fmt: skip


def service_of(group: str, prefix: str = "") -> str:
    """The service a group holds: its name without the run's prefix."""
    if prefix and group.startswith(prefix):
        group = group[len(prefix) :]
    return _RUN_PREFIX.sub("", group)


class CgroupCollector(Collector):
    """Reads every gym cgroup (and the registered volumes) on each collect()."""

    def __init__(
        self,
        prefix: str = "",
        volumes_file: Path | None = None,
        volumes: Mapping[str, str] | None = None,
    ) -> None:
        self.prefix = prefix
        self.volumes_file = volumes_file
        self.volumes = dict(volumes or {})

    def collect(self) -> Iterator[Metric]:
        families = {name: _family(name, help_, kind) for name, help_, kind, _ in SERIES}
        for group, stats in self._readings():
            service = service_of(group, self.prefix)
            labels = [service, service, f"/{PARENT}/{group}"]
            for name, _, _, attribute in SERIES:
                families[name].add_metric(labels, float(getattr(stats, attribute)))
        yield from families.values()
        yield from self._filesystems()

    def _readings(self) -> Iterator[tuple[str, CgroupStats]]:
        for group in cgroups.list_groups():
            if not group.startswith(self.prefix):
                continue
            with contextlib.suppress(CgroupError):  # gone, or not in every hierarchy
                yield group, Cgroup(group).stats()

    def _filesystems(self) -> Iterator[Metric]:
        usage = GaugeMetricFamily(
            "container_fs_usage_bytes", "Bytes used on the container's volume", labels=FS_LABELS
        )
        limit = GaugeMetricFamily(
            "container_fs_limit_bytes", "Size of the container's volume", labels=FS_LABELS
        )
        for service, path in sorted(self._volumes().items()):
            try:
                fs = os.statvfs(path)
            except OSError:
                continue
            labels = [service, service, f"/{PARENT}/{service}", path]
            usage.add_metric(labels, float((fs.f_blocks - fs.f_bfree) * fs.f_frsize))
            limit.add_metric(labels, float(fs.f_blocks * fs.f_frsize))
        yield usage
        yield limit

    def _volumes(self) -> dict[str, str]:
        found = dict(self.volumes)
        if self.volumes_file is not None:
            with contextlib.suppress(OSError, ValueError):
                loaded = json.loads(self.volumes_file.read_text())
                if isinstance(loaded, dict):
                    found |= {str(k): str(v) for k, v in loaded.items()}
        return found


def _family(name: str, help_: str, kind: str) -> CounterMetricFamily | GaugeMetricFamily:
    if kind == "counter":
        return CounterMetricFamily(name, help_, labels=LABELS)
    return GaugeMetricFamily(name, help_, labels=LABELS)


def _volume_option(text: str) -> tuple[str, str]:
    service, sep, path = text.partition("=")
    if not sep or not service or not path:
        raise argparse.ArgumentTypeError(f"--volume wants SERVICE=PATH, not {text!r}")
    return service, path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cgroup-prefix", default="", help="only groups named so (a run's)")
    parser.add_argument("--volumes", type=Path, default=None, help="JSON {service: path}")
    parser.add_argument("--volume", type=_volume_option, action="append", default=[])
    args = parser.parse_args(argv)
    from prometheus_client import start_http_server

    registry = CollectorRegistry()
    registry.register(CgroupCollector(args.cgroup_prefix, args.volumes, dict(args.volume)))
    start_http_server(args.port, addr=HOST, registry=registry)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()


if __name__ == "__main__":
    main()
