"""`warroom bench live`: the same incident through a real Prometheus-compatible server and from
the equivalent telemetry in a store must give the same answer; and what fetching costs.

Each gym case's metrics are backfilled into a fresh Prometheus 2.42 (promtool) or
VictoriaMetrics 1.79 (import API) started on 127.0.0.1 and stopped by PID; warroom investigates
it through `investigate --config` (the source seam, a step equal to the gym's 10 s scrape
interval) and, side by side, from the same samples put straight into a store. Compared: the
culprit, its path, the values of its evidence (to 4 significant digits). Measured: fetch and
analysis seconds, requests, bytes and series fetched. Metrics only: the gym's logs and traces
have no server here (Loki, Tempo and Jaeger are not installable), so the comparison is the
metrics expert's.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from warroom.bench import servers
from warroom.cli.live import LiveRequest, open_live_case
from warroom.gym.case import GymCase
from warroom.intake.prom_text import escape_label, format_value, series_to_text, split_labels
from warroom.model import Report, TimeRange
from warroom.planner import investigate
from warroom.telemetry.http import TRAFFIC
from warroom.telemetry.store import TelemetryStore

BACKENDS = ("prometheus", "victoria-metrics")
SCRAPE_S = 10  # the gym's sample interval: the step that reads its samples back exactly
DEFAULT_CASES = (
    ("shop", "cpu-hog"),
    ("shop", "memory-leak"),
    ("shop", "db-pool-exhaustion"),
    ("shop", "cache-down"),
    ("shared-db", "db-lock-contention"),
    ("shared-db", "disk-full"),
    ("pipeline", "queue-consumer-lag"),
    ("pipeline", "thread-pool-exhaustion"),
    ("shop", "network-delay"),
    ("shared-db", "bad-deploy"),
)
SCALE_CASE = ("random-40", "cpu-hog")


@dataclass(frozen=True)
class LiveCase:
    """One case through one backend, beside the same samples read from a store."""

    case: str
    backend: str
    services: int
    truth: str | None  # the injected culprit (metrics alone may not find it: both sides agree)
    culprit_live: str | None
    culprit_store: str | None
    same_culprit: bool
    same_path: bool
    same_evidence: bool
    fetch_seconds: float
    analysis_seconds: float
    requests: int
    bytes: int
    series: int
    series_store: int  # what the store held: fewer fetched means something was lost
    missing: tuple[str, ...]


def openmetrics(store: TelemetryStore) -> str:
    """Every metric sample as OpenMetrics text for promtool (seconds, families together)."""
    families: dict[str, list[str]] = {}
    extent = store.extent("metrics")
    for series in store.metric_series(extent) if extent else []:
        name, labels = split_labels(series.name)
        labels = {"service": series.service, **labels}
        inner = ",".join(f'{k}="{escape_label(v)}"' for k, v in sorted(labels.items()))
        lines = families.setdefault(name, [])
        for ts, value in zip(series.times, series.values, strict=True):
            lines.append(f"{name}{{{inner}}} {format_value(value)} {ts:.3f}")
    body = [f"# TYPE {name} gauge\n" + "\n".join(lines) for name, lines in families.items()]
    return "\n".join(body) + "\n# EOF\n"


def run_live(
    cases: Sequence[tuple[str, str]] = DEFAULT_CASES,
    backends: Sequence[str] = BACKENDS,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[LiveCase]:
    """Every case through every backend."""
    from warroom.gym.simulator import generate

    results = []
    for topology, fault in cases:
        case = generate(topology, fault, seed)
        try:
            expected = _from_store(case)
            for backend in backends:
                if progress:
                    progress(f"{case.id} via {backend}")
                results.append(_through(case, backend, expected))
        finally:
            case.store.close()
    return results


def totals(results: Sequence[LiveCase]) -> dict[str, Any]:
    """Agreement and cost, per backend."""
    out: dict[str, Any] = {}
    for backend in sorted({r.backend for r in results}):
        rows = [r for r in results if r.backend == backend]
        n = len(rows)
        out[backend] = {
            "cases": n,
            "same_culprit": sum(r.same_culprit for r in rows),
            "same_path": sum(r.same_path for r in rows),
            "same_evidence": sum(r.same_evidence for r in rows),
            "mean_fetch_seconds": round(sum(r.fetch_seconds for r in rows) / n, 3),
            "mean_analysis_seconds": round(sum(r.analysis_seconds for r in rows) / n, 3),
        }
    return {"backends": out, "cases": [asdict(r) for r in results]}


def _from_store(case: GymCase) -> Report:
    """The answer from the case's metrics alone, read straight from a store."""
    store = TelemetryStore()
    rows = case.store.rows("SELECT service, name, ts, value FROM metrics")
    columns = {k: [r[i] for r in rows] for i, k in enumerate(("service", "name", "ts", "value"))}
    store.insert_columns("metrics", columns)
    try:
        return investigate(case.incident, store).report
    finally:
        store.close()


