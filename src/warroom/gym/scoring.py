"""Scoring gym cases: one report against the known fault, then totals over many cases.

Accuracy measures count fault cases only; false alarms count no-fault controls only. A case
that failed (the generator or the investigation raised) is left out of every measure and counted
under "failed", as the public-corpus benchmarks do.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from warroom.bench.scoring import accuracy_at, rank_of
from warroom.causal.calibration import brier, expected_calibration_error
from warroom.gym.case import GymCase
from warroom.model import Report
from warroom.report.render import CONFIDENCE_WORDS, INCONCLUSIVE_BELOW

# Below INCONCLUSIVE_BELOW a report is "inconclusive" (report.render.confidence_label): it names
# no culprit, so on a no-fault case it is the right answer, not a false alarm.
TOP_K = 5
T = TypeVar("T")
FAULT_TYPE_NOTE = (
    "fault_type: share of all fault cases whose top-1 candidate is the culprit with the "
    "injected fault type (a miss of the culprit counts as a wrong fault type)"
)


@dataclass(frozen=True)
class CaseScore:
    """How one report did against its case's truth."""

    case_id: str
    topology: str
    fault: str
    seed: int
    truth_service: str | None
    top: tuple[tuple[str, str, str], ...]  # (service, indicator, fault_type), best first
    rank: int | None  # 1-based rank of the culprit among distinct services; None: absent/control
    fault_type_ok: bool  # top-1 is the culprit and names the injected fault type
    path_ok: bool  # top-1 propagation path is the true path (or one as short: same_route)
    false_alarm: bool | None  # no-fault cases only: a culprit named, not inconclusive
    seconds: float
    confidence: float = 0.0
    raw_confidence: float | None = None  # before calibration (causal/calibration.py)
    variant: str = ""  # non-default knobs, so controls of one suite stay apart
    error: str | None = None

    @property
    def is_control(self) -> bool:
        """True for a no-fault control case."""
        return self.truth_service is None


def same_route(
    named: Sequence[str], truth: Sequence[str], edges: Sequence[tuple[str, str]]
) -> bool:
    """Whether the named path is the true one, or another as short between the same two
    services along the topology's calls: where two callers sit at the same distance from the
    alert, the failure travels through both, and which one the truth lists is only the order
    its graph was built in."""
    if tuple(named) == tuple(truth):
        return True
    calls = set(edges)
    return (
        len(named) == len(truth) > 1
        and named[0] == truth[0]
        and named[-1] == truth[-1]
        and all((caller, callee) in calls for callee, caller in zip(named, named[1:], strict=False))
    )


def score_case(case: GymCase, report: Report, seconds: float) -> CaseScore:
    """Score one report against the truth its case keeps."""
    truth = case.truth
    top = tuple((c.service, c.indicator, c.fault_type) for c in report.candidates[:TOP_K])
    first = report.culprit
    if truth.service is None:
        alarm = first is not None and report.confidence >= INCONCLUSIVE_BELOW
        rank, type_ok, path_ok, false_alarm = None, False, False, alarm
    else:
        rank = rank_of(truth.service, [c.service for c in report.candidates])
        hit = first is not None and first.service == truth.service
        type_ok = hit and first is not None and first.fault_type == truth.fault_type
        path_ok = first is not None and same_route(first.path, truth.path, case.graph_edges)
        false_alarm = None
    return CaseScore(
        case_id=case.id,
        topology=case.topology,
        fault=case.fault,
        seed=case.seed,
        truth_service=truth.service,
        top=top,
        rank=rank,
        fault_type_ok=type_ok,
        path_ok=path_ok,
        false_alarm=false_alarm,
        seconds=round(seconds, 3),
        confidence=report.confidence,
        raw_confidence=report.raw_confidence,
    )


def failed_score(
    topology: str, fault: str, seed: int, err: Exception, seconds: float, variant: str = ""
) -> CaseScore:
    """A case that could not be generated or investigated, with the reason."""
    return CaseScore(
        case_id=f"{topology}/{fault}/{seed}",
        topology=topology,
        fault=fault,
        seed=seed,
        truth_service=None,
        top=(),
        rank=None,
        fault_type_ok=False,
        path_ok=False,
        false_alarm=None,
        seconds=round(seconds, 3),
        variant=variant,
        error=f"{type(err).__name__}: {err}",
    )


