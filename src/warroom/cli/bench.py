"""`warroom bench nezha|petshop|rcaeval|loghub`: accuracy and speed on public data sets."""

from __future__ import annotations

import json
from collections.abc import Callable, Sized
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from warroom.cli.common import (
    JsonOption,
    PlannerOption,
    RootOption,
    bench_app,
    console,
    fail,
    out,
    progress_bar,
)
from warroom.datasets import nezha, petshop, rcaeval
from warroom.errors import WarroomError
from warroom.planner import DEFAULT as DEFAULT_PLANNER
from warroom.planner import check as check_planner

if TYPE_CHECKING:
    pass


def _run_bench(
    kind: str,
    root: Path,
    baseline: str | None,
    limit: int | None,
    drop: tuple[str, ...],
    planner: str,
    **extra: float,
) -> Any:
    from warroom.bench import rca
    from warroom.bench.rcaeval import run_rcaeval

    listing: dict[str, Callable[[Path], Sized]] = {
        "nezha": nezha.list_faults,
        "petshop": petshop.list_issues,
        "rcaeval": rcaeval.list_cases,
    }
    total = len(listing[kind](root))
    total = min(total, limit) if limit else total
    with progress_bar() as progress:
        task = progress.add_task(f"bench {kind}", total=total, case="")

        def step(case_id: str) -> None:
            progress.update(
                task, advance=0 if progress.tasks[0].fields["case"] == "" else 1, case=case_id
            )

        runners = {"nezha": rca.run_nezha, "petshop": rca.run_petshop, "rcaeval": run_rcaeval}
        runner = runners[kind]
        return runner(
            root,
            baseline=baseline,
            limit=limit,
            progress=step,
            drop=drop,
            planner=planner,
            **extra,
        )


BaselineOption = Annotated[
    str | None,
    typer.Option(help="Also run a baseline on the same cases: 'baro' (needs warroom[baselines])."),
]

LimitOption = Annotated[int | None, typer.Option(help="Only the first N cases.")]

DropOption = Annotated[
    str,
    typer.Option(help="Ablation: comma-separated modalities to forget (logs, traces, metrics)."),
]


@bench_app.command("nezha")
def bench_nezha(
    root: RootOption,
    as_json: JsonOption = False,
    baseline: BaselineOption = None,
    limit: LimitOption = None,
    drop: DropOption = "",
    planner: PlannerOption = DEFAULT_PLANNER,
    inject_delay_ms: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=60_000.0,
            help="Semi-synthetic check: inject this network delay on one busy component per "
            "case (not the culprit) and score on it (bench/inject.py).",
        ),
    ] = 0.0,
) -> None:
    """Every fault of every day under a Nezha root: AS@k, AIS@k, seconds per case."""
    extra = {"inject_delay_ms": inject_delay_ms} if inject_delay_ms else {}
    _bench("nezha", root, as_json, baseline, limit, drop, planner, **extra)


@bench_app.command("petshop")
def bench_petshop(
    root: RootOption,
    as_json: JsonOption = False,
    baseline: BaselineOption = None,
    limit: LimitOption = None,
    drop: DropOption = "",
    planner: PlannerOption = DEFAULT_PLANNER,
) -> None:
    """Every issue of every scenario under a PetShop root: top-1/top-3 per scenario and metric."""
    _bench("petshop", root, as_json, baseline, limit, drop, planner)


@bench_app.command("rcaeval")
def bench_rcaeval(
    root: RootOption,
    as_json: JsonOption = False,
    baseline: BaselineOption = None,
    limit: LimitOption = None,
    drop: DropOption = "",
    planner: PlannerOption = DEFAULT_PLANNER,
) -> None:
    """Every RCAEval case (<service>_<fault>/<n>/) under a root: AC@1/3/5, Avg@5 per fault type."""
    _bench("rcaeval", root, as_json, baseline, limit, drop, planner)


