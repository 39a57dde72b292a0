"""A gym topology written out as Kubernetes manifests, so the IaC readers can be judged on it.

    write_manifests(topologies.shop(), Path("k8s/"))    # k8s/shop.yaml
    read_iac(Path("k8s/")).edge_pairs() == sorted(topologies.shop().edges())

Each service is a workload behind a ClusterIP Service of the same name: applications are
Deployments, databases and caches StatefulSets running postgres / redis (so the readers give
them their kinds from the image), the queue broker a StatefulSet running nats, a third party an
ExternalName Service. Every call is an environment variable of the caller naming the callee's
Service (`CATALOG_ADDR=catalog:8080`, `ORDERS_DB_URL=postgresql://orders-db:5432/app`); the
broker delivers to its consumers, so its variables name them (a push subscription).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from warroom.gym.topologies import ServiceSpec, Topology

NAMESPACE = "gym"
# gym kind -> (image, port, workload kind)
_RUNS: dict[str, tuple[str, int, str]] = {
    "db": ("postgres:15", 5432, "StatefulSet"),
    "cache": ("redis:7", 6379, "StatefulSet"),
    "queue": ("nats:2.9", 4222, "StatefulSet"),
}
_APP_PORT = 8080
_URL_SCHEMES = {"db": "postgresql", "cache": "redis", "queue": "nats"}


def manifests(topology: Topology) -> list[dict[str, Any]]:
    """The Kubernetes objects of a topology, workloads and their Services."""
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    ]
    for spec in topology.services:
        if spec.kind == "external":
            objects.append(_external(spec))
            continue
        objects.append(_workload(spec, topology))
        objects.append(_service(spec))
    return objects


def to_yaml(topology: Topology) -> str:
    """The manifests as one multi-document YAML text."""
    header = f"# The gym's {topology.name} topology as Kubernetes manifests (warroom gym).\n"
    return header + yaml.safe_dump_all(manifests(topology), sort_keys=False)


def write_manifests(topology: Topology, folder: Path) -> Path:
    """Write <folder>/<topology>.yaml (the folder is made when missing); its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{topology.name}.yaml"
    path.write_text(to_yaml(topology), encoding="utf-8")
    return path


def _port(spec: ServiceSpec) -> int:
    return _RUNS.get(spec.kind, ("", _APP_PORT, ""))[1]


def _env_name(callee: ServiceSpec) -> str:
    """CATALOG_ADDR for host:port, ORDERS_DB_URL for a URL."""
    url = callee.kind == "external" or callee.kind in _URL_SCHEMES
    return re.sub(r"[^A-Z0-9]", "_", callee.name.upper()) + ("_URL" if url else "_ADDR")


def _address(callee: ServiceSpec) -> str:
    """How the caller's configuration names the callee: a URL for stores, host:port else."""
    if callee.kind == "external":
        return f"https://{callee.name}:443"
    scheme = _URL_SCHEMES.get(callee.kind)
    if scheme:
        return f"{scheme}://{callee.name}:{_port(callee)}"
    return f"{callee.name}:{_port(callee)}"


def _workload(spec: ServiceSpec, topology: Topology) -> dict[str, Any]:
    image, port, kind = _RUNS.get(spec.kind, (f"warroom-gym/{spec.name}:sim", _APP_PORT, ""))
    callees = dict.fromkeys(call.callee for call in topology.calls_from(spec.name))
    env = [
        {"name": _env_name(topology.service(c)), "value": _address(topology.service(c))}
        for c in callees
    ]
    container: dict[str, Any] = {
        "name": spec.name,
        "image": image,
        "ports": [{"containerPort": port}],
    }
    if env:
        container["env"] = env
    body: dict[str, Any] = {
        "selector": {"matchLabels": {"app": spec.name}},
        "template": {
            "metadata": {"labels": {"app": spec.name}},
            "spec": {"nodeSelector": {"gym/node": spec.node}, "containers": [container]},
        },
    }
    if kind == "StatefulSet":
        body = {"serviceName": spec.name, **body}
    return {
        "apiVersion": "apps/v1",
        "kind": kind or "Deployment",
        "metadata": {"name": spec.name, "namespace": NAMESPACE, "labels": {"app": spec.name}},
        "spec": body,
    }


def _service(spec: ServiceSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": spec.name, "namespace": NAMESPACE},
        "spec": {"selector": {"app": spec.name}, "ports": [{"port": _port(spec)}]},
    }


def _external(spec: ServiceSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": spec.name, "namespace": NAMESPACE},
        "spec": {"type": "ExternalName", "externalName": f"api.{spec.name}.example.com"},
    }
