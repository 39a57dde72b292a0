"""Specificity: a finding that the system shows in other windows too is discounted."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from warroom.experts.metrics import habit_evidence
from warroom.experts.specificity import healthy_hits, judge_specificity
from warroom.model import Finding, IndicatorKind, Modality, Series


def _f(service: str, indicator: str, score: float, modality: Modality = Modality.LOG) -> Finding:
    return Finding(service, indicator, IndicatorKind.CODE, modality, score, 0.0, +1)


def test_a_finding_seen_in_most_other_windows_is_discounted_and_says_so() -> None:
    spurious = _f("preserve", "HTTP POST_-> /basic", 10.0)
    windows = [[_f("preserve", "HTTP POST_-> /basic", 8.0)]] * 3 + [[]]
    (judged,) = judge_specificity([spurious], windows)
    assert judged.score == pytest.approx(2.5)  # shown in 3 of 4: a quarter of its score left
    assert "3 of 4 other windows" in judged.evidence[-1].statement
    assert "not specific" in judged.evidence[-1].statement


def test_a_finding_no_other_window_shows_keeps_its_score() -> None:
    culprit = _f("contacts", "ContactsServiceImpl#31", 6.0)
    windows = [[_f("preserve", "HTTP POST_-> /basic", 8.0)], [], []]
    (judged,) = judge_specificity([culprit], windows)
    assert judged.score == 6.0
    assert "0 of 3 other windows" in judged.evidence[-1].statement


def test_only_comparable_strength_counts_and_only_the_same_direction() -> None:
    f = _f("a", "x", 10.0)
    weaker = [[_f("a", "x", 4.9)]]
    assert healthy_hits(f, weaker) == 0
    opposite = [[Finding("a", "x", IndicatorKind.CODE, Modality.LOG, 10.0, 0.0, -1)]]
    assert healthy_hits(f, opposite) == 0
    assert healthy_hits(f, [[_f("a", "x", 5.0)], [_f("b", "x", 50.0)]]) == 1


def test_runs_without_references_are_left_alone() -> None:
    log = _f("a", "x", 9.0)
    assert judge_specificity([log], []) == [log]
    metric = _f("db", "cpu", 9.0, Modality.METRIC)
    assert judge_specificity([metric], []) == [metric]


def test_a_metric_finding_is_judged_like_a_log_finding() -> None:
    metric = _f("db", "cpu", 8.0, Modality.METRIC)
    (judged,) = judge_specificity([metric], [[_f("db", "cpu", 4.0, Modality.METRIC)], [], []])
    assert judged.score == pytest.approx(8.0 * 2 / 3)
    assert "1 of 3 other windows" in judged.evidence[-1].statement


def _habitual(score: float, share: float) -> Finding:
    """A metric finding the metric expert already discounted by `share` (its habit)."""
    series = Series("db", "cpu", np.array([0.0]), np.array([1.0]))
    return replace(
        _f("db", "cpu", score, Modality.METRIC), evidence=(habit_evidence(series, share),)
    )


def test_a_habit_and_the_references_discount_the_larger_share_not_both() -> None:
    # Habit already took 40 %; 3 of 4 windows show it: 75 % in all, not 1 - 0.6 * 0.25 = 85 %.
    f = _habitual(6.0, 0.4)  # 10 robust sigma before the habit discount
    (judged,) = judge_specificity([f], [[_habitual(6.0, 0.4)]] * 3 + [[]])
    assert judged.score == pytest.approx(10.0 * 0.25)
    # References showing less than the habit did take nothing more.
    (kept,) = judge_specificity([f], [[_habitual(6.0, 0.4)]] + [[]] * 3)
    assert kept.score == pytest.approx(6.0)
