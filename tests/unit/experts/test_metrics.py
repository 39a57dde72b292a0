"""Metric expert: indicator kinds, families, robust deviations and findings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from warroom.experts.metrics import (
    ONSET_Z,
    deviation,
    indicator_kind,
    metric_findings,
    resource_family,
)
from warroom.model import IndicatorKind, Modality, Series, TimeRange

BASELINE = TimeRange(0.0, 100.0)
WINDOW = TimeRange(100.0, 200.0)
# A flat-ish baseline with a little deterministic noise, median exactly 2.0.
BASE_VALUES = [2.0, 2.05, 1.95, 2.0, 2.1, 1.9, 2.0, 2.02, 1.98, 2.0]


def _series(
    incident: list[float], base: list[float] | None = None, name: str = "CpuUsageRate(%)"
) -> Series:
    """Baseline points at t=0,10,...; incident points at t=100,110,..."""
    base = BASE_VALUES if base is None else base
    times = [10.0 * i for i in range(len(base))] + [100.0 + 10.0 * i for i in range(len(incident))]
    return Series("payment", name, np.array(times), np.array(base + incident))


# --- indicator_kind ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "metric",
    ["CpuUsageRate(%)", "CpuUsage(m)", "MemoryUsageRate(%)", "container_memory_working_set_bytes"],
)
def test_cpu_and_memory_metrics_are_resources(metric: str) -> None:
    assert indicator_kind(metric) is IndicatorKind.RESOURCE


@pytest.mark.parametrize(
    "metric",
    [
        "latency-p90(ms)",
        "request_duration_seconds",
        "Workload(ops)",
        "NetworkReceiveBytes",
        "syscall_read_total",
        "NodeCpuUsageRate(%)",
        "NodeMemoryUsageRate(%)",
        "node_network_receive_bytes",
        "success_rate(%)",
    ],
)
def test_latency_workload_bytes_syscalls_and_node_metrics_are_symptoms(metric: str) -> None:
    assert indicator_kind(metric) is IndicatorKind.SYMPTOM


# --- resource_family -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "family"),
    [
        ("CpuUsageRate(%)", "cpu"),
        ("CpuUsage(m)", "cpu"),
        ("MemoryUsageRate(%)", "memory"),
        ("jvm_heap_used", "memory"),
        ("DiskWriteBytes", "disk"),
        ("NetworkP90(ms)", "network-latency"),
        ("network-latency-p90(ms)", "network-latency"),
        ("NetworkReceiveBytes", "network"),
        ("queue_depth", "queue"),
        ("cache_misses", "cache"),
    ],
)
def test_resource_family_groups_units_of_one_resource(metric: str, family: str) -> None:
    assert resource_family(metric) == family


def test_resource_family_of_unknown_metric_is_its_lowercased_name() -> None:
    assert resource_family("Widgets") == "widgets"


@pytest.mark.parametrize(
    ("metric", "family"),
    [
        ("db_connections_active", "pool"),
        ("cache_evictions", "cache"),
        ("cache_hit_ratio", "cache"),
    ],
)
def test_words_containing_io_keep_their_own_family(metric: str, family: str) -> None:
    assert resource_family(metric) == family


# --- deviation -----------------------------------------------------------------------------


def test_sustained_jump_is_detected_with_onset_at_first_jumped_point() -> None:
    s = _series([2.0, 2.0, 2.0, 100.0, 100.0, 100.0, 100.0])
    dev = deviation(s, BASELINE, WINDOW, +1)
    assert dev is not None
    assert dev.peak_z >= ONSET_Z
    assert dev.onset == 130.0
    assert dev.peak_value == 100.0
    assert dev.baseline_median == pytest.approx(2.0)


def test_increase_is_not_scored_when_looking_for_a_decrease() -> None:
    s = _series([2.0, 100.0, 100.0, 100.0])
    dev = deviation(s, BASELINE, WINDOW, -1)
    assert dev is not None
    assert dev.peak_z < ONSET_Z
    assert dev.onset is None


def test_single_spike_does_not_score_like_a_sustained_change() -> None:
    sustained = deviation(_series([2.0, 100.0, 100.0, 100.0, 2.0]), BASELINE, WINDOW, +1)
    spike = deviation(_series([2.0, 2.0, 100.0, 2.0, 2.0]), BASELINE, WINDOW, +1)
    assert sustained is not None and spike is not None
    assert sustained.peak_z >= ONSET_Z
    assert spike.peak_z < ONSET_Z
    assert spike.peak_z < sustained.peak_z


def test_success_rate_drop_is_detected_going_down() -> None:
    s = _series([100.0, 95.0, 95.0, 95.0, 95.0], base=[100.0] * 10, name="success_rate(%)")
    dev = deviation(s, BASELINE, WINDOW, -1)
    assert dev is not None
    assert dev.peak_z >= ONSET_Z
    assert dev.baseline_median == pytest.approx(100.0)
    assert dev.peak_value == pytest.approx(95.0)
    assert dev.onset == 110.0


def test_nan_points_are_ignored() -> None:
    base = BASE_VALUES[:5] + [math.nan] * 3 + BASE_VALUES[5:]
    s = _series([math.nan, math.nan, 100.0, 100.0, 100.0, math.nan], base=base)
    dev = deviation(s, BASELINE, WINDOW, +1)
    assert dev is not None
    assert math.isfinite(dev.peak_z) and dev.peak_z >= ONSET_Z
    assert dev.peak_value == 100.0
    assert dev.onset == 120.0
    assert dev.baseline_median == pytest.approx(2.0)


def test_all_nan_window_gives_no_deviation() -> None:
    assert deviation(_series([math.nan, math.nan]), BASELINE, WINDOW, +1) is None


def test_missing_baseline_gives_no_deviation() -> None:
    s = _series([100.0, 100.0], base=[])
    assert deviation(s, BASELINE, WINDOW, +1) is None


def test_ten_percent_wobble_stays_under_three_sigma() -> None:
    base = [10.0, 10.5, 9.5, 10.0, 10.2, 9.8, 10.0, 10.1, 9.9, 10.0]
    wobble = [11.0, 9.0, 11.0, 9.0, 11.0, 9.0]
    for direction in (+1, -1, 0):
        dev = deviation(_series(wobble, base=base), BASELINE, WINDOW, direction)
        assert dev is not None
        assert dev.peak_z < ONSET_Z
        assert dev.onset is None


# --- metric_findings -----------------------------------------------------------------------


def test_only_deviating_series_produce_findings() -> None:
    jumped = _series([2.0, 100.0, 100.0, 100.0])
    flat = Series(
        "checkout", "MemoryUsageRate(%)", jumped.times, np.array(BASE_VALUES + [2.0, 2.1, 1.9, 2.0])
    )
    findings = metric_findings([flat, jumped], BASELINE, WINDOW)
    assert len(findings) == 1
    f = findings[0]
    assert (f.service, f.indicator) == ("payment", "CpuUsageRate(%)")
    assert f.kind is IndicatorKind.RESOURCE
    assert f.modality is Modality.METRIC
    assert f.score >= ONSET_Z
    assert f.direction == +1
    assert f.onset == 110.0


def test_finding_evidence_states_baseline_and_peak_numbers() -> None:
    (f,) = metric_findings([_series([2.0, 100.0, 100.0, 100.0])], BASELINE, WINDOW)
    (evidence,) = f.evidence
    assert "2 -> 100" in evidence.statement
    assert evidence.value == 100.0
    assert evidence.baseline == pytest.approx(2.0)
    assert "payment" in evidence.source


def test_success_rate_drop_finding_goes_down() -> None:
    s = _series([95.0, 95.0, 95.0, 95.0], base=[100.0] * 10, name="success_rate(%)")
    (f,) = metric_findings([s], BASELINE, WINDOW)
    assert f.direction == -1
    assert f.kind is IndicatorKind.SYMPTOM
    assert "100 -> 95" in f.evidence[0].statement


def test_node_metrics_score_lower_than_the_same_change_on_the_component() -> None:
    own = _series([2.0, 100.0, 100.0, 100.0], name="CpuUsageRate(%)")
    node = _series([2.0, 100.0, 100.0, 100.0], name="NodeCpuUsageRate(%)")
    by_name = {f.indicator: f for f in metric_findings([own, node], BASELINE, WINDOW)}
    assert by_name["NodeCpuUsageRate(%)"].score < by_name["CpuUsageRate(%)"].score


def test_a_filling_disk_is_scored_on_the_headroom_left() -> None:
    import numpy as np

    from warroom.experts.metrics import deviation
    from warroom.model import Series, TimeRange

    times = np.arange(0.0, 1200.0, 10.0)
    base = 40.0 + 0.05 * np.sin(times)
    full = np.where(times < 600, base, np.minimum(100.0, 40.0 + (times - 600) * 0.5))
    small = np.where(times < 600, base, 44.0)
    baseline, window = TimeRange(0.0, 600.0), TimeRange(600.0, 1200.0)
    name = "container_filesystem_usage_percent"
    filling = deviation(Series("db", name, times, full), baseline, window, +1)
    growing = deviation(Series("db", name, times, small), baseline, window, +1)
    assert filling is not None and growing is not None
    assert filling.peak_z > 10 > growing.peak_z
    assert filling.peak_value == 100.0


def test_a_burst_the_baseline_often_had_is_the_series_habit_not_the_incident() -> None:
    # An idle pod's CPU: near zero, with two-minute bursts to ~0.7 now and then.
    bursty = [0.001, 0.001, 0.7, 0.65, 0.001, 0.001, 0.001, 0.72, 0.6, 0.001] * 3
    window = [0.7, 0.68, 0.001, 0.001]
    times = [10.0 * i for i in range(30)]
    s = Series(
        "pod",
        "cpu",
        np.array(times + [300.0 + 10 * i for i in range(4)]),
        np.array(bursty + window),
    )
    usual = deviation(s, TimeRange(0.0, 300.0), TimeRange(300.0, 400.0), +1)
    assert usual is not None and usual.peak_z < ONSET_Z
    # The same window after a baseline that never burst is an anomaly.
    quiet = Series("pod", "cpu", s.times, np.array([0.001, 0.0012] * 15 + window))
    found = deviation(quiet, TimeRange(0.0, 300.0), TimeRange(300.0, 400.0), +1)
    assert found is not None and found.peak_z >= ONSET_Z


def test_a_count_moving_by_one_from_zero_is_one_unit_not_a_factor() -> None:
    idle = [0.0] * 10
    one = deviation(_series([0.0, 1.0, 0.0, 1.0], idle, "queue_lag_messages"), BASELINE, WINDOW, 1)
    many = deviation(_series([5.0, 30.0, 40.0], idle, "queue_lag_messages"), BASELINE, WINDOW, 1)
    share = deviation(_series([0.1, 0.12, 0.1], idle, "gc_pause_seconds"), BASELINE, WINDOW, 1)
    assert one is not None and one.peak_z < 4.0  # one waiting message: barely past noise
    assert many is not None and many.peak_z > 10.0  # a real backlog still stands out
    assert share is not None and share.peak_z > 10.0  # fractions keep the test-level offset
