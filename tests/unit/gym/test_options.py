"""The gym's options are checked where they enter: knobs, topology sizes, seeds, planners."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from warroom.gym.bench import compare_planners, export_jsonl
from warroom.gym.interop import export_cases
from warroom.gym.simulator import Knobs
from warroom.gym.topologies import MAX_RANDOM, build


@pytest.mark.parametrize(
    "knobs",
    [
        {"drop_traces": math.nan},
        {"drop_traces": -0.01},
        {"drop_logs": 1.5},
        {"drop_logs": math.inf},
        {"clock_skew_s": math.inf},
        {"clock_skew_s": -math.inf},
        {"clock_skew_s": math.nan},
        {"clock_skew_s": 1e9},
    ],
)
def test_nonsense_knobs_are_a_value_error_naming_the_knob(knobs: dict[str, float]) -> None:
    [name] = knobs
    with pytest.raises(ValueError, match=f"knob {name}"):
        Knobs(**knobs)  # type: ignore[arg-type]


def test_sane_knobs_are_kept() -> None:
    knobs = Knobs(drop_traces=1.0, drop_logs=0.0, clock_skew_s=-120.0)
    assert (knobs.drop_traces, knobs.clock_skew_s) == (1.0, -120.0)


@pytest.mark.parametrize("n", [0, 1, MAX_RANDOM + 1, 100_000])
def test_random_topologies_are_bounded(n: int) -> None:
    with pytest.raises(ValueError, match=f"random-N takes 2 to {MAX_RANDOM} services, not {n}"):
        build(f"random-{n}")


def test_the_bounds_of_random_topologies_are_inclusive() -> None:
    assert len(build("random-2").services) == 2
    assert build(f"random-{MAX_RANDOM}").name == f"random-{MAX_RANDOM}"


@pytest.mark.parametrize(
    "name", ["random-\u00b2", "random-\u0663", "random-" + "9" * 5000, "random-"]
)
def test_odd_random_names_are_unknown_topologies(name: str) -> None:
    with pytest.raises(ValueError, match="unknown topology"):
        build(name)


def test_a_negative_seed_offset_is_refused_before_any_case(tmp_path: Path) -> None:
    calls: list[object] = []

    def generate(*args: object) -> object:
        calls.append(args)
        raise AssertionError("not reached")

    with pytest.raises(ValueError, match="seed offset must be 0 or more, not -1"):
        compare_planners("smoke", 1, -1, ["ranking"], generate=generate)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed offset"):
        export_jsonl(tmp_path / "x.jsonl", "smoke", 1, -3, generate=generate)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed offset"):
        export_cases(tmp_path / "cases", "smoke", 1, -3, generate=generate)  # type: ignore[arg-type]
    assert calls == [] and not (tmp_path / "cases").exists()


def test_no_planner_is_refused() -> None:
    with pytest.raises(ValueError, match="no planner"):
        compare_planners("smoke", 1, 0, [])


def test_a_negative_seed_names_itself() -> None:
    from warroom.gym.simulator import generate

    with pytest.raises(ValueError, match="seed of a gym case must be 0 or more, not -3"):
        generate("shop", "cpu-hog", -3)
