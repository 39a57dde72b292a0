"""Every evaluation is Evidence: a stable id, the value, and the expression to re-run."""

from __future__ import annotations

from dataclasses import replace

from warroom.dsl import Context, evaluate, evidence_id, parse, run
from warroom.model import Evidence, Incident, TimeRange

CHANGE = 'change(metric("db", "conns"))'


def test_evidence_carries_value_unit_statement_and_source(context: Context) -> None:
    evidence = evaluate("latency_p(90,spans('checkout'))", context)
    assert isinstance(evidence, Evidence)
    assert evidence.value == 0.5
    assert evidence.unit == "s"
    assert evidence.source == 'latency_p(90, spans("checkout"))'
    assert evidence.statement == 'latency_p(90, spans("checkout")) = 500 ms'


def test_the_id_is_stable_across_runs_and_processes(context: Context) -> None:
    # A literal: the id must not depend on Python's hash seed, the process or the store.
    assert evaluate(CHANGE, context).id == "dsl-36e0f2fa0fbff4ed"
    assert evidence_id(CHANGE, context) == "dsl-36e0f2fa0fbff4ed"


def test_the_id_ignores_spelling_but_not_meaning(context: Context) -> None:
    same = [CHANGE, "change( metric('db','conns') )", 'change(metric(name="conns", service="db"))']
    assert len({evaluate(text, context).id for text in same}) == 1
    different = [
        CHANGE,
        'change(metric("db", "cpu"))',
        'change(metric("db", "conns")[window])',
        'delta(metric("db", "conns"))',
    ]
    assert len({evaluate(text, context).id for text in different}) == len(different)


def test_the_id_depends_on_the_case_times(context: Context) -> None:
    moved = replace(context, window=TimeRange(610.0, 1200.0))
    assert evaluate(CHANGE, moved).id != evaluate(CHANGE, context).id
    realerted = replace(context, alert=901.0)
    assert evaluate(CHANGE, realerted).id != evaluate(CHANGE, context).id


def test_re_running_the_source_gives_the_same_evidence(context: Context) -> None:
    first = evaluate("top_templates(logs('checkout'), k=1)", context)
    assert evaluate(first.source, context) == first


def test_an_ast_evaluates_like_its_text(context: Context) -> None:
    assert evaluate(parse(CHANGE), context) == evaluate(CHANGE, context)


def test_context_of_an_incident_defaults_the_baseline(context: Context) -> None:
    incident = Incident("i", TimeRange(600.0, 1200.0), 900.0)
    made = Context.of(context.store, incident)
    assert made.baseline == TimeRange(0.0, 600.0)
    assert run(CHANGE, made).evidence.value == 2.0
