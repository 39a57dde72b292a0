"""`warroom investigate`: one incident from a data set's case or from live backends."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markdown import Markdown

from warroom.cli import live
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
    app,
    checked_inputs,
    console,
    fail,
    narrated,
    out,
    router_for,
    tracer_for,
    write_html,
    write_markdown,
    write_trace,
)
from warroom.datasets import nezha, petshop, rcaeval
from warroom.datasets.base import LoadedCase
from warroom.errors import InputError, WarroomError
from warroom.model import Finding, Report
from warroom.planner import DEFAULT as DEFAULT_PLANNER
from warroom.planner import check as check_planner
from warroom.planner import investigate as run_pipeline
from warroom.report.charts import charts_for
from warroom.report.files import write_text
from warroom.report.html import to_html
from warroom.report.render import to_json, to_markdown

if TYPE_CHECKING:
    from warroom.cli.topology import Declared
    from warroom.telemetry.sources import Fetcher
    from warroom.topology.iac.drift import Drift
    from warroom.topology.iac.model import IacGraph

IacOption = Annotated[
    Path | None,
    typer.Option(
        "--iac",
        help="Folder of infrastructure code (Kubernetes manifests, Compose, Terraform, "
        "CloudFormation): its declared calls join the graph, its kinds route hypotheses, and "
        "the report gets a Topology drift section.",
    ),
]


class Dataset(StrEnum):
    """Data set layouts warroom can read."""

    nezha = "nezha"
    petshop = "petshop"
    rcaeval = "rcaeval"  # RCAEval case folders: <service>_<fault>/<n>/ at any depth
    files = "files"  # case folders in the interop layout (gym export --format otlp)


def load_dataset_case(dataset: Dataset, root: Path, case: str | None) -> LoadedCase:
    """One case of a data set in a known layout, loaded into a store."""
    if dataset is Dataset.files:
        from warroom.intake.case_dir import load_case

        return load_case(root, case)
    if dataset is Dataset.nezha:
        return nezha.load_case(root, nezha.resolve_case(root, case))
    if dataset is Dataset.rcaeval:
        return rcaeval.load_case(rcaeval.resolve_case(root, case))
    return petshop.load_case(petshop.resolve_case(root, case))


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
    iac: IacOption = None,
) -> None:
    """Investigate an incident and print the report: from live backends (--prometheus,
    --loki, ... or --config, with --service and a window), or one case of a data set."""
    urls = live.source_urls(prometheus, loki, tempo, jaeger, elasticsearch, received)
    request = live.LiveRequest(
        config, urls, service, symptom, start, end, alert_time, cache, references, since
    )
    fetcher = None
    found: Drift | None = None
    try:
        graph = _read_iac(iac)  # a bad folder fails before the data is loaded or fetched
        check_planner(planner)
        checked_inputs({"--out": output, "--html": html, "--trace-out": trace_out}, repo, runbooks)
        live.check_case_folder(save_case)
        choice = LlmChoice(llm, llm_config, llm_audit, llm_tokens, llm_timeout, llm_seconds)
        router = router_for(choice)
        if request.wanted:
            loaded, fetcher = _load_live(request)
        elif dataset is None or root is None:
            raise InputError("give --dataset and --root, or a live source (--prometheus ...)")
        else:
            with console.status(f"loading {dataset.value} case {case or '(first)'}..."):
                loaded = load_dataset_case(dataset, root, case)
        tracer = tracer_for(trace_out)
        spec = loaded.spec
        declared = _declared(iac, graph, loaded)
        with console.status("investigating..."), _kinds(declared):
            result = run_pipeline(
                spec.incident,
                loaded.store,
                spec.baseline,
                _edges(spec.graph_edges, declared),
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
        if declared is not None:
            from warroom.cli.topology import case_drift

            found = case_drift(declared, loaded.store, spec.incident, spec.baseline)
            report = replace(report, notes=report.notes + (declared.note(),))
        if fetcher is not None:
            loaded.store.attach(None)  # from here on, only what was fetched
            report = replace(report, missing=report.missing + fetcher.degraded())
            live.save_case(save_case, spec, loaded.store)
        report = narrated(report, router)
        write_trace(trace_out, tracer)
    except WarroomError as err:
        fail(err)
        return
    if as_json:
        payload = to_json(report, found)
        payload["truth"] = spec.truth.__dict__ if spec.truth else None
        payload["load_seconds"] = round(loaded.load_seconds, 3)
        out.print_json(json.dumps(payload))
    else:
        markdown = to_markdown(report, found)
        out.print(Markdown(markdown))
        if spec.truth:
            console.print(
                f"[dim]ground truth: {spec.truth.service} / {spec.truth.fault_type} / "
                f"{spec.truth.indicator}[/]"
            )
    try:
        _write_reports(output, html, report, found, loaded, result.findings)
    except WarroomError as err:
        fail(err)


def _read_iac(iac: Path | None) -> IacGraph | None:
    """The --iac folder's graph (None without it); its parse problems are warnings."""
    if iac is None:
        return None
    from warroom.cli.topology import read_folder

    graph = read_folder(iac)
    for problem in graph.problems:
        console.print(f"warning: {problem}", soft_wrap=True, markup=False, style="yellow")
    return graph


def _declared(iac: Path | None, graph: IacGraph | None, loaded: LoadedCase) -> Declared | None:
    """The folder's graph with its names matched to the case's services."""
    if iac is None or graph is None:
        return None
    from warroom.cli.topology import declared_for

    return declared_for(iac, graph, loaded.store)


def _edges(
    own: tuple[tuple[str, str], ...], declared: Declared | None
) -> tuple[tuple[str, str], ...]:
    """The case's own graph joined with the declared calls (in telemetry names)."""
    if declared is None:
        return own
    from warroom.topology.iac.names import joined

    return joined(own, declared.edges)


def _kinds(declared: Declared | None) -> AbstractContextManager[None]:
    """The declared kinds in effect for the director's database and cache playbooks."""
    if declared is None or not declared.kinds:
        return nullcontext()
    from warroom.agents.domains import declared_kinds

    return declared_kinds(declared.kinds)


def _write_reports(
    output: Path | None,
    html: Path | None,
    report: Report,
    found: Drift | None,
    loaded: LoadedCase,
    findings: tuple[Finding, ...],
) -> None:
    """--out and --html; with a drift, the section is in both."""
    if found is None:
        write_markdown(output, report)
    elif output is not None:
        write_text(output, to_markdown(report, found), "--out")
        console.print(f"report written to {output}")
    if html:
        charts = charts_for(report, loaded.store, loaded.spec.baseline, findings)
        if found is None:
            write_html(html, report, charts)
        else:
            write_text(html, to_html(report, charts, found), "--html")
            console.print(f"HTML report written to {html}")


def _load_live(request: live.LiveRequest) -> tuple[LoadedCase, Fetcher]:
    """Fetch the window from the backends, with a progress line per answered chunk."""
    with console.status("fetching from the backends...") as status:
        return live.open_live_case(request, lambda line: status.update(f"fetched {line}"))
