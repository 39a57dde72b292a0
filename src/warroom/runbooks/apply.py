"""Run a runbook's checks on a new incident: which hold, which do not, which had no data.

    results = run_checks(runbook, store, incident, baseline)
    verdict = judge(runbook, results)
    verdict.supports  # True: the runbook's culprit hypothesis is backed by this incident's data

    for match in reuse(RunbookStore(path), incident, store, baseline, edges):  # the director
        match.runbook.signature.culprit_service, match.verdict.supports, match.results

A check is a DSL expression. When it is a comparison, both sides are evaluated and kept (the
measured value and the threshold), so a reader sees how close a failed check came. A check that
errors or finds no data is reported as such and never stops the others.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import duckdb

from warroom.dsl.interpreter import Context, evidence_id, run
from warroom.dsl.parser import parse
from warroom.dsl.syntax import COMPARISONS, Binary, unparse
from warroom.dsl.values import NoData, Number, Truth, Value, compare, describe
from warroom.errors import WarroomError
from warroom.model import Evidence, Incident, TimeRange
from warroom.runbooks.model import Check, Runbook
from warroom.runbooks.store import RunbookStore
from warroom.telemetry.store import TelemetryStore

Status = Literal["pass", "fail", "no-data", "error"]
SUPPORT = 0.5  # share of decided culprit checks that must pass for a runbook to apply


@dataclass(frozen=True)
class CheckResult:
    """One check on one incident: its status, the measured value and threshold, the evidence."""

    name: str
    expression: str
    status: Status
    detail: str
    value: float | None = None  # the left side of a comparison (what was measured)
    threshold: float | None = None  # the right side
    evidence: Evidence | None = None  # for a report: its source is the expression
    about_culprit: bool = False


@dataclass(frozen=True)
class Verdict:
    """How a runbook fared on an incident, overall and on the checks of its culprit."""

    runbook_id: str
    passed: int
    failed: int
    no_data: int
    errors: int
    culprit_passed: int
    culprit_decided: int
    primary: Status | None  # the first check: the signature of the fault (None: no checks)

    @property
    def support(self) -> float | None:
        """Share of decided culprit checks that passed (None when none could be decided)."""
        return self.culprit_passed / self.culprit_decided if self.culprit_decided else None

    @property
    def supports(self) -> bool:
        """True when the first check holds and the culprit's own checks mostly hold.

        Symptoms along the path (a caller's errors) hold for many faults; the first check is
        the fault's own mark (the pool gauge, the config event), so it must hold too."""
        return self.primary == "pass" and self.support is not None and self.support >= SUPPORT


def run_checks(
    runbook: Runbook, store: TelemetryStore, incident: Incident, baseline: TimeRange | None
) -> list[CheckResult]:
    """Evaluate every check of the runbook against the incident's telemetry."""
    context = Context.of(store, incident, baseline)
    culprit = runbook.signature.culprit_service
    return [_run_one(check, context, culprit) for check in runbook.checks]


def judge(runbook: Runbook, results: list[CheckResult]) -> Verdict:
    """Count the results; the culprit's checks decide whether the runbook supports its culprit."""
    count = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "no-data", "error")}
    own = [r for r in results if r.about_culprit and r.status in ("pass", "fail")]
    return Verdict(
        runbook_id=runbook.id,
        passed=count["pass"],
        failed=count["fail"],
        no_data=count["no-data"],
        errors=count["error"],
        culprit_passed=sum(r.status == "pass" for r in own),
        culprit_decided=len(own),
        primary=results[0].status if results else None,
    )


def _run_one(check: Check, context: Context, culprit: str) -> CheckResult:
    try:
        about = culprit in check.services
        tree = parse(check.expression)
        text = unparse(tree)
        if isinstance(tree, Binary) and tree.op in COMPARISONS:
            left, right = run(tree.left, context), run(tree.right, context)
            outcome = compare(tree.op, left.value, right.value, tree.at)
            sides = f"{describe(left.value)} {tree.op} {describe(right.value)}"
            result = _result(check, text, outcome, (left.value, right.value), sides)
        else:
            result = _result(check, text, run(tree, context).value, None, "")
    # A runbook is text a person may have edited, run against live data: one bad check must
    # not end the investigation that reuses it.
    except (WarroomError, duckdb.Error, ArithmeticError, ValueError) as err:
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        return CheckResult(check.name, check.expression, "error", first_line)
    return _with_evidence(result, context, about)


def _result(
    check: Check, text: str, outcome: Value, pair: tuple[Value, Value] | None, sides: str
) -> CheckResult:
    value, threshold = (_number(pair[0]), _number(pair[1])) if pair else (None, None)
    if isinstance(outcome, NoData):
        return CheckResult(check.name, text, "no-data", outcome.reason, value, threshold)
    if not isinstance(outcome, Truth):
        detail = f"a check must be true or false; this one is {describe(outcome)}"
        return CheckResult(check.name, text, "error", detail, value, threshold)
    status: Status = "pass" if outcome.value else "fail"
    return CheckResult(check.name, text, status, sides or describe(outcome), value, threshold)


def _number(value: Value | None) -> float | None:
    if isinstance(value, Number) and math.isfinite(value.value):
        return value.value
    return None


def _with_evidence(result: CheckResult, context: Context, about: bool) -> CheckResult:
    evidence = None
    if result.status in ("pass", "fail"):
        verdict = "holds" if result.status == "pass" else "does not hold"
        evidence = Evidence(
            id=evidence_id(result.expression, context),
            statement=f"runbook check '{result.name}' {verdict}: {result.detail}",
            value=result.value if result.value is not None else float(result.status == "pass"),
            baseline=result.threshold,
            source=result.expression,
        )
    return CheckResult(
        result.name,
        result.expression,
        result.status,
        result.detail,
        result.value,
        result.threshold,
        evidence,
        about,
    )


@dataclass(frozen=True)
class Reuse:
    """A stored runbook that fits the alert, and how its checks fared on this incident."""

    runbook: Runbook
    similarity: float
    results: tuple[CheckResult, ...]
    verdict: Verdict


def reuse(
    book: RunbookStore,
    incident: Incident,
    store: TelemetryStore,
    baseline: TimeRange | None,
    edges: Sequence[tuple[str, str]] = (),
    limit: int = 3,
) -> list[Reuse]:
    """The most similar stored runbooks with their checks run on this incident, best first.

    The director's entry point: a runbook whose verdict `supports` backs the hypothesis
    (signature.culprit_service, signature.fault_type); its passed checks are evidence."""
    matches = book.similar(incident, services=store.services(), edges=edges, limit=limit)
    out = []
    for runbook, score in matches:
        results = tuple(run_checks(runbook, store, incident, baseline))
        out.append(Reuse(runbook, score, results, judge(runbook, list(results))))
    out.sort(key=lambda r: (not r.verdict.supports, -r.similarity))
    return out
