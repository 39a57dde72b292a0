from __future__ import annotations

import json
from pathlib import Path

import pytest

from warroom.llm.audit import AuditLog
from warroom.llm.catalog import judge, plan, summarise
from warroom.llm.narrate import fallback_narrative, narrate, narrate_input
from warroom.llm.replay import Replay
from warroom.llm.router import Route, Router
from warroom.llm.schemas import Judgement, LogSummary, Plan, PlanInput, PlanStep, SummariseInput
from warroom.llm.tasks import Reason, parse_json
from warroom.model import Report

from .conftest import EVIDENCE, audit_lines

GOOD = {
    "summary": "orders-db ran out of connections (12 -> 95, x7.9) from 10:03:20; checkout "
    "errors followed at 3.4 % of its log lines.",
    "steps": ["Raise the orders-db pool limit.", "Find the query that holds connections."],
}


def _router(tmp_path: Path, *contents: str | dict[str, str]) -> tuple[Router, Replay]:
    lines = [json.dumps(c if isinstance(c, dict) else {"content": c}) for c in contents]
    replay = Replay.from_jsonl("\n".join(lines))
    route = Route(replay, timeout=5.0)
    tasks = ("plan", "judge", "summarise", "narrate")
    return Router({t: route for t in tasks}, AuditLog(tmp_path / "audit.jsonl")), replay


def test_a_good_reply_is_used(tmp_path: Path, report: Report) -> None:
    router, replay = _router(tmp_path, json.dumps(GOOD))
    result = narrate(router, report)
    assert result is not None
    assert result.source == "model" and result.rejections == ()
    assert result.output.summary == GOOD["summary"]
    assert result.template == "narrate.v1"
    [call] = replay.calls
    assert [m.role for m in call] == ["system", "user"]
    assert "orders-db connections 12 -> 95" in call[1].content
    assert '"summary"' in call[1].content  # the schema is in the prompt


def test_no_model_means_the_fallback_and_no_audit(tmp_path: Path, report: Report) -> None:
    result = narrate(Router.none(), report)
    assert result is not None and result.source == "fallback" and result.model is None
    assert result.notes("narrate") == ()
    assert "orders-db is the most likely root cause" in result.output.summary
    assert not (tmp_path / "audit.jsonl").exists()


def test_one_repair_attempt_can_fix_a_bad_reply(tmp_path: Path, report: Report) -> None:
    router, replay = _router(tmp_path, '{"summary": ""}', json.dumps(GOOD))
    result = narrate(router, report)
    assert result is not None and result.source == "model"
    [rejection] = result.rejections
    assert rejection.reason is Reason.INVALID_OUTPUT and rejection.attempt == 1
    assert "summary" in rejection.detail
    repair = replay.calls[1]
    assert [m.role for m in repair] == ["system", "user", "assistant", "user"]
    assert "not valid" in repair[-1].content
    assert [e["attempt"] for e in audit_lines(tmp_path / "audit.jsonl")] == [1, 2]


def test_two_bad_replies_end_in_the_fallback(tmp_path: Path, report: Report) -> None:
    router, _ = _router(tmp_path, "nope", '{"steps": 3}', json.dumps(GOOD))
    result = narrate(router, report)
    assert result is not None and result.source == "fallback"
    assert [r.attempt for r in result.rejections] == [1, 2]
    facts = narrate_input(report)
    assert facts is not None and result.output == fallback_narrative(facts, EVIDENCE)


def test_an_ungrounded_repair_names_the_numbers(tmp_path: Path, report: Report) -> None:
    bad = dict(GOOD, summary="orders-db hit 250 connections at 11:00.")
    router, replay = _router(tmp_path, json.dumps(bad), json.dumps(GOOD))
    result = narrate(router, report)
    assert result is not None and result.source == "model"
    assert result.rejections[0].reason is Reason.UNGROUNDED
    assert "250" in result.rejections[0].detail and "11:00" in result.rejections[0].detail
    assert "250" in replay.calls[1][-1].content


