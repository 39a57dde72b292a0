"""RCAEval case folders: a synthetic case written here, bad input, and the shared Sock Shop data."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from warroom.datasets.base import GroundTruth
from warroom.datasets.rcaeval import (
    RcaevalCase,
    ground_truth,
    list_cases,
    load_case,
    read_inject_time,
    resolve_case,
    series_names,
)
from warroom.errors import DatasetError, WarroomError
from warroom.experts.metrics import indicator_kind, resource_family
from warroom.model import IndicatorKind, TimeRange

INJECT = 1_700_000_000
STEP = 15
BEFORE, AFTER = 40, 20  # rows before and at/after the injection
POD_A, POD_B = "carts-5ff676694b-fzj9z", "carts-5ff676694b-srh9v"
ORDERS = "orders-b87648c9f-gzpbp"
CPU = "container_cpu_usage_seconds_total"


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_case(folder: Path, culprit_pod: str = POD_A, inject: int = INJECT) -> Path:
    """A case like RE2's: two carts replicas, one orders pod and a node; the culprit pod's CPU
    steps x20 at the injection; logs.csv and traces.csv in RCAEval's columns."""
    folder.mkdir(parents=True)
    (folder / "inject_time.txt").write_text(f"{inject}\n")
    header = ["time", f"{POD_A}_{CPU}", f"{POD_B}_{CPU}", f"{ORDERS}_{CPU}"]
    header += [f"{ORDERS}_container_memory_usage_bytes", "vm1_cpu_usage", "front-end_latency-90"]
    rows: list[list[object]] = []
    for i in range(-BEFORE, AFTER):
        wobble = 0.01 * (i % 3)
        cpu = {p: 0.1 + wobble for p in (POD_A, POD_B)}
        if i >= 0:
            cpu[culprit_pod] = 2.0 + wobble
        memory: object = "" if i == -5 else 1e8 + i % 2  # one blank cell
        latency: object = "NaN" if i == -6 else 20 + i % 4
        rows.append([inject + i * STEP, cpu[POD_A], cpu[POD_B], 0.2 + wobble, memory, 30, latency])
    _write_csv(folder / "metrics.csv", header, rows)
    _write_logs(folder / "logs.csv", inject)
    _write_traces(folder / "traces.csv", inject)
    return folder


def _write_logs(path: Path, inject: int) -> None:
    rows = [[inject - 60, (inject - 60) * 10**9, ORDERS, "INFO GET /orders 200"]]
    rows += [[inject + 30, (inject + 30) * 10**9, ORDERS, "ERROR cannot reach carts, timeout"]]
    rows += [[inject + 31, (inject + 31) * 10**9, POD_A, 'saving cart "abc", items=3']]
    _write_csv(path, ["time", "timestamp", "container_name", "message"], rows)


def _write_traces(path: Path, inject: int) -> None:
    header = ["time", "traceID", "spanID", "serviceName", "methodName", "operationName"]
    header += ["startTimeMillis", "startTime", "duration", "statusCode", "parentSpanID"]
    start = (inject + 20) * 1_000_000
    rows = [
        [
            inject + 20,
            "t1",
            "s1",
            "front-end",
            "GET",
            "/cart",
            start // 1000,
            start,
            250_000,
            200,
            "",
        ],
        [
            inject + 20,
            "t1",
            "s2",
            "carts",
            "GET",
            "/carts/1",
            start // 1000,
            start + 10,
            240_000,
            500,
            "s1",
        ],
    ]
    _write_csv(path, header, rows)


@pytest.fixture
def case_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    write_case(root / "re2-x" / "carts_cpu" / "1")
    return root


def test_list_cases_walks_any_depth_in_natural_order(tmp_path: Path) -> None:
    for rel in ("a/carts_cpu/10", "a/carts_cpu/2", "deep/er/front-end_delay/1"):
        write_case(tmp_path / rel)
    (tmp_path / "a" / "notes").mkdir()
    ids = [c.case_id for c in list_cases(tmp_path)]
    assert ids == ["a/carts_cpu/2", "a/carts_cpu/10", "deep/er/front-end_delay/1"]
    assert resolve_case(tmp_path, "2").case_id == "a/carts_cpu/10"
    assert resolve_case(tmp_path, "deep/er/front-end_delay/1").group == "deep/er"


