"""warroom's command line: investigate a case, run the benchmarks, or the demo.

Errors a user can fix (a bad path, an unknown case) print one line and exit 2, no traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sized
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from warroom import cli_live as live
from warroom.cli_checks import (
    check_llm_numbers,
    check_outputs,
    check_planners,
    check_repo,
    check_runbooks,
)
from warroom.cli_receive import register as register_receive
from warroom.datasets import nezha, petshop, rcaeval
from warroom.datasets.base import LoadedCase
from warroom.errors import InputError, WarroomError
from warroom.planner import DEFAULT as DEFAULT_PLANNER
from warroom.planner import PLANNERS
from warroom.planner import check as check_planner
from warroom.planner import investigate as run_pipeline
from warroom.report.charts import Chart, charts_for
from warroom.report.files import write_text
from warroom.report.html import to_html
from warroom.report.render import to_json, to_markdown

if TYPE_CHECKING:
    from warroom.agents.tracing import Tracer
    from warroom.gym.bench import GymBench, SuiteCase
    from warroom.gym.case import GymCase, GymTruth
    from warroom.gym.scoring import CaseScore
    from warroom.gym.simulator import Knobs
    from warroom.llm import Router
    from warroom.model import Report
    from warroom.pipeline import Investigation
    from warroom.telemetry.sources import Fetcher

app = typer.Typer(
    help="warroom finds the root cause of an incident from metrics, logs and traces.",
    no_args_is_help=True,
    add_completion=False,
)
bench_app = typer.Typer(
    help="Measure accuracy and speed on public data sets.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")
gym_app = typer.Typer(
    help="Chaos gym: simulated incidents with a known root cause, and how well warroom finds it.",
    no_args_is_help=True,
)
app.add_typer(gym_app, name="gym")
console = Console(stderr=True)
out = Console()


class Dataset(StrEnum):
    """Data set layouts warroom can read."""

    nezha = "nezha"
    petshop = "petshop"
    rcaeval = "rcaeval"  # RCAEval case folders: <service>_<fault>/<n>/ at any depth
    files = "files"  # case folders in the interop layout (gym export --format otlp)


def _fail(err: Exception) -> None:
    # One line however long (no wrapping), and brackets in the message are text, not markup.
    console.print(f"[bold red]error:[/] {escape(str(err))}", soft_wrap=True)
    raise typer.Exit(2)


def _load(dataset: Dataset, root: Path, case: str | None) -> LoadedCase:
    if dataset is Dataset.files:
        from warroom.intake.case_dir import load_case

        return load_case(root, case)
    if dataset is Dataset.nezha:
        return nezha.load_case(root, nezha.resolve_case(root, case))
    if dataset is Dataset.rcaeval:
        return rcaeval.load_case(rcaeval.resolve_case(root, case))
    return petshop.load_case(petshop.resolve_case(root, case))


RootOption = Annotated[Path, typer.Option("--root", help="Root folder of the data set.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a report.")]
TraceOutOption = Annotated[
    Path | None,
    typer.Option(
        "--trace-out",
        help="Write warroom's own trace of this investigation (one span per step and agent "
        "call) here, as OTLP/JSON.",
    ),
]
RepoOption = Annotated[
    Path | None,
    typer.Option(
        "--repo",
        help="Git repository of the services' code: the director's code actor follows stack "
        "frames to the files and their last commits.",
    ),
]
RunbooksOption = Annotated[
    Path | None,
    typer.Option(
        "--runbooks",
        help="Runbook folder the director re-checks for similar alerts (warroom runbook save).",
    ),
]
PlannerOption = Annotated[
    str,
    typer.Option(
        help=f"{' or '.join(PLANNERS)}: the causal ranking alone, or the director checking its "
        "top hypotheses with the actors."
    ),
]
HtmlOption = Annotated[
    Path | None, typer.Option("--html", help="Also write an HTML report with charts here.")
]
LlmOption = Annotated[
    str,
    typer.Option(
        "--llm",
        help="Language model for the summary: openai:URL#MODEL (key in WARROOM_LLM_API_KEY), "
        "replay:FILE, or none (a template summary).",
    ),
]
LlmConfigOption = Annotated[
    Path | None,
    typer.Option("--llm-config", help="TOML file routing each model task to a model."),
]
LlmAuditOption = Annotated[
    Path | None,
    typer.Option(
        "--llm-audit",
        help="Where every model call is recorded (default .warroom/llm-audit.jsonl).",
    ),
]
LlmTokensOption = Annotated[
    int | None,
    typer.Option(
        "--llm-tokens",
        min=1,
        help="Model token budget for the investigation (estimated from the text); once spent, "
        "the rest is deterministic. Default: no limit (or the config file's token_budget).",
    ),
]
LlmTimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--llm-timeout",
        help="Deadline of one model call in seconds, the whole reply included; a call past "
        "it is rejected as a timeout. Default 30 (with --llm-config: each task's timeout).",
    ),
]
LlmSecondsOption = Annotated[
    float | None,
    typer.Option(
        "--llm-seconds",
        help="Model time budget for the investigation in seconds; once spent, the rest is "
        "deterministic. Default 180 (or the config file's time_budget).",
    ),
]


@dataclass(frozen=True)
class LlmChoice:
    """The --llm options of one command, as given."""

    spec: str = "none"
    config: Path | None = None
    audit: Path | None = None
    tokens: int | None = None
    timeout: float | None = None
    seconds: float | None = None


def _router(choice: LlmChoice) -> Router:
    """The model router the --llm options describe; InputError for a bad spec or config."""
    from warroom.llm import Router

    check_llm_numbers(choice.timeout, choice.seconds)
    if choice.config is not None:
        if choice.spec.strip().lower() != "none":
            raise WarroomError("give --llm or --llm-config, not both")
        return Router.from_config(
            choice.config, choice.audit, choice.tokens, choice.seconds, choice.timeout
        )
    return Router.from_spec(
        choice.spec,
        audit=choice.audit,
        timeout=choice.timeout,
        api_key=os.environ.get("WARROOM_LLM_API_KEY"),
        token_budget=choice.tokens,
        time_budget=choice.seconds,
    )


def _checked_inputs(
    outputs: dict[str, Path | None], repo: Path | None, runbooks: Path | None
) -> None:
    """Output paths, --repo and --runbooks checked before the work starts; unreadable
    runbooks are named (the director skips them) but do not stop the investigation."""
    check_outputs(outputs)
    check_repo(repo)
    for problem in check_runbooks(runbooks):
        console.print(f"[yellow]warning:[/] skipping a runbook: {escape(problem)}", soft_wrap=True)


def _narrated(report: Report, router: Router) -> Report:
    """`report` with its summary and next steps: the model's when one is routed and its reply
    passes the checks, else the template's; rejected replies are recorded in the report."""
    from warroom.llm import narrate, with_narrative

    with console.status("writing the summary..."):
        return with_narrative(report, narrate(router, report))


