"""The template narrative: built from the report's own values, so every number in it passes
the same grounding check a model's narrative must pass; and a narrative even with no culprit."""

from __future__ import annotations

import re
from dataclasses import replace

from warroom.llm import grounding
from warroom.llm.narrate import narrate_input, template_narrative, with_narrative
from warroom.model import Evidence, Report

from .conftest import EVIDENCE


def test_the_template_names_culprit_fault_path_confidence_and_top_evidence(
    report: Report,
) -> None:
    narrative = template_narrative(report)
    assert narrative.source == "template"
    summary = narrative.summary
    for part in ("orders-db", "pool", "high confidence 0.92", "orders-db -> orders -> checkout"):
        assert part in summary, part
    assert "2023-01-29T10:03:20Z" in summary
    assert EVIDENCE[0].statement in summary
    assert "pool exhausted connecting to postgres://app:[REDACTED:url_password]@" in summary
    assert "hunter2" not in summary  # quoted statements are redacted
    assert "AKIA" not in summary  # only the top two statements
    assert narrative.steps and "orders-db" in narrative.steps[0]


def test_every_number_in_the_template_comes_from_the_report(report: Report) -> None:
    facts = narrate_input(report)
    assert facts is not None
    narrative = template_narrative(report)
    text = "\n".join([narrative.summary, *narrative.steps])
    for e in EVIDENCE:
        text = text.replace(e.id, " ")
    checked = grounding.check(text, EVIDENCE, facts.facts())
    assert checked.ok, checked.ungrounded


def test_a_long_statement_is_shortened_at_a_word_boundary(report: Report) -> None:
    long = Evidence("log:x", "checkout: new log " + "token 12345 " * 60, 1.0)
    culprit = replace(report.candidates[0], evidence=(long,))
    summary = template_narrative(replace(report, candidates=(culprit,))).summary
    quoted = summary[summary.index("Evidence: ") :]
    assert len(summary) < 600 and quoted.endswith(" ...")
    assert set(re.findall(r"\d+", quoted)) == {"12345"}  # no number cut short


def test_an_inconclusive_report_says_so(report: Report) -> None:
    summary = template_narrative(replace(report, confidence=0.1)).summary
    assert summary.startswith("orders-db is the best guess, but the evidence is inconclusive")
    assert "confidence 0.10" in summary


def test_no_culprit_still_gets_a_narrative(report: Report) -> None:
    empty = replace(report, candidates=(), confidence=0.0, missing=("traces: none in window",))
    final = with_narrative(empty, None)
    assert final.narrative is not None and final.narrative.source == "template"
    assert final.narrative.summary.startswith("No root cause found")
    assert "2023-01-29T09:58:20Z and 2023-01-29T10:13:20Z" in final.narrative.summary
    assert "traces: none in window" in final.narrative.summary
    assert len(final.narrative.steps) == 2
