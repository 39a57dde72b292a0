"""The narrate task over a Report: the model writes the summary and next steps, or the
deterministic template below does; the report records which (Report.narrative.source) and
every model output it did not use (Report.model_rejections).

    result = narrate(router, report)            # None when there is no culprit to narrate
    report = with_narrative(report, result)     # always leaves a narrative on the report

With Router.none() no model is called and the narrative is the template (source "template").
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import replace

from warroom import model
from warroom.llm.catalog import NARRATE
from warroom.llm.redact import redact
from warroom.llm.router import Router
from warroom.llm.schemas import NarrateInput, Narrative
from warroom.llm.tasks import TaskResult, run_task
from warroom.model import Evidence, ModelRejection, Report, iso
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


TOP_EVIDENCE = 2  # evidence statements quoted in the template summary
STATEMENT_CHARS = 200  # longer statements (log templates) are shortened at a word boundary
SUMMARY_CHARS = 1500  # the Narrative schema's limit


def fallback_narrative(facts: NarrateInput, evidence: Sequence[Evidence] = ()) -> Narrative:
    """The deterministic narrative: a template summary from the report's values (culprit,
    fault type, confidence, onset, path, the top evidence statements, redacted) and the runbook
    for the fault type. Every number in it is copied from the report."""
    path = " -> ".join(facts.path)
    spread = f", and spread along {path}" if len(facts.path) > 1 else ""
    if facts.confidence_label == "inconclusive":
        verdict = (
            f"{facts.culprit} is the best guess, but the evidence is inconclusive "
            f"({facts.fault_type}, confidence {facts.confidence:.2f})"
        )
    else:
        verdict = (
            f"{facts.culprit} is the most likely root cause ({facts.fault_type}, "
            f"{facts.confidence_label} confidence {facts.confidence:.2f})"
        )
    summary = f"{verdict}: {facts.indicator} changed first, at {facts.onset}{spread}."
    # Quoted statements are redacted like a prompt: a summary gets pasted into chat and tickets.
    statements = [_shorten(redact(e.statement).text) for e in evidence[:TOP_EVIDENCE]]
    statements = [s for s in statements if s]
    if statements:
        summary += " Evidence: " + "; ".join(statements)
        summary += "" if summary.endswith(".") else "."
    steps = RUNBOOK.get(facts.fault_type, GENERIC)
    return Narrative(
        summary=_shorten(summary, SUMMARY_CHARS), steps=[s.format(svc=facts.culprit) for s in steps]
    )


def template_narrative(report: Report) -> model.Narrative:
    """The narrative without a model: the fallback for a culprit, or what 'nothing found'
    means and where to look next."""
    facts = narrate_input(report)
    if facts is not None:
        evidence = report.culprit.evidence if report.culprit else ()
        return _narrative(fallback_narrative(facts, evidence), "template")
    window = report.incident.window
    summary = (
        f"No root cause found: no component deviated from its baseline between "
        f"{iso(window.start)} and {iso(window.end)}."
    )
    steps = ["Check that the window covers the onset of the incident; widen it if not."]
    if report.missing:
        summary += " Missing evidence: " + "; ".join(report.missing) + "."
        steps.append("Restore the missing telemetry and investigate again.")
    return model.Narrative(_shorten(summary, SUMMARY_CHARS), tuple(steps), "template")


def narrate(router: Router, report: Report) -> TaskResult[Narrative] | None:
    """The narrative of `report` (model or fallback), or None when there is no culprit."""
    facts = narrate_input(report)
    if facts is None:
        return None
    evidence = report.culprit.evidence if report.culprit else ()
    return run_task(router, NARRATE, facts, evidence, fallback_narrative(facts, evidence))


def with_narrative(report: Report, result: TaskResult[Narrative] | None) -> Report:
    """`report` with its narrative set (the model's, the fallback, or the template when no
    model was asked or there is no culprit), the rejected model outputs appended, and one note
    saying which model wrote what and what was redacted before prompting."""
    if result is None:
        return replace(report, narrative=template_narrative(report))
    source: model.NarrativeSource
    if result.model is None:
        source = "template"
    else:
        source = "model" if result.source == "model" else "fallback"
    rejections = tuple(
        ModelRejection(NARRATE.name, r.reason.value, r.detail, r.attempt) for r in result.rejections
    )
    return replace(
        report,
        narrative=_narrative(result.output, source),
        model_rejections=report.model_rejections + rejections,
        notes=report.notes + _provenance(result),
    )


def _narrative(output: Narrative, source: model.NarrativeSource) -> model.Narrative:
    return model.Narrative(output.summary, tuple(output.steps), source)


def _provenance(result: TaskResult[Narrative]) -> tuple[str, ...]:
    """Who wrote the narrative and what was redacted (the rejections have their own field)."""
    if result.model is None:
        return ()
    lines = [f"llm narrate: {result.source} output ({result.model}, prompt {result.template})"]
    if result.redactions:
        kinds = ", ".join(f"{k} x{n}" for k, n in result.redactions)
        lines.append(f"llm narrate: redacted before prompting: {kinds}")
    return tuple(lines)


def _shorten(text: str, width: int = STATEMENT_CHARS) -> str:
    """`text` cut at a word boundary (never inside a number) when longer than `width`."""
    return text if len(text) <= width else textwrap.shorten(text, width, placeholder=" ...")
