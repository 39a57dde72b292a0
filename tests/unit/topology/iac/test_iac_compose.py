"""Docker Compose files -> components and declared edges, on two public Compose files and a
hand-written one for the forms they do not use."""

from __future__ import annotations

from pathlib import Path

from warroom.topology.iac.load import read_iac

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "iac"


def test_voting_app_depends_on_and_kinds():
    folder = FIXTURES / "voting-app"
    graph = read_iac(folder)
    path = folder / "docker-compose.yml"
    assert graph.edge_pairs() == [("worker", "db"), ("worker", "redis")]
    assert {(e.callee, e.via, e.source) for e in graph.edges} == {
        ("redis", "depends_on", f"{path}:31"),
        ("db", "depends_on", f"{path}:32"),
    }
    kinds = graph.kinds()
    assert (kinds["redis"], kinds["db"], kinds["vote"]) == ("cache", "database", "service")
    assert graph.component("worker").source == f"{path}:27"


def test_sock_shop_compose_env_list():
    folder = FIXTURES / "sock-shop-compose"
    graph = read_iac(folder)
    [edge] = graph.edges
    assert (edge.caller, edge.callee) == ("user", "user-db")
    assert edge.via == "env MONGO_HOST=user-db:27017"
    assert edge.source == f"{folder / 'docker-compose.yml'}:155"
    kinds = graph.kinds()
    assert kinds["carts-db"] == "database"  # mongo:3.4
    assert kinds["catalogue-db"] == "database"  # MYSQL_ROOT_PASSWORD: a MySQL server's own
    assert kinds["rabbitmq"] == "queue"
    assert kinds["user-db"] == "database"  # nothing but its name says so
    assert graph.component("user-simulator").name == "user-sim"  # hostname is an alias


HAND_WRITTEN = """\
services:
  api:
    image: example/api:1
    depends_on:
      cache:
        condition: service_healthy
    links:
      - "pg:database"
    environment:
      DATABASE_URL: postgres://api:s3cret@database:5432/api
      CACHE_HOST: sessions
      MAIL: smtp.example.com:587
      MODE: production
  cache:
    image: valkey/valkey:8
    hostname: sessions
  pg:
    build: ./db
    ports:
      - "15432:5432"
"""


def test_long_forms_aliases_and_external_hosts(tmp_path):
    (tmp_path / "compose.yaml").write_text(HAND_WRITTEN)
    graph = read_iac(tmp_path)
    path = tmp_path / "compose.yaml"
    got = {(e.callee, e.via, e.source) for e in graph.edges}
    assert got == {
        ("cache", "depends_on", f"{path}:5"),
        ("pg", "links pg:database", f"{path}:8"),
        ("pg", "env DATABASE_URL=postgres://***@database:5432/api", f"{path}:10"),
        ("cache", "env CACHE_HOST=sessions", f"{path}:11"),
        ("smtp.example.com", "env MAIL=smtp.example.com:587", f"{path}:12"),
    }
    assert {e.caller for e in graph.edges} == {"api"}
    kinds = graph.kinds()
    assert kinds["cache"] == "cache"  # valkey
    assert kinds["pg"] == "database"  # no image, but it serves 5432
    assert kinds["smtp.example.com"] == "external"
