"""The only place that formats a Report: Markdown for people, JSON for scripts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from warroom.model import Evidence, ModelRejection, Narrative, Report, RootCause, iso

if TYPE_CHECKING:
    from warroom.topology.iac.drift import Drift

# Confidence is calibrated (causal/calibration.py): the share of gym reports like this one that
# named the right culprit. Below one half the named culprit is more likely wrong than right, and
# the honest answer is "inconclusive" (the best guess is still shown, as a guess).
INCONCLUSIVE_BELOW = 0.5
CONFIDENCE_WORDS = ((0.85, "high"), (0.7, "medium"), (INCONCLUSIVE_BELOW, "low"))


def confidence_label(confidence: float) -> str:
    """Words for a calibrated confidence: high, medium, low, or inconclusive."""
    for at_least, word in CONFIDENCE_WORDS:
        if confidence >= at_least:
            return word
    return "inconclusive"


def to_markdown(report: Report, drift: Drift | None = None) -> str:
    """A report an SRE can read at 3 a.m.: the answer first, then the numbers behind it.

    `drift`: declared against observed calls (investigate --iac), a "Topology drift" section."""
    incident = report.incident
    lines = [f"# Incident {incident.id}", ""]
    lines.append(f"Window: {incident.window} (alert at {iso(incident.alert_time)})")
    if incident.symptom_service:
        metric = f" / {incident.symptom_metric}" if incident.symptom_metric else ""
        lines.append(f"Symptom: {incident.symptom_service}{metric}")
    if incident.also_alerting:
        lines.append(f"Also alerting: {', '.join(incident.also_alerting)}")
    lines.append("")
    if report.narrative is not None:
        lines += _narrative_section(report.narrative)
    culprit = report.culprit
    label = confidence_label(report.confidence)
    if culprit is None:
        lines += ["## Root cause: none found", "", "No component deviated from its baseline.", ""]
    else:
        lines += _culprit_section(culprit, report.confidence, label, report.raw_confidence)
    if len(report.candidates) > 1:
        lines += _candidates_table(report.candidates)
    if report.missing:
        lines += ["## Missing evidence", ""] + [f"- {m}" for m in report.missing] + [""]
    if report.model_rejections:
        lines += _rejections_section(report.model_rejections)
    if drift is not None:
        from warroom.report.drift import drift_markdown

        lines += drift_markdown(drift)
    if report.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in report.notes] + [""]
    lines.append(
        f"_{report.findings_count} findings from the experts; "
        f"investigated in {report.seconds:.2f} s._"
    )
    return "\n".join(lines) + "\n"


SOURCE_WORDS = {
    "model": "Written by a language model and checked against the evidence.",
    "fallback": "Written from a template: the language model's reply was rejected "
    "(see Model outputs rejected).",
    "template": "Written from a template (no language model configured).",
}


def narrative_source_words(source: str) -> str:
    """Who wrote a narrative, in words."""
    return SOURCE_WORDS.get(source, source)


def _narrative_section(narrative: Narrative) -> list[str]:
    source = narrative_source_words(narrative.source)
    lines = ["## Summary", "", narrative.summary, "", f"_{source}_", ""]
    if narrative.steps:
        lines += ["### Next steps", ""]
        lines += [f"{i}. {step}" for i, step in enumerate(narrative.steps, 1)] + [""]
    return lines


def _rejections_section(rejections: tuple[ModelRejection, ...]) -> list[str]:
    lines = ["## Model outputs rejected", ""]
    lines += [f"- {r.task} (attempt {r.attempt}): **{r.reason}**: {r.detail}" for r in rejections]
    return lines + [""]


def _culprit_section(
    culprit: RootCause, confidence: float, label: str, raw: float | None = None
) -> list[str]:
    heading = "## Root cause" if label != "inconclusive" else "## Best guess (inconclusive)"
    onset = iso(culprit.onset) if culprit.onset is not None else "unknown"
    calibrated = f", calibrated from a raw score of {raw:.3f}" if raw is not None else ""
    lines = [
        heading,
        "",
        f"- **Culprit:** `{culprit.service}`",
        f"- **Fault type:** {culprit.fault_type}",
        f"- **Indicator:** `{culprit.indicator}`",
        f"- **Onset:** {onset}",
        f"- **Propagation path:** {' → '.join(culprit.path)}",
        f"- **Confidence:** {confidence:.2f} ({label}{calibrated}); explains "
        f"{culprit.explains:.0%} of the anomalous services",
        "",
        "### Evidence",
        "",
    ]
    lines += [f"{i}. {e.statement}  \n   `{e.source}`" for i, e in enumerate(culprit.evidence, 1)]
    return lines + [""]


def _candidates_table(candidates: tuple[RootCause, ...]) -> list[str]:
    lines = [
        "## Other candidates",
        "",
        "| # | service | indicator | fault type | score |",
        "|---|---|---|---|---|",
    ]
    for i, c in enumerate(candidates[1:], start=2):
        lines.append(f"| {i} | `{c.service}` | `{c.indicator}` | {c.fault_type} | {c.score:.2f} |")
    return lines + [""]


def to_json(report: Report, drift: Drift | None = None) -> dict[str, Any]:
    """A plain-data view of the report (times as ISO strings and epoch seconds); `drift` adds
    a "topology_drift" entry."""
    incident = report.incident
    payload: dict[str, Any] = {
        "incident": {
            "id": incident.id,
            "window": {"start": iso(incident.window.start), "end": iso(incident.window.end)},
            "alert_time": iso(incident.alert_time),
            "symptom_service": incident.symptom_service,
            "also_alerting": list(incident.also_alerting),
            "symptom_metric": incident.symptom_metric,
        },
        "culprit": _candidate_json(report.culprit) if report.culprit else None,
        "confidence": report.confidence,
        "confidence_raw": report.raw_confidence,
        "verdict": confidence_label(report.confidence),
        "candidates": [_candidate_json(c) for c in report.candidates],
        "missing_evidence": list(report.missing),
        "narrative": _narrative_json(report.narrative),
        "rejected_model_outputs": [_rejection_json(r) for r in report.model_rejections],
        "notes": list(report.notes),
        "findings": report.findings_count,
        "seconds": report.seconds,
    }
    if drift is not None:
        payload["topology_drift"] = drift.to_dict()
    return payload


def _candidate_json(c: RootCause) -> dict[str, Any]:
    return {
        "service": c.service,
        "indicator": c.indicator,
        "fault_type": c.fault_type,
        "score": c.score,
        "onset": iso(c.onset) if c.onset is not None else None,
        "path": list(c.path),
        "explains": c.explains,
        "evidence": [_evidence_json(e) for e in c.evidence],
    }


def _evidence_json(e: Evidence) -> dict[str, Any]:
    return {
        "id": e.id,
        "statement": e.statement,
        "value": e.value,
        "baseline": e.baseline,
        "unit": e.unit,
        # The computation that produced the value (an expert call or a DSL expression), to
        # re-run it; "source" is the same text under its older name.
        "expression": e.source,
        "source": e.source,
    }


def _narrative_json(narrative: Narrative | None) -> dict[str, Any] | None:
    if narrative is None:
        return None
    return {
        "summary": narrative.summary,
        "steps": list(narrative.steps),
        "source": narrative.source,
    }


def _rejection_json(r: ModelRejection) -> dict[str, Any]:
    return {"task": r.task, "reason": r.reason, "detail": r.detail, "attempt": r.attempt}
