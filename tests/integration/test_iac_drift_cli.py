"""`warroom topology diff` and `warroom investigate --iac` on case folders: the drift of a
hand-built case, and the declared graph filling in a call the traces lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from warroom.cli import app
from warroom.intake.case_write import write_case_folder
from warroom.model import Incident, TimeRange
from warroom.telemetry.store import TelemetryStore

runner = CliRunner()
T0 = 1_750_000_000.0
BASELINE = TimeRange(T0, T0 + 600)
WINDOW = TimeRange(T0 + 600, T0 + 1200)

MANIFESTS = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: frontend
spec:
  selector: {matchLabels: {app: frontend}}
  template:
    metadata: {labels: {app: frontend}}
    spec:
      containers:
        - name: frontend
          image: shop/frontend:1
          env:
            - name: CART_ADDR
              value: cartservice:7070
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cart
spec:
  selector: {matchLabels: {app: cart}}
  template:
    metadata: {labels: {app: cart}}
    spec:
      containers:
        - name: cart
          image: shop/cart:1
          env:
            - name: DB_URL
              value: postgresql://db:5432/shop
            - name: PAY_URL
              value: https://api.pay.example.com/v1
---
apiVersion: v1
kind: Service
metadata:
  name: cartservice
spec:
  selector: {app: cart}
  ports: [{port: 7070}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
        - name: db
          image: postgres:15
---
apiVersion: v1
kind: Service
metadata:
  name: db
spec:
  selector: {app: db}
  ports: [{port: 5432}]
"""


def _spans() -> dict[str, list[object]]:
    """Baseline: frontend -> cartservice -> db, each minute. Window: frontend -> cartservice and
    frontend -> ad, each minute; nobody calls db."""
    rows: dict[str, list[object]] = {
        k: []
        for k in ("trace_id", "span_id", "parent_id", "service", "operation", "start_ts", "end_ts")
    }
    rows["error"], rows["pod"] = [], []

    def span(trace: str, sid: str, parent: str, service: str, t: float) -> None:
        for key, value in zip(
            ("trace_id", "span_id", "parent_id", "service", "operation", "start_ts", "end_ts"),
            (trace, sid, parent, service, "op", t, t + 0.05),
            strict=True,
        ):
            rows[key].append(value)
        rows["error"].append(False)
        rows["pod"].append(f"{service}-0")

    for i in range(10):
        t = BASELINE.start + 60 * i + 1
        span(f"{i:032x}", f"{i:08x}a0000000", "", "frontend", t)
        span(f"{i:032x}", f"{i:08x}b0000000", f"{i:08x}a0000000", "cartservice", t + 0.01)
        span(f"{i:032x}", f"{i:08x}c0000000", f"{i:08x}b0000000", "db", t + 0.02)
    for i in range(10, 20):
        t = BASELINE.start + 60 * i + 1
        span(f"{i:032x}", f"{i:08x}a0000000", "", "frontend", t)
        span(f"{i:032x}", f"{i:08x}b0000000", f"{i:08x}a0000000", "cartservice", t + 0.01)
        span(f"{i:032x}", f"{i:08x}d0000000", f"{i:08x}a0000000", "ad", t + 0.02)
    return rows


