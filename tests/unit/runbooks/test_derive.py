"""from_report: evidence of every kind becomes a check that parses and re-measures it.

gym_reports.json holds the reports (top candidate only) warroom wrote for every fault of the
gym catalogue (shop, seed 1; the queue fault on the pipeline topology). Regenerate it when the
experts' evidence ids change: generate + pipeline.investigate + report.render.to_json per fault.
"""

from __future__ import annotations

import pytest

from warroom.dsl import parse, unparse
from warroom.errors import InputError
from warroom.gym.faults import CATALOGUE
from warroom.model import Evidence, Incident, Report, RootCause, TimeRange
from warroom.report.render import to_json
from warroom.runbooks import Runbook, from_report, report_from_json
from warroom.runbooks.derive import check_for, log_fragment
from warroom.runbooks.remediation import REMEDIES

from .conftest import CREATED, recorded_reports, recorded_runbooks

RUNBOOKS = recorded_runbooks()


def test_every_fault_kind_of_the_gym_is_recorded() -> None:
    recorded = {key.split("/")[1] for key in recorded_reports()}
    assert recorded == set(CATALOGUE)


@pytest.mark.parametrize("key", sorted(RUNBOOKS))
def test_every_generated_expression_parses_and_is_normalised(key: str) -> None:
    runbook = RUNBOOKS[key]
    assert runbook.checks
    for check in runbook.checks:
        assert unparse(parse(check.expression)) == check.expression
        assert check.why.startswith("In ")


@pytest.mark.parametrize("key", sorted(RUNBOOKS))
def test_the_first_check_measures_the_culprit(key: str) -> None:
    runbook = RUNBOOKS[key]
    assert runbook.signature.culprit_service in runbook.checks[0].services
    assert runbook.culprit_checks()[0] == runbook.checks[0]


def test_every_gym_fault_type_has_concrete_remediation() -> None:
    types = {fault_type for fault_type, _ in CATALOGUE.values()} - {"none"}
    assert types <= set(REMEDIES)
    for key, runbook in RUNBOOKS.items():
        assert runbook.remediation, key
        assert all("{" not in step for step in runbook.remediation)


def test_the_pool_runbook_reads_like_the_incident() -> None:
    runbook = RUNBOOKS["shop/db-pool-exhaustion/1"]
    assert runbook.id.startswith("orders-db-pool-")
    assert runbook.title == "orders-db: connection pool exhausted behind frontend errors"
    sig = runbook.signature
    assert (sig.culprit_service, sig.fault_type, sig.symptom_service) == (
        "orders-db",
        "pool",
        "frontend",
    )
    assert sig.symptom_family == "errors"
    assert runbook.checks[0].expression == (
        'max(metric("orders-db", "db_pool_connections_in_use")) > 5 * '
        'median(metric("orders-db", "db_pool_connections_in_use")[baseline])'
    )
    assert "pg_stat_activity" in runbook.remediation[0]


def test_a_config_push_is_checked_by_its_event() -> None:
    first = RUNBOOKS["shop/bad-config-push/1"].checks[0]
    assert first.expression == (
        'count(events("checkout", kind="config")[window.start - 15m .. window.end]) > 0'
    )


def test_the_same_report_gives_the_same_id(pool_report: Report) -> None:
    again = from_report(pool_report, created=CREATED)
    assert again.id == from_report(pool_report).id
    other = RUNBOOKS["shop/disk-full/1"]
    assert other.id != again.id


def test_a_report_survives_its_json(pool_report: Report, pool_runbook: Runbook) -> None:
    restored = report_from_json(to_json(pool_report))
    again = from_report(restored, created=CREATED, source=pool_runbook.provenance.source)
    assert again == pool_runbook


def test_nothing_is_learned_from_an_empty_or_inconclusive_report(pool_report: Report) -> None:
    empty = Report(pool_report.incident, (), 0.0)
    with pytest.raises(InputError, match="names no culprit"):
        from_report(empty)
    weak = Report(pool_report.incident, pool_report.candidates, 0.05)
    with pytest.raises(InputError, match="inconclusive"):
        from_report(weak)
    assert from_report(weak, min_confidence=0.0).provenance.verdict == "inconclusive"


def test_a_culprit_without_usable_evidence_is_refused() -> None:
    incident = Incident("x-1", TimeRange(0, 600), 300)
    vague = Evidence("causal:db:explains", "db explains 3 services", 3.0)
    culprit = RootCause("db", "?", "pool", 5.0, None, ("db",), 1.0, (vague,))
    with pytest.raises(InputError, match="can be re-measured"):
        from_report(Report(incident, (culprit,), 0.9))


