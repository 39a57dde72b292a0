"""Ranking candidates over the call graph: specific findings win, victims are discounted."""

from __future__ import annotations

from warroom.causal.rank import confidence, rank
from warroom.experts.traces import NETWORK
from warroom.model import Evidence, Finding, IndicatorKind, Modality, RootCause
from warroom.topology.graph import service_graph

CHAIN = service_graph([("frontend", "checkout"), ("checkout", "payment")])


def _finding(
    service: str,
    indicator: str,
    kind: IndicatorKind,
    score: float,
    onset: float | None = 100.0,
    modality: Modality = Modality.METRIC,
) -> Finding:
    evidence = Evidence(
        id=f"{service}:{indicator}",
        statement=f"{service} {indicator} changed",
        value=score,
        source="test",
    )
    return Finding(service, indicator, kind, modality, score, onset, +1, (evidence,))


def _cpu_chain() -> list[Finding]:
    return [
        _finding("payment", "CpuUsageRate(%)", IndicatorKind.RESOURCE, 20.0, onset=100.0),
        _finding("checkout", "latency-p90(ms)", IndicatorKind.SYMPTOM, 15.0, onset=110.0),
        _finding("frontend", "latency-p90(ms)", IndicatorKind.SYMPTOM, 15.0, onset=120.0),
    ]


def test_resource_culprit_downstream_of_symptoms_ranks_first() -> None:
    ranked = rank(_cpu_chain(), CHAIN)
    assert [c.service for c in ranked][:1] == ["payment"]
    top = ranked[0]
    assert top.path == ("payment", "checkout", "frontend")
    assert top.fault_type == "cpu"
    assert top.indicator == "CpuUsageRate(%)"
    assert top.onset == 100.0
    assert top.explains == 1.0
    assert {c.service for c in ranked} == {"payment", "checkout", "frontend"}
    assert all(top.score > c.score for c in ranked[1:])


def test_named_symptom_ends_the_path() -> None:
    top = rank(_cpu_chain(), CHAIN, symptom="checkout")[0]
    assert top.service == "payment"
    assert top.path == ("payment", "checkout")


def test_culprit_evidence_includes_its_own_finding_and_the_hops() -> None:
    statements = [e.statement for e in rank(_cpu_chain(), CHAIN)[0].evidence]
    assert statements[0] == "payment CpuUsageRate(%) changed"
    assert "checkout latency-p90(ms) changed" in statements
    assert "frontend latency-p90(ms) changed" in statements


def test_caller_with_weaker_code_finding_ranks_below_its_callee() -> None:
    findings = [
        _finding(
            "checkout", "c.s.Cart#10_c.s.Cart#20", IndicatorKind.CODE, 8.0, modality=Modality.LOG
        ),
        _finding("payment", "c.s.Pay#5_c.s.Pay#9", IndicatorKind.CODE, 12.0, modality=Modality.LOG),
    ]
    ranked = rank(findings, CHAIN)
    assert [c.service for c in ranked] == ["payment", "checkout"]
    assert ranked[0].fault_type.startswith("code-")


def test_specific_finding_outranks_a_larger_symptom() -> None:
    findings = [
        _finding("payment", "MemoryUsageRate(%)", IndicatorKind.RESOURCE, 6.0),
        _finding("frontend", "latency-p90(ms)", IndicatorKind.SYMPTOM, 37.0),
    ]
    ranked = rank(findings, CHAIN)
    assert ranked[0].service == "payment"
    assert ranked[0].fault_type == "memory"


def test_symptom_only_graph_ranks_the_shared_callee_first() -> None:
    # PetShop-like: the target calls A and B; A is also called by two other anomalous services.
    graph = service_graph([("target", "A"), ("target", "B"), ("X", "A"), ("Y", "A")])
    findings = [
        _finding("target", "latency-p90(ms)", IndicatorKind.SYMPTOM, 12.0),
        _finding("A", "latency-p90(ms)", IndicatorKind.SYMPTOM, 10.0),
        _finding("X", "latency-p90(ms)", IndicatorKind.SYMPTOM, 14.0),
        _finding("Y", "latency-p90(ms)", IndicatorKind.SYMPTOM, 14.0),
    ]
    ranked = rank(findings, graph, symptom="target")
    assert ranked[0].service == "A"
    assert ranked[0].path == ("A", "target")
    assert ranked[0].fault_type == "symptom-only"
    assert "B" not in {c.service for c in ranked}


def test_network_finding_is_typed_as_network_delay() -> None:
    findings = [
        _finding("payment", NETWORK, IndicatorKind.RESOURCE, 9.0, modality=Modality.TRACE),
        _finding("frontend", "latency-p90(ms)", IndicatorKind.SYMPTOM, 9.0),
    ]
    top = rank(findings, CHAIN)[0]
    assert (top.service, top.fault_type) == ("payment", "network-delay")


def test_excluded_services_and_top_k_are_respected() -> None:
    ranked = rank(_cpu_chain(), CHAIN, exclude=frozenset({"payment"}), top_k=1)
    assert len(ranked) == 1
    assert ranked[0].service != "payment"


def test_no_findings_no_candidates() -> None:
    assert rank([], CHAIN) == []


def _candidate(service: str, score: float) -> RootCause:
    return RootCause(service, "x", "cpu", score, None, (service,), 1.0)


def test_confidence_is_zero_without_candidates() -> None:
    assert confidence([]) == 0.0


def test_clear_winner_is_more_confident_than_a_tie() -> None:
    winner = confidence([_candidate("a", 20.0), _candidate("b", 2.0)])
    tie = confidence([_candidate("a", 20.0), _candidate("b", 20.0)])
    assert 0.0 < tie < winner <= 1.0


def test_weak_top_candidate_is_less_confident_than_a_strong_one() -> None:
    weak = confidence([_candidate("a", 2.0)])
    strong = confidence([_candidate("a", 20.0)])
    assert 0.0 < weak < strong <= 1.0
