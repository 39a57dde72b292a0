"""from_report(report) -> Runbook: the culprit's evidence turned into DSL checks for next time.

Each kind of evidence id maps to an expression that re-measures the same thing on a future
incident, with a threshold halfway (geometrically, for ratios) between the fault-free value and
what this incident showed, so a milder repeat still passes and a healthy system does not:

    metric:<svc>:<name>       max(metric(svc, name)) > R * median(metric(svc, name)[baseline])
                              (a drop: median(...) < F * median(...[baseline]))
    log:<svc>:<template>      count(logs(svc, message~"<fragment>")) >= 3
    trace:<svc>:span-error-rate            error_ratio(spans(svc)) > T
    trace:<svc>:calls-failing-before-server error_ratio(spans(operation~"call svc")) > T
    trace:<svc>:*-p90(ms)     latency_p(90, spans(...)) - latency_p(90, spans(...)[baseline]) > D
    event:<svc>:<kind>:<ts>   count(events(svc, kind=...)[window.start - 15m .. window.end]) > 0
    code:<svc>:<a>_<b>        count(logs(svc, message~b)) < F * count(logs(svc, message~a))
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime

from warroom.causal.rank import symptom_family
from warroom.dsl.syntax import format_number, quote
from warroom.errors import InputError
from warroom.experts.peers import UNANSWERED
from warroom.experts.traces import ERRORS, NETWORK
from warroom.model import Evidence, Report, RootCause
from warroom.report.render import INCONCLUSIVE_BELOW, confidence_label
from warroom.runbooks.model import Check, Provenance, Runbook, Signature, runbook_id
from warroom.runbooks.remediation import remedy

MIN_CONFIDENCE = INCONCLUSIVE_BELOW  # below it the report itself says "inconclusive"
MAX_CHECKS = 6
MAX_PATH_CHECKS = 2  # checks on services other than the culprit (symptoms say little alone)
MIN_NEW_LINES = 3  # as the log expert: a template seen fewer times is not reported
MAX_RATIO = 10.0
MIN_FRAGMENT = 4
_CODE_LOCATION = re.compile(r"^(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*#\d+$")
_TRANSITION = re.compile(r"after '(?P<a>[^']+)', '(?P<b>[^']+)' followed")


def from_report(
    report: Report,
    *,
    created: datetime | None = None,
    source: str = "",
    min_confidence: float = MIN_CONFIDENCE,
) -> Runbook:
    """A runbook from a finished investigation; InputError when there is nothing to learn."""
    culprit = report.culprit
    if culprit is None:
        raise InputError(f"report {report.incident.id} names no culprit: nothing to learn")
    if report.confidence < min_confidence:
        raise InputError(
            f"report {report.incident.id} is inconclusive (confidence {report.confidence:.2f} "
            f"< {min_confidence:.2f}): a runbook from it would teach a guess"
        )
    checks = derive_checks(culprit, report.incident.id)
    if not checks:
        raise InputError(
            f"report {report.incident.id}: none of the culprit's evidence can be re-measured"
        )
    signature = signature_of(report, culprit)
    callers = tuple(culprit.path[1:2])  # the direct caller on the path
    words, steps = remedy(culprit.fault_type, culprit.service, callers)
    moment = (created or datetime.now(tz=UTC)).astimezone(UTC)
    provenance = Provenance(
        incident_id=report.incident.id,
        confidence=round(report.confidence, 3),
        verdict=confidence_label(report.confidence),
        source=source,
    )
    expressions = tuple(c.expression for c in checks)
    return Runbook(
        id=runbook_id(signature, report.incident.id, expressions),
        title=_title(signature, words),
        created=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        signature=signature,
        checks=checks,
        remediation=steps,
        provenance=provenance,
    )


def _title(signature: Signature, words: str) -> str:
    title = f"{signature.culprit_service}: {words}"
    if signature.symptom_service and signature.symptom_service != signature.culprit_service:
        family = f" {signature.symptom_family}" if signature.symptom_family else ""
        title += f" behind {signature.symptom_service}{family}"
    return title


def signature_of(report: Report, culprit: RootCause) -> Signature:
    """The alert (symptom service, metric, family) and the root cause behind it."""
    incident = report.incident
    symptom = incident.symptom_service or (culprit.path[-1] if culprit.path else None)
    metric = incident.symptom_metric
    family = symptom_family(metric) if metric else _observed_family(culprit, symptom)
    return Signature(
        symptom_service=symptom,
        symptom_metric=metric,
        symptom_family=family,
        culprit_service=culprit.service,
        culprit_indicator=culprit.indicator,
        fault_type=culprit.fault_type,
        path=tuple(culprit.path),
    )


def _observed_family(culprit: RootCause, symptom: str | None) -> str | None:
    """Without an alert metric: the family of the first evidence about the symptom service."""
    for e in culprit.evidence:
        kind, service, rest = _split(e.id)
        if service == symptom and kind in ("metric", "trace"):
            return symptom_family(rest)
    return None


def derive_checks(culprit: RootCause, incident_id: str) -> tuple[Check, ...]:
    """Checks from the culprit's evidence: its own first, a few along the path, no repeats."""
    own: list[Check] = []
    path: list[Check] = []
    seen: set[str] = set()
    for evidence in culprit.evidence:
        check = check_for(evidence, incident_id)
        if check is None or check.expression in seen:
            continue
        seen.add(check.expression)
        (own if culprit.service in check.services else path).append(check)
    return tuple(own[:MAX_CHECKS] + path[:MAX_PATH_CHECKS])[:MAX_CHECKS]


