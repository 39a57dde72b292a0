"""`warroom gym run|bench|calibrate|export`: the chaos gym's simulated incidents, scored."""

from __future__ import annotations

import json
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.markdown import Markdown
from rich.table import Table

from warroom.cli.checks import (
    check_outputs,
    check_planners,
)
from warroom.cli.common import (
    HtmlOption,
    JsonOption,
    LlmAuditOption,
    LlmChoice,
    LlmConfigOption,
    LlmOption,
    LlmSecondsOption,
    LlmTimeoutOption,
    LlmTokensOption,
    PlannerOption,
    RepoOption,
    RunbooksOption,
    TraceOutOption,
    checked_inputs,
    console,
    fail,
    gym_app,
    narrated,
    out,
    progress_bar,
    router_for,
    tracer_for,
    user_error,
    write_html,
    write_markdown,
    write_trace,
)
from warroom.errors import WarroomError
from warroom.planner import DEFAULT as DEFAULT_PLANNER
from warroom.planner import PLANNERS
from warroom.planner import check as check_planner
from warroom.planner import investigate as run_pipeline
from warroom.report.charts import Chart, charts_for
from warroom.report.render import to_json, to_markdown

if TYPE_CHECKING:
    from warroom.agents.tracing import Tracer
    from warroom.gym.bench import GymBench, SuiteCase
    from warroom.gym.case import GymCase, GymTruth
    from warroom.gym.scoring import CaseScore
    from warroom.gym.simulator import Knobs
    from warroom.llm import Router
    from warroom.pipeline import Investigation


SeedsOption = Annotated[int, typer.Option("--seeds", min=1, help="Seeds per case.")]
SeedOffsetOption = Annotated[int, typer.Option("--seed-offset", min=0, help="First seed.")]

SuiteOption = Annotated[str, typer.Option("--suite", help="smoke, standard or hard.")]


@gym_app.command("run")
def gym_run(
    topology: Annotated[str, typer.Option(help="shop, shared-db, pipeline or random-N.")],
    fault: Annotated[str, typer.Option(help="A fault of the catalogue, or 'none'.")],
    seed: Annotated[int, typer.Option(min=0, help="Seed of the generated case.")] = 0,
    red_herring: Annotated[bool, typer.Option(help="Add an innocent anomaly.")] = False,
    drop_traces: Annotated[float, typer.Option(help="Share of services without spans.")] = 0.0,
    drop_logs: Annotated[float, typer.Option(help="Share of log lines lost.")] = 0.0,
    clock_skew: Annotated[float, typer.Option(help="Log clock skew in seconds.")] = 0.0,
    alert_storm: Annotated[
        bool, typer.Option(help="Several alerts at once: the culprit's caller and a flapping one.")
    ] = False,
    as_json: JsonOption = False,
    output: Annotated[
        Path | None, typer.Option("--out", help="Also write the Markdown report here.")
    ] = None,
    html: HtmlOption = None,
    llm: LlmOption = "none",
    llm_config: LlmConfigOption = None,
    llm_audit: LlmAuditOption = None,
    llm_tokens: LlmTokensOption = None,
    llm_timeout: LlmTimeoutOption = None,
    llm_seconds: LlmSecondsOption = None,
    planner: PlannerOption = DEFAULT_PLANNER,
    runbooks: RunbooksOption = None,
    trace_out: TraceOutOption = None,
    repo: RepoOption = None,
) -> None:
    """Generate one incident, investigate it, and print the report, the truth and the score."""
    from warroom.gym.scoring import score_case
    from warroom.gym.simulator import Knobs

    try:
        check_planner(planner)
        checked_inputs({"--out": output, "--html": html, "--trace-out": trace_out}, repo, runbooks)
        choice = LlmChoice(llm, llm_config, llm_audit, llm_tokens, llm_timeout, llm_seconds)
        router = router_for(choice)
        knobs = Knobs(red_herring, drop_traces, drop_logs, clock_skew, alert_storm)
    except WarroomError as err:
        fail(err)
        return
    except ValueError as err:  # a knob out of range
        user_error(err)
        return
    case = _gym_case(topology, fault, seed, knobs)
    tracer = tracer_for(trace_out)
    try:
        result, charts = _gym_investigate(case, planner, runbooks, tracer, router, repo, html)
        score = score_case(case, result.report, result.report.seconds)
        write_trace(trace_out, tracer)
        report = narrated(result.report, router)
    except WarroomError as err:  # e.g. an audit file that cannot be written
        fail(err)
        return
    if as_json:
        payload = to_json(report)
        payload["truth"] = asdict(case.truth)
        payload["score"] = asdict(score)
        out.print_json(json.dumps(payload))
    else:
        out.print(Markdown(to_markdown(report)))
        console.print(f"[dim]truth: {_truth_line(case.truth)}[/]")
        console.print(f"[dim]score: {_score_line(score)}[/]")
    try:
        write_markdown(output, report)
        if html:
            write_html(html, report, charts)
    except WarroomError as err:
        fail(err)


