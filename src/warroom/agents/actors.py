"""Actors: domain experts that check one hypothesis ("the culprit is S, through indicator I").

Each actor is a playbook: DSL expressions to evaluate (run as agents, in parallel, cached), and
a rule that weighs their results into Checks. A Check carries a likelihood ratio (how much
more likely this evidence is if the hypothesis is true than if it is not) and the evidence
with its expression, so the report can say why a hypothesis rose or fell and a reader can
re-run every number.

The ratios are round numbers on purpose (0.3, 0.5, 1.5, 2): they encode "this speaks against",
"this supports", not fitted probabilities; the director's confidence is measured for
calibration on the gym instead (BENCHMARKS.md).
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from warroom.agents.base import Failure
from warroom.agents.checks import DslCheckOut
from warroom.agents.code import Frame, StackFrames, StackFramesIn, StackFramesOut
from warroom.agents.executor import AgentCall
from warroom.causal.fault_types import type_from_text
from warroom.causal.rank import MIN_SCORE, symptom_family
from warroom.experts.changes import change_evidence, changes_before
from warroom.experts.metrics import resource_family
from warroom.experts.peers import UNANSWERED, is_server_latency, peer_of, to_ms
from warroom.experts.traces import NETWORK
from warroom.model import (
    Event,
    Evidence,
    Finding,
    IndicatorKind,
    Modality,
    RootCause,
    TimeRange,
)

Verdict = Literal["supports", "refutes", "neutral", "missing"]
SUPPORTS, REFUTES = 1.5, 0.3
PERSIST_Z = 3.0  # still this far from the baseline at the end of the window: still there
GONE_Z = 2.0  # back within this: over
LATE = "[window.end - 2m .. window.end]"
AFTER_SYMPTOM_S = 120.0  # an anomaly starting this long after the symptom is its effect


@dataclass(frozen=True)
class Check:
    """One piece of evidence for or against a hypothesis, weighed."""

    actor: str
    name: str
    verdict: Verdict
    ratio: float  # likelihood ratio; 1.0 is neutral
    reason: str
    evidence: tuple[Evidence, ...] = ()
    # The service the blame moves to (a callee the suspect's own error lines name).
    redirect: str | None = None


@dataclass(frozen=True)
class CaseFacts:
    """What every actor may know about the case besides the store: the first pass."""

    findings: tuple[Finding, ...]
    changes: tuple[Event, ...]
    symptom_service: str | None
    symptom_metric: str | None  # the symptom's strongest metric (the alert's, when given)
    symptom_onset: float | None
    metric_names: frozenset[tuple[str, str]]  # (service, metric) pairs present in the store
    window: TimeRange  # the incident's
    callees: Mapping[str, frozenset[str]] = field(default_factory=dict)  # direct, per service

    def of(self, service: str) -> list[Finding]:
        """The service's first-pass findings."""
        return [f for f in self.findings if f.service == service]


Results = Mapping[str, BaseModel | Failure]


class Actor(ABC):
    """A domain expert: which hypotheses it examines, what it evaluates, how it weighs it."""

    name: str = ""
    domains: frozenset[str] = frozenset()  # fault types; empty: every hypothesis

    def relevant(self, h: RootCause, facts: CaseFacts) -> bool:
        """Whether this actor has something to say about the hypothesis."""
        return not self.domains or h.fault_type in self.domains

    @abstractmethod
    def playbook(self, h: RootCause, facts: CaseFacts) -> list[str]:
        """DSL expressions to evaluate for this hypothesis."""

    def agent_calls(self, h: RootCause, facts: CaseFacts) -> dict[str, AgentCall[Any, Any]]:
        """Other agents to run (what the DSL cannot say), by a key unique to the call."""
        return {}

    @abstractmethod
    def weigh(self, h: RootCause, facts: CaseFacts, results: Results) -> list[Check]:
        """Checks from the evaluated expressions (keyed by expression)."""


def q(text: str) -> str:
    """A DSL string literal."""
    return json.dumps(text)


