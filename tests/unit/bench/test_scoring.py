"""Scoring a ranked answer: rank of the truth, AC@k and indicator matching."""

from __future__ import annotations

import pytest

from warroom.bench.scoring import accuracy_at, indicator_matches, rank_of


def test_rank_of_is_one_based() -> None:
    assert rank_of("a", ["a", "b"]) == 1
    assert rank_of("b", ["a", "b"]) == 2


def test_rank_of_counts_distinct_entries_only() -> None:
    # The same service named twice (two indicators) occupies one rank.
    assert rank_of("b", ["a", "a", "b"]) == 2
    assert rank_of("c", ["a", "b", "a", "b", "c"]) == 3


def test_rank_of_absent_truth_is_none() -> None:
    assert rank_of("z", ["a", "b"]) is None
    assert rank_of("z", []) is None


def test_accuracy_at_k_is_the_share_of_truths_within_k() -> None:
    ranks = [1, 2, None, 4]
    assert accuracy_at(ranks, 1) == 0.25
    assert accuracy_at(ranks, 3) == 0.5
    assert accuracy_at(ranks, 5) == 0.75


def test_accuracy_of_no_cases_is_zero() -> None:
    assert accuracy_at([], 1) == 0.0


@pytest.mark.parametrize(
    ("truth", "predicted"),
    [
        ("CpuUsageRate(%)", "CpuUsageRate(%)"),
        ("CpuUsage(m)", "CpuUsageRate(%)"),
        ("CpuUsageRate(%)", "CpuUsage(m)"),
        ("MemoryUsageRate(%)", "MemoryUsage(Mi)"),
        ("NetworkP90(ms)", "network-latency-p90(ms)"),
        ("Start charge card_Charge successfully", "Start charge card <*>_Charge successfully"),
    ],
)
def test_same_signal_in_other_words_matches(truth: str, predicted: str) -> None:
    assert indicator_matches(truth, predicted)


@pytest.mark.parametrize(
    ("truth", "predicted"),
    [
        ("CpuUsageRate(%)", "MemoryUsageRate(%)"),
        ("MemoryUsageRate(%)", "CpuUsageRate(%)"),
        ("NetworkP90(ms)", "CpuUsageRate(%)"),
        ("c.s.FooImpl#31_c.s.FooImpl#40", "c.s.FooImpl#31_c.s.BarImpl#12"),
        ("Start charge card_Charge successfully", "Start charge card_Charge failed"),
    ],
)
def test_different_signals_do_not_match(truth: str, predicted: str) -> None:
    assert not indicator_matches(truth, predicted)
