"""warroom's command line: investigate a case, run the benchmarks, or the demo.

Errors a user can fix (a bad path, an unknown case) print one line and exit 2, no traceback.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from warroom.datasets import nezha, petshop
from warroom.datasets.base import LoadedCase
from warroom.errors import WarroomError
from warroom.pipeline import investigate as run_pipeline
from warroom.report.render import to_json, to_markdown

app = typer.Typer(
    help="warroom finds the root cause of an incident from metrics, logs and traces.",
    no_args_is_help=True,
    add_completion=False,
)
bench_app = typer.Typer(
    help="Measure accuracy and speed on public data sets.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")
console = Console(stderr=True)
out = Console()


class Dataset(StrEnum):
    """Data set layouts warroom can read."""

    nezha = "nezha"
    petshop = "petshop"


def _fail(err: Exception) -> None:
    console.print(f"[bold red]error:[/] {err}")
    raise typer.Exit(2)


def _load(dataset: Dataset, root: Path, case: str | None) -> LoadedCase:
    if dataset is Dataset.nezha:
        return nezha.load_case(root, nezha.resolve_case(root, case))
    return petshop.load_case(petshop.resolve_case(root, case))


RootOption = Annotated[Path, typer.Option("--root", help="Root folder of the data set.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a report.")]


@app.command()
def investigate(
    dataset: Annotated[Dataset, typer.Option(help="Layout of the data under --root.")],
    root: RootOption,
    case: Annotated[
        str | None, typer.Option(help="Case id, or a 1-based index (default: the first).")
    ] = None,
    as_json: JsonOption = False,
    output: Annotated[
        Path | None, typer.Option("--out", help="Also write the Markdown report here.")
    ] = None,
) -> None:
    """Investigate one case of a public data set and print the report."""
    try:
        with console.status(f"loading {dataset.value} case {case or '(first)'}..."):
            loaded = _load(dataset, root, case)
        with console.status("investigating..."):
            spec = loaded.spec
            result = run_pipeline(spec.incident, loaded.store, spec.baseline, spec.graph_edges)
    except WarroomError as err:
        _fail(err)
        return
    report = result.report
    if spec.notes:
        from dataclasses import replace

        report = replace(report, notes=report.notes + spec.notes)
    if as_json:
        payload = to_json(report)
        payload["truth"] = spec.truth.__dict__ if spec.truth else None
        payload["load_seconds"] = round(loaded.load_seconds, 3)
        out.print_json(json.dumps(payload))
    else:
        markdown = to_markdown(report)
        out.print(Markdown(markdown))
        if spec.truth:
            console.print(
                f"[dim]ground truth: {spec.truth.service} / {spec.truth.fault_type} / "
                f"{spec.truth.indicator}[/]"
            )
    if output:
        output.write_text(to_markdown(report))
        console.print(f"report written to {output}")


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[case]}"),
        console=console,
        transient=True,
    )


def _run_bench(
    kind: str, root: Path, baseline: str | None, limit: int | None, drop: tuple[str, ...]
) -> Any:
    from warroom.bench import rca

    total = len(nezha.list_faults(root)) if kind == "nezha" else len(petshop.list_issues(root))
    total = min(total, limit) if limit else total
    with _progress() as progress:
        task = progress.add_task(f"bench {kind}", total=total, case="")

        def step(case_id: str) -> None:
            progress.update(
                task, advance=0 if progress.tasks[0].fields["case"] == "" else 1, case=case_id
            )

        runner = rca.run_nezha if kind == "nezha" else rca.run_petshop
        return runner(root, baseline=baseline, limit=limit, progress=step, drop=drop)


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
) -> None:
    """Every fault of every day under a Nezha root: AS@k, AIS@k, seconds per case."""
    _bench("nezha", root, as_json, baseline, limit, drop)


@bench_app.command("petshop")
def bench_petshop(
    root: RootOption,
    as_json: JsonOption = False,
    baseline: BaselineOption = None,
    limit: LimitOption = None,
    drop: DropOption = "",
) -> None:
    """Every issue of every scenario under a PetShop root: top-1/top-3 per scenario and metric."""
    _bench("petshop", root, as_json, baseline, limit, drop)


def _bench(
    kind: str, root: Path, as_json: bool, baseline: str | None, limit: int | None, drop: str
) -> None:
    from warroom.bench.rca import DROPPABLE

    if baseline not in (None, "baro"):
        _fail(WarroomError(f"unknown baseline {baseline!r} (known: baro)"))
    dropped = tuple(d.strip() for d in drop.split(",") if d.strip())
    unknown = [d for d in dropped if d not in DROPPABLE]
    if unknown:
        _fail(WarroomError(f"unknown modality {unknown[0]!r} (known: {', '.join(DROPPABLE)})"))
    try:
        result = _run_bench(kind, root, baseline, limit, dropped)
    except (WarroomError, ImportError) as err:
        _fail(err)
        return
    if as_json:
        out.print_json(json.dumps(result.to_json()))
        return
    _print_bench(result)


def _print_bench(result: Any) -> None:
    table = Table(title=f"{result.dataset}: {len(result.cases)} cases under {result.root}")
    for column in ("case", "truth", "rank", "top-1", "seconds"):
        table.add_column(column)
    for c in result.cases:
        top1 = f"{c.top[0][0]} / {c.top[0][1]}" if c.top else (c.error or "-")
        table.add_row(c.id, c.truth_service, str(c.rank or "-"), top1[:70], f"{c.seconds:.2f}")
    out.print(table)
    summary = Table(title="totals")
    summary.add_column("measure")
    summary.add_column("value")
    for key, value in result.totals.items():
        if not isinstance(value, dict):
            summary.add_row(key, str(value))
    out.print(summary)
    groups = result.totals.get("by_group", {})
    if groups:
        breakdown = Table(title="by group")
        names = ["group", *next(iter(groups.values())).keys()]
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
        _fail(err)
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


@app.command()
def demo(
    data: Annotated[Path, typer.Option(help="Folder holding the shared public data sets.")] = Path(
        "../shared/data"
    ),
) -> None:
    """Investigate the first Nezha case from the shared data and print its report."""
    root = data / "nezha"
    if not root.is_dir():
        console.print(
            f"The demo needs the Nezha data set at {root} (rca_data/<day>/ and construct_data/).\n"
            "Point --data at the folder that holds nezha/. A self-contained demo on generated "
            "incidents comes with the chaos gym (not built yet)."
        )
        raise typer.Exit(1)
    investigate(dataset=Dataset.nezha, root=root, case=None, as_json=False, output=None)


def main() -> None:
    """Entry point that keeps tracebacks away from users for errors they can fix."""
    try:
        app()
    except WarroomError as err:
        console.print(f"[bold red]error:[/] {err}")
        sys.exit(2)


if __name__ == "__main__":
    main()