def test_a_root_without_cases_names_the_root(tmp_path: Path) -> None:
    (tmp_path / "x_cpu" / "1").mkdir(parents=True)
    (tmp_path / "x_cpu" / "1" / "data.csv").write_text("time,a_cpu\n1,2\n")  # no inject_time.txt
    with pytest.raises(DatasetError, match=str(tmp_path)):
        list_cases(tmp_path)
    with pytest.raises(DatasetError, match="not found"):
        list_cases(tmp_path / "nope")
    write_case(tmp_path / "y_cpu" / "1")
    with pytest.raises(DatasetError, match="no RCAEval case 'zzz'"):
        resolve_case(tmp_path, "zzz")


def test_metrics_become_series_of_deployments_with_replicas_kept_apart(case_root: Path) -> None:
    loaded = load_case(resolve_case(case_root, None))
    store = loaded.store
    assert store.services() == ["carts", "front-end", "orders", "vm1"]
    everything = TimeRange(0, 2e9)
    carts = {s.name: s for s in store.metric_series(everything, service="carts")}
    assert sorted(carts) == [f'{CPU}{{pod="{POD_A}"}}', f'{CPU}{{pod="{POD_B}"}}']
    culprit = carts[f'{CPU}{{pod="{POD_A}"}}']
    assert len(culprit) == BEFORE + AFTER
    assert culprit.values[culprit.times >= INJECT].min() >= 2.0
    assert culprit.values[culprit.times < INJECT].max() < 1.0
    # One pod per deployment: the plain metric name; the node is a service of its own.
    orders = {s.name: len(s) for s in store.metric_series(everything, service="orders")}
    assert orders == {CPU: 60, "container_memory_usage_bytes": 59}  # the blank cell skipped
    latency = store.metric_series(everything, service="front-end", name="latency-90")[0]
    assert len(latency) == 59  # NaN skipped
    assert [len(s) for s in store.metric_series(everything, service="vm1")] == [60]


def test_labelled_names_classify_as_the_bare_metric() -> None:
    name = f'{CPU}{{pod="{POD_A}"}}'
    assert indicator_kind(name) is IndicatorKind.RESOURCE
    assert resource_family(name) == "cpu"
    # A hash that spells "gc" would read as memory: such a replica is numbered instead.
    header = ["time", "carts-5ff676694b-gcxyz_container_threads", f"{POD_B}_container_threads"]
    names = series_names(header, {0})
    assert names[1] == ("carts", 'container_threads{replica="1"}')
    assert names[2] == ("carts", f'container_threads{{pod="{POD_B}"}}')


def test_incident_window_baseline_and_truth_come_from_the_folder(case_root: Path) -> None:
    spec = load_case(resolve_case(case_root, None)).spec
    assert spec.id == "re2-x/carts_cpu/1"
    assert spec.incident.alert_time == INJECT
    assert spec.incident.window == TimeRange(INJECT, INJECT + AFTER * STEP)
    assert spec.incident.symptom_service is None
    assert spec.baseline == TimeRange(INJECT - BEFORE * STEP, INJECT)
    assert spec.truth == GroundTruth("carts", "cpu", "cpu")
    assert spec.notes == ()


@pytest.mark.parametrize(
    ("folder", "truth"),
    [
        ("front-end_delay", GroundTruth("front-end", "delay", "latency")),
        ("ts-auth-service_f3", GroundTruth("ts-auth-service", "f3", None)),
        ("my_svc_disk", GroundTruth("my_svc", "disk", "diskio")),
        ("nounderscore", None),
    ],
)
def test_ground_truth_splits_at_the_last_underscore(
    tmp_path: Path, folder: str, truth: GroundTruth | None
) -> None:
    assert ground_truth(RcaevalCase(tmp_path, tmp_path / folder / "1")) == truth


def test_logs_and_traces_are_loaded(case_root: Path) -> None:
    store = load_case(resolve_case(case_root, None)).store
    logs = store.logs(TimeRange(0, 2e9))
    assert [(r.time, r.service, r.pod, r.level) for r in logs] == [
        (INJECT - 60, "orders", ORDERS, "INFO"),
        (INJECT + 30, "orders", ORDERS, "ERROR"),
        (INJECT + 31, "carts", POD_A, ""),
    ]
    assert logs[2].message == 'saving cart "abc", items=3'
    spans = {s.span_id: s for s in store.spans(TimeRange(0, 2e9))}
    assert spans["s1"].start == INJECT + 20 and spans["s1"].duration == pytest.approx(0.25)
    assert spans["s1"].parent_id == "" and not spans["s1"].error
    assert spans["s2"].parent_id == "s1" and spans["s2"].error
    assert spans["s2"].service == "carts" and spans["s2"].operation == "/carts/1"


