"""The shared vocabulary: hosts named in configuration values, kinds from what a container
runs, and merging the graphs of several readers."""

from __future__ import annotations

import pytest

from warroom.topology.iac.model import (
    Component,
    DeclaredEdge,
    IacGraph,
    guess_kind,
    hosts_in,
    image_kind,
    merge,
    shown,
)


@pytest.mark.parametrize(
    ("value", "hosts"),
    [
        ("redis-cart:6379", [("redis-cart", True)]),
        ("http://carts.shop.svc.cluster.local:8080/api", [("carts.shop.svc.cluster.local", True)]),
        ("postgres://app:pw@Orders-DB:5432/orders", [("orders-db", True)]),
        (
            "mongodb://u:p@mongo-0:27017,mongo-1:27017/db?replicaSet=rs0",
            [("mongo-0", True), ("mongo-1", True)],
        ),
        ("jdbc:mysql://catalogue-db:3306/socksdb", [("catalogue-db", True)]),
        ("Server=sqlserver;Port=1433;Database=app;Password=x", [("sqlserver", True)]),
        ("host=pg port=5432 dbname=app", [("pg", True)]),
        ("--redis=cache:6379 --verbose", [("cache", True)]),
        ("user-db", [("user-db", False)]),  # a lone word: maybe a host
        ("zipkin.jaeger.svc.cluster.local", [("zipkin.jaeger.svc.cluster.local", False)]),
        ("10.0.0.5:9092", [("10.0.0.5", True)]),
    ],
)
def test_hosts_in_values(value, hosts):
    assert [(h.host, h.explicit) for h in hosts_in(value)] == hosts


@pytest.mark.parametrize(
    "value",
    [
        "0.0.0.0",
        "localhost:8080",
        "http://127.0.0.1:9090/metrics",
        "-addr=:8080",
        "-Xms64m -Xmx128m -XX:+UseG1GC -Djava.security.egd=file:/dev/urandom",
        "10:30",
        "8080",
        "",
    ],
)
def test_values_that_name_no_host(value):
    assert hosts_in(value) == []


def test_shown_masks_credentials_and_cuts():
    assert shown("postgres://app:hunter2@db:5432/x") == "postgres://***@db:5432/x"
    assert shown("Server=db;Password=hunter2;") == "Server=db;Password=***;"
    assert len(shown("x" * 200)) == 80


@pytest.mark.parametrize(
    ("image", "kind"),
    [
        ("redis:alpine", "cache"),
        ("docker.io/bitnami/postgresql:15", "database"),
        ("mongo", "database"),
        ("confluentinc/cp-kafka:7.6.0", "queue"),
        ("rabbitmq:3.6.8-management", "queue"),
        ("oliver006/redis_exporter:v1.55.0", None),  # watches redis, is not one
        ("gcr.io/google-samples/microservices-demo/cartservice:v0.5.1", None),
    ],
)
def test_image_kinds(image, kind):
    assert image_kind(image) == kind


def test_guess_kind_falls_back_from_image_to_ports_to_variables_to_name():
    assert guess_kind("x", ["example/app:1", "memcached:1.6"]) == "cache"
    assert guess_kind("x", ["weaveworksdemos/catalogue-db:0.3.0"], ["mysql"]) == "database"
    assert guess_kind("x", [], [5672]) == "queue"
    assert guess_kind("x", [], [], ["MYSQL_ROOT_PASSWORD"]) == "database"
    assert guess_kind("x", [], [], ["POSTGRES_HOST"]) == "service"  # a client's variable
    assert guess_kind("user-db") == "database"
    assert guess_kind("session-cache") == "cache"
    assert guess_kind("frontend") == "service"


def test_merge_keeps_the_specific_kind_and_every_alias():
    a = IacGraph(
        (Component("redis", "service", "k8s.yaml:3", ("redis-svc",)),),
        (DeclaredEdge("web", "redis", "env", "k8s.yaml:9"),),
        {"X": 1},
        ["k8s problem"],
    )
    b = IacGraph(
        (Component("redis", "cache", "compose.yml:7", ("sessions",)),),
        (DeclaredEdge("web", "redis", "env", "k8s.yaml:9"), DeclaredEdge("a", "b", "d", "c:1")),
        {"X": 2, "Y": 1},
    )
    merged = merge([a, b])
    assert merged.components == (
        Component("redis", "cache", "compose.yml:7", ("redis-svc", "sessions")),
    )
    assert len(merged.edges) == 2  # the repeated edge once
    assert merged.edge_pairs() == [("a", "b"), ("web", "redis")]
    assert merged.unknown_kinds == {"X": 3, "Y": 1}
    assert merged.problems == ["k8s problem"]
    assert merged.component("sessions") is merged.components[0]
    assert merged.to_dict()["components"][0]["aliases"] == ["redis-svc", "sessions"]
