"""The Prometheus source against hand-written answers in the documented format, on loopback
(tests/fixtures/backends/prometheus/README.md says where the format is documented)."""

from __future__ import annotations

import base64
import re
import threading
import time
from typing import Any

import pytest
from pydantic import ValidationError

from loopback import Loopback, Reply, Request, answer_file
from warroom.agents.domains import ERRORS, LATENCY, REQUESTS
from warroom.datasets.base import service_of_pod
from warroom.errors import BackendError
from warroom.experts.metrics import indicator_kind, resource_family
from warroom.model import IndicatorKind, TimeRange
from warroom.telemetry import prometheus_families as fam
from warroom.telemetry.prometheus import MAX_POINTS, Config, PrometheusSource, sources, step_for
from warroom.telemetry.sources import Batch, Fetcher
from warroom.telemetry.store import TelemetryStore

T0 = 1_700_000_400.0  # a multiple of the fetcher's chunk and of the step
WINDOW = TimeRange(T0, T0 + 600)
HIST = "http_server_request_duration_seconds"
QUEUE = 'queue_depth{k8s_pod_name="checkout-5f6d7c8b9a-xk2lp",namespace="shop",queue="orders"}'
FORM = "application/x-www-form-urlencoded"


def _range(request: Request) -> Reply:
    query = request.form["query"][0]
    if query.startswith("histogram_quantile(0.5,"):
        return answer_file("prometheus/range_p50.json")
    return answer_file("prometheus/range_rate.json")


def _raw(request: Request) -> Reply:
    if '__name__="queue_depth"' in request.form["query"][0]:
        return answer_file("prometheus/raw_queue_depth.json")
    return answer_file("prometheus/empty_matrix.json")


def routes(prefix: str = "", **replace: Any) -> dict[str, Any]:
    """The API paths of a server holding the fixture shop; `replace` swaps one (by its tail)."""
    base: dict[str, Any] = {
        "label/__name__/values": answer_file("prometheus/label_values.json"),
        "metadata": answer_file("prometheus/metadata.json"),
        "series": answer_file("prometheus/series.json"),
        "query_range": _range,
        "query": _raw,
    }
    base.update(replace)
    return {f"{prefix}/api/v1/{tail}": route for tail, route in base.items()}


def config(url: str, **settings: Any) -> Config:
    """Settings as a config file gives them (validated the same way)."""
    return Config.model_validate({"url": url, **settings})


def fetch(server: Loopback, window: TimeRange = WINDOW, **settings: Any) -> Batch:
    """One fetch through a fresh source."""
    (source,) = sources(config(server.url, **settings))
    return source.fetch(window, time.monotonic() + 10)


def series(batch: Batch) -> dict[tuple[str, str], list[tuple[float, float | None]]]:
    """(service, name) -> [(ts, value)] of a batch."""
    out: dict[tuple[str, str], list[tuple[float, float | None]]] = {}
    c = batch.columns
    for service, name, ts, value in zip(c["service"], c["name"], c["ts"], c["value"], strict=True):
        out.setdefault((service, name), []).append((ts, value))
    return out


def asked(server: Loopback, tail: str) -> list[Request]:
    """The requests made to one API path."""
    return [r for r in server.requests if r.path.endswith(f"/api/v1/{tail}")]


def queries(server: Loopback) -> list[str]:
    """Every PromQL expression sent."""
    return [r.form["query"][0] for r in asked(server, "query_range") + asked(server, "query")]


# --- what is fetched, and how it is named ------------------------------------------------------


