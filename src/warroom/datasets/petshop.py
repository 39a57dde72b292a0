"""Loader for the Amazon PetShop RCA layout.

    <root>/<scenario>/graph.csv                         adjacency: row node calls column node
    <root>/<scenario>/noissue/metrics.csv               fault-free metrics (when present)
    <root>/<scenario>/<split>/issue_<n>/metrics.csv     metrics around one issue
    <root>/<scenario>/<split>/issue_<n>/target.json     alert (node, metric, agg, timestamp) + truth

metrics.csv has three header rows (node, metric, statistic) and a unix-timestamp first column;
some files repeat the header row inside the data. Series are named "<metric>.<statistic>".
A scenario without noissue/ uses the issue's rows before the alert as its baseline.

Files are untrusted: target.json is validated against a model, CSV headers are read as data
(never as SQL; the file path is a query parameter), times must lie in 1970..3000, and rows or
cells left out are counted in the case notes.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from warroom.datasets.base import CaseSpec, GroundTruth, LoadedCase, read_csv_head
from warroom.datasets.references import pick_references
from warroom.errors import DatasetError, InputError
from warroom.intake.files import load_json
from warroom.model import EARLIEST_TIME, LATEST_TIME, Incident, TimeRange, time_problem
from warroom.telemetry.store import TelemetryStore

HEADER_ROWS = 3
# First cells of the layout's own header rows, which some files repeat inside the data: those
# rows are skipped without a note.
_HEADER_LABELS = ("microservice", "metric", "statistic", "unix_timestamp")
_VALID = f"BETWEEN {EARLIEST_TIME!r} AND {LATEST_TIME!r}"  # our own constants, not data


class _Target(BaseModel):
    """The alert in target.json: which node's metric fired, and when."""

    model_config = ConfigDict(allow_inf_nan=False)

    node: str
    metric: str
    agg: str = "Average"
    timestamp: Annotated[float, Field(strict=True)]


class _RootCause(BaseModel):
    """The answer in target.json (node None: no known root cause)."""

    node: str | None = None
    metric: str | None = None


class TargetFile(BaseModel):
    """target.json, as far as the loader reads it."""

    target: _Target
    root_cause: _RootCause | None = None


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
    try:
        candidates = [root, *root.glob("*"), *root.glob("*/*")]
    except OSError as err:
        raise DatasetError(f"{root}: cannot list the folder ({err.strerror or err})") from None
    scenarios = sorted({p for p in candidates if (p / "graph.csv").is_file()})
    if not scenarios:
        raise DatasetError(f"no <scenario>/graph.csv under {root}: not a PetShop layout")
    return scenarios


def list_issues(root: Path) -> list[PetshopIssue]:
    """All issues of all scenarios and splits under root."""
    issues = []
    for scenario in find_scenarios(root):
        try:
            splits = sorted(p for p in scenario.iterdir() if p.is_dir() and p.name != "noissue")
        except OSError as err:
            raise DatasetError(f"{scenario}: cannot list ({err.strerror or err})") from None
        for split_dir in splits:
            for issue_dir in sorted(split_dir.glob("issue_*"), key=_issue_order):
                if (issue_dir / "target.json").is_file():
                    issues.append(PetshopIssue(scenario, split_dir.name, issue_dir))
    return issues


def _issue_order(path: Path) -> tuple[int, str]:
    suffix = path.name.rsplit("_", 1)[-1]
    return (int(suffix) if suffix.isascii() and suffix.isdigit() else 10**9, path.name)


def resolve_case(root: Path, case_id: str | None) -> PetshopIssue:
    """The issue named by case_id (scenario/split/issue_n, or a 1-based index)."""
    issues = list_issues(root)
    if not issues:
        raise DatasetError(f"no issues with target.json under {root}")
    if case_id is None:
        return issues[0]
    if case_id.isascii() and case_id.isdigit() and 1 <= int(case_id) <= len(issues):
        return issues[int(case_id) - 1]
    for issue in issues:
        if issue.case_id == case_id:
            return issue
    known = ", ".join(i.case_id for i in issues[:4])
    raise DatasetError(f"no PetShop case {case_id!r} under {root} (known: {known}, ...)")


def read_target(issue: PetshopIssue) -> TargetFile:
    """target.json, checked for the fields the case needs and for a sane alert time."""
    path = issue.issue_dir / "target.json"
    try:
        raw = load_json(path)
    except InputError as err:
        raise DatasetError(str(err)) from None
    try:
        target = TargetFile.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        raise DatasetError(
            f"{path}: missing or malformed target field ({where}: {first['msg']})"
        ) from None
    problem = time_problem(target.target.timestamp)
    if problem:
        raise DatasetError(f"{path}: target.timestamp: {problem}")
    return target


