"""Fit the confidence calibration from scored runs: gym runs (`warroom gym bench --json`) and
public-data benchmarks (`warroom bench nezha|petshop|rcaeval --json`).

    table = calibrate([Path("hard-100.json"), Path("nezha.json")])
    table.save(Path("src/warroom/causal/calibration.json"))
    check(table, [Path("hard-fresh.json")])     # ECE and Brier on runs never fitted on

Each run file holds one planner's run or several (an ablation: {planner: run}); every scored
case contributes its raw confidence and whether it named the culprit first. The gym alone is
written by the same hands as the ranking and is far kinder than real data: a map fitted on it
alone is over-confident on real systems, so the shipped map pools both. Fit on some runs, then
check the reliability on runs never fitted on (BENCHMARKS.md does both).
"""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from warroom.causal.calibration import (
    CalibrationTable,
    brier,
    expected_calibration_error,
    fit,
)
from warroom.errors import InputError


def calibrate(runs: Sequence[Path]) -> CalibrationTable:
    """One map per planner found in the runs, with where its data came from."""
    raw, right, sources = _outcomes(runs)
    if not raw:
        raise InputError("no scored case with a raw confidence in " + ", ".join(map(str, runs)))
    maps = {planner: fit(raw[planner], right[planner]) for planner in sorted(raw)}
    provenance = {"runs": "; ".join(sources), "commit": _commit()}
    return CalibrationTable(maps, provenance)


def check(table: CalibrationTable, runs: Sequence[Path]) -> dict[str, dict[str, float]]:
    """Per run file and planner: reports, share right, mean calibrated confidence, ECE, Brier."""
    out: dict[str, dict[str, float]] = {}
    for path in runs:
        raw, right, _ = _outcomes([path])
        for planner in sorted(raw):
            confidence = [table.apply(planner, r) for r in raw[planner]]
            out[f"{path.name}: {planner}"] = {
                "reports": len(confidence),
                "right": round(sum(right[planner]) / len(confidence), 4),
                "mean_confidence": round(sum(confidence) / len(confidence), 4),
                "ece": expected_calibration_error(confidence, right[planner]),
                "brier": brier(confidence, right[planner]),
            }
    return out


def _outcomes(
    runs: Sequence[Path],
) -> tuple[dict[str, list[float]], dict[str, list[bool]], list[str]]:
    """Per planner: raw confidences and whether each report named the culprit first."""
    raw: dict[str, list[float]] = defaultdict(list)
    right: dict[str, list[bool]] = defaultdict(list)
    sources = []
    for path in runs:
        for planner, run in _planner_runs(path):
            sources.append(f"{path.name}: {planner} {_describe(run)}")
            for case in run["cases"]:
                if case.get("error") or case.get("raw_confidence") is None:
                    continue
                raw[planner].append(float(case["raw_confidence"]))
                right[planner].append(bool(case.get("truth_service")) and case["rank"] == 1)
    return raw, right, sources


def _planner_runs(path: Path) -> list[tuple[str, dict[str, Any]]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read a run ({err})") from err
    if not isinstance(document, dict):
        raise InputError(f"{path}: not a gym run or benchmark (expected a JSON object)")
    if "dataset" in document and "cases" in document:  # a public-data benchmark
        planner = str(document.get("totals", {}).get("planner", "director"))
        return [(planner, document)]
    runs = {document["summary"]["planner"]: document} if "cases" in document else document
    out = []
    for planner, run in runs.items():
        if not isinstance(run, dict) or "cases" not in run or "suite" not in run:
            raise InputError(f"{path}: {planner!r} is not a gym run (no 'cases')")
        out.append((str(planner), run))
    return out


def _describe(run: dict[str, Any]) -> str:
    if "dataset" in run:
        return f"{run['dataset']} {len(run['cases'])} cases"
    return f"{run['suite']} seeds {_seeds(run)}"


def _seeds(run: dict[str, Any]) -> str:
    first = int(run["seed_offset"])
    return f"{first}..{first + int(run['seeds']) - 1}"


def _commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() or "unknown"
