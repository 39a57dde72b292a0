"""The narrative (summary, next steps, who wrote it) and the rejected model outputs, in each
format: Markdown near the top, JSON keys for scripts, an escaped summary box in HTML."""

from __future__ import annotations

import json
from dataclasses import replace

from warroom.model import ModelRejection, Narrative, Report
from warroom.report.html import to_html
from warroom.report.render import to_json, to_markdown

from .test_html import _parse
from .test_render import EVIDENCE, _report

NARRATIVE = Narrative(
    summary="payment ran hot (3 -> 98) and slowed checkout and frontend.",
    steps=("Check payment CPU limits.", "Look for a deploy of payment."),
    source="fallback",
)
REJECTIONS = (
    ModelRejection("narrate", "invalid_output", "not JSON (Expecting value at line 1)", 1),
    ModelRejection("narrate", "ungrounded_number", "not in the evidence: 987.6 %", 2),
)


def _narrated(
    narrative: Narrative | None = NARRATIVE, rejections: tuple[ModelRejection, ...] = REJECTIONS
) -> Report:
    return replace(_report(), narrative=narrative, model_rejections=rejections)


def test_markdown_puts_the_summary_and_next_steps_before_the_root_cause() -> None:
    md = to_markdown(_narrated())
    assert md.index("## Summary") < md.index("## Root cause")
    assert NARRATIVE.summary in md
    assert "### Next steps" in md
    assert "1. Check payment CPU limits." in md and "2. Look for a deploy of payment." in md
    assert "rejected" in md[md.index("## Summary") : md.index("## Root cause")]  # the source


def test_markdown_lists_rejected_model_outputs_only_when_there_are_some() -> None:
    md = to_markdown(_narrated())
    section = md[md.index("## Model outputs rejected") :]
    assert "**invalid_output**" in section and "not JSON" in section
    assert "**ungrounded_number**: not in the evidence: 987.6 %" in section
    assert "attempt 2" in section
    quiet = to_markdown(_narrated(replace(NARRATIVE, source="template"), ()))
    assert "Model outputs rejected" not in quiet
    assert "no language model configured" in quiet


def test_markdown_without_a_narrative_has_no_summary() -> None:
    assert "## Summary" not in to_markdown(_report())


def test_json_has_the_narrative_the_rejections_and_each_evidence_expression() -> None:
    data = to_json(_narrated())
    assert json.loads(json.dumps(data)) == data
    assert data["narrative"] == {
        "summary": NARRATIVE.summary,
        "steps": list(NARRATIVE.steps),
        "source": "fallback",
    }
    assert data["rejected_model_outputs"] == [
        {"task": r.task, "reason": r.reason, "detail": r.detail, "attempt": r.attempt}
        for r in REJECTIONS
    ]
    for item, e in zip(data["culprit"]["evidence"], EVIDENCE, strict=True):
        assert (item["id"], item["value"], item["expression"]) == (e.id, e.value, e.source)


def test_json_without_a_narrative_says_null_and_no_rejections() -> None:
    data = to_json(_report())
    assert data["narrative"] is None and data["rejected_model_outputs"] == []


def test_html_shows_an_escaped_summary_box_and_the_rejections() -> None:
    evil = Narrative("<script>alert(1)</script> payment", ("<b>reboot</b>",), "model")
    bad = (ModelRejection("narrate", "invalid_output", "<img src=x>", 1),)
    page = to_html(_narrated(evil, bad))
    checker = _parse(page)
    assert not {"script", "img", "b"} & set(checker.tags)
    assert 'class="summary summary-model"' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; payment" in page
    assert "<h3>Next steps</h3><ol><li>&lt;b&gt;reboot&lt;/b&gt;</li></ol>" in page
    assert "checked against the evidence" in page
    assert "Model outputs rejected" in page and "&lt;img src=x&gt;" in page
    assert page.index('id="summary-h"') < page.index('id="evidence-h"')


def test_html_without_a_narrative_or_rejections_has_neither_section() -> None:
    page = to_html(_report())
    assert 'id="summary-h"' not in page and "Model outputs rejected" not in page
