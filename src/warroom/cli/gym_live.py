"""`warroom gym live`: the live chaos gym on the command line (gym/live/).

    warroom gym live --episodes 6 --seed 0 [--faults cpu-hog,cache-down] [--json]
    warroom gym live --cleanup          # what a killed run left: processes, nft rules, cgroups

Brings the stack up on 127.0.0.1 (ports from --base-port), warms it up, runs the episodes,
prints the simulated gym's measures and writes everything (results.json, one case folder per
episode, every process's log) under the run folder. Needs root for cgroups and nftables; the
faults that need them are refused with the reason when they are not available.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from warroom.cli.common import console, fail, gym_app
from warroom.errors import WarroomError

WARM_UP_S = 300.0  # load before the first episode: its window and the history before it


@gym_app.command("live")
def gym_live(
    episodes: Annotated[int, typer.Option(min=1, max=200, help="How many episodes.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the episodes' faults and targets.")] = 0,
    faults: Annotated[
        str | None,
        typer.Option(help="Comma-separated fault kinds to draw from (default: every live one)."),
    ] = None,
    base_port: Annotated[
        int, typer.Option(min=1024, max=60000, help="First of the ports the gym listens on.")
    ] = 18000,
    run_dir: Annotated[
        Path | None,
        typer.Option("--run-dir", help="Where logs, cases and results go (default under /tmp)."),
    ] = None,
    warm_up: Annotated[
        float, typer.Option(min=0, max=3600, help="Seconds of load before the first episode.")
    ] = WARM_UP_S,
    quiet: Annotated[
        float, typer.Option(min=10, max=3600, help="Seconds of calm before each injection.")
    ] = 90.0,
    page_wait: Annotated[
        float,
        typer.Option(
            min=20,
            max=3600,
            help="Seconds to wait for a page (and a control's window) before "
            "asking about the frontend instead.",
        ),
    ] = 180.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    cleanup: Annotated[
        bool, typer.Option("--cleanup", help="Undo what a killed run left, then exit.")
    ] = False,
) -> None:
    """Break a real shop on this machine, let `warroom serve` investigate each page, score it."""
    from warroom.gym.live.contracts import Layout
    from warroom.gym.live.stack import cleanup as undo

    folder = (run_dir or Path("/tmp") / f"warroom-gym-live-{base_port}").resolve()
    if cleanup:
        done = undo(folder)
        console.print("\n".join(done) if done else f"nothing to clean up in {folder}")
        return
    from warroom.gym.live.episodes import Timing

    timing = Timing(quiet_s=quiet, page_wait_s=page_wait, control_s=min(page_wait, 150.0))
    try:
        results = _run(folder, Layout(base_port), episodes, seed, faults, warm_up, timing)
    except WarroomError as err:
        fail(err)
        return
    summary = _summary(results)
    _write(folder, summary)
    if as_json:
        print(json.dumps(summary, indent=1, default=str))
    else:
        _print(summary, folder)


def _run(
    folder: Path,
    layout: Any,
    count: int,
    seed: int,
    kinds: str | None,
    warm_up: float,
    timing: Any,
) -> list[Any]:
    from warroom.gym.live import registry
    from warroom.gym.live.episodes import failed_episode, plan_episodes, run_episode
    from warroom.gym.live.processes import StackError
    from warroom.gym.live.stack import Stack
    from warroom.gym.live.stack import cleanup as undo_run

    if (folder / "pids.json").exists():
        raise StackError(f"{folder} holds a running or killed gym: warroom gym live --cleanup")
    plans = plan_episodes(count, seed, [k for k in (kinds or "").split(",") if k])
    folder.mkdir(parents=True, exist_ok=True)
    undo = registry.Registry(folder)
    previous = signal.signal(signal.SIGTERM, _as_interrupt)  # a TERM cleans up like Ctrl-C
    results = []
    try:
        with Stack(folder, layout) as stack:
            console.print(f"live gym up in {folder}; warming up {warm_up:.0f} s", soft_wrap=True)
            time.sleep(warm_up)
            for plan in plans:
                try:
                    result = run_episode(stack, plan, undo, folder / "cases", _say, timing)
                except (WarroomError, httpx.HTTPError, OSError) as err:
                    # one episode that could not be run is recorded, and the next one waits
                    # for a healthy shop (which fails the run if the shop stays broken)
                    result = failed_episode(plan, err)
                    registry.cleanup(folder)  # whatever the failed fault left
                console.print(_line(result), soft_wrap=True)
                results.append(result)
                # kept after every episode: a long run cut short keeps what it measured
                _write(folder, _summary(results))
    finally:
        signal.signal(signal.SIGTERM, previous)
        left = undo_run(folder)  # the pid file's processes too, if the stack's own stop failed
        if left:
            console.print("cleaned up: " + "; ".join(left), soft_wrap=True)
    return results


def _write(folder: Path, summary: dict[str, Any]) -> None:
    scratch = folder / "results.json.tmp"
    scratch.write_text(json.dumps(summary, indent=1, default=str))
    scratch.replace(folder / "results.json")


def _as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _say(text: str) -> None:
    console.print(f"[dim]{text}[/]", soft_wrap=True)


def _line(result: Any) -> str:
    score, plan = result.score, result.plan
    if score.error:
        return f"{plan.id}: could not be run: {score.error}"
    named = score.top[0][0] if score.top else "-"
    verdict = (
        ("false alarm" if score.false_alarm else "ok")
        if plan.is_control
        else f"rank {score.rank or '-'}"
    )
    paged = f"paged ({result.alert})" if result.paged else "not paged: asked"
    return (
        f"{plan.id}: {paged}, named {named} at {score.confidence:.2f}: {verdict}; "
        f"page {result.seconds_to_page}s, report {result.seconds_to_report}s"
    )


def _summary(results: list[Any]) -> dict[str, Any]:
    from warroom.gym.scoring import summarize

    scores = [r.score for r in results]
    out = summarize(scores)
    out["episodes"] = [r.to_json() for r in results]
    out["paged"] = sum(r.paged for r in results)
    return out


MEASURES = ("cases", "AC@1", "AC@3", "fault_type", "path", "false_alarm", "mean_seconds")


def _print(summary: dict[str, Any], folder: Path) -> None:
    table = Table(title="live gym (seconds: page to report)")
    for column in ("fault", *MEASURES):
        table.add_column(column)
    for fault, row in summary["by_fault"].items():
        table.add_row(fault, *(_cell(row.get(m)) for m in MEASURES))
    table.add_row("all", *(_cell(summary.get(m)) for m in MEASURES))
    console.print(table)
    console.print(f"results: {folder / 'results.json'}; cases: {folder / 'cases'}")


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
