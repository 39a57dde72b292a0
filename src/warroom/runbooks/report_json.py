"""A Report back from the JSON that `warroom investigate --json` and `gym run --json` print.

Only what a runbook needs is read (the incident, the candidates with their evidence, the
confidence); other keys (truth, score, narrative) are ignored. Times are ISO-8601 strings.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from warroom.errors import InputError
from warroom.intake.files import read_text
from warroom.model import Evidence, Incident, Report, RootCause, TimeRange

MAX_REPORT_BYTES = 64 << 20


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Window(_Loose):
    start: str
    end: str


class _Incident(_Loose):
    id: str
    window: _Window
    alert_time: str
    symptom_service: str | None = None
    symptom_metric: str | None = None


class _Evidence(_Loose):
    id: str
    statement: str
    value: float | None = None  # NaN and infinity come out of json.dumps as NaN/Infinity
    baseline: float | None = None
    unit: str = ""
    source: str = ""


class _Candidate(_Loose):
    service: str
    indicator: str
    fault_type: str
    score: float = 0.0
    onset: str | None = None
    path: list[str] = []
    explains: float = 0.0
    evidence: list[_Evidence] = []


class _Report(_Loose):
    incident: _Incident
    candidates: list[_Candidate]
    confidence: float
    confidence_raw: float | None = None


def read_report(path: Path) -> Report:
    """The report in a JSON file; InputError naming the file when it is not one."""
    # Reports print NaN for a missing value (json.dumps does), so NaN is read here.
    text = read_text(path, MAX_REPORT_BYTES)
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}:{err.lineno}: not a JSON report ({err.msg})") from None
    except RecursionError:
        raise InputError(f"{path}: not a JSON report (nested too deeply to read)") from None
    except ValueError:  # a number past Python's int-string limit
        raise InputError(f"{path}: not a JSON report (a number too long to read)") from None
    return report_from_json(payload, str(path))


def report_from_json(payload: Any, where: str = "report") -> Report:
    """A Report from the JSON of report.render.to_json."""
    try:
        data = _Report.model_validate(payload)
        return Report(
            incident=_incident(data.incident),
            candidates=tuple(_candidate(c) for c in data.candidates),
            confidence=data.confidence,
            raw_confidence=data.confidence_raw,
        )
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "report"
        raise InputError(f"{where}: {field}: {first['msg']}") from None
    except ValueError as err:  # a time that is not ISO-8601, a window that ends before it starts
        raise InputError(f"{where}: {err}") from None


def _time(text: str) -> float:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _incident(i: _Incident) -> Incident:
    return Incident(
        id=i.id,
        window=TimeRange(_time(i.window.start), _time(i.window.end)),
        alert_time=_time(i.alert_time),
        symptom_service=i.symptom_service,
        symptom_metric=i.symptom_metric,
    )


def _candidate(c: _Candidate) -> RootCause:
    return RootCause(
        service=c.service,
        indicator=c.indicator,
        fault_type=c.fault_type,
        score=c.score,
        onset=_time(c.onset) if c.onset else None,
        path=tuple(c.path),
        explains=c.explains,
        evidence=tuple(_evidence(e) for e in c.evidence),
    )


def _evidence(e: _Evidence) -> Evidence:
    value = float("nan") if e.value is None else e.value
    return Evidence(e.id, e.statement, value, e.baseline, e.unit, e.source)
