"""The pieces every command shares: the applications, the consoles, the options, the model
router, and writing reports."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from warroom.cli.checks import (
    check_llm_numbers,
    check_outputs,
    check_repo,
    check_runbooks,
)
from warroom.errors import WarroomError
from warroom.planner import PLANNERS
from warroom.report.charts import Chart
from warroom.report.files import write_text
from warroom.report.html import to_html
from warroom.report.render import to_markdown

if TYPE_CHECKING:
    from warroom.agents.tracing import Tracer
    from warroom.llm import Router
    from warroom.model import Report


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


def fail(err: Exception) -> None:
    """Print a user's error on one line and exit with status 2."""
    # One line however long (no wrapping), and brackets in the message are text, not markup.
    console.print(f"[bold red]error:[/] {escape(str(err))}", soft_wrap=True)
    raise typer.Exit(2)


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


def router_for(choice: LlmChoice) -> Router:
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


def checked_inputs(
    outputs: dict[str, Path | None], repo: Path | None, runbooks: Path | None
) -> None:
    """Output paths, --repo and --runbooks checked before the work starts; unreadable
    runbooks are named (the director skips them) but do not stop the investigation."""
    check_outputs(outputs)
    check_repo(repo)
    for problem in check_runbooks(runbooks):
        console.print(f"[yellow]warning:[/] skipping a runbook: {escape(problem)}", soft_wrap=True)


def narrated(report: Report, router: Router) -> Report:
    """`report` with its summary and next steps: the model's when one is routed and its reply
    passes the checks, else the template's; rejected replies are recorded in the report."""
    from warroom.llm import narrate, with_narrative

    with console.status("writing the summary..."):
        return with_narrative(report, narrate(router, report))


def tracer_for(path: Path | None) -> Tracer | None:
    """A tracer when --trace-out asks for warroom's own trace, else None."""
    if path is None:
        return None
    from warroom.agents.tracing import Tracer

    return Tracer()


def write_trace(path: Path | None, tracer: Tracer | None) -> None:
    """Write warroom's own trace as OTLP/JSON where --trace-out says."""
    if path is None or tracer is None:
        return
    write_text(path, tracer.export_json(), "--trace-out")
    console.print(f"trace of this investigation written to {path} (OTLP/JSON)")


def write_markdown(path: Path | None, report: Report) -> None:
    """Write the Markdown report where --out says (nothing when not given)."""
    if path is None:
        return
    write_text(path, to_markdown(report), "--out")
    console.print(f"report written to {path}")


def write_html(path: Path, report: Report, charts: list[Chart]) -> None:
    """Write the HTML report with its charts."""
    write_text(path, to_html(report, charts), "--html")
    console.print(f"HTML report written to {path}")


def progress_bar() -> Progress:
    """A progress bar for long runs (cases done of all, elapsed time)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[case]}"),
        console=console,
        transient=True,
    )


def user_error(err: Exception) -> None:
    """One line for a name the generator or a suite does not know (KeyError quotes its text)."""
    message = err.args[0] if isinstance(err, KeyError) and err.args else err
    fail(WarroomError(str(message)))
