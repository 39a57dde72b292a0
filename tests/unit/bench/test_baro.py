"""BARO baseline adapter: synthetic cases with a known culprit."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from warroom.bench.baro import (
    INSTALL_HINT,
    baro_rank,
    build_frame,
    collapse_to_services,
    load_baro,
)
from warroom.errors import InputError

HAS_RCAEVAL = importlib.util.find_spec("RCAEval") is not None and all(
    importlib.util.find_spec(name) is not None for name in ("pandas", "sklearn")
)
needs_rcaeval = pytest.mark.skipif(
    not HAS_RCAEVAL, reason=f"RCAEval not importable; {INSTALL_HINT}"
)

SERVICES = ["cart", "checkout", "frontend", "payment", "shipping"]
STEP = 60.0
START = 1_700_000_000.0
POINTS = 120
ANOMALY_TIME = START + 90 * STEP


def synthetic_case(culprit: str = "payment") -> tuple[list[float], dict[str, list[float]]]:
    """Five services x two metrics of noise; the culprit's cpu goes up x10 at the anomaly."""
    rng = np.random.default_rng(7)
    times = [START + i * STEP for i in range(POINTS)]
    columns: dict[str, list[float]] = {}
    for service in SERVICES:
        for metric, level in (("cpu", 10.0), ("mem", 500.0)):
            values = level + rng.normal(0.0, level * 0.05, POINTS)
            if service == culprit and metric == "cpu":
                values[90:] *= 10.0
            columns[f"{service}_{metric}"] = values.tolist()
    return times, columns


def test_collapse_keeps_first_occurrence_and_splits_on_last_underscore() -> None:
    ranked = ["order_db_cpu", "cart_mem", "order_db_mem", "cart_cpu", "web"]
    assert collapse_to_services(ranked) == ["order_db", "cart", "web"]


def test_build_frame_rejects_ragged_columns() -> None:
    with pytest.raises(InputError):
        build_frame([1.0, 2.0], {"a_cpu": [1.0]})


def test_missing_rcaeval_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "RCAEval" else real_find_spec(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ImportError, match=r"pip install 'warroom\[baselines\]'"):
        load_baro.__wrapped__()


@needs_rcaeval
def test_culprit_cpu_jump_ranks_first() -> None:
    times, columns = synthetic_case("payment")
    ranked = baro_rank(times, columns, ANOMALY_TIME)
    assert ranked[0] == "payment"
    assert sorted(ranked) == sorted(SERVICES)


@needs_rcaeval
def test_all_nan_column_is_dropped_not_fatal() -> None:
    times, columns = synthetic_case("checkout")
    columns["ghost_cpu"] = [math.nan] * POINTS
    columns["frontend_mem"][3] = math.nan
    ranked = baro_rank(times, columns, ANOMALY_TIME)
    assert ranked[0] == "checkout"
    assert "ghost" not in ranked


@needs_rcaeval
def test_no_rows_on_one_side_gives_empty_ranking() -> None:
    times, columns = synthetic_case()
    assert baro_rank(times, columns, START - STEP) == []
    assert baro_rank(times, {}, ANOMALY_TIME) == []
