"""`warroom runbook ...`: save a finished investigation as a runbook, list, show, check, match.

cli.py mounts the app and hands in how to open a case (a data set, or a generated gym case),
so this module stays independent of the loaders and of the simulator.

    warroom runbook save --from-gym shop db-pool-exhaustion 1
    warroom runbook save --from-report report.json      # from `warroom investigate --json`
    warroom runbook check orders-db-pool --gym-topology shop --gym-fault db-pool-exhaustion
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from warroom.errors import WarroomError
from warroom.intake.named_case import DatasetOpener, GymOpener, open_named_case
from warroom.model import Report
from warroom.planner import DEFAULT as DEFAULT_PLANNER
from warroom.planner import PLANNERS, investigate
from warroom.planner import check as check_planner
from warroom.runbooks.apply import CheckResult, Reuse, judge, reuse, run_checks
from warroom.runbooks.derive import MIN_CONFIDENCE, from_report
from warroom.runbooks.markdown import to_markdown
from warroom.runbooks.model import Runbook
from warroom.runbooks.report_json import read_report
from warroom.runbooks.store import DEFAULT_DIR, RunbookStore

DirOption = Annotated[Path, typer.Option("--dir", help="Folder of the runbooks.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
IdArgument = Annotated[str, typer.Argument(help="Runbook id (or a unique prefix of it).")]
DatasetOption = Annotated[str | None, typer.Option(help="Layout under --root, as in investigate.")]
RootOption = Annotated[Path | None, typer.Option(help="Root folder of the data set.")]
CaseOption = Annotated[str | None, typer.Option(help="Case id or 1-based index.")]
TopologyOption = Annotated[str | None, typer.Option(help="Generate a gym case.")]
FaultOption = Annotated[str | None, typer.Option(help="Fault of the gym case.")]
SeedOption = Annotated[int, typer.Option(help="Seed of the gym case.")]


def _fail(message: object) -> NoReturn:
    text = str(message).splitlines()[0] if str(message) else type(message).__name__
    typer.echo(f"error: {text}", err=True)
    raise typer.Exit(2)


def build_app(open_dataset: DatasetOpener, open_gym: GymOpener) -> typer.Typer:
    """The `runbook` command group, given how to open a data set case and a gym case."""
    app = typer.Typer(
        help="Runbooks: save a finished investigation, reuse it on the next alert.",
        no_args_is_help=True,
    )

    @app.command("save")
    def save_command(
        from_gym: Annotated[
            tuple[str, str, int] | None,
            typer.Option(
                "--from-gym",
                metavar="TOPOLOGY FAULT SEED",
                help="Generate this gym case, investigate it, save the runbook.",
            ),
        ] = None,
        report_file: Annotated[
            Path | None,
            typer.Option(
                "--from-report", help="A JSON report from `investigate --json` or `gym run --json`."
            ),
        ] = None,
        dataset: DatasetOption = None,
        root: RootOption = None,
        case: CaseOption = None,
        planner: Annotated[
            str, typer.Option(help=f"{' or '.join(PLANNERS)}, as in investigate.")
        ] = DEFAULT_PLANNER,
        force: Annotated[
            bool, typer.Option(help="Save even when the report is inconclusive.")
        ] = False,
        directory: DirOption = DEFAULT_DIR,
        as_json: JsonOption = False,
    ) -> None:
        """Turn a finished investigation into a runbook (Markdown with DSL checks)."""
        try:
            report, source = _report(
                open_dataset, open_gym, from_gym, report_file, (dataset, root, case), planner
            )
            runbook = from_report(
                report, source=source, min_confidence=0.0 if force else MIN_CONFIDENCE
            )
            path = RunbookStore(directory).save(runbook)
        except WarroomError as err:
            _fail(err)
        except OSError as err:
            _fail(f"cannot write to {directory}: {err.strerror or err}")
        if as_json:
            typer.echo(json.dumps({"id": runbook.id, "path": str(path)} | _json(runbook)))
            return
        typer.echo(f"saved {runbook.id}: {runbook.title}")
        typer.echo(f"  {len(runbook.checks)} checks, {len(runbook.remediation)} steps -> {path}")

    @app.command("list")
    def list_command(directory: DirOption = DEFAULT_DIR, as_json: JsonOption = False) -> None:
        """The stored runbooks, newest first."""
        try:
            runbooks, problems = RunbookStore(directory).load_all()
        except WarroomError as err:
            _fail(err)
        for problem in problems:
            typer.echo(f"warning: skipped {problem}", err=True)
        if as_json:
            typer.echo(json.dumps([_json(r) for r in runbooks], indent=2))
            return
        if not runbooks:
            typer.echo(f"no runbooks in {directory}")
        for r in runbooks:
            sig = r.signature
            alert = sig.symptom_service or "?"
            typer.echo(
                f"{r.id:40} {sig.fault_type:15} alert {alert:16} {r.created[:10]}  {r.title}"
            )

    @app.command("show")
    def show_command(
        runbook_id: IdArgument, directory: DirOption = DEFAULT_DIR, as_json: JsonOption = False
    ) -> None:
        """Print one runbook (its Markdown, or JSON)."""
        try:
            runbook = RunbookStore(directory).load(runbook_id)
        except WarroomError as err:
            _fail(err)
        typer.echo(json.dumps(_json(runbook), indent=2) if as_json else to_markdown(runbook))

    @app.command("check")
    def check_command(
        runbook_id: IdArgument,
        dataset: DatasetOption = None,
        root: RootOption = None,
        case: CaseOption = None,
        gym_topology: TopologyOption = None,
        gym_fault: FaultOption = None,
        gym_seed: SeedOption = 0,
        directory: DirOption = DEFAULT_DIR,
        as_json: JsonOption = False,
    ) -> None:
        """Run a runbook's checks against a case: does this incident look like that one?"""
        try:
            runbook = RunbookStore(directory).load(runbook_id)
            loaded = open_named_case(
                open_dataset, open_gym, (dataset, root, case), (gym_topology, gym_fault, gym_seed)
            ).loaded
        except WarroomError as err:
            _fail(err)
        try:
            spec = loaded.spec
            results = run_checks(runbook, loaded.store, spec.incident, spec.baseline)
        finally:
            loaded.store.close()
        if as_json:
            typer.echo(json.dumps(_check_json(runbook, spec.id, results), indent=2))
            return
        _print_checks(runbook, spec.id, results)

    @app.command("similar")
    def similar_command(
        dataset: DatasetOption = None,
        root: RootOption = None,
        case: CaseOption = None,
        gym_topology: TopologyOption = None,
        gym_fault: FaultOption = None,
        gym_seed: SeedOption = 0,
        limit: Annotated[int, typer.Option(min=1, help="At most this many runbooks.")] = 3,
        directory: DirOption = DEFAULT_DIR,
        as_json: JsonOption = False,
    ) -> None:
        """Which stored runbooks fit a case's alert, and do their checks hold on it?"""
        try:
            loaded = open_named_case(
                open_dataset, open_gym, (dataset, root, case), (gym_topology, gym_fault, gym_seed)
            ).loaded
        except WarroomError as err:
            _fail(err)
        try:
            spec = loaded.spec
            book = RunbookStore(directory)
            matches = reuse(
                book, spec.incident, loaded.store, spec.baseline, spec.graph_edges, limit
            )
        except WarroomError as err:
            _fail(err)
        finally:
            loaded.store.close()
        _print_matches(matches, spec.id, as_json)

    return app


