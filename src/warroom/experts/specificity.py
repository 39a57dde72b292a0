"""Is a finding specific to the incident, or does the system do that all the time?

A code-region transition that breaks, a log template that bursts, a call edge that slows: each
is judged against one baseline window, and some of them come and go in healthy periods too. The
same finding computed on other windows of the same system (fault-free data, other hours of the
day) says how usual it is: one that also shows in several of them at comparable strength is the
system's ordinary variation, not this incident's cause. Its score is discounted by the share of
those windows where it showed, and the evidence says so.

Other windows may hold incidents of their own (a benchmark day is full of them): one window that
shows the same finding is no proof of habit, so the discount grows with the share of windows,
not with a single hit. Pure functions over findings, like the other experts.

Metric findings arrive already discounted by their habit (experts.metrics: the share of the
baseline's own stretches that reached half the deviation). Reference windows often lie inside
that baseline, so both shares measure how usual the same rows are: the finding keeps the larger
discount of the two, not their product (which would count the same bursts twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from warroom.experts.metrics import habit_share
from warroom.model import Evidence, Finding, Modality

# A reference window "shows" a finding when it has the same (service, indicator) at this share
# of the incident's score or more.
COMPARABLE = 0.5
# Findings these references can judge: the ones computed per window against one baseline.
JUDGED = frozenset({Modality.LOG, Modality.TRACE, Modality.METRIC})


def healthy_hits(finding: Finding, references: Sequence[Sequence[Finding]]) -> int:
    """In how many reference windows the same finding showed at comparable strength."""
    return sum(
        any(
            r.service == finding.service
            and r.indicator == finding.indicator
            and r.direction == finding.direction
            and r.score >= COMPARABLE * finding.score
            for r in window
        )
        for window in references
    )


def judge_specificity(
    findings: Sequence[Finding], references: Sequence[Sequence[Finding]]
) -> list[Finding]:
    """Findings with their score scaled by the share of reference windows that did not show
    them (unchanged when there are no references), each judged one noting how many did."""
    if not references:
        return list(findings)
    return [
        _discounted(f, healthy_hits(f, references), len(references)) if f.modality in JUDGED else f
        for f in findings
    ]


def _discounted(f: Finding, hits: int, windows: int) -> Finding:
    share = hits / windows
    statement = (
        f"{f.service} {f.indicator} also changed in {hits} of {windows} other windows of this "
        f"system (at half this strength or more)"
        + (": not specific to this incident" if hits else ": specific to this incident")
    )
    note = Evidence(
        id=f"specificity:{f.service}:{f.indicator}",
        statement=statement,
        value=float(hits),
        baseline=float(windows),
        unit="windows",
        source="experts.specificity.judge_specificity",
    )
    return replace(f, score=f.score * _kept(share, habit_share(f)), evidence=(*f.evidence, note))


def _kept(share: float, already: float) -> float:
    """The factor that leaves the finding discounted by the larger of `share` and the share it
    was `already` discounted by (1 - max), not by both ((1 - a) * (1 - b))."""
    if already <= 0.0 or already >= 1.0:
        return 1.0 - share
    return (1.0 - max(share, already)) / (1.0 - already)
