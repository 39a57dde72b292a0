"""Network delay behind lost traces: per-peer client latency metrics name the slow edge, and a
callee whose spans are lost is not mistaken for one that stopped answering."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from warroom.agents.actors import CaseFacts, NetworkActor
from warroom.agents.checks import DslCheck, DslCheckIn
from warroom.agents.context import AgentContext
from warroom.experts.peers import (
    PEER_LATENCY,
    UNANSWERED,
    peer_latency_findings,
    peer_of,
    to_ms,
    unanswered_findings,
)
from warroom.experts.traces import NETWORK
from warroom.gym.simulator import CLIENT_LATENCY, Knobs, generate
from warroom.intake.case_dir import metric_columns
from warroom.intake.prom_text import parse_text, series_to_text
from warroom.model import Incident, Series, Span, TimeRange
from warroom.pipeline import investigate
from warroom.telemetry.store import TelemetryStore

STEP = 10.0
BASELINE = TimeRange(0.0, 1200.0)
WINDOW = TimeRange(1200.0, 1800.0)
ONSET = 1400.0
CLIENT = "http_client_request_duration_seconds"  # as a Prometheus client names it
SERVER = "http_server_latency_p90_ms"


def _store(series: dict[tuple[str, str], Any], skew: float = 0.0) -> TelemetryStore:
    """A store with one point per step of each series: value(t) in the series' unit. Server
    latency is scraped `skew` seconds after the clients' metrics."""
    columns: dict[str, list[Any]] = defaultdict(list)
    rng = np.random.default_rng(7)
    for (service, name), value in series.items():
        for t in np.arange(STEP, 1800.0 + STEP, STEP):
            columns["service"].append(service)
            columns["name"].append(name)
            columns["ts"].append(float(t) + (skew if name == SERVER else 0.0))
            columns["value"].append(float(value(t)) * float(rng.lognormal(0.0, 0.05)))
    store = TelemetryStore()
    store.insert_columns("metrics", columns)
    return store


def _step(before: float, after: float) -> Any:
    return lambda t: after if t >= ONSET else before


def _client(peer: str) -> str:
    return f'{CLIENT}{{peer="{peer}"}}'


def _delayed_geo(geo_server_after: float = 5.0) -> dict[tuple[str, str], Any]:
    """web and api both call geo; api also calls db. Calls into geo gain 250 ms."""
    return {
        ("web", _client("geo")): _step(0.008, 0.258),
        ("api", _client("geo")): _step(0.006, 0.256),
        ("api", _client("db")): _step(0.004, 0.004),
        ("web", SERVER): _step(30.0, 290.0),
        ("api", SERVER): _step(20.0, 275.0),
        ("geo", SERVER): _step(5.0, geo_server_after),
        ("db", SERVER): _step(3.0, 3.0),
    }


EDGES = (("web", "geo"), ("web", "api"), ("api", "geo"), ("api", "db"))


def _series(store: TelemetryStore) -> list[Any]:
    return store.metric_series(TimeRange(0.0, 1800.0))


def test_per_peer_metric_names_and_units() -> None:
    assert peer_of(_client("geo")) == "geo"
    assert peer_of('rpc_client_duration_ms{server.address="geo",le="5"}') == "geo"
    assert peer_of('http_client_requests_total{peer="geo"}') is None  # not a latency
    assert peer_of('http_server_duration_ms{peer="geo"}') is None  # the server's own view
    assert peer_of(SERVER) is None
    assert to_ms(_client("geo")) == 1000.0 and to_ms(SERVER) == 1.0


def test_calls_slowed_into_one_callee_whose_server_is_not_slower_name_its_network() -> None:
    (finding,) = peer_latency_findings(_series(_store(_delayed_geo())), BASELINE, WINDOW)
    assert finding.service == "geo" and finding.indicator == NETWORK
    assert finding.evidence[0].id == f"metric:geo:{PEER_LATENCY}"
    assert "2 of 2 measured edges" in finding.evidence[0].statement
    assert finding.evidence[0].value == pytest.approx(250.0, rel=0.1)
    assert finding.onset == ONSET and finding.score >= 3.0


