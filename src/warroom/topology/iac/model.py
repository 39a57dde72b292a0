"""What infrastructure code declares about who calls whom, as frozen values.

    graph = read_iac(Path("deploy/"))          # warroom.topology.iac.load
    graph.edge_pairs()                         # [("cartservice", "redis-cart"), ...]
    graph.component("redis-cart").kind         # "cache"

Every component and edge names the file and line it was derived from ("path:LINE"), so a
reader of a report can check the claim. The kind rules and the host parsing at the bottom are
the vocabulary the readers share (Kubernetes and Compose read the same container images and
environment variables).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Kind = Literal[
    "service", "database", "cache", "queue", "load-balancer", "external", "storage", "unknown"
]
KINDS: tuple[Kind, ...] = get_args(Kind)


@dataclass(frozen=True)
class Component:
    """One thing that serves or stores: a workload, a database, a load balancer, a host outside.

    `aliases` are the other names it answers to (the Kubernetes Services that select it, a
    cloud resource's own name), so telemetry service names can be matched to it."""

    name: str
    kind: Kind
    source: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeclaredEdge:
    """caller -> callee as the code declares it; `via` says how it was derived."""

    caller: str
    callee: str
    via: str
    source: str


@dataclass(frozen=True)
class IacGraph:
    """Components and declared edges of one folder, with what could not be understood."""

    components: tuple[Component, ...] = ()
    edges: tuple[DeclaredEdge, ...] = ()
    unknown_kinds: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def edge_pairs(self) -> list[tuple[str, str]]:
        """The distinct (caller, callee) pairs, sorted: what a service graph is built from."""
        return sorted({(edge.caller, edge.callee) for edge in self.edges})

    def component(self, name: str) -> Component | None:
        """The component called `name` (or with that alias), None when there is none."""
        for component in self.components:
            if component.name == name:
                return component
        return next((c for c in self.components if name in c.aliases), None)

    def kinds(self) -> dict[str, Kind]:
        """Component name -> kind."""
        return {component.name: component.kind for component in self.components}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (what `warroom topology show --json` prints)."""
        return {
            "components": [
                {"name": c.name, "kind": c.kind, "source": c.source, "aliases": list(c.aliases)}
                for c in self.components
            ],
            "edges": [
                {"caller": e.caller, "callee": e.callee, "via": e.via, "source": e.source}
                for e in self.edges
            ],
            "unknown_kinds": dict(sorted(self.unknown_kinds.items())),
            "problems": list(self.problems),
        }


# The more specific kind wins when two files declare the same name (a Compose file that says
# redis and a manifest that only says "some workload").
_KIND_RANK = {kind: rank for rank, kind in enumerate(("unknown", "external", "service"))}


def merge(graphs: Iterable[IacGraph]) -> IacGraph:
    """One graph from several readers' graphs: components by name, edges without repeats."""
    components: dict[str, Component] = {}
    edges: dict[DeclaredEdge, None] = {}
    unknown: dict[str, int] = {}
    problems: list[str] = []
    for graph in graphs:
        for component in graph.components:
            components[component.name] = _better(components.get(component.name), component)
        edges.update(dict.fromkeys(graph.edges))
        for kind, count in graph.unknown_kinds.items():
            unknown[kind] = unknown.get(kind, 0) + count
        problems.extend(graph.problems)
    return IacGraph(tuple(components.values()), tuple(edges), unknown, problems)


def _better(old: Component | None, new: Component) -> Component:
    """The more specific of two declarations of one name, with the aliases of both."""
    if old is None:
        return new
    keep = new if _KIND_RANK.get(new.kind, 9) > _KIND_RANK.get(old.kind, 9) else old
    aliases = tuple(dict.fromkeys((*old.aliases, *new.aliases)))
    return Component(keep.name, keep.kind, keep.source, aliases)


def count_unknown(counts: dict[str, int], kind: str) -> None:
    """Count one resource kind that no reader understands."""
    counts[kind] = counts.get(kind, 0) + 1


class LineMap(dict[Any, Any]):
    """A YAML mapping that remembers the line (1-based) of itself and of each key."""

    line: int = 0
    lines: dict[Any, int]

    def line_of(self, key: object) -> int:
        """The line of `key`, else the mapping's own line."""
        return getattr(self, "lines", {}).get(key, self.line)


class LineList(list[Any]):
    """A YAML sequence that remembers the line (1-based) of each item."""

    line: int = 0
    lines: list[int]

    def line_of(self, index: int) -> int:
        """The line of item `index`, else the sequence's own line."""
        lines = getattr(self, "lines", [])
        return lines[index] if 0 <= index < len(lines) else self.line


def line_of(node: object, key: object = None) -> int:
    """The line of `key` in a LineMap or LineList (the node's own line without a key); 0 when
    the node came from a reader that keeps no lines."""
    if isinstance(node, LineMap):
        return node.line if key is None else node.line_of(key)
    if isinstance(node, LineList):
        return node.line if not isinstance(key, int) else node.line_of(key)
    return 0


# -- Kinds from what a container runs ------------------------------------------------------

# Matched against the image's repository name (no registry, no tag), first match wins.
_IMAGE_KINDS: tuple[tuple[str, Kind], ...] = (
    ("redis", "cache"),
    ("memcached", "cache"),
    ("valkey", "cache"),
    ("keydb", "cache"),
    ("dragonfly", "cache"),
    ("hazelcast", "cache"),
    ("postgres", "database"),
    ("postgis", "database"),
    ("mysql", "database"),
    ("mariadb", "database"),
    ("mongo", "database"),
    ("cassandra", "database"),
    ("scylla", "database"),
    ("cockroach", "database"),
    ("couchdb", "database"),
    ("couchbase", "database"),
    ("elasticsearch", "database"),
    ("opensearch", "database"),
    ("clickhouse", "database"),
    ("influxdb", "database"),
    ("neo4j", "database"),
    ("mssql", "database"),
    ("kafka", "queue"),
    ("rabbitmq", "queue"),
    ("nats", "queue"),
    ("activemq", "queue"),
    ("pulsar", "queue"),
    ("redpanda", "queue"),
    ("haproxy", "load-balancer"),
    ("traefik", "load-balancer"),
    ("ingress-nginx", "load-balancer"),
    ("minio", "storage"),
)
_PORT_KINDS: dict[int, Kind] = {
    6379: "cache",
    11211: "cache",
    5432: "database",
    3306: "database",
    27017: "database",
    9042: "database",
    26257: "database",
    5984: "database",
    9200: "database",
    5672: "queue",
    9092: "queue",
    4222: "queue",
    61616: "queue",
}
_PORT_NAME_KINDS: dict[str, Kind] = {
    "redis": "cache",
    "memcached": "cache",
    "mysql": "database",
    "postgres": "database",
    "postgresql": "database",
    "mongo": "database",
    "mongodb": "database",
    "amqp": "queue",
    "kafka": "queue",
}
# Variables only a database server's own image reads (a client sets *_HOST, not these).
_SERVER_ENV: dict[str, Kind] = {
    "MYSQL_ROOT_PASSWORD": "database",
    "MYSQL_ALLOW_EMPTY_PASSWORD": "database",
    "MYSQL_RANDOM_ROOT_PASSWORD": "database",
    "MONGO_INITDB_ROOT_USERNAME": "database",
    "POSTGRES_INITDB_ARGS": "database",
    "RABBITMQ_DEFAULT_USER": "queue",
}
_DB_NAME = re.compile(r"(^|[-_])(db|database|mongo|mysql|postgres|redis|cache)$")


def image_kind(image: str) -> Kind | None:
    """The kind an image runs (redis:alpine -> cache), None for an application image."""
    repository = image.rsplit("/", 1)[-1].split("@")[0].split(":")[0].lower()
    if "exporter" in repository:  # a metrics sidecar, not the store it watches
        return None
    return next((kind for word, kind in _IMAGE_KINDS if word in repository), None)


def guess_kind(
    name: str,
    images: Iterable[str] = (),
    ports: Iterable[int | str] = (),
    env_names: Iterable[str] = (),
) -> Kind:
    """A workload's kind from its images, then its ports, then its server-only variables, then
    its name (user-db); "service" when nothing says it is a store."""
    for image in images:
        if kind := image_kind(image):
            return kind
    for port in ports:
        kind = _PORT_NAME_KINDS.get(port.lower()) if isinstance(port, str) else None
        if kind := kind or (_PORT_KINDS.get(port) if isinstance(port, int) else None):
            return kind
    for env in env_names:
        if env in _SERVER_ENV:
            return _SERVER_ENV[env]
    match = _DB_NAME.search(name.lower())
    if match:
        return "cache" if match.group(2) in ("redis", "cache") else "database"
    return "service"


# -- Hosts named in a configuration value ---------------------------------------------------

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?"
_HOSTNAME = rf"{_LABEL}(?:\.{_LABEL})*"
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://([^/\s?#\"'<>]+)")
_HOST_PORT = re.compile(rf"(?<![\w.@/:-])({_HOSTNAME}):(\d{{1,5}})(?![\w.])")
_KEY_HOST = re.compile(
    rf"(?i)(?:^|[;\s])(?:server|host|hostname|data source|address|addr)\s*=\s*({_HOSTNAME})"
)
_WHOLE_HOST = re.compile(rf"^{_HOSTNAME}$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_LOCAL = {"localhost", "0.0.0.0", "127.0.0.1", "::", "::1"}


@dataclass(frozen=True)
class HostRef:
    """A host named in a value; `explicit` when written as a URL, host:port or host= (a
    whole value that is only a word may be a hostname or just a word)."""

    host: str
    explicit: bool


def hosts_in(value: str) -> list[HostRef]:
    """The hosts a configuration value points at: URLs (also several hosts, user:pass@ and
    jdbc:), host:port, Server=host; connection strings, or a value that is only a hostname."""
    found: dict[str, bool] = {}
    rest = value
    for match in _URL.finditer(value):
        for host in _netloc_hosts(match.group(1)):
            found[host] = True
        rest = rest.replace(match.group(0), " ")
    for match in [*_HOST_PORT.finditer(rest), *_KEY_HOST.finditer(rest)]:
        found[match.group(1)] = True
    whole = value.strip()
    if not found and _WHOLE_HOST.match(whole):
        found[whole] = False
    return [HostRef(host.lower(), explicit) for host, explicit in found.items() if _usable(host)]


def _netloc_hosts(netloc: str) -> list[str]:
    """Hosts of a URL's netloc, which may hold user:password@ and several host:port."""
    hosts = netloc.rsplit("@", 1)[-1]
    out = []
    for part in hosts.split(","):
        host = part[1:].split("]")[0] if part.startswith("[") else part.split(":")[0]
        if host:
            out.append(host)
    return out


def _usable(host: str) -> bool:
    """False for local addresses, placeholders and numbers that only look like hosts."""
    lowered = host.lower()
    if lowered in _LOCAL or lowered.startswith("127."):
        return False
    return bool(re.search(r"[a-z]", lowered)) or bool(_IPV4.match(lowered))


_SECRET_IN_URL = re.compile(r"//[^/@\s]+@")
_SECRET_PAIR = re.compile(r"(?i)\b(password|pwd|secret|token)=([^;&\s]+)")


def shown(value: str, limit: int = 80) -> str:
    """A value fit to print in `via`: credentials masked, long values cut."""
    masked = _SECRET_PAIR.sub(r"\1=***", _SECRET_IN_URL.sub("//***@", value))
    return masked if len(masked) <= limit else masked[: limit - 3] + "..."


def str_items(mapping: Mapping[Any, Any]) -> dict[str, str]:
    """The entries of a mapping whose keys and values are plain scalars, as strings."""
    return {
        str(key): str(value)
        for key, value in mapping.items()
        if isinstance(value, str | int | float) and not isinstance(value, bool)
    }
