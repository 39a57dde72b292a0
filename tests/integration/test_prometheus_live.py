"""The Prometheus source against a real Prometheus 2.42 (history backfilled with promtool) and a
real VictoriaMetrics 1.79 (history through its import API), both on 127.0.0.1.

An hour of a small shop, 15-second samples, a few hours in the past: three services in
namespace "shop" named three ways (a `service` label, a `job`, two payments pods whose replica
suffixes must be stripped) and one service in another namespace that the selector leaves out.
Each exports a request-duration histogram, a request counter by status code, process CPU and
memory; checkout also a queue-depth gauge. Payments' CPU steps from 0.2 to 0.9 cores.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from integration.servers import import_prometheus, prometheus, victoria_metrics
from warroom.intake.case_dir import metric_columns
from warroom.intake.prom_text import parse_text
from warroom.model import TimeRange
from warroom.telemetry.prometheus import Config, sources
from warroom.telemetry.sources import CHUNK_S, Fetcher
from warroom.telemetry.store import TelemetryStore

STEP_S = 15
HOUR_S = 3600
NOW = time.time()
T0 = math.floor((NOW - 4 * HOUR_S) / CHUNK_S) * CHUNK_S  # backfill wants blocks past 2 h old
STEP_AT = T0 + 2400  # payments' CPU step
BUCKETS = ("0.05", "0.1", "0.25", "0.5", "1", "+Inf")
FAST = (0.3, 0.6, 0.85, 0.95, 0.995, 1.0)  # share of calls at or under each bucket bound
SLOW = (0.1, 0.3, 0.6, 0.9, 0.995, 1.0)
HISTOGRAM = "http_server_request_duration_seconds"


@dataclass(frozen=True)
class Instance:
    """One exporting process: its labels and what it does per second."""

    labels: str
    rps: float
    errors: float  # share of 5xx
    shares: tuple[float, ...]
    cpu: Callable[[float], float]  # cores in use at time t
    memory: float


def _flat(cores: float) -> Callable[[float], float]:
    return lambda t: cores


INSTANCES = (
    # `service` outranks `job`: cart must not become "kubernetes-pods"
    Instance(
        'service="cart",job="kubernetes-pods",namespace="shop"',
        10.0,
        0.02,
        FAST,
        _flat(0.25),
        200e6,
    ),
    Instance('job="checkout",namespace="shop"', 20.0, 0.10, SLOW, _flat(0.5), 350e6),
    Instance(
        'k8s_pod_name="payments-7d4b9c8f6-abcde",namespace="shop"',
        2.5,
        0.0,
        FAST,
        lambda t: 0.1 if t < STEP_AT else 0.8,
        120e6,
    ),
    Instance(
        'k8s_pod_name="payments-7d4b9c8f6-fghij",namespace="shop"',
        2.5,
        0.0,
        FAST,
        _flat(0.1),
        120e6,
    ),
    Instance('service="ads",namespace="other"', 7.0, 0.5, SLOW, _flat(3.0), 999e6),
)


def _cpu_seconds(instance: Instance, t: float) -> float:
    """The CPU counter: the integral of the cores in use (piecewise constant)."""
    if t <= STEP_AT:
        return instance.cpu(T0) * (t - T0)
    return instance.cpu(T0) * (STEP_AT - T0) + instance.cpu(STEP_AT) * (t - STEP_AT)


def _samples(instance: Instance, t: float) -> Iterator[tuple[str, str, float]]:
    """(metric, labels, value) of one instance at time t."""
    calls = instance.rps * (t - T0)
    lab = instance.labels
    for bound, share in zip(BUCKETS, instance.shares, strict=True):
        yield f"{HISTOGRAM}_bucket", f'{lab},le="{bound}"', share * calls
    yield f"{HISTOGRAM}_count", lab, calls
    yield f"{HISTOGRAM}_sum", lab, 0.1 * calls
    yield "http_requests_total", f'{lab},code="200"', 1000 + calls * (1 - instance.errors)
    yield "http_requests_total", f'{lab},code="500"', 10 + calls * instance.errors
    yield "process_cpu_seconds_total", lab, 50 + _cpu_seconds(instance, t)
    yield "process_resident_memory_bytes", lab, instance.memory
    if "checkout" in lab:
        yield "queue_depth", f'{lab},queue="orders"', 3.0 + (t - T0) / 600


def _history() -> list[tuple[str, str, float, float]]:
    times = [T0 + i * STEP_S for i in range(HOUR_S // STEP_S + 1)]
    return [
        (metric, labels, value, t)
        for instance in INSTANCES
        for t in times
        for metric, labels, value in _samples(instance, t)
    ]


def openmetrics(history: list[tuple[str, str, float, float]]) -> str:
    """OpenMetrics text for promtool: each metric's samples together, seconds, `# EOF`."""
    lines = sorted(history, key=lambda s: (s[0], s[1], s[3]))
    body = [f"{m}{{{labels}}} {v!r} {t:.3f}" for m, labels, v, t in lines]
    return "\n".join([*body, "# EOF", ""])


def exposition(history: list[tuple[str, str, float, float]]) -> str:
    """Prometheus text with millisecond timestamps, for VictoriaMetrics' import API."""
    return "".join(f"{m}{{{labels}}} {v!r} {round(t * 1000)}\n" for m, labels, v, t in history)


