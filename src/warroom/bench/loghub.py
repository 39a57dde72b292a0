"""Benchmark the template miners on Loghub 2k samples with the standard grouping accuracy."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from warroom.datasets.loghub import LoghubSample, load_loghub
from warroom.experts.templates import mine


def grouping_accuracy(truth_ids: Sequence[Hashable], predicted_ids: Sequence[Hashable]) -> float:
    """Share of messages whose predicted group holds exactly the messages of their true group."""
    if len(truth_ids) != len(predicted_ids):
        raise ValueError(f"{len(truth_ids)} true ids but {len(predicted_ids)} predicted ids")
    if not truth_ids:
        return 0.0
    true_groups = _groups(truth_ids)
    correct = 0
    for members in _groups(predicted_ids).values():
        # A predicted group is right only if it is one whole true group, never part of it.
        if true_groups[truth_ids[members[0]]] == members:
            correct += len(members)
    return correct / len(truth_ids)


def _groups(ids: Sequence[Hashable]) -> dict[Hashable, list[int]]:
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for index, group in enumerate(ids):
        groups[group].append(index)
    return groups


@dataclass(frozen=True)
class LoghubRow:
    """One miner on one system."""

    system: str
    miner: str
    grouping_accuracy: float
    templates_found: int
    true_templates: int
    seconds: float


@dataclass(frozen=True)
class LoghubBench:
    """All rows of a Loghub run, with the mean accuracy per miner."""

    rows: tuple[LoghubRow, ...]

    def mean_accuracy(self, miner: str) -> float:
        """Mean grouping accuracy of one miner over the systems it ran on (0.0 if none)."""
        values = [row.grouping_accuracy for row in self.rows if row.miner == miner]
        return sum(values) / len(values) if values else 0.0

    def to_json(self) -> dict[str, object]:
        """Return the run as plain JSON-ready data: rows plus mean accuracy per miner."""
        miners = list(dict.fromkeys(row.miner for row in self.rows))
        return {
            "rows": [asdict(row) for row in self.rows],
            "mean_grouping_accuracy": {m: round(self.mean_accuracy(m), 4) for m in miners},
        }


def run_loghub(root: Path, miners: Sequence[str] = ("own", "drain3")) -> LoghubBench:
    """Mine every Loghub system under root with each miner and score its grouping."""
    samples = load_loghub(root)
    return LoghubBench(rows=tuple(_row(s, m) for s in samples for m in miners))


def _row(sample: LoghubSample, miner: str) -> LoghubRow:
    started = time.perf_counter()
    result = mine(sample.contents, miner=miner)
    seconds = time.perf_counter() - started
    return LoghubRow(
        system=sample.system,
        miner=miner,
        grouping_accuracy=round(grouping_accuracy(sample.truth_ids, result.ids), 4),
        templates_found=len(result.templates),
        true_templates=len(set(sample.truth_ids)),
        seconds=round(seconds, 4),
    )