@app.command()
def investigate(
    dataset: Annotated[
        Dataset | None,
        typer.Option(help="Layout of the data under --root (files: gym export --format otlp)."),
    ] = None,
    root: Annotated[
        Path | None, typer.Option("--root", help="Root folder of the data set.")
    ] = None,
    case: Annotated[
        str | None, typer.Option(help="Case id, or a 1-based index (default: the first).")
    ] = None,
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
    config: live.ConfigOption = None,
    prometheus: live.PrometheusOption = None,
    loki: live.LokiOption = None,
    tempo: live.TempoOption = None,
    jaeger: live.JaegerOption = None,
    elasticsearch: live.ElasticOption = None,
    received: live.ReceivedOption = None,
    service: live.ServiceOption = None,
    symptom: live.SymptomOption = None,
    since: live.SinceOption = None,
    start: live.StartOption = None,
    end: live.EndOption = None,
    alert_time: live.AlertOption = None,
    cache: live.CacheOption = live.DEFAULT_CACHE,
    save_case: live.SaveCaseOption = None,
    references: live.ReferencesOption = 3,
) -> None:
    """Investigate an incident and print the report: from live backends (--prometheus,
    --loki, ... or --config, with --service and a window), or one case of a data set."""
    urls = {"prometheus": prometheus, "loki": loki, "tempo": tempo, "jaeger": jaeger}
    urls |= {"elasticsearch": elasticsearch, "received": received}
    request = live.LiveRequest(
        config, urls, service, symptom, start, end, alert_time, cache, references, since
    )
    fetcher = None
    try:
        check_planner(planner)
        _checked_inputs({"--out": output, "--html": html, "--trace-out": trace_out}, repo, runbooks)
        live.check_case_folder(save_case)
        choice = LlmChoice(llm, llm_config, llm_audit, llm_tokens, llm_timeout, llm_seconds)
        router = _router(choice)
        if request.wanted:
            loaded, fetcher = _load_live(request)
        elif dataset is None or root is None:
            raise InputError("give --dataset and --root, or a live source (--prometheus ...)")
        else:
            with console.status(f"loading {dataset.value} case {case or '(first)'}..."):
                loaded = _load(dataset, root, case)
        tracer = _tracer(trace_out)
        with console.status("investigating..."):
            spec = loaded.spec
            result = run_pipeline(
                spec.incident,
                loaded.store,
                spec.baseline,
                spec.graph_edges,
                planner=planner,
                runbooks=runbooks,
                tracer=tracer,
                router=router,
                repo=repo,
                references=spec.references,
            )
        report = result.report
        if spec.notes:
            report = replace(report, notes=report.notes + spec.notes)
        if fetcher is not None:
            loaded.store.attach(None)  # from here on, only what was fetched
            report = replace(report, missing=report.missing + fetcher.degraded())
            live.save_case(save_case, spec, loaded.store)
        report = _narrated(report, router)
        _write_trace(trace_out, tracer)
    except WarroomError as err:
        _fail(err)
        return
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
    try:
        _write_markdown(output, report)
        if html:
            charts = charts_for(report, loaded.store, spec.baseline, result.findings)
            _write_html(html, report, charts)
    except WarroomError as err:
        _fail(err)


