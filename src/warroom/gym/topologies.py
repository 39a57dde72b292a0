"""Simulated applications: services, who calls whom, and how heavy each one is.

shop        an online shop of 12 services with a cache and a database
shared-db   ~40 services in layers, all sharing one relational database
pipeline    ingest -> queue -> workers -> store (consumers run asynchronously)
random-N    N services in random layers (scale tests)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ServiceSpec:
    """One simulated service."""

    name: str
    kind: str  # web, api, db, cache, queue, worker, external (a third party: no telemetry)
    base_ms: float  # median own processing time per request
    cpu_ms: float  # CPU milliseconds per request (drives CPU usage)
    node: str  # the host it runs on (shared by neighbours)
    code: str  # the class its log lines name, e.g. "c.s.CheckoutServiceImpl"


@dataclass(frozen=True)
class Call:
    """caller calls callee.operation, with this probability per request."""

    caller: str
    callee: str
    operation: str
    probability: float = 1.0


@dataclass(frozen=True)
class Topology:
    """A call graph with one entry service taking external traffic."""

    name: str
    services: tuple[ServiceSpec, ...]
    calls: tuple[Call, ...]
    entry: str
    entry_rps: float = 2.0

    def service(self, name: str) -> ServiceSpec:
        """The spec of one service."""
        for s in self.services:
            if s.name == name:
                return s
        raise KeyError(name)

    def calls_from(self, name: str) -> tuple[Call, ...]:
        """Outgoing calls of a service, in the order it makes them."""
        return tuple(c for c in self.calls if c.caller == name)

    def edges(self) -> tuple[tuple[str, str], ...]:
        """Distinct caller -> callee pairs."""
        return tuple(dict.fromkeys((c.caller, c.callee) for c in self.calls))


def _svc(name: str, kind: str, base_ms: float, cpu_ms: float, node: str) -> ServiceSpec:
    camel = "".join(part.capitalize() for part in name.split("-"))
    return ServiceSpec(name, kind, base_ms, cpu_ms, node, f"c.s.{camel}Impl")


def shop() -> Topology:
    """An online shop: frontend over cart, catalog, checkout and friends; a cache and a DB."""
    services = (
        _svc("frontend", "web", 4, 2.0, "node-1"),
        _svc("ad", "api", 3, 1.0, "node-2"),
        _svc("recommendation", "api", 6, 3.0, "node-2"),
        _svc("catalog", "api", 3, 1.5, "node-3"),
        _svc("cart", "api", 2, 1.0, "node-3"),
        _svc("checkout", "api", 5, 2.0, "node-1"),
        _svc("payment", "api", 4, 1.5, "node-2"),
        _svc("shipping", "api", 3, 1.0, "node-3"),
        _svc("currency", "api", 1, 0.8, "node-1"),
        _svc("email", "api", 3, 1.0, "node-2"),
        _svc("redis-cart", "cache", 0.5, 0.3, "node-3"),
        _svc("orders-db", "db", 2, 1.0, "node-4"),
        _svc("payment-gateway", "external", 60, 0.0, "internet"),
    )
    calls = (
        Call("frontend", "catalog", "GetProduct"),
        Call("frontend", "currency", "Convert"),
        Call("frontend", "cart", "GetCart"),
        Call("frontend", "recommendation", "ListRecommendations", 0.7),
        Call("frontend", "ad", "GetAds", 0.5),
        Call("frontend", "checkout", "PlaceOrder", 0.25),
        Call("recommendation", "catalog", "ListProducts"),
        Call("cart", "redis-cart", "HGET"),
        Call("checkout", "cart", "GetCart"),
        Call("checkout", "currency", "Convert"),
        Call("checkout", "payment", "Charge"),
        Call("payment", "payment-gateway", "POST /v1/charges"),
        Call("checkout", "shipping", "ShipOrder"),
        Call("checkout", "orders-db", "INSERT orders"),
        Call("checkout", "email", "SendConfirmation"),
        Call("catalog", "orders-db", "SELECT products", 0.3),
    )
    return Topology("shop", services, calls, "frontend", 2.0)


def shared_db(n: int = 40, seed: int = 7) -> Topology:
    """A gateway over n services in three layers; every service of the last two uses one DB."""
    rng = np.random.default_rng(seed)
    names = [f"svc-{i:02d}" for i in range(n)]
    layers = [names[: n // 4], names[n // 4 : n // 2], names[n // 2 :]]
    services = [_svc("gateway", "web", 3, 1.5, "node-0")]
    services += [
        _svc(s, "api", float(rng.uniform(1, 6)), float(rng.uniform(0.5, 2)), f"node-{i % 6 + 1}")
        for i, s in enumerate(names)
    ]
    services.append(_svc("main-db", "db", 2, 1.0, "node-db"))
    services.append(_svc("maps-api", "external", 80, 0.0, "internet"))
    calls = [Call("gateway", s, "Handle", 1.0 / len(layers[0]) * 3) for s in layers[0]]
    for upper, lower in ((layers[0], layers[1]), (layers[1], layers[2])):
        for s in upper:
            for callee in rng.choice(lower, size=min(2, len(lower)), replace=False):
                calls.append(Call(s, str(callee), "Handle", 0.8))
        called = {c.callee for c in calls}
        for orphan in (s for s in lower if s not in called):  # everyone serves somebody
            calls.append(Call(str(rng.choice(upper)), orphan, "Handle", 0.8))
    for s in layers[1] + layers[2]:
        calls.append(Call(s, "main-db", "SELECT", 0.9))
    calls.append(Call(layers[2][0], "maps-api", "GET /geocode", 0.5))
    return Topology("shared-db", tuple(services), tuple(calls), "gateway", 2.0)


def pipeline() -> Topology:
    """Ingest API -> queue broker -> workers -> store; the broker delivers asynchronously."""
    services = (
        _svc("ingest-api", "web", 3, 1.5, "node-1"),
        _svc("validator", "api", 2, 1.0, "node-1"),
        _svc("broker", "queue", 1, 0.5, "node-2"),
        _svc("worker-enrich", "worker", 6, 3.0, "node-3"),
        _svc("worker-index", "worker", 5, 2.5, "node-3"),
        _svc("geo-lookup", "api", 2, 1.0, "node-2"),
        _svc("store-db", "db", 2, 1.0, "node-4"),
        _svc("geoip-provider", "external", 40, 0.0, "internet"),
    )
    calls = (
        Call("ingest-api", "validator", "Validate"),
        Call("ingest-api", "broker", "Publish"),
        Call("broker", "worker-enrich", "Consume"),
        Call("broker", "worker-index", "Consume"),
        Call("worker-enrich", "geo-lookup", "Lookup"),
        Call("geo-lookup", "geoip-provider", "GET /v2/city"),
        Call("worker-enrich", "store-db", "UPSERT events"),
        Call("worker-index", "store-db", "INSERT index"),
    )
    return Topology("pipeline", services, calls, "ingest-api", 2.0)


# random-N bounds: an entry and one service behind it at least; at 1,000 services one case
# already takes ~1.5 min and ~2 GB, and the cost grows faster than N.
MIN_RANDOM, MAX_RANDOM = 2, 1000
_RANDOM = re.compile(r"random-([0-9]{1,9})")  # ASCII digits only: str.isdigit takes '²' too


def random_topology(n: int, seed: int = 0) -> Topology:
    """n services in random layers of a DAG under one entry, some sharing a database."""
    rng = np.random.default_rng(seed)
    names = ["entry"] + [f"r{i:03d}" for i in range(1, n)]
    depth = max(2, int(np.log2(max(n, 2))))
    layer_of = {
        name: (0 if i == 0 else int(rng.integers(1, depth + 1))) for i, name in enumerate(names)
    }
    services = [
        _svc(
            s,
            "api" if i else "web",
            float(rng.uniform(1, 5)),
            float(rng.uniform(0.3, 1.5)),
            f"node-{i % 8}",
        )
        for i, s in enumerate(names)
    ]
    calls: list[Call] = []
    for s in names[1:]:
        parents = [p for p in names if layer_of[p] < layer_of[s]]
        for p in rng.choice(
            parents, size=min(len(parents), int(rng.integers(1, 3))), replace=False
        ):
            calls.append(Call(str(p), s, "Handle", float(rng.uniform(0.05, 0.4))))
    return Topology(f"random-{n}", tuple(services), tuple(calls), "entry", 2.0)


def build(name: str, seed: int = 0) -> Topology:
    """A topology by name; unknown names list the known ones."""
    if name == "shop":
        return shop()
    if name == "shared-db":
        return shared_db()
    if name == "pipeline":
        return pipeline()
    sized = _RANDOM.fullmatch(name)
    if sized:
        n = int(sized.group(1))
        if not MIN_RANDOM <= n <= MAX_RANDOM:
            raise ValueError(
                f"topology {name!r}: random-N takes {MIN_RANDOM} to {MAX_RANDOM} services, not {n}"
            )
        return random_topology(n, seed)
    raise ValueError(f"unknown topology {name!r} (known: shop, shared-db, pipeline, random-N)")


TOPOLOGIES = ("shop", "shared-db", "pipeline", "random-N")