def _gym_case(topology: str, fault: str, seed: int, knobs: Knobs) -> GymCase:
    """The generated case, or one line naming what the generator does not know."""
    from warroom.gym.simulator import generate

    try:
        with console.status(f"generating {topology}/{fault}/{seed}..."):
            return generate(topology, fault, seed, knobs)
    except (ValueError, KeyError) as err:
        user_error(err)
        raise  # not reached: user_error exits


def _gym_investigate(
    case: GymCase,
    planner: str,
    runbooks: Path | None,
    tracer: Tracer | None,
    router: Router,
    repo: Path | None,
    html: Path | None,
) -> tuple[Investigation, list[Chart]]:
    """The investigation of a generated case, and its charts when an HTML report is wanted
    (charts read the store, so they are drawn before it closes)."""
    try:
        with console.status("investigating..."):
            result = run_pipeline(
                case.incident,
                case.store,
                case.baseline,
                case.graph_edges,
                planner=planner,
                runbooks=runbooks,
                tracer=tracer,
                router=router,
                repo=repo,
            )
        charts = (
            charts_for(result.report, case.store, case.baseline, result.findings) if html else []
        )
    finally:
        case.store.close()
    return result, charts


def _truth_line(truth: GymTruth) -> str:
    if truth.service is None:
        return "no fault (control case)"
    return f"{truth.service} / {truth.fault_type} / path {' → '.join(truth.path)}"


def _score_line(score: CaseScore) -> str:
    if score.false_alarm is not None:
        return "false alarm" if score.false_alarm else "no false alarm"
    return (
        f"rank {score.rank or '-'}, fault type {'ok' if score.fault_type_ok else 'wrong'}, "
        f"path {'ok' if score.path_ok else 'wrong'}"
    )


def _suite_plan(suite: str) -> list[SuiteCase]:
    from warroom.gym.bench import SUITE_NAMES, suites

    if suite not in SUITE_NAMES:
        fail(WarroomError(f"unknown suite {suite!r} (known: {', '.join(SUITE_NAMES)})"))
    return suites()[suite]


class CaseExecutor(StrEnum):
    """Where gym bench runs its cases."""

    local = "local"
    ray = "ray"


