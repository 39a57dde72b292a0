"""Infrastructure code's names for components, matched to the names telemetry uses.

    names = match_names(graph, store.services())     # {"cartservice": "cart", ...}
    declared_edges(graph, names)                      # [("frontend", "cart"), ...]
    declared_kinds(graph, names)                      # {"redis-cart": "cache", ...}

A manifest names a Deployment, its Services and its image; telemetry names a service by what
the process reports (OTEL_SERVICE_NAME, a Prometheus job, a pod's deployment). They are matched
in this order, each name used once:

1. exactly (case aside): the component's name or one of its aliases (the Kubernetes Services
   that select it, a cloud resource's own name) is a telemetry service name;
2. the same after cutting a cluster DNS tail (`cart.shop.svc.cluster.local` -> `cart`) and one
   common suffix (`-service`, `service`, `-svc`, `-server`, `-srv`, `-app`, `-deployment`):
   `cartservice` and `cart-svc` both meet `cart`, but only when exactly one name on each side
   comes out that way (two candidates are a guess, not a match).

A component no telemetry name meets keeps its own name: its edges still join the graph (the
ranking may need the node) but it has no telemetry to judge.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from warroom.topology.iac.model import IacGraph, Kind

SUFFIXES = ("-deployment", "-service", "_service", "service", "-server", "-svc", "-srv", "-app")
_CLUSTER_DNS = re.compile(r"\.(?:[a-z0-9-]+\.)?svc(?:\.[a-z0-9.-]*)?$")
_PORT = re.compile(r":\d{1,5}$")


def normal(name: str) -> str:
    """The name as the loose match compares it: lower case, no port, no cluster DNS tail, one
    common suffix cut (never down to nothing)."""
    base = _PORT.sub("", name.strip().lower().rstrip("."))
    base = _CLUSTER_DNS.sub("", base)
    for suffix in SUFFIXES:
        if base.endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)].rstrip("-_")
    return base


def match_names(graph: IacGraph, services: Iterable[str]) -> dict[str, str]:
    """IaC component name -> the telemetry service name it is, for the components that meet
    one (exact names and aliases first, then the loose match; each telemetry name once)."""
    known = sorted(set(services))
    by_lower = {s.lower(): s for s in known}
    matched: dict[str, str] = {}
    taken: set[str] = set()
    for component in graph.components:
        for candidate in (component.name, *component.aliases):
            service = by_lower.get(candidate.lower())
            if service is not None and service not in taken:
                matched[component.name] = service
                taken.add(service)
                break
    loose_services = _unique_by_normal(s for s in known if s not in taken)
    rest = [c.name for c in graph.components if c.name not in matched]
    loose_components = _unique_by_normal(rest)
    for key, name in loose_components.items():
        service = loose_services.get(key)
        if service is not None:
            matched[name] = service
    return matched


def _unique_by_normal(names: Iterable[str]) -> dict[str, str]:
    """normal(name) -> name, for the normal forms exactly one of the names has."""
    seen: dict[str, list[str]] = {}
    for name in names:
        seen.setdefault(normal(name), []).append(name)
    return {key: group[0] for key, group in seen.items() if len(group) == 1 and key}


def declared_edges(graph: IacGraph, names: Mapping[str, str]) -> list[tuple[str, str]]:
    """The graph's caller -> callee pairs in telemetry names (unmatched names kept), sorted."""
    pairs = {(names.get(a, a), names.get(b, b)) for a, b in graph.edge_pairs()}
    return sorted((a, b) for a, b in pairs if a != b)


def declared_kinds(graph: IacGraph, names: Mapping[str, str]) -> dict[str, Kind]:
    """Telemetry service name -> the kind infrastructure code declares, for matched components."""
    return {names[c.name]: c.kind for c in graph.components if c.name in names}


def joined(*edge_lists: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Edge lists joined in order, without repeats (a case's own graph first)."""
    return tuple(dict.fromkeys(edge for edges in edge_lists for edge in edges))