@pytest.mark.parametrize("content", ["abc\n", "", "1.7e9x\n", "nan\n"])
def test_an_unreadable_inject_time_names_the_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "inject_time.txt"
    path.write_text(content)
    with pytest.raises(DatasetError, match="inject_time.txt.*number"):
        read_inject_time(path)


def test_inject_time_in_milliseconds_is_read_as_seconds(tmp_path: Path) -> None:
    path = tmp_path / "inject_time.txt"
    path.write_text(f"{INJECT * 1000}\n")
    assert read_inject_time(path) == INJECT


def _metrics_case(tmp_path: Path, text: str) -> RcaevalCase:
    folder = tmp_path / "carts_cpu" / "1"
    folder.mkdir(parents=True)
    (folder / "inject_time.txt").write_text(f"{INJECT}\n")
    (folder / "data.csv").write_text(text)
    return list_cases(tmp_path)[0]


def test_a_header_is_data_not_sql(tmp_path: Path) -> None:
    text = """time,"x""); DROP TABLE metrics; --_cpu",a'b_mem\n"""
    text += "".join(f"{INJECT + i * 60},{i},{i * 2}\n" for i in range(-3, 3))
    loaded = load_case(_metrics_case(tmp_path, text))
    services = loaded.store.services()
    assert services == ["a'b", 'x"); DROP TABLE metrics; --']
    assert loaded.store.count("metrics") == 12


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("when,a_cpu\n1,2\n", "no 'time' column"),
        (f"time,a_cpu\n{INJECT},1\nyesterday,2\n", "neither a number nor a date.*yesterday"),
        (f"time,a_cpu\n{INJECT},1,7\n", "data.csv: malformed CSV"),
        ("", "empty file"),
    ],
)
def test_bad_metric_files_are_dataset_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(WarroomError, match=message):
        load_case(_metrics_case(tmp_path, text))


def test_times_in_milliseconds_and_dates_are_seconds(tmp_path: Path) -> None:
    text = f"time,a_cpu\n{(INJECT - 60) * 1000},1\n2023-11-14 22:13:20,2\n"
    store = load_case(_metrics_case(tmp_path, text)).store
    assert [float(t) for t in store.metric_series(TimeRange(0, 2e9))[0].times] == [
        INJECT - 60,
        INJECT,
    ]


SOCK_SHOP = (
    Path(
        os.environ.get(
            "WARROOM_DATA", Path(__file__).resolve().parents[3].parent / "shared" / "data"
        )
    )
    / "sockshop-opennetai"
)


@pytest.mark.slow
@pytest.mark.skipif(not SOCK_SHOP.is_dir(), reason=f"Sock Shop RCAEval data not at {SOCK_SHOP}")
def test_the_shared_sock_shop_cases_load() -> None:
    cases = list_cases(SOCK_SHOP)
    assert len(cases) == 121
    assert {ground_truth(c).fault_type for c in cases} == {"cpu", "mem", "delay"}  # type: ignore[union-attr]
    loaded = load_case(resolve_case(SOCK_SHOP, "carts_cpu/1"))
    spec, store = loaded.spec, loaded.store
    assert spec.truth == GroundTruth("carts", "cpu", "cpu")
    assert {"carts", "carts-db", "front-end", "vm1", "vm2", "vm3"} <= set(store.services())
    inject = spec.incident.alert_time
    assert spec.incident.window == TimeRange(inject, inject + 305)  # 5 one-minute rows
    assert spec.baseline is not None and spec.baseline.seconds > 20 * 60
    # cases.csv: the stressed replica is carts-5ff676694b-srh9v, its twin stays idle.
    cpu = {
        s.name: s
        for s in store.metric_series(TimeRange(0, 2e9), service="carts")
        if s.name.startswith(f"{CPU}{{")
    }
    hot, idle = cpu[f'{CPU}{{pod="{POD_B}"}}'], cpu[f'{CPU}{{pod="{POD_A}"}}']
    assert hot.values[hot.times >= inject].mean() > 100 * hot.values[hot.times < inject].mean()
    assert idle.values[idle.times >= inject].mean() < 2 * idle.values[idle.times < inject].mean()


