"""read_iac over a folder: each file to its reader, one merged graph, bad files as problems
that name their line, unknown kinds counted, a folder without infrastructure code refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from warroom.errors import InputError
from warroom.topology.iac.load import read_iac

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "iac"


def _mixed(tmp_path: Path) -> Path:
    """Online Boutique's manifests, the voting app's Compose file and the Fargate module,
    side by side."""
    shutil.copytree(FIXTURES / "online-boutique", tmp_path / "k8s")
    shutil.copytree(FIXTURES / "voting-app", tmp_path / "compose")
    shutil.copytree(FIXTURES / "terraform-ecs-fargate", tmp_path / "infra")
    return tmp_path


def test_a_folder_of_several_kinds_merges(tmp_path):
    graph = read_iac(_mixed(tmp_path))
    pairs = set(graph.edge_pairs())
    assert ("cartservice", "redis-cart") in pairs
    assert ("worker", "db") in pairs
    assert ("aws_alb.alb", "aws_ecs_service.service") in pairs
    assert len(pairs) == 17 + 2 + 1
    assert graph.problems == []


def test_malformed_files_are_problems_with_their_line(tmp_path):
    folder = _mixed(tmp_path)
    (folder / "broken.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: [x\n")
    (folder / "infra" / "broken.tf").write_text('resource "aws_instance" "x" {\n  ami = \n}\n')
    (folder / "broken.json").write_text('{\n  "Resources": {\n    "A": }\n}\n')
    (folder / "terraform.tfstate").write_text('{"version": 4,\n "resources": [\n')
    graph = read_iac(folder)
    problems = sorted(graph.problems)
    assert len(problems) == 4, problems
    assert problems[0].startswith(f"{folder / 'broken.json'}:3: not valid JSON")
    assert problems[1].startswith(f"{folder / 'broken.yaml'}:5: not valid YAML")
    assert problems[2].startswith(f"{folder / 'infra' / 'broken.tf'}:2: not valid HCL")
    assert problems[3].startswith(f"{folder / 'terraform.tfstate'}:3: not valid JSON")
    # The rest of the folder is still read.
    assert ("cartservice", "redis-cart") in graph.edge_pairs()
    assert ("aws_alb.alb", "aws_ecs_service.service") in graph.edge_pairs()


def test_unknown_kinds_are_counted(tmp_path):
    (tmp_path / "mesh.yaml").write_text(
        "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata: {name: a}\n"
        "---\napiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata: {name: b}\n"
    )
    (tmp_path / "main.tf").write_text('resource "datadog_monitor" "m" {\n  name = "m"\n}\n')
    graph = read_iac(tmp_path)
    assert graph.unknown_kinds == {
        "networking.istio.io/v1beta1 VirtualService": 2,
        "datadog_monitor": 1,
    }
    assert graph.components == () and graph.edges == ()


def test_a_folder_without_infrastructure_code_is_an_input_error(tmp_path):
    (tmp_path / "README.md").write_text("# nothing here\n")
    (tmp_path / "settings.yaml").write_text("log_level: debug\n")
    (tmp_path / ".terraform").mkdir()
    (tmp_path / ".terraform" / "cached.tf").write_text('resource "aws_instance" "x" {}\n')
    with pytest.raises(InputError, match=f"^no infrastructure code in {tmp_path}: 1 YAML"):
        read_iac(tmp_path)


def test_only_broken_files_is_an_input_error_naming_them(tmp_path):
    (tmp_path / "app.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata:\n\tname: x\n")
    with pytest.raises(InputError, match=r"no infrastructure code in .*app\.yaml:4: not valid"):
        read_iac(tmp_path)


def test_not_a_folder(tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        read_iac(tmp_path / "missing")


ODD = """\
apiVersion: apps/v1
kind: Deployment
metadata: just-a-string
spec:
  template:
    spec:
      containers: oops
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: odd}
spec:
  template:
    metadata: {labels: [a, b]}
    spec:
      containers:
      - name: c
        image: 42
        ports: [80, {containerPort: 6379}]
        env: {REDIS: "cache:6379"}
        envFrom: [nothing]
---
apiVersion: v1
kind: Service
metadata: {name: svc}
spec: {selector: [x]}
---
- just
- a list
"""


def test_odd_shapes_read_as_absent_not_a_crash(tmp_path):
    (tmp_path / "odd.yaml").write_text(ODD)
    (tmp_path / "compose.yml").write_text("services:\n  a:\n    depends_on: b\n  b: {}\n")
    graph = read_iac(tmp_path)
    # A Service without a usable selector has hand-made endpoints: something outside.
    assert graph.kinds() == {"odd": "cache", "svc": "external", "a": "service", "b": "service"}
    assert ("a", "b") in graph.edge_pairs()
    assert graph.problems == []
