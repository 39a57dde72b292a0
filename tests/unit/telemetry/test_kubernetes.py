"""The Kubernetes connector against hand-written API answers served on loopback (see
tests/fixtures/backends/kubernetes/README.md): both event APIs, deploys, restarts, paging,
Status errors, service mapping, auth and TLS, kubeconfig, and the Fetcher filling the store."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loopback import FIXTURES, Loopback, Reply, Request, answer_file
from warroom.causal.fault_types import type_from_text
from warroom.errors import BackendError, InputError
from warroom.model import TimeRange
from warroom.telemetry.kubernetes import Cluster, Config, KubernetesSource, placements, sources
from warroom.telemetry.kubernetes_objects import ServiceMapper
from warroom.telemetry.sources import Fetcher
from warroom.telemetry.store import TelemetryStore

T0 = 1_715_680_800.0  # 2024-05-14T10:00:00Z, a multiple of the fetch chunk
WINDOW = TimeRange(T0, T0 + 600)
DIR = FIXTURES / "kubernetes"


def k8s(name: str, status: int = 200) -> Reply:
    """A response file of this folder."""
    return answer_file(f"kubernetes/{name}", status)


def paged_pods(request: Request) -> Reply:
    """The pod list in two pages, the second asked for with the first page's continue token."""
    token = json.loads((DIR / "pods-page1.json").read_text())["metadata"]["continue"]
    if not request.query.get("continue"):
        return k8s("pods-page1.json")
    assert request.query["continue"] == [token]
    return k8s("pods-page2.json")