def _metrics() -> dict[str, list[object]]:
    times = [T0 + 10 * i for i in range(120)]
    services = ["frontend", "cartservice", "ad", "db"]
    return {
        "service": [s for s in services for _ in times],
        "name": ["cpu"] * (len(times) * len(services)),
        "ts": [t for _ in services for t in times],
        "value": [1.0 + (i % 3) * 0.1 for _ in services for i in range(len(times))],
    }


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A case folder (its own graph empty) and a folder of manifests for it."""
    root = tmp_path_factory.mktemp("iac-drift")
    store = TelemetryStore()
    store.insert_columns("metrics", _metrics())
    store.insert_columns("spans", _spans())
    incident = Incident("drift-1", WINDOW, WINDOW.start + 300, "frontend")
    write_case_folder(root / "cases" / "drift-1", incident, store, BASELINE, ())
    store.close()
    (root / "k8s").mkdir()
    (root / "k8s" / "shop.yaml").write_text(MANIFESTS)
    return root / "cases", root / "k8s"


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_topology_diff_json_lists_the_three_kinds_of_drift(shop):
    cases, k8s = shop
    args = ["topology", "diff", "--iac", str(k8s), "--dataset", "files", "--root", str(cases)]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    yaml_path = k8s / "shop.yaml"
    assert (data["case"], data["declared"], data["agreed"]) == ("drift-1", 3, 1)
    [undeclared] = data["undeclared"]
    assert (undeclared["caller"], undeclared["callee"], undeclared["calls"]) == (
        "frontend",
        "ad",
        10,
    )
    assert undeclared["sources"] == [f"{yaml_path}:{_line(MANIFESTS, 'name: frontend')}"]
    assert undeclared["example"].startswith("trace ")
    [silent] = data["silent"]
    assert (silent["caller"], silent["callee"]) == ("cartservice", "db")
    assert silent["sources"] == [f"{yaml_path}:{_line(MANIFESTS, 'name: DB_URL')}"]
    [blind] = data["unobservable"]
    assert (blind["caller"], blind["callee"]) == ("cartservice", "api.pay.example.com")
    assert blind["reason"] == "no telemetry from api.pay.example.com"
    assert data["renamed"] == [{"iac": "cart", "telemetry": "cartservice"}]

    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "observed, not declared" in table.stdout and "cartservice" in table.stdout


def test_investigate_iac_puts_the_drift_in_every_report(shop, tmp_path):
    cases, k8s = shop
    md, html = tmp_path / "r.md", tmp_path / "r.html"
    args = ["investigate", "--dataset", "files", "--root", str(cases), "--planner", "ranking"]
    result = runner.invoke(
        app, [*args, "--iac", str(k8s), "--json", "--out", str(md), "--html", str(html)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    drift = data["topology_drift"]
    assert [(e["caller"], e["callee"]) for e in drift["silent"]] == [("cartservice", "db")]
    assert any(n.startswith("declared graph: 3 calls from") for n in data["notes"])
    text = md.read_text()
    assert "## Topology drift" in text and "### Declared, no traffic in the window" in text
    assert f"{k8s / 'shop.yaml'}:{_line(MANIFESTS, 'name: DB_URL')}" in text
    page = html.read_text()
    assert "<h2>Topology drift</h2>" in page and "api.pay.example.com" in page

    plain = runner.invoke(app, [*args, "--json"])
    assert plain.exit_code == 0, plain.output
    assert "topology_drift" not in json.loads(plain.stdout)


def test_live_sources_get_the_same_drift(shop, tmp_path):
    """A `warroom receive` folder is a live source: investigate --iac and topology diff fetch
    the window through the source seam and find the drift the case folder shows."""
    from warroom.telemetry.otlp_segments import Segments

    _, k8s = shop
    segments = Segments(tmp_path / "received")
    segments.prepare()
    segments.write("metrics", _metrics(), key="m1")
    segments.write("spans", _spans(), key="s1")
    live = [
        "--received",
        str(tmp_path / "received"),
        "--service",
        "frontend",
        "--start",
        str(WINDOW.start),
        "--end",
        str(WINDOW.end),
        "--alert-time",
        str(WINDOW.start + 300),
        "--cache",
        ":memory:",
    ]
    diff = runner.invoke(app, ["topology", "diff", "--iac", str(k8s), *live, "--json"])
    assert diff.exit_code == 0, diff.output
    data = json.loads(diff.stdout)
    assert [(e["caller"], e["callee"]) for e in data["undeclared"]] == [("frontend", "ad")]
    assert [(e["caller"], e["callee"]) for e in data["silent"]] == [("cartservice", "db")]
    args = ["investigate", *live, "--references", "0", "--planner", "ranking", "--json"]
    found = runner.invoke(app, [*args, "--iac", str(k8s)])
    assert found.exit_code == 0, found.output
    drift = json.loads(found.stdout)["topology_drift"]
    assert drift["silent"] == data["silent"] and drift["undeclared"] == data["undeclared"]


def test_a_folder_without_infrastructure_code_fails_before_loading(shop, tmp_path):
    cases, _ = shop
    result = runner.invoke(
        app,
        ["investigate", "--dataset", "files", "--root", str(cases), "--iac", str(tmp_path)],
    )
    assert result.exit_code == 2
    assert "no infrastructure code in" in result.output


# -- the declared graph fills in what the traces lost (the gym's shop, hard knobs) ----------


@pytest.fixture(scope="module")
def lost_edges(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A shop incident (pool exhaustion in orders-db) with half the services' spans dropped,
    written as a case folder without its declared graph, and the shop's manifests."""
    from warroom.gym import simulator, topologies
    from warroom.gym.bench import HARD_KNOBS
    from warroom.gym.interop import write_case
    from warroom.gym.manifests import write_manifests

    root = tmp_path_factory.mktemp("iac-lost")
    case = simulator.generate("shop", "db-pool-exhaustion", 2100, simulator.Knobs(**HARD_KNOBS))
    try:
        traced = {str(r[0]) for r in case.store.rows("SELECT DISTINCT service FROM spans")}
        assert "checkout" not in traced and "catalog" not in traced  # callers of orders-db
        case.graph_edges = ()
        write_case(case, root / "cases" / case.id)
    finally:
        case.store.close()
    write_manifests(topologies.shop(), root / "k8s")
    return root / "cases", root / "k8s"


def test_iac_puts_the_lost_calls_into_the_graph_and_the_path(lost_edges):
    cases, k8s = lost_edges
    args = ["investigate", "--dataset", "files", "--root", str(cases), "--planner", "ranking"]
    without = runner.invoke(app, [*args, "--json"])
    with_iac = runner.invoke(app, [*args, "--json", "--iac", str(k8s)])
    assert without.exit_code == 0 and with_iac.exit_code == 0, with_iac.output
    before, after = json.loads(without.stdout)["culprit"], json.loads(with_iac.stdout)["culprit"]
    assert before["service"] == after["service"] == "orders-db"
    assert before["path"] == ["orders-db"]  # no span links orders-db to anybody
    path = after["path"]
    assert path[0] == "orders-db" and path[-1] == "frontend" and len(path) == 3
    from warroom.gym.topologies import shop

    declared = set(shop().edges())
    assert all((callee, caller) in declared for caller, callee in zip(path, path[1:], strict=False))