def _value(results: Results, expression: str) -> tuple[float | None, Evidence | None, str]:
    result = results.get(expression)
    if isinstance(result, DslCheckOut):
        return result.value, result.evidence, ""
    if isinstance(result, Failure):
        return None, None, f"{result.kind}: {result.message}"
    return None, None, "not evaluated"


def _is_metric(h: RootCause, facts: CaseFacts) -> bool:
    return (h.service, h.indicator) in facts.metric_names


class PersistenceActor(Actor):
    """Resource hypotheses (compute, database, cache, queue, network): is the resource still
    off its baseline at the end of the window, while the symptom still is? A cause that ended
    while its supposed effect goes on (a batch job's CPU burst) explains nothing now."""

    def __init__(self, name: str, domains: Sequence[str]) -> None:
        self.name, self.domains = name, frozenset(domains)

    def relevant(self, h: RootCause, facts: CaseFacts) -> bool:
        return super().relevant(h, facts) and _is_metric(h, facts)

    def playbook(self, h: RootCause, facts: CaseFacts) -> list[str]:
        exprs = [f"zscore(metric({q(h.service)}, {q(h.indicator)}){LATE})"]
        if facts.symptom_metric and facts.symptom_service:
            symptom = f"metric({q(facts.symptom_service)}, {q(facts.symptom_metric)})"
            exprs.append(f"zscore({symptom}{LATE})")
        return exprs

    def weigh(self, h: RootCause, facts: CaseFacts, results: Results) -> list[Check]:
        exprs = self.playbook(h, facts)
        late, evidence, why = _value(results, exprs[0])
        if late is None or evidence is None:
            return [Check(self.name, "persists", "missing", 1.0, why)]
        symptom_late, symptom_evidence = None, None
        if len(exprs) > 1:
            symptom_late, symptom_evidence, _ = _value(results, exprs[1])
        both = tuple(e for e in (evidence, symptom_evidence) if e is not None)
        if late >= PERSIST_Z:
            return [Check(self.name, "persists", "supports", SUPPORTS, f"still z={late:.1f}", both)]
        symptom_goes_on = symptom_late is None or symptom_late >= PERSIST_Z
        if late < GONE_Z and symptom_goes_on:
            reason = f"over by the end of the window (z={late:.1f}) while the symptom goes on"
            return [Check(self.name, "persists", "refutes", REFUTES, reason, both)]
        return [Check(self.name, "persists", "neutral", 1.0, f"z={late:.1f} at the end", both)]


class ConsequenceActor(Actor):
    """Log and trace generalist: does the suspect itself show harm — its requests slower or
    failing, calls into it slower or refused — or is it busy without hurting anybody?"""

    name = "consequence"
    # A filling resource hurts later (the OOM kill, the full disk): no harm yet is no alibi.
    HARM_COMES_LATER = frozenset({"memory", "disk"})

    def relevant(self, h: RootCause, facts: CaseFacts) -> bool:
        # Code regions, failing calls and network time are harm already.
        return _resource_named(h, facts) and h.fault_type not in self.HARM_COMES_LATER

    def playbook(self, h: RootCause, facts: CaseFacts) -> list[str]:
        spans = f"spans({q(h.service)})"
        return [
            f"latency_p(90, {spans}) / latency_p(90, {spans}[baseline])",
            f"error_ratio({spans})",
        ]

    def weigh(self, h: RootCause, facts: CaseFacts, results: Results) -> list[Check]:
        harm = [f for f in facts.of(h.service) if _harmful(f)]
        latency, lat_evidence, _ = _value(results, self.playbook(h, facts)[0])
        evidence = tuple(e for e in (lat_evidence,) if e is not None)
        if harm:
            quoted = tuple(f.evidence[0] for f in harm[:2] if f.evidence)
            reason = f"{len(harm)} harm signal(s) on the suspect itself"
            return [Check(self.name, "own harm", "supports", SUPPORTS, reason, quoted + evidence)]
        if latency is not None and latency >= 1.5:
            reason = f"its span latency p90 x{latency:.2f}"
            return [Check(self.name, "own harm", "supports", SUPPORTS, reason, evidence)]
        reason = "busy but nothing of its own got slower or failed"
        return [Check(self.name, "own harm", "refutes", REFUTES, reason, evidence)]


