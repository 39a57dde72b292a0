"""Rank candidate (service, indicator) root causes over the dependency graph.

A candidate's strength is its strongest *specific* finding: a resource of its own (CPU, memory,
network on its edges) or a broken code region. Symptoms (latency, errors, traffic) propagate
along calls, so they count for less. One strong specific signal wins: findings are not averaged
across modalities, where the blind ones would drown it.

The graph then asks which candidate explains the others: failures travel from callee to caller,
so a candidate whose transitive callers hold most of the anomalous services explains the
incident better than one that sits above them. A candidate whose own callee shows a stronger
specific anomaly is probably its victim and is discounted.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import networkx as nx

from warroom.causal.fault_types import (
    texts_about,
    type_from_changes,
    type_from_text,
    unanswered_type,
)
from warroom.experts.changes import change_evidence, changes_before
from warroom.experts.metrics import resource_family
from warroom.experts.peers import UNANSWERED
from warroom.experts.traces import NETWORK, SELF_TIME
from warroom.model import Event, Evidence, Finding, IndicatorKind, Modality, RootCause
from warroom.topology.graph import callees, callers, propagation_path

# How much a finding of each kind says about its own service being the culprit.
KIND_WEIGHT = {IndicatorKind.RESOURCE: 1.0, IndicatorKind.CODE: 1.0, IndicatorKind.SYMPTOM: 0.25}
# Self time stays with the service that spent it: a symptom, but a local one.
LOCAL_SYMPTOM_WEIGHT = 0.7
VICTIM_DISCOUNT = 0.6
NO_CONSEQUENCE_DISCOUNT = 0.4
NO_CONSEQUENCE_CONFIDENCE = 0.3
# A broken code path whose callee reports failures is almost always that callee's doing.
FAILING_CALLEE_DISCOUNT = 0.3
VICTIM_SHARE = 0.5
SHARED_BONUS = 0.5
SYMPTOM_SATURATION = 2.5  # weighted symptom score (10 robust sigma): beyond it, certainly there
MIN_SCORE = 3.0
EVIDENCE_PER_CANDIDATE = 4


@dataclass(frozen=True)
class _ServiceView:
    service: str
    best: Finding
    weight: float  # best.score after the kind weight
    findings: tuple[Finding, ...]


def finding_weight(f: Finding) -> float:
    """A finding's score after weighting by how specific its kind is to the culprit."""
    if f.kind is IndicatorKind.SYMPTOM and f.indicator == SELF_TIME:
        return f.score * LOCAL_SYMPTOM_WEIGHT
    return f.score * KIND_WEIGHT[f.kind]


def _views(
    findings: list[Finding], exclude: set[str], alert_metric: str | None
) -> dict[str, _ServiceView]:
    """Per service, its findings strongest first.

    With an alert metric, only symptoms of its family count (latency for a latency alert):
    the investigation follows the alert's signal down the graph; traffic wobbles during a
    latency alert are another story. Resource and code findings always count.
    """
    grouped: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        if f.service in exclude:
            continue
        off_alert = symptom_family(f.indicator) != symptom_family(alert_metric or "")
        if alert_metric and f.kind is IndicatorKind.SYMPTOM and off_alert:
            continue
        grouped[f.service].append(f)
    views = {}
    for service, items in grouped.items():
        # A service is named by its strongest specific finding when it has one past the
        # threshold, even if a symptom of it is louder: "CPU" explains "slow", not the reverse.
        items.sort(key=lambda f: (not _specific(f), -finding_weight(f), f.onset or float("inf")))
        views[service] = _ServiceView(service, items[0], finding_weight(items[0]), tuple(items))
    return views