def check_for(evidence: Evidence, incident_id: str) -> Check | None:
    """The check that re-measures one piece of evidence, or None for kinds it cannot."""
    kind, service, rest = _split(evidence.id)
    builder = _BUILDERS.get(kind)
    if builder is None or not service or not rest:
        return None
    made = builder(service, rest, evidence)
    if made is None:
        return None
    name, expression = made
    return Check(name=name, expression=expression, why=f"In {incident_id}: {evidence.statement}")


def _split(evidence_id: str) -> tuple[str, str, str]:
    """`kind:service:rest` (rest may hold colons: metric names, templates, timestamps)."""
    kind, _, tail = evidence_id.partition(":")
    service, _, rest = tail.partition(":")
    return kind, service, rest


Made = tuple[str, str] | None


def _metric(service: str, name: str, e: Evidence) -> Made:
    value, base = e.value, e.baseline
    if base is None or not math.isfinite(value) or not math.isfinite(base):
        return None
    series = f"metric({quote(service)}, {quote(name)})"
    reference = f"median({series}[baseline])"
    if value >= base:
        if base > 0:
            ratio = min(math.sqrt(value / base), MAX_RATIO)
            return f"{service} {name} up", f"max({series}) > {_num(ratio)} * {reference}"
        if value <= 0:
            return None
        return f"{service} {name} up", f"max({series}) > {_num(value / 2)}"
    if base <= 0:
        return None
    # The median, not the minimum: one missed scrape must not look like a drop.
    factor = max(math.sqrt(max(value, 0.0) / base), 0.1)
    return f"{service} {name} down", f"median({series}) < {_num(factor)} * {reference}"


def _log(service: str, key: str, e: Evidence) -> Made:
    base = e.baseline or 0.0
    fragment = log_fragment(key)
    if fragment is None or e.value <= base:
        return None  # a template that grew rarer is the shadow of another one that grew
    lines = f"logs({quote(service)}, message~{quote(fragment)})"
    if base <= 0:
        return f"{service} logs {fragment!r}", f"count({lines}) >= {MIN_NEW_LINES}"
    ratio = min(math.sqrt(e.value / base), MAX_RATIO)
    return (
        f"{service} logs {fragment!r} more often",
        f"rate({lines}) > {_num(ratio)} * rate({lines}[baseline])",
    )


def log_fragment(key: str) -> str | None:
    """Text every line of a template contains: its code location, or its longest literal part."""
    key = key.strip()
    if _CODE_LOCATION.match(key):
        return key
    parts = sorted((p.strip() for p in key.split("<*>")), key=len, reverse=True)
    best = parts[0] if parts else ""
    return best if len(best) >= MIN_FRAGMENT else None


def _trace(service: str, indicator: str, e: Evidence) -> Made:
    calls = f"spans(operation~{quote('call ' + service)})"
    if indicator in (ERRORS, UNANSWERED):
        threshold = (e.value + (e.baseline or 0.0)) / 2
        if not 0 < threshold < 1:
            return None
        if indicator == ERRORS:
            spans = f"spans({quote(service)})"
            name = f"{service} spans failing"
        else:
            spans, name = calls, f"calls to {service} failing before it answers"
        return name, f"error_ratio({spans}) > {_num(threshold)}"
    if not indicator.endswith("(ms)") or e.baseline is None or e.value <= e.baseline:
        return None
    spans = calls if indicator == NETWORK else f"spans({quote(service)})"
    name = f"calls to {service} slower" if indicator == NETWORK else f"{service} spans slower"
    rise_ms = (e.value - e.baseline) / 2
    latency = f"latency_p(90, {spans})"
    return name, f"{latency} - latency_p(90, {spans}[baseline]) > {_num(rise_ms)}ms"


def _event(service: str, rest: str, e: Evidence) -> Made:
    kind, _, _when = rest.rpartition(":")
    if not kind:
        return None
    events = f"events({quote(service)}, kind={quote(kind)})"
    return (
        f"{kind} of {service} shortly before",
        f"count({events}[window.start - 15m .. window.end]) > 0",
    )


def _code(service: str, _pair: str, e: Evidence) -> Made:
    found = _TRANSITION.search(e.statement)
    if found is None or e.baseline is None or e.value >= e.baseline:
        return None
    first, then = found.group("a"), found.group("b")
    if not (_CODE_LOCATION.match(first) and _CODE_LOCATION.match(then)):
        return None  # span call events have no log line to count
    share = (e.value + e.baseline) / 2
    before = f"logs({quote(service)}, message~{quote(first)})"
    after = f"logs({quote(service)}, message~{quote(then)})"
    return (
        f"{service}: {then} no longer follows {first}",
        f"count({after}) < {_num(share)} * count({before})",
    )


_BUILDERS: dict[str, Callable[[str, str, Evidence], Made]] = {
    "metric": _metric,
    "log": _log,
    "trace": _trace,
    "event": _event,
    "code": _code,
}


def _num(x: float) -> str:
    """Three significant digits, written so the DSL reads it back (no exponent when avoidable)."""
    if x == 0 or not math.isfinite(x):
        return "0"
    digits = 2 - int(math.floor(math.log10(abs(x))))
    return format_number(round(x, digits))
