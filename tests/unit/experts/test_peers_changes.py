"""Calls that never reached their callee, and changes near an onset."""

from __future__ import annotations

from warroom.experts.changes import changes_before
from warroom.experts.peers import UNANSWERED, unanswered_findings
from warroom.model import Event, IndicatorKind, Span


def _calls(n: int, start: float, failing: int, answered: bool, callee: str = "geo") -> list[Span]:
    """n client calls from api to callee; the first `failing` fail; answered ones get a child."""
    spans = []
    for i in range(n):
        t = start + i
        client = Span(
            f"t{start}-{i}",
            f"c{i}",
            "",
            "api",
            f"call {callee}",
            t,
            t + 0.01,
            error=i < failing,
            peer=callee,
        )
        spans.append(client)
        if answered:
            spans.append(
                Span(client.trace_id, f"s{i}", client.span_id, callee, "Get", t, t + 0.005)
            )
    return spans


def test_failing_calls_without_a_server_span_are_charged_to_the_callee() -> None:
    base = _calls(100, 0.0, 0, answered=True)
    now = _calls(100, 1000.0, 40, answered=False)
    (finding,) = unanswered_findings(base, now)
    assert finding.service == "geo" and finding.indicator == UNANSWERED
    assert finding.kind is IndicatorKind.RESOURCE and finding.score > 10
    assert "0/100 fault-free -> 40/100 now" in finding.evidence[0].statement
    assert finding.onset == 1000.0


def test_failing_calls_the_callee_answered_are_its_own_errors_not_unanswered() -> None:
    base = _calls(100, 0.0, 0, answered=True)
    now = _calls(100, 1000.0, 40, answered=True)
    assert unanswered_findings(base, now) == []


def test_an_untraced_datastore_with_metrics_is_charged_in_complete_traces() -> None:
    # redis exports metrics (instrumented) but never spans: in traces without losses, its
    # callers' calls failing unanswered are its failures.
    base = _calls(100, 0.0, 0, answered=False, callee="redis")
    now = _calls(100, 1000.0, 40, answered=False, callee="redis")
    (finding,) = unanswered_findings(base, now, instrumented=["api", "redis"])
    assert finding.service == "redis" and finding.indicator == UNANSWERED


def test_a_service_whose_spans_were_lost_is_not_charged() -> None:
    # geo's own spans are gone: its callee's server spans are orphans, so its missing answers
    # say nothing about it.
    def lost(n: int, start: float, failing: int) -> list[Span]:
        calls = _calls(n, start, failing, answered=False)
        orphans = [
            Span(f"t{start}-{i}", f"db{i}", f"gone{i}", "db", "Query", start + i, start + i + 0.001)
            for i in range(n)
        ]
        return calls + orphans

    assert unanswered_findings(lost(100, 0.0, 0), lost(100, 1000.0, 40), ["api", "geo"]) == []


def test_an_uninstrumented_callee_is_not_blamed_for_calls_that_succeed() -> None:
    base = _calls(100, 0.0, 1, answered=False)
    now = _calls(100, 1000.0, 2, answered=False)  # no more failures than usual
    assert unanswered_findings(base, now) == []


def test_changes_before_an_onset_are_the_services_own_within_the_lookback() -> None:
    events = [
        Event(1000.0 - 20 * 60, "api", "deploy", "too early"),
        Event(1000.0 - 5 * 60, "api", "config", "timeout 2000 -> 1"),
        Event(1000.0 - 60, "api", "restart", "not a change"),
        Event(1000.0 + 30, "api", "deploy", "just after: clocks differ"),
        Event(1000.0 - 60, "db", "deploy", "another service"),
        Event(1000.0 + 300, "api", "deploy", "far after"),
    ]
    near = changes_before(events, "api", 1000.0)
    assert [e.description for e in near] == ["just after: clocks differ", "timeout 2000 -> 1"]
    assert changes_before(events, "api", None) == []
