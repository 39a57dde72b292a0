"""Slowed call edges charged to the endpoint they have in common."""

from __future__ import annotations

from warroom.experts.edges import EdgeSlowdown, common_endpoints


def _slow(caller: str, callee: str, z: float) -> EdgeSlowdown:
    return EdgeSlowdown(caller, callee, z, 3.0, 53.0, 10.0)


def test_every_edge_in_and_out_of_one_component_is_charged_to_it() -> None:
    slowed = [_slow("web", "geo", 8.0), _slow("api", "geo", 6.0), _slow("geo", "db", 9.0)]
    measured = {("web", "geo"), ("api", "geo"), ("geo", "db"), ("api", "db"), ("web", "api")}
    (blame,) = common_endpoints(slowed, measured)
    assert blame.service == "geo"
    assert blame.purity == 1.0 and blame.z == 9.0
    assert [e.callee for e in blame.edges] == ["db", "geo", "geo"]  # strongest first


def test_a_strong_edge_and_a_faint_one_do_not_outvote_the_strong_edges_own_end() -> None:
    # basic calls seven services; only its call to station slowed clearly (station has no other
    # edge), its call to train a little: each slowed edge goes to the end whose other edges
    # stayed fast, never to basic, whose five other calls did not slow.
    measured = {("basic", x) for x in ("station", "train", "price", "route", "a", "b", "c")}
    slowed = [_slow("basic", "station", 9.7), _slow("basic", "train", 3.5)]
    blames = common_endpoints(slowed, measured)
    assert [b.service for b in blames] == ["station", "train"]
    assert all(b.purity == 1.0 for b in blames)


def test_nothing_slowed_blames_nobody() -> None:
    assert common_endpoints([], {("a", "b")}) == []
