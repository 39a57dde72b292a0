"""A semi-synthetic check on real traces: a network delay injected on one component.

The public Nezha day has no network faults, but its traces are real: real call graphs, real
jitter, real client and server spans. Injecting a delay on one component's network into them
asks whether the edge attribution finds that component among real noise. What a delay on a
component's interface does, and so what is injected: every call that crosses it is `delay`
slower on the wire, in both directions (its answers to callers and its requests to callees).
The callee side of each such call (its span subtree, and the log lines of those spans) starts
`delay / 2` later; the caller's client span and every span above it end `delay` later.

This is not a real fault (later siblings are not moved, the delayed component's own
timeouts and retries do not happen), and the case keeps its real fault too: a benchmark of the
mechanism, labelled as such, never a substitute for real network-delay cases.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence

from warroom.model import LogRecord, Span, TimeRange
from warroom.telemetry.store import TelemetryStore

MIN_CALLS = 50  # a component with fewer calls in the window says too little to test on

_Key = tuple[str, str]


def pick_target(spans: Sequence[Span], exclude: str, seed: int) -> str | None:
    """A component with at least MIN_CALLS calls in or out, chosen by seed (not the excluded)."""
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    calls: Counter[str] = Counter()
    for s in spans:
        parent = by_id.get((s.trace_id, s.parent_id))
        if parent is not None and parent.service != s.service:
            calls[parent.service] += 1
            calls[s.service] += 1
    busy = sorted(c for c, n in calls.items() if n >= MIN_CALLS and c != exclude)
    return random.Random(seed).choice(busy) if busy else None


def inject_network_delay(
    store: TelemetryStore, window: TimeRange, target: str, delay_s: float
) -> int:
    """Rewrite the window's spans and logs as if `target`'s network added `delay_s` to every
    call crossing it; returns how many calls were delayed."""
    spans = store.spans(window)
    start, end, moved, delayed = _delayed_times(spans, target, delay_s)
    bounds = [window.start, window.end]
    store.execute("DELETE FROM spans WHERE start_ts >= ? AND start_ts < ?", bounds)
    store.insert_columns("spans", _span_columns(spans, start, end))
    logs = store.logs(window)
    store.execute("DELETE FROM logs WHERE ts >= ? AND ts < ?", bounds)
    store.insert_columns("logs", _log_columns(logs, moved))
    return delayed


def _delayed_times(
    spans: Sequence[Span], target: str, delay_s: float
) -> tuple[dict[_Key, float], dict[_Key, float], dict[_Key, float], int]:
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    start = {k: s.start for k, s in by_id.items()}
    end = {k: s.end for k, s in by_id.items()}
    moved: dict[_Key, float] = defaultdict(float)
    children: dict[_Key, list[_Key]] = defaultdict(list)
    for s in spans:
        children[(s.trace_id, s.parent_id)].append((s.trace_id, s.span_id))

    def shift(key: _Key, by: float) -> None:
        stack = [key]
        while stack:
            k = stack.pop()
            start[k] += by
            end[k] += by
            moved[k] += by
            stack.extend(children[k])

    delayed = 0
    for s in spans:
        parent = by_id.get((s.trace_id, s.parent_id))
        if (
            parent is None
            or parent.service == s.service
            or target not in (s.service, parent.service)
        ):
            continue
        delayed += 1
        shift((s.trace_id, s.span_id), delay_s / 2)
        above: _Key | None = (s.trace_id, s.parent_id)
        while above is not None and above in by_id:
            end[above] += delay_s
            up = by_id[above]
            above = (up.trace_id, up.parent_id) if up.parent_id else None
    return start, end, moved, delayed


def _span_columns(
    spans: Sequence[Span], start: dict[_Key, float], end: dict[_Key, float]
) -> dict[str, list[object]]:
    keys = [(s.trace_id, s.span_id) for s in spans]
    return {
        "trace_id": [s.trace_id for s in spans],
        "span_id": [s.span_id for s in spans],
        "parent_id": [s.parent_id for s in spans],
        "service": [s.service for s in spans],
        "pod": [s.pod for s in spans],
        "operation": [s.operation for s in spans],
        "start_ts": [start[k] for k in keys],
        "end_ts": [end[k] for k in keys],
        "error": [s.error for s in spans],
        "peer": [s.peer or None for s in spans],
    }


def _log_columns(logs: Sequence[LogRecord], moved: dict[_Key, float]) -> dict[str, list[object]]:
    """Log lines move with the span they were written in."""
    return {
        "ts": [r.time + moved.get((r.trace_id, r.span_id), 0.0) for r in logs],
        "service": [r.service for r in logs],
        "pod": [r.pod for r in logs],
        "level": [r.level for r in logs],
        "message": [r.message for r in logs],
        "trace_id": [r.trace_id for r in logs],
        "span_id": [r.span_id for r in logs],
    }
