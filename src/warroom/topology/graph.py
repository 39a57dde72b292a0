"""The service dependency graph: who calls whom. Edges point from caller to callee."""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx


def service_graph(edges: Iterable[tuple[str, str]], services: Iterable[str] = ()) -> nx.DiGraph:
    """A directed caller -> callee graph; isolated services are kept as nodes."""
    graph = nx.DiGraph()
    graph.add_nodes_from(services)
    graph.add_edges_from((a, b) for a, b in edges if a != b)
    return graph


def callers(graph: nx.DiGraph, service: str) -> set[str]:
    """Every service that reaches `service` through calls (its transitive callers)."""
    return set(nx.ancestors(graph, service)) if service in graph else set()


def callees(graph: nx.DiGraph, service: str) -> set[str]:
    """Every service that `service` reaches through calls (its transitive callees)."""
    return set(nx.descendants(graph, service)) if service in graph else set()


def propagation_path(graph: nx.DiGraph, culprit: str, symptom: str | None) -> tuple[str, ...]:
    """culprit -> ... -> symptom along reversed call edges (the way failures travel).

    Without a named symptom, the path ends at the entry service (one nobody calls) nearest to
    the culprit.
    """
    if culprit not in graph:
        return (culprit,)
    targets = [symptom] if symptom in graph else [n for n in graph if graph.in_degree(n) == 0]
    best: list[str] | None = None
    for target in targets:
        if target is None or not nx.has_path(graph, target, culprit):
            continue
        path = nx.shortest_path(graph, target, culprit)
        if best is None or len(path) < len(best):
            best = path
    return tuple(reversed(best)) if best else (culprit,)
