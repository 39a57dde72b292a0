"""Docker Compose files -> the services they declare and who calls whom.

    graph = read_compose("docker-compose.yml", document)   # document from load.yaml_documents

Every service is a component, its kind from its image (postgres -> database), its ports or
its name. A service calls another when it `depends_on` it, `links` to it, or one of its
environment variables (list or mapping form) names it as host:port, in a URL or a connection
string; a host no service answers to is an external component.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from warroom.topology.iac.model import (
    Component,
    DeclaredEdge,
    IacGraph,
    Kind,
    guess_kind,
    hosts_in,
    line_of,
    shown,
)


def is_compose(document: object) -> bool:
    """True for a Compose file: a top-level `services:` mapping of mappings."""
    if not isinstance(document, Mapping) or "apiVersion" in document:
        return False
    services = document.get("services")
    return (
        isinstance(services, Mapping)
        and bool(services)
        and all(isinstance(spec, Mapping) or spec is None for spec in services.values())
    )


def read_compose(path: str, document: Mapping[str, Any]) -> IacGraph:
    """The components and edges of one Compose file."""
    services: Mapping[str, Any] = document["services"]
    names = _names(services)
    components: dict[str, Component] = {}
    edges: list[DeclaredEdge] = []
    for name, spec in services.items():
        spec = spec or {}
        source = f"{path}:{line_of(services, name)}"
        aliases = tuple(sorted(a for a, owner in names.items() if owner == name and a != name))
        components[str(name)] = Component(str(name), _kind(str(name), spec), source, aliases)
        seen_as = {**names, **_link_aliases(spec, names)}
        for callee, via, line, explicit in _calls(spec):
            at = f"{path}:{line}"
            target = seen_as.get(callee.lower())
            if target is None and not explicit:
                continue  # a lone word (REDIS_HOST=redis) counts only when a service has it
            if target is None:
                components.setdefault(callee, Component(callee, "external", at))
                target = callee
            if target != name:
                edges.append(DeclaredEdge(str(name), target, via, at))
    return IacGraph(tuple(components.values()), tuple(edges))


def _names(services: Mapping[str, Any]) -> dict[str, str]:
    """Every name a service answers to on the Compose network -> the service: its own,
    hostname, container_name and network aliases."""
    names: dict[str, str] = {}
    for name, spec in services.items():
        spec = spec or {}
        names[str(name).lower()] = str(name)
        for key in ("hostname", "container_name"):
            if isinstance(spec.get(key), str):
                names.setdefault(spec[key].lower(), str(name))
        networks = spec.get("networks")
        if not isinstance(networks, Mapping):
            continue
        for network in networks.values():
            aliases = network.get("aliases") if isinstance(network, Mapping) else None
            for alias in aliases or []:
                names.setdefault(str(alias).lower(), str(name))
    return names


def _link_aliases(spec: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, str]:
    """The names `links: ["db:database"]` gives other services inside this one."""
    aliases = {}
    for link in spec.get("links") or []:
        target, _, alias = str(link).partition(":")
        if alias and target.lower() in names:
            aliases[alias.lower()] = names[target.lower()]
    return aliases


def _kind(name: str, spec: Mapping[str, Any]) -> Kind:
    image = spec.get("image")
    env = _environment(spec)
    return guess_kind(
        name, [image] if isinstance(image, str) else [], _ports(spec), [k for k, _, _ in env]
    )


def _ports(spec: Mapping[str, Any]) -> list[int | str]:
    """Container ports of `ports` ("8080:80", "6379", {target: 80}) and `expose`."""
    ports: list[int | str] = []
    for entry in [*(spec.get("ports") or []), *(spec.get("expose") or [])]:
        text = str(entry.get("target", "")) if isinstance(entry, Mapping) else str(entry)
        container = text.split("/")[0].rsplit(":", 1)[-1].split("-")[0]
        if container.isdigit():
            ports.append(int(container))
    return ports


def _calls(spec: Mapping[str, Any]) -> Iterator[tuple[str, str, int, bool]]:
    """(callee, via, line, explicit) for each dependency the service declares; `explicit`
    is False for a value that is only a word, which may name a service or be just a word."""
    depends = spec.get("depends_on") or []
    depends = [depends] if isinstance(depends, str) else depends
    for index, dependency in enumerate(depends):
        line = line_of(depends, dependency if isinstance(depends, Mapping) else index)
        yield str(dependency), "depends_on", line, True
    links = spec.get("links") or []
    links = links if isinstance(links, list) else []
    for index, link in enumerate(links):
        yield str(link).split(":")[0], f"links {link}", line_of(links, index), True
    for key, value, line in _environment(spec):
        for ref in hosts_in(value):
            yield ref.host, f"env {key}={shown(value)}", line, ref.explicit


def _environment(spec: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """(name, value, line) of `environment` as a list of NAME=value or a mapping."""
    env = spec.get("environment")
    if isinstance(env, Mapping):
        return [(str(k), "" if v is None else str(v), line_of(env, k)) for k, v in env.items()]
    out = []
    for index, item in enumerate(env or []):
        key, _, value = str(item).partition("=")
        out.append((key, value, line_of(env, index)))
    return out
