"""Drift between declared and observed calls, and how IaC names meet telemetry names."""

from __future__ import annotations

from pathlib import Path

from warroom.model import Span
from warroom.topology.iac.drift import Traced, drift, observed_calls
from warroom.topology.iac.load import read_iac
from warroom.topology.iac.model import Component, DeclaredEdge, IacGraph
from warroom.topology.iac.names import (
    declared_edges,
    declared_kinds,
    joined,
    match_names,
    normal,
)

BOUTIQUE = Path(__file__).resolve().parents[3] / "fixtures" / "iac" / "online-boutique"

# A shop declared in k8s/shop.yaml: frontend -> cartservice (the Service of cart), cart -> db,
# cart -> a payment API outside; db is a postgres StatefulSet.
GRAPH = IacGraph(
    components=(
        Component("frontend", "service", "k8s/shop.yaml:3"),
        Component("cart", "service", "k8s/shop.yaml:20", aliases=("cartservice",)),
        Component("db", "database", "k8s/shop.yaml:40"),
        Component("api.pay.example.com", "external", "k8s/shop.yaml:31"),
    ),
    edges=(
        DeclaredEdge("frontend", "cart", "env CART_ADDR=cartservice:7070", "k8s/shop.yaml:12"),
        DeclaredEdge("cart", "db", "env DB_URL=postgresql://db:5432/shop", "k8s/shop.yaml:29"),
        DeclaredEdge(
            "cart",
            "api.pay.example.com",
            "env PAY_URL=https://api.pay.example.com",
            "k8s/shop.yaml:31",
        ),
    ),
)


def _span(trace: str, sid: str, parent: str, service: str, t: float, peer: str = "") -> Span:
    return Span(trace, sid, parent, service, "op", t, t + 0.1, peer=peer)


def window_spans() -> list[Span]:
    """frontend -> cartservice (declared), frontend -> ad (not declared); cart calls nothing."""
    return [
        _span("t1", "a", "", "frontend", 10.0),
        _span("t1", "b", "a", "cartservice", 10.01),
        _span("t2", "c", "", "frontend", 11.0),
        _span("t2", "d", "c", "ad", 11.01),
        _span("t3", "e", "", "frontend", 12.0),
        _span("t3", "f", "e", "cartservice", 12.01),
    ]


def test_an_undeclared_call_a_silent_one_and_an_unobservable_one():
    services = ["frontend", "cartservice", "ad", "db"]
    names = match_names(GRAPH, services)
    assert names == {"frontend": "frontend", "cart": "cartservice", "db": "db"}
    # db sent spans earlier (the baseline), so cart -> db could have been seen in the window
    traced = Traced(frozenset({"frontend", "cartservice", "ad", "db"}))
    found = drift(GRAPH, window_spans(), names, traced, services)

    [undeclared] = found.undeclared
    assert (undeclared.caller, undeclared.callee, undeclared.calls) == ("frontend", "ad", 1)
    assert undeclared.sources == ("k8s/shop.yaml:3",)  # where frontend is declared
    assert undeclared.example == "trace t2 span d"

    [silent] = found.silent
    assert (silent.caller, silent.callee) == ("cartservice", "db")
    assert silent.sources == ("k8s/shop.yaml:29",)

    [blind] = found.unobservable
    assert (blind.caller, blind.callee) == ("cartservice", "api.pay.example.com")
    assert blind.sources == ("k8s/shop.yaml:31",)
    assert blind.reason == "no telemetry from api.pay.example.com"

    assert (found.declared, found.observed, found.agreed) == (3, 2, 1)
    assert found.renamed == (("cart", "cartservice"),)
    assert not found.clean
    data = found.to_dict()
    assert data["silent"][0]["sources"] == ["k8s/shop.yaml:29"]
    assert data["renamed"] == [{"iac": "cart", "telemetry": "cartservice"}]


def test_an_end_that_sends_no_spans_makes_the_call_unobservable_not_silent():
    names = match_names(GRAPH, ["frontend", "cartservice", "db"])
    traced = Traced(frozenset({"frontend", "cartservice"}))  # db: metrics only
    found = drift(GRAPH, window_spans(), names, traced, ["frontend", "cartservice", "db"])
    assert [(e.caller, e.callee) for e in found.silent] == []
    reasons = {e.callee: e.reason for e in found.unobservable}
    assert reasons["db"] == "db sends no spans (other telemetry only)"


def test_a_client_span_naming_its_peer_is_an_observed_call():
    spans = [
        *window_spans(),
        _span("t4", "g", "", "cartservice", 13.0, peer="api.pay.example.com:443"),
        _span("t5", "h", "", "cartservice", 14.0, peer="db.shop.svc.cluster.local:5432"),
    ]
    names = match_names(GRAPH, ["frontend", "cartservice", "ad", "db"])
    found = drift(GRAPH, spans, names, None, ["frontend", "cartservice", "ad", "db"])
    assert found.unobservable == () and found.silent == ()
    assert found.agreed == 3
    calls = observed_calls(spans)
    assert calls[("cartservice", "api.pay.example.com")] == 1
    # a client span answered by an instrumented server is not counted twice
    answered = [
        _span("t6", "i", "", "frontend", 15.0, "cartservice"),
        _span("t6", "j", "i", "cartservice", 15.01),
    ]
    assert observed_calls(answered) == {("frontend", "cartservice"): 1}


def test_names_meet_exactly_then_by_alias_then_without_a_common_suffix():
    graph = read_iac(BOUTIQUE)
    exact = match_names(graph, ["frontend", "cartservice", "redis-cart"])
    assert exact == {
        "frontend": "frontend",
        "cartservice": "cartservice",
        "redis-cart": "redis-cart",
    }
    loose = match_names(graph, ["frontend", "cart", "checkout", "productcatalog", "redis-cart"])
    assert loose["cartservice"] == "cart" and loose["checkoutservice"] == "checkout"
    assert loose["productcatalogservice"] == "productcatalog"
    edges = declared_edges(graph, loose)
    assert ("cart", "redis-cart") in edges and ("checkout", "cart") in edges
    assert declared_kinds(graph, loose)["redis-cart"] == "cache"


def test_two_candidates_for_one_name_are_not_a_match():
    graph = IacGraph(components=(Component("cart-svc", "service", "a:1"),))
    assert match_names(graph, ["cart", "cart-server"]) == {}  # both are "cart" loosely
    assert match_names(graph, ["cart", "orders"]) == {"cart-svc": "cart"}
    assert normal("Cart.shop.svc.cluster.local:7070") == "cart"
    assert normal("service") == "service"  # never cut down to nothing


def test_joined_keeps_the_case_graph_first_without_repeats():
    own = (("a", "b"), ("b", "c"))
    assert joined(own, [("b", "c"), ("c", "d")]) == (("a", "b"), ("b", "c"), ("c", "d"))
