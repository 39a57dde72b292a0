"""RCA benchmarks over public corpora: every case found under a root, scored against its truth.

Each case is loaded into its own store, investigated, and scored; BARO (RCAEval) can run on the
same case and the same metric window as a side-by-side baseline.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from warroom.bench.inject import inject_network_delay, pick_target
from warroom.bench.scoring import accuracy_at, indicator_matches, rank_of
from warroom.causal.calibration import brier, expected_calibration_error
from warroom.datasets import nezha, petshop
from warroom.datasets.base import GroundTruth, LoadedCase
from warroom.errors import WarroomError
from warroom.model import TimeRange
from warroom.pipeline import METRIC_HISTORY_S, SLO_PREFIX
from warroom.planner import DEFAULT as DEFAULT_PLANNER
from warroom.planner import investigate

TOP_K = 5


@dataclass(frozen=True)
class CaseResult:
    """One case: the truth, our top-5 (service, indicator), ranks, and time spent."""

    id: str
    group: str  # what the totals are broken down by (day, or scenario/target metric)
    truth_service: str
    truth_fault: str
    truth_indicator: str | None
    top: tuple[tuple[str, str], ...]
    rank: int | None
    inner_rank: int | None  # rank of (service, indicator) when the truth names an indicator
    seconds: float
    baseline_top: tuple[str, ...] = ()
    baseline_rank: int | None = None
    error: str | None = None
    confidence: float = 0.0  # calibrated (causal/calibration.py)
    raw_confidence: float | None = None  # the planner's own score, before calibration


@dataclass(frozen=True)
class BenchResult:
    """All cases of a run plus their totals."""

    dataset: str
    root: str
    cases: tuple[CaseResult, ...]
    baseline: str | None = None
    totals: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain data for --json."""
        return {
            "dataset": self.dataset,
            "root": self.root,
            "baseline": self.baseline,
            "totals": self.totals,
            "cases": [asdict(c) for c in self.cases],
        }


def _inner_rank(
    truth_service: str, truth_indicator: str | None, top: tuple[tuple[str, str], ...]
) -> int | None:
    if truth_indicator is None:
        return None
    for i, (service, indicator) in enumerate(top, start=1):
        if service == truth_service and indicator_matches(truth_indicator, indicator):
            return i
    return None


def _score(
    loaded: LoadedCase,
    group: str,
    started: float,
    baseline_top: tuple[str, ...],
    planner: str = DEFAULT_PLANNER,
) -> CaseResult:
    spec = loaded.spec
    inv = investigate(
        spec.incident,
        loaded.store,
        spec.baseline,
        spec.graph_edges,
        TOP_K,
        planner=planner,
        references=spec.references,
    )
    top = tuple((c.service, c.indicator) for c in inv.report.candidates)
    truth = spec.truth
    assert truth is not None
    return CaseResult(
        id=spec.id,
        group=group,
        truth_service=truth.service,
        truth_fault=truth.fault_type,
        truth_indicator=truth.indicator,
        top=top,
        rank=rank_of(truth.service, [s for s, _ in top]),
        inner_rank=_inner_rank(truth.service, truth.indicator, top),
        seconds=round(time.perf_counter() - started, 3),
        baseline_top=baseline_top,
        baseline_rank=rank_of(truth.service, baseline_top) if baseline_top else None,
        confidence=inv.report.confidence,
        raw_confidence=inv.report.raw_confidence,
    )


def _failed(case_id: str, group: str, err: Exception, started: float) -> CaseResult:
    return CaseResult(
        case_id,
        group,
        "",
        "",
        None,
        (),
        None,
        None,
        round(time.perf_counter() - started, 3),
        error=str(err),
    )


Progress = Callable[[str], None]


DROPPABLE = {"logs": "logs", "traces": "spans", "metrics": "metrics"}


def _drop(loaded: LoadedCase, drop: tuple[str, ...]) -> None:
    """Ablation: forget whole modalities, as if the data had never had them."""
    for modality in drop:
        loaded.store.execute(f"DELETE FROM {DROPPABLE[modality]}")