def test_families_are_named_for_the_experts_and_the_window_is_half_open() -> None:
    with Loopback(routes()) as server:
        batch = fetch(server)
    got = series(batch)
    assert batch.degraded == ()
    assert {name for service, name in got if service == "cart"} == {
        f"{HIST}_p50",
        f"{HIST}_p99",
        f"{HIST}_count_per_second",
        "http_requests_per_second",
        "http_requests_error_ratio",
        "process_cpu_seconds_per_second",
        "process_resident_memory_bytes",
        "go_goroutines",
    }
    # points before the start and at the end (Prometheus includes it) are dropped
    assert got[("cart", f"{HIST}_p50")] == [(T0, 0.05), (T0 + 15, 0.055), (T0 + 585, 0.06)]
    assert got[("payments", f"{HIST}_p50")] == [(T0, 0.08), (T0 + 15, None), (T0 + 30, None)]
    assert got[("cart", "http_requests_per_second")] == [(T0, 12.5), (T0 + 15, 12.75)]
    # a raw gauge: its samples as stored, its labels but the one naming the service (a pod
    # label stays, it keeps replicas apart), as a case folder names the same series
    assert got[("checkout", QUEUE)] == [(T0 + 7.5, 3.0), (T0 + 22.5, 4.0), (T0 + 37.5, 9.0)]
    assert "" not in {service for service, _ in got}  # the answer's series without a service
    sent = " ".join(queries(server))
    assert "scrape_duration_seconds" not in sent and "target_info" not in sent


def test_names_classify_as_latency_errors_traffic_and_saturation() -> None:
    assert LATENCY.search(f"{HIST}_p99") and indicator_kind(f"{HIST}_p99") is IndicatorKind.SYMPTOM
    assert ERRORS.search("http_requests_error_ratio")
    assert REQUESTS.search("http_requests_per_second")
    for name, family in (
        ("process_cpu_seconds_per_second", "cpu"),
        ("container_cpu_usage_seconds_per_second", "cpu"),
        ("process_resident_memory_bytes", "memory"),
        ("container_memory_working_set_bytes", "memory"),
        ("jvm_threads_live_threads", "thread-pool"),
    ):
        assert indicator_kind(name) is IndicatorKind.RESOURCE, name
        assert resource_family(name) == family, name


def test_kinds_from_metadata_or_name_suffixes() -> None:
    names = frozenset({"a_bucket", "a_count", "a_sum", "b_total", "c", "d_sum", "e_created"})
    kinds = {n: fam.metric_kind(n, {}, names) for n in sorted(names)}
    assert kinds == {
        "a_bucket": "histogram",
        "a_count": "other",
        "a_sum": "other",
        "b_total": "counter",
        "c": "gauge",
        "d_sum": "other",
        "e_created": "other",
    }
    assert fam.metric_kind("c", {"c": "counter"}, names) == "counter"
    assert fam.metric_kind("c", {"c": "summary"}, names) == "other"
    assert fam.candidates(names, {}) == {"a_count": "histogram", "b_total": "counter", "c": "gauge"}
    assert [fam.quantile_name(q) for q in (0.5, 0.99, 0.999)] == ["p50", "p99", "p99_9"]


def test_a_derived_name_never_shadows_a_real_metric() -> None:
    scope = fam.Scope(("service",), ())
    names = frozenset({"jobs_total", "jobs_per_second"})
    catalog = fam.Catalog(names, {}, {"jobs_total": 1, "jobs_per_second": 1})
    families = fam.plan(catalog, fam.candidates(names, {}), scope, "60s")
    named = [q.name or f.metric for f in families for q in f.queries]
    assert named == ["jobs_per_second"] and families[0].queries[0].raw


# --- requests ------------------------------------------------------------------------------


def test_range_queries_are_post_forms_on_the_step_grid() -> None:
    with Loopback(routes()) as server:
        fetch(server, window=TimeRange(T0 + 7, T0 + 607))
    ranges = asked(server, "query_range")
    assert ranges and all(r.method == "POST" for r in ranges)
    assert all(r.headers["content-type"] == FORM for r in ranges)
    form = ranges[0].form
    assert form["start"] == [f"{T0 + 15:.3f}"] and form["end"] == [f"{T0 + 607:.3f}"]
    assert form["step"] == ["15"]
    raw = asked(server, "query")
    assert raw and all(r.method == "POST" and r.headers["content-type"] == FORM for r in raw)
    # raw samples: a range selector as long as the window, read 1 ms before its end
    assert raw[0].form["query"][0].endswith("[600000ms]")
    assert raw[0].form["time"] == [f"{T0 + 607 - 0.001:.3f}"]


