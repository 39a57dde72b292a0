"""The Kubernetes connector: deploys, config changes, restarts, scaling and node trouble from
the API server into the store's events table.

    config = Config.from_kubeconfig()                 # or Config.in_cluster(), or Config(url=...)
    fetcher = Fetcher(store, sources(config))
    fetcher.cover([TimeRange(start - 900, end)])      # rows: ts, service, kind, description

What is read: Events (events.k8s.io/v1, or core/v1 on servers without it, or both: one row per
Event object either way), ReplicaSets (a Deployment's new revision is a deploy, with the image
it changed), pod status (last terminations: OOMKilled and crashes; readiness, scheduling and
disruption conditions), ConfigMap and Secret metadata (who last wrote their data, from
managedFields; values are never fetched) and Node conditions. `placements()` says which pods
ran on which node. Objects are mapped to services by `service_from` (kubernetes_objects.py).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import Field, ValidationError, field_validator

from warroom.errors import BackendError, InputError
from warroom.model import Event, TimeRange
from warroom.telemetry.http import Endpoint
from warroom.telemetry.kubernetes_api import (
    BACKEND,
    METADATA_ONLY,
    KubeStatusError,
    Listing,
    Snapshots,
    list_all,
    open_client,
)
from warroom.telemetry.kubernetes_config import kubeconfig_fields
from warroom.telemetry.kubernetes_objects import (
    Obj,
    Occurrence,
    ServiceMapper,
    core_event,
    deploys,
    event_row,
    new_event,
)
from warroom.telemetry.kubernetes_state import (
    Placement,
    config_changes,
    node_conditions,
    pod_conditions,
    pod_placement,
    restarts,
    scheduled_placement,
)
from warroom.telemetry.sources import Batch, Source

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
Part = Literal["events", "deploys", "pods", "config", "nodes"]
PARTS: tuple[Part, ...] = ("events", "deploys", "pods", "config", "nodes")


class Config(Endpoint):
    """An API server and what to read from it (`[sources.kubernetes]` in warroom.toml)."""

    namespaces: list[str] = Field(default_factory=list)  # empty: every namespace
    # first rule that names a service wins: owner (Deployment/StatefulSet/DaemonSet/CronJob),
    # a label key, or name (the object's name with replica suffixes stripped)
    service_from: list[str] = Field(
        default_factory=lambda: ["owner", "app.kubernetes.io/name", "app", "name"], min_length=1
    )
    events_api: Literal["events.k8s.io/v1", "v1", "both"] = "events.k8s.io/v1"
    include: list[Part] = Field(default_factory=lambda: list(PARTS))
    ca_data: str | None = None  # a kubeconfig's certificate-authority-data, decoded (PEM)
    page_size: int = Field(default=500, ge=1, le=10_000)
    # per list: a bigger cluster is read in part, and the batch says so
    max_items: int = Field(default=100_000, ge=1)
    # how long one listing serves the other chunks of a cover()
    snapshot_s: float = Field(default=30.0, ge=0, le=600)

    @field_validator("namespaces")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        bad = [ns for ns in value if not ns or "/" in ns]
        if bad:
            raise ValueError(f"not namespace names: {bad}")
        return value

    @classmethod
    def from_kubeconfig(
        cls, path: Path | None = None, context: str | None = None, **fields: Any
    ) -> Config:
        """Server, CA and token of a kubeconfig context (default: the current one); `path`
        defaults to $KUBECONFIG's first file, then ~/.kube/config."""
        if path is None:
            listed = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
            path = Path(listed) if listed else Path.home() / ".kube" / "config"
        return cls._validated({**kubeconfig_fields(path, context), **fields}, f"kubeconfig {path}")

    @classmethod
    def in_cluster(
        cls, env: Mapping[str, str] | None = None, root: Path = SERVICE_ACCOUNT, **fields: Any
    ) -> Config:
        """The API server as a pod sees it: the service's address and the pod's service account."""
        env = os.environ if env is None else env
        host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise InputError("not running in a pod: KUBERNETES_SERVICE_HOST is not set")
        if not (root / "token").is_file():
            raise InputError(f"in-cluster: no service-account token at {root / 'token'}")
        host = f"[{host}]" if ":" in host else host  # an IPv6 service address
        found: dict[str, Any] = {
            "url": f"https://{host}:{port}",
            "bearer_token_file": root / "token",
        }
        if (root / "ca.crt").is_file():
            found["ca_file"] = root / "ca.crt"
        return cls._validated({**found, **fields}, "in-cluster config")

    @classmethod
    def _validated(cls, values: dict[str, Any], where: str) -> Config:
        try:
            return cls(**values)
        except ValidationError as err:
            first = err.errors()[0]
            raise InputError(
                f"{where}: {'.'.join(map(str, first['loc']))}: {first['msg']}"
            ) from None


def _paths(prefix: str, resource: str, namespaces: list[str]) -> list[str]:
    if not namespaces:
        return [f"{prefix}/{resource}"]
    return [f"{prefix}/namespaces/{ns}/{resource}" for ns in namespaces]