@pytest.fixture(scope="module", params=["prometheus", "victoria-metrics"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The URL of a running server holding the history."""
    workdir: Path = tmp_path_factory.mktemp(request.param)
    history = _history()
    if request.param == "prometheus":
        with prometheus(workdir, backfill=openmetrics(history)) as url:
            yield url
    else:
        with victoria_metrics(workdir) as url:
            import_prometheus(url, exposition(history))
            yield url


WINDOW = TimeRange(T0 + 600, T0 + HOUR_S)


@pytest.fixture(scope="module")
def store(backend: str) -> TelemetryStore:
    """The store after one Fetcher pass over the window."""
    store = TelemetryStore()
    fetcher = Fetcher(
        store,
        sources(Config.model_validate({"url": backend, "selector": '{namespace="shop"}'})),
        20.0,
    )
    fetcher.cover([WINDOW])
    assert fetcher.degraded() == ()
    return store


def _series(store: TelemetryStore, service: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    rows = store.rows(
        "SELECT ts, value FROM metrics WHERE service = ? AND name = ? ORDER BY ts", [service, name]
    )
    assert rows, f"no {service} {name}"
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows], dtype=float)


def test_services_and_names(store: TelemetryStore) -> None:
    rows = store.rows("SELECT DISTINCT service, name FROM metrics ORDER BY 1, 2")
    names: dict[str, set[str]] = {}
    for service, name in rows:
        names.setdefault(service, set()).add(name)
    assert set(names) == {"cart", "checkout", "payments"}  # ads is in another namespace
    red_use = {
        f"{HISTOGRAM}_p50",
        f"{HISTOGRAM}_p99",
        f"{HISTOGRAM}_count_per_second",
        "http_requests_per_second",
        "http_requests_error_ratio",
        "process_cpu_seconds_per_second",
        "process_resident_memory_bytes",
    }
    assert names["cart"] == red_use
    assert names["payments"] == red_use
    # a raw gauge keeps its other labels, as a case folder names it (job named the service)
    assert names["checkout"] == red_use | {'queue_depth{namespace="shop",queue="orders"}'}


def test_window_is_half_open_on_the_step_grid(store: TelemetryStore) -> None:
    times, _ = _series(store, "cart", "http_requests_per_second")
    assert times[0] == WINDOW.start and times[-1] == WINDOW.end - STEP_S
    assert np.all(np.diff(times) == STEP_S)
    raw_times, raw = _series(store, "checkout", 'queue_depth{namespace="shop",queue="orders"}')
    assert raw_times[0] == WINDOW.start and raw_times[-1] == WINDOW.end - STEP_S
    assert raw == pytest.approx(3.0 + (raw_times - T0) / 600)  # raw samples, exactly


@pytest.mark.parametrize(
    ("service", "rps", "errors", "p50", "p99"),
    [
        ("cart", 10.0, 0.02, 0.05 + 0.2 / 0.3 * 0.05, 0.5 + 0.04 / 0.045 * 0.5),
        ("checkout", 20.0, 0.10, 0.1 + 0.2 / 0.3 * 0.15, 0.5 + 0.09 / 0.095 * 0.5),
        ("payments", 5.0, 0.0, 0.05 + 0.2 / 0.3 * 0.05, 0.5 + 0.04 / 0.045 * 0.5),
    ],
)
def test_rates_ratios_and_quantiles(
    store: TelemetryStore, service: str, rps: float, errors: float, p50: float, p99: float
) -> None:
    for name, expected in (
        ("http_requests_per_second", rps),
        (f"{HISTOGRAM}_count_per_second", rps),
        ("http_requests_error_ratio", errors),
        (f"{HISTOGRAM}_p50", p50),
        (f"{HISTOGRAM}_p99", p99),
    ):
        _, values = _series(store, service, name)
        assert np.median(values) == pytest.approx(expected, rel=0.02, abs=1e-9), name


def test_memory_is_summed_over_replicas(store: TelemetryStore) -> None:
    _, values = _series(store, "payments", "process_resident_memory_bytes")
    assert np.all(values == 240e6)


def test_cpu_step_change_is_visible(store: TelemetryStore) -> None:
    times, cores = _series(store, "payments", "process_cpu_seconds_per_second")
    before = cores[times < STEP_AT]
    after = cores[times >= STEP_AT + 120]  # the 60 s rate window has passed the step
    assert np.median(before) == pytest.approx(0.2, rel=0.02)
    assert np.median(after) == pytest.approx(0.9, rel=0.02)
    _, flat = _series(store, "cart", "process_cpu_seconds_per_second")
    assert np.median(flat) == pytest.approx(0.25, rel=0.02)


def test_a_gauge_reads_as_a_case_folder_reads_it(store: TelemetryStore) -> None:
    """The same samples as a case folder's metrics.prom, through intake's own reader: the same
    service, name, times and values."""
    kept = [s for s in _history() if s[0] == "queue_depth" and WINDOW.start <= s[3] < WINDOW.end]
    case = metric_columns(parse_text(exposition(kept), "metrics.prom"), Path("metrics.prom"))
    rows = store.rows(
        "SELECT service, name, ts, value FROM metrics WHERE name LIKE 'queue_depth%' ORDER BY ts"
    )
    assert len(rows) == len(kept) > 0
    assert [tuple(r) for r in rows] == list(
        zip(case["service"], case["name"], case["ts"], case["value"], strict=True)
    )