@pytest.mark.parametrize(
    ("span", "step"), [(600, 15), (86_400, 15), (7 * 86_400, 55), (30 * 86_400, 236)]
)
def test_the_step_keeps_every_series_under_11000_points(span: float, step: float) -> None:
    window = TimeRange(T0, T0 + span)
    assert step_for(window, 15) == step
    assert span // step + 1 < MAX_POINTS
    assert step_for(window, 60) == max(60, step)


def test_a_long_window_widens_the_step_and_the_rate_window() -> None:
    with Loopback(routes()) as server:
        fetch(server, window=TimeRange(T0, T0 + 30 * 86_400))
    form = asked(server, "query_range")[0].form
    assert form["step"] == ["236"]
    assert "[236s]" in form["query"][0]  # a rate over less than a step would skip samples


def test_discovery_is_scoped_by_selector_and_service_labels() -> None:
    with Loopback(routes()) as server:
        fetch(server, selector='{namespace="shop"}', service_labels=("service", "k8s_pod_name"))
    (names,) = asked(server, "label/__name__/values")
    assert names.method == "GET"
    assert names.query["match[]"] == [
        '{namespace="shop", service!=""}',
        '{namespace="shop", k8s_pod_name!=""}',
    ]
    assert names.query["start"] == [f"{T0:.3f}"] and names.query["end"] == [f"{T0 + 600:.3f}"]
    (found,) = asked(server, "series")
    matchers = found.form["match[]"]
    assert f'{{__name__="{HIST}_count", namespace="shop"}}' in matchers  # not every bucket
    assert all('namespace="shop"' in q for q in queries(server))


def test_service_labels_in_priority_order_and_pod_suffixes_stripped() -> None:
    scope = fam.Scope(("service", "job", "pod"), ("pod",))
    expr = fam.with_service("x", scope)
    # the label applied last wins: the first in the list is the outermost label_replace, whose
    # arguments close the expression
    assert expr.startswith("label_replace(label_replace(label_replace(x, ")
    assert expr.index('"pod"') < expr.index('"job"') < expr.index('"service"')
    regex = re.compile(fam.POD_REGEX)  # Go's RE2 picks the same groups for this expression
    for pod in ("payments-7d4b9c8f6-abcde", "cart-5f6d7c8b9a-xk2lp", "redis-0", "api"):
        match = regex.fullmatch(pod)
        assert match is not None and match[1] == service_of_pod(pod)
    assert scope.service_of({"pod": "payments-7d4b9c8f6-abcde", "job": ""}) == ("payments", "pod")
    assert scope.service_of({"job": "checkout", "pod": "x-7d4b9c8f6-abcde"}) == ("checkout", "job")


def test_a_service_list_limits_what_is_kept() -> None:
    with Loopback(routes()) as server:
        batch = fetch(server, services=("cart",))
    assert {service for service, _ in series(batch)} == {"cart"}


