"""`warroom topology show --iac DIR`: the service graph a folder of infrastructure code
declares (Kubernetes manifests, Compose files, Terraform, CloudFormation).

    register(app)     # cli/__init__.py adds the `topology` group to warroom's typer app

A table by default (components with their kinds, edges with the file:line they come from),
--json the IacGraph as JSON, --dot Graphviz text for `dot -Tsvg`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from warroom.cli.common import console, fail, out
from warroom.errors import InputError, WarroomError

if TYPE_CHECKING:
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
        graph = _read(iac)
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


def _read(folder: Path) -> IacGraph:
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