class Cluster:
    """One API server, shared by the sources and placements(): a lazily opened client (no I/O
    in the constructor) and the lists it read, kept for `snapshot_s`. Safe across threads."""

    def __init__(self, config: Config, snapshots: Snapshots | None = None) -> None:
        self.config = config
        self._snapshots = snapshots or Snapshots(config.snapshot_s)
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def identity(self) -> str:
        """The server and every setting that changes the rows, never a credential."""
        c = self.config
        scope = ",".join(sorted(c.namespaces)) or "*"
        rules = ",".join(c.service_from)
        return f"kubernetes:{c.url}|ns={scope}|service={rules}|{c.events_api}|{','.join(c.include)}"

    def objects(self, prefix: str, resource: str, deadline: float, notes: list[str]) -> list[Obj]:
        """Every object of a resource in scope; a refused one is a note and no objects."""
        accept = METADATA_ONLY if resource in ("configmaps", "secrets") else None
        namespaces = [] if resource == "nodes" else self.config.namespaces
        found: list[Obj] = []
        for path in _paths(prefix, resource, namespaces):
            try:
                load = partial(self._list, path, deadline, accept)
                listing = self._snapshots.get(path, deadline, load)
            except KubeStatusError as err:
                if err.code != 403:
                    raise
                notes.append(f"{err}; {resource} not read")
                continue
            found.extend(listing.items)
            notes.extend([listing.note] if listing.note else [])
        return found

    def occurrences(self, deadline: float, notes: list[str]) -> list[Occurrence]:
        """Every Event object in scope, once each (by uid) whichever API it was read from."""
        apis = {"both": ("events.k8s.io/v1", "v1")}.get(
            self.config.events_api, (self.config.events_api,)
        )
        seen: dict[str, Occurrence] = {}
        for api in apis:
            try:
                found = self._events(api, deadline, notes)
            except KubeStatusError as err:
                if err.code != 404 or api != "events.k8s.io/v1":
                    raise
                found = [] if "v1" in apis else self._events("v1", deadline, notes)  # before 1.19
            for occ in found:
                seen.setdefault(occ.uid, occ)
        return list(seen.values())

    def _events(self, api: str, deadline: float, notes: list[str]) -> list[Occurrence]:
        prefix, parse = (
            ("/apis/events.k8s.io/v1", new_event) if api != "v1" else ("/api/v1", core_event)
        )
        return [
            occ for item in self.objects(prefix, "events", deadline, notes) if (occ := parse(item))
        ]

    def _list(self, path: str, deadline: float, accept: str | None) -> Listing:
        c = self.config
        return list_all(
            self.client(),
            path,
            deadline,
            page_size=c.page_size,
            max_items=c.max_items,
            accept=accept,
        )

    def client(self) -> httpx.Client:
        """The HTTP client, opened on first use (reads the token and CA files)."""
        with self._lock:
            if self._client is None:
                endpoint = Endpoint(**self.config.model_dump(include=set(Endpoint.model_fields)))
                self._client = open_client(endpoint, self.config.ca_data)
            return self._client

    def close(self) -> None:
        """Close the HTTP client (a later call opens a new one)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


class KubernetesSource:
    """Change events of one cluster for the store's events table (the Source protocol)."""

    name = BACKEND
    table = "events"

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def identity(self) -> str:
        """The cluster's identity (server, scope, mapping)."""
        return self.cluster.identity()

    def fetch(self, window: TimeRange, deadline: float) -> Batch:
        """The window's events; a resource this identity may not list becomes a degraded note."""
        notes: list[str] = []
        rows = [r for r in self._rows(deadline, notes) if window.contains(r.time)]
        rows = sorted(dict.fromkeys(rows), key=lambda r: (r.time, r.service, r.kind))
        columns: dict[str, list[Any]] = {
            "ts": [r.time for r in rows],
            "service": [r.service for r in rows],
            "kind": [r.kind for r in rows],
            "description": [r.description for r in rows],
        }
        return Batch(columns, tuple(dict.fromkeys(notes)))

    def _rows(self, deadline: float, notes: list[str]) -> list[Event]:
        cluster, include = self.cluster, set(self.cluster.config.include)
        replicasets = cluster.objects("/apis/apps/v1", "replicasets", deadline, notes)
        pods = cluster.objects("/api/v1", "pods", deadline, notes)
        mapper = ServiceMapper(cluster.config.service_from, replicasets, pods)
        rows: list[Event] = []
        if "events" in include:
            found = (event_row(occ, mapper) for occ in cluster.occurrences(deadline, notes))
            rows += [row for row in found if row is not None]
        if "deploys" in include:
            rows += deploys(replicasets, mapper)
        if "pods" in include:
            for pod in pods:
                service = mapper.of_object(pod)
                rows += restarts(pod, service) + pod_conditions(pod, service)
        if "config" in include:
            for kind, resource in (("ConfigMap", "configmaps"), ("Secret", "secrets")):
                objects = cluster.objects("/api/v1", resource, deadline, notes)
                rows += config_changes(kind, objects, pods, mapper)
        if "nodes" in include:
            for node in cluster.objects("/api/v1", "nodes", deadline, notes):
                rows += node_conditions(node)
        return rows


def sources(config: Config) -> list[Source]:
    """The sources of one cluster (one, for the events table); no request is made here."""
    return [KubernetesSource(Cluster(config))]


def placements(cluster: Cluster, window: TimeRange, deadline: float) -> list[Placement]:
    """Which pod ran on which node during the window: listed pods, and pods the `Scheduled`
    events name that have since gone. Raises BackendError when the pods cannot be listed."""
    notes: list[str] = []
    replicasets = cluster.objects("/apis/apps/v1", "replicasets", deadline, notes)
    pods = cluster.objects("/api/v1", "pods", deadline, notes)
    refused = [note for note in notes if note.endswith("pods not read")]
    if refused:  # without the pods there is no placement to give, only a wrong empty one
        raise BackendError(refused[0])
    mapper = ServiceMapper(cluster.config.service_from, replicasets, pods)
    found = {
        (p.namespace, p.pod): p for pod in pods if (p := pod_placement(pod, mapper.of_object(pod)))
    }
    for occ in cluster.occurrences(deadline, notes):
        placed = scheduled_placement(occ, mapper)
        if placed is not None:
            found.setdefault((placed.namespace, placed.pod), placed)
    return sorted(
        (p for p in found.values() if p.overlaps(window)), key=lambda p: (p.node, p.start)
    )
