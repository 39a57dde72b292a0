"""Loader for the Amazon PetShop RCA layout.

    <root>/<scenario>/graph.csv                         adjacency: row node calls column node
    <root>/<scenario>/noissue/metrics.csv               fault-free metrics (when present)
    <root>/<scenario>/<split>/issue_<n>/metrics.csv     metrics around one issue
    <root>/<scenario>/<split>/issue_<n>/target.json     alert (node, metric, agg, timestamp) + truth

metrics.csv has three header rows (node, metric, statistic) and a unix-timestamp first column;
some files repeat the header row inside the data. Series are named "<metric>.<statistic>".
A scenario without noissue/ uses the issue's rows before the alert as its baseline.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path

from warroom.datasets.base import CaseSpec, GroundTruth, LoadedCase
from warroom.errors import DatasetError
from warroom.model import Incident, TimeRange
from warroom.telemetry.store import TelemetryStore

HEADER_ROWS = 3


@dataclass(frozen=True)
class PetshopIssue:
    """One issue folder of one scenario and split."""

    scenario_dir: Path
    split: str
    issue_dir: Path

    @property
    def case_id(self) -> str:
        """<scenario>/<split>/<issue>."""
        return f"{self.scenario_dir.name}/{self.split}/{self.issue_dir.name}"


def find_scenarios(root: Path) -> list[Path]:
    """Every folder under root (root itself, or up to two levels down) holding a graph.csv."""
    if not root.is_dir():
        raise DatasetError(f"PetShop root {root} not found")
    candidates = [root, *root.glob("*"), *root.glob("*/*")]
    scenarios = sorted({p for p in candidates if (p / "graph.csv").is_file()})
    if not scenarios:
        raise DatasetError(f"no <scenario>/graph.csv under {root}: not a PetShop layout")
    return scenarios


def list_issues(root: Path) -> list[PetshopIssue]:
    """All issues of all scenarios and splits under root."""
    issues = []
    for scenario in find_scenarios(root):
        for split_dir in sorted(
            p for p in scenario.iterdir() if p.is_dir() and p.name != "noissue"
        ):
            for issue_dir in sorted(split_dir.glob("issue_*"), key=_issue_order):
                if (issue_dir / "target.json").is_file():
                    issues.append(PetshopIssue(scenario, split_dir.name, issue_dir))
    return issues


def _issue_order(path: Path) -> tuple[int, str]:
    suffix = path.name.rsplit("_", 1)[-1]
    return (int(suffix) if suffix.isdigit() else 10**9, path.name)


def resolve_case(root: Path, case_id: str | None) -> PetshopIssue:
    """The issue named by case_id (scenario/split/issue_n, or a 1-based index)."""
    issues = list_issues(root)
    if not issues:
        raise DatasetError(f"no issues with target.json under {root}")
    if case_id is None:
        return issues[0]
    if case_id.isdigit() and 1 <= int(case_id) <= len(issues):
        return issues[int(case_id) - 1]
    for issue in issues:
        if issue.case_id == case_id:
            return issue
    known = ", ".join(i.case_id for i in issues[:4])
    raise DatasetError(f"no PetShop case {case_id!r} under {root} (known: {known}, ...)")


def read_target(issue: PetshopIssue) -> dict[str, dict[str, object]]:
    """target.json, checked for the fields the case needs."""
    path = issue.issue_dir / "target.json"
    try:
        target = json.loads(path.read_text())
        target["target"]["node"], target["target"]["metric"], float(target["target"]["timestamp"])
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from err
    except (KeyError, TypeError, ValueError) as err:
        raise DatasetError(f"{path}: missing or malformed target field ({err!r})") from err
    return target


def load_case(issue: PetshopIssue, store: TelemetryStore | None = None) -> LoadedCase:
    """Load an issue's metrics (and its scenario's fault-free metrics) into a store."""
    started = time.perf_counter()
    store = store or TelemetryStore()
    target = read_target(issue)
    alert = float(target["target"]["timestamp"])  # type: ignore[arg-type]
    notes: list[str] = []
    issue_range = insert_metrics(store, issue.issue_dir / "metrics.csv")
    baseline = _load_noissue(store, issue.scenario_dir / "noissue" / "metrics.csv", notes)
    if issue_range is None:
        notes.append(f"{issue.issue_dir}/metrics.csv holds no data rows")
        issue_range = TimeRange(alert, alert + 1)
    step = _step(store, issue_range)
    window = TimeRange(alert - step / 2, max(issue_range.end, alert + step))
    if baseline is None:
        borrowed = _borrow_pre_alert_rows(store, issue, issue_range.start, step)
        baseline = TimeRange(issue_range.start - borrowed * step, window.start)
        notes.append(
            f"baseline: this issue's rows before the alert plus {borrowed} pre-alert row(s) of "
            "the scenario's other issues, moved to just before this issue"
        )
    spec = CaseSpec(
        id=issue.case_id,
        incident=Incident(
            id=issue.case_id,
            window=window,
            alert_time=alert,
            symptom_service=str(target["target"]["node"]),
            symptom_metric=f"{target['target']['metric']}.{target['target'].get('agg', 'Average')}",
        ),
        baseline=baseline,
        truth=_truth(target),
        graph_edges=read_graph(issue.scenario_dir / "graph.csv"),
        notes=tuple(notes),
    )
    return LoadedCase(spec, store, time.perf_counter() - started)


def _borrow_pre_alert_rows(
    store: TelemetryStore, issue: PetshopIssue, before: float, step: float
) -> int:
    """Copy the other issues' rows from before their alerts into a block ending at `before`.

    Without fault-free data, the moments before other alerts of the same system are the
    nearest thing to it; their time order is kept, their clock is moved next to this issue.
    Returns how many time steps were borrowed.
    """
    scratch = TelemetryStore()
    moments: list[float] = []
    for other in list_issues(issue.scenario_dir):
        if other.issue_dir == issue.issue_dir:
            continue
        alert = float(read_target(other)["target"]["timestamp"])  # type: ignore[arg-type]
        offset = len(moments) * 1e7  # keep each issue's rows apart inside the scratch store
        before_count = scratch.count("metrics")
        insert_metrics(scratch, other.issue_dir / "metrics.csv")
        scratch.execute("UPDATE metrics SET ts = ts + ? WHERE rowid >= ?", [offset, before_count])
        rows = scratch.rows(
            "SELECT DISTINCT ts FROM metrics WHERE rowid >= ? AND ts < ? ORDER BY ts",
            [before_count, alert + offset - step / 2],
        )
        moments += [float(r[0]) for r in rows]
    if not moments:
        return 0
    new_time = {t: before - step * (len(moments) - i) for i, t in enumerate(sorted(moments))}
    rows = scratch.rows(
        "SELECT service, name, ts, value FROM metrics WHERE list_contains(?, ts)", [list(new_time)]
    )
    for service, name, ts, value in rows:
        store.execute(
            "INSERT INTO metrics VALUES (?, ?, ?, ?)", [service, name, new_time[ts], value]
        )
    scratch.close()
    return len(moments)


def _truth(target: dict[str, dict[str, object]]) -> GroundTruth | None:
    root_cause = target.get("root_cause") or {}
    node = root_cause.get("node")
    if not node:
        return None
    metric = root_cause.get("metric")
    return GroundTruth(str(node), "unknown", str(metric) if metric else None)


def _load_noissue(store: TelemetryStore, path: Path, notes: list[str]) -> TimeRange | None:
    if not path.is_file():
        notes.append(f"no fault-free metrics at {path}")
        return None
    return insert_metrics(store, path)


def _step(store: TelemetryStore, window: TimeRange) -> float:
    """The sampling interval of the metrics inside window (seconds)."""
    rows = store.rows(
        "SELECT median(d) FROM (SELECT ts - lag(ts) OVER (ORDER BY ts) AS d FROM "
        "(SELECT DISTINCT ts FROM metrics WHERE ts >= ? AND ts < ?)) WHERE d > 0",
        [window.start, window.end],
    )
    return float(rows[0][0]) if rows and rows[0][0] else 300.0


def read_header(path: Path) -> list[tuple[str, str, str]]:
    """(node, metric, statistic) per data column of a three-row-header metrics.csv."""
    try:
        with path.open(newline="") as handle:
            reader = csv.reader(handle)
            rows = [next(reader) for _ in range(HEADER_ROWS)]
    except (OSError, StopIteration) as err:
        raise DatasetError(
            f"{path}: needs {HEADER_ROWS} header rows (node, metric, statistic)"
        ) from err
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise DatasetError(f"{path}: header rows have different widths {sorted(widths)}")
    return list(zip(rows[0][1:], rows[1][1:], rows[2][1:], strict=True))


def insert_metrics(store: TelemetryStore, path: Path) -> TimeRange | None:
    """Unpivot a three-row-header metrics.csv into the store; returns its time range."""
    if not path.is_file():
        raise DatasetError(f"{path}: metrics file not found")
    columns = read_header(path)
    quoted = str(path).replace("'", "''")
    source = f"read_csv('{quoted}', header=false, skip={HEADER_ROWS}, all_varchar=true)"
    try:
        names = [row[0] for row in store.rows(f"DESCRIBE SELECT * FROM {source}")]
    except Exception as err:  # duckdb raises several error types for a malformed CSV
        raise DatasetError(f"{path}: cannot read metrics ({err})") from err
    if len(names) != len(columns) + 1:
        raise DatasetError(
            f"{path}: {len(names)} data columns but {len(columns) + 1} in the header"
        )
    store.execute(
        "CREATE TEMP TABLE IF NOT EXISTS petshop_columns (col VARCHAR, node VARCHAR, name VARCHAR)"
    )
    store.execute("DELETE FROM petshop_columns")
    for col, (node, metric, stat) in zip(names[1:], columns, strict=True):
        store.execute(
            "INSERT INTO petshop_columns VALUES (?, ?, ?)", [col, node, f"{metric}.{stat}"]
        )
    ts = names[0]
    # Materialised first: with a filter on the file scan DuckDB pushes a DOUBLE cast into the
    # reader and fails on the header rows that some files repeat inside their data.
    store.execute(f"CREATE OR REPLACE TEMP TABLE petshop_raw AS SELECT * FROM {source}")
    sql = f"""
        INSERT INTO metrics
        SELECT m.node, m.name, try_cast(u.{ts} AS DOUBLE), try_cast(u.value AS DOUBLE)
        FROM (UNPIVOT petshop_raw ON COLUMNS(* EXCLUDE ({ts}))
              INTO NAME col VALUE value) AS u
        JOIN petshop_columns m USING (col)
        WHERE try_cast(u.{ts} AS DOUBLE) IS NOT NULL AND try_cast(u.value AS DOUBLE) IS NOT NULL
    """
    try:
        store.execute(sql)
        row = store.rows(
            f"SELECT min(try_cast({ts} AS DOUBLE)), max(try_cast({ts} AS DOUBLE)) FROM petshop_raw"
        )[0]
    except Exception as err:  # duckdb raises several error types for a malformed CSV
        raise DatasetError(f"{path}: cannot read metrics ({err})") from err
    return TimeRange(float(row[0]), float(row[1]) + 1.0) if row[0] is not None else None


def read_graph(path: Path) -> tuple[tuple[str, str], ...]:
    """Caller -> callee edges from an adjacency matrix CSV (row calls column when non-zero)."""
    if not path.is_file():
        return ()
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise DatasetError(f"{path}: empty graph file")
    header = rows[0][1:]
    edges = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header) + 1:
            raise DatasetError(f"{path}:{line}: expected {len(header) + 1} cells, found {len(row)}")
        for callee, cell in zip(header, row[1:], strict=True):
            if cell.strip() not in ("", "0", "0.0"):
                edges.append((row[0], callee))
    return tuple(edges)