def _report(
    open_dataset: DatasetOpener,
    open_gym: GymOpener,
    from_gym: tuple[str, str, int] | None,
    report_file: Path | None,
    data: tuple[str | None, Path | None, str | None],
    planner: str,
) -> tuple[Report, str]:
    """The report to learn from, and words for where it came from."""
    dataset = data[0]
    if report_file is not None and not from_gym and not dataset:
        return read_report(report_file), f"report {report_file.name}"
    if report_file is None and (from_gym is None) != (dataset is None):
        check_planner(planner)  # a typo should not wait for a case to load
        gym = (from_gym[0], from_gym[1], from_gym[2]) if from_gym else (None, None, 0)
        named = open_named_case(open_dataset, open_gym, data, gym)
        options, loaded = named.words, named.loaded
        try:
            spec = loaded.spec
            result = investigate(
                spec.incident, loaded.store, spec.baseline, spec.graph_edges, planner=planner
            )
        finally:
            loaded.store.close()
        return result.report, options
    _fail("name one source: --from-gym TOPOLOGY FAULT SEED, --from-report FILE, or --dataset")


def _json(runbook: Runbook) -> dict[str, Any]:
    return runbook.model_dump(mode="json")


def _result_json(r: CheckResult) -> dict[str, Any]:
    return {
        "name": r.name,
        "expression": r.expression,
        "status": r.status,
        "detail": r.detail,
        "value": r.value,
        "threshold": r.threshold,
        "about_culprit": r.about_culprit,
    }


def _check_json(runbook: Runbook, case_id: str, results: list[CheckResult]) -> dict[str, Any]:
    verdict = judge(runbook, results)
    return {
        "runbook": runbook.id,
        "case": case_id,
        "supports": verdict.supports,
        "support": verdict.support,
        "checks": [_result_json(r) for r in results],
    }


MARKS = {"pass": "PASS", "fail": "fail", "no-data": "n/a ", "error": "ERR "}


def _print_checks(runbook: Runbook, case_id: str, results: list[CheckResult]) -> None:
    typer.echo(f"{runbook.id} on {case_id}: {runbook.title}")
    for r in results:
        typer.echo(f"  {MARKS[r.status]}  {r.name}: {r.detail}")
        typer.echo(f"        {r.expression}")
    verdict = judge(runbook, results)
    support = "-" if verdict.support is None else f"{verdict.support:.0%}"
    words = "supports" if verdict.supports else "does not support"
    typer.echo(
        f"{words} {runbook.signature.culprit_service} / {runbook.signature.fault_type} "
        f"(first check {verdict.primary}, culprit checks passed {support})"
    )


def _print_matches(matches: list[Reuse], case_id: str, as_json: bool) -> None:
    if as_json:
        payload = [
            {"similarity": m.similarity} | _check_json(m.runbook, case_id, list(m.results))
            for m in matches
        ]
        typer.echo(json.dumps(payload, indent=2))
        return
    if not matches:
        typer.echo(f"no stored runbook fits {case_id}")
    for m in matches:
        sig, v = m.runbook.signature, m.verdict
        words = "supports" if v.supports else "does not support"
        typer.echo(
            f"{m.similarity:.2f}  {m.runbook.id}: {words} {sig.culprit_service} / "
            f"{sig.fault_type} ({v.passed} of {len(m.results)} checks hold)"
        )
