"""Nezha loader: the real layout (when the shared data is present) and small synthetic ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from warroom.datasets import nezha
from warroom.datasets.base import service_of_pod
from warroom.errors import DatasetError
from warroom.model import TimeRange

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


# --- hostile and careless files ------------------------------------------------------------------

TRACE_HEADER = "TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano"
LOG_HEADER = "Timestamp,TimeUnixNano,Node,PodName,Container,TraceID,SpanID,Log"
NS = 1674984600 * 10**9  # 09:30:00, the fault's minute


def _trace_row(span: str, start_ns: int | str, end_ns: int | str, op: str = "op") -> str:
    return f"{'a' * 32},{span},root,{POD},{op},{start_ns},{end_ns}"


def _minute_file(
    root: Path, kind: str, header: str, rows: list[str], minute: str = "09_30"
) -> Path:
    folder = root / "rca_data" / "2023-01-29" / kind
    folder.mkdir(exist_ok=True)
    path = folder / f"{minute}_{kind}.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _hostile(tmp_path: Path) -> tuple[str, Path]:
    target = tmp_path / "pwned.csv"
    return f"x'); COPY (SELECT 42) TO '{target}'; --", target


def test_a_hostile_trace_header_changes_no_sql(tmp_path: Path) -> None:
    root = _layout(tmp_path / "root", FAULTS)
    name, target = _hostile(tmp_path)
    header = f'{TRACE_HEADER},"{name}",Dur"ation'
    _minute_file(root, "trace", header, [_trace_row("b" * 16, NS, NS + 10**8) + ",1,2"])
    loaded = nezha.load_case(root, nezha.resolve_case(root, None))
    assert not target.exists()
    assert loaded.store.count("spans") == 1


def test_a_hostile_log_header_and_metric_column_change_no_sql(tmp_path: Path) -> None:
    root = _layout(tmp_path / "root", FAULTS)
    name, target = _hostile(tmp_path)
    log = f'2023-01-29T09:30:01Z,{NS + 10**9},n,{POD},c,t,s,"{{""log"":""INFO hello""}}",1'
    _minute_file(root, "log", f'{LOG_HEADER},"{name}"', [log])
    metric = root / "rca_data" / "2023-01-29" / "metric" / "evil_metric.csv"
    metric.write_text(f'{METRIC_HEADER},"{name}","q""uote"\n' + _metric_row(30, 1.0) + ",7,8\n")
    loaded = nezha.load_case(root, nezha.resolve_case(root, None))
    assert not target.exists()
    assert loaded.store.count("logs") == 1
    names = {r[0] for r in loaded.store.rows("SELECT DISTINCT name FROM metrics")}
    assert name in names and 'q"uote' in names  # a column name is a metric name, nothing more


def test_a_path_with_quotes_is_a_parameter(tmp_path: Path) -> None:
    root = _layout(tmp_path / 'it\'s "here"', FAULTS)
    _minute_file(root, "trace", TRACE_HEADER, [_trace_row("b" * 16, NS, NS + 10**8)])
    loaded = nezha.load_case(root, nezha.resolve_case(root, None))
    assert loaded.store.count("spans") == 1 and loaded.store.count("metrics") > 0


def test_dropped_spans_are_counted_in_the_notes(tmp_path: Path) -> None:
    root = _layout(tmp_path, FAULTS)
    rows = [
        _trace_row("b" * 16, NS, NS + 10**8),
        _trace_row("c" * 16, "soon", NS + 10**8),  # a text timestamp
        _trace_row("d" * 16, NS, NS - 10**8),  # ends before it starts
        _trace_row("e" * 16, 10**30, 10**30 + 1),  # outside 1970..3000
        _trace_row("b" * 16, NS, NS + 2 * 10**8, "other"),  # b's ids, other content
        _trace_row("b" * 16, NS, NS + 10**8),  # b again, the same: kept once
        '"broken,quote',
    ]
    _minute_file(root, "trace", TRACE_HEADER, rows)
    loaded = nezha.load_case(root, nezha.resolve_case(root, None))
    assert loaded.store.count("spans") == 1
    note = next(n for n in loaded.spec.notes if n.startswith("skipped trace row(s)"))
    for part in (
        "2 without start and end times in 1970..3000",
        "1 ending before they start",
        "1 repeating the ids of a span already read",
    ):
        assert part in note
    assert "malformed" in note


def test_latin1_files_are_named_or_their_rows_counted(tmp_path: Path) -> None:
    root = _layout(tmp_path, FAULTS)
    path = _minute_file(root, "trace", TRACE_HEADER, [])
    rows = [_trace_row("b" * 16, NS, NS + 10**8), _trace_row("c" * 16, NS, NS + 10**8, "caf\u00e9")]
    path.write_bytes("\n".join([TRACE_HEADER, *rows]).encode("latin-1") + b"\n")
    loaded = nezha.load_case(root, nezha.resolve_case(root, None))
    assert loaded.store.count("spans") == 1
    assert any(
        "1 malformed (broken quoting, wrong cell count, not UTF-8)" in n for n in loaded.spec.notes
    )
    path.write_bytes(f"{TRACE_HEADER},Dur\u00e9e\n".encode("latin-1"))
    with pytest.raises(DatasetError, match=r"09_30_trace.csv:1: the header is not UTF-8"):
        nezha.load_case(root, nezha.resolve_case(root, None))


def test_a_latin1_fault_list_or_root_cause_file_is_named(tmp_path: Path) -> None:
    root = _layout(tmp_path, FAULTS)
    fault_list = root / "rca_data" / "2023-01-29" / "2023-01-29-fault_list.json"
    fault_list.write_bytes(
        json.dumps(FAULTS, ensure_ascii=False).replace("cpu", "c\u00e9pu").encode("latin-1")
    )
    with pytest.raises(DatasetError, match="fault_list.json:.*not UTF-8"):
        nezha.list_faults(root)
    root = _layout(tmp_path / "two", FAULTS)
    (root / "construct_data").mkdir()
    (root / "construct_data" / "root_cause_ts.json").write_bytes(
        '{"a": {"b": "\u00e9"}}'.encode("latin-1")
    )
    with pytest.raises(DatasetError, match="root_cause_ts.json:1: not UTF-8"):
        nezha.load_case(root, nezha.resolve_case(root, None))


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        (5, "expected a list of faults or an object of lists, got int"),
        ({"09": 5}, "expected a list of faults"),
        ({"09": [None]}, "fault entry 0 is malformed"),
        ({"09": [{**FAULTS["09"][0], "inject_pod": 7}]}, r"entry 0 is malformed \(inject_pod"),
        (
            {"09": [{**FAULTS["09"][0], "inject_time": ["x"]}]},
            "inject_time: Input should be a valid string",
        ),
        ({"09": [{**FAULTS["09"][0], "inject_time": "tomorrow"}]}, "is not YYYY-MM-DD HH:MM:SS"),
        ({"09": [{**FAULTS["09"][0], "inject_time": "9999-12-31 23:59:59"}]}, "outside 1970..3000"),
    ],
)
def test_fault_lists_of_the_wrong_shape_are_named(
    tmp_path: Path, faults: object, message: str
) -> None:
    root = _layout(tmp_path, faults)
    with pytest.raises(DatasetError, match=message):
        nezha.list_faults(root)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([1, 2], "document: Input should be a valid dictionary"),
        ({"ts-foo-service": ["cpu"]}, "ts-foo-service: Input should be a valid dictionary"),
        (
            {"ts-foo-service": {"cpu_contention": 5}},
            "cpu_contention: Input should be a valid string",
        ),
        ('{"a": NaN}', "NaN is not JSON"),
    ],
)
def test_root_cause_json_of_the_wrong_shape_is_named(
    tmp_path: Path, labels: object, message: str
) -> None:
    root = _layout(tmp_path, FAULTS)
    (root / "construct_data").mkdir()
    text = labels if isinstance(labels, str) else json.dumps(labels)
    (root / "construct_data" / "root_cause_ts.json").write_text(text)
    with pytest.raises(DatasetError, match=message):
        nezha.load_case(root, nezha.resolve_case(root, None))


def test_a_csv_field_over_the_csv_module_limit_is_named(tmp_path: Path) -> None:
    root = _layout(tmp_path, FAULTS)
    dependency = root / "rca_data" / "2023-01-29" / "metric" / "dependency.csv"
    dependency.write_text("Source,Target\nfrontend," + "x" * 200_000 + "\n")
    with pytest.raises(DatasetError, match=r"dependency.csv:2: unreadable CSV .*field larger"):
        nezha.load_case(root, nezha.resolve_case(root, None))
    dependency.write_text("Source," + "y" * 200_000 + "\n")
    with pytest.raises(DatasetError, match=r"dependency.csv:1: unreadable CSV header"):
        nezha.load_case(root, nezha.resolve_case(root, None))


def test_metric_times_outside_the_range_are_counted_not_formatted(tmp_path: Path) -> None:
    root = _layout(tmp_path, FAULTS)
    metric = root / "rca_data" / "2023-01-29" / "metric" / f"{POD}_metric.csv"
    rows = [f"garbage,1e300,{POD},1.0,2.0", f"garbage,inf,{POD},1.0,2.0", f"garbage,,{POD},inf,2.0"]
    metric.write_text(metric.read_text() + "\n".join(rows) + "\n")
    loaded = nezha.load_case(root, nezha.resolve_case(root, None))
    extent = loaded.store.extent("metrics")
    assert extent is not None and extent.end < 2e9
    assert any("3 without a readable time in 1970..3000" in n for n in loaded.spec.notes)


def test_reference_blocks_start_on_whole_minutes_when_the_fault_does_not(tmp_path: Path) -> None:
    # Minute files 09:00..09:59; a fault at 09:30:20: the gap ends at 09:40:20, so the blocks
    # after it start at 09:41, 09:44, ... (files hold whole minutes), never at 09:40:20.
    day = tmp_path / "2023-01-29"
    for kind in ("log", "trace"):
        (day / kind).mkdir(parents=True)
        for minute in range(60):
            (day / kind / f"09_{minute:02d}_{kind}.csv").write_text("x\n")
    t0 = 1674984600.0 + 20.0
    refs = nezha.reference_windows(day, t0, None)
    assert [(r.start - 1674982800.0) / 60 for r in refs] == [0.0, 12.0, 44.0, 56.0]
    assert all(r.seconds == nezha.FAULT_FILES_S for r in refs)
    # A baseline ending mid-minute pushes the next block to the following whole minute.
    inside = nezha.reference_windows(day, t0, TimeRange(1674982800.0, 1674982800.0 + 90.0))
    assert (inside[0].start - 1674982800.0) / 60 == 2.0
