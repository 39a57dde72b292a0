"""`warroom investigate` against live backends: the sources, the window, the fetch cache.

    warroom investigate --prometheus http://127.0.0.1:9090 --service checkout --start -30m
    warroom investigate --config warroom.toml --service checkout --alert-time 2026-12-03T03:12Z

The window's telemetry is fetched once into a DuckDB file (`--cache`, default
.warroom/fetch-cache.duckdb): a re-run of the same window asks the backends nothing and gives
the same answer; `--save-case DIR` writes what was fetched as a case folder that
`investigate --dataset files` replays offline.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import duckdb
import typer

from warroom.datasets.base import CaseSpec, LoadedCase
from warroom.errors import BackendError, InputError
from warroom.experts.changes import LOOKBACK_S
from warroom.intake.case_write import write_case_folder
from warroom.model import Incident, TimeRange, from_iso, iso
from warroom.pipeline import METRIC_HISTORY_S, PRE_WINDOW_S
from warroom.telemetry.config import (
    FetchSettings,
    SourcesConfig,
    build_sources,
    from_urls,
    load_config,
)
from warroom.telemetry.sources import Fetcher, Source
from warroom.telemetry.store import TelemetryStore

DEFAULT_CACHE = Path(".warroom/fetch-cache.duckdb")
DEFAULT_LOOKBACK_S = 30 * 60.0  # window start before the alert when only the alert is given
DEFAULT_AFTER_S = 10 * 60.0  # window end after the alert (never past now)
REFERENCE_GAP_S = 3600.0  # reference windows: the window moved back by whole hours
Tables = dict[str, list[dict[str, Any]]]
_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML file with \\[sources.<kind>] tables (see README)."),
]
PrometheusOption = Annotated[
    str | None,
    typer.Option(
        "--prometheus", help="Prometheus-compatible URL (VictoriaMetrics, Thanos, Mimir too)."
    ),
]
LokiOption = Annotated[str | None, typer.Option("--loki", help="Loki URL (logs).")]
TempoOption = Annotated[str | None, typer.Option("--tempo", help="Tempo URL (traces).")]
JaegerOption = Annotated[str | None, typer.Option("--jaeger", help="Jaeger query URL (traces).")]
ElasticOption = Annotated[
    str | None, typer.Option("--elasticsearch", help="Elasticsearch/OpenSearch URL (logs).")
]
ReceivedOption = Annotated[
    str | None,
    typer.Option("--received", help="Folder a `warroom receive` stores OTLP data into."),
]
ServiceOption = Annotated[
    str | None, typer.Option("--service", help="The service that alerts (the symptom).")
]
SymptomOption = Annotated[
    str | None, typer.Option("--symptom", help="The alerting metric's name, if known.")
]
SinceOption = Annotated[
    str | None,
    typer.Option("--since", help="Window from this long ago until now: 30m, 2h, 1d."),
]
StartOption = Annotated[
    str | None,
    typer.Option("--start", help="Window start: ISO 8601, epoch seconds, 'now' or -30m/-2h."),
]
EndOption = Annotated[str | None, typer.Option("--end", help="Window end (default: now).")]
AlertOption = Annotated[
    str | None,
    typer.Option("--alert-time", help="When the alert fired (default: the window's end)."),
]
CacheOption = Annotated[
    Path,
    typer.Option("--cache", help="DuckDB file caching what was fetched (':memory:' for none)."),
]
SaveCaseOption = Annotated[
    Path | None,
    typer.Option("--save-case", help="Write what was fetched as a case folder here."),
]
ReferencesOption = Annotated[
    int,
    typer.Option(
        "--references",
        min=0,
        max=24,
        help="Earlier windows (whole hours back) fetched to tell the incident's findings from "
        "the system's usual variation.",
    ),
]


def source_urls(
    prometheus: str | None,
    loki: str | None,
    tempo: str | None,
    jaeger: str | None,
    elasticsearch: str | None,
    received: str | None,
) -> dict[str, str | None]:
    """The sources named on a command line, by kind (None: not given)."""
    return {
        "prometheus": prometheus,
        "loki": loki,
        "tempo": tempo,
        "jaeger": jaeger,
        "elasticsearch": elasticsearch,
        "received": received,
    }


@dataclass(frozen=True)
class LiveRequest:
    """What the command line asked for, as given."""

    config: Path | None = None
    urls: dict[str, str | None] = field(default_factory=dict)
    service: str | None = None
    symptom: str | None = None
    start: str | None = None
    end: str | None = None
    alert: str | None = None
    cache: Path = DEFAULT_CACHE
    references: int = 3
    since: str | None = None  # "30m": the same as start "-30m"

    @property
    def wanted(self) -> bool:
        """Whether any live source was named."""
        return self.config is not None or any(self.urls.values())


def parse_time(text: str, now: float, option: str) -> float:
    """ISO 8601 (naive means UTC), epoch seconds, 'now', or a time before now such as -30m."""
    value = text.strip()
    if value == "now":
        return now
    relative = _RELATIVE.match(value)
    if relative:
        return now - float(relative.group(1)) * _UNIT_S[relative.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return from_iso(value)
    except ValueError:
        raise InputError(
            f"{option} {text!r}: not a time (ISO 8601, epoch seconds, 'now' or -30m)"
        ) from None


def live_window(request: LiveRequest, now: float) -> tuple[TimeRange, float]:
    """The window and the alert time: any of start, end, alert given; the rest from defaults."""
    end = parse_time(request.end, now, "--end") if request.end else None
    alert = parse_time(request.alert, now, "--alert-time") if request.alert else None
    if end is None:
        end = min(now, alert + DEFAULT_AFTER_S) if alert is not None else now
    if alert is None:
        alert = end
    if request.since and request.start:
        raise InputError("give --since or --start, not both")
    start_text = f"-{request.since.lstrip('-')}" if request.since else request.start
    option = "--since" if request.since else "--start"
    start = parse_time(start_text, now, option) if start_text else alert - DEFAULT_LOOKBACK_S
    if not start < end:
        raise InputError(f"the window ends ({iso(end)}) before it starts ({iso(start)})")
    if not start <= alert <= end:
        raise InputError(f"the alert time {iso(alert)} is outside the window {iso(start)}..")
    return TimeRange(start, end), alert


def open_live_case(
    request: LiveRequest, progress: Callable[[str], None] | None = None
) -> tuple[LoadedCase, Fetcher]:
    """The incident and a store filled from the backends (the store fetches lazily after)."""
    started = time.perf_counter()
    settings, tables, where = _sources_config(request)
    sources = build_sources(tables, where)
    if not sources:
        raise InputError(f"{where}: no source configured")
    window, alert = live_window(request, time.time())
    store = _open_store(request.cache)
    fetcher = Fetcher(store, sources, settings.budget_s, settings.concurrency, progress)
    store.attach(fetcher)
    references = _references(window, request.references)
    fetcher.prefetch(_plan(window, references))
    service = request.service or "unknown"
    incident = Incident(
        id=f"live-{service}-{int(alert)}",
        window=window,
        alert_time=alert,
        symptom_service=request.service,
        symptom_metric=request.symptom,
    )
    spec = CaseSpec(incident.id, incident, None, None, references=references)
    return LoadedCase(spec, store, time.perf_counter() - started), fetcher


def _sources_config(request: LiveRequest) -> tuple[FetchSettings, Tables, str]:
    config = load_config(request.config) if request.config else SourcesConfig()
    tables: Tables = {kind: list(items) for kind, items in config.sources.items()}
    for kind, items in from_urls(request.urls).items():
        tables.setdefault(kind, []).extend(items)
    where = f"config {request.config}" if request.config else "the command line"
    return config.fetch, tables, where


def _plan(window: TimeRange, references: tuple[TimeRange, ...]) -> dict[str, list[TimeRange]]:
    """What the pipeline will read, asked for at once: an hour of metric history, ten minutes
    of logs and traces before the window, the changes of the quarter hour before it."""
    before = {"metrics": METRIC_HISTORY_S, "logs": PRE_WINDOW_S, "spans": PRE_WINDOW_S}
    before["events"] = LOOKBACK_S
    return {
        table: [TimeRange(window.start - back, window.end), *references]
        for table, back in before.items()
    }


def _references(window: TimeRange, count: int) -> tuple[TimeRange, ...]:
    """The window moved back by whole hours, far enough that none overlaps its baseline."""
    step = REFERENCE_GAP_S * max(1.0, -(-2 * window.seconds // REFERENCE_GAP_S))
    first = METRIC_HISTORY_S + step
    return tuple(window.shifted(-(first + i * step)) for i in range(count))


def _open_store(cache: Path) -> TelemetryStore:
    if str(cache) == ":memory:":
        return TelemetryStore()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        return TelemetryStore(str(cache))
    except duckdb.IOException as err:
        raise InputError(
            f"--cache {cache}: cannot open ({err}); is another warroom using it?"
        ) from None
    except OSError as err:
        raise InputError(f"--cache {cache}: cannot create ({err.strerror or err})") from None


def check_case_folder(path: Path | None) -> None:
    """--save-case names a folder (made if missing), not a file."""
    if path is not None and path.exists() and not path.is_dir():
        raise InputError(f"--save-case {path}: a file is there (give a folder)")


def save_case(path: Path | None, spec: CaseSpec, store: TelemetryStore) -> None:
    """What was fetched, as a case folder that `investigate --dataset files` replays."""
    if path is None:
        return
    try:
        write_case_folder(
            path, spec.incident, store, spec.baseline, spec.graph_edges, spec.references
        )
    except OSError as err:
        raise InputError(f"--save-case {path}: cannot write ({err.strerror or err})") from None


@dataclass(frozen=True)
class Probe:
    """What one source answered for the last few minutes."""

    source: str
    table: str
    identity: str
    ok: bool
    seconds: float
    rows: int = 0
    services: int = 0
    detail: str = ""
    version: str = ""  # where the backend says (Prometheus' buildinfo)


PROBE_WINDOW_S = 300.0
PROBE_TIMEOUT_S = 10.0


def probe_sources(request: LiveRequest, timeout_s: float = PROBE_TIMEOUT_S) -> list[Probe]:
    """Ask every configured source for the last five minutes, one at a time, each bounded."""
    _, tables, where = _sources_config(request)
    sources = build_sources(tables, where)
    if not sources:
        raise InputError(f"{where}: no source configured")
    now = time.time()
    window = TimeRange(now - PROBE_WINDOW_S, now)
    return [_probe(source, window, timeout_s) for source in sources]


def _probe(source: Source, window: TimeRange, timeout_s: float) -> Probe:
    started = time.monotonic()
    try:
        batch = source.fetch(window, started + timeout_s)
    except BackendError as err:
        took = time.monotonic() - started
        return Probe(source.name, source.table, source.identity(), False, took, detail=str(err))
    took = time.monotonic() - started
    services = len(set(batch.columns.get("service", [])))
    detail = "; ".join(batch.degraded)
    asker = getattr(source, "version", None)  # an optional extra of some backends
    version = asker(time.monotonic() + timeout_s) if callable(asker) else ""
    return Probe(
        source.name,
        source.table,
        source.identity(),
        True,
        took,
        batch.rows,
        services,
        detail,
        version,
    )


def register(app: typer.Typer) -> None:
    """Add `warroom sources check` to the application."""
    sources_app = typer.Typer(help="The backends warroom reads: check them before an incident.")
    sources_app.command("check")(sources_check)
    app.add_typer(sources_app, name="sources")


def sources_check(
    config: ConfigOption = None,
    prometheus: PrometheusOption = None,
    loki: LokiOption = None,
    tempo: TempoOption = None,
    jaeger: JaegerOption = None,
    elasticsearch: ElasticOption = None,
    received: ReceivedOption = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, max=600, help="Seconds per source.")
    ] = PROBE_TIMEOUT_S,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Ask each source for the last five minutes: reachable, how fast, what it holds. Exit
    status 1 when one is not reachable (for scripts, like promtool check)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(stderr=True)
    urls = source_urls(prometheus, loki, tempo, jaeger, elasticsearch, received)
    try:
        probes = probe_sources(LiveRequest(config, urls), timeout)
    except InputError as err:
        console.print(f"[bold red]error:[/] {escape(str(err))}", soft_wrap=True)
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps([asdict(p) for p in probes], indent=2))
    else:
        table = Table("source", "table", "state", "seconds", "rows", "services", "detail")
        for p in probes:
            state = f"[green]ok[/] {escape(p.version)}" if p.ok else "[red]unreachable[/]"
            row = (p.source, p.table, state, f"{p.seconds:.2f}", str(p.rows), str(p.services))
            table.add_row(*row, escape(p.detail))
        Console().print(table)
    if not all(p.ok for p in probes):
        raise typer.Exit(1)


def register_bench(bench_app: typer.Typer) -> None:
    """Add `warroom bench live`."""
    bench_app.command("live")(bench_live)


def bench_live(
    cases: Annotated[
        int, typer.Option("--cases", min=1, max=10, help="How many of the ten gym cases.")
    ] = 10,
    backend: Annotated[str, typer.Option(help="prometheus, victoria-metrics or both.")] = "both",
    scale: Annotated[
        bool, typer.Option(help="Also a 40-service case (random-40), for the fetch cost.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Gym cases backfilled into a real Prometheus 2.42 / VictoriaMetrics 1.79 on 127.0.0.1 and
    investigated through them: the same culprit, path and evidence as from the same samples in
    a store? Fetch and analysis seconds, requests, bytes, series."""
    from rich.console import Console
    from rich.markup import escape

    from warroom.bench import live as bench
    from warroom.errors import WarroomError

    console = Console(stderr=True)
    backends = bench.BACKENDS if backend == "both" else (backend,)
    plan = list(bench.DEFAULT_CASES[:cases]) + ([bench.SCALE_CASE] if scale else [])
    try:
        if backend not in (*bench.BACKENDS, "both"):
            raise InputError(f"unknown backend {backend!r} (known: prometheus, victoria-metrics)")
        with console.status("starting servers...") as status:
            results = bench.run_live(plan, backends, progress=status.update)
    except WarroomError as err:
        console.print(f"[bold red]error:[/] {escape(str(err))}", soft_wrap=True)
        raise typer.Exit(2) from None
    summary = bench.totals(results)
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    Console().print(_live_table(results))
    Console().print("same: culprit, path, evidence values (y/n)")


def _live_table(results: list[Any]) -> Any:
    from rich.table import Table

    table = Table("case", "via", "svc", "culprit", "same", "fetch s", "analysis s", "req", "MB")
    for r in results:
        same = "".join("y" if ok else "n" for ok in (r.same_culprit, r.same_path, r.same_evidence))
        cells = (r.case, r.backend, str(r.services), str(r.culprit_live), same)
        costs = (f"{r.fetch_seconds:.2f}", f"{r.analysis_seconds:.2f}", str(r.requests))
        table.add_row(*cells, *costs, f"{r.bytes / 1e6:.2f}")
    return table