def test_metadata_is_asked_once_per_source_and_threads_share_it() -> None:
    with Loopback(routes()) as server:
        source = PrometheusSource(config(server.url))
        results: list[int] = []

        def one() -> None:
            results.append(source.fetch(WINDOW, time.monotonic() + 10).rows)

        threads = [threading.Thread(target=one) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        source.close()
    assert len(results) == 4 and len(set(results)) == 1 and results[0] > 0
    assert len(asked(server, "metadata")) <= 4  # racing first fetches may each ask once
    with Loopback(routes()) as server:
        source = PrometheusSource(config(server.url))
        for _ in range(3):
            source.fetch(WINDOW, time.monotonic() + 10)
    assert len(asked(server, "metadata")) == 1


# --- auth, tenants, path prefixes ------------------------------------------------------------


def test_bearer_token_on_every_request_and_never_in_the_identity() -> None:
    with Loopback(routes()) as server:
        (source,) = sources(config(server.url, bearer_token="s3cret-token"))
        source.fetch(WINDOW, time.monotonic() + 10)
    assert {r.headers["authorization"] for r in server.requests} == {"Bearer s3cret-token"}
    assert "s3cret" not in source.identity()


def test_basic_auth() -> None:
    with Loopback(routes()) as server:
        (source,) = sources(config(server.url, username="grafana", password="pw:with:colons"))
        source.fetch(WINDOW, time.monotonic() + 10)
    expected = "Basic " + base64.b64encode(b"grafana:pw:with:colons").decode()
    assert {r.headers["authorization"] for r in server.requests} == {expected}
    assert "pw:with" not in source.identity()


def test_mimir_path_prefix_and_tenant_header() -> None:
    with Loopback(routes(prefix="/prometheus")) as server:
        settings = {"headers": {"X-Scope-OrgID": "team-a"}}
        (source,) = sources(config(f"{server.url}/prometheus", **settings))
        result = source.fetch(WINDOW, time.monotonic() + 10)
    assert result.rows > 0
    assert all(r.path.startswith("/prometheus/api/v1/") for r in server.requests)
    assert {r.headers["x-scope-orgid"] for r in server.requests} == {"team-a"}
    assert "tenant=team-a" in source.identity()


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (
            answer_file("prometheus/error_bad_data.json", 400),
            ["prometheus: /api/v1/query_range answered 400", 'parse error: unexpected "}"'],
        ),
        (
            answer_file("prometheus/error_execution.json", 422),
            ["answered 422", "too many chunks to read"],
        ),
        # a proxy that turns the status into 200 but keeps the envelope
        (
            answer_file("prometheus/error_execution.json", 200),
            ["/api/v1/query_range answered execution: expanding series: too many chunks"],
        ),
        (
            answer_file("prometheus/error_timeout.json", 503),
            ["answered 503", "query timed out in expression evaluation"],
        ),
        (
            Reply(answer_file("prometheus/bad_gateway.html").body, 502),
            ["answered 502", "502 Bad Gateway"],
        ),
        (
            Reply(answer_file("prometheus/login_page.html").body, 200),
            ["/api/v1/query_range answered something that is not JSON"],
        ),
        (Reply({"data": []}), ["not a Prometheus API envelope"]),
        (Reply({"status": "success", "data": {"resultType": "vector"}}), ["not a matrix"]),
    ],
)
def test_a_bad_answer_is_a_backend_error_naming_backend_path_and_problem(
    reply: Reply, words: list[str]
) -> None:
    with Loopback(routes(query_range=reply)) as server, pytest.raises(BackendError) as err:
        fetch(server, bearer_token="s3cret-token")
    for word in words:
        assert word in str(err.value)
    assert "s3cret" not in str(err.value)


def test_a_discovery_error_names_its_path() -> None:
    bad = answer_file("prometheus/error_bad_data.json", 400)
    with Loopback(routes(series=bad)) as server, pytest.raises(BackendError) as err:
        fetch(server)
    assert "prometheus: /api/v1/series answered 400" in str(err.value)


def test_a_slow_server_costs_the_request_timeout() -> None:
    slow = Reply(answer_file("prometheus/range_rate.json").body, delay_s=3.0)
    with Loopback(routes(query_range=slow)) as server:
        began = time.monotonic()
        with pytest.raises(BackendError, match="query_range timed out after 0.3 s"):
            fetch(server, timeout_s=0.3)
        assert time.monotonic() - began < 1.5


def test_nothing_runs_past_the_deadline() -> None:
    slow = Reply(answer_file("prometheus/range_rate.json").body, delay_s=3.0)
    with Loopback(routes(query_range=slow)) as server:
        (source,) = sources(config(server.url))  # timeout 30 s: the deadline is shorter
        began = time.monotonic()
        with pytest.raises(BackendError, match="timed out"):
            source.fetch(WINDOW, began + 0.5)
        assert time.monotonic() - began < 1.5


# --- degraded but kept -----------------------------------------------------------------------


