"""Small valid inputs for every reader, written fresh by the fuzz harness (never shared data).

Each builder writes one seed under a folder and returns the path its reader opens: a file for
the OTLP and Prometheus readers, a folder for the case-folder and data-set layouts.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from warroom.intake import case_dir, otlp, prom_text
from warroom.model import LogRecord, Series, Span

T0 = 1_750_000_000.0
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
POD = "ts-order-service-5dc8d4f9fd-46997"
DAY = "2023-01-29"
DAY_START = 1674950400  # 2023-01-29T00:00:00Z
FAULT_MINUTE = 9 * 60 + 30  # 09:30
PETSHOP_T0 = 1681866420.0


def _spans() -> list[Span]:
    return [
        Span(TRACE, "00f067aa0ba902b7", "", "frontend", "GET /", T0, T0 + 0.3, pod="fe-0"),
        Span(
            TRACE,
            "00f067aa0ba902b8",
            "00f067aa0ba902b7",
            "frontend",
            "call",
            T0 + 0.01,
            T0 + 0.2,
            peer="checkout",
        ),
        Span(
            TRACE,
            "00f067aa0ba902b9",
            "00f067aa0ba902b8",
            "checkout",
            "Place",
            T0 + 0.02,
            T0 + 0.19,
            error=True,
        ),
        Span(TRACE, "00f067aa0ba902ba", "00f067aa0ba902b9", "checkout", "db", T0 + 0.03, T0 + 0.1),
    ]


def otlp_traces(folder: Path) -> Path:
    """An OTLP/JSON traces file: resources, scopes, attributes of every AnyValue kind."""
    doc = otlp.spans_to_otlp(_spans())
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["attributes"] = [
        {"key": "http.status_code", "value": {"intValue": "200"}},
        {"key": "ratio", "value": {"doubleValue": 0.5}},
        {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}},
        {
            "key": "ctx",
            "value": {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": True}}]}},
        },
    ]
    span["status"] = {"code": "STATUS_CODE_OK"}
    path = folder / "traces.otlp.json"
    late = Span(TRACE, "00f067aa0ba902bb", "1111111111111111", "payment", "Charge", T0 + 1, T0 + 2)
    lines = [json.dumps(doc), json.dumps(otlp.spans_to_otlp([late]))]  # JSON lines
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def otlp_logs(folder: Path) -> Path:
    """An OTLP/JSON logs file with string, structured and numeric bodies."""
    records = [
        LogRecord(
            T0, "checkout", "order placed", "INFO", trace_id=TRACE, span_id="00f067aa0ba902b9"
        ),
        LogRecord(T0 + 1, "checkout", "db timeout", "ERROR"),
        LogRecord(T0 + 2, "frontend", "GET / 500", "WARN", pod="fe-0"),
    ]
    doc = otlp.logs_to_otlp(records)
    logs = doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    logs[0]["body"] = {
        "kvlistValue": {
            "values": [
                {"key": "msg", "value": {"stringValue": "placed"}},
                {"key": "n", "value": {"intValue": 3}},
                {"key": "items", "value": {"arrayValue": {"values": [{"doubleValue": 1.5}]}}},
            ]
        }
    }
    logs[1]["observedTimeUnixNano"] = logs[1].pop("timeUnixNano")
    logs[1]["severityNumber"] = "SEVERITY_NUMBER_ERROR"
    path = folder / "logs.otlp.json"
    otlp.write_document(doc, path)
    return path


def prom(folder: Path) -> Path:
    """A Prometheus text file: gauges, a histogram, escaped labels, timestamps."""
    series = [
        Series("checkout", "cpu", [T0, T0 + 15, T0 + 30], [0.5, 0.7, 0.9]),
        Series('pay"ment\\eu', 'latency{peer="db"}', [T0, T0 + 15], [12.0, float("nan")]),
    ]
    text = prom_text.series_to_text(series)
    ms = int(T0 * 1000)
    text += "# TYPE req histogram\n"
    text += f'req_bucket{{service="checkout",le="0.1"}} 3 {ms}\n'
    text += f'req_bucket{{service="checkout",le="+Inf"}} 5 {ms}\n'
    text += f'req_sum{{service="checkout"}} 1.25 {ms}\nreq_count{{service="checkout"}} 5 {ms}\n'
    path = folder / "metrics.prom"
    path.write_text(text, encoding="utf-8")
    return path


def case_folder(folder: Path) -> Path:
    """A case folder in the interop layout, small."""
    case = folder / "case-1"
    case.mkdir()
    incident = {
        "format": case_dir.FORMAT,
        "id": "case-1",
        "window": {"start": T0 - 60, "end": T0 + 600},
        "alert_time": T0 + 30,
        "symptom_service": "frontend",
        "symptom_metric": "latency_p90_ms",
        "labels": [["severity", "page"]],
        "also_alerting": ["checkout"],
        "baseline": {"start": T0 - 3600, "end": T0 - 60},
        "graph_edges": [["frontend", "checkout"]],
    }
    _json(case / case_dir.INCIDENT, incident)
    otlp.write_document(otlp.spans_to_otlp(_spans()), case / case_dir.TRACES)
    otlp.write_document(
        otlp.logs_to_otlp([LogRecord(T0 + 1, "checkout", "boom", "ERROR")]), case / case_dir.LOGS
    )
    series = [Series("checkout", "cpu", [T0 - 120, T0, T0 + 60], [0.2, 0.9, 0.95])]
    (case / case_dir.METRICS).write_text(prom_text.series_to_text(series), encoding="utf-8")
    events = {
        "events": [{"time": T0 - 10, "service": "checkout", "kind": "deploy", "description": "v2"}]
    }
    _json(case / case_dir.EVENTS, events)
    truth = {
        "format": case_dir.FORMAT,
        "case": {"id": "case-1", "topology": "shop", "fault": "cpu-hog", "seed": 1},
        "truth": {
            "service": "checkout",
            "fault": "cpu-hog",
            "fault_type": "cpu",
            "onset": T0,
            "path": ["checkout", "frontend"],
            "code_location": None,
        },
    }
    _json(case / case_dir.TRUTH, truth)
    return case


def _json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


def _csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


# --- data set layouts ----------------------------------------------------------------------------


def nezha(folder: Path) -> Path:
    """A Nezha root: one day, one fault, metrics, minute log and trace files, a fault-free
    phase, root-cause labels and a dependency file."""
    root = folder / "nezha"
    day = root / "rca_data" / DAY
    minutes = range(FAULT_MINUTE - 20, FAULT_MINUTE + 10, 2)
    metric_rows: list[list[object]] = []
    for m in minutes:
        stamp = DAY_START + m * 60 + 9
        clock = f"{DAY} {m // 60:02d}:{m % 60:02d}:09.7 +0000 UTC m=+0.78"
        metric_rows.append([clock, stamp, POD, 1.0 + (m >= FAULT_MINUTE) * 50, 20.0])
    _csv(
        day / "metric" / f"{POD}_metric.csv",
        ["Time", "TimeStamp", "PodName", "CpuUsageRate(%)", "MemoryUsageRate(%)"],
        metric_rows,
    )
    front = [[r[0], r[1], "Frontend", 0.9, 0.05] for r in metric_rows]
    _csv(
        day / "metric" / "front_service.csv",
        ["Time", "TimeStamp", "ServiceName", "SuccessRate(%)", "LatencyP90(s)"],
        front,
    )
    _csv(day / "metric" / "dependency.csv", ["Source", "Target"], [["ts-ui-dashboard", POD]])
    for offset in range(3):
        _nezha_minute(day, FAULT_MINUTE + offset)
    _nezha_minute(root / "construct_data" / DAY, 8 * 60)
    faults = {
        "09": [
            {
                "inject_time": f"{DAY} 09:30:00",
                "inject_timestamp": "1674955800",
                "inject_pod": POD,
                "inject_type": "cpu_contention",
            }
        ]
    }
    _json(day / f"{DAY}-fault_list.json", faults)
    labels = {"ts-order-service": {"cpu_contention": "CpuUsageRate(%)", "return": "a#1_a#2"}}
    _json(root / "construct_data" / "root_cause_ts.json", labels)
    return root


def _nezha_minute(day: Path, minute: int) -> None:
    name = f"{minute // 60:02d}_{minute % 60:02d}"
    ns = (DAY_START + minute * 60 + 5) * 10**9
    log_header = [
        "Timestamp",
        "TimeUnixNano",
        "Node",
        "PodName",
        "Container",
        "TraceID",
        "SpanID",
        "Log",
    ]
    envelope = json.dumps(
        {"log": "09:30:05.1 ERROR c.o.OrderServiceImpl#12 boom\n", "stream": "stdout"}
    )
    go_body = json.dumps({"log": json.dumps({"level": "info", "msg": "ok"}) + "\n"})
    logs = [
        ["t", ns, "n1", POD, "c", TRACE, "00f067aa0ba902b7", envelope],
        ["t", ns + 10**8, "n1", POD, "c", TRACE, "00f067aa0ba902b8", go_body],
    ]
    _csv(day / "log" / f"{name}_log.csv", log_header, logs)
    span_header = [
        "TraceID",
        "SpanID",
        "ParentID",
        "PodName",
        "OperationName",
        "StartTimeUnixNano",
        "EndTimeUnixNano",
        "Duration",
    ]
    spans = [
        [TRACE + name, "00f067aa0ba902b7", "root", POD, "/order", ns, ns + 3 * 10**8, 300000],
        [
            TRACE + name,
            "00f067aa0ba902b8",
            "00f067aa0ba902b7",
            POD,
            "db",
            ns + 10**7,
            ns + 2 * 10**8,
            190000,
        ],
    ]
    _csv(day / "trace" / f"{name}_trace.csv", span_header, spans)


def petshop(folder: Path) -> Path:
    """A PetShop root: one scenario, a graph, fault-free metrics and two issues."""
    root = folder / "petshop"
    scenario = root / "low_traffic"
    header: list[list[object]] = [
        ["microservice", "PetSite", "PetSite", "PetSearch"],
        ["metric", "latency", "availability", "latency"],
        ["statistic", "Average", "Average", "Average"],
        ["unix_timestamp", "", "", ""],
    ]
    _csv(
        scenario / "graph.csv",
        ["", "PetSite", "PetSearch"],
        [["PetSite", 0, 1], ["PetSearch", 0, 0]],
    )
    normal: list[list[object]] = [[PETSHOP_T0 - 86400 + 300 * i, 0.1, 100, 0.01] for i in range(12)]
    _rows(scenario / "noissue" / "metrics.csv", header + normal)
    for n, start in enumerate((PETSHOP_T0, PETSHOP_T0 + 7200)):
        issue = scenario / "train" / f"issue_{n}"
        rows: list[list[object]] = [
            [start + 300 * i, 0.1, 100, 0.01 if i < 4 else 0.3] for i in range(8)
        ]
        _rows(issue / "metrics.csv", header + rows[:5] + [header[0]] + rows[5:])
        target = {
            "target": {
                "node": "PetSite",
                "metric": "latency",
                "agg": "Average",
                "timestamp": start + 1200,
            },
            "root_cause": {"node": "PetSearch", "metric": None},
        }
        _json(issue / "target.json", target)
    return root


def _rows(path: Path, rows: list[list[object]]) -> None:
    _csv(path, [str(c) for c in rows[0]], rows[1:])


def rcaeval(folder: Path) -> Path:
    """An RCAEval root: one case with metrics, logs and traces in RCAEval's columns."""
    root = folder / "rcaeval"
    case = root / "re2-ob" / "cartservice_cpu" / "1"
    case.mkdir(parents=True)
    inject = 1_700_000_000
    (case / "inject_time.txt").write_text(f"{inject}\n")
    pods = ["cartservice-5ff676694b-fzj9z", "cartservice-5ff676694b-srh9v", "frontend-7d4f"]
    header = ["time"] + [f"{p}_container_cpu_usage_seconds_total" for p in pods] + ["vm1_mem"]
    rows: list[list[object]] = []
    for i in range(-20, 10):
        cpu = 2.0 if i >= 0 else 0.1
        rows.append([inject + 15 * i, cpu, 0.1, 0.2, 1e8])
    _csv(case / "metrics.csv", header, rows)
    logs = [
        [inject - 30, (inject - 30) * 10**9, "frontend-7d4f", "INFO GET / 200"],
        [inject + 20, (inject + 20) * 10**9, pods[0], "ERROR cart timeout"],
    ]
    _csv(case / "logs.csv", ["time", "timestamp", "container_name", "message"], logs)
    span_header = [
        "traceID",
        "spanID",
        "parentSpanID",
        "serviceName",
        "operationName",
        "startTime",
        "duration",
        "statusCode",
    ]
    start = (inject + 20) * 10**6
    spans = [
        ["t1", "s1", "", "frontend", "GET /cart", start, 5000, 200],
        ["t1", "s2", "s1", "cartservice", "GetCart", start + 100, 4000, 500],
    ]
    _csv(case / "traces.csv", span_header, spans)
    return root
