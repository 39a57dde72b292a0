"""The gym's topologies written as Kubernetes manifests read back as exactly their calls."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from warroom.cli import app
from warroom.gym import bench, topologies
from warroom.gym.manifests import write_manifests
from warroom.topology.iac.load import read_iac

runner = CliRunner()


@pytest.mark.parametrize("name", ["shop", "shared-db", "pipeline", "random-12"])
def test_the_manifests_give_exactly_the_topologys_edges(tmp_path, name):
    topology = topologies.build(name, seed=3)
    write_manifests(topology, tmp_path)
    graph = read_iac(tmp_path)
    assert graph.edge_pairs() == sorted(topology.edges())
    assert graph.problems == [] and graph.unknown_kinds == {}
    assert {c.name for c in graph.components} == {s.name for s in topology.services}


def test_kinds_come_out_of_the_images(tmp_path):
    for topology in (topologies.shop(), topologies.pipeline()):
        write_manifests(topology, tmp_path)
    kinds = read_iac(tmp_path).kinds()
    assert kinds["redis-cart"] == "cache" and kinds["orders-db"] == "database"
    assert kinds["broker"] == "queue" and kinds["store-db"] == "database"
    assert kinds["payment-gateway"] == "external" and kinds["geoip-provider"] == "external"
    assert kinds["checkout"] == "service" and kinds["worker-enrich"] == "service"


def test_the_command_writes_what_the_bench_swaps_in(tmp_path):
    result = runner.invoke(
        app, ["topology", "gym-manifests", "--topology", "pipeline", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    shown = runner.invoke(app, ["topology", "show", "--iac", str(tmp_path), "--json"])
    pairs = {(e["caller"], e["callee"]) for e in json.loads(shown.stdout)["edges"]}
    assert pairs == set(topologies.pipeline().edges())
    graph = bench._manifest_graph("pipeline", 0)
    assert set(graph.edge_pairs()) == pairs


def test_an_unknown_topology_is_a_one_line_error(tmp_path):
    result = runner.invoke(
        app, ["topology", "gym-manifests", "--topology", "nope", "--out", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert "unknown topology 'nope'" in result.output
