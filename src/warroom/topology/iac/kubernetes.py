"""Kubernetes manifests (kubectl YAML, Helm-rendered output) -> the services they declare.

    graph = read_manifests([YamlFile("k8s/app.yaml", documents)])

Workloads (Deployments, StatefulSets, DaemonSets, Jobs, Pods...) are the components. A
workload calls another when one of its containers' environment variables names a Service
(`cartservice:7070`, `http://cartservice.shop.svc.cluster.local`, a connection string), also
through a ConfigMap or Secret key; the Service's selector says which workload answers. A
LoadBalancer Service and an Ingress are load balancers in front of the workloads they route to.
Hosts that no Service in the files declares are external components.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from warroom.topology.iac.model import (
    Component,
    DeclaredEdge,
    IacGraph,
    guess_kind,
    hosts_in,
    line_of,
    shown,
    str_items,
)

WORKLOAD_KINDS = {
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
    "Pod",
    "DeploymentConfig",
}
# Kinds that say nothing about calls: read and set aside, not "unknown".
QUIET_KINDS = {
    "Namespace",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "PersistentVolumeClaim",
    "PersistentVolume",
    "StorageClass",
    "LimitRange",
    "ResourceQuota",
    "PriorityClass",
    "CustomResourceDefinition",
    "Endpoints",
    "EndpointSlice",
}
_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


@dataclass(frozen=True)
class YamlFile:
    """One YAML file's documents (LineMap values from load.py), under the path to print."""

    path: str
    documents: Sequence[Any]


@dataclass(frozen=True)
class _Workload:
    name: str
    namespace: str
    labels: dict[str, str]
    pod: Mapping[str, Any]
    source: str
    path: str


@dataclass(frozen=True)
class _Service:
    name: str
    namespace: str
    selector: dict[str, str]
    type: str
    source: str


@dataclass
class _Index:
    """Everything the files declare, by namespace and name."""

    workloads: list[_Workload] = field(default_factory=list)
    services: list[_Service] = field(default_factory=list)
    ingresses: list[tuple[str, Mapping[str, Any], str, str]] = field(default_factory=list)
    config: dict[tuple[str, str, str], dict[str, str]] = field(default_factory=dict)
    unknown: dict[str, int] = field(default_factory=dict)


def is_manifest(document: object) -> bool:
    """True for a Kubernetes object: a mapping with apiVersion and kind."""
    return isinstance(document, Mapping) and "apiVersion" in document and "kind" in document


def read_manifests(files: Iterable[YamlFile]) -> IacGraph:
    """The components and edges of a set of manifest files read together (a ConfigMap in one
    file can feed a Deployment in another)."""
    index = _Index()
    for file in files:
        for document in _objects(file.documents):
            _add(index, document, file.path)
    builder = _Builder(index)
    return builder.graph()


def _objects(documents: Iterable[Any]) -> Iterator[Mapping[str, Any]]:
    """The objects of the documents, a `kind: List` opened into its items."""
    for document in documents:
        if not is_manifest(document):
            continue
        if document["kind"] == "List":
            yield from (item for item in document.get("items") or [] if is_manifest(item))
        else:
            yield document


def _add(index: _Index, doc: Mapping[str, Any], path: str) -> None:
    """File one object under what it is."""
    kind = str(doc["kind"])
    meta = _map(doc.get("metadata"))
    name = str(meta.get("name", ""))
    namespace = str(meta.get("namespace") or "")
    source = f"{path}:{line_of(meta, 'name') or line_of(doc)}"
    spec = _map(doc.get("spec"))
    if not name and kind != "List":
        return  # kubectl would refuse it too: nothing to call it by
    if kind in WORKLOAD_KINDS:
        pod = _pod_spec(kind, doc)
        labels = str_items(_map(_map(pod.get("metadata")).get("labels") or meta.get("labels")))
        index.workloads.append(_Workload(name, namespace, labels, pod, source, path))
    elif kind == "Service":
        selector = str_items(_map(spec.get("selector")))
        kind_of = str(spec.get("type") or "ClusterIP")
        index.services.append(_Service(name, namespace, selector, kind_of, source))
    elif kind == "Ingress":
        index.ingresses.append((name, spec, source, namespace))
    elif kind in ("ConfigMap", "Secret"):
        index.config[(kind, namespace, name)] = _config_data(doc)
    elif kind not in QUIET_KINDS:
        key = f"{doc['apiVersion']} {kind}"
        index.unknown[key] = index.unknown.get(key, 0) + 1


