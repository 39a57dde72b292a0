"""The director: hypotheses from the first pass, actors dispatched in parallel, belief updated
from their checks, backtracking down the graph when the leading hypothesis falls, and a stop on
confidence or budget — or an honest "inconclusive".

    first = pipeline.investigate(incident, store, baseline, edges)
    result = direct(first, incident, store, baseline, edges)
    result.report.candidates[0], result.report.confidence, result.trail

Belief: a hypothesis' prior comes from its first-pass rank; each check multiplies it by
its likelihood ratio; beliefs are renormalised over the hypotheses examined. The director is
simple on purpose (DESIGN.md): the actors do the domain reasoning.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warroom.agents.actors import Actor, CaseFacts, Check, default_actors
from warroom.agents.checks import DslCheck, DslCheckIn, DslCheckOut
from warroom.agents.context import AgentContext
from warroom.agents.executor import AgentCall, Executor, LocalExecutor
from warroom.agents.tracing import Tracer
from warroom.causal.fault_types import type_from_text
from warroom.causal.rank import (
    MIN_SCORE,
    NO_CONSEQUENCE_CONFIDENCE,
    has_consequence,
    rank,
    symptom_family,
    symptoms_observable,
)
from warroom.experts.changes import LOOKBACK_S
from warroom.experts.peers import peer_of
from warroom.model import (
    Evidence,
    Incident,
    IndicatorKind,
    Modality,
    ModelRejection,
    Report,
    RootCause,
    TimeRange,
)
from warroom.pipeline import PRE_WINDOW_S, SLO_PREFIX, Investigation
from warroom.telemetry.store import TelemetryStore
from warroom.topology.graph import service_graph

if TYPE_CHECKING:
    from warroom.llm import Router

TOP_HYPOTHESES = 5
PER_ROUND = 3  # hypotheses examined in parallel per round
STOP_BELIEF = 0.8
REFUTED_BELOW = 0.5  # a hypothesis whose checks multiply to less than this has fallen
STRENGTH_SCORE = 20.0  # a first-pass score this high is certainly an anomaly (as rank.py)
# The leader's checks must back it for full confidence: one supporting check (x1.5) or more
# counts fully; a leader the war room found nothing for (x1) keeps two thirds; one its checks
# speak against keeps less still. (On the gym, no-fault controls' leaders are the unbacked and
# refuted ones: the raw score needs this to keep them apart from weak true culprits.)
BACKED_RATIO = 1.5


@dataclass(frozen=True)
class Budget:
    """When the director stops looking, whatever it believes."""

    rounds: int = 4
    seconds: float = 30.0


@dataclass
class Hypothesis:
    """A candidate culprit and what the war room found about it."""

    candidate: RootCause
    prior: float
    checks: list[Check] = field(default_factory=list)
    examined: bool = False

    @property
    def ratio(self) -> float:
        """The product of its checks' likelihood ratios."""
        out = 1.0
        for c in self.checks:
            out *= c.ratio
        return out

    @property
    def weight(self) -> float:
        return self.prior * self.ratio


@dataclass(frozen=True)
class Direction:
    """The director's result: the report, its reasoning trail, and where time went."""

    investigation: Investigation
    hypotheses: tuple[Hypothesis, ...]
    trail: tuple[str, ...]
    wall_s: float
    agent_s: float

    @property
    def report(self) -> Report:
        return self.investigation.report


