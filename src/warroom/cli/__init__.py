"""warroom's command line: investigate an incident (a data set's case or live backends), run the
benchmarks and the gym, serve, or the demo. One module per command group.

Errors a user can fix (a bad path, an unknown case) print one line and exit 2, no traceback.
"""

from __future__ import annotations

import sys

from warroom.cli import bench, gym, incident, live, serve, tools, topology  # noqa: F401 (register commands)
from warroom.cli.common import app, bench_app, console
from warroom.cli.receive import register as register_receive
from warroom.errors import WarroomError

__all__ = ["app", "main"]


register_receive(app)  # `warroom receive`: the OTLP/HTTP receiver (cli/receive.py)
serve.register()  # `warroom serve`
live.register(app)  # `warroom sources check`
live.register_bench(bench_app)  # `warroom bench live`
topology.register(app)  # `warroom topology show --iac DIR` (cli/topology.py)


def main() -> None:
    """Entry point that keeps tracebacks away from users for errors they can fix."""
    try:
        app()
    except WarroomError as err:
        console.print(f"[bold red]error:[/] {err}")
        sys.exit(2)


if __name__ == "__main__":
    main()
