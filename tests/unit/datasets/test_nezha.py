"""Nezha loader: the real layout (when the shared data is present) and small synthetic ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from warroom.datasets import nezha
from warroom.datasets.base import service_of_pod
from warroom.errors import DatasetError

POD = "ts-foo-service-5dc8d4f9fd-46997"
METRIC_HEADER = "Time,TimeStamp,PodName,CpuUsageRate(%),MemoryUsageRate(%)"


def _metric_row(minute: int, cpu: float, timestamp: str | None = None) -> str:
    stamp = timestamp or str(1674950400 + 9 * 3600 + minute * 60)
    return f"2023-01-29 09:{minute:02d}:09.7 +0000 UTC m=+0.78,{stamp},{POD},{cpu},20.0"


def _layout(tmp_path: Path, faults: object, timestamp: str | None = None) -> Path:
    day = tmp_path / "rca_data" / "2023-01-29"
    (day / "metric").mkdir(parents=True)
    rows = [METRIC_HEADER] + [_metric_row(m, 1.0 + m % 2, timestamp) for m in range(0, 40)]
    (day / "metric" / f"{POD}_metric.csv").write_text("\n".join(rows) + "\n")
    (day / "2023-01-29-fault_list.json").write_text(json.dumps(faults))
    return tmp_path


FAULTS = {
    "09": [
        {
            "inject_time": "2023-01-29 09:30:00",
            "inject_timestamp": "1",
            "inject_pod": POD,
            "inject_type": "cpu_contention",
        }
    ]
}


def test_service_of_pod_strips_replicaset_hash_and_suffix() -> None:
    assert service_of_pod("ts-basic-service-5dc8d4f9fd-46997") == "ts-basic-service"
    assert service_of_pod("frontend-579b9bff58-t2dbm") == "frontend"
    assert service_of_pod("redis") == "redis"


def test_missing_logs_and_traces_degrade_the_case(tmp_path: Path) -> None:
    root = _layout(tmp_path, FAULTS)
    fault = nezha.resolve_case(root, None)
    loaded = nezha.load_case(root, fault)
    assert loaded.store.count("metrics") > 0
    assert loaded.store.count("logs") == 0
    notes = " ".join(loaded.spec.notes)
    assert "no log files" in notes and "no trace files" in notes and "no fault-free data" in notes
    assert loaded.spec.truth is not None and loaded.spec.truth.service == "ts-foo-service"
    assert loaded.spec.incident.alert_time == 1674984600.0  # 09:30:00 UTC, from inject_time


def test_time_column_wins_over_a_corrupted_timestamp(tmp_path: Path) -> None:
    root = _layout(tmp_path, FAULTS, timestamp="1861140279")
    loaded = nezha.load_case(root, nezha.resolve_case(root, "1"))
    extent = loaded.store.extent("metrics")
    assert extent is not None and extent.start < 1674984600.0 < extent.end


def test_malformed_fault_list_names_the_file(tmp_path: Path) -> None:
    root = _layout(tmp_path, FAULTS)
    (root / "rca_data" / "2023-01-29" / "2023-01-29-fault_list.json").write_text("{not json")
    with pytest.raises(DatasetError, match="fault_list.json"):
        nezha.list_faults(root)


def test_fault_entry_without_time_is_rejected(tmp_path: Path) -> None:
    root = _layout(tmp_path, {"09": [{"inject_pod": POD, "inject_type": "return"}]})
    with pytest.raises(DatasetError, match="entry 0"):
        nezha.list_faults(root)


def test_unknown_case_lists_known_ones(tmp_path: Path) -> None:
    root = _layout(tmp_path, FAULTS)
    with pytest.raises(DatasetError, match="2023-01-29_093000"):
        nezha.resolve_case(root, "2023-01-29_000000")


def test_not_a_nezha_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a Nezha layout"):
        nezha.list_faults(tmp_path)


@pytest.mark.slow
def test_real_day_loads_with_baseline_and_inner_truth(nezha_root: Path) -> None:
    faults = nezha.list_faults(nezha_root)
    assert len(faults) >= 28
    assert faults == sorted(faults, key=lambda f: f.inject_time)
    loaded = nezha.load_case(nezha_root, faults[0])
    spec = loaded.spec
    assert spec.truth is not None and spec.truth.indicator is not None
    window = spec.incident.window
    assert spec.baseline is not None
    assert spec.baseline.end <= window.start or spec.baseline.start >= window.end
    store = loaded.store
    assert store.count("logs") > 100 and store.count("spans") > 100
    duplicates = store.rows("SELECT count(*) - count(DISTINCT (trace_id, span_id)) FROM spans")
    assert duplicates[0][0] == 0
    services = set(store.services())
    assert spec.truth.service in services
    assert not any(s.endswith(faults[0].pod[-5:]) for s in services)
    assert loaded.load_seconds < 30


def test_dependency_csv_becomes_graph_edges(tmp_path: Path) -> None:
    root = _layout(tmp_path, FAULTS)
    dependency = root / "rca_data" / "2023-01-29" / "metric" / "dependency.csv"
    dependency.write_text(
        "Source,Target,Weight\nfrontend,cartservice,1\ncheckoutservice,emailservice,1\n"
    )
    loaded = nezha.load_case(root, nezha.resolve_case(root, None))
    assert loaded.spec.graph_edges == (
        ("frontend", "cartservice"),
        ("checkoutservice", "emailservice"),
    )
    assert loaded.store.count("metrics") > 0  # the edge file is not read as metrics


def test_fault_list_beside_the_day_folder(tmp_path: Path) -> None:
    root = _layout(tmp_path, FAULTS)
    day = root / "rca_data" / "2023-01-29"
    (day / "2023-01-29-fault_list.json").rename(day.parent / "2023-01-29-fault_list.json")
    assert len(nezha.list_faults(root)) == 1


def test_reference_windows_are_other_blocks_of_the_day_far_from_the_fault(
    nezha_root: Path,
) -> None:
    fault = nezha.list_faults(nezha_root)[10]
    loaded = nezha.load_case(nezha_root, fault)
    refs = loaded.spec.references
    assert 1 <= len(refs) <= nezha.REFERENCES
    t0 = fault.inject_time
    for ref in refs:
        assert ref.seconds == nezha.FAULT_FILES_S  # as long as the fault's own files
        assert ref.end <= t0 - 60 * 9 or ref.start >= t0 + nezha.REFERENCE_GAP_S
        assert loaded.store.spans(ref) and loaded.store.logs(ref)
    assert all(a.end <= b.start for a, b in zip(refs, refs[1:], strict=False))
    loaded.store.close()