def direct(
    first: Investigation,
    incident: Incident,
    store: TelemetryStore,
    baseline: TimeRange | None = None,
    actors: Sequence[Actor] | None = None,
    executor: Executor | None = None,
    budget: Budget = Budget(),
    tracer: Tracer | None = None,
    runbooks: Path | None = None,
    router: Router | None = None,
    repo: Path | None = None,
) -> Direction:
    """Check the first pass's hypotheses with the actors and decide.

    With a runbook folder, stored runbooks similar to this alert are re-checked first: one
    whose checks pass here backs its culprit (adding it as a hypothesis if the ranking missed
    it). With a model routed for the 'judge' task, it weighs the leading hypotheses' evidence
    too; its verdict is one more likelihood ratio, and what it got wrong is recorded."""
    started = time.perf_counter()
    actors = list(actors) if actors is not None else default_actors(str(repo) if repo else None)
    facts = _facts(first, incident, store)
    hypotheses = _initial(first.report.candidates)
    ctx = AgentContext(store, tracer=tracer)
    base = baseline or TimeRange(incident.window.start - PRE_WINDOW_S, incident.window.start)
    trail: list[str] = []
    if runbooks is not None:
        trail += _recall(runbooks, hypotheses, incident, store, base, first)
    agent_s = 0.0
    rejections: list[ModelRejection] = []
    own_pool = executor is None
    pool = executor or LocalExecutor(workers=4)
    try:
        for round_no in range(1, budget.rounds + 1):
            batch = [h for h in _by_belief(hypotheses) if not h.examined][:PER_ROUND]
            if not batch or time.perf_counter() - started > budget.seconds:
                break
            with _span(tracer, f"round-{round_no}", hypotheses=len(batch)):
                agent_s += _examine(batch, actors, facts, incident, base, pool, ctx)
            trail.append(_round_note(round_no, batch))
            for origin, target in _redirect(hypotheses, facts):
                trail.append(f"redirect: the blame moves from {origin} to {target}")
            leader = _by_belief(hypotheses)[0]
            if leader.examined and leader.ratio < REFUTED_BELOW:
                added = _backtrack(leader, hypotheses, first, incident, facts)
                if added:
                    trail.append(
                        f"backtrack: {leader.candidate.service} fell; looking further down at "
                        + ", ".join(h.candidate.service for h in added)
                    )
            if _settled(hypotheses):
                break
        if router is not None:  # the model's own checks, on the same pool
            rejections += _planned(router, hypotheses, facts, incident, base, pool, ctx)
    finally:
        if own_pool and isinstance(pool, LocalExecutor):
            pool.close()
    if router is not None:
        rejections += _judged(router, hypotheses, trail)
        rejections += _summarised(router, hypotheses, facts, trail)
        if router.exhausted:
            trail.append(
                f"budget: the model token budget is spent ({router.tokens_spent} of "
                f"{router.token_budget}); what was left to ask the model fell back to rules"
            )
    wall = time.perf_counter() - started
    trail.append(
        f"checks took {wall:.2f} s of wall clock for {agent_s:.2f} s of agent time "
        f"(x{agent_s / wall if wall > 0 else 0.0:.1f} in parallel)"
    )
    quiet = _quiet_system(first, incident, store)
    if quiet:
        trail.append(
            "nothing got slower or failed anywhere although latency and errors are measured: "
            f"the confidence is scaled by {NO_CONSEQUENCE_CONFIDENCE:g} (there may be no incident)"
        )
    report = _decide(first.report, hypotheses, trail, wall, quiet)
    report = replace(report, model_rejections=report.model_rejections + tuple(rejections))
    return Direction(
        replace(first, report=report), tuple(_by_belief(hypotheses)), tuple(trail), wall, agent_s
    )


PLAN_RATIO = 1.3  # a model-planned check that holds (or fails) for its suspect


