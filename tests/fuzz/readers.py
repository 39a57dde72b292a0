"""The readers under fuzz: how to build a seed, which files to mutate, how to call the reader
and what its values must satisfy (an error is fine; nonsense in the values is not)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fuzz import seeds
from warroom.datasets import nezha, petshop, rcaeval
from warroom.datasets.base import LoadedCase
from warroom.intake import case_dir, otlp, prom_text
from warroom.model import LogRecord, Span, TimeRange, is_valid_time, iso


class Nonsense(AssertionError):
    """A reader returned values that break its promise (no error, no note, still wrong)."""


@dataclass(frozen=True)
class Reader:
    """One reader: its seed, the files a mutation may touch, and the call that reads."""

    name: str
    build: Callable[[Path], Path]
    call: Callable[[Path], object]

    def files(self, target: Path) -> list[Path]:
        """The files of a seed copy a mutation may touch."""
        if target.is_file():
            return [target]
        return sorted(p for p in target.rglob("*") if p.is_file())


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise Nonsense(what)


def _spans_ok(spans: list[Span]) -> None:
    ids = set()
    for s in spans:
        _check(is_valid_time(s.start) and is_valid_time(s.end), f"span time {s.start}..{s.end}")
        _check(s.end >= s.start, f"span {s.span_id} ends before it starts")
        _check((s.trace_id, s.span_id) not in ids, f"span id {s.span_id} twice")
        ids.add((s.trace_id, s.span_id))


def _logs_ok(logs: list[LogRecord]) -> None:
    for record in logs:
        _check(is_valid_time(record.time), f"log time {record.time}")


def read_traces(path: Path) -> object:
    """OTLP traces, broken spans counted in notes."""
    spans = otlp.read_spans(path, [])
    _spans_ok(spans)
    return spans


def read_logs(path: Path) -> object:
    """OTLP logs."""
    logs = otlp.read_logs(path)
    _logs_ok(logs)
    return logs


def read_prom(path: Path) -> object:
    """Prometheus text."""
    samples = prom_text.read_prom(path, [])
    seen: dict[tuple[Any, ...], float] = {}
    for s in samples:
        _check(s.ts is None or is_valid_time(s.ts), f"sample time {s.ts}")
        key = (s.name, tuple(sorted(s.labels.items())), s.ts)
        _check(key not in seen, f"sample {key} twice")
        seen[key] = s.value
    return samples


def _range_ok(window: TimeRange | None, what: str) -> None:
    if window is not None:
        _check(is_valid_time(window.start) and is_valid_time(window.end), f"{what} {window!r}")
        _check(not str(window).startswith("<invalid"), f"{what} does not format")


def case_ok(loaded: LoadedCase) -> None:
    """What any loaded case must satisfy: sane, formattable times; a consistent store."""
    try:
        spec, store = loaded.spec, loaded.store
        incident = spec.incident
        _range_ok(incident.window, "window")
        _range_ok(spec.baseline, "baseline")
        for ref in spec.references:
            _range_ok(ref, "reference")
        _check(is_valid_time(incident.alert_time), f"alert {incident.alert_time}")
        _check(not iso(incident.alert_time).startswith("<"), "alert does not format")
        for table, column in (
            ("metrics", "ts"),
            ("logs", "ts"),
            ("spans", "start_ts"),
            ("spans", "end_ts"),
            ("events", "ts"),
        ):
            bad = store.rows(
                f"SELECT count(*) FROM {table} WHERE NOT ({column} BETWEEN 0 AND 32503680000)"
            )[0][0]
            _check(bad == 0, f"{bad} {table}.{column} outside 1970..3000")
        backwards = store.rows("SELECT count(*) FROM spans WHERE end_ts < start_ts")[0][0]
        _check(backwards == 0, f"{backwards} spans end before they start")
        twice = store.rows(
            "SELECT count(*) - count(DISTINCT (trace_id, span_id)) FROM spans "
            "WHERE trace_id IS NOT NULL AND span_id IS NOT NULL"
        )[0][0]
        _check(twice == 0, f"{twice} spans repeat an id")
        values = store.rows("SELECT count(*) FROM metrics WHERE isinf(value)")[0][0]
        _check(values == 0, f"{values} infinite metric values")
        for s in store.spans(TimeRange(0, 32503680000)):
            _check(math.isfinite(s.duration), "span duration")
    finally:
        loaded.store.close()


def read_case_folder(path: Path) -> object:
    """incident.json, events.json, truth.json and the telemetry of a case folder."""
    loaded = case_dir.load_case(path)
    window = loaded.spec.incident.window
    _check(window.start <= loaded.spec.incident.alert_time <= window.end, "alert outside window")
    case_ok(loaded)
    case_dir.read_truth(path)
    return loaded.spec


def read_nezha(root: Path) -> object:
    """The Nezha layout."""
    fault = nezha.resolve_case(root, None)
    case_ok(nezha.load_case(root, fault))
    return fault


def read_petshop(root: Path) -> object:
    """The PetShop layout."""
    case_ok(petshop.load_case(petshop.resolve_case(root, None)))
    return root


def read_rcaeval(root: Path) -> object:
    """The RCAEval layout."""
    case_ok(rcaeval.load_case(rcaeval.resolve_case(root, None)))
    return root


READERS = {
    r.name: r
    for r in (
        Reader("otlp-traces", seeds.otlp_traces, read_traces),
        Reader("otlp-logs", seeds.otlp_logs, read_logs),
        Reader("prometheus-text", seeds.prom, read_prom),
        Reader("case-folder-json", seeds.case_folder, read_case_folder),
        Reader("nezha", seeds.nezha, read_nezha),
        Reader("petshop", seeds.petshop, read_petshop),
        Reader("rcaeval", seeds.rcaeval, read_rcaeval),
    )
}


def _misbehave(path: Path) -> object:
    """A reader that hangs, dies or raises by input, to check the harness itself."""
    import os
    import time

    kind = len(path.read_bytes()) % 4
    if kind == 0:
        time.sleep(3600)
    if kind == 1:
        os._exit(3)
    raise ValueError("not a project error")


if os.environ.get("WARROOM_FUZZ_SELFTEST"):
    READERS["selftest"] = Reader("selftest", seeds.prom, _misbehave)
