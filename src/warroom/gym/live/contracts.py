"""What the live gym's parts agree on: the shop's shape, its ports, each service's config file,
and the handle a fault injector gets on the running processes.

    layout = Layout(base_port=18000)
    layout.port("cart")                    # 18102: where cart itself listens
    layout.edge_port("checkout", "cart")   # 18301: where checkout calls cart (the edge proxy)
    ServiceConfig.model_validate_json(path.read_text())   # what a service reads at start

Every call between two components goes through the edge proxy (gym/live/proxy.py) on its own
loopback port, so a fault can slow or break one edge, or every edge of one component in both
directions, the way a network fault on a host would (tc netem is not in this kernel).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

HOST = "127.0.0.1"
SERVICES = ("frontend", "checkout", "cart", "orders", "payment", "shipping", "worker")
EXTERNAL = "payment-gateway"  # a third party: its own process, none of our telemetry
DATASTORES = ("redis", "postgres")
# caller -> callee, every call the shop makes (the declared graph an episode's case ships)
EDGES: tuple[tuple[str, str], ...] = (
    ("frontend", "checkout"),
    ("frontend", "cart"),
    ("checkout", "cart"),
    ("checkout", "orders"),
    ("checkout", "payment"),
    ("checkout", "shipping"),
    ("payment", EXTERNAL),
    ("cart", "redis"),
    ("orders", "postgres"),
    ("orders", "redis"),  # publishes each order to the stream the worker consumes
    ("worker", "redis"),
    ("worker", "postgres"),
    ("worker", "shipping"),
)
STREAM = "shop:orders"  # the Redis stream orders publishes to and the worker consumes
CONSUMER_GROUP = "fulfilment"

# Offsets from the base port. Each component's own port, then the infrastructure's.
_OWN = {name: 100 + i for i, name in enumerate((*SERVICES, EXTERNAL))}
_OWN |= {"redis": 200, "postgres": 201}
_INFRA = {
    "redis-exporter": 202,
    "postgres-exporter": 203,
    "node-exporter": 204,
    "cgroup-exporter": 205,
    "prometheus": 90,
    "alertmanager": 93,
    "alertmanager-cluster": 94,
    "serve": 80,
    "receiver": 318,  # warroom receive: OTLP/HTTP
    "proxy-control": 299,
}
_EDGE_BASE = 300


@dataclass(frozen=True)
class Layout:
    """Every port of one gym run, from one base (so two runs can share a machine)."""

    base_port: int = 18000

    def port(self, name: str) -> int:
        """Where a component (service, datastore, exporter, stack server) listens itself."""
        offset = _OWN.get(name, _INFRA.get(name))
        if offset is None:
            raise KeyError(f"no port for {name!r}")
        return self.base_port + offset

    def edge_port(self, caller: str, callee: str) -> int:
        """Where `caller` reaches `callee`: the edge proxy's listening port for that edge."""
        return self.base_port + _EDGE_BASE + EDGES.index((caller, callee))

    def peers(self, caller: str) -> dict[str, str]:
        """callee -> "host:port" as `caller` must dial it (through the edge proxy)."""
        return {b: f"{HOST}:{self.edge_port(a, b)}" for a, b in EDGES if a == caller}


class ServiceSettings(BaseModel):
    """The knobs a config push can change (a bad push sets one of them wrong)."""

    model_config = ConfigDict(extra="forbid")

    client_timeout_s: float = Field(default=2.0, gt=0, le=60)  # every outbound call
    db_pool_size: int = Field(default=5, ge=1, le=100)  # orders' and worker's PostgreSQL pools
    retries: int = Field(default=1, ge=0, le=10)  # extra attempts on a failed idempotent call


class ServiceConfig(BaseModel):
    """The JSON file a shop service reads at start (`--config`): written by the stack."""

    model_config = ConfigDict(extra="forbid")

    service: str
    port: int
    version: str = "v1"  # "v2-bad" runs the faulty release a bad deploy ships
    peers: dict[str, str]  # callee -> host:port, through the edge proxy
    postgres_dsn: str = ""  # host/port point at the proxy edge; empty when not a caller
    otlp_endpoint: str  # http://host:port of warroom's OTLP/HTTP receiver
    labels_dir: str = ""  # shipping's label files: a small volume a disk-full fault fills
    log_path: str  # JSON lines, one object per log record, stack traces on errors
    settings: ServiceSettings = Field(default_factory=ServiceSettings)


class Processes(Protocol):
    """The running gym as a fault injector sees it (the stack implements it)."""

    layout: Layout
    run_dir: Path  # everything of this run: configs, logs, data, the cleanup registry

    def pid(self, name: str) -> int:
        """The live pid of a service, the gateway or a datastore ("redis", "postgres")."""
        ...

    def restart(
        self, name: str, *, version: str | None = None, settings: ServiceSettings | None = None
    ) -> None:
        """Stop a service and start it again (optionally another version or settings),
        waiting until it answers /healthz; its cgroup limits are kept."""
        ...

    def postgres_dsn(self) -> str:
        """A superuser DSN straight to PostgreSQL (not through the proxy)."""
        ...

    def cgroup_name(self, name: str) -> str:
        """The cgroup (under warroom_gym/ in each v1 controller) the component runs in."""
        ...