def load_case(issue: PetshopIssue, store: TelemetryStore | None = None) -> LoadedCase:
    """Load an issue's metrics (and its scenario's fault-free metrics) into a store."""
    started = time.perf_counter()
    target = read_target(issue)
    own = store is None
    store = store or TelemetryStore()
    notes: list[str] = []
    try:
        return _load(issue, store, target, notes, started)
    except BaseException:
        if own:
            store.close()  # nothing half-read: a case that fails to load hands back no store
        raise


def _load(
    issue: PetshopIssue, store: TelemetryStore, target: TargetFile, notes: list[str], started: float
) -> LoadedCase:
    alert = target.target.timestamp
    issue_range = insert_metrics(store, issue.issue_dir / "metrics.csv", notes)
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
    # The scenario's fault-free stretch and this issue's rows before the alert: other windows
    # of them tell how usual a finding is (inside the baseline too; never over the window).
    fault_free = [baseline, TimeRange(min(issue_range.start, window.start), window.start)]
    references = pick_references(window.seconds, fault_free, [window])
    spec = CaseSpec(
        id=issue.case_id,
        incident=Incident(
            id=issue.case_id,
            window=window,
            alert_time=alert,
            symptom_service=target.target.node,
            symptom_metric=f"{target.target.metric}.{target.target.agg}",
        ),
        baseline=baseline,
        truth=_truth(target),
        graph_edges=read_graph(issue.scenario_dir / "graph.csv"),
        notes=tuple(notes),
        references=references,
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
    try:
        return _borrow(store, scratch, issue, before, step)
    finally:
        scratch.close()


def _borrow(
    store: TelemetryStore, scratch: TelemetryStore, issue: PetshopIssue, before: float, step: float
) -> int:
    moments: list[float] = []
    for other in list_issues(issue.scenario_dir):
        if other.issue_dir == issue.issue_dir:
            continue
        alert = read_target(other).target.timestamp
        offset = len(moments) * 1e7  # keep each issue's rows apart inside the scratch store
        before_count = scratch.count("metrics")
        insert_metrics(scratch, other.issue_dir / "metrics.csv", [])
        scratch.execute("UPDATE metrics SET ts = ts + ? WHERE rowid >= ?", [offset, before_count])
        rows = scratch.rows(
            "SELECT DISTINCT ts FROM metrics WHERE rowid >= ? AND ts < ? ORDER BY ts",
            [before_count, alert + offset - step / 2],
        )
        moments += [float(r[0]) for r in rows]
    # Only as many steps as fit after 1970: the latest moments are the ones kept.
    room = int((before - EARLIEST_TIME) // step) if step > 0 else 0
    moments = sorted(moments)[-room:] if room > 0 else []
    if not moments:
        return 0
    new_time = {t: before - step * (len(moments) - i) for i, t in enumerate(moments)}
    rows = scratch.rows(
        "SELECT service, name, ts, value FROM metrics WHERE list_contains(?, ts)", [list(new_time)]
    )
    for service, name, ts, value in rows:
        store.execute(
            "INSERT INTO metrics (service, name, ts, value) VALUES (?, ?, ?, ?)",
            [service, name, new_time[ts], value],
        )
    return len(moments)


def _truth(target: TargetFile) -> GroundTruth | None:
    root_cause = target.root_cause
    if root_cause is None or not root_cause.node:
        return None
    return GroundTruth(root_cause.node, "unknown", root_cause.metric or None)


def _load_noissue(store: TelemetryStore, path: Path, notes: list[str]) -> TimeRange | None:
    if not path.is_file():
        notes.append(f"no fault-free metrics at {path}")
        return None
    return insert_metrics(store, path, notes)


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
    rows = read_csv_head(path, HEADER_ROWS)
    if len(rows) < HEADER_ROWS:
        raise DatasetError(f"{path}: needs {HEADER_ROWS} header rows (node, metric, statistic)")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise DatasetError(f"{path}: header rows have different widths {sorted(widths)}")
    return list(zip(rows[0][1:], rows[1][1:], rows[2][1:], strict=True))


def insert_metrics(store: TelemetryStore, path: Path, notes: list[str]) -> TimeRange | None:
    """Unpivot a three-row-header metrics.csv into the store; returns its time range.

    Rows without a numeric time (some files repeat the header inside the data) or with a time
    outside 1970..3000, and cells that are not finite numbers, are left out and counted.
    """
    if not path.is_file():
        raise DatasetError(f"{path}: metrics file not found")
    columns = read_header(path)
    # Generated column names (c0, c1, ...): the header is data, never SQL.
    width = len(columns) + 1
    types = {f"c{i}": "VARCHAR" for i in range(width)}
    source = (
        f"read_csv(?, header=false, skip={HEADER_ROWS}, auto_detect=false, columns=?, "
        "delim=',', quote='\"', escape='\"')"
    )
    try:
        store.execute(
            f"CREATE OR REPLACE TEMP TABLE petshop_raw AS SELECT * FROM {source}",
            [str(path), types],
        )
    except Exception as err:  # duckdb raises several error types for a malformed CSV
        first = str(err).splitlines()[0][:300] if str(err) else type(err).__name__
        raise DatasetError(f"{path}: cannot read metrics ({first})") from err
    try:
        return _unpivot(store, path, columns, notes)
    finally:
        store.execute("DROP TABLE IF EXISTS petshop_raw")
        store.execute("DROP TABLE IF EXISTS petshop_rows")


def _unpivot(
    store: TelemetryStore, path: Path, columns: list[tuple[str, str, str]], notes: list[str]
) -> TimeRange | None:
    store.execute(
        "CREATE OR REPLACE TEMP TABLE petshop_columns (col VARCHAR, node VARCHAR, name VARCHAR)"
    )
    store.execute(
        "INSERT INTO petshop_columns SELECT unnest(?), unnest(?), unnest(?)",
        [
            [f"c{i + 1}" for i in range(len(columns))],
            [node for node, _, _ in columns],
            [f"{metric}.{stat}" for _, metric, stat in columns],
        ],
    )
    store.execute(f"""
        CREATE OR REPLACE TEMP TABLE petshop_rows AS
        SELECT m.node, m.name, u.ts, try_cast(u.value AS DOUBLE) AS v, u.value
        FROM (UNPIVOT (SELECT try_cast(c0 AS DOUBLE) AS ts, * EXCLUDE (c0) FROM petshop_raw
                       WHERE try_cast(c0 AS DOUBLE) {_VALID})
              ON COLUMNS(* EXCLUDE (ts)) INTO NAME col VALUE value) AS u
        JOIN petshop_columns m USING (col)
    """)
    no_time, bad_time = store.rows(
        "SELECT count(*) FILTER (WHERE try_cast(c0 AS DOUBLE) IS NULL AND NOT "
        "list_contains(?, coalesce(c0, ''))), "
        f"count(*) FILTER (WHERE NOT try_cast(c0 AS DOUBLE) {_VALID}) FROM petshop_raw",
        [list(_HEADER_LABELS)],
    )[0]
    text, infinite = store.rows(
        "SELECT count(*) FILTER (WHERE v IS NULL), count(*) FILTER (WHERE isinf(v)) "
        "FROM petshop_rows"
    )[0]
    store.execute(
        "INSERT INTO metrics (service, name, ts, value) SELECT node, name, ts, v FROM petshop_rows "
        "WHERE v IS NOT NULL AND NOT isinf(v)"
    )
    skipped = [
        f"{n} {why}"
        for n, why in (
            (no_time, "row(s) without a numeric time"),
            (bad_time, "row(s) with a time outside 1970..3000"),
            (text, "non-numeric cell(s)"),
            (infinite, "infinite cell(s)"),
        )
        if n
    ]
    if skipped:
        notes.append(f"{path}: skipped {', '.join(skipped)}")
    row = store.rows("SELECT min(ts), max(ts) FROM petshop_rows")[0]
    return TimeRange(float(row[0]), float(row[1]) + 1.0) if row[0] is not None else None


def read_graph(path: Path) -> tuple[tuple[str, str], ...]:
    """Caller -> callee edges from an adjacency matrix CSV (row calls column when non-zero)."""
    if not path.is_file():
        return ()
    rows = _csv_rows(path)
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


def _csv_rows(path: Path) -> list[list[str]]:
    """Every row of a small CSV file, strictly UTF-8."""
    rows: list[list[str]] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            try:
                rows.extend(reader)
            except csv.Error as err:
                raise DatasetError(f"{path}:{reader.line_num}: unreadable CSV ({err})") from None
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path}: not UTF-8 (byte {err.start})") from None
    except OSError as err:
        raise DatasetError(f"{path}: cannot read ({err.strerror or err})") from None
    return rows
