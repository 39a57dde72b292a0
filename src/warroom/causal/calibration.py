"""Calibrated confidence: the planners' raw scores mapped to how often such reports were right.

A planner's raw confidence (strength of the leading anomaly times its margin) orders reports
well but is not a probability: on the gym, reports scoring 0.3 named the culprit ~80 % of the
time. A calibration map, fitted on gym runs, turns the raw score into "the share of reports
like this one that named the right culprit", which is what an SRE reads a confidence as.

    table = CalibrationTable.load()              # the maps shipped with warroom
    p = table.apply("director", raw=0.31)        # -> e.g. 0.82

Fitting is monotone (isotonic regression over quantile bins, scipy's pool-adjacent-violators):
a higher raw score never maps to a lower probability. Bins are smoothed towards 1/2 (a Beta(1,1)
prior) so a small bin of all-right or all-wrong reports does not claim certainty. No-fault
controls count as wrong: naming any culprit for them is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
from scipy.optimize import isotonic_regression

from warroom.errors import InputError

SHIPPED = Path(__file__).with_name("calibration.json")
MIN_PER_BIN = 20  # fewer reports per bin and its share is noise


@dataclass(frozen=True)
class CalibrationMap:
    """A monotone map raw -> probability, linear between knots, flat beyond the ends."""

    raw: tuple[float, ...]  # knot positions, increasing
    probability: tuple[float, ...]  # non-decreasing
    reports: int  # how many reports it was fitted on

    def __post_init__(self) -> None:
        if len(self.raw) != len(self.probability) or not self.raw:
            raise InputError("a calibration map needs as many probabilities as knots, >= 1")
        if any(b < a for a, b in zip(self.raw, self.raw[1:], strict=False)):
            raise InputError("calibration knots must be increasing")
        if any(not 0.0 <= p <= 1.0 for p in self.probability):
            raise InputError("calibrated probabilities must lie in [0, 1]")

    def __call__(self, raw: float) -> float:
        return round(float(np.interp(raw, self.raw, self.probability)), 3)


@dataclass(frozen=True)
class CalibrationTable:
    """One map per planner, and where it came from (command, cases, commit)."""

    maps: dict[str, CalibrationMap]
    provenance: dict[str, str] = field(default_factory=dict)

    def apply(self, planner: str, raw: float) -> float:
        """The calibrated confidence; the raw score itself when the planner has no map."""
        known = self.maps.get(planner)
        return known(raw) if known is not None else raw

    @classmethod
    def load(cls, path: Path = SHIPPED) -> CalibrationTable:
        """Read a table; a missing shipped table is an empty one (raw scores pass through)."""
        if path == SHIPPED and not path.exists():
            return cls({})
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            maps = {
                name: CalibrationMap(tuple(m["raw"]), tuple(m["probability"]), int(m["reports"]))
                for name, m in data["maps"].items()
            }
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise InputError(f"{path}: not a calibration table ({err})") from err
        return cls(maps, {str(k): str(v) for k, v in data.get("provenance", {}).items()})

    def save(self, path: Path) -> None:
        data = {
            "provenance": self.provenance,
            "maps": {name: asdict(m) for name, m in sorted(self.maps.items())},
        }
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


@cache
def shipped_calibration() -> CalibrationTable:
    """The table shipped with warroom (read once per process)."""
    return CalibrationTable.load()


def fit(raw: Sequence[float], right: Sequence[bool], per_bin: int = MIN_PER_BIN) -> CalibrationMap:
    """Fit a monotone map from raw scores and whether each report named the right culprit."""
    if len(raw) != len(right):
        raise InputError("fit needs one outcome per raw score")
    if len(raw) < per_bin:
        raise InputError(f"too few reports to calibrate ({len(raw)} < {per_bin})")
    order = np.argsort(np.asarray(raw, dtype=float), kind="stable")
    scores = np.asarray(raw, dtype=float)[order]
    hits = np.asarray(right, dtype=float)[order]
    bins = _bins(scores, per_bin)
    centers = np.array([scores[b].mean() for b in bins])
    counts = np.array([b.stop - b.start for b in bins], dtype=float)
    shares = (np.array([hits[b].sum() for b in bins]) + 1.0) / (counts + 2.0)
    monotone = isotonic_regression(shares, weights=counts, increasing=True).x
    return CalibrationMap(
        tuple(round(float(c), 4) for c in centers),
        tuple(round(float(p), 4) for p in monotone),
        len(scores),
    )


def _bins(scores: np.ndarray, per_bin: int) -> list[slice]:
    """Consecutive slices of >= per_bin sorted scores; equal scores never straddle two bins
    (a tie must map to one probability)."""
    bins: list[slice] = []
    start = 0
    while start < len(scores):
        end = min(start + per_bin, len(scores))
        while end < len(scores) and scores[end] == scores[end - 1]:
            end += 1
        if len(scores) - end < per_bin:  # too few left for a bin of their own: join this one
            end = len(scores)
        bins.append(slice(start, end))
        start = end
    return bins


def expected_calibration_error(confidence: Sequence[float], right: Sequence[bool]) -> float:
    """ECE over ten equal-width bins: mean |accuracy - mean confidence|, weighted by bin size."""
    conf = np.asarray(confidence, dtype=float)
    hits = np.asarray(right, dtype=float)
    if not len(conf):
        return 0.0
    index = np.minimum((conf * 10).astype(int), 9)
    total = 0.0
    for b in range(10):
        inside = index == b
        if inside.any():
            total += inside.sum() * abs(hits[inside].mean() - conf[inside].mean())
    return round(total / len(conf), 4)


def brier(confidence: Sequence[float], right: Sequence[bool]) -> float:
    """Mean squared gap between confidence and outcome (0 is perfect, 0.25 is a coin)."""
    conf = np.asarray(confidence, dtype=float)
    hits = np.asarray(right, dtype=float)
    return round(float(np.mean((conf - hits) ** 2)), 4) if len(conf) else 0.0