@gym_app.command("bench")
def gym_bench(
    suite: SuiteOption = "smoke",
    seeds: SeedsOption = 1,
    seed_offset: SeedOffsetOption = 0,
    as_json: JsonOption = False,
    planner: Annotated[
        str,
        typer.Option(
            help=f"{' or '.join(PLANNERS)}; several, comma-separated (ranking,director), run "
            "each on the same generated cases: an ablation."
        ),
    ] = DEFAULT_PLANNER,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="Cases at once: 1 runs them one after another; more use that many processes "
            "(with --executor ray and no address: a local Ray instance with that many CPUs).",
        ),
    ] = 1,
    executor: Annotated[
        CaseExecutor,
        typer.Option(help="local: this machine; ray: Ray tasks (pip install 'warroom\\[ray]')."),
    ] = CaseExecutor.local,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="With --executor ray: the cluster to join ('auto', 'ray://head:10001'), whose "
            "nodes have warroom installed; none starts a local instance.",
        ),
    ] = None,
    iac_graph: Annotated[
        bool,
        typer.Option(
            "--iac-graph",
            help="Give each case the graph and kinds read back from its topology written out "
            "as Kubernetes manifests (warroom topology gym-manifests), not the simulator's own.",
        ),
    ] = False,
) -> None:
    """Run a suite of generated incidents: AC@k, Avg@5, fault type, path, false alarms, time."""
    from warroom.gym.bench import compare_planners
    from warroom.gym.parallel import make_runner

    try:
        planners = check_planners(planner)
        if ray_address and executor is not CaseExecutor.ray:
            raise WarroomError("--ray-address needs --executor ray")
    except WarroomError as err:
        fail(err)
        return
    runner = make_runner(workers, executor is CaseExecutor.ray, ray_address)
    total = len(_suite_plan(suite)) * seeds
    try:
        with progress_bar() as progress:
            task = progress.add_task(f"gym {suite}", total=total, case="")

            def step(case_id: str) -> None:  # called as each case finishes, in any order
                progress.update(task, advance=1, case=case_id)

            results = compare_planners(
                suite, seeds, seed_offset, planners, step, runner=runner, iac_graph=iac_graph
            )
    except WarroomError as err:  # e.g. --executor ray without ray installed
        fail(err)
        return
    if as_json:
        document = {name: r.to_json() for name, r in results.items()}
        out.print_json(json.dumps(document if len(results) > 1 else document[planners[0]]))
        return
    for name, result in results.items():
        if len(results) > 1:
            out.rule(f"planner: {name}")
        _print_gym(result)


# summary key -> column header (short, so the three tables fit an 80-column terminal)
GYM_COLUMNS = {
    "cases": "n",
    "AC@1": "AC@1",
    "AC@3": "AC@3",
    "AC@5": "AC@5",
    "Avg@5": "Avg@5",
    "fault_type": "type",
    "path": "path",
    "false_alarm": "FA",
    "mean_seconds": "mean",
    "max_seconds": "max",
}


def _gym_cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _gym_table(title: str, rows: dict[str, dict[str, Any]]) -> Table:
    table = Table(
        title=title, box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, show_edge=False
    )
    table.add_column("", no_wrap=True)
    for header in GYM_COLUMNS.values():
        table.add_column(header, justify="right")
    for name, row in rows.items():
        table.add_row(name, *(_gym_cell(row.get(key)) for key in GYM_COLUMNS))
    return table


def _variant(name: str, fault: str, variant: str) -> str:
    label = f"{name}/{fault}" if fault else name
    return f"{label} ({variant})" if variant else label


def _print_gym(result: GymBench) -> None:
    summary = result.summary
    last = result.seed_offset + result.seeds - 1
    title = f"gym {result.suite}: seeds {result.seed_offset}..{last}"
    out.print(_gym_table(title, {"all": summary}))
    out.print(_gym_table("by topology", summary["by_topology"]))
    out.print(_gym_table("by fault", summary["by_fault"]))
    if summary.get("reliability"):
        table = Table(title="reliability: is the named culprit right, by confidence?")
        for column in ("confidence", "reports", "culprit right", "mean confidence"):
            table.add_column(column)
        for row in summary["reliability"]:
            table.add_row(
                row["confidence"],
                str(row["reports"]),
                str(row["culprit_right"] if row["culprit_right"] is not None else "-"),
                str(row["mean_confidence"] if row["mean_confidence"] is not None else "-"),
            )
        out.print(table)
    out.print(
        "[dim]type: fault-type accuracy; path: propagation-path accuracy; "
        "FA: false-alarm rate; mean, max: seconds per case[/]"
    )
    for note in summary.get("notes", []):
        out.print(f"[dim]{note}[/]")
    for s in result.skipped:
        out.print(f"[yellow]skipped[/] {_variant(s.topology, s.fault, s.variant)}: {s.reason}")
    for c in result.scores:
        if c.error:
            out.print(f"[red]failed[/] {_variant(c.case_id, '', c.variant)}: {c.error}")


