"""Reference windows: other stretches of a case's own data, judged like the incident window.

Every loader picks them the same way: blocks as long as the incident window, cut from the data
the case knows to hold no fault of this incident (fault-free stretches, the rows before the
injection, other minutes of the day), never overlapping what the loader says to avoid (always
the incident window), at most COUNT of them, spread over the room there is so that one stretch
does not supply them all. A reference may lie inside the metric baseline: the experts judge it
against that baseline as they judge the incident window, and a deviation that also shows there
is the baseline's own variation (experts.specificity).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from warroom.model import TimeRange

# How many reference windows a case gets at most (experts.specificity discounts by their share:
# four give steps of a quarter).
COUNT = 4


def pick_references(
    length: float,
    fault_free: Sequence[TimeRange],
    avoid: Sequence[TimeRange],
    count: int = COUNT,
) -> tuple[TimeRange, ...]:
    """Up to `count` disjoint windows of `length` seconds inside `fault_free`, overlapping
    nothing in `avoid`, spread evenly over the blocks that fit; in time order, () without room."""
    if length <= 0 or count <= 0:
        return ()
    # A count, not np.arange(start, end - length): at epoch seconds a tolerance of 1e-9 is below
    # a float's resolution, and a stretch exactly one window long would yield no block.
    blocks = [
        free.start + k * length
        for free in free_stretches(fault_free, avoid)
        for k in range(int(np.floor(free.seconds / length + 1e-6)))
    ]
    if not blocks:
        return ()
    spread = np.linspace(0, len(blocks) - 1, min(count, len(blocks)))
    chosen = sorted({blocks[round(i)] for i in spread})
    return tuple(TimeRange(start, start + length) for start in chosen)


def free_stretches(fault_free: Sequence[TimeRange], avoid: Sequence[TimeRange]) -> list[TimeRange]:
    """The parts of `fault_free` outside every range of `avoid`, merged and in time order."""
    free: list[TimeRange] = []
    for stretch in sorted(fault_free, key=lambda r: r.start):
        pieces = [(stretch.start, stretch.end)]
        for block in avoid:
            pieces = [
                part
                for start, end in pieces
                for part in ((start, min(end, block.start)), (max(start, block.end), end))
                if part[1] > part[0]
            ]
        for start, end in pieces:
            if free and start <= free[-1].end:
                free[-1] = TimeRange(free[-1].start, max(free[-1].end, end))
            else:
                free.append(TimeRange(start, end))
    return free
