"""The target: with the replay double, invalid JSON, a timeout, a hallucinated number and a
prompt containing a planted secret each still end in a valid report, with the rejection or
redaction recorded. Each scenario goes through `--llm replay:FILE` as the CLI would."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from warroom.llm import Router, narrate, with_narrative
from warroom.model import Evidence, Report
from warroom.report.render import to_json, to_markdown

from .conftest import SECRETS, audit_lines, reply, write_script

GOOD = {
    "summary": "orders-db exhausted its connection pool (12 -> 95) from 10:03:20 and checkout "
    "failed on [REDACTED:url_password] connections.",
    "steps": ["Raise the orders-db pool limit.", "Find what holds connections open."],
}


def _investigate(tmp_path: Path, report: Report, *lines: str) -> tuple[Report, Path]:
    script = write_script(tmp_path / "calls.jsonl", *lines)
    audit = tmp_path / "audit.jsonl"
    router = Router.from_spec(f"replay:{script}", audit=audit)
    final = with_narrative(report, narrate(router, report))
    data = json.loads(json.dumps(to_json(final)))  # a valid report renders both ways
    assert data["narrative"]["summary"] and "## Summary" in to_markdown(final)
    return final, audit


def _reasons(report: Report) -> list[tuple[str, str, int]]:
    return [(r.task, r.reason, r.attempt) for r in report.model_rejections]


def test_invalid_json_ends_in_the_fallback(tmp_path: Path, report: Report) -> None:
    bad = json.dumps({"content": "Sure! The root cause is orders-db {summary: ..."})
    final, audit = _investigate(tmp_path, report, bad, bad)
    assert final.narrative is not None and final.narrative.source == "fallback"
    assert final.narrative.summary.startswith("orders-db is the most likely root cause")
    assert _reasons(final) == [("narrate", "invalid_output", 1), ("narrate", "invalid_output", 2)]
    assert all(r.detail.startswith("not JSON") for r in final.model_rejections)
    assert any(n.startswith("llm narrate: fallback output") for n in final.notes)
    assert not any("Summary" in n or "rejected" in n for n in final.notes)  # fields, not notes
    assert str(audit_lines(audit)[0]["rejection"]).startswith("invalid_output")


def test_a_timeout_ends_in_the_fallback(tmp_path: Path, report: Report) -> None:
    final, audit = _investigate(tmp_path, report, json.dumps({"error": "timeout"}), reply(GOOD))
    assert final.narrative is not None and final.narrative.source == "fallback"
    assert _reasons(final) == [("narrate", "timeout", 1)]
    [entry] = audit_lines(audit)  # a timeout is not repaired: one call
    assert entry["failure"] and "timeout" in str(entry["failure"])


def test_a_hallucinated_number_is_rejected(tmp_path: Path, report: Report) -> None:
    lie = dict(GOOD, summary="orders-db hit 250 connections, 31 % of checkout requests failed.")
    final, audit = _investigate(tmp_path, report, reply(lie), reply(lie))
    assert final.narrative is not None and final.narrative.source == "fallback"
    assert [r.reason for r in final.model_rejections] == ["ungrounded_number"] * 2
    assert final.model_rejections[0].detail == "not in the evidence: 250, 31 %"
    assert "250" not in final.narrative.summary
    assert all(str(e["rejection"]).startswith("ungrounded_number") for e in audit_lines(audit))


def test_a_planted_secret_is_redacted_and_recorded(tmp_path: Path, report: Report) -> None:
    final, audit = _investigate(tmp_path, report, reply(GOOD))
    assert final.narrative is not None and final.narrative.source == "model"
    assert final.narrative.summary == GOOD["summary"]
    assert final.narrative.steps == tuple(GOOD["steps"])
    assert final.model_rejections == ()
    redaction_note = next(n for n in final.notes if "redacted before prompting" in n)
    for kind in ("url_password", "ipv4", "aws_access_key", "email"):
        assert kind in redaction_note
    text = audit.read_text()
    assert "[REDACTED:url_password]" in text
    notes = "\n".join(final.notes)
    for secret in SECRETS:
        assert secret not in text, secret
        assert secret not in notes, secret
    assert oct(audit.stat().st_mode & 0o777) == "0o600"


def test_a_database_url_password_never_reaches_the_audit_file(
    tmp_path: Path, report: Report
) -> None:
    culprit = report.candidates[0]
    leak = Evidence(
        "log:orders:dsn",
        "orders: new log 'cannot connect to postgres://admin:hunter2@db:5432 (timeout)'",
        value=0.05,
        source="experts.logs.template_findings(service=orders)",
    )
    planted = replace(report, candidates=(replace(culprit, evidence=(leak,)),))
    good = {"summary": "orders-db ran out of connections.", "steps": ["Check the pool."]}
    final, audit = _investigate(tmp_path, planted, reply(good))
    assert final.narrative is not None and final.narrative.source == "model"
    text = audit.read_text()
    assert "postgres://admin:[REDACTED:url_password]@db:5432" in text
    assert "hunter2" not in text
    assert "hunter2" not in json.dumps(to_json(final)["narrative"])


def test_no_model_gives_the_template_and_touches_no_file(tmp_path: Path, report: Report) -> None:
    final = with_narrative(report, narrate(Router.none(), report))
    assert final.narrative is not None and final.narrative.source == "template"
    assert final.model_rejections == () and final.notes == ()
    assert list(tmp_path.iterdir()) == []
