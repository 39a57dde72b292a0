"""Service graph: transitive callers and callees, and the path a failure travels."""

from __future__ import annotations

from warroom.topology.graph import callees, callers, propagation_path, service_graph

CHAIN = [("frontend", "checkout"), ("checkout", "payment")]


def test_callers_and_callees_are_transitive() -> None:
    g = service_graph(CHAIN)
    assert callers(g, "payment") == {"checkout", "frontend"}
    assert callers(g, "frontend") == set()
    assert callees(g, "frontend") == {"checkout", "payment"}
    assert callees(g, "payment") == set()


def test_unknown_service_has_no_callers_or_callees() -> None:
    g = service_graph(CHAIN)
    assert callers(g, "ghost") == set()
    assert callees(g, "ghost") == set()


def test_self_calls_are_dropped_and_isolated_services_kept() -> None:
    g = service_graph([("a", "a"), ("a", "b")], services=["lonely"])
    assert "lonely" in g
    assert callers(g, "a") == set()
    assert propagation_path(g, "lonely", None) == ("lonely",)


def test_path_runs_from_culprit_up_to_the_named_symptom() -> None:
    g = service_graph(CHAIN)
    assert propagation_path(g, "payment", "frontend") == ("payment", "checkout", "frontend")
    assert propagation_path(g, "payment", "checkout") == ("payment", "checkout")


def test_path_without_symptom_ends_at_the_nearest_entry_service() -> None:
    g = service_graph([("web", "api"), ("api", "orders"), ("orders", "db"), ("cron", "db")])
    assert propagation_path(g, "db", None) == ("db", "cron")
    assert propagation_path(g, "orders", None) == ("orders", "api", "web")


def test_path_is_just_the_culprit_when_it_cannot_reach_the_symptom() -> None:
    g = service_graph(CHAIN)
    # frontend is not called by payment: a failure in frontend does not travel down to it.
    assert propagation_path(g, "frontend", "payment") == ("frontend",)
    assert propagation_path(g, "ghost", "frontend") == ("ghost",)


def test_unknown_symptom_falls_back_to_entry_services() -> None:
    g = service_graph(CHAIN)
    assert propagation_path(g, "payment", "not-in-graph") == ("payment", "checkout", "frontend")


def test_culprit_that_is_the_symptom_is_a_one_hop_path() -> None:
    g = service_graph(CHAIN)
    assert propagation_path(g, "frontend", "frontend") == ("frontend",)
