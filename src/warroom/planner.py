"""Which planner investigates: the causal ranking alone, or the director over it.

    inv = planner.investigate(incident, store, baseline, edges, planner="director")

`ranking` is one pass of experts + causal ranking (pipeline.investigate). `director` takes that
pass's top candidates as hypotheses and has the actors check them (agents/director.py). Both
return a pipeline.Investigation, so every caller (CLI, gym, benchmarks) treats them alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from warroom.causal.calibration import CalibrationTable, shipped_calibration
from warroom.errors import InputError
from warroom.model import Incident, TimeRange
from warroom.pipeline import Investigation
from warroom.pipeline import investigate as first_pass
from warroom.telemetry.store import TelemetryStore

if TYPE_CHECKING:
    from warroom.agents.tracing import Tracer
    from warroom.llm import Router

PLANNERS = ("ranking", "director")
DEFAULT = "director"


def check(planner: str) -> str:
    """The planner name, or a clear error."""
    if planner not in PLANNERS:
        raise InputError(f"unknown planner {planner!r} (known: {', '.join(PLANNERS)})")
    return planner


def investigate(
    incident: Incident,
    store: TelemetryStore,
    baseline: TimeRange | None = None,
    graph_edges: Sequence[tuple[str, str]] = (),
    top_k: int = 5,
    planner: str = DEFAULT,
    runbooks: Path | None = None,
    tracer: Tracer | None = None,
    router: Router | None = None,
    repo: Path | None = None,
    calibration: CalibrationTable | None = None,
    references: Sequence[TimeRange] = (),
) -> Investigation:
    """Investigate with the named planner (the director may consult a runbook folder).

    The report's confidence is calibrated (causal/calibration.py): the share of gym reports
    with the same raw score that named the right culprit; the raw score stays beside it."""
    check(planner)
    found = _planned(
        incident,
        store,
        baseline,
        graph_edges,
        top_k,
        planner,
        runbooks,
        tracer,
        router,
        repo,
        tuple(references),
    )
    return calibrated(found, planner, calibration or shipped_calibration())


def calibrated(found: Investigation, planner: str, table: CalibrationTable) -> Investigation:
    """The investigation with its report's confidence mapped through the planner's map."""
    raw = found.report.confidence
    report = replace(found.report, confidence=table.apply(planner, raw), raw_confidence=raw)
    return replace(found, report=report)


def _planned(
    incident: Incident,
    store: TelemetryStore,
    baseline: TimeRange | None,
    graph_edges: Sequence[tuple[str, str]],
    top_k: int,
    planner: str,
    runbooks: Path | None,
    tracer: Tracer | None,
    router: Router | None,
    repo: Path | None,
    references: tuple[TimeRange, ...] = (),
) -> Investigation:
    with (
        tracer.span("investigate", incident=incident.id, planner=planner)
        if tracer
        else nullcontext()
    ):
        with tracer.span("first-pass") if tracer else nullcontext():
            first = first_pass(incident, store, baseline, graph_edges, top_k, references)
        if planner == "ranking":
            return first
        from warroom.agents.director import direct  # the agents stack loads only when used

        return direct(
            first,
            incident,
            store,
            baseline,
            runbooks=runbooks,
            tracer=tracer,
            router=router,
            repo=repo,
        ).investigation
