"""Metric expert: robust baselines, deviation scores and onset times. Pure functions, no I/O.

A series is compared with its own baseline (fault-free data or the pre-incident window) by a
robust z-score: (x - median) / scale, where scale is the MAD (x1.4826) with a floor relative to
the median, so a flat baseline does not turn a small wobble into a huge score.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from warroom.experts.surprise import MAX_Z
from warroom.model import (
    Evidence,
    Finding,
    FloatArray,
    IndicatorKind,
    Modality,
    Series,
    TimeRange,
    iso,
)

# A deviation below this many robust sigmas is ordinary noise.
ONSET_Z = 3.0
# Floor of the scale (log units for non-negative series): a change of ~20 % is at most 1 sigma,
# whatever the baseline variance: smaller shifts are not worth an SRE's attention (the trace
# expert uses the same idea, MIN_RATIO).
ABSOLUTE_FLOOR = 0.2
SMALL_SAMPLE = 5  # baselines with fewer points get a proportionally wider floor
MIN_BASELINE_POINTS = 1  # one point gives a level; the floor then says how little we know
PERSISTENCE_MIN_POINTS = 3
# Specificity against the baseline's own variation (habit): a deviation counts as usual when
# baseline stretches reach this share of it; fewer stretches than this cannot tell.
HABIT_SHARE = 0.5
MIN_HABIT_BLOCKS = 5
HABIT_ID = "habit:"

# Traffic volume (bytes, packets) follows load, so it is a symptom, not a saturated resource.
# So is consumer lag: it grows whenever anything slows consumption (the consumer, or a store
# below it), like latency does.
_SYMPTOM = re.compile(
    r"latency|duration|response|success|availability|error|fail|workload|request|throughput"
    r"|_lag\b|\blag_|consumer.*lag"
    r"|qps|rps|\bops\b|\(ops\)|p50|p90|p95|p99|bytes|packets|syscall",
    re.IGNORECASE,
)
_RESOURCE = re.compile(
    r"cpu|mem|heap|\bgc|disk|\bfs\b|filesystem|syscall|network|net_|bytes|(?<![a-z])io(?![a-z])|"
    r"thread|executor|\bfds?\b|conn|pool|lock|"
    r"queue|lag|cache|evict",
    re.IGNORECASE,
)
_NODE_SCOPE = re.compile(r"^node|_node_|node_", re.IGNORECASE)
# Metrics about the host, not the component: shared by every pod on it, so less specific.
NODE_SCOPE_WEIGHT = 0.5


def indicator_kind(metric: str) -> IndicatorKind:
    """Resource metrics belong to the component; symptom metrics propagate along calls.

    Host-level metrics (node CPU) are shared by every pod on the host, so they tell about the
    neighbourhood, not the component: they count as symptoms.
    """
    if _NODE_SCOPE.search(metric):
        return IndicatorKind.SYMPTOM
    if _SYMPTOM.search(metric) and not re.search(r"cpu|mem", metric, re.IGNORECASE):
        return IndicatorKind.SYMPTOM
    if _RESOURCE.search(metric):
        return IndicatorKind.RESOURCE
    return IndicatorKind.SYMPTOM


def resource_family(metric: str) -> str:
    """A coarse family of a metric name (cpu, memory, disk, network, ...), for fault typing."""
    lowered = metric.lower()
    for family, pattern in (
        ("cpu", r"cpu"),
        ("memory", r"mem|heap|gc|oom"),
        ("disk", r"disk|fs|filesystem|inode"),
        ("network-loss", r"retrans|packet.?loss"),
        ("network-latency", r"network.*(p\d\d|latency|delay|rtt)|rtt"),
        ("network", r"network|net_|bytes|packet|socket"),
        ("db-lock", r"lock"),
        ("thread-pool", r"thread|executor"),
        ("pool", r"pool|conn|\bfds?\b"),
        ("queue", r"queue|\blag\b|_lag"),
        ("cache", r"cache|evict"),
        ("io", r"syscall|(?<![a-z])io(?![a-z])"),
    ):
        if re.search(pattern, lowered):
            return family
    return lowered


@dataclass(frozen=True)
class Deviation:
    """How far a series strays from its baseline inside a window."""

    baseline_median: float
    scale: float
    peak_value: float
    peak_z: float
    onset: float | None
    # Share of the baseline's own stretches that already reached half the deviation; peak_z is
    # already discounted by it.
    habit: float = 0.0


def robust_scale(values: FloatArray) -> tuple[float, float]:
    """(center, scale) of a baseline sample, with floors so flat baselines stay meaningful.

    Floors: half the plain standard deviation (a mostly-zero series with rare bursts has MAD 0
    but is not flat), and ABSOLUTE_FLOOR, raised for tiny samples whose spread is unknown.
    """
    finite = values[np.isfinite(values)]
    center = float(np.median(finite))
    mad = float(np.median(np.abs(finite - center))) * 1.4826
    small_sample = max(1.0, float(np.sqrt(SMALL_SAMPLE / len(finite))))
    return center, max(mad, 0.5 * float(np.std(finite)), ABSOLUTE_FLOOR * small_sample)


def log_offset(base: FloatArray, test: FloatArray) -> float:
    """The series' typical level: wobbles below it are not worth a factor. A count (a series
    of whole numbers: messages waiting, connections, threads) cannot move by less than one,
    so for it the level is at least one: a queue going from 0 to 1 waiting message is one
    unit, not a factor of ten."""
    unit = 1.0 if _whole_numbers(base) and _whole_numbers(test) else 0.0
    for level in (np.median(base), np.mean(np.abs(base)), 0.1 * np.max(np.abs(test))):
        if np.isfinite(level) and level > 0:
            return max(float(level), unit)
    return 1.0


def _whole_numbers(values: FloatArray) -> bool:
    finite = values[np.isfinite(values)]
    return bool(len(finite)) and bool(np.all(finite == np.round(finite)))


def _transform(
    base: FloatArray, test: FloatArray, offset: float | None = None
) -> tuple[FloatArray, FloatArray]:
    """log(x + c) for non-negative series: resources and latencies change by factors.

    On the log scale a jump from 0.5 % to 100 % CPU stands far above a wobble from 1 % to 4 %,
    and the offset c (the typical level) makes the scale independent of units.
    """
    if np.nanmin(base) >= 0 and np.nanmin(test) >= 0:
        c = offset if offset is not None else log_offset(base, test)
        return np.log(base + c), np.log(test + c)
    return base, test


def deviation(
    series: Series, baseline: TimeRange, window: TimeRange, direction: int
) -> Deviation | None:
    """Peak robust z inside window against the baseline; None when either side lacks data.

    direction +1 scores increases, -1 decreases, 0 either way.
    """
    base = series.within(baseline).values
    test = series.within(window)
    if direction < 0 and _is_success_share(series.name):
        # 100 % -> 97 % availability is 0 -> 3 % failures: a factor, not a 3 % wobble.
        top = (
            1.0
            if max(np.nanmax(base, initial=0), np.nanmax(test.values, initial=0)) <= 1
            else 100.0
        )
        base, test, direction = (
            top - base,
            Series(series.service, series.name, test.times, top - test.values),
            1,
        )
        dev = _deviation(base, test, direction)
        if dev is None:
            return None
        return replace(
            dev, baseline_median=top - dev.baseline_median, peak_value=top - dev.peak_value
        )
    if direction > 0 and _is_capacity_usage(series.name):
        # A disk at 98 % is full in a way 49 % -> 98 % "x2" does not say: score the headroom
        # left (50 -> 2 points, x25), with a one-point offset so 0.1 % vs 0.2 % is no factor.
        headroom = Series(series.service, series.name, test.times, 100.0 - test.values)
        dev = _deviation(100.0 - base, headroom, -1, offset=1.0)
        if dev is None:
            return None
        return replace(
            dev, baseline_median=100.0 - dev.baseline_median, peak_value=100.0 - dev.peak_value
        )
    return _deviation(base, test, direction)


def _is_capacity_usage(metric: str) -> bool:
    """Usage of a hard-capped capacity, in percent: a full filesystem stops writes."""
    return bool(re.search(r"(filesystem|disk|volume|\bfs\b).*(percent|pct)", metric, re.I))


def _is_success_share(metric: str) -> bool:
    return bool(re.search(r"success|availability", metric, re.IGNORECASE))


def _deviation(
    base: FloatArray, test: Series, direction: int, offset: float | None = None
) -> Deviation | None:
    base = base[np.isfinite(base)]
    finite = np.isfinite(test.values)
    if len(base) < MIN_BASELINE_POINTS or not finite.any():
        return None
    t_base, t_test = _transform(base, test.values, offset)
    center, scale = robust_scale(t_base)
    median = float(np.median(base))
    z = np.minimum((t_test - center) / scale, MAX_Z)
    signed = z * direction if direction else np.abs(z)
    signed = np.where(finite, signed, -np.inf)
    # A fault lasts: score the second-highest point when there are several, so one spike of
    # noise among hundreds of series does not outrank a sustained change.
    order = np.argsort(signed)[::-1]
    peak = int(order[1]) if np.isfinite(signed).sum() >= PERSISTENCE_MIN_POINTS else int(order[0])
    over = np.flatnonzero(signed >= ONSET_Z)
    onset = float(test.times[over[0]]) if len(over) else None
    peak_z = float(signed[peak])
    usual = (
        habit(t_base, center, scale, direction, int(finite.sum()), peak_z)
        if peak_z >= ONSET_Z
        else 0.0
    )
    return Deviation(median, scale, float(test.values[peak]), peak_z * (1.0 - usual), onset, usual)


def habit(
    t_base: FloatArray, center: float, scale: float, direction: int, length: int, peak_z: float
) -> float:
    """Share of the baseline's own stretches, as long as the window, that already reached half
    the window's deviation (scored the same way: the second-highest point). A bursty series
    whose baseline does this often is showing its habit, not the incident."""
    z = (t_base - center) / scale
    signed = z * direction if direction else np.abs(z)
    length = max(1, min(length, len(signed)))
    blocks = len(signed) - length + 1
    if blocks < MIN_HABIT_BLOCKS:
        return 0.0
    stretches = np.sort(np.lib.stride_tricks.sliding_window_view(signed, length), axis=1)
    scored = stretches[:, -2] if length >= PERSISTENCE_MIN_POINTS else stretches[:, -1]
    return float(np.mean(scored >= HABIT_SHARE * peak_z))


def _direction(metric: str) -> int:
    """Which way is bad: resources and latency go up, success goes down, traffic either way."""
    lowered = metric.lower()
    if re.search(r"success|availability", lowered):
        return -1
    if re.search(
        r"workload|request|throughput|qps|rps|\bops\b|\(ops\)|bytes|packets|syscall", lowered
    ):
        return 0
    return +1


def metric_findings(series: list[Series], baseline: TimeRange, window: TimeRange) -> list[Finding]:
    """One finding per series that deviates from its baseline by at least ONSET_Z sigmas, and
    callees whose calls slowed on the way to them (experts.peers)."""
    findings = []
    for s in series:
        kind = indicator_kind(s.name)
        direction = _direction(s.name)
        dev = deviation(s, baseline, window, direction)
        if dev is None or dev.peak_z < ONSET_Z:
            continue
        weight = NODE_SCOPE_WEIGHT if _NODE_SCOPE.search(s.name) else 1.0
        findings.append(_finding(s, kind, dev, weight, baseline, window))
    # Per-peer client latency says where between two services the time went; that expert
    # builds on deviation() above, hence the import here.
    from warroom.experts.peers import peer_latency_findings

    return findings + peer_latency_findings(series, baseline, window)


def _finding(
    s: Series,
    kind: IndicatorKind,
    dev: Deviation,
    weight: float,
    baseline: TimeRange,
    window: TimeRange,
) -> Finding:
    ratio = dev.peak_value / dev.baseline_median if dev.baseline_median else float("inf")
    went_up = dev.peak_value >= dev.baseline_median
    onset = f" from {iso(dev.onset)}" if dev.onset is not None else ""
    statement = (
        f"{s.service} {s.name} {dev.baseline_median:.4g} -> {dev.peak_value:.4g} "
        f"(x{ratio:.3g}, {dev.peak_z:.1f} robust sigma){onset}"
    )
    evidence = Evidence(
        id=f"metric:{s.service}:{s.name}",
        statement=statement,
        value=dev.peak_value,
        baseline=dev.baseline_median,
        unit=s.name,
        source=(
            f"experts.metrics.deviation(series={s.service}/{s.name}, baseline={baseline}, "
            f"window={window})"
        ),
    )
    notes = (evidence, habit_evidence(s, dev.habit)) if dev.habit > 0 else (evidence,)
    return Finding(
        service=s.service,
        indicator=s.name,
        kind=kind,
        modality=Modality.METRIC,
        score=dev.peak_z * weight,
        onset=dev.onset,
        direction=1 if went_up else -1,
        evidence=notes,
    )


def habit_evidence(s: Series, share: float) -> Evidence:
    """The habit discount, said and kept as a value (experts.specificity reads it back so that a
    reference window inside the baseline does not discount the same bursts a second time)."""
    return Evidence(
        id=f"{HABIT_ID}{s.service}:{s.name}",
        statement=(
            f"{s.service} {s.name}: {share:.0%} of the baseline's own stretches as long as the "
            "window already reached half this deviation (its habit; score discounted by that share)"
        ),
        value=share,
        unit="share",
        source="experts.metrics.habit",
    )


def habit_share(f: Finding) -> float:
    """The habit share a metric finding was already discounted by (0 when none)."""
    return next((e.value for e in f.evidence if e.id.startswith(HABIT_ID)), 0.0)