def rank(
    findings: list[Finding],
    graph: nx.DiGraph,
    symptom: str | None = None,
    top_k: int = 5,
    exclude: frozenset[str] = frozenset(),
    symptom_metric: str | None = None,
    changes: Sequence[Event] = (),
    also_alerting: Sequence[str] = (),
) -> list[RootCause]:
    """Top-k root-cause candidates, best first, each with its propagation path and evidence.

    `changes` (deploys, config pushes) never nominate a candidate; they are evidence for one
    and can name its fault type."""
    views = _views(findings, set(exclude), symptom_metric)
    # Anomalous means any finding past its expert's threshold, symptoms included: they are
    # what the candidate has to explain.
    anomalous = {s for s, v in views.items() if max(f.score for f in v.findings) >= MIN_SCORE}
    if symptom:
        anomalous.add(symptom)  # the alert says so, whatever its own series show
    anomalous.update(s for s in also_alerting if s in graph)
    scored = []
    for service, view in views.items():
        explains = _explains(graph, service, anomalous)
        if _specific(view.best):
            score = view.weight * (0.5 + 0.5 * explains)
        else:
            # Symptoms appear all along the failure path; their size says more about how flat
            # each baseline was than about causes. Saturate it and let the graph decide.
            score = min(view.weight, SYMPTOM_SATURATION) * (0.25 + 0.75 * explains)
            # Among look-alikes, a shared component (more transitive callers) is the likelier
            # culprit: its failure reaches further.
            score *= 1.0 + SHARED_BONUS * _fan_in_share(graph, service)
        score *= _victim_discount(graph, service, view, views)
        if view.best.kind is IndicatorKind.RESOURCE and not has_consequence(
            findings, propagation_path(graph, service, symptom)
        ):
            # A busy CPU that slows nothing (a batch job with headroom) explains no incident.
            score *= NO_CONSEQUENCE_DISCOUNT
        scored.append((score, view, explains))
    # Tiers: a candidate named by a specific finding (its own resource, a broken code region)
    # outranks one named only by symptoms, which appear everywhere during an incident.
    scored.sort(
        key=lambda t: (
            not _specific(t[1].best),
            -t[0],
            t[1].best.onset or float("inf"),
            t[1].service,
        )
    )
    return [_root_cause(graph, symptom, v, s, e, views, changes) for s, v, e in scored[:top_k]]


def has_consequence(findings: list[Finding], path: tuple[str, ...] | None) -> bool:
    """Whether anything on the path (culprit included; anywhere when `path` is None) got
    slower or started failing.

    Slower calls on the wire count: their time is added to every caller's latency, even
    though the callers' own working time (and so their self-time findings) did not change."""
    on_path = set(path) if path is not None else None
    return any(
        (on_path is None or f.service in on_path)
        and f.direction > 0
        and f.score >= MIN_SCORE
        and (
            f.indicator == NETWORK
            or f.kind is IndicatorKind.SYMPTOM
            and (symptom_family(f.indicator) in ("latency", "errors") or _is_error_log(f))
        )
        for f in findings
    )


# Metrics that measure the service the users get (how slow, how often failing): where a system
# exports none and no spans, "nothing got slower" is no evidence of a healthy system. A disk's
# read latency or a memory controller's failure count measures a resource, not the service.
USER_FACING = re.compile(
    r"latency|duration|response_time|_p(50|90|95|99)\b|error|fail|5xx|status_code",
    re.IGNORECASE,
)
RESOURCE_WORDS = re.compile(r"disk|_fs_|\bfs_|memory|mem_|cpu|page|swap|inode", re.IGNORECASE)


def symptoms_observable(metric_names: Iterable[str], span_count: int) -> bool:
    """Whether the data could show users' latency or errors at all: spans, or such metrics."""
    return span_count > 0 or any(
        USER_FACING.search(name) and not RESOURCE_WORDS.search(name) for name in metric_names
    )


def _specific(f: Finding) -> bool:
    return f.kind is not IndicatorKind.SYMPTOM and finding_weight(f) >= MIN_SCORE


def _fan_in_share(graph: nx.DiGraph, service: str) -> float:
    """Share of the graph's services that call this one, directly or not."""
    return len(callers(graph, service)) / max(1, graph.number_of_nodes() - 1)


def _explains(graph: nx.DiGraph, service: str, anomalous: set[str]) -> float:
    """Share of anomalous services that are the candidate or its transitive callers."""
    if not anomalous:
        return 0.0
    reach = (callers(graph, service) | {service}) & anomalous
    return len(reach) / len(anomalous)


def _victim_discount(
    graph: nx.DiGraph, service: str, view: _ServiceView, views: dict[str, _ServiceView]
) -> float:
    """A callee that shows a comparable anomaly of the same kind makes this service its victim.

    A stronger specific finding (resource or code) in a callee explains anything above it; a
    callee that fails (error spans, new error logs) explains a broken code path above it. A
    symptom in a callee of at least VICTIM_SHARE of this service's weight explains the same
    symptom above it (a slow callee makes its callers slow): the classic traversal rule,
    "the culprit is the anomalous node whose callees are fine".
    """
    own_family = symptom_family(view.best.indicator)
    for callee in callees(graph, service):
        other = views.get(callee)
        if other is None:
            continue
        if view.best.kind is IndicatorKind.CODE and _fails(other):
            return FAILING_CALLEE_DISCOUNT  # code paths break in callers when callees fail
        # Ties go to the callee: two findings at the cap (certain) are one failure seen at
        # two depths, and the deeper one explains the other.
        if other.best.kind is not IndicatorKind.SYMPTOM and other.weight >= view.weight:
            return VICTIM_DISCOUNT
        if (
            view.best.kind is IndicatorKind.SYMPTOM
            and other.weight >= VICTIM_SHARE * view.weight
            and own_family in _families(other)
        ):
            return VICTIM_DISCOUNT
    return 1.0