@pytest.mark.parametrize("skew", [0.0, 1.3])
def test_a_callee_slower_on_its_own_is_not_a_network_delay(skew: float) -> None:
    slow_geo = _delayed_geo(geo_server_after=255.0)
    assert peer_latency_findings(_series(_store(slow_geo, skew)), BASELINE, WINDOW) == []


def test_a_caller_slow_on_all_its_calls_is_charged_not_its_callees() -> None:
    # api's calls are slow to everybody; web's calls into geo are fine: the slowed edges have
    # api in common, so api's side of the network is named, never geo or db.
    own_side = {
        ("web", _client("geo")): _step(0.008, 0.008),
        ("api", _client("geo")): _step(0.006, 0.256),
        ("api", _client("db")): _step(0.004, 0.254),
        ("geo", SERVER): _step(5.0, 5.0),
        ("db", SERVER): _step(3.0, 3.0),
    }
    (finding,) = peer_latency_findings(_series(_store(own_side)), BASELINE, WINDOW)
    assert (finding.service, finding.indicator) == ("api", NETWORK)
    assert "2 of 2 measured edges" in finding.evidence[0].statement


def test_a_delay_on_a_middle_service_slows_calls_in_and_out_and_names_it() -> None:
    # A delay on geo's interface: geo's answers to web travel late, and so do its requests to
    # db (db's server is unchanged). geo's own server latency includes that wait for db, so
    # only half of web's extra time is unexplained by it. Charging each edge to its callee
    # would name db.
    both_ways = {
        ("web", _client("geo")): _step(0.008, 0.508),
        ("geo", _client("db")): _step(0.004, 0.254),
        ("geo", SERVER): _step(5.0, 275.0),  # its wait for db, and a little queueing
        ("db", SERVER): _step(3.0, 3.0),
    }
    (finding,) = peer_latency_findings(_series(_store(both_ways)), BASELINE, WINDOW)
    assert (finding.service, finding.indicator) == ("geo", NETWORK)


def test_the_investigation_names_the_delayed_callee_without_any_span() -> None:
    store = _store(_delayed_geo())
    incident = Incident("t", WINDOW, ONSET + 90.0, symptom_service="web")
    report = investigate(incident, store, BASELINE, EDGES).report
    top = report.candidates[0]
    assert (top.service, top.fault_type) == ("geo", "network-delay")


def _facts(store: TelemetryStore, findings: tuple[Any, ...]) -> CaseFacts:
    names = frozenset((s, n) for s, n in store.rows("SELECT DISTINCT service, name FROM metrics"))
    callees: dict[str, frozenset[str]] = {
        c: frozenset(x for a, x in EDGES if a == c) for c, _ in EDGES
    }
    return CaseFacts(findings, (), "web", None, None, names, WINDOW, callees)


def _weigh(actor: NetworkActor, service: str, store: TelemetryStore) -> list[Any]:
    incident = Incident("t", WINDOW, ONSET + 90.0, symptom_service="web")
    first = investigate(incident, store, BASELINE, EDGES)
    facts = _facts(store, first.findings)
    h = next(c for c in first.report.candidates if c.service == service)
    ctx = AgentContext(store)
    results = {
        e: DslCheck().run(
            DslCheckIn(expression=e, window=WINDOW, alert=ONSET, baseline=BASELINE), ctx
        )
        for e in actor.playbook(h, facts)
    }
    return actor.weigh(h, facts, results)


def test_a_caller_slowed_only_by_its_calls_to_one_callee_passes_the_blame_to_it() -> None:
    (check,) = _weigh(NetworkActor(), "api", _store(_delayed_geo()))
    assert check.redirect == "geo" and check.verdict == "refutes"
    assert re.search(r"calls to geo are 2[45]\d ms slower, of its own 2[45]\d ms", check.reason)
    assert any("http_client_request_duration_seconds" in e.statement for e in check.evidence)


