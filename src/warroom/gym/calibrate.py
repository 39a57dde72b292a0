"""Fit the confidence calibration from gym runs (the JSON of `warroom gym bench --json`).

    table = calibrate([Path("hard-100.json"), Path("standard-100.json")])
    table.save(Path("src/warroom/causal/calibration.json"))

Each run file holds one planner's run or several (an ablation: {planner: run}); every scored
case contributes its raw confidence and whether it named the culprit first. Fit on some seeds,
then check the reliability on seeds never fitted on (BENCHMARKS.md does both).
"""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from warroom.causal.calibration import CalibrationTable, fit
from warroom.errors import InputError


def calibrate(runs: Sequence[Path]) -> CalibrationTable:
    """One map per planner found in the runs, with where its data came from."""
    raw: dict[str, list[float]] = defaultdict(list)
    right: dict[str, list[bool]] = defaultdict(list)
    sources = []
    for path in runs:
        for planner, run in _planner_runs(path):
            sources.append(f"{path.name}: {planner} {run['suite']} seeds {_seeds(run)}")
            for case in run["cases"]:
                if case.get("error") or case.get("raw_confidence") is None:
                    continue
                raw[planner].append(float(case["raw_confidence"]))
                right[planner].append(case["truth_service"] is not None and case["rank"] == 1)
    if not raw:
        raise InputError("no scored case with a raw confidence in " + ", ".join(map(str, runs)))
    maps = {planner: fit(raw[planner], right[planner]) for planner in sorted(raw)}
    provenance = {"runs": "; ".join(sources), "commit": _commit()}
    return CalibrationTable(maps, provenance)


def _planner_runs(path: Path) -> list[tuple[str, dict[str, Any]]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read a gym run ({err})") from err
    if not isinstance(document, dict):
        raise InputError(f"{path}: not a gym run (expected a JSON object)")
    runs = {document["summary"]["planner"]: document} if "cases" in document else document
    out = []
    for planner, run in runs.items():
        if not isinstance(run, dict) or "cases" not in run or "suite" not in run:
            raise InputError(f"{path}: {planner!r} is not a gym run (no 'cases')")
        out.append((str(planner), run))
    return out


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
