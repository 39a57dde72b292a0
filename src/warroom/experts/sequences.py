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
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from operator import attrgetter
from typing import NamedTuple, TypeVar

import numpy as np
from numpy.typing import NDArray
from scipy.stats import binom

from warroom.experts.surprise import z_from_p
from warroom.experts.traces import parent_index
from warroom.model import Evidence, Finding, IndicatorKind, Modality, Span

END = "<end>"
MIN_CONTEXT = 3  # an event must be seen this often in the baseline to have a usual successor
MIN_Z = 3.0
# A broken region is a near-total break: the usual successor now follows at most this share of
# its former rate. Milder shifts are workload mix, not a code path that stopped running.
MAX_REMAINING = 0.5

IntArray = NDArray[np.int64]
_H = TypeVar("_H", bound=Hashable)


class EventOccurrence(NamedTuple):
    """One event in one span: a log statement or a span start.

    A named tuple, not a frozen dataclass: an investigation builds about a million of these, and
    a tuple is several times cheaper to create (same constructor and attributes).
    """

    time: float
    service: str
    span_key: str  # trace_id/span_id (or trace_id/service when logs carry no span id)
    key: str
    error: bool = False


def span_events(spans: Iterable[Span]) -> list[EventOccurrence]:
    """A '<operation> start' event for every span."""
    spans = list(spans)
    starts = {op: f"{op} start" for op in {s.operation for s in spans}}  # one string per operation
    return [
        EventOccurrence(s.start, s.service, f"{s.trace_id}/{s.span_id}", starts[s.operation])
        for s in spans
    ]


def call_events(spans: Iterable[Span]) -> list[EventOccurrence]:
    """Each span's start plus one '-> <operation>' event per child span, in the parent's sequence.

    This is the control flow traces alone can show: an exception that aborts a method also
    aborts the calls it would have made next, even when no log line says so.
    """
    spans = list(spans)
    events = span_events(spans)  # events[i] is the start of spans[i]: its service and span key
    calls = {op: f"-> {op}" for op in {s.operation for s in spans}}
    events += [
        EventOccurrence(child.start, events[p].service, events[p].span_key, calls[child.operation])
        for child, p in zip(spans, parent_index(spans).tolist(), strict=True)
        if p >= 0
    ]
    return events


def _factorize(values: Iterable[_H]) -> tuple[IntArray, list[_H]]:
    """Integer codes of values, numbered in order of first appearance, and the distinct values.

    First-appearance numbering keeps every result in the order the per-event loops it replaces
    produced (dict insertion order), so Counter ties and finding order do not change.
    """
    index: dict[_H, int] = {}
    codes = [index.setdefault(v, len(index)) for v in values]
    return np.array(codes, dtype=np.int64), list(index)


@dataclass(frozen=True)
class _Encoded:
    """Events as integer columns: which span sequence each belongs to, its event, its time."""

    times: NDArray[np.float64]
    groups: IntArray  # (service, span_key), numbered in order of first appearance
    group_services: IntArray  # service code of each group
    services: list[str]
    keys: IntArray  # index into names
    names: list[str]  # event keys, END included
    end: int  # the code of END


def _encode(events: Iterable[EventOccurrence]) -> _Encoded:
    events = events if isinstance(events, list) else list(events)
    times = np.fromiter(map(attrgetter("time"), events), dtype=np.float64, count=len(events))
    groups, group_ids = _factorize(map(attrgetter("service", "span_key"), events))
    group_services, services = _factorize(service for service, _ in group_ids)
    keys, names = _factorize(map(attrgetter("key"), events))
    if END not in names:  # (a log key may even be spelled like END: then it is END)
        names.append(END)
    return _Encoded(times, groups, group_services, services, keys, names, names.index(END))


def _pairs(enc: _Encoded, order: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """(service, event, next event) codes of each event in `order` (sorted by group first); the
    last event of each group is followed by END."""
    groups, keys = enc.groups[order], enc.keys[order]
    following = np.full(len(order), enc.end, dtype=np.int64)
    same_group = groups[1:] == groups[:-1]
    following[:-1] = np.where(same_group, keys[1:], following[:-1])
    return enc.group_services[groups], keys, following


def _triple_codes(enc: _Encoded, services: IntArray, a: IntArray, b: IntArray) -> IntArray:
    """One integer per (service, event, next event) triple."""
    dims = (len(enc.services), len(enc.names), len(enc.names))
    if dims[0] * dims[1] * dims[2] < 2**62:
        return np.ravel_multi_index((services, a, b), dims).astype(np.int64)
    # Too many combinations for one int64: number the triples that occur instead.
    return _factorize(zip(services.tolist(), a.tolist(), b.tolist(), strict=True))[0]


def _triple(enc: _Encoded, service: int, a: int, b: int) -> tuple[str, str, str]:
    return (enc.services[service], enc.names[a], enc.names[b])


Transitions = Counter[tuple[str, str, str]]  # (service, event, next event) -> count


def transitions(events: Iterable[EventOccurrence]) -> Transitions:
    """Count consecutive event pairs within each span, per service."""
    enc = _encode(events)
    counts: Transitions = Counter()
    if len(enc.times) == 0:
        return counts
    # Within a span: time order; span starts sort before logs at the same instant; input order
    # breaks other ties. Spans are visited in order of first appearance.
    later = np.array([not k.endswith(" start") for k in enc.names], dtype=np.int64)[enc.keys]
    order = np.lexsort((np.arange(len(enc.times)), later, enc.times, enc.groups))
    services, a, b = _pairs(enc, order)
    codes = _triple_codes(enc, services, a, b)
    _, first, n = np.unique(codes, return_index=True, return_counts=True)
    # Insert in order of first occurrence, as a Counter filled pair by pair would.
    for i, count in sorted(zip(first.tolist(), n.tolist(), strict=True)):
        counts[_triple(enc, int(services[i]), int(a[i]), int(b[i]))] = count
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
    enc = _encode(events)
    if len(enc.times) == 0:
        return {}
    # Within a span, (time, event key) order: events at the same instant sort by key text.
    by_text = np.empty(len(enc.names), dtype=np.int64)
    by_text[sorted(range(len(enc.names)), key=enc.names.__getitem__)] = np.arange(len(enc.names))
    order = np.lexsort((by_text[enc.keys], enc.times, enc.groups))
    services, a, b = _pairs(enc, order)
    times = enc.times[order]
    codes = _triple_codes(enc, services, a, b)
    earliest = np.lexsort((times, codes))  # each triple's earliest occurrence comes first
    first = earliest[np.unique(codes[earliest], return_index=True)[1]]
    return {
        _triple(enc, s, x, y): t
        for s, x, y, t in zip(
            services[first].tolist(),
            a[first].tolist(),
            b[first].tolist(),
            times[first].tolist(),
            strict=True,
        )
    }
