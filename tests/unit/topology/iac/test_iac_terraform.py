"""Terraform -> components and declared edges: HashiCorp's ECS Fargate example, a hand-written
module for what that example does not use (a database reference, a security group rule, a
target group attachment, an event source mapping), and a hand-written state file."""

from __future__ import annotations

import json
from pathlib import Path

from warroom.topology.iac.load import read_iac

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "iac"
FARGATE = FIXTURES / "terraform-ecs-fargate"


def test_ecs_fargate_example():
    graph = read_iac(FARGATE)
    assert graph.kinds() == {"aws_alb.alb": "load-balancer", "aws_ecs_service.service": "service"}
    assert graph.edge_pairs() == [("aws_alb.alb", "aws_ecs_service.service")]
    assert {(e.via, e.source) for e in graph.edges} == {
        (
            "aws_alb_listener.front_end forwards to aws_alb_target_group.atg",
            f"{FARGATE / 'ecs.tf'}:58",  # load_balancer { target_group_arn = ... }
        ),
        (
            "security group aws_security_group.ecs_sg ingress from aws_security_group.lb_sg",
            f"{FARGATE / 'security.tf'}:33",  # security_groups = [lb_sg]
        ),
    }
    service = graph.component("aws_ecs_service.service")
    assert service.source == f"{FARGATE / 'ecs.tf'}:44"  # resource "aws_ecs_service" "service"
    assert service.aliases == ("tf-example-ecs-fargate",)
    # VPC, subnets, routes, log group, cluster: structure, understood, not counted unknown.
    assert graph.unknown_kinds == {} and graph.problems == []


# Hand-written for this test (not from a public repository).
MODULE = """\
resource "aws_db_instance" "orders" {
  identifier = "orders-db"
  engine     = "postgres"
  vpc_security_group_ids = [aws_security_group.db.id]
}

resource "aws_elasticache_cluster" "sessions" {
  cluster_id = "sessions"
  engine     = "redis"
}

resource "aws_instance" "web" {
  ami                    = "ami-123"
  vpc_security_group_ids = [aws_security_group.web.id]
  user_data = <<-EOT
    DB_HOST=${aws_db_instance.orders.address}
    REDIS=${aws_elasticache_cluster.sessions.cache_nodes[0].address}
  EOT
  depends_on = [aws_db_instance.orders]
}

resource "aws_security_group" "web" {
  name = "web"
}

resource "aws_security_group" "db" {
  name = "db"
}

resource "aws_security_group_rule" "web_to_db" {
  type                     = "ingress"
  from_port                = 5432
  to_port                  = 5432
  protocol                 = "tcp"
  security_group_id        = aws_security_group.db.id
  source_security_group_id = aws_security_group.web.id
}

resource "aws_lb" "front" {
  name = "front"
}

resource "aws_lb_target_group" "web" {
  port = 80
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.front.arn
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.web.arn
  }
}

resource "aws_lb_target_group_attachment" "web" {
  target_group_arn = aws_lb_target_group.web.arn
  target_id        = aws_instance.web.id
}

resource "aws_sqs_queue" "orders" {
  name = "orders"
}

resource "aws_lambda_function" "worker" {
  function_name = "order-worker"
  environment {
    variables = {
      QUEUE_URL = aws_sqs_queue.orders.url
    }
  }
}

resource "aws_lambda_event_source_mapping" "orders" {
  event_source_arn = aws_sqs_queue.orders.arn
  function_name    = aws_lambda_function.worker.arn
}

resource "datadog_monitor" "latency" {
  name = "latency"
}

module "vpc" {
  source = "terraform-aws-modules/vpc/aws"
}
"""


def test_references_rules_attachments_and_event_sources(tmp_path):
    (tmp_path / "main.tf").write_text(MODULE)
    graph = read_iac(tmp_path)
    path = tmp_path / "main.tf"
    got = {(e.caller, e.callee, e.via, e.source.rsplit(":", 1)[1]) for e in graph.edges}
    web, db = "aws_instance.web", "aws_db_instance.orders"
    assert got == {
        (web, db, f"reference {db} in user_data", "16"),
        (
            web,
            "aws_elasticache_cluster.sessions",
            "reference aws_elasticache_cluster.sessions in user_data",
            "17",
        ),
        (web, db, "depends_on", "19"),
        (web, db, "security group aws_security_group.db ingress from aws_security_group.web", "36"),
        ("aws_lb.front", web, "aws_lb_listener.http forwards to aws_lb_target_group.web", "57"),
        (
            "aws_lambda_function.worker",
            "aws_sqs_queue.orders",
            "reference aws_sqs_queue.orders in environment.variables.QUEUE_URL",
            "68",
        ),
        (
            "aws_lambda_function.worker",
            "aws_sqs_queue.orders",
            "aws_lambda_event_source_mapping.orders (event-source)",
            "74",
        ),
    }
    assert all(e.source.startswith(f"{path}:") for e in graph.edges)
    kinds = graph.kinds()
    assert kinds[db] == "database" and kinds["aws_elasticache_cluster.sessions"] == "cache"
    assert kinds["aws_sqs_queue.orders"] == "queue" and kinds["aws_lb.front"] == "load-balancer"
    assert graph.component("orders-db").name == db  # its identifier is an alias
    assert graph.component("aws_elasticache_cluster.sessions").source == f"{path}:7"
    assert graph.unknown_kinds == {"datadog_monitor": 1, "terraform module vpc (not followed)": 1}


def _state_resource(kind, name, attributes, dependencies=()):
    return {
        "mode": "managed",
        "type": kind,
        "name": name,
        "provider": 'provider["registry.terraform.io/hashicorp/aws"]',
        "instances": [
            {"schema_version": 0, "attributes": attributes, "dependencies": list(dependencies)}
        ],
    }


STATE = {
    "version": 4,
    "terraform_version": "1.7.5",
    "resources": [
        _state_resource("aws_security_group", "web", {"id": "sg-web", "ingress": []}),
        _state_resource(
            "aws_security_group",
            "db",
            {"id": "sg-db", "ingress": [{"from_port": 5432, "security_groups": ["sg-web"]}]},
            ["aws_security_group.web"],
        ),
        _state_resource(
            "aws_db_instance",
            "orders",
            {"id": "db-ABC", "identifier": "orders-db", "vpc_security_group_ids": ["sg-db"]},
            ["aws_security_group.db"],
        ),
        _state_resource(
            "aws_instance",
            "web",
            {"id": "i-0123", "vpc_security_group_ids": ["sg-web"]},
            ["aws_db_instance.orders", "aws_security_group.web"],
        ),
        _state_resource("aws_transfer_server", "sftp", {"id": "s-1"}),
        {"mode": "data", "type": "aws_ami", "name": "linux", "instances": []},
    ],
}


def test_state_dependencies_and_attribute_ids(tmp_path):
    path = tmp_path / "terraform.tfstate"
    path.write_text(json.dumps(STATE, indent=2))
    graph = read_iac(tmp_path)
    assert graph.edge_pairs() == [("aws_instance.web", "aws_db_instance.orders")]
    assert {e.via for e in graph.edges} == {
        "state dependency",
        "security group aws_security_group.db ingress from aws_security_group.web",
    }
    lines = path.read_text().splitlines()
    [web] = [c for c in graph.components if c.name == "aws_instance.web"]
    line = int(web.source.rsplit(":", 1)[1])
    assert lines[line - 1].strip() == '"type": "aws_instance",'
    assert graph.kinds()["aws_db_instance.orders"] == "database"
    assert graph.unknown_kinds == {"aws_transfer_server": 1}