def summarize(scores: Sequence[CaseScore]) -> dict[str, Any]:
    """Pooled measures plus the same measures per topology and per fault kind."""
    summary = _measures(scores)
    summary["by_topology"] = _grouped(scores, lambda s: s.topology)
    summary["by_fault"] = _grouped(scores, lambda s: s.fault)
    summary["reliability"] = reliability(scores)
    summary["calibration"] = calibration_error(scores)
    summary["notes"] = [FAULT_TYPE_NOTE, "failed cases are left out of every measure"]
    return summary


# Confidence bins of the reliability table: the report's words (inconclusive, low, medium, high).
_EDGES = sorted(at_least for at_least, _ in CONFIDENCE_WORDS)
CONFIDENCE_BINS = tuple(zip([0.0, *_EDGES], [*_EDGES, 1.01], strict=True))


def reliability(scores: Sequence[CaseScore]) -> list[dict[str, Any]]:
    """Per confidence bin: how often the named culprit was right (a control's never is).

    A calibrated confidence has its bin's accuracy inside the bin: of the reports saying 0.7,
    about 70 % name the culprit."""
    rows = []
    for low, high in CONFIDENCE_BINS:
        inside = [s for s in scores if s.error is None and low <= s.confidence < high]
        right = sum(1 for s in inside if named_right(s))
        rows.append(
            {
                "confidence": f"[{low:g}, {min(high, 1.0):g}{']' if high > 1 else ')'}",
                "reports": len(inside),
                "culprit_right": round(right / len(inside), 4) if inside else None,
                "mean_confidence": round(sum(s.confidence for s in inside) / len(inside), 4)
                if inside
                else None,
            }
        )
    return rows


def named_right(score: CaseScore) -> bool:
    """Whether the report named the culprit first (a control's never is: there is none)."""
    return not score.is_control and score.rank == 1


def calibration_error(scores: Sequence[CaseScore]) -> dict[str, float | None]:
    """ECE and Brier score of the reported confidence (and of the raw score, when known)."""
    done = [s for s in scores if s.error is None]
    right = [named_right(s) for s in done]
    out: dict[str, float | None] = {
        "ece": expected_calibration_error([s.confidence for s in done], right),
        "brier": brier([s.confidence for s in done], right),
        "ece_raw": None,
        "brier_raw": None,
    }
    if done and all(s.raw_confidence is not None for s in done):
        raw = [float(s.raw_confidence or 0.0) for s in done]
        out["ece_raw"], out["brier_raw"] = expected_calibration_error(raw, right), brier(raw, right)
    return out


def _grouped(
    scores: Sequence[CaseScore], key: Callable[[CaseScore], str]
) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[CaseScore]] = defaultdict(list)
    for s in scores:
        groups[key(s)].append(s)
    return {name: _measures(items) for name, items in sorted(groups.items())}


def _measures(scores: Sequence[CaseScore]) -> dict[str, Any]:
    """AC@k, Avg@5, fault-type and path accuracy (fault cases), false-alarm rate (controls)."""
    scored = [s for s in scores if s.error is None]
    faults = [s for s in scored if not s.is_control]
    controls = [s for s in scored if s.is_control]
    ranks = [s.rank for s in faults]
    row: dict[str, Any] = {
        "cases": len(scores),
        "failed": len(scores) - len(scored),
        "fault_cases": len(faults),
        "control_cases": len(controls),
    }
    at = {k: accuracy_at(ranks, k) for k in range(1, TOP_K + 1)}
    for k in (1, 3, 5):
        row[f"AC@{k}"] = round(at[k], 4) if ranks else None
    row["Avg@5"] = round(sum(at.values()) / TOP_K, 4) if ranks else None
    row["fault_type"] = _share(faults, lambda xs: sum(s.fault_type_ok for s in xs) / len(xs))
    row["path"] = _share(faults, lambda xs: sum(s.path_ok for s in xs) / len(xs))
    row["false_alarm"] = _share(controls, lambda xs: sum(bool(s.false_alarm) for s in xs) / len(xs))
    seconds = [s.seconds for s in scores]
    row["mean_seconds"] = round(sum(seconds) / len(seconds), 3) if seconds else None
    row["max_seconds"] = round(max(seconds), 3) if seconds else None
    return row


def _share(items: Sequence[T], measure: Callable[[Sequence[T]], float]) -> float | None:
    """A rounded share, or None when there is nothing to measure it over."""
    return round(measure(items), 4) if items else None