def _planned(
    router: Router,
    hypotheses: list[Hypothesis],
    facts: CaseFacts,
    incident: Incident,
    baseline: TimeRange,
    pool: Executor,
    ctx: AgentContext,
) -> list[ModelRejection]:
    """With a model routed for 'plan': it proposes checks in the evidence language for the
    leading suspects; each runs like an actor's (safe interpreter, cached agent) and weighs in.
    A check that does not parse or run is a rejected model output, recorded, not a crash."""
    if router.route("plan") is None:
        return []
    from warroom.llm import plan
    from warroom.llm.schemas import Plan, PlanInput

    leaders = [h for h in _by_belief(hypotheses) if h.examined][:JUDGED]
    suspects = [h.candidate.service for h in leaders]
    situation = PlanInput(
        symptom=facts.symptom_service or "unknown", suspects=suspects, actors=suspects
    )
    evidence = [e for h in leaders for e in h.candidate.evidence[:4]]
    result = plan(router, situation, evidence, Plan(steps=[]))
    rejections = [
        ModelRejection("plan", r.reason.value, r.detail, r.attempt) for r in result.rejections
    ]
    steps = [s for s in result.output.steps if s.actor in suspects]
    calls = [
        AgentCall(
            DslCheck(),
            DslCheckIn(
                expression=s.check,
                window=incident.window,
                alert=incident.alert_time,
                baseline=baseline,
            ),
        )
        for s in steps
    ]
    outcomes = pool.map(calls, ctx) if calls else []
    for step, outcome in zip(steps, outcomes, strict=True):
        h = next(x for x in leaders if x.candidate.service == step.actor)
        if not isinstance(outcome, DslCheckOut):
            rejections.append(ModelRejection("plan", "invalid_output", f"{step.check}: {outcome}"))
            continue
        holds = bool(outcome.evidence.value)
        h.checks.append(
            Check(
                "model-plan",
                step.check,
                "supports" if holds else "refutes",
                PLAN_RATIO if holds else 1 / PLAN_RATIO,
                f"planned check {'holds' if holds else 'fails'}: {outcome.evidence.statement}",
                (outcome.evidence,),
            )
        )
    return rejections


JUDGED = 3  # hypotheses a model is asked about, leaders first
JUDGE_RATIO = {"supports": 1.5, "refutes": 1 / 1.5}


def _judged(router: Router, hypotheses: list[Hypothesis], trail: list[str]) -> list[ModelRejection]:
    """Ask the routed model to judge the leading hypotheses on their evidence (numbers it states
    must be in that evidence: llm/grounding). No model routed: nothing happens."""
    if router.route("judge") is None:
        return []
    from warroom.llm import judge

    rejections: list[ModelRejection] = []
    for h in [h for h in _by_belief(hypotheses) if h.examined][:JUDGED]:
        c = h.candidate
        evidence = [*(e for check in h.checks for e in check.evidence), *c.evidence][:12]
        claim = f"{c.service} is the root cause ({c.fault_type}, first seen in {c.indicator})"
        result = judge(router, claim, evidence)
        rejections += [
            ModelRejection("judge", r.reason.value, r.detail, r.attempt) for r in result.rejections
        ]
        verdict = result.output
        if result.source != "model" or verdict.verdict == "inconclusive":
            continue
        h.checks.append(
            Check(
                "model",
                "judge",
                verdict.verdict,
                JUDGE_RATIO[verdict.verdict],
                f"{verdict.reason} (model confidence {verdict.confidence:.2f})",
            )
        )
        trail.append(f"model judge: {c.service} {verdict.verdict}: {verdict.reason}")
    return rejections


SUMMARISED_LINES = 12


def _summarised(
    router: Router, hypotheses: list[Hypothesis], facts: CaseFacts, trail: list[str]
) -> list[ModelRejection]:
    """With a model routed for 'summarise': what the leading suspect's logs say, in a few
    sentences for the trail. The fallback (no model, or a rejected reply) adds nothing: the
    report already lists the log findings themselves."""
    if router.route("summarise") is None or not hypotheses:
        return []
    from warroom.llm import summarise
    from warroom.llm.schemas import LogSummary, SummariseInput

    service = _by_belief(hypotheses)[0].candidate.service
    logs = [f for f in facts.of(service) if f.modality is Modality.LOG]
    evidence = [e for f in logs for e in f.evidence]
    if not evidence:
        return []
    lines = [e.statement for e in evidence][:SUMMARISED_LINES]
    empty = LogSummary(summary="(no model summary)")
    result = summarise(router, SummariseInput(service=service, lines=lines), evidence, empty)
    if result.source == "model":
        trail.append(f"model log summary of {service}: {result.output.summary}")
    return [
        ModelRejection("summarise", r.reason.value, r.detail, r.attempt) for r in result.rejections
    ]


