"""`warroom topology show|diff|gym-manifests`: the service graph a folder of infrastructure
code declares (Kubernetes manifests, Compose files, Terraform, CloudFormation), its drift from
what a case's traces show, and the gym's topologies written out as manifests.

    register(app)     # cli/__init__.py adds the `topology` group to warroom's typer app

show: a table by default (components with their kinds, edges with the file:line they come
from), --json the IacGraph as JSON, --dot Graphviz text for `dot -Tsvg`. diff: the calls
observed but not declared, declared but silent, declared but unobservable (tables or --json).
`investigate --iac` uses declared_for and case_drift from here for its graph and its report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from warroom.cli import live
from warroom.cli.common import console, fail, out
from warroom.cli.incident import Dataset, load_dataset_case
from warroom.errors import InputError, WarroomError
from warroom.model import Incident, TimeRange
from warroom.pipeline import PRE_WINDOW_S, SLO_PREFIX
from warroom.telemetry.store import TelemetryStore
from warroom.topology.iac.drift import Drift, Traced, drift, normal_peer
from warroom.topology.iac.names import declared_edges, declared_kinds, match_names

if TYPE_CHECKING:
    from warroom.datasets.base import LoadedCase
    from warroom.telemetry.sources import Fetcher
    from warroom.topology.iac.model import IacGraph

topology_app = typer.Typer(
    help="The service graph that infrastructure code declares.", no_args_is_help=True
)

IacOption = Annotated[
    Path,
    typer.Option(
        "--iac",
        help="Folder of infrastructure code: Kubernetes manifests (also Helm-rendered), "
        "Compose files, Terraform (*.tf, *.tfstate), CloudFormation templates.",
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the graph as JSON.")]
DotFlag = Annotated[bool, typer.Option("--dot", help="Print the graph as Graphviz DOT.")]

# Graphviz node shapes by component kind, so a rendered graph shows stores and entry points.
_SHAPES = {
    "service": "box",
    "database": "cylinder",
    "cache": "cylinder",
    "queue": "cds",
    "load-balancer": "invtrapezium",
    "external": "ellipse",
    "storage": "folder",
    "unknown": "ellipse",
}


def register(app: typer.Typer) -> None:
    """Add the `topology` command group to `app`."""
    app.add_typer(topology_app, name="topology")


@topology_app.command("show")
def show(iac: IacOption, as_json: JsonFlag = False, dot: DotFlag = False) -> None:
    """Show the components and calls a folder of infrastructure code declares."""
    if as_json and dot:
        fail(WarroomError("give --json or --dot, not both"))
    try:
        graph = read_folder(iac)
    except WarroomError as err:
        fail(err)
        return
    if as_json:
        typer.echo(json.dumps(graph.to_dict(), indent=2))
    elif dot:
        typer.echo(to_dot(graph))
    else:
        _print_tables(graph, iac)
    for problem in graph.problems:
        console.print(f"[yellow]warning:[/] {escape(problem)}", soft_wrap=True)


def read_folder(folder: Path) -> IacGraph:
    """read_iac, or an InputError naming the extra when its parsers are not installed."""
    try:
        from warroom.topology.iac.load import read_iac
    except ImportError as err:
        hint = "pip install 'warroom[iac]'"
        raise InputError(f"reading infrastructure code needs {err.name}: {hint}") from err
    return read_iac(folder)


def _print_tables(graph: IacGraph, folder: Path) -> None:
    """Components and calls as tables; file:line under the folder, folded rather than cut
    (a source is only useful whole)."""
    caption = f"files under {folder}"
    components = Table(title="components", title_justify="left", caption=escape(caption))
    for column in ("name", "kind", "declared at"):
        components.add_column(column, overflow="fold")
    for component in sorted(graph.components, key=lambda c: (c.kind, c.name)):
        where = _under(component.source, folder)
        components.add_row(escape(component.name), component.kind, escape(where))
    edges = Table(title="declared calls", title_justify="left", caption=escape(caption))
    for column in ("caller", "callee", "via", "at"):
        edges.add_column(column, overflow="fold")
    for edge in graph.edges:
        row = (edge.caller, edge.callee, edge.via, _under(edge.source, folder))
        edges.add_row(*(escape(v) for v in row))
    out.print(components)
    out.print(edges)
    if graph.unknown_kinds:
        unknown = Table(title="not understood (counted, not read)", title_justify="left")
        unknown.add_column("kind")
        unknown.add_column("count", justify="right")
        for kind, count in sorted(graph.unknown_kinds.items()):
            unknown.add_row(escape(kind), str(count))
        out.print(unknown)


def _under(source: str, folder: Path) -> str:
    """A source path relative to the folder shown (the caption names the folder)."""
    prefix = f"{folder}/"
    return source[len(prefix) :] if source.startswith(prefix) else source


def to_dot(graph: IacGraph) -> str:
    """Graphviz text: one node per component shaped by kind, one edge per caller -> callee
    (the first declaration's via and file:line as its tooltip)."""
    lines = ["digraph iac {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for component in graph.components:
        shape = _SHAPES.get(component.kind, "ellipse")
        label = f"{component.name}\\n{component.kind}"
        style = ', style="dashed"' if component.kind == "external" else ""
        lines.append(
            f"  {_quote(component.name)} [shape={shape}, label={_quote(label, raw=True)}{style}];"
        )
    first: dict[tuple[str, str], str] = {}
    for edge in graph.edges:
        first.setdefault((edge.caller, edge.callee), f"{edge.via} ({edge.source})")
    for (caller, callee), tooltip in first.items():
        lines.append(f"  {_quote(caller)} -> {_quote(callee)} [tooltip={_quote(tooltip)}];")
    lines.append("}")
    return "\n".join(lines)


def _quote(text: str, raw: bool = False) -> str:
    """A DOT string; `raw` keeps the \\n line breaks a label asks for."""
    escaped = text.replace('"', '\\"') if raw else text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


# -- what --iac gives an investigation -----------------------------------------------------


@dataclass(frozen=True)
class Declared:
    """A folder's graph with its names matched to a case's telemetry: the declared edges and
    kinds in telemetry names, ready for the investigation (names.py says how names meet)."""

    folder: Path
    graph: IacGraph
    names: dict[str, str]
    edges: tuple[tuple[str, str], ...]
    kinds: dict[str, str]

    def note(self) -> str:
        """One line for the report's notes: where the declared graph came from."""
        matched = len(self.names)
        return (
            f"declared graph: {len(self.edges)} calls from the infrastructure code under "
            f"{self.folder} ({matched} of {len(self.graph.components)} components matched to "
            "telemetry names)"
        )


def telemetry_services(store: TelemetryStore) -> list[str]:
    """The services the case's data names (the SLO series left out)."""
    return [s for s in store.services() if not s.startswith(SLO_PREFIX)]


def declared_for(folder: Path, graph: IacGraph, store: TelemetryStore) -> Declared:
    """The folder's graph (read_folder) with its names matched to the services in `store`."""
    names = match_names(graph, telemetry_services(store))
    edges = tuple(declared_edges(graph, names))
    return Declared(folder, graph, names, edges, dict(declared_kinds(graph, names)))


def case_drift(
    declared: Declared, store: TelemetryStore, incident: Incident, baseline: TimeRange | None
) -> Drift:
    """Declared against the calls of the incident window's spans; an end is traced when it has
    spans (or is named as a peer) in the window or its baseline."""
    window = incident.window
    spans = store.spans(window)
    # Live stores were filled for the ten minutes before the window (cli/live's prefetch plan)
    # or the pipeline read them: the local table holds what there is to know.
    before = baseline or TimeRange(window.start - PRE_WINDOW_S, window.start)
    rows = store.rows(
        "SELECT DISTINCT service, coalesce(peer, '') FROM spans WHERE start_ts >= ? AND "
        "start_ts < ?",
        [min(before.start, window.start), max(before.end, window.end)],
    )
    senders = frozenset(str(service) for service, _ in rows)
    traced = Traced(senders, frozenset(normal_peer(str(peer)) for _, peer in rows if peer))
    services = telemetry_services(store)
    return drift(declared.graph, spans, declared.names, traced, services)


# -- warroom topology diff ------------------------------------------------------------------


@topology_app.command("diff")
def diff(
    iac: IacOption,
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
    as_json: JsonFlag = False,
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
) -> None:
    """Drift: calls the window's traces show but the infrastructure code does not declare, and
    declared calls without traffic (a data set's case, or live backends like investigate's)."""
    urls = live.source_urls(prometheus, loki, tempo, jaeger, elasticsearch, received)
    request = live.LiveRequest(
        config, urls, service, symptom, start, end, alert_time, cache, 0, since
    )
    fetcher: Fetcher | None = None
    try:
        declared_graph = read_folder(iac)  # a bad folder fails before any fetching
        loaded, fetcher = _load(request, dataset, root, case)
        try:
            declared = declared_for(iac, declared_graph, loaded.store)
            spec = loaded.spec
            found = case_drift(declared, loaded.store, spec.incident, spec.baseline)
        finally:
            loaded.store.close()
    except WarroomError as err:
        fail(err)
        return
    if as_json:
        document = {"case": loaded.spec.id, "iac": str(iac), **found.to_dict()}
        typer.echo(json.dumps(document, indent=2))
    else:
        print_drift(found, loaded.spec.id)
    if fetcher is not None:
        for line in fetcher.degraded():
            console.print(f"[yellow]missing:[/] {escape(line)}", soft_wrap=True)
    for problem in declared_graph.problems:
        console.print(f"[yellow]warning:[/] {escape(problem)}", soft_wrap=True)


def _load(
    request: live.LiveRequest, dataset: Dataset | None, root: Path | None, case: str | None
) -> tuple[LoadedCase, Fetcher | None]:
    """The case from live backends when a source is given, else from the data set."""
    if request.wanted:
        with console.status("fetching from the backends..."):
            return live.open_live_case(request)
    if dataset is None or root is None:
        raise InputError("give --dataset and --root, or a live source (--prometheus ...)")
    with console.status(f"loading {dataset.value} case {case or '(first)'}..."):
        return load_dataset_case(dataset, root, case), None


def print_drift(found: Drift, case_id: str) -> None:
    """The drift as tables: observed not declared, declared silent, declared unobservable."""
    from warroom.report.drift import summary_words

    out.print(f"[bold]{escape(case_id)}[/]: {escape(summary_words(found))}")
    if found.undeclared:
        table = Table(title="observed, not declared", title_justify="left")
        for column in ("caller", "callee", "calls", "seen in", "caller declared at"):
            table.add_column(column, overflow="fold")
        for e in found.undeclared:
            cells = [e.caller, e.callee, str(e.calls), e.example or "-", ", ".join(e.sources)]
            table.add_row(*(escape(v or "-") for v in cells))
        out.print(table)
    for title, edges in (
        ("declared, no traffic in the window", found.silent),
        ("declared, unobservable", found.unobservable),
    ):
        if not edges:
            continue
        table = Table(title=title, title_justify="left")
        for column in ("caller", "callee", "declared at", "why"):
            table.add_column(column, overflow="fold")
        for e in edges:
            cells = [e.caller, e.callee, ", ".join(e.sources), e.reason]
            table.add_row(*(escape(v or "-") for v in cells))
        out.print(table)
    if found.renamed:
        pairs = ", ".join(f"{a} = {b}" for a, b in found.renamed)
        out.print(f"[dim]names matched: {escape(pairs)}[/]")


# -- warroom topology gym-manifests ---------------------------------------------------------


@topology_app.command("gym-manifests")
def gym_manifests(
    topology: Annotated[
        str, typer.Option("--topology", help="A gym topology: shop, shared-db, pipeline, random-N.")
    ] = "shop",
    folder: Annotated[Path, typer.Option("--out", help="Folder to write <topology>.yaml into.")] = (
        Path("gym-manifests")
    ),
    seed: Annotated[int, typer.Option(help="Seed of a random-N topology.")] = 0,
) -> None:
    """Write a gym topology as Kubernetes manifests (Deployments, StatefulSets, Services)."""
    from warroom.gym.manifests import write_manifests
    from warroom.gym.topologies import build

    try:
        path = write_manifests(build(topology, seed), folder)
    except ValueError as err:
        fail(WarroomError(str(err)))
        return
    except OSError as err:
        fail(InputError(f"cannot write {folder}: {err.strerror or err}"))
        return
    console.print(f"manifests written to {path}")