def _load_live(request: live.LiveRequest) -> tuple[LoadedCase, Fetcher]:
    """Fetch the window from the backends, with a progress line per answered chunk."""
    with console.status("fetching from the backends...") as status:
        return live.open_live_case(request, lambda line: status.update(f"fetched {line}"))


def _tracer(path: Path | None) -> Tracer | None:
    if path is None:
        return None
    from warroom.agents.tracing import Tracer

    return Tracer()


def _write_trace(path: Path | None, tracer: Tracer | None) -> None:
    if path is None or tracer is None:
        return
    write_text(path, tracer.export_json(), "--trace-out")
    console.print(f"trace of this investigation written to {path} (OTLP/JSON)")


def _write_markdown(path: Path | None, report: Report) -> None:
    if path is None:
        return
    write_text(path, to_markdown(report), "--out")
    console.print(f"report written to {path}")


def _write_html(path: Path, report: Report, charts: list[Chart]) -> None:
    write_text(path, to_html(report, charts), "--html")
    console.print(f"HTML report written to {path}")


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
    with _progress() as progress:
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
        _fail(WarroomError(f"unknown baseline {baseline!r} (known: baro)"))
    dropped = tuple(d.strip() for d in drop.split(",") if d.strip())
    unknown = [d for d in dropped if d not in DROPPABLE]
    if unknown:
        _fail(WarroomError(f"unknown modality {unknown[0]!r} (known: {', '.join(DROPPABLE)})"))
    try:
        result = _run_bench(kind, root, baseline, limit, dropped, check_planner(planner), **extra)
    except (WarroomError, ImportError) as err:
        _fail(err)
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


# --- chaos gym ------------------------------------------------------------------------------

SeedsOption = Annotated[int, typer.Option("--seeds", min=1, help="Seeds per case.")]
SeedOffsetOption = Annotated[int, typer.Option("--seed-offset", min=0, help="First seed.")]
SuiteOption = Annotated[str, typer.Option("--suite", help="smoke, standard or hard.")]


def _user_error(err: Exception) -> None:
    """One line for a name the generator or a suite does not know (KeyError quotes its text)."""
    message = err.args[0] if isinstance(err, KeyError) and err.args else err
    _fail(WarroomError(str(message)))


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
        _checked_inputs({"--out": output, "--html": html, "--trace-out": trace_out}, repo, runbooks)
        choice = LlmChoice(llm, llm_config, llm_audit, llm_tokens, llm_timeout, llm_seconds)
        router = _router(choice)
        knobs = Knobs(red_herring, drop_traces, drop_logs, clock_skew, alert_storm)
    except WarroomError as err:
        _fail(err)
        return
    except ValueError as err:  # a knob out of range
        _user_error(err)
        return
    case = _gym_case(topology, fault, seed, knobs)
    tracer = _tracer(trace_out)
    try:
        result, charts = _gym_investigate(case, planner, runbooks, tracer, router, repo, html)
        score = score_case(case, result.report, result.report.seconds)
        _write_trace(trace_out, tracer)
        report = _narrated(result.report, router)
    except WarroomError as err:  # e.g. an audit file that cannot be written
        _fail(err)
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
        _write_markdown(output, report)
        if html:
            _write_html(html, report, charts)
    except WarroomError as err:
        _fail(err)