def test_a_failed_call_is_not_repaired(tmp_path: Path, report: Report) -> None:
    router, replay = _router(tmp_path, {"error": "unavailable"}, json.dumps(GOOD))
    result = narrate(router, report)
    assert result is not None and result.source == "fallback"
    assert [r.reason for r in result.rejections] == [Reason.UNAVAILABLE]
    assert len(replay.calls) == 1


def test_judge_validates_range_and_citations(tmp_path: Path) -> None:
    over = {"verdict": "supports", "confidence": 1.5, "reason": "yes"}
    ghost = {"verdict": "supports", "confidence": 0.9, "reason": "see [metric:ghost:cpu]"}
    ok = {
        "verdict": "supports",
        "confidence": 0.8,
        "reason": "connections went 12 -> 95 first [metric:orders-db:connections]",
    }
    router, _ = _router(tmp_path, json.dumps(over), json.dumps(ghost), json.dumps(ok))
    first = judge(router, "orders-db pool exhaustion", EVIDENCE)
    assert first.source == "fallback" and first.output.verdict == "inconclusive"
    assert "confidence" in first.rejections[0].detail
    assert "metric:ghost:cpu" in first.rejections[1].detail
    second = judge(router, "orders-db pool exhaustion", EVIDENCE)
    assert second.source == "model" and second.output == Judgement.model_validate(ok)


def test_plan_rejects_unknown_actors(tmp_path: Path) -> None:
    reply = {"steps": [{"actor": "wizard", "check": "cast a spell"}]}
    router, _ = _router(tmp_path, json.dumps(reply), json.dumps(reply))
    situation = PlanInput(symptom="checkout errors", suspects=["orders-db"], actors=["database"])
    fallback = Plan(steps=[PlanStep(actor="database", check="check pool usage")])
    result = plan(router, situation, EVIDENCE, fallback)
    assert result.source == "fallback" and result.output == fallback
    assert "unknown actors ['wizard']" in result.rejections[0].detail


def test_summarise_grounds_against_the_log_lines(tmp_path: Path) -> None:
    reply = {"summary": "12 pool errors in 350 lines", "notable": ["pool exhausted (12)"]}
    router, _ = _router(tmp_path, json.dumps(reply))
    logs = SummariseInput(service="checkout", lines=["pool exhausted x12 of 350"])
    fallback = LogSummary(summary="pool exhausted", notable=[])
    assert summarise(router, logs, (), fallback).source == "model"


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}',
        '```json\n{"a": 1}\n```',
        '<think>hmm {"b": 2}</think>{"a": 1}',
        'Here you go: {"a": 1} hope it helps',
    ],
)
def test_parse_json_tolerates_wrapping(text: str) -> None:
    assert parse_json(text) == {"a": 1}


def test_parse_json_still_rejects_non_json() -> None:
    with pytest.raises(ValueError):
        parse_json("The root cause is orders-db.")


def test_a_spent_token_budget_stops_calling_the_model(tmp_path: Path, report: Report) -> None:
    router, replay = _router(tmp_path, "not json at all", json.dumps(GOOD), json.dumps(GOOD))
    router.token_budget = 50  # far less than one prompt: the first call spends it all
    first = narrate(router, report)
    assert first is not None and len(replay.calls) == 1  # no repair: the budget is spent
    assert router.exhausted and router.tokens_spent > 50
    assert [r.reason for r in first.rejections] == [Reason.INVALID_OUTPUT, Reason.BUDGET]
    second = narrate(router, report)
    assert second is not None and second.source == "fallback"
    assert len(replay.calls) == 1  # never asked
    [rejection] = second.rejections
    assert rejection.reason is Reason.BUDGET and "of 50" in rejection.detail
    assert any("rejected budget" in line for line in second.notes("narrate"))


def test_without_a_budget_tokens_are_counted_but_never_stop_a_call(
    tmp_path: Path, report: Report
) -> None:
    router, replay = _router(tmp_path, json.dumps(GOOD))
    narrate(router, report)
    assert router.tokens_spent > 0 and not router.exhausted


def test_a_budget_must_be_positive() -> None:
    from warroom.errors import InputError

    with pytest.raises(InputError, match="positive"):
        Router({}, token_budget=0)