def _span(
    tracer: Tracer | None, name: str, **attributes: int | str
) -> AbstractContextManager[object]:
    return tracer.span(name, **attributes) if tracer is not None else nullcontext()


RUNBOOK_SUPPORT = 2.0


def _recall(
    folder: Path,
    hypotheses: list[Hypothesis],
    incident: Incident,
    store: TelemetryStore,
    baseline: TimeRange,
    first: Investigation,
) -> list[str]:
    """Memory: re-run the checks of the most similar stored runbooks on this incident."""
    from warroom.runbooks import RunbookStore, reuse

    notes = []
    for match in reuse(RunbookStore(folder), incident, store, baseline, first.edges, limit=3):
        if not match.verdict.supports:
            continue
        culprit = match.runbook.signature.culprit_service
        evidence = tuple(
            r.evidence for r in match.results if r.status == "pass" and r.evidence is not None
        )
        check = Check(
            "runbook",
            match.runbook.id,
            "supports",
            RUNBOOK_SUPPORT,
            f"runbook {match.runbook.id} fits ({match.verdict.passed} checks pass)",
            evidence,
        )
        known = next((h for h in hypotheses if h.candidate.service == culprit), None)
        if known is None:
            candidate = RootCause(
                service=culprit,
                indicator=match.runbook.signature.culprit_indicator or "runbook",
                fault_type=match.runbook.signature.fault_type,
                score=0.0,
                onset=None,
                path=tuple(match.runbook.signature.path),
                explains=0.0,
                evidence=evidence,
            )
            known = Hypothesis(candidate, min((h.prior for h in hypotheses), default=1.0) / 2)
            hypotheses.append(known)
        known.checks.append(check)
        notes.append(f"memory: runbook {match.runbook.id} fits; it backs {culprit}")
    return notes


def _facts(first: Investigation, incident: Incident, store: TelemetryStore) -> CaseFacts:
    findings = first.findings
    symptom = incident.symptom_service
    own = [f for f in findings if symptom and f.service in (symptom, SLO_PREFIX + symptom)]
    metric_symptoms = sorted(
        (
            f
            for f in own
            if f.modality is Modality.METRIC
            and f.kind is IndicatorKind.SYMPTOM
            and f.direction > 0
            and symptom_family(f.indicator) in ("latency", "errors")
        ),
        # The service's own latency or errors (what an alert watches) before its view of one
        # callee (a per-peer client metric).
        key=lambda f: (peer_of(f.indicator) is not None, -f.score),
    )
    symptom_metric = incident.symptom_metric or (
        metric_symptoms[0].indicator if metric_symptoms else None
    )
    symptom_service = symptom
    if metric_symptoms and incident.symptom_metric is None:
        symptom_service = metric_symptoms[0].service
    # When the symptom began: its own harm (slower, failing), not any finding of the service —
    # a code-region or resource finding there may be older noise, and would make every
    # suspect look late.
    onsets = [
        f.onset
        for f in own
        if f.onset is not None
        and f.score >= MIN_SCORE
        and f.kind is IndicatorKind.SYMPTOM
        and f.direction > 0
    ]
    names = store.rows("SELECT DISTINCT service, name FROM metrics")
    window = incident.window
    callees: dict[str, set[str]] = {}
    for caller, callee in first.edges:
        callees.setdefault(caller, set()).add(callee)
    return CaseFacts(
        findings=findings,
        changes=tuple(store.events(TimeRange(window.start - LOOKBACK_S, window.end))),
        symptom_service=symptom_service,
        symptom_metric=symptom_metric,
        symptom_onset=min(onsets) if onsets else None,
        metric_names=frozenset((str(s), str(n)) for s, n in names),
        callees={k: frozenset(v) for k, v in callees.items()},
        window=incident.window,
    )


