"""The values `warroom serve` passes between its parts: a page becomes an investigation request,
an investigation moves through its states, a finished one is summarised for a webhook.

    webhook (alerts.py) -> Notification, [AlertRequest] -> repository (repository.py) -> worker
    (app.py) -> Report -> repository + notify.py

Kept free of FastAPI and SQLAlchemy so every part can be tested alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    """Where an investigation is; `done` and the two after it are final."""

    queued = "queued"
    running = "running"
    done = "done"
    inconclusive = "inconclusive"  # finished, but no culprit at a confidence worth naming
    failed = "failed"  # could not run (the reason says why)


FINAL = frozenset({Status.done, Status.inconclusive, Status.failed})


@dataclass(frozen=True)
class AlertRequest:
    """One alert of a notification, as something to investigate.

    `key` identifies the incident across Alertmanager's repeats (group_interval,
    repeat_interval): groupKey + fingerprint + startsAt. A repeat with the same key joins the
    existing investigation; `resolved` marks it resolved, it is not a new one."""

    key: str
    service: str | None
    start: float  # window start (epoch seconds)
    end: float  # window end
    alert_time: float  # the alert's startsAt
    symptom: str | None = None  # the alerting metric, where a label or annotation names it
    labels: tuple[tuple[str, str], ...] = ()
    resolved: bool = False
    source: str = "alertmanager"  # alertmanager | api


@dataclass(frozen=True)
class InvestigationRecord:
    """An investigation as the repository keeps it."""

    id: str
    key: str
    status: Status
    request: AlertRequest
    created_at: float
    updated_at: float
    reason: str = ""  # why it failed, or what made it inconclusive
    resolved: bool = False
    notifications: int = 1  # how many webhook deliveries named it (repeats included)
    report_json: str | None = None  # report.render.to_json, as text
    report_html: str | None = None
    culprit: str | None = None
    confidence: float | None = None
    cache_path: str | None = None  # the DuckDB fetch cache it used: a re-run reads from it


@dataclass(frozen=True)
class StoredNotification:
    """A webhook delivery exactly as it was received and persisted."""

    id: str
    body: bytes
    content_type: str
    received_at: float


@dataclass(frozen=True)
class Summary:
    """What a finished investigation tells a chat channel or another system."""

    investigation_id: str
    service: str | None
    status: Status
    culprit: str | None
    confidence: float | None
    evidence: str  # one line
    url: str  # the report page
    fault_type: str | None = None
    path: tuple[str, ...] = field(default_factory=tuple)
