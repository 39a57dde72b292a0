"""`warroom serve`: the Alertmanager webhook, the investigations API and the report pages.

    WARROOM_API_TOKENS=s3cret warroom serve --config warroom.toml --port 8080

warroom.toml's `[server]` table (tokens_file, public_url, database, workers, max_body_bytes),
`[alerts]` table (how labels name the service and the window around startsAt) and
`[[server.notify]]` tables (Slack or JSON webhooks told when an investigation ends) sit beside
the `[sources.*]` tables investigations fetch from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from warroom.cli import live
from warroom.cli.common import app, bench_app, console, fail
from warroom.errors import InputError, WarroomError
from warroom.intake.files import load_toml

DEFAULT_DATA_DIR = Path(".warroom/server")
Executor = Literal["local", "ray"]


class ServerTable(BaseModel):
    """The `[server]` table of warroom.toml."""

    model_config = ConfigDict(extra="forbid")

    tokens_file: Path | None = None  # one token per line
    public_url: str | None = None
    database: str | None = None  # default: SQLite in the data dir
    workers: int = Field(default=2, ge=1, le=32)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    executor: Executor = "local"
    ray_address: str | None = None
    notify: list[dict[str, Any]] = Field(default_factory=list)


def tokens(table: ServerTable) -> tuple[SecretStr, ...]:
    """API tokens from WARROOM_API_TOKENS (comma-separated) and the tokens file."""
    found = [t.strip() for t in os.environ.get("WARROOM_API_TOKENS", "").split(",") if t.strip()]
    if table.tokens_file is not None:
        try:
            text = table.tokens_file.read_text(encoding="utf-8")
        except OSError as err:
            raise InputError(f"tokens_file {table.tokens_file}: {err.strerror or err}") from None
        found += [line.strip() for line in text.splitlines() if line.strip()]
    return tuple(SecretStr(t) for t in found)


def _tables(config: Path | None) -> tuple[ServerTable, dict[str, Any]]:
    raw = load_toml(config, "config") if config else {}
    try:
        server = ServerTable.model_validate(raw.get("server", {}))
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"config {config}: server.{where}: {first['msg']}") from None
    return server, raw.get("alerts", {})


def serve(
    config: live.ConfigOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where the database, fetch caches and logs live.")
    ] = DEFAULT_DATA_DIR,
    database: Annotated[
        str | None,
        typer.Option(help="Database URL (postgresql+psycopg://...); default SQLite in --data-dir."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=32, help="Parallel investigations.")
    ] = None,
    public_url: Annotated[
        str | None, typer.Option(help="How report links begin (default http://HOST:PORT).")
    ] = None,
    insecure_no_auth: Annotated[
        bool, typer.Option(help="Serve without tokens (a trusted, private network only).")
    ] = False,
    executor: Annotated[
        str | None,
        typer.Option(
            help="Where investigations run: local (a child process each, the default) or ray "
            "(Ray tasks: a local Ray, or the cluster at --ray-address; pip install 'warroom[ray]')."
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(help="The Ray cluster for --executor ray ('auto', 'ray://head:10001')."),
    ] = None,
    prometheus: live.PrometheusOption = None,
    loki: live.LokiOption = None,
    tempo: live.TempoOption = None,
    jaeger: live.JaegerOption = None,
    elasticsearch: live.ElasticOption = None,
    received: live.ReceivedOption = None,
) -> None:
    """Take Alertmanager's webhook (POST /api/v1/alerts) and investigate every page in the
    background; reports as JSON (/api/v1/investigations) and pages (/investigations/ID).
    Every route but /healthz and /readyz needs a token (WARROOM_API_TOKENS)."""
    urls = live.source_urls(prometheus, loki, tempo, jaeger, elasticsearch, received)
    try:
        server_app, listen = build(
            config, host, port, data_dir, database, workers, public_url, insecure_no_auth, urls,
            executor=executor, ray_address=ray_address,
        )  # fmt: skip
    except WarroomError as err:
        fail(err)
        return
    import uvicorn

    console.print(f"warroom serve on {listen}, data in {data_dir}", soft_wrap=True)
    uvicorn.run(server_app, host=host, port=port, log_level="warning")


def build(
    config: Path | None,
    host: str,
    port: int,
    data_dir: Path,
    database: str | None,
    workers: int | None,
    public_url: str | None,
    insecure_no_auth: bool,
    urls: dict[str, str | None],
    executor: str | None = None,
    ray_address: str | None = None,
) -> tuple[Any, str]:
    """The application, checked and wired, and where it listens; InputError for bad settings."""
    from warroom.server.alerts import Mapping
    from warroom.server.app import ServerSettings, create_app
    from warroom.server.repository import Repository, default_url
    from warroom.server.service import Service
    from warroom.server.workers import LiveRunner

    table, alerts_table = _tables(config)
    if not config and not any(urls.values()):
        raise InputError("no source: give --config warroom.toml or --prometheus URL ...")
    listen = f"http://{host}:{port}"
    settings = ServerSettings(
        tokens=tokens(table),
        insecure_no_auth=insecure_no_auth,
        max_body_bytes=table.max_body_bytes,
        public_url=public_url or table.public_url or listen,
    )
    try:
        mapping = Mapping.model_validate(alerts_table)
    except ValidationError as err:
        raise InputError(f"config {config}: alerts: {err.errors()[0]['msg']}") from None
    repository = Repository(database or table.database or default_url(data_dir))
    size = workers or table.workers
    live_runner = LiveRunner(data_dir, config, urls)
    runner = _runner(
        live_runner, executor or table.executor, ray_address or table.ray_address, size
    )
    service = Service(
        repository, runner, mapping, _notifier(table.notify, config), size, settings.public_url
    )
    return create_app(settings, service), listen


def _runner(live_runner: Any, executor: str, ray_address: str | None, size: int) -> Any:
    """Where each investigation runs: never in the server's own interpreter, whose GIL the
    webhook needs to answer in milliseconds."""
    if executor == "local":
        if ray_address:
            raise InputError("--ray-address needs --executor ray")
        from warroom.server.children import ChildRunner

        return ChildRunner(live_runner)
    if executor == "ray":
        from warroom.optional import import_ray
        from warroom.server.ray_runner import RayRunner

        import_ray()  # a missing ray is a one-line error now, not at the first page
        runner = RayRunner(live_runner, address=ray_address, cpus=size)
        runner.connect()  # here, in the main thread, before uvicorn takes the signals
        return runner
    raise InputError(f"--executor {executor!r}: give local or ray")


def _notifier(targets: list[dict[str, Any]], config: Path | None) -> Any:
    if not targets:
        return None
    from warroom.server.notify import Notifier, Target

    try:
        return Notifier([Target.model_validate(t) for t in targets])
    except ValidationError as err:
        first = err.errors()[0]
        raise InputError(f"config {config}: server.notify: {first['msg']}") from None


def bench_storm(
    notifications: Annotated[int, typer.Option(min=1, max=100_000)] = 1000,
    groups: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    clients: Annotated[int, typer.Option(min=1, max=64, help="Sending threads.")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """An alert storm against a real warroom serve on 127.0.0.1: every notification persisted?
    one investigation per group? the webhook's answer latency while workers investigate."""
    import json

    from warroom.bench.storm import as_json as storm_json
    from warroom.bench.storm import run_storm

    with console.status("storming...") as status:
        result = run_storm(notifications, groups, clients, progress=status.update)
    if as_json:
        print(json.dumps(storm_json(result), indent=2))
        return
    for key, value in storm_json(result).items():
        console.print(f"{key:>15}: {value}")


def register() -> None:
    """Add `warroom serve` and `warroom bench storm` to the application."""
    app.command("serve")(serve)
    bench_app.command("storm")(bench_storm)
