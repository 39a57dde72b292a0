"""The library agents on small gym cases (generated once per module: ~2 s each)."""

from __future__ import annotations

import pytest

from warroom.agents import AgentCache, AgentCall, AgentContext, Failure, LocalExecutor, call
from warroom.agents.library import (
    AGENTS,
    ChangeEvents,
    ChangeEventsOut,
    ErrorLogs,
    ErrorLogsOut,
    MetricAnomalies,
    MetricAnomaliesOut,
    TraceEdges,
    TraceEdgesOut,
)
from warroom.gym.case import GymCase
from warroom.gym.simulator import generate
from warroom.model import IndicatorKind


@pytest.fixture(scope="module")
def cpu_hog() -> GymCase:
    """shipping burns CPU; no deploy, no error logs."""
    return generate("shop", "cpu-hog", 1)


@pytest.fixture(scope="module")
def bad_deploy() -> GymCase:
    """shipping gets a deploy that throws NullPointerException."""
    return generate("shop", "bad-deploy", 1)


def _scope(case: GymCase, service: str | None) -> dict[str, object]:
    return {"service": service, "window": case.incident.window, "baseline": case.baseline}


def test_metric_anomalies_find_the_hogs_cpu(cpu_hog: GymCase) -> None:
    culprit = cpu_hog.truth.service
    result = call(MetricAnomalies(), _scope(cpu_hog, culprit), AgentContext(cpu_hog.store))
    assert isinstance(result, MetricAnomaliesOut)
    assert result.baseline == cpu_hog.baseline and result.series > 0
    resources = [f for f in result.findings if f.kind == IndicatorKind.RESOURCE]
    assert resources[0].indicator == "container_cpu_usage_percent"
    assert {f.service for f in result.findings} == {culprit}
    scores = [f.score for f in result.findings]
    assert scores == sorted(scores, reverse=True)
    evidence = resources[0].evidence[0]
    assert evidence.baseline is not None and evidence.value > evidence.baseline


def test_metric_anomalies_of_an_unknown_service_are_no_data(cpu_hog: GymCase) -> None:
    result = call(MetricAnomalies(), _scope(cpu_hog, "nope"), AgentContext(cpu_hog.store))
    assert isinstance(result, Failure)
    assert result.kind == "no_data" and "nope" in result.message


def test_error_logs_name_the_new_exception(bad_deploy: GymCase) -> None:
    scope = _scope(bad_deploy, bad_deploy.truth.service)
    result = call(ErrorLogs(), {**scope, "top_k": 3}, AgentContext(bad_deploy.store))
    assert isinstance(result, ErrorLogsOut)
    top = result.templates[0]
    assert top.count > 10 and top.baseline_count == 0
    assert "NullPointerException" in top.example
    assert top.first_seen >= bad_deploy.incident.window.start
    assert result.error_lines >= top.count and result.lines > result.error_lines
    assert len(result.templates) <= 3


def test_error_logs_without_errors_are_empty_not_missing(cpu_hog: GymCase) -> None:
    result = call(ErrorLogs(), _scope(cpu_hog, "shipping"), AgentContext(cpu_hog.store))
    assert isinstance(result, ErrorLogsOut)
    assert result.templates == () and result.lines > 0


def test_trace_edges_show_the_slow_callee(cpu_hog: GymCase) -> None:
    culprit = cpu_hog.truth.service
    result = call(TraceEdges(), _scope(cpu_hog, culprit), AgentContext(cpu_hog.store))
    assert isinstance(result, TraceEdgesOut)
    incoming = [e for e in result.edges if e.callee == culprit]
    assert incoming, result.edges
    edge = incoming[0]
    assert edge.calls > 0 and edge.baseline_calls > 0
    assert edge.baseline_server_p90_ms is not None
    assert edge.server_p90_ms > 1.5 * edge.baseline_server_p90_ms
    assert edge.client_p90_ms >= edge.server_p90_ms * 0.9


def test_trace_edges_count_span_errors(bad_deploy: GymCase) -> None:
    culprit = bad_deploy.truth.service
    result = call(TraceEdges(), _scope(bad_deploy, culprit), AgentContext(bad_deploy.store))
    assert isinstance(result, TraceEdgesOut)
    edge = next(e for e in result.edges if e.callee == culprit)
    assert edge.errors > 0 and edge.baseline_errors == 0


def test_change_events_find_the_deploy_before_the_onset(bad_deploy: GymCase) -> None:
    inputs = {"window": bad_deploy.incident.window, "onset": bad_deploy.truth.onset}
    result = call(ChangeEvents(), inputs, AgentContext(bad_deploy.store))
    assert isinstance(result, ChangeEventsOut)
    nearest = result.events[0]
    assert nearest.event.kind == "deploy" and nearest.event.service == bad_deploy.truth.service
    assert nearest.before_onset_s is not None and 0 < nearest.before_onset_s < 60
    assert nearest.evidence is not None and nearest.evidence.value == nearest.before_onset_s
    other = call(ChangeEvents(), {**inputs, "service": "frontend"}, AgentContext(bad_deploy.store))
    assert isinstance(other, ChangeEventsOut) and other.events == ()


def test_change_events_without_any_events_are_no_data(cpu_hog: GymCase) -> None:
    result = call(ChangeEvents(), {"window": cpu_hog.incident.window}, AgentContext(cpu_hog.store))
    assert isinstance(result, Failure) and result.kind == "no_data"


def test_parallel_runs_equal_serial_ones_and_leave_the_store_alone(bad_deploy: GymCase) -> None:
    ctx = AgentContext(bad_deploy.store)
    assert ctx.store is not None
    before = ctx.store.fingerprint()
    services = ["shipping", "checkout", "frontend"]
    calls = [
        AgentCall(agent, _scope(bad_deploy, service))
        for service in services
        for agent in (MetricAnomalies(), ErrorLogs(), TraceEdges())
    ]
    serial = [call(c.agent, c.input, ctx) for c in calls]
    with LocalExecutor(workers=2) as executor:
        parallel = executor.map(calls, AgentContext(bad_deploy.store, cache=AgentCache()))
    assert list(parallel) == serial
    assert not parallel.failures
    ctx.store.refresh()
    assert ctx.store.fingerprint() == before


def test_call_spans_are_the_spans_on_edges_that_touch_the_service(bad_deploy: GymCase) -> None:
    view = AgentContext(bad_deploy.store).store
    assert view is not None
    window = bad_deploy.incident.window
    spans = view.spans(window)
    mine = {(s.trace_id, s.span_id) for s in spans if s.service == "checkout"}
    parents = {(s.trace_id, s.parent_id) for s in spans if s.service == "checkout"}
    expected = {
        (s.trace_id, s.span_id)
        for s in spans
        if (s.trace_id, s.span_id) in mine | parents or (s.trace_id, s.parent_id) in mine
    }
    got = view.call_spans(window, "checkout")
    assert {(s.trace_id, s.span_id) for s in got} == expected
    assert [s.start for s in got] == sorted(s.start for s in got)


def test_the_library_registry_names_every_agent() -> None:
    assert set(AGENTS) == {"metric-anomalies", "error-logs", "trace-edges", "change-events"}