def _initial(candidates: Sequence[RootCause]) -> list[Hypothesis]:
    """Priors from the ranking's order, not its scores: scores of different kinds of finding
    are not commensurable (a CPU z of 10 is not ten times a latency z of 1), the order is what
    the ranking means. Zipf weights 1, 1/2, 1/3, ... normalised."""
    top = list(candidates[:TOP_HYPOTHESES])
    total = sum(1.0 / k for k in range(1, len(top) + 1)) or 1.0
    return [Hypothesis(c, 1.0 / k / total) for k, c in enumerate(top, start=1)]


def _by_belief(hypotheses: list[Hypothesis]) -> list[Hypothesis]:
    return sorted(hypotheses, key=lambda h: -h.weight)


def _examine(
    batch: list[Hypothesis],
    actors: Sequence[Actor],
    facts: CaseFacts,
    incident: Incident,
    baseline: TimeRange,
    pool: Executor,
    ctx: AgentContext,
) -> float:
    """Run every relevant actor's playbook on the batch in one parallel map; weigh."""
    plan = [(h, a) for h in batch for a in actors if a.relevant(h.candidate, facts)]
    expressions = sorted({e for h, a in plan for e in a.playbook(h.candidate, facts)})
    calls = [
        AgentCall(
            DslCheck(),
            DslCheckIn(
                expression=e,
                window=incident.window,
                alert=incident.alert_time,
                baseline=baseline,
            ),
        )
        for e in expressions
    ]
    others: dict[str, AgentCall[Any, Any]] = {}
    for h, actor in plan:
        others.update(actor.agent_calls(h.candidate, facts))
    keys = [*expressions, *others]
    batch_result = pool.map([*calls, *others.values()], ctx)
    results = dict(zip(keys, batch_result, strict=True))
    for h, actor in plan:
        h.checks.extend(actor.weigh(h.candidate, facts, results))
    for h in batch:
        h.examined = True
    return batch_result.agent_s


def _redirect(hypotheses: list[Hypothesis], facts: CaseFacts) -> list[tuple[str, str]]:
    """Blame an actor moved to a callee becomes (or backs) that callee's hypothesis, with the
    suspect's standing: it is the same failure, seen one hop further down. Returns the
    (from, to) moves made now."""
    moves = []
    for h in list(hypotheses):
        for check in h.checks:
            if check.redirect is None or check.redirect == h.candidate.service:
                continue
            target = next((x for x in hypotheses if x.candidate.service == check.redirect), None)
            support = replace(check, verdict="supports", ratio=2.0, redirect=None)
            if target is None:
                c = h.candidate
                candidate = replace(
                    c,
                    service=check.redirect,
                    indicator=f"named in {c.service}'s errors",
                    fault_type=type_from_text(e.statement for e in check.evidence) or c.fault_type,
                    path=(check.redirect, *c.path),
                    evidence=check.evidence,
                )
                target = Hypothesis(candidate, h.prior)
                hypotheses.append(target)
            if support not in target.checks:
                moves.append((h.candidate.service, target.candidate.service))
                target.checks.append(support)
                target.prior = max(target.prior, h.prior)
                strongest = max(target.candidate.score, h.candidate.score)
                target.candidate = replace(target.candidate, score=strongest)
    return moves


def _round_note(round_no: int, batch: list[Hypothesis]) -> str:
    parts = []
    for h in batch:
        said = "; ".join(
            f"{c.actor} {c.verdict} ({c.reason})" for c in h.checks if c.verdict != "neutral"
        )
        parts.append(f"{h.candidate.service} x{h.ratio:.2g}" + (f": {said}" if said else ""))
    return f"round {round_no}: " + " | ".join(parts)


