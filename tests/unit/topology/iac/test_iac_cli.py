"""`warroom topology show --iac DIR`: the table, --json, --dot, and errors as one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from warroom.cli import app

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "iac"
BOUTIQUE = FIXTURES / "online-boutique"
runner = CliRunner()


def test_json_is_the_graph():
    result = runner.invoke(app, ["topology", "show", "--iac", str(BOUTIQUE), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    pairs = {(e["caller"], e["callee"]) for e in data["edges"]}
    assert ("cartservice", "redis-cart") in pairs and len(pairs) == 17
    kinds = {c["name"]: c["kind"] for c in data["components"]}
    assert kinds["redis-cart"] == "cache" and kinds["frontend-external"] == "load-balancer"
    [redis] = [e for e in data["edges"] if e["callee"] == "redis-cart"]
    assert redis["source"] == f"{BOUTIQUE / 'kubernetes-manifests.yaml'}:497"
    assert data["unknown_kinds"] == {} and data["problems"] == []


def test_table_names_sources_under_the_folder():
    result = runner.invoke(app, ["topology", "show", "--iac", str(FIXTURES / "voting-app")])
    assert result.exit_code == 0, result.output
    assert "docker-compose.yml:31" in result.stdout  # worker depends_on redis
    assert "depends_on" in result.stdout and "database" in result.stdout


def test_dot_shapes_kinds_and_edges():
    result = runner.invoke(app, ["topology", "show", "--iac", str(BOUTIQUE), "--dot"])
    assert result.exit_code == 0, result.output
    dot = result.stdout
    assert dot.startswith("digraph iac {") and dot.rstrip().endswith("}")
    assert '"redis-cart" [shape=cylinder, label="redis-cart\\ncache"];' in dot
    assert '"frontend-external" [shape=invtrapezium' in dot
    assert '"cartservice" -> "redis-cart" [tooltip="env REDIS_ADDR=redis-cart:6379 (' in dot
    assert dot.count(" -> ") == 17  # one edge per pair (loadgenerator names frontend twice)


def test_problems_are_warnings_not_failures(tmp_path):
    (tmp_path / "ok.yaml").write_text((FIXTURES / "voting-app" / "docker-compose.yml").read_text())
    (tmp_path / "bad.yaml").write_text("services:\n  a: [\n")
    result = runner.invoke(app, ["topology", "show", "--iac", str(tmp_path), "--json"])
    assert result.exit_code == 0
    [problem] = json.loads(result.stdout)["problems"]
    assert problem.startswith(f"{tmp_path / 'bad.yaml'}:3: not valid YAML")


def test_a_folder_without_infrastructure_code_is_a_one_line_error(tmp_path):
    result = runner.invoke(app, ["topology", "show", "--iac", str(tmp_path)])
    assert result.exit_code == 2
    assert "no infrastructure code in" in result.output
    assert "Traceback" not in result.output


def test_json_and_dot_together_are_refused():
    result = runner.invoke(app, ["topology", "show", "--iac", str(BOUTIQUE), "--json", "--dot"])
    assert result.exit_code == 2
    assert "not both" in result.output


def test_the_installed_command(tmp_path):
    """The real entry point, as a user runs it (the group is registered in cli/__init__)."""
    done = subprocess.run(
        [sys.executable, "-m", "warroom.cli", "topology", "show", "--iac", str(BOUTIQUE), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert ("loadgenerator", "frontend") in {
        (e["caller"], e["callee"]) for e in json.loads(done.stdout)["edges"]
    }