class PrecedenceActor(Actor):
    """Did the suspect's anomaly begin before the symptom's? An effect cannot lead."""

    name = "timeline"

    def relevant(self, h: RootCause, facts: CaseFacts) -> bool:
        return h.onset is not None and facts.symptom_onset is not None

    def playbook(self, h: RootCause, facts: CaseFacts) -> list[str]:
        if _is_metric(h, facts):
            return [f"onset(metric({q(h.service)}, {q(h.indicator)}))"]
        return []

    def weigh(self, h: RootCause, facts: CaseFacts, results: Results) -> list[Check]:
        assert h.onset is not None and facts.symptom_onset is not None
        lag = h.onset - facts.symptom_onset
        evidence: tuple[Evidence, ...] = ()
        if self.playbook(h, facts):
            _, found, _ = _value(results, self.playbook(h, facts)[0])
            evidence = (found,) if found is not None else ()
        if lag > AFTER_SYMPTOM_S:
            reason = f"began {lag:.0f} s after the symptom"
            return [Check(self.name, "precedes", "refutes", 0.5, reason, evidence)]
        return [Check(self.name, "precedes", "neutral", 1.0, f"began {-lag:+.0f} s", evidence)]


class ChangeActor(Actor):
    """Deploys and config pushes shortly before the anomaly: strong support for a code or
    config fault, no more than context for a resource one (unrelated deploys are common)."""

    name = "change"
    CODE_TYPES = frozenset({"code-exception", "code-logic", "config"})

    def playbook(self, h: RootCause, facts: CaseFacts) -> list[str]:
        return [f"count(events({q(h.service)})[window - 15m .. window.end])"]

    def weigh(self, h: RootCause, facts: CaseFacts, results: Results) -> list[Check]:
        near = changes_before(facts.changes, h.service, h.onset)
        if not near:
            return self._changed_caller(h, facts)
        _, found, _ = _value(results, self.playbook(h, facts)[0])
        evidence = (found,) if found is not None else ()
        before = (h.onset or near[0].time) - near[0].time
        what = f"{near[0].kind} {before:+.0f} s before: {near[0].description}"
        if h.fault_type in self.CODE_TYPES:
            return [Check(self.name, "recent change", "supports", 2.0, what, evidence)]
        return [Check(self.name, "recent change", "neutral", 1.0, what, evidence)]

    def _changed_caller(self, h: RootCause, facts: CaseFacts) -> list[Check]:
        """A suspect seen only through its one caller's failing calls (no server of its own
        answered), while that caller changed just before: the change is the likelier cause
        (a pushed config or a new version that calls it wrongly) and the blame moves to it."""
        if h.indicator != UNANSWERED:
            return []
        callers = sorted(c for c, xs in facts.callees.items() if h.service in xs)
        if len(callers) != 1:
            return []
        near = changes_before(facts.changes, callers[0], h.onset)
        if not near or h.onset is None:
            return []
        evidence = (change_evidence(near[0], h.onset),)
        reason = (
            f"only {callers[0]} calls it, and {callers[0]} had a {near[0].kind} "
            f"{h.onset - near[0].time:.0f} s before its calls began to fail"
        )
        return [Check(self.name, "caller changed", "refutes", 0.5, reason, evidence, callers[0])]