def test_warnings_and_infos_keep_the_data_and_become_notes() -> None:
    with Loopback(routes(query_range=answer_file("prometheus/warnings.json"))) as server:
        batch = fetch(server)
    assert series(batch)[("cart", "http_requests_per_second")] == [(T0, 12.5)]
    warning, info = batch.degraded
    assert warning.startswith("prometheus: warning: No StoreAPIs matched for this query (")
    assert warning.endswith(  # which evidence it concerns
        f"({HIST}_count, http_requests_total, process_cpu_seconds_total, "
        "process_resident_memory_bytes, go_goroutines)"
    )
    assert info.startswith("prometheus: info: PromQL info: metric might not be a counter")


def test_without_metadata_names_decide_and_it_is_asked_again_later() -> None:
    missing = Reply({"status": "error", "errorType": "not_found", "error": "unknown"}, 404)
    with Loopback(routes(metadata=missing)) as server:
        source = PrometheusSource(config(server.url))
        first = source.fetch(WINDOW, time.monotonic() + 10)
        source.fetch(WINDOW, time.monotonic() + 10)
    assert first.degraded == () and ("cart", "http_requests_per_second") in series(first)
    assert len(asked(server, "metadata")) == 2


def test_a_lone_warning_string_is_one_note() -> None:
    body = {"status": "success", "data": {"resultType": "matrix", "result": []}, "warnings": "x y"}
    with Loopback(routes(query_range=Reply(body))) as server:
        batch = fetch(server)
    assert [n.split(" (")[0] for n in batch.degraded] == ["prometheus: warning: x y"]


def test_victoriametrics_is_partial_is_a_note() -> None:
    partial = answer_file("prometheus/victoriametrics_partial.json")
    with Loopback(routes(query_range=partial)) as server:
        batch = fetch(server, name="victoria")
    assert batch.rows > 0
    assert len(batch.degraded) == 1
    assert batch.degraded[0].startswith("victoria: partial response (isPartial)")


def test_thanos_partial_response_parameter_is_sent_everywhere() -> None:
    with Loopback(routes()) as server:
        fetch(server, partial_response=False)
    for request in server.requests:
        if request.path.endswith("metadata"):
            continue
        values = request.query if request.method == "GET" else request.form
        assert values["partial_response"] == ["false"], request.path


def test_notes_reach_the_fetcher_and_the_chunk_is_stored() -> None:
    store = TelemetryStore()
    with Loopback(routes(query_range=answer_file("prometheus/warnings.json"))) as server:
        fetcher = Fetcher(store, sources(config(server.url)), budget_s=10)
        added = fetcher.cover([WINDOW])
    assert added > 0 and store.count("metrics") == added
    warning, info = fetcher.degraded()
    assert warning.startswith("prometheus: warning: No StoreAPIs matched")
    assert warning.endswith(f"({WINDOW})") and info.startswith("prometheus: info: ")


# --- the cardinality cap ---------------------------------------------------------------------


def test_over_the_cap_red_is_kept_and_the_note_names_what_was_left_out() -> None:
    with Loopback(routes()) as server:
        batch = fetch(server, max_series=4)
    names = {name for _, name in series(batch)}
    assert f"{HIST}_p99" in names and "http_requests_error_ratio" in names
    assert "process_cpu_seconds_per_second" not in names and QUEUE not in names
    assert batch.degraded == (
        "prometheus: 10 series in scope, over the cap of 4: 5 metric(s) with 6 series left out: "
        "process_cpu_seconds_total, process_resident_memory_bytes, go_goroutines, queue_depth, "
        "up",
    )
    sent = " ".join(queries(server))
    assert "process_cpu_seconds_total" not in sent and "queue_depth" not in sent


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"selector": 'namespace="shop"'},
        {"selector": '{namespace="shop"} or vector(1)'},
        {"selector": '{namespace="shop"}) or (up'},
        {"service_labels": ("service", "bad-label")},
        {"service_labels": ()},
        {"min_step_s": 0},
        {"max_series": 0},
        {"querry": "x"},
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        config("http://127.0.0.1:9090", **settings)


def test_a_selector_of_several_matchers() -> None:
    settings = config("http://x:9090", selector='{namespace=~"shop|pay", env!="dev",}')
    assert PrometheusSource(settings).scope.matchers == 'namespace=~"shop|pay", env!="dev"'
