"""Code-region expert: which step of a service's usual control flow stopped happening.

Each span becomes a short sequence of events: "<operation> start", then the span's log events
(code locations or mined templates) in time order, then an end marker. Within a service the
fault-free data gives P(next event | event). A code fault (early return, exception) breaks one
of these transitions: after event A the usual event B no longer follows. The region A_B names
the code between two log statements, the finest location telemetry can give without the code.

Scores are binomial surprises converted to a normal z, so they share a scale with the metric
expert's robust z-scores.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from scipy.stats import binom

from warroom.experts.surprise import z_from_p
from warroom.model import Evidence, Finding, IndicatorKind, Modality, Span

END = "<end>"
MIN_CONTEXT = 3  # an event must be seen this often in the baseline to have a usual successor
MIN_Z = 3.0
# A broken region is a near-total break: the usual successor now follows at most this share of
# its former rate. Milder shifts are workload mix, not a code path that stopped running.
MAX_REMAINING = 0.5


@dataclass(frozen=True)
class EventOccurrence:
    """One event in one span: a log statement or a span start."""

    time: float
    service: str
    span_key: str  # trace_id/span_id (or trace_id/service when logs carry no span id)
    key: str
    error: bool = False


def span_events(spans: Iterable[Span]) -> list[EventOccurrence]:
    """A '<operation> start' event for every span."""
    return [
        EventOccurrence(s.start, s.service, f"{s.trace_id}/{s.span_id}", f"{s.operation} start")
        for s in spans
    ]


def call_events(spans: Iterable[Span]) -> list[EventOccurrence]:
    """Each span's start plus one '-> <operation>' event per child span, in the parent's sequence.

    This is the control flow traces alone can show: an exception that aborts a method also
    aborts the calls it would have made next, even when no log line says so.
    """
    spans = list(spans)
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    events = span_events(spans)
    for child in spans:
        parent = by_id.get((child.trace_id, child.parent_id))
        if parent is not None:
            events.append(
                EventOccurrence(
                    child.start,
                    parent.service,
                    f"{parent.trace_id}/{parent.span_id}",
                    f"-> {child.operation}",
                )
            )
    return events


Transitions = Counter[tuple[str, str, str]]  # (service, event, next event) -> count


def transitions(events: Iterable[EventOccurrence]) -> Transitions:
    """Count consecutive event pairs within each span, per service."""
    by_span: dict[tuple[str, str], list[tuple[float, int, str]]] = defaultdict(list)
    for order, e in enumerate(events):
        # Span starts sort before logs at the same instant; insertion order breaks other ties.
        rank = 0 if e.key.endswith(" start") else 1
        by_span[(e.service, e.span_key)].append((e.time, rank * 10**9 + order, e.key))
    counts: Transitions = Counter()
    for (service, _), items in by_span.items():
        keys = [k for _, _, k in sorted(items)] + [END]
        for a, b in zip(keys, keys[1:], strict=False):
            counts[(service, a, b)] += 1
    return counts


@dataclass(frozen=True)
class _Context:
    total: int
    successors: Counter[str]


def _contexts(counts: Transitions) -> dict[tuple[str, str], _Context]:
    grouped: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for (service, a, b), n in counts.items():
        grouped[(service, a)][b] += n
    return {k: _Context(sum(c.values()), c) for k, c in grouped.items()}


def broken_transitions(
    baseline: Transitions,
    incident: Transitions,
    first_seen: dict[tuple[str, str, str], float],
    error_keys: frozenset[str] = frozenset(),
) -> list[Finding]:
    """Findings for transitions that stopped following their event (an early exit).

    A successor that was an error line is skipped: an error that stopped happening is good news.
    """
    base_ctx, inc_ctx = _contexts(baseline), _contexts(incident)
    findings = []
    for (service, a), ctx in inc_ctx.items():
        before = base_ctx.get((service, a))
        if before is None or before.total < MIN_CONTEXT:
            continue
        findings += _dropped(service, a, before, ctx, first_seen, error_keys)
    return [f for f in findings if f.score >= MIN_Z]


def _dropped(
    service: str,
    a: str,
    before: _Context,
    now: _Context,
    first_seen: dict[tuple[str, str, str], float],
    error_keys: frozenset[str],
) -> list[Finding]:
    """Successors of `a` seen less often than the baseline predicts (the broken region)."""
    out = []
    for b, count in before.successors.items():
        if b == END or b in error_keys:
            continue  # flows that now run longer, or errors that stopped, are not early exits
        p0 = (count + 0.5) / (before.total + 1.0)
        observed = now.successors.get(b, 0)
        if observed / now.total > MAX_REMAINING * count / before.total:
            continue
        p_value = float(binom.cdf(observed, now.total, p0))
        z = z_from_p(p_value)
        if z < MIN_Z:
            continue
        replaced_by = [k for k, _ in now.successors.most_common(3) if k not in before.successors]
        # Onset: the first time `a` was followed by anything but its usual successor.
        others = [r for r in now.successors if r != b]
        onset = min((first_seen.get((service, a, r), float("inf")) for r in others), default=None)
        out.append(_finding(service, a, b, z, before, now, observed, replaced_by, onset))
    return out


def _finding(
    service: str,
    a: str,
    b: str,
    z: float,
    before: _Context,
    now: _Context,
    observed: int,
    replaced_by: list[str],
    onset: float | None,
) -> Finding:
    base_share = before.successors[b] / before.total
    instead = f"; now followed by {', '.join(replaced_by)}" if replaced_by else ""
    statement = (
        f"{service}: after '{a}', '{b}' followed {before.successors[b]}/{before.total} times "
        f"({base_share:.0%}) fault-free but {observed}/{now.total} ({observed / now.total:.0%}) "
        f"during the incident{instead}"
    )
    evidence = Evidence(
        id=f"code:{service}:{a}_{b}",
        statement=statement,
        value=observed / now.total,
        baseline=base_share,
        unit="P(next event)",
        source=f"experts.sequences.broken_transitions(service={service}, event={a!r})",
    )
    has_onset = onset is not None and onset != float("inf")
    return Finding(
        service=service,
        indicator=f"{a}_{b}",
        kind=IndicatorKind.CODE,
        modality=Modality.LOG,
        score=z,
        onset=onset if has_onset else None,
        direction=-1,
        evidence=(evidence,),
    )


def first_occurrences(events: Iterable[EventOccurrence]) -> dict[tuple[str, str, str], float]:
    """When each (service, event, next event) transition was first seen."""
    by_span: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
    for e in events:
        by_span[(e.service, e.span_key)].append((e.time, e.key))
    first: dict[tuple[str, str, str], float] = {}
    for (service, _), items in by_span.items():
        items.sort()
        for (t, a), (_, b) in zip(items, items[1:] + [(items[-1][0], END)], strict=False):
            key = (service, a, b)
            first[key] = min(first.get(key, t), t)
    return first
