"""Loghub loader and benchmark: grouping accuracy by hand, malformed files, the real sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from warroom.bench.loghub import grouping_accuracy, run_loghub
from warroom.datasets.loghub import load_loghub
from warroom.errors import DatasetError

# tests/unit/bench/ -> the folder holding the project; shared/ sits beside the project.
REAL_ROOT = Path(__file__).resolve().parents[4] / "shared" / "data" / "loghub"
HEADER = "LineId,Component,Content,EventId,EventTemplate\n"


def test_ga_perfect_when_groups_match_up_to_renaming() -> None:
    assert grouping_accuracy(["A", "A", "B"], [7, 7, 3]) == 1.0


def test_ga_split_group_counts_none_of_its_messages() -> None:
    # True A = {0,1,2} is split into {0,1} and {2}; B = {3} is right.
    assert grouping_accuracy(["A", "A", "A", "B"], [0, 0, 1, 2]) == pytest.approx(0.25)


def test_ga_merged_groups_count_none_of_their_messages() -> None:
    # A = {0,1} and B = {2} merged into one predicted group; C = {3,4} is right.
    assert grouping_accuracy(["A", "A", "B", "C", "C"], [0, 0, 0, 1, 1]) == pytest.approx(0.4)


def test_ga_split_and_merge_together() -> None:
    truth = ["A", "A", "B", "B", "C", "D"]
    predicted = [0, 1, 1, 2, 3, 4]  # A split, A/B merged, C and D right
    assert grouping_accuracy(truth, predicted) == pytest.approx(2 / 6)


def test_ga_rejects_length_mismatch_and_empty_is_zero() -> None:
    with pytest.raises(ValueError):
        grouping_accuracy(["A"], [0, 1])
    assert grouping_accuracy([], []) == 0.0


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _fake_root(tmp_path: Path) -> Path:
    rows = "".join(f'{i},c,"worker {i} done",E1,worker <*> done\n' for i in range(1, 4))
    rows += '4,c,"cache miss, key users",E2,"cache miss, key <*>"\n'
    _write(tmp_path / "Toy" / "Toy_2k.log_structured.csv", HEADER + rows)
    return tmp_path


def test_load_loghub_reads_contents_and_truth(tmp_path: Path) -> None:
    (sample,) = load_loghub(_fake_root(tmp_path))
    assert sample.system == "Toy"
    assert sample.contents[3] == "cache miss, key users"
    assert sample.truth_ids == ("E1", "E1", "E1", "E2")


def test_load_loghub_prefers_corrected_truth(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    corrected = HEADER + '1,c,"only one",E9,only one\n'
    _write(root / "corrected" / "Toy" / "Toy_2k.log_structured_corrected.csv", corrected)
    (sample,) = load_loghub(root)
    assert sample.truth_ids == ("E9",)


def test_load_loghub_missing_root_raises(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        load_loghub(tmp_path / "nope")


def test_load_loghub_empty_root_raises(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no <System>"):
        load_loghub(tmp_path)


def test_load_loghub_names_file_and_line_of_a_malformed_row(tmp_path: Path) -> None:
    _write(tmp_path / "Bad" / "Bad_2k.log_structured.csv", HEADER + "1,c,fine,E1,x\n2,c,short\n")
    with pytest.raises(DatasetError, match=r"Bad_2k\.log_structured\.csv:3"):
        load_loghub(tmp_path)


def test_load_loghub_names_missing_columns(tmp_path: Path) -> None:
    _write(tmp_path / "Bad" / "Bad_2k.log_structured.csv", "LineId,Content\n1,x\n")
    with pytest.raises(DatasetError, match="EventId"):
        load_loghub(tmp_path)


def test_run_loghub_rows_and_json(tmp_path: Path) -> None:
    bench = run_loghub(_fake_root(tmp_path), miners=("own",))
    (row,) = bench.rows
    assert (row.system, row.miner, row.grouping_accuracy) == ("Toy", "own", 1.0)
    assert (row.templates_found, row.true_templates) == (2, 2)
    data = bench.to_json()
    assert data["mean_grouping_accuracy"] == {"own": 1.0}
    assert isinstance(data["rows"], list)


@pytest.mark.slow
def test_real_loghub_mean_ga_of_default_miner() -> None:
    if not REAL_ROOT.is_dir():
        pytest.skip(f"Loghub sample not found at {REAL_ROOT}")
    bench = run_loghub(REAL_ROOT, miners=("own",))
    assert len(bench.rows) == 8
    # Measured 0.821 (Proxifier alone sits at 0.025); the floor leaves room, not a wish.
    assert bench.mean_accuracy("own") >= 0.80
