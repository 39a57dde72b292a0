"""The server without HTTP: take a notification, persist it, join or queue its investigations,
run them on workers, tell the webhooks; pick up where a killed server left off.

    service = Service(Repository(url), LiveRunner(data_dir, config), ServerSettings(...))
    service.start()                 # migrate, re-queue what was running, replay unprocessed
    service.ingest_alerts(body, "application/json")
    service.stop()

Order matters for "never lose a notification": a body is parsed first (a bad one is refused and
nothing is stored), then persisted (committed) before anything else; only then are its
investigations joined or created and the notification marked processed. A server killed in
between finds the notification unprocessed at its next start and processes it then; one killed
during an investigation finds it `running` and runs it again (its fetch cache makes the second
run read what the first fetched).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from warroom.errors import InputError
from warroom.server import alerts
from warroom.server.metrics import ServerMetrics
from warroom.server.model import AlertRequest, InvestigationRecord
from warroom.server.workers import Outcome, Runner, Workers, summary_of

log = logging.getLogger("warroom.server")


class Service:
    """Ingestion, workers and notifications around one repository."""

    def __init__(
        self,
        repository: Any,
        runner: Runner,
        mapping: alerts.Mapping | None = None,
        notifier: Any = None,
        workers: int = 2,
        public_url: str = "http://127.0.0.1:8080",
        metrics: ServerMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repository = repository
        self.mapping = mapping or alerts.Mapping()
        self.notifier, self.public_url, self.clock = notifier, public_url, clock
        self.metrics = metrics or ServerMetrics(lambda: float(repository.queue_depth()))
        self.workers = Workers(repository, runner, self._finished, workers, clock)
        self._started = threading.Event()

    def start(self) -> None:
        """Open the repository, recover from a previous run, start the workers."""
        self.repository.open()
        now = self.clock()
        requeued = self.repository.requeue_unfinished(now)
        replayed = sum(self._replay(n) for n in self.repository.unprocessed_notifications())
        if requeued or replayed:
            log.info("recovered: %d investigations re-queued, %d notifications", requeued, replayed)
        self.workers.start()
        self.workers.wake()
        self._started.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Let running investigations end (up to `timeout`), then close everything."""
        self.workers.stop(timeout)
        close_runner = getattr(self.workers.runner, "close", None)
        if close_runner is not None:  # children still running are killed: a restart redoes them
            close_runner()
        if self.notifier is not None:
            self.notifier.close(timeout)
        self.repository.close()

    def ingest_alerts(self, body: bytes, content_type: str) -> dict[str, Any]:
        """An Alertmanager notification; InputError (nothing stored) when it is not one."""
        now = self.clock()
        wanted = alerts.requests(alerts.parse_webhook(body), self.mapping, now)
        notification = self.repository.record_notification(body, content_type, now)
        joined = self._join(wanted, notification, now)
        return {"notification": notification, "investigations": joined}

    def ingest_investigation(self, body: bytes, content_type: str) -> dict[str, Any]:
        """A direct request {service, start, end, symptom}; InputError when it is not one."""
        now = self.clock()
        wanted = alerts.parse_investigation(body, now, self.mapping)
        notification = self.repository.record_notification(body, content_type, now)
        (joined,) = self._join([wanted], notification, now)  # an API request is never a resolve
        return joined

    def _join(
        self, wanted: list[AlertRequest], notification: str, now: float
    ) -> list[dict[str, Any]]:
        joined = [self.repository.join_or_create(r, notification, now) for r in wanted]
        self.repository.mark_processed(notification, now)
        if any(created for _, created in joined):
            self.workers.wake()
        # A resolve for an alert nobody investigated joins nothing (its body is still stored).
        return [
            {"id": record.id, "new": created, "status": record.status.value}
            for record, created in joined
            if record is not None
        ]

    def _replay(self, stored: Any) -> int:
        """Process a notification a killed server persisted but never processed."""
        now = self.clock()
        try:
            wanted = alerts.requests(alerts.parse_webhook(stored.body), self.mapping, now)
        except InputError:
            try:
                wanted = [alerts.parse_investigation(stored.body, now, self.mapping)]
            except InputError as err:  # cannot happen for what was accepted; never loop on it
                log.error("notification %s no longer parses: %s", stored.id, err)
                self.repository.mark_processed(stored.id, now)
                return 0
        self._join(wanted, stored.id, now)
        return 1

    def _finished(self, record: InvestigationRecord, outcome: Outcome, seconds: float) -> None:
        self.metrics.seconds.observe(seconds)
        self.metrics.finished.labels(outcome.status.value).inc()
        for source in outcome.sources_degraded:
            self.metrics.source_errors.labels(source).inc()
        if self.notifier is not None:  # failures too: someone is waiting for this page
            self.notifier.send(summary_of(record, outcome, self.public_url))