def test_a_caller_slow_on_its_own_keeps_the_blame() -> None:
    own = {
        ("api", _client("geo")): _step(0.006, 0.006),
        ("api", _client("db")): _step(0.004, 0.004),
        ("api", SERVER): _step(20.0, 275.0),
        ("geo", SERVER): _step(5.0, 5.0),
        ("db", SERVER): _step(3.0, 3.0),
        ("api", "container_cpu_usage_percent"): _step(10.0, 95.0),
    }
    assert _weigh(NetworkActor(), "api", _store(own)) == []


def _calls(n: int, start: float, failing: int, answered: bool, callee: str) -> list[Span]:
    """n client calls from api into callee, the first `failing` failing; answered ones get a
    server span of the callee."""
    spans = []
    for i in range(n):
        t = start + i
        trace = f"{callee}{start}-{i}"
        spans.append(
            Span(trace, f"c{i}", "", "api", f"call {callee}", t, t + 0.01, i < failing, peer=callee)
        )
        if answered:
            spans.append(Span(trace, f"s{i}", f"c{i}", callee, "Get", t, t + 0.005))
    return spans


def _orphans(n: int, start: float) -> list[Span]:
    """Server spans of cart's callee whose parents (cart's client spans) were lost."""
    return [Span(f"db{start}-{i}", f"d{i}", f"gone{i}", "db", "Query", start + i, start + i + 0.001)
            for i in range(n)]  # fmt: skip


def test_a_callee_whose_spans_were_always_lost_is_not_charged_with_unanswered_calls() -> None:
    base = _calls(100, 0.0, 0, answered=False, callee="cart") + _orphans(100, 0.0)
    now = _calls(100, 1000.0, 40, answered=False, callee="cart") + _orphans(100, 1000.0)
    # cart exports metrics and logs: it is ours, its spans are lost (its callee's spans are
    # orphans), and its failures may be its callees'
    assert unanswered_findings(base, now, instrumented={"cart", "api"}) == []
    # a third party exports nothing: calls into it are only ever unanswered
    (third_party,) = unanswered_findings(base, now, instrumented={"api"})
    assert third_party.service == "cart" and third_party.indicator == UNANSWERED


def test_a_callee_that_answered_in_the_baseline_and_stopped_is_charged() -> None:
    base = _calls(100, 0.0, 0, answered=True, callee="cart")
    now = _calls(100, 1000.0, 40, answered=False, callee="cart")
    (finding,) = unanswered_findings(base, now, instrumented={"cart", "api"})
    assert finding.service == "cart" and finding.indicator == UNANSWERED


def test_the_simulator_exports_per_peer_client_latency_that_survives_lost_traces() -> None:
    case = generate("shop", "network-delay", 3, Knobs(drop_traces=1.0))
    assert case.store.count("spans") == 0
    names = {(s, n) for s, n in case.store.rows("SELECT DISTINCT service, name FROM metrics")}
    for caller, callee in case.graph_edges:
        if caller != callee:
            assert (caller, f'{CLIENT_LATENCY}{{peer="{callee}"}}') in names
    target = case.truth.service
    findings = peer_latency_findings(_series_of(case.store), case.baseline, case.incident.window)
    assert [f.service for f in findings] == [target]


def _series_of(store: TelemetryStore) -> list[Any]:
    everything = store.extent("metrics")
    assert everything is not None
    return store.metric_series(everything)


def test_a_case_folder_carries_the_peer_label_through_prometheus_text() -> None:
    stored = _client("geo")
    series = [Series("api", stored, np.array([1.0, 11.0]), np.array([0.25, 0.5]))]
    text = series_to_text(series)
    assert f'{CLIENT}{{service="api",peer="geo"}} 0.25 1000' in text
    samples = parse_text(text)
    assert samples[0].name == CLIENT and samples[0].labels == {"service": "api", "peer": "geo"}
    assert metric_columns(samples, Path("metrics.prom"))["name"] == [stored, stored]
