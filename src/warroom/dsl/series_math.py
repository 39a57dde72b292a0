"""Numbers over metric series for onset(), zscore() and corr(). Pure functions, no I/O.

The robust scale is the metric expert's idea in raw units: MAD x1.4826, floored by half the
standard deviation and by 5 % of the level, so a flat baseline does not make a wobble an onset.
"""

from __future__ import annotations

import numpy as np

from warroom.dsl.catalogue import MAX_LAG_STEPS
from warroom.dsl.values import TIME, NoData, Number, Value
from warroom.model import FloatArray, Series, iso

ONSET_Z = 3.0  # robust sigmas that count as leaving the baseline
RELATIVE_FLOOR = 0.05
MIN_BASELINE_POINTS = 3
MAX_CORR_WORK = 5_000_000  # points x lags one corr() may compare


def robust_scale(values: FloatArray) -> tuple[float, float]:
    """(center, scale) of a baseline sample: median and a floored MAD."""
    center = float(np.median(values))
    mad = float(np.median(np.abs(values - center))) * 1.4826
    floor = max(0.5 * float(np.std(values)), RELATIVE_FLOOR * abs(center), 1e-9)
    return center, max(mad, floor)


def _z(
    test: Series | NoData, base: Series | NoData
) -> tuple[FloatArray, FloatArray, float] | NoData:
    """(times, z-scores, baseline median) of the test series against the baseline series."""
    if isinstance(test, NoData):
        return test
    if isinstance(base, NoData):
        return NoData(f"no baseline: {base.reason}")
    reference = base.values[np.isfinite(base.values)]
    if len(reference) < MIN_BASELINE_POINTS:
        return NoData(f"the baseline has {len(reference)} points (need {MIN_BASELINE_POINTS})")
    center, scale = robust_scale(reference)
    mask = np.isfinite(test.values)
    return test.times[mask], (test.values[mask] - center) / scale, center


def onset(test: Series | NoData, base: Series | NoData) -> Value:
    """First time |z| > ONSET_Z holds on two points running (or on the last point)."""
    scored = _z(test, base)
    if isinstance(scored, NoData):
        return scored
    times, z, center = scored
    out = np.abs(z) > ONSET_Z
    running = out & np.append(out[1:], True)
    hits = np.flatnonzero(running)
    if len(hits) == 0:
        peak = float(np.max(np.abs(z))) if len(z) else 0.0
        return NoData(f"never leaves its baseline (peak |z| {peak:.2g} <= {ONSET_Z:g})")
    first = int(hits[0])
    detail = f"z {z[first]:.1f} against baseline median {center:.4g}"
    return Number(float(times[first]), TIME, detail)


def peak_z(test: Series | NoData, base: Series | NoData) -> Value:
    """The z-score of largest magnitude in the test series (sign kept)."""
    scored = _z(test, base)
    if isinstance(scored, NoData):
        return scored
    times, z, center = scored
    if len(z) == 0:
        return NoData("no finite points in the window")
    i = int(np.argmax(np.abs(z)))
    return Number(float(z[i]), "", f"at {iso(float(times[i]))}, baseline median {center:.4g}")


def correlation(a: Series, b: Series, lag: float) -> Value:
    """Strongest Pearson r of a(t) with b(t + shift), |shift| <= lag; ties go to the least shift."""
    ta, va = _clean(a)
    tb, vb = _clean(b)
    if len(ta) < 3 or len(tb) < 2:
        return NoData("fewer than 3 points to correlate")
    best: tuple[float, float] | None = None
    for shift in _shifts(ta, lag):
        t = ta + shift
        inside = (t >= tb[0]) & (t <= tb[-1])
        if inside.sum() < 3:
            continue
        x, y = va[inside], np.interp(t[inside], tb, vb)
        if np.std(x) == 0 or np.std(y) == 0:
            continue
        r = float(np.corrcoef(x, y)[0, 1])
        if np.isfinite(r) and (best is None or abs(r) > abs(best[0]) + 1e-12):
            best = (r, shift)
    if best is None:
        return NoData("the series do not overlap or one of them is constant")
    r, shift = best
    return Number(r, "", _lag_words(a, b, shift))


def _clean(series: Series) -> tuple[FloatArray, FloatArray]:
    mask = np.isfinite(series.values)
    return series.times[mask], series.values[mask]


def _shifts(times: FloatArray, lag: float) -> list[float]:
    """Shifts to try, smallest magnitude first, spaced by the sampling interval."""
    if lag <= 0:
        return [0.0]
    step = float(np.median(np.diff(times)))
    limit = max(1, min(MAX_LAG_STEPS, MAX_CORR_WORK // max(len(times), 1)))
    steps = int(min(limit, max(1, lag // step))) if step > 0 else limit
    grid = np.linspace(-lag, lag, 2 * steps + 1)
    return sorted((float(s) for s in grid), key=lambda s: (abs(s), s))


def _lag_words(a: Series, b: Series, shift: float) -> str:
    first, second = f"{a.service}/{a.name}", f"{b.service}/{b.name}"
    if abs(shift) < 1e-9:
        return f"at lag 0 s between {first} and {second}"
    leader, follower = (first, second) if shift > 0 else (second, first)
    return f"at lag {shift:+.4g} s: {follower} follows {leader} by {abs(shift):.4g} s"
