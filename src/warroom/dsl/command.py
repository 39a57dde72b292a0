"""`warroom dsl ...`: evaluate, check and list the evidence language from the command line.

cli.py mounts the app and hands in how to open a case (a data set, or a generated gym case),
so this module stays independent of the loaders and of the simulator.

    warroom dsl eval 'change(metric("orders-db", "cpu"))' --gym-topology shop --gym-fault cpu-hog
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from warroom.dsl.catalogue import ANCHORS, FUNCTIONS, SELECTORS
from warroom.dsl.interpreter import Context, Outcome, run
from warroom.dsl.parser import parse
from warroom.dsl.syntax import unparse
from warroom.dsl.values import Templates
from warroom.errors import WarroomError
from warroom.intake.named_case import DatasetOpener, GymOpener, open_named_case

ExprArgument = Annotated[str, typer.Argument(help="The expression, in single quotes.")]


def _fail(message: object) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def build_app(open_dataset: DatasetOpener, open_gym: GymOpener) -> typer.Typer:
    """The `dsl` command group, given how to open a data set case and a gym case."""
    app = typer.Typer(help="The evidence language: evaluate, check, list.", no_args_is_help=True)

    @app.command("eval")
    def eval_command(
        expression: ExprArgument,
        dataset: Annotated[
            str | None, typer.Option(help="Layout under --root, as in investigate.")
        ] = None,
        root: Annotated[Path | None, typer.Option(help="Root folder of the data set.")] = None,
        case: Annotated[str | None, typer.Option(help="Case id or 1-based index.")] = None,
        gym_topology: Annotated[str | None, typer.Option(help="Generate a gym case.")] = None,
        gym_fault: Annotated[str | None, typer.Option(help="Fault of the gym case.")] = None,
        gym_seed: Annotated[int, typer.Option(help="Seed of the gym case.")] = 0,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Evaluate an expression against a case and print the evidence."""
        try:
            parse(expression)  # a typo should not wait for a case to load
            named = open_named_case(
                open_dataset, open_gym, (dataset, root, case), (gym_topology, gym_fault, gym_seed)
            )
            options, loaded = named.options, named.loaded
        except WarroomError as err:
            _fail(err)
        try:
            spec = loaded.spec
            context = Context.of(loaded.store, spec.incident, spec.baseline)
            outcome = run(expression, context)
        except WarroomError as err:
            _fail(err)
        finally:
            loaded.store.close()
        rerun = f"warroom dsl eval {shlex.quote(outcome.expression)} {options}"
        if as_json:
            typer.echo(json.dumps(to_json(outcome, context, spec.id, rerun), indent=2))
        else:
            _print(outcome, context, spec.id, rerun)

    @app.command("check")
    def check_command(expression: ExprArgument) -> None:
        """Parse an expression and print its normalised form (no data needed)."""
        try:
            typer.echo(unparse(parse(expression)))
        except WarroomError as err:
            _fail(err)

    @app.command("functions")
    def functions_command() -> None:
        """List the selectors, functions and named times of the language."""
        for spec in SELECTORS.values():
            typer.echo(f"{spec.usage:48} {spec.doc}")
        for signature in FUNCTIONS.values():
            typer.echo(f"{signature.usage:48} {signature.doc}")
        typer.echo(f"{'names':48} {', '.join(ANCHORS)}")

    return app


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def to_json(outcome: Outcome, context: Context, case_id: str, rerun: str) -> dict[str, Any]:
    """The evidence and the case's times as plain JSON (NaN becomes null)."""
    evidence = outcome.evidence
    payload: dict[str, Any] = {
        "id": evidence.id,
        "expression": outcome.expression,
        "type": type(outcome.value).__name__.lower(),
        "value": _number(evidence.value),
        "unit": evidence.unit,
        "baseline": _number(evidence.baseline),
        "statement": evidence.statement,
        "case": case_id,
        "window": [context.window.start, context.window.end],
        "baseline_window": [context.baseline.start, context.baseline.end],
        "alert": context.alert,
        "rerun": rerun,
    }
    if isinstance(outcome.value, Templates):
        payload["templates"] = [
            {"template": t.template, "count": t.count} for t in outcome.value.items
        ]
    return payload


def _print(outcome: Outcome, context: Context, case_id: str, rerun: str) -> None:
    evidence = outcome.evidence
    typer.echo(evidence.statement)
    typer.echo(f"  id      {evidence.id}")
    typer.echo(f"  case    {case_id}: window {context.window}, baseline {context.baseline}")
    typer.echo(f"  re-run  {rerun}")
