"""`warroom receive`: the OTLP/HTTP receiver on the command line.

    register(app)     # cli.py adds the command to warroom's typer app

It serves until interrupted (Ctrl-C or SIGTERM); what it accepted stays in --dir, which
`warroom investigate` reads while it runs (telemetry/otlp_segments.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from warroom.errors import WarroomError

DEFAULT_PORT = 4318  # the OTLP/HTTP port the SDKs and the collector send to by default
MAX_BODY_LIMIT = 1 << 30

console = Console(stderr=True)

DirOption = Annotated[
    Path,
    typer.Option(
        "--dir",
        help="Folder to store into (made if missing): one Parquet segment per accepted request "
        "under spans, logs and metrics sub-folders; investigations read it while it runs.",
    ),
]
HostOption = Annotated[
    str,
    typer.Option(
        "--host",
        help="Address to listen on. The default takes only this machine's own senders; give "
        "0.0.0.0 to take other machines' (there is no authentication).",
    ),
]
PortOption = Annotated[
    int, typer.Option("--port", min=1, max=65535, help="TCP port (4318 is OTLP/HTTP's).")
]
MaxBytesOption = Annotated[
    int,
    typer.Option(
        "--max-request-bytes",
        min=1024,
        max=MAX_BODY_LIMIT,
        help="Largest request body accepted, before and after gzip (larger: 413).",
    ),
]


def register(app: typer.Typer) -> None:
    """Add the `receive` command to `app`."""
    app.command(
        "receive",
        help=(
            "Receive OpenTelemetry over OTLP/HTTP (POST /v1/traces, /v1/logs, /v1/metrics; "
            "JSON or protobuf, gzip) and store it for investigations: point an SDK's or a "
            "collector's OTLP/HTTP exporter at http://HOST:PORT. A bad payload gets 400 naming "
            "what is wrong and stores nothing; data is on disk before the 200. "
            "Needs warroom\\[serve]."
        ),
    )(receive)


def receive(
    directory: DirOption,
    host: HostOption = "127.0.0.1",
    port: PortOption = DEFAULT_PORT,
    max_request_bytes: MaxBytesOption = 16 << 20,
) -> None:
    """Serve the OTLP/HTTP receiver until interrupted."""
    try:
        from warroom.telemetry.otlp_receiver import create_app, serve_import

        app = create_app(directory, max_request_bytes)
        uvicorn = serve_import("uvicorn")
    except WarroomError as err:
        console.print(f"[bold red]error:[/] {escape(str(err))}", soft_wrap=True)
        raise typer.Exit(2) from None
    where = f"http://{host}:{port}"
    console.print(
        f"warroom receive: listening on {where}/v1/traces, /v1/logs, /v1/metrics; "
        f"storing in {directory.resolve()}",
        soft_wrap=True,
    )
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot listen (port taken, address not ours)
        raise typer.Exit(2) from None
    if not server.started:
        raise typer.Exit(2)
