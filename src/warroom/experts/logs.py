"""Log expert: events from log lines, and templates that appear, vanish or burst. Pure functions.

Templates are mined over baseline and incident lines together so both sides share template ids.
A template's share of its service's lines is compared between the two sides (a share, not a
rate, so a traffic change alone does not look like a fault).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import cast

from scipy.stats import binom

from warroom.experts.sequences import EventOccurrence
from warroom.experts.surprise import z_from_p
from warroom.experts.templates import code_location, mine, template_key
from warroom.model import Evidence, Finding, IndicatorKind, LogRecord, Modality

_ERROR_LEVELS = {"ERROR", "ERR", "SEVERE", "FATAL", "CRITICAL", "PANIC", "EMERG", "ALERT"}
# Trace context that some services print inside the message: transport metadata, not the event.
_TRACE_CONTEXT = re.compile(r"\b(?:trace|span)[ _-]?id\s*[:=]\s*[\w-]+\s*", re.IGNORECASE)
_ERROR_WORDS = re.compile(r"exception|error|fail|refused|timeout|timed out|unavailable", re.I)
MIN_Z = 3.0
MIN_COUNT = 3  # a template must be seen this often during the incident to be reported


def is_error(level: str, message: str) -> bool:
    """An error-level line, or one whose text says an error happened."""
    return level.upper() in _ERROR_LEVELS or _says_error(message)


@lru_cache(maxsize=65536)
def _says_error(message: str) -> bool:
    return bool(_ERROR_WORDS.search(message))


def log_events(records: Sequence[LogRecord]) -> list[EventOccurrence]:
    """One event per log line, keyed by code location or mined template."""
    if not records:
        return []
    # A few thousand distinct messages make up hundreds of thousands of lines: each distinct
    # message is cleaned, located and checked for error words once.
    cleaned = {m: _TRACE_CONTEXT.sub("", m).strip() for m in {r.message for r in records}}
    located = {m: code_location(c) for m, c in cleaned.items()}
    says_error = {m: _says_error(m) for m in cleaned}
    error_level = {lv: lv.upper() in _ERROR_LEVELS for lv in {r.level for r in records}}
    keys = [located[r.message] for r in records]
    # A logger location (Class#line) is the most precise key there is; only the other lines
    # need template mining, which is the expensive part. Mining depends on the order and number
    # of lines, so every such line goes to the miner, repeats included.
    unkeyed = [i for i, k in enumerate(keys) if k is None]
    if unkeyed:
        result = mine([cleaned[records[i].message] for i in unkeyed])
        by_template = [template_key(t) for t in result.templates]
        for i, template_id in zip(unkeyed, result.ids, strict=True):
            keys[i] = by_template[template_id]
    assert None not in keys  # every line got a location or a template above
    return [
        EventOccurrence(
            r.time,
            r.service,
            f"{r.trace_id}/{r.span_id or r.service}",
            key,
            error_level[r.level] or says_error[r.message],
        )
        for r, key in zip(records, cast(list[str], keys), strict=True)
    ]


def template_findings(
    baseline: Sequence[EventOccurrence], incident: Sequence[EventOccurrence]
) -> list[Finding]:
    """Templates whose share of their service's log lines grew (new or bursting) or vanished."""
    base_total = Counter(e.service for e in baseline)
    inc_total = Counter(e.service for e in incident)
    base = Counter((e.service, e.key) for e in baseline)
    inc = Counter((e.service, e.key) for e in incident)
    errors = {(e.service, e.key) for e in incident if e.error}
    first_seen: dict[tuple[str, str], float] = {}
    for e in incident:
        first_seen.setdefault((e.service, e.key), e.time)
    findings = []
    for key in sorted(set(base) | set(inc)):  # sorted: ties break alike in every process
        service = key[0]
        if base_total[service] == 0 or inc_total[service] == 0:
            continue  # no baseline for this service: nothing to compare with
        finding = _share_change(base[key], base_total[service], inc[key], inc_total[service])
        if finding is not None:
            onset = first_seen.get(key) if finding[1] > 0 else None
            findings.append(
                _finding(key, *finding, key in errors, onset, base, inc, base_total, inc_total)
            )
    return findings


def _share_change(
    base_count: int, base_total: int, inc_count: int, inc_total: int
) -> tuple[float, int] | None:
    """(z, direction) of a template's share change, or None when it is within noise."""
    p0 = (base_count + 0.5) / (base_total + 1.0)
    if inc_count >= MIN_COUNT and inc_count > inc_total * p0:
        z = z_from_p(float(binom.sf(inc_count - 1, inc_total, p0)))
        return (z, +1) if z >= MIN_Z else None
    if base_count >= MIN_COUNT and inc_count < inc_total * p0:
        z = z_from_p(float(binom.cdf(inc_count, inc_total, p0)))
        return (z, -1) if z >= MIN_Z else None
    return None


def _finding(
    key: tuple[str, str],
    z: float,
    direction: int,
    error: bool,
    onset: float | None,
    base: Counter[tuple[str, str]],
    inc: Counter[tuple[str, str]],
    base_total: Counter[str],
    inc_total: Counter[str],
) -> Finding:
    service, template = key
    b_share = base[key] / base_total[service]
    i_share = inc[key] / inc_total[service]
    what = "new" if base[key] == 0 else ("more frequent" if direction > 0 else "less frequent")
    label = "error log" if error else "log"
    statement = (
        f"{service}: {label} '{template}' {what}: {base[key]}/{base_total[service]} lines "
        f"({b_share:.1%}) fault-free vs {inc[key]}/{inc_total[service]} ({i_share:.1%}) now"
    )
    evidence = Evidence(
        id=f"log:{service}:{template}",
        statement=statement,
        value=i_share,
        baseline=b_share,
        unit="share of service log lines",
        source=f"experts.logs.template_findings(service={service}, template={template!r})",
    )
    return Finding(
        service=service,
        indicator=f"log:{template}",
        kind=IndicatorKind.SYMPTOM,
        modality=Modality.LOG,
        score=z if error and direction > 0 else z * 0.5,  # new errors say most
        onset=onset,
        direction=direction,
        evidence=(evidence,),
    )
