"""The RCAEval benchmark: every case under a root, scored as the RCAEval paper scores them.

Totals are service-level AC@1, AC@3, AC@5 and Avg@5 (the mean of AC@1..AC@5) per fault type
and pooled, the same for the fine-grained indicator (RCAEval's `<service>_<metric>` answer:
cpu, mem, diskio, latency, socket), mean seconds per case, and the calibration of the
confidence. With `baseline="baro"`, RCAEval's BARO ranks the same metrics of each case.

Services are compared as named: a database deployment (carts-db) is its own candidate, not
its service's (RCAEval's main.py strips "-db" before comparing).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from warroom.bench.rca import (
    TOP_K,
    BenchResult,
    CaseResult,
    Progress,
    _calibration,
    _drop,
    _failed,
    _metric_grid,
    _score,
)
from warroom.bench.scoring import accuracy_at
from warroom.datasets import rcaeval
from warroom.datasets.base import LoadedCase
from warroom.errors import DatasetError, WarroomError
from warroom.model import TimeRange
from warroom.pipeline import METRIC_HISTORY_S
from warroom.planner import DEFAULT as DEFAULT_PLANNER

KS = (1, 3, 5)


def run_rcaeval(
    root: Path,
    baseline: str | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
    drop: tuple[str, ...] = (),
    planner: str = DEFAULT_PLANNER,
) -> BenchResult:
    """Every RCAEval case under root (the first `limit`), investigated and scored."""
    results = []
    for case in rcaeval.list_cases(root)[:limit]:
        if progress:
            progress(case.case_id)
        results.append(_run_case(case, baseline, drop, planner))
    totals = rcaeval_totals(results)
    if drop:
        totals["dropped_modalities"] = list(drop)
    totals["planner"] = planner
    return BenchResult("rcaeval", str(root), tuple(results), baseline, totals)


def _run_case(
    case: rcaeval.RcaevalCase, baseline: str | None, drop: tuple[str, ...], planner: str
) -> CaseResult:
    """Load, investigate and score one case; a case that cannot be read is a failed result."""
    started = time.perf_counter()
    try:
        loaded = rcaeval.load_case(case)
        try:
            if loaded.spec.truth is None:
                raise DatasetError(f"{case.case_id}: no <service>_<fault> folder name, no truth")
            _drop(loaded, drop)
            base_top = baro_services(loaded) if baseline == "baro" else ()
            return _score(loaded, case.group, started, base_top, planner)
        finally:
            loaded.store.close()
    except WarroomError as err:
        return _failed(case.case_id, case.group, err, started)


def baro_services(loaded: LoadedCase) -> tuple[str, ...]:
    """BARO's top services on the metrics our pipeline sees: the hour before and the window.

    A column is `<service>_<metric>` with a service that holds no `_` (RCAEval's own rule), so
    its service is the part before the first `_`; bench/baro's last-`_` rule would cut metric
    names such as container_cpu_usage_seconds_total apart.
    """
    from warroom.bench.baro import baro_rank_columns

    window = loaded.spec.incident.window
    times, columns = _metric_grid(
        loaded, TimeRange(window.start - METRIC_HISTORY_S, window.end), None
    )
    if not columns:
        return ()
    ranked = baro_rank_columns(times, columns, window.start)
    return tuple(dict.fromkeys(c.split("_", 1)[0] for c in ranked))[:TOP_K]


def rcaeval_totals(results: Sequence[CaseResult]) -> dict[str, Any]:
    """Pooled and per-fault-type AC@k and Avg@5, seconds, and calibration."""
    scored = [r for r in results if r.error is None]
    totals: dict[str, Any] = {"cases": len(results), "failed": len(results) - len(scored)}
    totals.update(accuracy_row(scored))
    totals["mean_seconds"] = (
        round(float(np.mean([r.seconds for r in results])), 3) if results else 0.0
    )
    totals["by_fault_type"] = _grouped(scored, lambda r: r.truth_fault)
    totals["by_group"] = _grouped(scored, lambda r: r.group)
    totals["calibration"] = _calibration(scored)
    return totals


def accuracy_row(results: Sequence[CaseResult]) -> dict[str, Any]:
    """AC@1/3/5 and Avg@5 of the services (and indicators, and the baseline when it ran)."""
    row: dict[str, Any] = {"cases": len(results)}
    row.update(_ac("", [r.rank for r in results]))
    if any(r.truth_indicator for r in results):
        row.update(_ac("indicator_", [r.inner_rank for r in results if r.truth_indicator]))
    if any(r.baseline_top for r in results):
        row.update(_ac("baseline_", [r.baseline_rank for r in results]))
    return row


def _ac(prefix: str, ranks: list[int | None]) -> dict[str, float]:
    """AC@1, AC@3, AC@5 and Avg@5 (the mean of AC@1..AC@5, as RCAEval's Evaluator)."""
    row = {f"{prefix}AC@{k}": round(accuracy_at(ranks, k), 4) for k in KS}
    row[f"{prefix}Avg@5"] = round(float(np.mean([accuracy_at(ranks, k) for k in range(1, 6)])), 4)
    return row


def _grouped(
    results: Sequence[CaseResult], key: Callable[[CaseResult], str]
) -> dict[str, dict[str, Any]]:
    grouped: dict[str, list[CaseResult]] = defaultdict(list)
    for r in results:
        grouped[key(r)].append(r)
    return {name: accuracy_row(items) for name, items in sorted(grouped.items())}
