"""Runbooks: a finished investigation kept as Markdown with DSL checks, reused on the next alert.

    runbook = from_report(report)                    # derive.py: evidence -> checks + remedy
    RunbookStore(Path(".warroom/runbooks")).save(runbook)
    matches = reuse(book, incident, store, baseline, edges)  # similar() + run_checks() + judge()

A runbook's checks are evidence expressions (warroom.dsl) that re-measure what this incident
showed; on a new incident they hold, fail, or have no data, and a runbook whose own checks hold
supports its culprit hypothesis. Nothing here imports the gym: cli.py hands in how to open one.
"""

from __future__ import annotations

from warroom.runbooks.apply import CheckResult, Reuse, Verdict, judge, reuse, run_checks
from warroom.runbooks.derive import from_report
from warroom.runbooks.model import Check, Provenance, Runbook, Signature
from warroom.runbooks.report_json import read_report, report_from_json
from warroom.runbooks.store import DEFAULT_DIR, RunbookStore, similarity

__all__ = [
    "DEFAULT_DIR",
    "Check",
    "CheckResult",
    "Provenance",
    "Reuse",
    "Runbook",
    "RunbookStore",
    "Signature",
    "Verdict",
    "from_report",
    "judge",
    "read_report",
    "report_from_json",
    "reuse",
    "run_checks",
    "similarity",
]
