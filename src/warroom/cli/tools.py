"""`warroom dsl`, `warroom runbook` and `warroom demo`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from warroom.cli.common import (
    app,
)
from warroom.cli.gym import gym_run
from warroom.cli.incident import Dataset, load_dataset_case
from warroom.datasets.base import LoadedCase
from warroom.errors import WarroomError

if TYPE_CHECKING:
    pass


# --- evidence DSL: the commands live in warroom.dsl.command; cli.py only says how to open cases


def _dsl_open_dataset(name: str, root: Path, case: str | None) -> LoadedCase:
    if name not in Dataset.__members__:
        known = ", ".join(Dataset.__members__)
        raise WarroomError(f"unknown dataset {name!r} (known: {known})")
    return load_dataset_case(Dataset(name), root, case)


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
