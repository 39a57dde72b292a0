"""Kubernetes manifests -> components and declared edges, on the published Online Boutique and
Sock Shop manifests and on small hand-written manifests for what those two do not use."""

from __future__ import annotations

from pathlib import Path

from warroom.topology.iac.load import read_iac

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "iac"
BOUTIQUE = FIXTURES / "online-boutique"
BOUTIQUE_FILE = BOUTIQUE / "kubernetes-manifests.yaml"

# The call graph Online Boutique's README draws (its architecture diagram and service table).
PUBLISHED_EDGES = {
    ("frontend", "productcatalogservice"),
    ("frontend", "currencyservice"),
    ("frontend", "cartservice"),
    ("frontend", "recommendationservice"),
    ("frontend", "shippingservice"),
    ("frontend", "checkoutservice"),
    ("frontend", "adservice"),
    ("checkoutservice", "productcatalogservice"),
    ("checkoutservice", "shippingservice"),
    ("checkoutservice", "paymentservice"),
    ("checkoutservice", "emailservice"),
    ("checkoutservice", "currencyservice"),
    ("checkoutservice", "cartservice"),
    ("recommendationservice", "productcatalogservice"),
    ("cartservice", "redis-cart"),
    ("loadgenerator", "frontend"),
}


def _edge(graph, caller, callee):
    return [e for e in graph.edges if (e.caller, e.callee) == (caller, callee)]


def test_online_boutique_holds_the_published_call_graph():
    graph = read_iac(BOUTIQUE)
    pairs = set(graph.edge_pairs())
    coverage = len(PUBLISHED_EDGES & pairs) / len(PUBLISHED_EDGES)
    assert coverage >= 0.9, sorted(PUBLISHED_EDGES - pairs)
    # Nothing beyond the published graph but the load balancer in front of the frontend.
    assert pairs - PUBLISHED_EDGES == {("frontend-external", "frontend")}
    assert graph.problems == [] and graph.unknown_kinds == {}


def test_online_boutique_edges_name_the_env_var_line():
    graph = read_iac(BOUTIQUE)
    [redis] = _edge(graph, "cartservice", "redis-cart")
    assert redis.via == "env REDIS_ADDR=redis-cart:6379"
    assert redis.source == f"{BOUTIQUE_FILE}:497"
    lines = BOUTIQUE_FILE.read_text().splitlines()
    assert lines[496].strip() == "- name: REDIS_ADDR"
    [checkout] = _edge(graph, "frontend", "checkoutservice")
    assert checkout.source == f"{BOUTIQUE_FILE}:290"
    assert lines[289].strip() == "- name: CHECKOUT_SERVICE_ADDR"
    # The init container and the main container both name the frontend: two edges, two lines.
    assert [e.source for e in _edge(graph, "loadgenerator", "frontend")] == [
        f"{BOUTIQUE_FILE}:574",
        f"{BOUTIQUE_FILE}:587",
    ]


def test_online_boutique_kinds():
    graph = read_iac(BOUTIQUE)
    kinds = graph.kinds()
    assert kinds["redis-cart"] == "cache"
    assert kinds["frontend-external"] == "load-balancer"
    assert kinds["frontend"] == kinds["cartservice"] == "service"
    [front] = _edge(graph, "frontend-external", "frontend")
    assert front.via == "Service type LoadBalancer selects app=frontend"
    assert front.source == f"{BOUTIQUE_FILE}:326"
    assert graph.component("frontend").source == f"{BOUTIQUE_FILE}:231"


def test_sock_shop_manifests():
    graph = read_iac(FIXTURES / "sock-shop")
    path = FIXTURES / "sock-shop" / "complete-demo.yaml"
    kinds = graph.kinds()
    assert kinds["carts-db"] == kinds["orders-db"] == "database"  # image mongo
    assert kinds["catalogue-db"] == "database"  # port named mysql
    assert kinds["session-db"] == "cache"  # redis:alpine
    assert kinds["rabbitmq"] == "queue"  # next to its exporter sidecar
    assert kinds["zipkin.jaeger.svc.cluster.local"] == "external"  # no such Service here
    assert set(graph.edge_pairs()) == {
        ("user", "user-db"),
        ("shipping", "zipkin.jaeger.svc.cluster.local"),
    }
    [user] = _edge(graph, "user", "user-db")
    assert (user.via, user.source) == ("env mongo=user-db:27017", f"{path}:789")
    assert graph.unknown_kinds == {}  # the Namespace is understood and says nothing


CONFIGURED = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: shop-config
  namespace: shop
