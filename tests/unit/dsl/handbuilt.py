"""A small hand-built case whose numbers the DSL tests can state exactly.

Times are seconds from the epoch: baseline [0, 600), incident window [600, 1200), alert at 900
(00:15:00 UTC on 1970-01-01).

- db/conns: 10 every 10 s in the baseline, 20 in the window (change = 2.0 exactly).
- db/cpu: 50 until 900, then 90 (onset at 900); api/latency copies db/cpu 30 s later.
- db/threads: always 7 (a flat series never has an onset).
- checkout logs: one INFO line per 10 s throughout, plus 30 ERROR lines in the window
  ("payment failed ..."): 60 lines in the baseline, 90 in the window.
- checkout spans "Charge": 100 per side, 0.1 s each; in the window 25 of them take 0.5 s and
  fail. payment spans "Refund": none.
- events: db config change at 300, db deploy at 850.
"""

from __future__ import annotations

from warroom.model import TimeRange
from warroom.telemetry.store import TelemetryStore

WINDOW = TimeRange(600.0, 1200.0)
BASELINE = TimeRange(0.0, 600.0)
ALERT = 900.0


def _metrics(store: TelemetryStore) -> None:
    rows: list[tuple[str, str, float, float]] = []
    for step in range(120):
        t = step * 10.0
        rows.append(("db", "conns", t, 10.0 if t < 600 else 20.0))
        cpu = 50.0 if t < 900 else 90.0
        rows.append(("db", "cpu", t, cpu))
        rows.append(("api", "latency", t + 30.0, cpu))
        rows.append(("db", "threads", t, 7.0))
    store.insert_columns(
        "metrics",
        {
            "service": [r[0] for r in rows],
            "name": [r[1] for r in rows],
            "ts": [r[2] for r in rows],
            "value": [r[3] for r in rows],
        },
    )


def _logs(store: TelemetryStore) -> None:
    rows = [(step * 10.0, "INFO", f"request {step} handled in 12 ms") for step in range(120)]
    rows += [
        (600.0 + 20 * i + 5, "ERROR", f"payment failed: timeout after {i} ms") for i in range(30)
    ]
    store.insert_columns(
        "logs",
        {
            "ts": [r[0] for r in rows],
            "service": ["checkout"] * len(rows),
            "pod": ["checkout-0"] * len(rows),
            "level": [r[1] for r in rows],
            "message": [r[2] for r in rows],
            "trace_id": [""] * len(rows),
            "span_id": [""] * len(rows),
        },
    )


def _spans(store: TelemetryStore) -> None:
    starts = [i * 6.0 for i in range(200)]
    slow = [s >= 600 and i % 4 == 0 for i, s in enumerate(starts)]
    n = len(starts)
    store.insert_columns(
        "spans",
        {
            "trace_id": [f"t{i}" for i in range(n)],
            "span_id": [f"s{i}" for i in range(n)],
            "parent_id": [""] * n,
            "service": ["checkout"] * n,
            "pod": ["checkout-0"] * n,
            "operation": ["Charge"] * n,
            "start_ts": starts,
            "end_ts": [s + (0.5 if x else 0.1) for s, x in zip(starts, slow, strict=True)],
            "error": slow,
        },
    )


def _events(store: TelemetryStore) -> None:
    store.insert_columns(
        "events",
        {
            "ts": [300.0, 850.0],
            "service": ["db", "db"],
            "kind": ["config", "deploy"],
            "description": ["pool size 20 -> 10", "v2 rollout"],
        },
    )


def build_store() -> TelemetryStore:
    """A fresh store holding the whole case (the caller closes it)."""
    store = TelemetryStore()
    for fill in (_metrics, _logs, _spans, _events):
        fill(store)
    return store
