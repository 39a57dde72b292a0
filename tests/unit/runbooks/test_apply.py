"""run_checks on generated incidents: the runbook fits its own fault, not another one."""

from __future__ import annotations

from pathlib import Path

from warroom.gym.case import GymCase
from warroom.runbooks import Check, Runbook, RunbookStore, judge, reuse, run_checks

from .conftest import recorded_runbooks


def test_every_check_holds_on_the_incident_it_was_learned_from(
    pool_runbook: Runbook, pool_case: GymCase
) -> None:
    results = run_checks(pool_runbook, pool_case.store, pool_case.incident, pool_case.baseline)
    assert [r.status for r in results] == ["pass"] * len(pool_runbook.checks)
    verdict = judge(pool_runbook, results)
    assert verdict.supports and verdict.support == 1.0
    first = results[0]
    assert first.value is not None and first.threshold is not None
    assert first.value > first.threshold
    assert first.evidence is not None and first.evidence.source == first.expression
    assert first.evidence.id.startswith("dsl-")
    assert first.about_culprit


def test_it_holds_on_the_same_fault_another_day(pool_runbook: Runbook, pool_again: GymCase) -> None:
    results = run_checks(pool_runbook, pool_again.store, pool_again.incident, pool_again.baseline)
    verdict = judge(pool_runbook, results)
    assert verdict.primary == "pass"
    assert verdict.supports
    assert verdict.passed >= len(results) - 1


def test_it_mostly_fails_on_another_fault_of_the_same_database(
    pool_runbook: Runbook, disk_case: GymCase
) -> None:
    results = run_checks(pool_runbook, disk_case.store, disk_case.incident, disk_case.baseline)
    verdict = judge(pool_runbook, results)
    assert verdict.primary == "fail"  # the pool gauge did not move: it was the disk
    assert not verdict.supports
    assert verdict.support is not None and verdict.support < 0.5
    assert verdict.errors == verdict.no_data == 0


def test_runbooks_of_other_faults_do_not_fit_the_pool_incident(pool_again: GymCase) -> None:
    books = recorded_runbooks()
    fits = {
        key
        for key, runbook in books.items()
        if judge(
            runbook,
            run_checks(runbook, pool_again.store, pool_again.incident, pool_again.baseline),
        ).supports
    }
    assert "shop/db-pool-exhaustion/1" in fits
    # Lock contention holds pool connections too; nothing off the database should fit.
    assert fits <= {"shop/db-pool-exhaustion/1", "shop/db-lock-contention/1", "shop/disk-full/1"}


def _with(runbook: Runbook, *checks: Check) -> Runbook:
    return runbook.model_copy(update={"checks": checks})


def test_broken_checks_are_reported_never_raised(pool_runbook: Runbook, pool_case: GymCase) -> None:
    checks = (
        Check(name="missing metric", expression='max(metric("orders-db", "nope")) > 1'),
        Check(name="type error", expression='count(logs("orders-db")) > "many"'),
        Check(name="not a question", expression='count(logs("orders-db"))'),
        Check(name="unparsable", expression="count(logs(orders-db)) > 1"),
        Check(name="ok", expression='error_ratio(spans("orders-db")) > 0.1'),
    )
    results = run_checks(
        _with(pool_runbook, *checks), pool_case.store, pool_case.incident, pool_case.baseline
    )
    assert [r.status for r in results] == ["no-data", "error", "error", "error", "pass"]
    assert "no points" in results[0].detail
    assert "true or false" in results[2].detail
    assert all("\n" not in r.detail for r in results)
    assert all(r.evidence is None for r in results[:4])


def test_reuse_finds_and_confirms_the_stored_runbook(
    tmp_path: Path, pool_runbook: Runbook, pool_again: GymCase
) -> None:
    book = RunbookStore(tmp_path)
    book.save(pool_runbook)
    for key in ("shop/cpu-hog/1", "shop/network-delay/1", "pipeline/queue-consumer-lag/1"):
        book.save(recorded_runbooks()[key])
    case = pool_again
    matches = reuse(book, case.incident, case.store, case.baseline, case.graph_edges)
    assert matches[0].runbook.id == pool_runbook.id
    assert matches[0].verdict.supports
    assert all(not m.verdict.supports for m in matches[1:])
    assert all(m.runbook.signature.fault_type != "queue" for m in matches)