def _bench(
    kind: str,
    root: Path,
    as_json: bool,
    baseline: str | None,
    limit: int | None,
    drop: str,
    planner: str,
    **extra: float,
) -> None:
    from warroom.bench.rca import DROPPABLE

    if baseline not in (None, "baro"):
        fail(WarroomError(f"unknown baseline {baseline!r} (known: baro)"))
    dropped = tuple(d.strip() for d in drop.split(",") if d.strip())
    unknown = [d for d in dropped if d not in DROPPABLE]
    if unknown:
        fail(WarroomError(f"unknown modality {unknown[0]!r} (known: {', '.join(DROPPABLE)})"))
    try:
        result = _run_bench(kind, root, baseline, limit, dropped, check_planner(planner), **extra)
    except (WarroomError, ImportError) as err:
        fail(err)
        return
    if as_json:
        out.print_json(json.dumps(result.to_json()))
        return
    _print_bench(result)


def _print_bench(result: Any) -> None:
    table = Table(title=f"{result.dataset}: {len(result.cases)} cases under {result.root}")
    for column in ("case", "truth", "rank", "top-1", "confidence", "seconds"):
        table.add_column(column)
    for c in result.cases:
        top1 = f"{c.top[0][0]} / {c.top[0][1]}" if c.top else (c.error or "-")
        row = (c.id, c.truth_service, str(c.rank or "-"), top1[:70], f"{c.confidence:.2f}")
        table.add_row(*row, f"{c.seconds:.2f}")
    out.print(table)
    summary = Table(title="totals")
    summary.add_column("measure")
    summary.add_column("value")
    for key, value in result.totals.items():
        if not isinstance(value, dict):
            summary.add_row(key, str(value))
    for key, value in result.totals.get("calibration", {}).items():
        summary.add_row(f"confidence {key}", str(value))
    out.print(summary)
    groups = result.totals.get("by_group", {})
    if result.dataset == "rcaeval":  # the RCAEval paper reports per fault type
        _print_breakdown("fault type", result.totals.get("by_fault_type", {}), RCAEVAL_COLUMNS)
        if len(groups) > 1:
            _print_breakdown("group", groups, RCAEVAL_COLUMNS)
        return
    _print_breakdown("group", groups)


# The per-fault-type table keeps to what fits a terminal; --json has the indicator scores too.
RCAEVAL_COLUMNS = ("cases", "AC@1", "AC@3", "AC@5", "Avg@5", "baseline_AC@1", "baseline_AC@3")


def _print_breakdown(
    label: str, groups: dict[str, dict[str, Any]], columns: tuple[str, ...] | None = None
) -> None:
    if not groups:
        return
    breakdown = Table(title=f"by {label}")
    keys = dict.fromkeys(k for row in groups.values() for k in row)
    names = [label, *(k for k in keys if columns is None or k in columns)]
    for n in names:
        breakdown.add_column(n)
    for name, row in groups.items():
        breakdown.add_row(name, *(str(row.get(n, "")) for n in names[1:]))
    out.print(breakdown)


@bench_app.command("loghub")
def bench_loghub(root: RootOption, as_json: JsonOption = False) -> None:
    """Template-mining grouping accuracy on Loghub 2k samples, own miner vs drain3."""
    from warroom.bench.loghub import run_loghub

    try:
        with console.status("mining templates..."):
            result = run_loghub(root)
    except WarroomError as err:
        fail(err)
        return
    payload = result.to_json()
    if as_json:
        out.print_json(json.dumps(payload))
        return
    table = Table(title="Loghub grouping accuracy")
    for column in ("system", "miner", "GA", "templates", "true", "seconds"):
        table.add_column(column)
    for row in result.rows:
        table.add_row(
            row.system,
            row.miner,
            f"{row.grouping_accuracy:.3f}",
            str(row.templates_found),
            str(row.true_templates),
            f"{row.seconds:.2f}",
        )
    out.print(table)
    out.print(f"mean GA: {payload['mean_grouping_accuracy']}")