def _backtrack(
    fallen: Hypothesis,
    hypotheses: list[Hypothesis],
    first: Investigation,
    incident: Incident,
    facts: CaseFacts,
) -> list[Hypothesis]:
    """The culprit may sit below the fallen suspect: rank its callees' findings as new
    hypotheses (the first pass showed only its top few)."""
    graph = service_graph(first.edges, {f.service for f in first.findings})
    service = fallen.candidate.service
    below = set(graph.successors(service)) if service in graph else set()
    known = {h.candidate.service for h in hypotheses}
    pool = [f for f in first.findings if f.service in below and f.service not in known]
    if not pool:
        return []
    ranked = rank(list(pool), graph, incident.symptom_service, PER_ROUND)
    prior = min(h.prior for h in hypotheses) / 2
    added = [Hypothesis(c, prior) for c in ranked]
    hypotheses.extend(added)
    return added


def _settled(hypotheses: list[Hypothesis]) -> bool:
    examined = [h for h in hypotheses if h.examined]
    total = sum(h.weight for h in examined)
    leader = _by_belief(hypotheses)[0]
    return leader.examined and total > 0 and leader.weight / total >= STOP_BELIEF


def _quiet_system(first: Investigation, incident: Incident, store: TelemetryStore) -> bool:
    """No finding anywhere says users got slower or failing answers, in data that would show
    it (spans, or latency and error metrics). Without such data the silence says nothing."""
    if has_consequence(list(first.findings), None):
        return False
    window = [incident.window.start, incident.window.end]
    names = store.rows("SELECT DISTINCT name FROM metrics WHERE ts >= ? AND ts < ?", window)
    spans = store.rows("SELECT count(*) FROM spans WHERE start_ts >= ? AND start_ts < ?", window)
    return symptoms_observable((n for (n,) in names), int(spans[0][0]) if spans else 0)


def _decide(
    first: Report,
    hypotheses: list[Hypothesis],
    trail: list[str],
    seconds: float,
    quiet: bool = False,
) -> Report:
    """Candidates in belief order, with the confidence of the leader."""
    ordered = _by_belief(hypotheses)
    if not ordered:
        return replace(first, notes=(*first.notes, *trail))
    leader = ordered[0]
    # As the ranking's confidence (rank.confidence), on beliefs: how strong the leading anomaly
    # is, times its margin over the runner-up, times how well its own checks back it. This is
    # the raw score; planner.py maps it to a calibrated confidence.
    strength = min(1.0, leader.candidate.score / STRENGTH_SCORE)
    runner_up = ordered[1].weight if len(ordered) > 1 else 0.0
    margin = (leader.weight - runner_up) / leader.weight if leader.weight > 0 else 0.0
    standing = min(1.0, leader.ratio / BACKED_RATIO)
    scale = NO_CONSEQUENCE_CONFIDENCE if quiet else 1.0
    confidence = round(strength * (0.5 + 0.5 * margin) * standing * scale, 3)
    candidates = tuple(
        replace(h.candidate, evidence=_with_checks(h)) for h in ordered[: len(first.candidates)]
    )
    notes = (*first.notes, *(f"director: {t}" for t in trail))
    return replace(
        first,
        candidates=candidates,
        confidence=confidence,
        notes=notes,
        seconds=round(first.seconds + seconds, 3),
    )


def _with_checks(h: Hypothesis) -> tuple[Evidence, ...]:
    """The candidate's evidence, led by what the actors found (deciding checks first)."""
    deciding = [c for c in h.checks if c.verdict in ("supports", "refutes")]
    extra = [e for c in deciding for e in c.evidence[:1]]
    seen = {e.id for e in extra}
    return (*extra, *(e for e in h.candidate.evidence if e.id not in seen))