def _gym_case(topology: str, fault: str, seed: int, knobs: Knobs) -> GymCase:
    """The generated case, or one line naming what the generator does not know."""
    from warroom.gym.simulator import generate

    try:
        with console.status(f"generating {topology}/{fault}/{seed}..."):
            return generate(topology, fault, seed, knobs)
    except (ValueError, KeyError) as err:
        _user_error(err)
        raise  # not reached: _user_error exits


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
        _fail(WarroomError(f"unknown suite {suite!r} (known: {', '.join(SUITE_NAMES)})"))
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
) -> None:
    """Run a suite of generated incidents: AC@k, Avg@5, fault type, path, false alarms, time."""
    from warroom.gym.bench import compare_planners
    from warroom.gym.parallel import make_runner

    try:
        planners = check_planners(planner)
        if ray_address and executor is not CaseExecutor.ray:
            raise WarroomError("--ray-address needs --executor ray")
    except WarroomError as err:
        _fail(err)
        return
    runner = make_runner(workers, executor is CaseExecutor.ray, ray_address)
    total = len(_suite_plan(suite)) * seeds
    try:
        with _progress() as progress:
            task = progress.add_task(f"gym {suite}", total=total, case="")

            def step(case_id: str) -> None:  # called as each case finishes, in any order
                progress.update(task, advance=1, case=case_id)

            results = compare_planners(suite, seeds, seed_offset, planners, step, runner=runner)
    except WarroomError as err:  # e.g. --executor ray without ray installed
        _fail(err)
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
        _fail(err)
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
        _fail(WarroomError(f"unknown format {fmt!r} (known: jsonl, otlp)"))
    export = export_cases if fmt == "otlp" else export_jsonl
    total = len(_suite_plan(suite)) * seeds
    try:
        _export_target(output, fmt)
        with _progress() as progress:
            task = progress.add_task(f"export {suite}", total=total, case="")

            def step(case_id: str) -> None:
                progress.update(task, advance=1, case=case_id)

            written = export(output, suite, seeds, seed_offset, progress=step)
    except WarroomError as err:
        _fail(err)
        return
    except OSError as err:
        _fail(WarroomError(f"cannot write --out {output}: {err.strerror or err}"))
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


# --- evidence DSL: the commands live in warroom.dsl.command; cli.py only says how to open cases


def _dsl_open_dataset(name: str, root: Path, case: str | None) -> LoadedCase:
    if name not in Dataset.__members__:
        known = ", ".join(Dataset.__members__)
        raise WarroomError(f"unknown dataset {name!r} (known: {known})")
    return _load(Dataset(name), root, case)


def _dsl_open_gym(topology: str, fault: str, seed: int) -> LoadedCase:
    from warroom.datasets.base import CaseSpec
    from warroom.gym.simulator import generate

    made = generate(topology, fault, seed)
    spec = CaseSpec(made.id, made.incident, made.baseline, None, made.graph_edges)
    return LoadedCase(spec, made.store)


def _dsl_app() -> typer.Typer:
    from warroom.dsl.command import build_app

    return build_app(_dsl_open_dataset, _dsl_open_gym)


app.add_typer(_dsl_app(), name="dsl", help="The evidence language: evaluate, check, list.")


def _runbook_app() -> typer.Typer:
    from warroom.runbooks.command import build_app

    return build_app(_dsl_open_dataset, _dsl_open_gym)


app.add_typer(
    _runbook_app(), name="runbook", help="Runbooks: save an investigation, reuse it next time."
)


DEMO_CASE = ("shop", "cpu-hog", 1)


@app.command()
def demo(
    output: Annotated[
        Path, typer.Option("--out", help="Markdown report; the HTML one goes beside it.")
    ] = Path("out/demo.md"),
) -> None:
    """Generate one fixed incident in the simulated shop, investigate it, print the report.

    Needs no data and no server: the chaos gym simulates 12 services for 30 minutes, a CPU hog
    hits one of them, and warroom gets only the telemetry.
    """
    topology, fault, seed = DEMO_CASE
    html_path = output.with_suffix(".html")
    gym_run(topology=topology, fault=fault, seed=seed, output=output, html=html_path)


register_receive(app)  # `warroom receive`: the OTLP/HTTP receiver (cli_receive.py)
live.register(app)  # `warroom sources check`
live.register_bench(bench_app)  # `warroom bench live`


def main() -> None:
    """Entry point that keeps tracebacks away from users for errors they can fix."""
    try:
        app()
    except WarroomError as err:
        console.print(f"[bold red]error:[/] {err}")
        sys.exit(2)


if __name__ == "__main__":
    main()