data:
  CART_URL: http://carts.shop.svc.cluster.local:8080/api
  ORDERS_DSN: postgres://app:hunter2@orders-db:5432/orders
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  template:
    metadata:
      labels: {app: web, tier: front}
    spec:
      containers:
      - name: web
        image: example/web:1
        env:
        - name: CART
          valueFrom:
            configMapKeyRef:
              name: shop-config
              key: CART_URL
        - name: PAYMENTS
          value: https://api.stripe.com/v1
        - name: PAY_HOST
          value: payments-svc
        - name: PAY_URL
          value: grpc://$(PAY_HOST):9000
        envFrom:
        - configMapRef:
            name: shop-config
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: web
"""

BACKENDS = """\
# Source: shop/templates/carts.yaml
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: carts-app
  namespace: shop
spec:
  template:
    metadata:
      labels: {app: carts}
    spec:
      containers:
      - name: carts
        image: example/carts:2
---
# Source: shop/templates/carts-svc.yaml
apiVersion: v1
kind: Service
metadata:
  name: carts
  namespace: shop
spec:
  selector: {app: carts}
---
# Source: shop/templates/orders-db.yaml
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: orders-db
  namespace: shop
spec:
  template:
    metadata:
      labels: {app: orders-db}
    spec:
      containers:
      - name: pg
        image: docker.io/library/postgres:15
---
apiVersion: v1
kind: Service
metadata:
  name: orders-db
  namespace: shop
spec:
  selector: {app: orders-db}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: payments
  namespace: shop
spec:
  template:
    metadata:
      labels: {app: payments}
    spec:
      containers:
      - name: payments
        image: example/payments:3
---
apiVersion: v1
kind: Service
metadata:
  name: payments-svc
  namespace: shop
spec:
  selector: {app: payments}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop-ingress
  namespace: shop
spec:
  rules:
  - http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web-svc
            port: {number: 80}
---
apiVersion: v1
kind: Service
metadata:
  name: web-svc
  namespace: shop
spec:
  selector: {tier: front}
"""


def _shop(tmp_path: Path):
    (tmp_path / "web.yaml").write_text(CONFIGURED)
    (tmp_path / "backends.yml").write_text(BACKENDS)
    return read_iac(tmp_path)


def test_config_map_values_resolve_to_the_env_var_line(tmp_path):
    graph = _shop(tmp_path)
    web = tmp_path / "web.yaml"
    carts = [e for e in _edge(graph, "web", "carts-app") if e.via.startswith("env CART ")]
    assert [(e.via, e.source) for e in carts] == [
        (
            "env CART from ConfigMap shop-config/CART_URL="
            "http://carts.shop.svc.cluster.local:8080/api",
            f"{web}:24",
        )
    ]
    # envFrom takes every key: the edge names the envFrom line and the key.
    from_env = {e.via: e.source for e in graph.edges if e.via.startswith("envFrom")}
    assert from_env[
        "envFrom ConfigMap shop-config: ORDERS_DSN=postgres://***@orders-db:5432/orders"
    ]
    assert set(from_env.values()) == {f"{web}:36"}  # the `- configMapRef:` entry


def test_service_names_external_hosts_and_expansion(tmp_path):
    graph = _shop(tmp_path)
    pairs = set(graph.edge_pairs())
    assert ("web", "carts-app") in pairs  # Service carts selects the StatefulSet carts-app
    assert ("web", "orders-db") in pairs
    assert ("web", "payments") in pairs  # $(PAY_HOST) expanded, payments-svc -> payments
    vias = {e.via for e in _edge(graph, "web", "payments")}
    assert vias == {"env PAY_HOST=payments-svc", "env PAY_URL=grpc://payments-svc:9000"}
    assert ("web", "api.stripe.com") in pairs
    assert ("shop-ingress", "web") in pairs  # Ingress -> web-svc -> selector tier=front
    kinds = graph.kinds()
    assert kinds["api.stripe.com"] == "external"
    assert kinds["orders-db"] == "database"
    assert kinds["shop-ingress"] == "load-balancer"
    assert graph.component("payments").aliases == ("payments-svc",)
    assert graph.component("payments-svc").name == "payments"
    [ingress] = _edge(graph, "shop-ingress", "web")
    assert ingress.source == f"{tmp_path / 'backends.yml'}:83"  # name: web-svc
    # A lone word that is no Service is not a host: PAY_HOST alone gives only the expansion.
    assert not any(e.via.startswith("env PAY_HOST") and e.callee != "payments" for e in graph.edges)


def test_passwords_never_reach_via(tmp_path):
    graph = _shop(tmp_path)
    assert not any("hunter2" in e.via for e in graph.edges)


def test_unknown_kinds_are_counted_not_fatal(tmp_path):
    graph = _shop(tmp_path)
    assert graph.unknown_kinds == {"networking.istio.io/v1beta1 VirtualService": 1}
    assert graph.problems == []


def test_helm_rendered_output_keeps_its_lines(tmp_path):
    graph = _shop(tmp_path)
    # metadata.name of the StatefulSet under its "# Source:" comment, line 5 of the file.
    assert graph.component("carts-app").source == f"{tmp_path / 'backends.yml'}:5"
