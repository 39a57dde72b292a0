"""The narrate task over a Report: the model writes the summary and next steps, or the
deterministic template below does, and the report's notes record which and why.

    result = narrate(router, report)
    report = with_narrative(report, result)
"""

from __future__ import annotations

from dataclasses import replace

from warroom.llm.catalog import NARRATE
from warroom.llm.router import Router
from warroom.llm.schemas import NarrateInput, Narrative
from warroom.llm.tasks import TaskResult, run_task
from warroom.model import Report, iso
from warroom.report.render import confidence_label  # report/ owns the words for confidence

# Where to look first, per fault type (fault types come from causal.rank and
# experts.metrics.resource_family); anything else gets the generic steps.
RUNBOOK: dict[str, tuple[str, ...]] = {
    "cpu": (
        "Check {svc} CPU limits, throttling and hot threads.",
        "Look for a deploy, batch job or traffic shift on {svc} near the onset.",
    ),
    "memory": (
        "Check {svc} memory limits, GC pauses and OOM kills.",
        "Compare heap usage with the last release of {svc}.",
    ),
    "disk": ("Check free space and I/O wait on {svc}'s volumes.",),
    "pool": (
        "Check {svc} connection and thread pool sizes against current load.",
        "Look for slow queries or held locks behind the exhausted pool.",
    ),
    "queue": ("Check {svc} consumer health and queue depth.",),
    "cache": ("Check {svc} hit rate and evictions; warm or resize the cache.",),
    "network": ("Check the network between {svc} and its callers (drops, retransmits).",),
    "network-latency": ("Check the network path to {svc} (latency, drops) and its proxies.",),
    "network-delay": (
        "Compare client and server span times on the calls into {svc}.",
        "Check proxies, DNS and the network path to {svc}.",
    ),
    "code-exception": (
        "Read the new error logs of {svc} and the stack traces behind them.",
        "Check the most recent deploy or config change of {svc}; roll back if it "
        "matches the onset.",
    ),
    "code-logic": (
        "Trace the broken code path in {svc} (the log/span sequence that changed).",
        "Check the most recent deploy or config change of {svc}.",
    ),
    "slow-processing": ("Profile {svc}: its own processing time grew, not its callees'.",),
}
GENERIC = (
    "Check recent deploys and config changes of {svc}.",
    "Confirm the propagation path with {svc}'s callers' error and latency metrics.",
)


def narrate_input(report: Report) -> NarrateInput | None:
    """The facts of a report's answer, or None when there is no culprit to narrate."""
    culprit = report.culprit
    if culprit is None:
        return None
    return NarrateInput(
        incident=report.incident.id,
        culprit=culprit.service,
        fault_type=culprit.fault_type,
        indicator=culprit.indicator,
        onset=iso(culprit.onset) if culprit.onset is not None else "unknown",
        path=list(culprit.path),
        confidence=report.confidence,
        confidence_label=confidence_label(report.confidence),
        explains=culprit.explains,
        others=[f"{c.service} ({c.fault_type})" for c in report.candidates[1:4]],
        missing=list(report.missing),
    )


def fallback_narrative(facts: NarrateInput) -> Narrative:
    """The deterministic narrative: a template summary and the runbook for the fault type."""
    path = " -> ".join(facts.path)
    spread = f", and spread along {path}" if len(facts.path) > 1 else ""
    summary = (
        f"{facts.culprit} is the most likely root cause ({facts.fault_type}, "
        f"{facts.confidence_label} confidence): {facts.indicator} changed first, at "
        f"{facts.onset}{spread}."
    )
    steps = RUNBOOK.get(facts.fault_type, GENERIC)
    return Narrative(summary=summary, steps=[s.format(svc=facts.culprit) for s in steps])


def narrate(router: Router, report: Report) -> TaskResult[Narrative] | None:
    """The narrative of `report` (model or fallback), or None when there is no culprit."""
    facts = narrate_input(report)
    if facts is None:
        return None
    evidence = report.culprit.evidence if report.culprit else ()
    return run_task(router, NARRATE, facts, evidence, fallback_narrative(facts))


def with_narrative(report: Report, result: TaskResult[Narrative] | None) -> Report:
    """`report` with the narrative and the task's record (source, rejections, redactions) in its
    notes. Report has no narrative field yet, so the notes carry it."""
    if result is None:
        return report
    narrative = result.output
    lines = [f"Summary: {narrative.summary}"]
    lines += [f"Next step: {step}" for step in narrative.steps]
    return replace(report, notes=report.notes + tuple(lines) + result.notes("narrate"))