@gym_app.command("calibrate")
def gym_calibrate(
    runs: Annotated[
        list[Path],
        typer.Argument(
            help="JSON files written by `warroom gym bench --json` or `warroom bench ... --json`."
        ),
    ],
    output: Annotated[
        Path, typer.Option("--out", help="Where to write the calibration table (JSON).")
    ] = Path("calibration.json"),
    check_runs: Annotated[
        list[Path] | None,
        typer.Option("--check", help="Runs not fitted on: print the fitted map's ECE on each."),
    ] = None,
) -> None:
    """Fit the confidence calibration (raw score -> share of reports that were right) per
    planner from gym runs and public-data benchmarks; ship it as
    src/warroom/causal/calibration.json."""
    from warroom.gym.calibrate import calibrate, check

    try:
        table = calibrate(runs)
        table.save(output)
        checked = check(table, check_runs or [])
    except (WarroomError, OSError) as err:
        fail(err)
        return
    for name, row in checked.items():
        console.print(
            f"check {name}: {row['reports']:.0f} reports, right {row['right']:.3f}, mean "
            f"confidence {row['mean_confidence']:.3f}, ECE {row['ece']:.3f}, "
            f"Brier {row['brier']:.3f}"
        )
    for planner, mapped in table.maps.items():
        knots = ", ".join(
            f"{r:.2f}->{p:.2f}" for r, p in zip(mapped.raw, mapped.probability, strict=True)
        )
        console.print(f"{planner}: {mapped.reports} reports; {knots}")
    console.print(f"written to {output}")


@gym_app.command("export")
def gym_export(
    output: Annotated[
        Path,
        typer.Option("--out", help="File to write (jsonl), or folder for case folders (otlp)."),
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="jsonl: one JSON line per investigated case; otlp: one folder per case with "
            "OTLP/JSON traces and logs, Prometheus text metrics, incident.json and truth.json.",
        ),
    ] = "jsonl",
    suite: SuiteOption = "standard",
    seeds: SeedsOption = 1,
    seed_offset: SeedOffsetOption = 0,
) -> None:
    """Write generated cases: JSON lines with context, answer and rewards, or case folders."""
    from warroom.gym.bench import export_jsonl
    from warroom.gym.interop import export_cases

    if fmt not in ("jsonl", "otlp"):
        fail(WarroomError(f"unknown format {fmt!r} (known: jsonl, otlp)"))
    export = export_cases if fmt == "otlp" else export_jsonl
    total = len(_suite_plan(suite)) * seeds
    try:
        _export_target(output, fmt)
        with progress_bar() as progress:
            task = progress.add_task(f"export {suite}", total=total, case="")

            def step(case_id: str) -> None:
                progress.update(task, advance=1, case=case_id)

            written = export(output, suite, seeds, seed_offset, progress=step)
    except WarroomError as err:
        fail(err)
        return
    except OSError as err:
        fail(WarroomError(f"cannot write --out {output}: {err.strerror or err}"))
        return
    console.print(f"{written} cases written to {output}")


def _export_target(output: Path, fmt: str) -> None:
    """A file (jsonl) or a folder (otlp) can be made at `output`; missing parents are made."""
    if fmt == "jsonl":
        check_outputs({"--out": output})
        parent = output.parent
    else:
        if output.exists() and not output.is_dir():
            raise WarroomError(f"--out {output} is a file; --format otlp writes a folder")
        parent = output
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WarroomError(f"cannot make the folder of --out {output}: {err.strerror}") from None


from warroom.cli import gym_live  # noqa: E402, F401 (registers `warroom gym live`)