class NetworkActor(Actor):
    """Network generalist: is the suspect reporting a callee's failure or slowness?

    When the suspect's own error lines say a call to one of its callees could not even be
    made — the name did not resolve, the handshake failed, the connection was refused, the
    third party answered 503/429 — the suspect is reporting its callee's failure. When its
    clients' per-peer latency says its own latency rose only by its calls to one callee, it
    waits for that callee (or the network to it). Either way the blame moves to that callee
    (its own spans may be missing, so nothing else says so)."""

    name = "network"
    CONNECTION = re.compile(
        r"Connection refused|connect timed out|ConnectException|No route to host", re.IGNORECASE
    )
    CONNECTION_TYPES = frozenset({"dns", "tls", "dependency"})
    # The one slowed callee must account for this share of the suspect's own latency rise.
    ACCOUNTS_FOR = 0.5

    def relevant(self, h: RootCause, facts: CaseFacts) -> bool:
        return bool(facts.callees.get(h.service))

    def playbook(self, h: RootCause, facts: CaseFacts) -> list[str]:
        named = self._named(h, facts)
        if named is not None:
            return [f"count(logs({q(h.service)}, message~{q(named[0])})[window])"]
        own, peers = _latency_metrics(h.service, facts)
        if not peers:
            return []
        names = sorted(peers.values()) + ([own] if own else [])
        return [_rise(h.service, name) for name in names]

    def weigh(self, h: RootCause, facts: CaseFacts, results: Results) -> list[Check]:
        if _own_network_fault(h.service, facts):
            return []  # its calls fail or slow because its own interface does: it stays
        named = self._named(h, facts)
        if named is None:
            return self._slow_peer(h, facts, results)
        callee, quoted = named
        evidence = [quoted]
        _, counted, _ = _value(results, self.playbook(h, facts)[0])
        if counted is not None:
            evidence.append(counted)
        reason = f"its errors are failed connections to {callee}"
        return [Check(self.name, "blames callee", "refutes", 0.5, reason, tuple(evidence), callee)]

    def _named(self, h: RootCause, facts: CaseFacts) -> tuple[str, Evidence] | None:
        """The callee the suspect's error lines name with a connection-level failure."""
        for f in facts.of(h.service):
            for e in f.evidence:
                if not _connection_failure(e.statement, self):
                    continue
                for callee in sorted(facts.callees.get(h.service, ())):
                    if re.search(rf"(?<![\w-]){re.escape(callee)}(?![\w-])", e.statement):
                        return callee, e
        return None

    def _slow_peer(self, h: RootCause, facts: CaseFacts, results: Results) -> list[Check]:
        """The one callee whose calls slowed, when they account for the suspect's slowness."""
        own, peers = _latency_metrics(h.service, facts)
        slowed = {
            f.indicator
            for f in facts.of(h.service)
            if f.indicator in peers.values() and f.direction > 0 and f.score >= MIN_SCORE
        }
        if len(slowed) != 1:
            return []  # none: not through its calls; several: its own side, or no single one
        metric = slowed.pop()
        callee = next(p for p, name in peers.items() if name == metric)
        edge, edge_evidence, _ = _value(results, _rise(h.service, metric))
        if edge is None or edge_evidence is None or edge <= 0:
            return []
        evidence: tuple[Evidence, ...] = (edge_evidence,)
        reason = f"its calls to {callee} are {edge * to_ms(metric):.0f} ms slower"
        if own is not None:
            rise, own_evidence, _ = _value(results, _rise(h.service, own))
            if rise is not None and own_evidence is not None:
                evidence += (own_evidence,)
                if edge * to_ms(metric) < self.ACCOUNTS_FOR * rise * to_ms(own):
                    return []  # the calls explain too little of its own slowness
                reason += f", of its own {rise * to_ms(own):.0f} ms"
        reason += "; no other callee slowed"
        return [Check(self.name, "slowed by callee", "refutes", 0.5, reason, evidence, callee)]


def _own_network_fault(service: str, facts: CaseFacts) -> bool:
    """The service's own network is at fault: the slowed call edges have it in common, or its
    interface retransmits. Its calls out then slow or time out too, and the callee they name
    is its victim, not its cause."""
    return any(
        f.score >= MIN_SCORE
        and f.direction > 0
        and (f.indicator == NETWORK or resource_family(f.indicator) == "network-loss")
        for f in facts.of(service)
    )


def _rise(service: str, metric: str) -> str:
    """How much a metric rose at the end of the window over its baseline."""
    return f"delta(metric({q(service)}, {q(metric)}){LATE})"