# --- hostile and careless files ------------------------------------------------------------------


def test_a_hostile_header_writes_no_file(tmp_path: Path) -> None:
    target = tmp_path / "pwned.csv"
    hostile = f"x'); COPY (SELECT 42) TO '{target}'; --"
    text = f'time,"{hostile}_cpu"\n' + "".join(f"{INJECT + i * 60},{i}\n" for i in range(-3, 3))
    loaded = load_case(_metrics_case(tmp_path / "it's", text))
    assert not target.exists() and loaded.store.count("metrics") == 6


@pytest.mark.parametrize("content", ["1e300", "-5", "99999999999999999999999"])
def test_an_inject_time_outside_the_range_is_named(tmp_path: Path, content: str) -> None:
    path = tmp_path / "inject_time.txt"
    path.write_text(content)
    with pytest.raises(DatasetError, match="inject_time.txt: the injection time .*1970..3000"):
        read_inject_time(path)


def test_data_times_outside_the_range_are_errors_or_counted(tmp_path: Path) -> None:
    text = f"time,a_cpu\n{INJECT},1\n1e300,2\n"
    with pytest.raises(DatasetError, match="neither a number nor a date in 1970..3000.*1e300"):
        load_case(_metrics_case(tmp_path / "m", text))
    case = write_case(tmp_path / "c" / "carts_cpu" / "1")
    with (case / "logs.csv").open("a") as handle:
        handle.write("1e300,1e300,orders,x\r\nsoon,,orders,y\r\n")
    with (case / "traces.csv").open("a") as handle:
        handle.write("inf,t9,s9,front-end,GET,/x,inf,inf,1,200,\r\n")
    loaded = load_case(resolve_case(tmp_path / "c", None))
    notes = " ".join(loaded.spec.notes)
    assert "logs.csv: skipped log row(s) 2 without a time in 1970..3000" in notes
    assert "traces.csv: skipped span row(s) 1 without a time in 1970..3000" in notes
    assert str(loaded.spec.incident.window)  # formats: no time out of range got in


def test_a_latin1_header_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "carts_cpu" / "1"
    folder.mkdir(parents=True)
    (folder / "inject_time.txt").write_text(f"{INJECT}\n")
    (folder / "data.csv").write_bytes(f"time,caf\u00e9_cpu\n{INJECT},1\n".encode("latin-1"))
    with pytest.raises(DatasetError, match="data.csv:1: the header is not UTF-8"):
        load_case(resolve_case(tmp_path, None))


def test_repeated_span_ids_and_impossible_durations_are_counted(tmp_path: Path) -> None:
    case = write_case(tmp_path / "carts_cpu" / "1")
    rows = list(csv.reader((case / "traces.csv").open()))
    first = dict(zip(rows[0], rows[1], strict=True))
    again = {**first, "operationName": "other"}
    endless = {**first, "spanID": "s-late", "duration": "1e30"}
    nan = {**first, "spanID": "s-nan", "duration": "nan"}
    _write_csv(
        case / "traces.csv",
        rows[0],
        [*rows[1:], *(list(r.values()) for r in (again, endless, nan))],
    )
    loaded = load_case(resolve_case(tmp_path, None))
    store = loaded.store
    assert store.rows("SELECT count(*) - count(DISTINCT (trace_id, span_id)) FROM spans")[0][0] == 0
    assert store.rows("SELECT end_ts - start_ts FROM spans WHERE span_id = 's-nan'")[0][0] == 0
    notes = " ".join(loaded.spec.notes)
    assert (
        "traces.csv: skipped span row(s) 1 ending after 3000, 1 repeating an earlier span's ids"
        in notes
    )


def test_references_are_windows_of_the_baseline_never_over_the_incident(case_root: Path) -> None:
    spec = load_case(resolve_case(case_root, None)).spec
    window, baseline = spec.incident.window, spec.baseline
    assert spec.references and baseline is not None
    for ref in spec.references:
        assert ref.seconds == window.seconds and ref.end <= window.start
        assert baseline.start <= ref.start and ref.end <= baseline.end