def run_nezha(
    root: Path,
    baseline: str | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
    drop: tuple[str, ...] = (),
    planner: str = DEFAULT_PLANNER,
    inject_delay_ms: float = 0.0,
) -> BenchResult:
    """Every fault of every day under root (with inject_delay_ms: the semi-synthetic check of
    bench/inject.py, scored on the component whose network was delayed)."""
    faults = nezha.list_faults(root)[:limit]
    results = []
    for index, fault in enumerate(faults):
        if progress:
            progress(fault.case_id)
        started = time.perf_counter()
        try:
            loaded = nezha.load_case(root, fault)
            _drop(loaded, drop)
            if inject_delay_ms > 0:
                loaded = _with_injected_delay(loaded, inject_delay_ms / 1000.0, index)
            base_top = _baro_top(loaded) if baseline == "baro" else ()
            results.append(_score(loaded, fault.day, started, base_top, planner))
            loaded.store.close()
        except WarroomError as err:
            results.append(_failed(fault.case_id, fault.day, err, started))
    totals = _nezha_totals(results)
    if drop:
        totals["dropped_modalities"] = list(drop)
    if inject_delay_ms > 0:
        totals["injected_delay_ms"] = inject_delay_ms
    totals["planner"] = planner
    return BenchResult("nezha", str(root), tuple(results), baseline, totals)


def _with_injected_delay(loaded: LoadedCase, delay_s: float, seed: int) -> LoadedCase:
    """The case with a delay injected on one busy component other than its real culprit; the
    truth becomes that component (its real fault stays in the data, a second suspect)."""
    spec = loaded.spec
    window = spec.incident.window
    real = spec.truth.service if spec.truth else ""
    target = pick_target(loaded.store.spans(window), real, seed)
    if target is None:
        raise WarroomError(f"{spec.id}: no component busy enough to inject a delay on")
    inject_network_delay(loaded.store, window, target, delay_s)
    truth = GroundTruth(target, "network-delay (injected)")
    return replace(loaded, spec=replace(spec, truth=truth))


def run_petshop(
    root: Path,
    baseline: str | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
    drop: tuple[str, ...] = (),
    planner: str = DEFAULT_PLANNER,
) -> BenchResult:
    """Every issue of every scenario and split under root."""
    results = []
    for issue in petshop.list_issues(root)[:limit]:
        if progress:
            progress(issue.case_id)
        started = time.perf_counter()
        group = issue.scenario_dir.name
        try:
            loaded = petshop.load_case(issue)
            _drop(loaded, drop)
            group = f"{issue.scenario_dir.name}/{loaded.spec.incident.symptom_metric}"
            base_top = _baro_top(loaded, petshop_mode=True) if baseline == "baro" else ()
            results.append(_score(loaded, group, started, base_top, planner))
            loaded.store.close()
        except WarroomError as err:
            results.append(_failed(issue.case_id, group, err, started))
    totals = _petshop_totals(results)
    totals["planner"] = planner
    return BenchResult("petshop", str(root), tuple(results), baseline, totals)


def _nezha_totals(results: list[CaseResult]) -> dict[str, Any]:
    scored = [r for r in results if r.error is None]
    ranks = [r.rank for r in scored]
    inner = [r.inner_rank for r in scored]
    totals: dict[str, Any] = {"cases": len(results), "failed": len(results) - len(scored)}
    for k in (1, 3, 5):
        totals[f"AS@{k}"] = round(accuracy_at(ranks, k), 4)
    for k in (1, 3, 5):
        totals[f"AIS@{k}"] = round(accuracy_at(inner, k), 4)
    totals.update(_baseline_totals(scored, (1, 3, 5), "AS"))
    totals["mean_seconds"] = (
        round(float(np.mean([r.seconds for r in results])), 3) if results else 0.0
    )
    totals["by_fault_type"] = _breakdown(scored, lambda r: r.truth_fault)
    totals["by_group"] = _breakdown(scored, lambda r: r.group)
    totals["calibration"] = _calibration(scored)
    return totals


def _petshop_totals(results: list[CaseResult]) -> dict[str, Any]:
    scored = [r for r in results if r.error is None]
    groups = _breakdown(scored, lambda r: r.group)
    totals: dict[str, Any] = {"cases": len(results), "failed": len(results) - len(scored)}
    totals["by_group"] = groups
    totals["mean_top1_over_groups"] = (
        round(float(np.mean([g["top1"] for g in groups.values()])), 4) if groups else 0.0
    )
    totals["mean_top3_over_groups"] = (
        round(float(np.mean([g["top3"] for g in groups.values()])), 4) if groups else 0.0
    )
    if any(r.baseline_top for r in scored):
        totals["baseline_mean_top1_over_groups"] = round(
            float(np.mean([g.get("baseline_top1", 0.0) for g in groups.values()])), 4
        )
    totals["mean_seconds"] = (
        round(float(np.mean([r.seconds for r in results])), 3) if results else 0.0
    )
    totals["calibration"] = _calibration(scored)
    return totals


