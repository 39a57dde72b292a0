"""How a ranked answer is scored against the truth: ranks, AC@k, indicator matching."""

from __future__ import annotations

from collections.abc import Sequence

from warroom.experts.metrics import indicator_kind, resource_family
from warroom.model import IndicatorKind


def rank_of(truth: str, ranked: Sequence[str]) -> int | None:
    """1-based position of truth among distinct entries of ranked, or None when absent."""
    seen: list[str] = []
    for item in ranked:
        if item not in seen:
            seen.append(item)
        if item == truth:
            return len(seen)
    return None


def accuracy_at(ranks: Sequence[int | None], k: int) -> float:
    """Share of cases whose truth is within the top k (AC@k, AS@k)."""
    if not ranks:
        return 0.0
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)


def indicator_matches(truth: str, predicted: str) -> bool:
    """Whether a predicted indicator names the labelled one.

    Resource metrics match by family (CpuUsage(m) and CpuUsageRate(%) are one signal in two
    units; a trace-derived network p90 matches a labelled network p90). Code regions match
    after dropping template placeholders and spaces, so a mined template "Start charge card <*>"
    matches the label "Start charge card".
    """
    if truth == predicted:
        return True
    if "_" not in truth and indicator_kind(truth) is IndicatorKind.RESOURCE:
        return resource_family(truth) == resource_family(predicted)
    if resource_family(truth) == "network-latency":
        return resource_family(predicted) == "network-latency"
    return _same_region(truth, predicted)


def _same_region(truth: str, predicted: str) -> bool:
    """Code regions "A_B": each labelled event's words begin the predicted event's words.

    Labels name a log statement by its leading words ("Start charge card"), mined templates carry
    the rest of the line; either side's event names may themselves contain "_".
    """
    t, p = _words(truth), _words(predicted)
    if t == p:
        return True
    for i in _underscores(t):
        for j in _underscores(p):
            if _begins(p[:j], t[:i]) and _begins(p[j + 1 :], t[i + 1 :]):
                return True
    return False


def _words(text: str) -> str:
    return " ".join(text.replace("<*>", " ").split())


def _begins(text: str, prefix: str) -> bool:
    """Whether prefix's words are the first words of text (whole words, so #34 is not #345)."""
    words, head = text.split(), prefix.split()
    return bool(head) and words[: len(head)] == head


def _underscores(text: str) -> list[int]:
    return [i for i, ch in enumerate(text) if ch == "_"]