def _expr(evidence: Evidence) -> str | None:
    check = check_for(evidence, "inc-1")
    return None if check is None else check.expression


def test_metric_evidence_up_down_and_from_zero() -> None:
    up = Evidence("metric:db:conns", "conns 2 -> 50", 50.0, 2.0)
    assert _expr(up) == 'max(metric("db", "conns")) > 5 * median(metric("db", "conns")[baseline])'
    huge = Evidence("metric:db:conns", "conns 1 -> 1000", 1000.0, 1.0)
    assert "> 10 * median" in str(_expr(huge))
    from_zero = Evidence("metric:db:errors", "0 -> 0.4", 0.4, 0.0)
    assert _expr(from_zero) == 'max(metric("db", "errors")) > 0.2'
    down = Evidence("metric:email:rps", "0.5 -> 0", 0.0, 0.5)
    assert _expr(down) == (
        'median(metric("email", "rps")) < 0.1 * median(metric("email", "rps")[baseline])'
    )
    colon = Evidence("metric:db:job:rate:5m", "x", 4.0, 1.0)
    assert 'metric("db", "job:rate:5m")' in str(_expr(colon))
    assert _expr(Evidence("metric:db:x", "no baseline", 3.0)) is None


def test_log_evidence_new_more_and_fewer() -> None:
    new = Evidence("log:db:c.s.DbImpl#440", "new", 0.05, 0.0)
    assert _expr(new) == 'count(logs("db", message~"c.s.DbImpl#440")) >= 3'
    more = Evidence("log:db:took <*> ms to commit <*>", "more", 0.4, 0.1)
    assert _expr(more) == (
        'rate(logs("db", message~"ms to commit")) > 2 * '
        'rate(logs("db", message~"ms to commit")[baseline])'
    )
    assert _expr(Evidence("log:db:c.s.DbImpl#1", "less frequent", 0.1, 0.5)) is None
    assert _expr(Evidence("log:db:<*> <*> ok", "too short", 0.1, 0.0)) is None


def test_log_fragments_with_quotes_and_backslashes_still_parse() -> None:
    key = 'user "bob" path C:\\temp <*> denied'
    assert log_fragment(key) == 'user "bob" path C:\\temp'
    expression = _expr(Evidence(f"log:auth:{key}", "new", 0.2, 0.0))
    assert expression is not None
    assert 'message~"user \\"bob\\" path C:\\\\temp"' in expression
    parse(expression)


def test_trace_evidence_errors_unanswered_and_latency() -> None:
    errors = Evidence("trace:db:span-error-rate", "0 -> 0.2", 0.2, 0.0)
    assert _expr(errors) == 'error_ratio(spans("db")) > 0.1'
    unanswered = Evidence("trace:email:calls-failing-before-server", "x", 0.6, 0.0)
    assert _expr(unanswered) == 'error_ratio(spans(operation~"call email")) > 0.3'
    network = Evidence("trace:email:network-latency-p90(ms)", "x", 145.3, 0.3)
    assert _expr(network) == (
        'latency_p(90, spans(operation~"call email")) - '
        'latency_p(90, spans(operation~"call email")[baseline]) > 72.5ms'
    )
    self_time = Evidence("trace:db:self-time-p90(ms)", "x", 32.5, 3.0)
    assert str(_expr(self_time)).endswith("> 14.8ms")
    assert _expr(Evidence("trace:db:span-error-rate", "all failing", 1.0, 1.0)) is None


def test_event_and_code_evidence() -> None:
    deploy = Evidence("event:shipping:deploy:1750001226", "deploy v2", -6.0)
    assert _expr(deploy) == (
        'count(events("shipping", kind="deploy")[window.start - 15m .. window.end]) > 0'
    )
    statement = (
        "checkout: after 'c.s.CheckoutImpl#58', 'c.s.CheckoutImpl#61' followed 518/518 times "
        "(100%) fault-free but 101/294 (34%) during the incident"
    )
    code = Evidence("code:checkout:c.s.CheckoutImpl#58_c.s.CheckoutImpl#61", statement, 0.34, 1.0)
    assert _expr(code) == (
        'count(logs("checkout", message~"c.s.CheckoutImpl#61")) < 0.67 * '
        'count(logs("checkout", message~"c.s.CheckoutImpl#58"))'
    )
    spans = statement.replace("c.s.CheckoutImpl#58", "-> call email.Send")
    assert _expr(Evidence("code:checkout:a_b", spans, 0.34, 1.0)) is None
    assert _expr(Evidence("causal:checkout:x", "x", 1.0)) is None
