"""The live gym's episode plans and scoring, on hand-built reports (no processes)."""

from __future__ import annotations

import pytest

from warroom.gym.live.episodes import (
    CONTROLS,
    TARGETS,
    EpisodePlan,
    expected_path,
    plan_episodes,
    score_report,
)
from warroom.gym.live.processes import StackError


def test_a_plan_is_seeded_covers_every_fault_kind_and_has_controls() -> None:
    plans = plan_episodes(24, seed=3)
    assert plans == plan_episodes(24, seed=3) and plans != plan_episodes(24, seed=4)
    faults = [p for p in plans if not p.is_control]
    controls = [p for p in plans if p.is_control]
    assert {p.kind for p in faults} == set(TARGETS)
    assert len(controls) == 4 and {p.kind for p in controls} <= set(CONTROLS)
    assert all(p.target in TARGETS[p.kind] for p in faults)
    assert all(p.target is None for p in controls)


def test_a_three_episode_smoke_has_two_faults_and_a_control() -> None:
    plans = plan_episodes(3, seed=0, kinds=["cpu-hog", "cache-down"])
    assert [p.kind for p in plans[:2]] in (["cpu-hog", "cache-down"], ["cache-down", "cpu-hog"])
    assert plans[2].is_control


def test_an_unknown_fault_kind_is_named() -> None:
    with pytest.raises(StackError, match="no live fault 'dns-failure'"):
        plan_episodes(2, seed=0, kinds=["dns-failure"])


def test_the_expected_path_follows_the_calls_back_to_the_alerting_service() -> None:
    assert expected_path("postgres", "frontend") == ("postgres", "orders", "checkout", "frontend")
    assert expected_path("shipping", "worker") == ("shipping", "worker")
    assert expected_path("frontend", "frontend") == ("frontend",)


def _report(*named: tuple[str, str], confidence: float = 0.8) -> dict[str, object]:
    candidates = [
        {
            "service": s,
            "indicator": "x",
            "fault_type": t,
            "path": list(expected_path(s, "frontend")),
        }
        for s, t in named
    ]
    return {"culprit": candidates[0] if candidates else None, "candidates": candidates,
            "confidence": confidence, "confidence_raw": confidence}  # fmt: skip


def test_a_report_is_scored_against_the_episode_truth() -> None:
    plan = EpisodePlan(0, "db-lock-contention", "postgres", 1)
    right = score_report(plan, _report(("postgres", "db-lock"), ("orders", "cpu")), "frontend", 9)
    assert right.rank == 1 and right.fault_type_ok and right.path_ok
    second = score_report(plan, _report(("orders", "cpu"), ("postgres", "db-lock")), "frontend", 9)
    assert second.rank == 2 and not second.fault_type_ok and not second.path_ok
    wrong_type = score_report(plan, _report(("postgres", "pool")), "frontend", 9)
    assert wrong_type.rank == 1 and not wrong_type.fault_type_ok


def test_a_control_is_a_false_alarm_only_when_a_culprit_is_named_with_confidence() -> None:
    plan = EpisodePlan(2, "quiet", None, 1)
    assert score_report(plan, _report(("cart", "cpu"), confidence=0.9), "frontend", 5).false_alarm
    low = score_report(plan, _report(("cart", "cpu"), confidence=0.1), "frontend", 5)
    assert low.false_alarm is False
    assert score_report(plan, _report(), "frontend", 5).false_alarm is False
