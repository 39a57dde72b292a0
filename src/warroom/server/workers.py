"""The server's background work: a pool of threads taking queued investigations from the
repository, running each through the live sources, and storing the report.

    pool = Workers(repository, LiveRunner(sources, data_dir), on_done=notifier.send, size=2)
    pool.start(); pool.wake(); ...; pool.stop()

Each investigation fetches into its own DuckDB cache file under the data dir (named by its
repeat key), so one killed half-way and re-run after a restart reads what was already fetched
and writes the same report. A runner's failure marks that investigation failed with the reason;
it never stops a worker.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from warroom.errors import WarroomError
from warroom.model import Report
from warroom.server.model import AlertRequest, InvestigationRecord, Status, Summary

log = logging.getLogger("warroom.server")
POLL_S = 1.0  # a worker with nothing to do looks again this often (wake() is immediate)
INCONCLUSIVE_BELOW = 0.5  # the report's own line: below it, the culprit is a best guess


@dataclass(frozen=True)
class Outcome:
    """What running one investigation produced."""

    status: Status
    report_json: str | None = None
    report_html: str | None = None
    culprit: str | None = None
    confidence: float | None = None
    reason: str = ""
    evidence: str = ""
    fault_type: str | None = None
    path: tuple[str, ...] = ()
    sources_degraded: tuple[str, ...] = ()  # sources whose fetches failed or were partial


class Runner(Protocol):
    """Turns an investigation request into an outcome."""

    def __call__(self, record: InvestigationRecord) -> Outcome:
        """Run it (may take seconds to minutes)."""
        ...


class Repository(Protocol):
    """What the workers need of server/repository.py."""

    def claim_next(self, worker: str, now: float) -> InvestigationRecord | None: ...

    def finish(
        self,
        id: str,  # noqa: A002 (the repository's own name)
        status: Status,
        reason: str,
        report_json: str | None,
        report_html: str | None,
        culprit: str | None,
        confidence: float | None,
        now: float,
    ) -> None: ...

    def fail(self, id: str, reason: str, now: float) -> None: ...  # noqa: A002


@dataclass
class LiveRunner:
    """Investigates through the configured live sources, cached per investigation."""

    data_dir: Path
    config: Path | None = None  # warroom.toml with [sources.<kind>] tables
    urls: Mapping[str, str | None] = field(default_factory=dict)  # or sources by URL
    planner: str = "director"
    references: int = 3

    def __call__(self, record: InvestigationRecord) -> Outcome:
        """Fetch, investigate, render; a WarroomError becomes a failed outcome with its words."""
        from warroom.cli.live import LiveRequest, open_live_case

        request = record.request
        live = LiveRequest(
            config=self.config,
            urls=dict(self.urls),
            service=request.service,
            symptom=request.symptom,
            start=str(request.start),
            end=str(request.end),
            alert=str(request.alert_time),
            cache=self.cache_path(request),
            references=self.references,
        )
        try:
            loaded, fetcher = open_live_case(live)
        except WarroomError as err:
            return Outcome(Status.failed, reason=str(err))
        try:
            return self._investigate(loaded, fetcher)
        finally:
            loaded.store.close()

    def cache_path(self, request: AlertRequest) -> Path:
        """The DuckDB file this investigation fetches into (the same after a restart)."""
        digest = hashlib.sha256(request.key.encode()).hexdigest()[:24]
        return self.data_dir / "fetch" / f"{digest}.duckdb"

    def _investigate(self, loaded: Any, fetcher: Any) -> Outcome:
        import json

        from warroom.planner import investigate
        from warroom.report.charts import charts_for
        from warroom.report.html import to_html
        from warroom.report.render import to_json

        spec = loaded.spec
        found = investigate(
            spec.incident, loaded.store, planner=self.planner, references=spec.references
        )
        loaded.store.attach(None)  # charts read what was fetched, nothing more
        report = replace(found.report, missing=found.report.missing + fetcher.degraded())
        report = redacted(report)  # log lines quoted as evidence may carry secrets
        html = to_html(report, charts_for(report, loaded.store, None, found.findings))
        culprit = report.culprit
        named = culprit is not None and report.confidence >= INCONCLUSIVE_BELOW
        return Outcome(
            Status.done if named else Status.inconclusive,
            json.dumps(to_json(report), allow_nan=False, default=str),
            html,
            culprit.service if culprit else None,
            report.confidence,
            "" if named else _why_inconclusive(fetcher.degraded()),
            _evidence_line(culprit),
            culprit.fault_type if culprit else None,
            tuple(culprit.path) if culprit else (),
            tuple(sorted({note.split(":", 1)[0] for note in fetcher.degraded()})),
        )


def redacted(report: Report) -> Report:
    """The report with secrets (tokens, passwords, keys, card numbers...) replaced in every
    quoted text, before it is stored where anyone with a token can read it."""
    from warroom.llm.redact import redact

    def clean(text: str) -> str:
        return redact(text).text

    candidates = tuple(
        replace(c, evidence=tuple(replace(e, statement=clean(e.statement)) for e in c.evidence))
        for c in report.candidates
    )
    notes = tuple(clean(n) for n in report.notes)
    return replace(report, candidates=candidates, notes=notes)


def _why_inconclusive(degraded: tuple[str, ...]) -> str:
    why = "no culprit at a confidence of 0.5 or more"
    if degraded:
        more = f" (and {len(degraded) - 1} more)" if len(degraded) > 1 else ""
        why += f"; missing evidence: {degraded[0]}{more}"
    return why


def _evidence_line(culprit: Any) -> str:
    if culprit is None or not culprit.evidence:
        return ""
    return str(culprit.evidence[0].statement)


class Workers:
    """A fixed pool of threads draining the repository's queue."""

    def __init__(
        self,
        repository: Repository,
        runner: Runner,
        on_done: Callable[[InvestigationRecord, Outcome, float], None] | None = None,
        size: int = 2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repository, self.runner, self.on_done = repository, runner, on_done
        self.size, self.clock = max(1, size), clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.busy = 0
        self._busy_lock = threading.Lock()

    def start(self) -> None:
        """Start the threads (idempotent)."""
        if self._threads:
            return
        for n in range(self.size):
            thread = threading.Thread(target=self._loop, name=f"warroom-worker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        """Something was queued: look now rather than at the next poll."""
        self._wake.set()

    def alive(self) -> bool:
        """Every worker thread is running (for /readyz)."""
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the threads to end after their current investigation and wait a while."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)

    def _loop(self) -> None:
        name = threading.current_thread().name
        while not self._stop.is_set():
            try:
                record = self.repository.claim_next(name, self.clock())
            except Exception:  # the database is away: try again, never let the worker die
                log.exception("%s: could not claim an investigation", name)
                self._stop.wait(POLL_S)
                continue
            if record is None:
                self._wake.wait(POLL_S)
                self._wake.clear()
                continue
            self._run(record)

    def _run(self, record: InvestigationRecord) -> None:
        with self._busy_lock:
            self.busy += 1
        started = time.monotonic()
        try:
            outcome = self.runner(record)
        except Exception as err:  # a bug in one investigation must not kill the worker
            log.exception("investigation %s crashed", record.id)
            outcome = Outcome(Status.failed, reason=f"internal error: {type(err).__name__}: {err}")
        finally:
            with self._busy_lock:
                self.busy -= 1
        try:
            self._store(record, outcome)
            if self.on_done is not None:
                self.on_done(record, outcome, time.monotonic() - started)
        except Exception:  # the database went away: the row stays running, a restart redoes it
            log.exception("investigation %s: could not store its outcome", record.id)

    def _store(self, record: InvestigationRecord, outcome: Outcome) -> None:
        now = self.clock()
        if outcome.status is Status.failed:
            self.repository.fail(record.id, outcome.reason, now)
            return
        self.repository.finish(
            record.id,
            outcome.status,
            outcome.reason,
            outcome.report_json,
            outcome.report_html,
            outcome.culprit,
            outcome.confidence,
            now,
        )


def summary_of(record: InvestigationRecord, outcome: Outcome, base_url: str) -> Summary:
    """What a webhook is told about a finished investigation."""
    return Summary(
        investigation_id=record.id,
        service=record.request.service,
        status=outcome.status,
        culprit=outcome.culprit,
        confidence=outcome.confidence,
        evidence=outcome.evidence or outcome.reason,
        url=f"{base_url.rstrip('/')}/investigations/{record.id}",
        fault_type=outcome.fault_type,
        path=outcome.path,
    )