def _through(case: GymCase, backend: str, expected: Report) -> LiveCase:
    with tempfile.TemporaryDirectory(prefix="warroom-live-") as scratch:
        workdir = Path(scratch)
        with _server(backend, workdir, case.store) as url:
            config = workdir / "warroom.toml"
            config.write_text(f'[sources.prometheus]\nurl = "{url}"\nmin_step_s = {SCRAPE_S}\n')
            before = TRAFFIC.snapshot().get("prometheus", (0, 0))
            loaded, fetcher = open_live_case(_request(case, config))
            after = TRAFFIC.snapshot().get("prometheus", (0, 0))
        try:
            started = time.perf_counter()
            report = investigate(case.incident, loaded.store).report
            analysis = time.perf_counter() - started
            series = _series_count(loaded.store)
        finally:
            loaded.store.close()
    live_culprit, want = report.culprit, expected.culprit
    return LiveCase(
        case=case.id,
        backend=backend,
        services=len(case.store.services()),
        truth=case.truth.service,
        culprit_live=live_culprit.service if live_culprit else None,
        culprit_store=want.service if want else None,
        same_culprit=_service(live_culprit) == _service(want),
        same_path=(live_culprit.path if live_culprit else ()) == (want.path if want else ()),
        same_evidence=_values(report) == _values(expected),
        fetch_seconds=round(loaded.load_seconds, 3),
        analysis_seconds=round(analysis, 3),
        requests=after[0] - before[0],
        bytes=after[1] - before[1],
        series=series,
        series_store=_series_count(case.store),
        missing=fetcher.degraded(),
    )


def _request(case: GymCase, config: Path) -> LiveRequest:
    incident = case.incident
    return LiveRequest(
        config=config,
        service=incident.symptom_service,
        start=str(incident.window.start),
        end=str(incident.window.end),
        alert=str(incident.alert_time),
        cache=Path(":memory:"),
        references=0,
    )


@contextlib.contextmanager
def _server(backend: str, workdir: Path, store: TelemetryStore) -> Iterator[str]:
    # Backfilled data has no staleness markers: without a short lookback Prometheus would
    # repeat each series' last sample for five minutes past its end.
    lookback = f"--query.lookback-delta={2 * SCRAPE_S}s"
    if backend == "prometheus":
        with servers.prometheus(workdir, openmetrics(store), [lookback]) as url:
            yield url
    elif backend == "victoria-metrics":
        staleness = f"-search.maxStalenessInterval={2 * SCRAPE_S}s"
        with servers.victoria_metrics(workdir, [staleness]) as url:
            extent = store.extent("metrics") or TimeRange(0, 1)
            servers.import_prometheus(url, series_to_text(store.metric_series(extent)))
            yield url
    else:
        raise ValueError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")


def _service(culprit: Any) -> str | None:
    return culprit.service if culprit else None


def _values(report: Report) -> list[str]:
    """The culprit's evidence numbers to 4 significant digits (what a reader compares)."""
    culprit = report.culprit
    if culprit is None:
        return []
    return [f"{e.value:.4g}|{(e.baseline or 0):.4g}" for e in culprit.evidence]


def _series_count(store: TelemetryStore) -> int:
    return int(store.rows("SELECT count(DISTINCT (service, name)) FROM metrics")[0][0])
