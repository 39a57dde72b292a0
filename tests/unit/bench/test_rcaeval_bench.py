"""`warroom bench rcaeval`: AC@k and Avg@5 by hand, and end to end on synthetic case folders."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from warroom.bench.baro import INSTALL_HINT
from warroom.bench.rca import CaseResult
from warroom.bench.rcaeval import accuracy_row, rcaeval_totals, run_rcaeval
from warroom.cli import app

runner = CliRunner()
INJECT = 1_700_000_000
STEP = 30
SERVICES = ("carts", "orders", "payment", "user")
METRICS = {"cpu": "container_cpu_usage_seconds_total", "mem": "container_memory_usage_bytes"}
HAS_RCAEVAL = all(importlib.util.find_spec(n) is not None for n in ("RCAEval", "pandas", "sklearn"))


def write_case(folder: Path, culprit: str, metric: str) -> None:
    """Four services with cpu and memory; the culprit's `metric` steps up x20 at injection."""
    folder.mkdir(parents=True)
    (folder / "inject_time.txt").write_text(f"{INJECT}\n")
    header = ["time"] + [f"{s}-5ff676694b-abcde_{m}" for s in SERVICES for m in METRICS.values()]
    lines = [",".join(header)]
    for i in range(-60, 10):
        row = [str(INJECT + i * STEP)]
        for service in SERVICES:
            for name, level in (("cpu", 1.0), ("mem", 300.0)):
                value = level * (1 + 0.02 * ((i * 7 + len(service)) % 5))
                if service == culprit and name == metric and i >= 0:
                    value *= 20
                row.append(f"{value:.4f}")
        lines.append(",".join(row))
    (folder / "data.csv").write_text("\n".join(lines) + "\n")


@pytest.fixture
def bench_root(tmp_path: Path) -> Path:
    write_case(tmp_path / "sys" / "payment_cpu" / "1", "payment", "cpu")
    write_case(tmp_path / "sys" / "user_mem" / "1", "user", "mem")
    write_case(tmp_path / "sys" / "user_mem" / "2", "user", "mem")
    return tmp_path


def _case(rank: int | None, fault: str = "cpu", base: int | None = None) -> CaseResult:
    return CaseResult(
        "c", "g", "svc", fault, "cpu", (), rank, rank, 1.0, ("x",) if base else (), base
    )


def test_ac_at_k_and_avg5_as_rcaeval_computes_them() -> None:
    row = accuracy_row([_case(1), _case(2), _case(None), _case(4)])
    assert row["AC@1"] == 0.25 and row["AC@3"] == 0.5 and row["AC@5"] == 0.75
    assert row["Avg@5"] == pytest.approx((0.25 + 0.5 + 0.5 + 0.75 + 0.75) / 5)
    assert row["indicator_AC@1"] == 0.25
    assert "baseline_AC@1" not in row


def test_totals_break_down_by_fault_type_with_the_baseline() -> None:
    totals = rcaeval_totals([_case(1, "cpu", 2), _case(3, "mem", 1), _case(None, "mem", 1)])
    assert totals["cases"] == 3 and totals["failed"] == 0
    assert totals["by_fault_type"]["mem"]["AC@3"] == 0.5
    assert totals["by_fault_type"]["mem"]["baseline_AC@1"] == 1.0
    assert totals["by_fault_type"]["cpu"]["baseline_AC@1"] == 0.0
    assert totals["baseline_AC@3"] == 1.0


def test_bench_through_the_cli_finds_both_culprits(bench_root: Path) -> None:
    result = runner.invoke(
        app, ["bench", "rcaeval", "--root", str(bench_root), "--limit", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    totals = payload["totals"]
    assert totals["cases"] == 2 and totals["failed"] == 0
    assert [c["id"] for c in payload["cases"]] == ["sys/payment_cpu/1", "sys/user_mem/1"]
    assert [c["rank"] for c in payload["cases"]] == [1, 1]
    assert set(totals["by_fault_type"]) == {"cpu", "mem"}
    assert totals["AC@1"] == 1.0 and totals["Avg@5"] == 1.0


def test_bench_table_per_fault_type(bench_root: Path) -> None:
    result = runner.invoke(
        app, ["bench", "rcaeval", "--root", str(bench_root), "--planner", "ranking"]
    )
    assert result.exit_code == 0, result.output
    assert "by fault type" in result.output and "Avg@5" in result.output


def test_a_broken_case_is_a_failed_result_not_a_crash(bench_root: Path) -> None:
    (bench_root / "sys" / "user_mem" / "2" / "inject_time.txt").write_text("soon\n")
    result = run_rcaeval(bench_root, planner="ranking")
    assert result.totals["failed"] == 1
    failed = result.cases[-1]
    assert failed.id == "sys/user_mem/2" and "inject_time.txt" in (failed.error or "")


def test_cli_errors_are_one_line(tmp_path: Path, bench_root: Path) -> None:
    empty = runner.invoke(app, ["bench", "rcaeval", "--root", str(tmp_path / "none")])
    assert empty.exit_code == 2 and "not found" in empty.output
    assert "Traceback" not in empty.output
    (bench_root / "sys" / "payment_cpu" / "1" / "inject_time.txt").write_text("x\n")
    bad = runner.invoke(
        app, ["investigate", "--dataset", "rcaeval", "--root", str(bench_root), "--case", "1"]
    )
    assert bad.exit_code == 2 and "inject_time.txt" in bad.output
    assert "Traceback" not in bad.output


def test_investigate_one_case(bench_root: Path) -> None:
    result = runner.invoke(
        app,
        ["investigate", "--dataset", "rcaeval", "--root", str(bench_root)]
        + ["--case", "sys/user_mem/2", "--json", "--planner", "ranking"],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["truth"]["service"] == "user"


@pytest.mark.skipif(not HAS_RCAEVAL, reason=f"RCAEval not importable; {INSTALL_HINT}")
def test_baro_ranks_the_same_cases(bench_root: Path) -> None:
    result = run_rcaeval(bench_root, baseline="baro", limit=2, planner="ranking")
    assert [c.baseline_top[0] for c in result.cases] == ["payment", "user"]
    assert result.totals["baseline_AC@1"] == 1.0