def routes(replace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every cluster-wide list the connector reads, with some answers replaced (by path)."""
    paths: dict[str, Any] = {
        "/apis/apps/v1/replicasets": k8s("replicasets.json"),
        "/api/v1/pods": paged_pods,
        "/apis/events.k8s.io/v1/events": k8s("events-events-k8s-io-v1.json"),
        "/api/v1/events": k8s("events-core-v1.json"),
        "/api/v1/configmaps": k8s("configmaps-metadata.json"),
        "/api/v1/secrets": k8s("secrets-metadata.json"),
        "/api/v1/nodes": k8s("nodes.json"),
    }
    return {**paths, **(replace or {})}


def config(**fields: Any) -> Config:
    """A Config from keyword fields, validated as a warroom.toml table would be."""
    return Config.model_validate(fields)


def source(url: str, **fields: Any) -> KubernetesSource:
    found = sources(config(url=url, **fields))
    assert len(found) == 1 and isinstance(found[0], KubernetesSource)
    return found[0]


def rows(url: str, window: TimeRange = WINDOW, **fields: Any) -> list[tuple[float, str, str, str]]:
    batch = source(url, **fields).fetch(window, time.monotonic() + 10)
    c = batch.columns
    return list(zip(c["ts"], c["service"], c["kind"], c["description"], strict=True))


def served(server: Loopback, path: str) -> list[Request]:
    return [r for r in server.requests if r.path == path]


def test_events_k8s_io_v1_readiness_and_eviction_series() -> None:
    with Loopback(routes()) as server:
        found = rows(server.url, include=["events"])
    assert [(ts - T0, svc, kind) for ts, svc, kind, _ in found] == [
        (270.0, "checkout", "unhealthy"),
        (pytest.approx(480.123456), "cart", "evict"),
    ]
    assert (
        "Readiness probe failed" in found[0][3] and "x7 until 2024-05-14T10:05:05Z" in found[0][3]
    )
    assert "low on resource: memory" in found[1][3] and "x2 until" in found[1][3]
    assert not served(server, "/api/v1/events")  # one API is enough by default


def test_core_v1_events_map_reasons_to_kinds_and_drop_routine_ones() -> None:
    with Loopback(routes()) as server:
        found = rows(server.url, include=["events"], events_api="v1")
    assert [(round(ts - T0, 3), svc, kind) for ts, svc, kind, _ in found] == [
        (120.0, "checkout", "scale"),  # ScalingReplicaSet on the Deployment
        (270.0, "checkout", "unhealthy"),
        (360.412, "cart", "schedule"),  # FailedScheduling of a pod no longer listed, a series
        (390.0, "cart", "scale"),  # the HPA
        (430.0, "node/node-b", "node"),
    ]  # Pulled (routine) and the BackOff before the window are not there
    assert "Insufficient memory" in found[2][3] and "x3 until 2024-05-14T10:07:40Z" in found[2][3]


def test_both_event_apis_give_each_event_object_once() -> None:
    with Loopback(routes()) as server:
        found = rows(server.url, include=["events"], events_api="both")
    kinds = [(svc, kind) for _, svc, kind, _ in found]
    assert kinds.count(("checkout", "unhealthy")) == 1  # the same uid through both APIs
    assert ("cart", "evict") in kinds and ("cart", "schedule") in kinds


def test_events_k8s_io_missing_falls_back_to_core_v1() -> None:
    missing = k8s("status-404-events-k8s-io.json", 404)
    with Loopback(routes({"/apis/events.k8s.io/v1/events": missing})) as server:
        found = rows(server.url, include=["events"])
    assert ("checkout", "scale") in [(svc, kind) for _, svc, kind, _ in found]


def test_a_new_replicaset_is_a_deploy_with_the_image_it_changed() -> None:
    with Loopback(routes()) as server:
        found = rows(server.url, include=["deploys"])
    assert len(found) == 1
    ts, service, kind, text = found[0]
    assert (ts, service, kind) == (T0 + 120, "checkout", "deploy")
    assert text == (
        "Deployment shop/checkout revision 7 (checkout-7d4b9c8f6d): image app "
        "registry.example.com/shop/checkout:2.4.0 -> registry.example.com/shop/checkout:2.4.1 "
        "(was revision 6); change-cause: ci: release 2.4.1 (pipeline 8812)"
    )


def test_an_oom_killed_container_is_a_restart_that_reads_as_a_memory_fault() -> None:
    with Loopback(routes()) as server:
        found = rows(server.url, include=["pods"])
    assert [(ts - T0, svc, kind) for ts, svc, kind, _ in found] == [
        (309.0, "checkout", "restart"),  # lastState.terminated.finishedAt
        (310.0, "checkout", "unhealthy"),  # the Ready condition's transition
    ]
    text = found[0][3]
    assert text.startswith("OOMKilled: container app of pod shop/checkout-7d4b9c8f6d-x2x9k")
    assert "code 137" in text and "restart count 2" in text
    assert type_from_text([text]) == "memory"


def test_config_and_secret_writes_after_creation_go_to_the_services_using_them() -> None:
    with Loopback(routes()) as server:
        found = rows(server.url, include=["config"])
    assert [(ts - T0, svc, kind) for ts, svc, kind, _ in found] == [
        (75.0, "checkout", "config"),  # Secret checkout-db, read by the pod's env
        (210.0, "checkout", "config"),  # ConfigMap checkout-config, mounted
        (240.0, "payments", "config"),  # used by no listed pod: its label names the service
    ]  # kube-root-ca.crt (only created) and a label-only write are not changes
    assert "Secret shop/checkout-db data written by external-secrets" in found[0][3]
    secrets = served(server, "/api/v1/secrets")
    assert "as=PartialObjectMetadataList" in secrets[0].headers["accept"]  # never the values


def test_node_not_ready() -> None:
    with Loopback(routes()) as server:
        found = rows(server.url, include=["nodes"])
    assert [(ts - T0, svc, kind) for ts, svc, kind, _ in found] == [(430.0, "node/node-b", "node")]
    assert "Ready=Unknown: NodeStatusUnknown: Kubelet stopped posting" in found[0][3]


def test_lists_are_read_page_by_page_with_the_continue_token() -> None:
    with Loopback(routes()) as server:
        src = source(server.url, page_size=2)
        placed = placements(src.cluster, WINDOW, time.monotonic() + 10)
    asked = served(server, "/api/v1/pods")
    assert [r.query.get("limit") for r in asked] == [["2"], ["2"]]
    assert "continue" not in asked[0].query and "continue" in asked[1].query
    assert {p.pod for p in placed} >= {"redis-0", "node-exporter-hp7xq"}  # from page 2


def test_an_expired_continue_token_restarts_the_list_once() -> None:
    pods = [
        k8s("pods-page1.json"),
        k8s("status-410-expired.json", 410),
        k8s("pods-page1.json"),
        k8s("pods-page2.json"),
    ]
    with Loopback(routes({"/api/v1/pods": pods})) as server:
        found = rows(server.url, include=["pods"])
    asked = served(server, "/api/v1/pods")
    assert ["continue" in r.query for r in asked] == [False, True, False, True]
    assert [svc for _, svc, _, _ in found] == ["checkout", "checkout"]  # no duplicate rows


def test_a_second_expired_token_is_a_backend_error() -> None:
    gone = k8s("status-410-expired.json", 410)
    with (
        Loopback(
            routes({"/api/v1/pods": [k8s("pods-page1.json"), gone, k8s("pods-page1.json"), gone]})
        ) as s,
        pytest.raises(BackendError, match=r"kubernetes: /api/v1/pods answered 410 Expired"),
    ):
        rows(s.url)


def test_a_forbidden_list_is_a_degraded_note_naming_the_permission() -> None:
    with Loopback(routes({"/api/v1/secrets": k8s("status-403-forbidden.json", 403)})) as server:
        batch = source(server.url, include=["config"]).fetch(WINDOW, time.monotonic() + 10)
    assert batch.columns["description"][0].startswith("ConfigMap shop/checkout-config")
    (note,) = batch.degraded
    assert note.startswith("kubernetes: /api/v1/secrets answered 403 Forbidden: secrets is")
    assert 'cannot list resource "secrets"' in note and "grant this identity `list`" in note


def test_an_unauthorized_token_fails_the_fetch_without_showing_it(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("sekrit-token-value\n")
    with (
        Loopback(
            routes({"/apis/apps/v1/replicasets": k8s("status-401-unauthorized.json", 401)})
        ) as server,
        pytest.raises(BackendError) as caught,
    ):
        rows(server.url, bearer_token_file=token)
    assert "401 Unauthorized" in str(caught.value) and "bearer_token_file" in str(caught.value)
    assert "sekrit" not in str(caught.value)


def test_the_bearer_token_file_is_sent_and_never_part_of_the_identity(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("sa-token-0123\n")
    with Loopback(routes()) as server:
        src = source(server.url, bearer_token_file=token)
        src.fetch(WINDOW, time.monotonic() + 10)
    assert {r.headers["authorization"] for r in server.requests} == {"Bearer sa-token-0123"}
    assert "sa-token" not in src.identity() and server.url in src.identity()


def test_events_outside_the_window_are_dropped() -> None:
    with Loopback(routes()) as server:
        before = rows(server.url, TimeRange(T0 - 1800, T0 - 600), events_api="v1")
        edge = rows(server.url, TimeRange(T0 - 600, T0 + 120), events_api="v1")
    assert [(ts - T0, svc, kind) for ts, svc, kind, _ in before] == [
        (-1205.0, "redis", "restart"),  # BackOff "restarting failed container" at 09:39:55
        (-1199.0, "redis", "restart"),  # its container's Error termination at 09:40:01
    ]
    assert all(ts < T0 + 120 for ts, *_ in edge)  # the deploy at exactly the end is not in


def test_pods_map_to_services_through_owner_references_then_labels() -> None:
    replicasets = json.loads((DIR / "replicasets.json").read_text())["items"]
    pods = [
        *json.loads((DIR / "pods-page1.json").read_text())["items"],
        *json.loads((DIR / "pods-page2.json").read_text())["items"],
    ]
    by_owner = ServiceMapper(("owner", "app"), replicasets, pods)
    assert [by_owner.of_object(p) for p in pods] == ["checkout", "cart", "redis", "node-exporter"]
    by_label = ServiceMapper(("app", "app.kubernetes.io/name", "owner"), replicasets, pods)
    assert [by_label.of_object(p) for p in pods] == [
        "checkout",
        "cart",
        "cache",
        "prometheus-node-exporter",
    ]
    # a pod whose ReplicaSet is gone, and references to objects no longer listed
    orphan = {
        "metadata": {
            "name": "web-5c7d8f9b6-abcde",
            "ownerReferences": [
                {"kind": "ReplicaSet", "name": "web-5c7d8f9b6", "controller": True}
            ],
        }
    }
    assert by_owner.of_object(orphan) == "web"
    assert by_owner.of_reference({"kind": "Pod", "name": "api-7f6d5c4b9-k2m4p"}) == "api"
    assert by_owner.of_reference({"kind": "Pod", "name": "kafka-2"}) == "kafka"
    assert by_owner.of_reference({"kind": "Pod", "name": "kube-proxy"}) == "kube-proxy"
    assert by_owner.of_reference({"kind": "ReplicaSet", "name": "checkout-service"}) == (
        "checkout-service"  # vowels: a word, not a pod-template-hash
    )


def test_namespaces_in_scope_are_listed_one_by_one_and_nodes_cluster_wide() -> None:
    namespaced = {
        path.replace("/v1/", "/v1/namespaces/shop/", 1) if "nodes" not in path else path: r
        for path, r in routes().items()
    }
    with Loopback(namespaced) as server:
        found = rows(server.url, namespaces=["shop"])
    assert {r.path for r in server.requests} == {
        "/apis/apps/v1/namespaces/shop/replicasets",
        "/api/v1/namespaces/shop/pods",
        "/apis/events.k8s.io/v1/namespaces/shop/events",
        "/api/v1/namespaces/shop/configmaps",
        "/api/v1/namespaces/shop/secrets",
        "/api/v1/nodes",
    }
    assert len(found) == 9


def test_placements_name_each_pod_on_each_node_including_deleted_ones() -> None:
    with Loopback(routes()) as server:
        cluster = Cluster(config(url=server.url, events_api="v1"))
        found = placements(cluster, TimeRange(T0 - 3600, T0 + 600), time.monotonic() + 10)
    node_b = [(p.pod, p.service) for p in found if p.node == "node-b"]
    assert node_b == [
        ("node-exporter-hp7xq", "node-exporter"),
        ("redis-0", "redis"),
        ("checkout-5d9c8b7f4-lq2wd", "checkout"),  # only its Scheduled event is left
    ]
    assert {p.pod for p in found if p.node == "node-a"} == {
        "checkout-7d4b9c8f6d-x2x9k",
        "cart-6b8f9d5c7-mz8qv",
    }


def test_the_fetcher_fills_the_store_and_concurrent_chunks_share_one_listing() -> None:
    store = TelemetryStore()
    with Loopback(routes()) as server:
        fetcher = Fetcher(store, sources(config(url=server.url)), concurrency=3)
        added = fetcher.cover([TimeRange(T0 - 600, T0 + 1200)])  # three chunks at once
        again = fetcher.cover([WINDOW])
    events = store.events(TimeRange(T0 - 600, T0 + 1200))
    assert added == len(events) == 9 and again == 0
    assert {e.kind for e in events} == {"deploy", "config", "restart", "unhealthy", "evict", "node"}
    assert len(served(server, "/api/v1/pods")) == 2  # two pages, once for all three chunks
    assert fetcher.degraded() == ()


def test_a_slow_api_server_does_not_hold_past_the_deadline() -> None:
    slow = Reply(b"{}", delay_s=5.0)
    with Loopback(routes({"/apis/apps/v1/replicasets": slow})) as server:
        started = time.monotonic()
        with pytest.raises(BackendError, match="timed out"):
            source(server.url).fetch(WINDOW, time.monotonic() + 0.5)
    assert time.monotonic() - started < 2.0


# --- configuration -------------------------------------------------------------------------


def test_kubeconfig_json_context_token_and_refused_client_certificates() -> None:
    config = Config.from_kubeconfig(DIR / "kubeconfig.json", context="kind-reader")
    assert config.url == "https://127.0.0.1:40123" and config.insecure_skip_verify
    assert config.bearer_token is not None
    assert config.bearer_token.get_secret_value() == "kubeconfig-json-token-9a8b"
    with pytest.raises(InputError, match="client-certificate-data.*kubectl create token"):
        Config.from_kubeconfig(DIR / "kubeconfig.json")  # current-context: a client cert
    with pytest.raises(InputError, match="no context named 'nope'"):
        Config.from_kubeconfig(DIR / "kubeconfig.json", context="nope")


def test_kubeconfig_yaml_current_context_with_paths_relative_to_the_file() -> None:
    pytest.importorskip("yaml")
    prod = Config.from_kubeconfig(DIR / "kubeconfig.yaml", namespaces=["shop"])
    assert prod.url == "https://127.0.0.1:6443" and prod.namespaces == ["shop"]
    assert prod.ca_file == DIR / "certs" / "prod-ca.crt"
    assert prod.bearer_token is not None
    assert prod.bearer_token.get_secret_value() == "kubeconfig-test-token-1f2e3d"
    staging = Config.from_kubeconfig(DIR / "kubeconfig.yaml", context="staging")
    assert staging.ca_data is not None and staging.ca_data.startswith("-----BEGIN CERTIFICATE")
    assert staging.bearer_token_file == DIR / "tokens" / "staging"


def test_a_yaml_kubeconfig_without_pyyaml_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml now raises ImportError
    with pytest.raises(InputError, match="pip install pyyaml"):
        Config.from_kubeconfig(DIR / "kubeconfig.yaml")
    assert Config.from_kubeconfig(DIR / "kubeconfig.json", context="kind-reader").url


def test_in_cluster_uses_the_service_account_and_the_service_address(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("in-cluster-token")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    config = Config.in_cluster(env=env, root=tmp_path)
    assert config.url == "https://10.96.0.1:443"
    assert (config.bearer_token_file, config.ca_file) == (tmp_path / "token", tmp_path / "ca.crt")
    with pytest.raises(InputError, match="KUBERNETES_SERVICE_HOST"):
        Config.in_cluster(env={}, root=tmp_path)


def test_config_rejects_unknown_keys_and_bad_namespaces() -> None:
    with pytest.raises(ValueError, match="namespace_list"):
        config(url="https://k8s:6443", namespace_list=["shop"])
    with pytest.raises(ValueError, match="not namespace names"):
        config(url="https://k8s:6443", namespaces=["shop/x"])


# --- TLS with a CA file --------------------------------------------------------------------


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a server certificate for 127.0.0.1 signed by it, made with openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("tls")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        str(d / "ca.key"),
        "-out",
        str(d / "ca.crt"),
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        str(d / "server.key"),
        "-out",
        str(d / "server.csr"),
    )
    (d / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        str(d / "server.csr"),
        "-CA",
        str(d / "ca.crt"),
        "-CAkey",
        str(d / "ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        str(d / "ext"),
        "-out",
        str(d / "server.crt"),
    )
    return d


def https(server: Loopback, tls: Path) -> Callable[[], str]:
    """Serve the loopback over TLS with the test CA's server certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls / "server.crt", tls / "server.key")
    inner = server._server  # the loopback's own http.server: wrap its socket before it serves
    inner.socket = context.wrap_socket(inner.socket, server_side=True)
    return lambda: server.url.replace("http://", "https://")


def test_tls_is_verified_against_the_ca_file(tls_files: Path) -> None:
    server = Loopback(routes())
    url = https(server, tls_files)
    with server:
        found = rows(url(), ca_file=tls_files / "ca.crt", include=["deploys"])
        with pytest.raises(BackendError, match="CERTIFICATE_VERIFY_FAILED|certificate verify"):
            rows(url(), include=["deploys"])  # the system CAs do not know the test CA
    assert [kind for _, _, kind, _ in found] == ["deploy"]


def test_inline_certificate_authority_data_is_trusted(tls_files: Path) -> None:
    server = Loopback(routes())
    url = https(server, tls_files)
    with server:
        pem = (tls_files / "ca.crt").read_text()
        found = rows(url(), ca_data=pem, include=["deploys"])
    assert len(found) == 1


def test_placements_without_permission_on_pods_is_an_error_not_an_empty_answer() -> None:
    refused = k8s("status-403-forbidden.json", 403)
    with Loopback(routes({"/api/v1/pods": refused})) as server:
        cluster = Cluster(config(url=server.url))
        with pytest.raises(BackendError, match="pods not read"):
            placements(cluster, WINDOW, time.monotonic() + 10)


def test_a_list_longer_than_max_items_is_cut_and_said() -> None:
    with Loopback(routes()) as server:
        batch = source(server.url, include=["pods"], max_items=2).fetch(
            WINDOW, time.monotonic() + 5
        )
    assert len(served(server, "/api/v1/pods")) == 1  # page 2 never asked
    assert "kubernetes: /api/v1/pods: read 2 objects (max_items), 2 more not read" in batch.degraded