def _pod_spec(kind: str, doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod template: {metadata, spec} (a Pod is its own template, a CronJob nests one)."""
    spec = _map(doc.get("spec"))
    if kind == "Pod":
        return {"metadata": _map(doc.get("metadata")), "spec": spec}
    if kind == "CronJob":
        spec = _map(_map(spec.get("jobTemplate")).get("spec"))
    return _map(spec.get("template"))


def _map(value: object) -> Mapping[str, Any]:
    """`value` when it is a mapping, else an empty one: a malformed field reads as absent."""
    return value if isinstance(value, Mapping) else {}


def _items(value: object) -> list[Mapping[str, Any]]:
    """The mappings of a list field (env, ports, containers), skipping anything else."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _config_data(doc: Mapping[str, Any]) -> dict[str, str]:
    """A ConfigMap's data, or a Secret's stringData and decoded data."""
    values = str_items(_map(doc.get("data")))
    if doc["kind"] == "Secret":
        values = {key: _b64(value) for key, value in values.items()}
        values.update(str_items(_map(doc.get("stringData"))))
    return values


def _b64(text: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return ""


class _Builder:
    """Turns the index into components and edges."""

    def __init__(self, index: _Index) -> None:
        self.index = index
        self.components: dict[str, Component] = {}
        self.edges: list[DeclaredEdge] = []
        self.targets = {id(s): self._selected(s) for s in index.services}

    def graph(self) -> IacGraph:
        """All components, then the edges each object gives."""
        for workload in self.index.workloads:
            self._add_workload(workload)
        for service in self.index.services:
            self._add_service(service)
        for name, spec, source, namespace in self.index.ingresses:
            self._add_ingress(name, spec, source, namespace)
        for workload in self.index.workloads:
            for env in _env_vars(workload, self.index.config):
                self._env_edges(workload, env)
        return IacGraph(tuple(self.components.values()), tuple(self.edges), self.index.unknown)

    def _selected(self, service: _Service) -> list[str]:
        """The workloads a Service's selector picks (same namespace, or none given)."""
        if not service.selector:
            return []
        return [
            w.name
            for w in self.index.workloads
            if _same_namespace(w.namespace, service.namespace)
            and all(w.labels.get(k) == v for k, v in service.selector.items())
        ]

    def _add_workload(self, workload: _Workload) -> None:
        containers = _containers(workload.pod)
        images = [str(c.get("image", "")) for c in containers]
        ports: list[int | str] = []
        for container in containers:
            for port in _items(container.get("ports")):
                ports.extend(p for p in (port.get("name"), port.get("containerPort")) if p)
        env_names = [str(e.get("name")) for c in containers for e in _items(c.get("env"))]
        kind = guess_kind(workload.name, images, ports, env_names)
        aliases = tuple(
            s.name
            for s in self.index.services
            if workload.name in self.targets[id(s)]
            and s.name != workload.name
            and s.type != "LoadBalancer"  # a component of its own
        )
        self.components[workload.name] = Component(workload.name, kind, workload.source, aliases)

    def _add_service(self, service: _Service) -> None:
        targets = self.targets[id(service)]
        if service.type == "LoadBalancer":
            self._component(service.name, "load-balancer", service.source)
            selector = ",".join(f"{k}={v}" for k, v in service.selector.items())
            for target in targets:
                via = f"Service type LoadBalancer selects {selector}"
                self._edge(service.name, target, via, service.source)
        elif not targets:
            outside = service.type == "ExternalName" or not service.selector
            kind = "external" if outside else "unknown"
            self._component(service.name, kind, service.source)

    def _add_ingress(self, name: str, spec: Mapping[str, Any], source: str, namespace: str) -> None:
        self._component(name, "load-balancer", source)
        for backend, line in _ingress_backends(spec):
            at = f"{source.rsplit(':', 1)[0]}:{line}" if line else source
            for target in self._resolve(backend, namespace) or []:
                self._edge(name, target, f"Ingress backend {backend}", at)

    def _env_edges(self, workload: _Workload, env: _Env) -> None:
        for ref in hosts_in(env.value):
            targets = self._resolve(ref.host, workload.namespace)
            if targets is None:
                if not (ref.explicit or ".svc" in ref.host):
                    continue  # a lone word that is not a Service is not a host
                self._component(ref.host, "external", env.source)
                targets = [ref.host]
            for target in targets:
                self._edge(workload.name, target, env.via, env.source)

    def _resolve(self, host: str, namespace: str) -> list[str] | None:
        """The workloads behind a Service named by `host` (name, name.ns, name.ns.svc...),
        the Service itself when nothing backs it; None when no Service has that name."""
        parts = host.lower().rstrip(".").split(".")
        if len(parts) > 2 and parts[2] != "svc":
            return None  # a DNS name outside the cluster
        wanted = parts[1] if len(parts) > 1 else None
        candidates = [s for s in self.index.services if s.name == parts[0]]
        if wanted is not None:
            candidates = [s for s in candidates if s.namespace in (wanted, "")]
        else:
            candidates = _nearest(candidates, namespace)
        if not candidates:
            return None
        targets = [t for s in candidates for t in self.targets[id(s)]]
        return targets or [s.name for s in candidates]

    def _component(self, name: str, kind: Any, source: str) -> None:
        self.components.setdefault(name, Component(name, kind, source))

    def _edge(self, caller: str, callee: str, via: str, source: str) -> None:
        if caller != callee:
            self.edges.append(DeclaredEdge(caller, callee, via, source))


def _same_namespace(a: str, b: str) -> bool:
    """Objects without a namespace land wherever they are applied: they match any."""
    return a == b or not a or not b


def _nearest(services: list[_Service], namespace: str) -> list[_Service]:
    """Services a short name reaches from `namespace`: its own, else those without one."""
    own = [s for s in services if s.namespace == namespace]
    return own or [s for s in services if _same_namespace(s.namespace, namespace)]


def _containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spec = _map(pod.get("spec"))
    return [*_items(spec.get("initContainers")), *_items(spec.get("containers"))]


@dataclass(frozen=True)
class _Env:
    name: str
    value: str
    via: str
    source: str


def _env_vars(
    workload: _Workload, config: Mapping[tuple[str, str, str], dict[str, str]]
) -> Iterator[_Env]:
    """Each container's variables with their values: literal, from a ConfigMap or Secret key,
    or every key of an envFrom; $(OTHER) expanded from the variables before it."""
    for container in _containers(workload.pod):
        seen: dict[str, str] = {}
        for index, entry in enumerate(container.get("envFrom") or []):
            line = line_of(container.get("envFrom"), index)
            for env in _env_from(entry, workload, config, line):
                seen[env.name] = env.value
                yield env
        for entry in container.get("env") or []:
            if not isinstance(entry, Mapping) or "name" not in entry:
                continue
            found = _env_entry(entry, workload, config)
            if found is None:
                continue
            if "value" in entry and _VAR_REF.search(found.value):
                found = _expanded(found, seen)
            seen[found.name] = found.value
            yield found


def _expanded(env: _Env, seen: Mapping[str, str]) -> _Env:
    """A literal value with $(NAME) replaced as the kubelet does (unknown names stay)."""
    value = _VAR_REF.sub(lambda m: seen.get(m.group(1), m.group(0)), env.value)
    return _Env(env.name, value, f"env {env.name}={shown(value)}", env.source)


def _env_entry(
    entry: Mapping[str, Any], workload: _Workload, config: Mapping[Any, dict[str, str]]
) -> _Env | None:
    name = str(entry["name"])
    source = f"{workload.path}:{line_of(entry)}"
    if "value" in entry:
        value = str(entry["value"])
        return _Env(name, value, f"env {name}={shown(value)}", source)
    ref = _map(entry.get("valueFrom"))
    for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
        if isinstance(ref.get(key), Mapping):
            found = _lookup(config, kind, workload.namespace, ref[key])
            if found is None:
                return None
            name_of, data_key, value = found
            what = f"{kind} {name_of}/{data_key}"
            shown_value = f"={shown(value)}" if kind == "ConfigMap" else ""
            return _Env(name, value, f"env {name} from {what}{shown_value}", source)
    return None


def _env_from(
    entry: Mapping[str, Any], workload: _Workload, config: Mapping[Any, dict[str, str]], line: int
) -> Iterator[_Env]:
    for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
        ref = entry.get(key) if isinstance(entry, Mapping) else None
        if not isinstance(ref, Mapping):
            continue
        data = _config(config, kind, workload.namespace, str(ref.get("name", "")))
        prefix = str(entry.get("prefix") or "")
        for data_key, value in (data or {}).items():
            shown_value = f"={shown(value)}" if kind == "ConfigMap" else ""
            via = f"envFrom {kind} {ref.get('name')}: {prefix}{data_key}{shown_value}"
            yield _Env(prefix + data_key, value, via, f"{workload.path}:{line}")


def _lookup(
    config: Mapping[Any, dict[str, str]], kind: str, namespace: str, ref: Mapping[str, Any]
) -> tuple[str, str, str] | None:
    name, key = str(ref.get("name", "")), str(ref.get("key", ""))
    data = _config(config, kind, namespace, name)
    if data is None or key not in data:
        return None
    return name, key, data[key]


def _config(
    config: Mapping[Any, dict[str, str]], kind: str, namespace: str, name: str
) -> dict[str, str] | None:
    """A ConfigMap's or Secret's data as seen from `namespace`."""
    for (kind_of, ns, name_of), data in config.items():
        if kind_of == kind and name_of == name and _same_namespace(ns, namespace):
            return data
    return None


def _ingress_backends(spec: Mapping[str, Any]) -> Iterator[tuple[str, int]]:
    """(service name, line) of each backend, networking.k8s.io/v1 and the older v1beta1."""
    backends = [spec.get("defaultBackend"), spec.get("backend")]
    for rule in spec.get("rules") or []:
        for path in _items(_map(_map(rule).get("http")).get("paths")):
            backends.append(path.get("backend"))
    for backend in backends:
        if not isinstance(backend, Mapping):
            continue
        service = backend.get("service")
        if isinstance(service, Mapping) and service.get("name"):
            yield str(service["name"]), line_of(service, "name")
        elif backend.get("serviceName"):
            yield str(backend["serviceName"]), line_of(backend, "serviceName")
