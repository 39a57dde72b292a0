"""Calibration maps: monotone, smoothed, faithful to the shares they were fitted on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from warroom.causal.calibration import (
    CalibrationMap,
    CalibrationTable,
    brier,
    expected_calibration_error,
    fit,
    shipped_calibration,
)
from warroom.errors import InputError


def _outcomes(seed: int, n: int) -> tuple[list[float], list[bool]]:
    """Raw scores whose true chance of being right is 0.2 + 0.7 * raw (not the raw itself)."""
    rng = np.random.default_rng(seed)
    raw = rng.uniform(0.0, 1.0, n)
    right = rng.uniform(0.0, 1.0, n) < 0.2 + 0.7 * raw
    return raw.tolist(), right.tolist()


def test_fitted_map_is_monotone_and_recovers_the_true_rate() -> None:
    raw, right = _outcomes(1, 2000)
    mapped = fit(raw, right)
    assert list(mapped.probability) == sorted(mapped.probability)
    for x in (0.1, 0.5, 0.9):
        assert mapped(x) == pytest.approx(0.2 + 0.7 * x, abs=0.08)


def test_calibration_lowers_the_error_on_fresh_outcomes() -> None:
    raw, right = _outcomes(2, 1500)
    mapped = fit(raw, right)
    fresh_raw, fresh_right = _outcomes(3, 1500)
    calibrated = [mapped(x) for x in fresh_raw]
    assert expected_calibration_error(calibrated, fresh_right) < expected_calibration_error(
        fresh_raw, fresh_right
    )
    assert brier(calibrated, fresh_right) < brier(fresh_raw, fresh_right)


def test_small_bins_do_not_claim_certainty() -> None:
    raw = [0.1] * 20 + [0.9] * 20
    right = [False] * 20 + [True] * 20
    mapped = fit(raw, right)
    assert 0.0 < mapped(0.1) < 0.1 and 0.9 < mapped(0.9) < 1.0


def test_tied_scores_share_one_probability() -> None:
    raw = [0.0] * 30 + [0.5] * 30
    right = [False] * 25 + [True] * 5 + [True] * 30
    mapped = fit(raw, right, per_bin=20)
    assert mapped.raw == (0.0, 0.5)


def test_fit_refuses_too_few_reports() -> None:
    with pytest.raises(InputError, match="too few"):
        fit([0.1, 0.2], [True, False])


def test_table_round_trips_and_passes_unknown_planners_through(tmp_path: Path) -> None:
    table = CalibrationTable({"director": CalibrationMap((0.0, 1.0), (0.1, 0.9), 50)}, {"a": "b"})
    path = tmp_path / "calibration.json"
    table.save(path)
    again = CalibrationTable.load(path)
    assert again == table
    assert again.apply("director", 0.5) == pytest.approx(0.5)
    assert again.apply("director", 0.0) == pytest.approx(0.1)
    assert again.apply("ranking", 0.37) == 0.37


def test_a_broken_table_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(
            {"maps": {"director": {"raw": [0.2, 0.1], "probability": [0.1, 0.2], "reports": 3}}}
        )
    )
    with pytest.raises(InputError, match="increasing"):
        CalibrationTable.load(path)
    path.write_text("{not json")
    with pytest.raises(InputError, match="bad.json"):
        CalibrationTable.load(path)


def test_the_shipped_table_maps_into_probabilities() -> None:
    table = shipped_calibration()
    assert set(table.maps) == {"ranking", "director"}
    assert "seeds" in table.provenance["runs"]  # says which gym runs it was fitted on
    for planner, mapped in table.maps.items():
        assert mapped.reports >= 100, planner
        assert all(0.0 <= p <= 1.0 for p in mapped.probability)
        assert list(mapped.probability) == sorted(mapped.probability)


def _run_file(path: Path, planner: str, outcomes: list[tuple[float, bool]]) -> None:
    cases = [
        {"raw_confidence": raw, "truth_service": "db", "rank": 1 if right else 2, "error": None}
        for raw, right in outcomes
    ]
    cases.append({"raw_confidence": 0.9, "truth_service": None, "rank": None, "error": "boom"})
    run = {"suite": "hard", "seeds": 2, "seed_offset": 7, "summary": {"planner": planner}}
    path.write_text(json.dumps({planner: {**run, "cases": cases}}))


def test_calibrate_fits_one_map_per_planner_from_bench_runs(tmp_path: Path) -> None:
    from warroom.gym.calibrate import calibrate

    raw, right = _outcomes(4, 200)
    _run_file(tmp_path / "a.json", "director", list(zip(raw, right, strict=True)))
    _run_file(tmp_path / "b.json", "ranking", [(x, False) for x in raw[:50]])
    table = calibrate([tmp_path / "a.json", tmp_path / "b.json"])
    assert sorted(table.maps) == ["director", "ranking"]
    assert table.maps["director"].reports == 200  # the failed case is left out
    assert table.maps["ranking"](0.99) < 0.1
    assert "a.json: director hard seeds 7..8" in table.provenance["runs"]


def test_calibrate_names_a_file_that_is_not_a_run(tmp_path: Path) -> None:
    from warroom.gym.calibrate import calibrate

    path = tmp_path / "notes.json"
    path.write_text(json.dumps({"director": {"suite": "hard"}}))
    with pytest.raises(InputError, match="notes.json"):
        calibrate([path])


def test_public_benchmarks_pool_with_gym_runs_and_fresh_runs_are_checked(tmp_path: Path) -> None:
    from warroom.gym.calibrate import calibrate, check

    raw, right = _outcomes(5, 200)
    _run_file(tmp_path / "gym.json", "director", list(zip(raw, right, strict=True)))
    # A real data set where the same raw scores are right far less often than in the gym.
    bench_cases = [
        {"raw_confidence": r, "truth_service": "carts", "rank": 1 if i % 4 == 0 else 3}
        for i, r in enumerate(raw[:120])
    ]
    bench = {"dataset": "rcaeval", "root": "x", "totals": {"planner": "director"}}
    (tmp_path / "real.json").write_text(json.dumps({**bench, "cases": bench_cases}))
    gym_only = calibrate([tmp_path / "gym.json"])
    pooled = calibrate([tmp_path / "gym.json", tmp_path / "real.json"])
    assert "real.json: director rcaeval 120 cases" in pooled.provenance["runs"]
    assert pooled.maps["director"].reports == 320
    before = check(gym_only, [tmp_path / "real.json"])["real.json: director"]
    after = check(pooled, [tmp_path / "real.json"])["real.json: director"]
    assert before["reports"] == 120 and before["right"] == 0.25
    assert after["ece"] < before["ece"]  # pooling brings the claims down towards 1 in 4
