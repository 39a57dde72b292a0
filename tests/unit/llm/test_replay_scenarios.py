"""The target: with the replay double, invalid JSON, a timeout, a hallucinated number and a
prompt containing a planted secret each still end in a valid report, with the rejection or
redaction recorded. Each scenario goes through `--llm replay:FILE` as the CLI would."""

from __future__ import annotations

import json
from pathlib import Path

from warroom.llm import Router, narrate, with_narrative
from warroom.model import Report
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
    to_json(final)  # a valid report renders both ways
    assert "## Notes" in to_markdown(final)
    return final, audit


def _notes(report: Report) -> str:
    return "\n".join(report.notes)


def test_invalid_json_ends_in_the_fallback(tmp_path: Path, report: Report) -> None:
    bad = json.dumps({"content": "Sure! The root cause is orders-db {summary: ..."})
    final, audit = _investigate(tmp_path, report, bad, bad)
    notes = _notes(final)
    assert "llm narrate: fallback output" in notes
    assert notes.count("rejected invalid_output: not JSON") == 2
    assert "Summary: orders-db is the most likely root cause" in notes
    assert str(audit_lines(audit)[0]["rejection"]).startswith("invalid_output")


def test_a_timeout_ends_in_the_fallback(tmp_path: Path, report: Report) -> None:
    final, audit = _investigate(tmp_path, report, json.dumps({"error": "timeout"}), reply(GOOD))
    notes = _notes(final)
    assert "llm narrate: fallback output" in notes
    assert "rejected timeout" in notes
    [entry] = audit_lines(audit)  # a timeout is not repaired: one call
    assert entry["failure"] and "timeout" in str(entry["failure"])


def test_a_hallucinated_number_is_rejected(tmp_path: Path, report: Report) -> None:
    lie = dict(GOOD, summary="orders-db hit 250 connections, 31 % of checkout requests failed.")
    final, audit = _investigate(tmp_path, report, reply(lie), reply(lie))
    notes = _notes(final)
    assert "llm narrate: fallback output" in notes
    assert "rejected ungrounded_number: not in the evidence: 250, 31 %" in notes
    assert "250" not in "".join(n for n in final.notes if n.startswith("Summary"))
    assert all(str(e["rejection"]).startswith("ungrounded_number") for e in audit_lines(audit))


def test_a_planted_secret_is_redacted_and_recorded(tmp_path: Path, report: Report) -> None:
    final, audit = _investigate(tmp_path, report, reply(GOOD))
    notes = _notes(final)
    assert "llm narrate: model output" in notes
    assert f"Summary: {GOOD['summary']}" in notes
    redaction_note = next(n for n in final.notes if "redacted before prompting" in n)
    for kind in ("url_password", "ipv4", "aws_access_key", "email"):
        assert kind in redaction_note
    text = audit.read_text()
    assert "[REDACTED:url_password]" in text
    for secret in SECRETS:
        assert secret not in text, secret
        assert secret not in notes, secret
    assert oct(audit.stat().st_mode & 0o777) == "0o600"
