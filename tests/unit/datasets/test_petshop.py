"""PetShop loader: three-row headers, repeated header rows, graph, targets, missing noissue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from warroom.datasets import petshop
from warroom.errors import DatasetError
from warroom.model import TimeRange

HEADER = [
    "microservice,Site,Site,Search",
    "metric,latency,availability,latency",
    "statistic,Average,Average,Average",
]


def _scenario(tmp_path: Path, with_noissue: bool = True) -> Path:
    scenario = tmp_path / "low_traffic"
    issue = scenario / "train" / "issue_0"
    issue.mkdir(parents=True)
    (scenario / "graph.csv").write_text(",Site,Search\nSite,0,1\nSearch,0,0\n")
    rows = (
        HEADER
        + ["unix_timestamp,,,"]
        + [f"{1000 + 300 * i}.0,0.1,100,{0.01 if i < 2 else 0.2}" for i in range(6)]
    )
    (issue / "metrics.csv").write_text("\n".join(rows) + "\n")
    target = {
        "target": {"node": "Site", "metric": "latency", "agg": "Average", "timestamp": 1600},
        "root_cause": {"node": "Search", "metric": None},
    }
    (issue / "target.json").write_text(json.dumps(target))
    if with_noissue:
        (scenario / "noissue").mkdir()
        normal = HEADER + [f"{90000 + 300 * i}.0,0.1,100,0.01" for i in range(20)]
        (scenario / "noissue" / "metrics.csv").write_text("\n".join(normal) + "\n")
    return tmp_path


def test_loads_series_graph_and_truth(tmp_path: Path) -> None:
    root = _scenario(tmp_path)
    issue = petshop.resolve_case(root, None)
    assert issue.case_id == "low_traffic/train/issue_0"
    loaded = petshop.load_case(issue)
    spec = loaded.spec
    assert spec.graph_edges == (("Site", "Search"),)
    assert spec.truth is not None and spec.truth.service == "Search"
    assert spec.incident.symptom_service == "Site"
    assert spec.incident.symptom_metric == "latency.Average"
    assert spec.baseline == TimeRange(90000.0, 90000.0 + 300 * 19 + 1.0)
    search = loaded.store.metric_series(
        TimeRange(0, 5000), service="Search", name="latency.Average"
    )
    assert len(search) == 1 and list(search[0].values) == [0.01, 0.01, 0.2, 0.2, 0.2, 0.2]


def test_without_noissue_the_rows_before_the_alert_are_the_baseline(tmp_path: Path) -> None:
    loaded = petshop.load_case(petshop.resolve_case(_scenario(tmp_path, with_noissue=False), "1"))
    assert loaded.spec.baseline is not None and loaded.spec.baseline.end <= 1600
    assert any("no fault-free metrics" in n for n in loaded.spec.notes)


def test_malformed_target_names_the_file(tmp_path: Path) -> None:
    root = _scenario(tmp_path)
    (root / "low_traffic" / "train" / "issue_0" / "target.json").write_text('{"target": {}}')
    with pytest.raises(DatasetError, match="target.json"):
        petshop.load_case(petshop.resolve_case(root, None))


def test_ragged_graph_row_names_the_line(tmp_path: Path) -> None:
    root = _scenario(tmp_path)
    (root / "low_traffic" / "graph.csv").write_text(",Site,Search\nSite,0\n")
    with pytest.raises(DatasetError, match="graph.csv:2"):
        petshop.read_graph(root / "low_traffic" / "graph.csv")


def test_not_a_petshop_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a PetShop layout"):
        petshop.list_issues(tmp_path)


@pytest.mark.slow
def test_real_dataset_has_every_train_issue(petshop_root: Path) -> None:
    issues = petshop.list_issues(petshop_root)
    assert len(issues) >= 20
    loaded = petshop.load_case(issues[0])
    assert loaded.spec.truth is not None
    assert loaded.store.count("metrics") > 10_000
    assert loaded.spec.graph_edges


def test_without_noissue_other_issues_lend_their_pre_alert_rows(tmp_path: Path) -> None:
    root = _scenario(tmp_path, with_noissue=False)
    second = root / "low_traffic" / "train" / "issue_1"
    second.mkdir()
    rows = HEADER + [f"{50000 + 300 * i}.0,0.1,100,{0.03 if i < 3 else 0.9}" for i in range(6)]
    (second / "metrics.csv").write_text("\n".join(rows) + "\n")
    target = {"target": {"node": "Site", "metric": "latency", "timestamp": 50000 + 300 * 3}}
    (second / "target.json").write_text(json.dumps(target))
    loaded = petshop.load_case(petshop.resolve_case(root, "low_traffic/train/issue_0"))
    baseline = loaded.spec.baseline
    assert baseline is not None and baseline.end <= 1600
    borrowed = loaded.store.metric_series(baseline, service="Search", name="latency.Average")[0]
    # issue_1's three rows before its alert (0.03), moved before issue_0's own pre-alert rows
    assert list(borrowed.values) == [0.03, 0.03, 0.03, 0.01, 0.01]
    assert all(t < 1000 for t in borrowed.times[:3])


# --- hostile and careless files ------------------------------------------------------------------

ISSUE = ("low_traffic", "train", "issue_0")


def _issue_dir(root: Path) -> Path:
    return root.joinpath(*ISSUE)


def test_a_hostile_header_is_a_name_not_sql(tmp_path: Path) -> None:
    root = _scenario(tmp_path / "it's")
    target = tmp_path / "pwned.csv"
    hostile = f"x'); COPY (SELECT 42) TO '{target}'; --"
    metrics = _issue_dir(root) / "metrics.csv"
    rows = metrics.read_text().splitlines()
    rows[0] = f'microservice,Site,"{hostile}","q""uote"'
    metrics.write_text("\n".join(rows) + "\n")
    loaded = petshop.load_case(petshop.resolve_case(root, None))
    assert not target.exists()
    services = {r[0] for r in loaded.store.rows("SELECT DISTINCT service FROM metrics")}
    assert {hostile, 'q"uote'} <= services


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"target": None}, "target: Input should be a valid dictionary"),
        ({"target": {"node": 5, "metric": "m", "timestamp": 1600}}, "target.node"),
        ({"target": {"node": "Site", "metric": "m", "timestamp": "NaN"}}, "target.timestamp"),
        (
            {"target": {"node": "Site", "metric": "m", "timestamp": 1e300}},
            "1e\\+300 is outside 1970..3000",
        ),
        (
            {"target": {"node": "Site", "metric": "m", "timestamp": 1600}, "root_cause": [1]},
            "root_cause",
        ),
        ([1, 2], "document: Input should be"),
    ],
)
def test_target_json_of_the_wrong_shape_is_named(
    tmp_path: Path, target: object, message: str
) -> None:
    root = _scenario(tmp_path)
    (_issue_dir(root) / "target.json").write_text(json.dumps(target))
    with pytest.raises(DatasetError, match=f"target.json: .*{message}"):
        petshop.load_case(petshop.resolve_case(root, None))


def test_target_json_with_nan_or_latin1_is_named(tmp_path: Path) -> None:
    root = _scenario(tmp_path)
    path = _issue_dir(root) / "target.json"
    path.write_text('{"target": {"node": "Site", "metric": "m", "timestamp": NaN}}')
    with pytest.raises(DatasetError, match="target.json:1: NaN is not JSON"):
        petshop.load_case(petshop.resolve_case(root, None))
    path.write_bytes(
        '{"target": {"node": "S\u00e9", "metric": "m", "timestamp": 1}}'.encode("latin-1")
    )
    with pytest.raises(DatasetError, match="target.json:1: not UTF-8"):
        petshop.load_case(petshop.resolve_case(root, None))


def test_latin1_header_and_huge_csv_fields_are_named(tmp_path: Path) -> None:
    root = _scenario(tmp_path)
    metrics = _issue_dir(root) / "metrics.csv"
    metrics.write_bytes(metrics.read_bytes().replace(b"Search", "S\u00e9arch".encode("latin-1"), 1))
    with pytest.raises(DatasetError, match=r"metrics.csv:1: the header is not UTF-8"):
        petshop.load_case(petshop.resolve_case(root, None))
    graph = root / "low_traffic" / "graph.csv"
    graph.write_text(",Site,Search\nSite,0," + "1" * 200_000 + "\n")
    with pytest.raises(DatasetError, match=r"graph.csv:2: unreadable CSV .*field larger"):
        petshop.read_graph(graph)


def test_rows_with_times_out_of_range_are_counted(tmp_path: Path) -> None:
    root = _scenario(tmp_path)
    metrics = _issue_dir(root) / "metrics.csv"
    metrics.write_text(metrics.read_text() + "1e300,1,1,1\ninf,1,1,1\nsoon,1,1,1\n2800.0,x,inf,1\n")
    loaded = petshop.load_case(petshop.resolve_case(root, None))
    assert loaded.spec.incident.window.end < 1e5
    note = next(n for n in loaded.spec.notes if "metrics.csv: skipped" in n)
    assert "1 row(s) without a numeric time" in note
    assert "2 row(s) with a time outside 1970..3000" in note
    assert "1 non-numeric cell(s)" in note and "1 infinite cell(s)" in note


def test_borrowed_rows_never_move_before_1970(tmp_path: Path) -> None:
    root = _scenario(tmp_path, with_noissue=False)
    second = root / "low_traffic" / "train" / "issue_1"
    second.mkdir()
    rows = HEADER + [f"{50000 + 300 * i}.0,0.1,100,0.03" for i in range(10)]
    (second / "metrics.csv").write_text("\n".join(rows) + "\n")
    target = {"target": {"node": "Site", "metric": "latency", "timestamp": 50000 + 300 * 9}}
    (second / "target.json").write_text(json.dumps(target))
    loaded = petshop.load_case(petshop.resolve_case(root, "low_traffic/train/issue_0"))
    assert loaded.spec.baseline is not None and loaded.spec.baseline.start >= 0
    extent = loaded.store.extent("metrics")
    assert extent is not None and extent.start >= 0


def test_references_are_windows_of_the_fault_free_stretch_never_over_the_issue(
    tmp_path: Path,
) -> None:
    spec = petshop.load_case(petshop.resolve_case(_scenario(tmp_path), None)).spec
    window, baseline = spec.incident.window, spec.baseline
    assert spec.references and baseline is not None
    for ref in spec.references:
        assert ref.seconds == window.seconds
        assert ref.end <= window.start or ref.start >= window.end
        assert baseline.start <= ref.start and ref.end <= baseline.end