def _calibration(results: list[CaseResult]) -> dict[str, float | None]:
    """Does the gym-fitted confidence hold on these cases? Its mean, ECE and Brier score."""
    confidence = [r.confidence for r in results]
    right = [r.rank == 1 for r in results]
    return {
        "mean_confidence": round(float(np.mean(confidence)), 4) if results else None,
        "ece": expected_calibration_error(confidence, right) if results else None,
        "brier": brier(confidence, right) if results else None,
    }


def _breakdown(
    results: list[CaseResult], key: Callable[[CaseResult], str]
) -> dict[str, dict[str, Any]]:
    grouped: dict[str, list[CaseResult]] = defaultdict(list)
    for r in results:
        grouped[key(r)].append(r)
    out = {}
    for name, items in sorted(grouped.items()):
        ranks = [r.rank for r in items]
        row: dict[str, Any] = {
            "cases": len(items),
            "top1": round(accuracy_at(ranks, 1), 4),
            "top3": round(accuracy_at(ranks, 3), 4),
        }
        if any(r.baseline_top for r in items):
            base = [r.baseline_rank for r in items]
            row["baseline_top1"] = round(accuracy_at(base, 1), 4)
            row["baseline_top3"] = round(accuracy_at(base, 3), 4)
        out[name] = row
    return out


def _baseline_totals(
    results: list[CaseResult], ks: tuple[int, ...], prefix: str
) -> dict[str, float]:
    if not any(r.baseline_top for r in results):
        return {}
    ranks = [r.baseline_rank for r in results]
    return {f"baseline_{prefix}@{k}": round(accuracy_at(ranks, k), 4) for k in ks}


def _baro_top(loaded: LoadedCase, petshop_mode: bool = False) -> tuple[str, ...]:
    """BARO's top services on the same metrics our pipeline sees (lazy import of RCAEval)."""
    from warroom.bench.baro import baro_rank

    spec = loaded.spec
    window = spec.incident.window
    if petshop_mode and spec.baseline is not None:
        normal = _metric_grid(loaded, spec.baseline, spec.incident.symptom_metric)
        abnormal = _metric_grid(loaded, window, spec.incident.symptom_metric)
        times, columns, anomaly = _restamp(normal, abnormal)
    else:
        history = TimeRange(window.start - METRIC_HISTORY_S, window.end)
        times, columns = _metric_grid(loaded, history, None)
        anomaly = window.start
    if not columns:
        return ()
    return tuple(baro_rank(times, columns, anomaly)[:TOP_K])


Grid = tuple[list[float], dict[str, list[float]]]


def _metric_grid(loaded: LoadedCase, window: TimeRange, name: str | None) -> Grid:
    """Metrics on a common time grid (rounded to the sampling step), one column per series."""
    series = [
        s
        for s in loaded.store.metric_series(window, name=name)
        if not s.service.startswith(SLO_PREFIX)
    ]
    if not series:
        return [], {}
    step = (
        float(np.median(np.diff(np.unique(np.concatenate([s.times for s in series])))))
        if len(series[0]) > 1
        else 60.0
    )
    step = step or 60.0
    grid = sorted({round(t / step) * step for s in series for t in s.times})
    index = {t: i for i, t in enumerate(grid)}
    columns: dict[str, list[float]] = {}
    for s in series:
        column = [float("nan")] * len(grid)
        for t, v in zip(s.times, s.values, strict=True):
            column[index[round(t / step) * step]] = float(v)
        columns[f"{s.service}_{s.name}"] = column
    return grid, columns


def _restamp(normal: Grid, abnormal: Grid) -> tuple[list[float], dict[str, list[float]], float]:
    """Put fault-free rows just before the issue rows (PetShop's are months apart)."""
    n_times, n_cols = normal
    a_times, a_cols = abnormal
    if not a_times:
        return [], {}, 0.0
    step = (a_times[1] - a_times[0]) if len(a_times) > 1 else 300.0
    start = a_times[0] - step * len(n_times)
    times = [start + i * step for i in range(len(n_times))] + list(a_times)
    names = set(n_cols) | set(a_cols)
    nan_n, nan_a = [float("nan")] * len(n_times), [float("nan")] * len(a_times)
    columns = {c: n_cols.get(c, nan_n) + a_cols.get(c, nan_a) for c in sorted(names)}
    return times, columns, a_times[0]


def iter_groups(result: BenchResult) -> Iterator[tuple[str, dict[str, Any]]]:
    """(group, totals) rows for printing."""
    yield from result.totals.get("by_group", {}).items()