def _fails(view: _ServiceView) -> bool:
    """The service itself reports failures: error spans or error metrics past the threshold, or
    calls into it failing before it answered."""
    if any(f.indicator == UNANSWERED and f.score >= MIN_SCORE for f in view.findings):
        return True
    return any(
        f.kind is IndicatorKind.SYMPTOM
        and f.direction > 0
        and f.score >= MIN_SCORE
        and symptom_family(f.indicator) == "errors"
        and f.modality is not Modality.LOG  # error spans or error-rate metrics, not log wording
        for f in view.findings
    )


def _is_error_log(f: Finding) -> bool:
    return f.modality is Modality.LOG and any("error log" in e.statement for e in f.evidence)


def _families(view: _ServiceView) -> set[str]:
    return {
        symptom_family(f.indicator)
        for f in view.findings
        if f.kind is IndicatorKind.SYMPTOM and finding_weight(f) >= MIN_SCORE * KIND_WEIGHT[f.kind]
    }


def symptom_family(indicator: str) -> str:
    """latency, errors or traffic: symptoms of one family propagate into each other."""
    lowered = indicator.lower()
    if any(
        w in lowered for w in ("latency", "duration", "time", "p50", "p90", "p95", "p99", "lag")
    ):
        return "latency"
    if any(w in lowered for w in ("success", "availability", "error", "fail")):
        return "errors"
    return "traffic"


def fault_type(
    view_best: Finding,
    findings: tuple[Finding, ...],
    caller_findings: Sequence[Finding] = (),
    changes: Sequence[Event] = (),
) -> str:
    """A coarse fault type: a config change just before the anomaly, else what the error lines
    say (theirs or their callers' about them), else the family of the finding that names the
    culprit."""
    service = view_best.service
    named = type_from_changes(changes, service, view_best.onset) or type_from_text(
        texts_about(service, findings, caller_findings)
    )
    if named is not None:
        return named
    if view_best.kind is IndicatorKind.CODE:
        raised = any(
            f.indicator.startswith("log:") and "rror" in f.evidence[0].statement for f in findings
        )
        return "code-exception" if raised else "code-logic"
    if view_best.indicator == NETWORK:
        # Late calls into a service whose own interface retransmits are packet loss: the
        # retransmission timeouts are the delay.
        lossy = any(
            f.kind is IndicatorKind.RESOURCE
            and resource_family(f.indicator) == "network-loss"
            and f.score >= MIN_SCORE
            for f in findings
        )
        return "network-loss" if lossy else "network-delay"
    if view_best.indicator == UNANSWERED:
        return unanswered_type(service, findings)
    if view_best.kind is IndicatorKind.RESOURCE:
        return resource_family(view_best.indicator)
    if view_best.indicator == SELF_TIME:
        return "slow-processing"
    return "symptom-only"


def _root_cause(
    graph: nx.DiGraph,
    symptom: str | None,
    view: _ServiceView,
    score: float,
    explains: float,
    views: dict[str, _ServiceView],
    changes: Sequence[Event] = (),
) -> RootCause:
    path = propagation_path(graph, view.service, symptom)
    evidence: list[Evidence] = []
    onset = view.best.onset
    if onset is not None:
        near = changes_before(changes, view.service, onset)
        evidence.extend(change_evidence(c, onset) for c in near)
    for f in view.findings[:EVIDENCE_PER_CANDIDATE]:
        evidence.extend(f.evidence[:1])
    for hop in path[1:]:
        other = views.get(hop)
        if other is not None:
            evidence.extend(other.best.evidence[:1])
    direct_callers = graph.predecessors(view.service) if view.service in graph else ()
    caller_findings = [f for c in direct_callers if c in views for f in views[c].findings]
    return RootCause(
        service=view.service,
        indicator=view.best.indicator,
        fault_type=fault_type(view.best, view.findings, caller_findings, changes),
        score=round(score, 3),
        onset=onset,
        path=path,
        explains=round(explains, 3),
        evidence=tuple(evidence),
    )


def confidence(candidates: list[RootCause], consequence: bool = True) -> float:
    """How sure the ranking is: strength of the top candidate times its margin over the next,
    scaled down when nothing on its path got slower or failed (then there may be no incident)."""
    if not candidates:
        return 0.0
    top = candidates[0].score
    second = candidates[1].score if len(candidates) > 1 else 0.0
    strength = min(1.0, top / 20.0)
    margin = (top - second) / top if top > 0 else 0.0
    scale = 1.0 if consequence else NO_CONSEQUENCE_CONFIDENCE
    return round(strength * (0.5 + 0.5 * margin) * scale, 3)