def _latency_metrics(service: str, facts: CaseFacts) -> tuple[str | None, dict[str, str]]:
    """The service's own server latency metric (or None) and its per-callee client latency
    metrics, by callee."""
    names = sorted(name for s, name in facts.metric_names if s == service)
    peers: dict[str, str] = {}
    for name in names:
        peer = peer_of(name)
        if peer is not None and peer != service:
            peers.setdefault(peer, name)
    own = next((n for n in names if is_server_latency(n)), None)
    return own, peers


def _connection_failure(text: str, actor: NetworkActor) -> bool:
    return bool(actor.CONNECTION.search(text)) or type_from_text([text]) in actor.CONNECTION_TYPES


def _resource_named(h: RootCause, facts: CaseFacts) -> bool:
    best = next((f for f in facts.of(h.service) if f.indicator == h.indicator), None)
    return (
        best is not None
        and best.kind is IndicatorKind.RESOURCE
        and h.indicator
        not in (
            NETWORK,
            UNANSWERED,
        )
    )


def _harmful(f: Finding) -> bool:
    """A finding that says the service itself hurt: slower, failing, or calls into it so."""
    if f.indicator in (NETWORK, UNANSWERED) or f.kind is IndicatorKind.CODE:
        return f.score >= MIN_SCORE
    if f.kind is not IndicatorKind.SYMPTOM or f.direction <= 0 or f.score < MIN_SCORE:
        return False
    if f.modality is Modality.LOG:
        return any("error log" in e.statement for e in f.evidence)
    return symptom_family(f.indicator) in ("latency", "errors")


class CodeActor(Actor):
    """Code: where in the suspect's source do its error stacks point, and (with a repository
    configured) who changed those files lately? Frames at the suspect confirm a code fault
    there; the commits are the suspects an SRE hands to the team."""

    name = "code"  # every hypothesis: a symptom-named culprit may still have thrown

    def __init__(self, repo: str | None = None) -> None:
        self.repo = repo

    def playbook(self, h: RootCause, facts: CaseFacts) -> list[str]:
        return []

    def agent_calls(self, h: RootCause, facts: CaseFacts) -> dict[str, AgentCall[Any, Any]]:
        frames_in = StackFramesIn(service=h.service, window=facts.window, repo=self.repo)
        return {f"stack-frames:{h.service}": AgentCall(StackFrames(), frames_in)}

    def weigh(self, h: RootCause, facts: CaseFacts, results: Results) -> list[Check]:
        out = results.get(f"stack-frames:{h.service}")
        if not isinstance(out, StackFramesOut):
            return []
        evidence = tuple(_frame_evidence(h.service, f, facts.window) for f in out.frames)
        top = out.frames[0]
        reason = f"{out.error_lines} error stacks pass through {top.file}:{top.line}"
        if not top.commits:  # where it threw, but no suspect change: context, not a verdict
            return [Check(self.name, "stack frames", "neutral", 1.0, reason, evidence)]
        reason += f"; last change: {top.commits[0]}"
        return [Check(self.name, "stack frames", "supports", 1.3, reason, evidence)]


def _frame_evidence(service: str, frame: Frame, window: TimeRange) -> Evidence:
    where = frame.path or frame.file
    history = f"; recent commits: {' | '.join(frame.commits)}" if frame.commits else ""
    return Evidence(
        id=f"code:{service}:{frame.file}:{frame.line}",
        statement=(
            f"{service}: {frame.count} error stacks at {frame.function} ({where}:{frame.line})"
            f"{history}"
        ),
        value=float(frame.count),
        unit="error stacks",
        source=f"agents.code.StackFrames(service={service}, window={window})",
    )


def default_actors(repo: str | None = None) -> list[Actor]:
    """The war room's experts, one per domain, plus the generalists."""
    from warroom.agents.domains import CacheActor, DatabaseActor, QueueActor  # they import us

    return [
        PersistenceActor("compute", ("cpu", "memory", "disk", "thread-pool", "io")),
        DatabaseActor(),
        CacheActor(),
        QueueActor(),
        PersistenceActor("network", ("network", "network-loss")),
        ConsequenceActor(),
        PrecedenceActor(),
        ChangeActor(),
        NetworkActor(),
        CodeActor(repo),
    ]
