"""The call edges between services, seen from the client's side.

Calls that never reached the callee: the only trace of DNS, TLS and third-party failures.

An instrumented client names its callee on its span (OTel peer.service); when the callee's
server answers, its own span is the client span's child. A failing client span with no child
means the request died before any server of the callee saw it (the name did not resolve, the
handshake failed, the connection was refused) or the callee is not instrumented at all (a
third party). Either way the failure belongs to the callee, not to the caller that reports it.
A callee of ours (it exports metrics or logs) with no server span anywhere, not even in the
fault-free baseline, has lost its traces (sampled away, exporter down): every call into it looks
unanswered, failing ones included, when its failures are its callees'. Only a callee that
answered in the baseline can stop answering; a third party never answers and exports nothing.

Calls slowed on the way to the callee: clients export their per-peer request latency as
metrics (OpenTelemetry `http.client.request.duration` with `server.address`, a Prometheus
histogram with a `peer` label), which survive lost spans. When the calls into one callee got
slower, from all (most) of its callers, while the callee's own server-side latency did not
rise as much, the extra time is spent between them: the network on the callee's side.
Pure functions over spans and series, like the other experts.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

from warroom.experts.metrics import ONSET_Z, deviation
from warroom.experts.surprise import z_from_p
from warroom.experts.traces import MIN_RATIO, NETWORK
from warroom.model import (
    Evidence,
    Finding,
    FloatArray,
    IndicatorKind,
    Modality,
    Series,
    Span,
    TimeRange,
)

UNANSWERED = "calls-failing-before-server"
PEER_LATENCY = "client-latency-by-peer"
MIN_FAILURES = 5
MIN_Z = 3.0


def unanswered_counts(spans: Sequence[Span]) -> dict[str, tuple[int, int, float | None]]:
    """Per callee: (failed calls that no server span answered, all its client calls, first
    failure time)."""
    parents = {(s.trace_id, s.parent_id) for s in spans if s.parent_id}
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    first: dict[str, float] = {}
    for s in spans:
        if not s.peer:
            continue
        counts[s.peer][1] += 1
        if s.error and (s.trace_id, s.span_id) not in parents:
            counts[s.peer][0] += 1
            first[s.peer] = min(first.get(s.peer, s.start), s.start)
    return {k: (v[0], v[1], first.get(k)) for k, v in counts.items()}


def answered_in(spans: Sequence[Span]) -> set[str]:
    """Callees with at least one server span answering a client span among `spans`."""
    clients = {(s.trace_id, s.span_id): s.peer for s in spans if s.peer}
    return {s.service for s in spans if s.parent_id and clients.get((s.trace_id, s.parent_id))}


def unanswered_findings(
    baseline: Sequence[Span], incident: Sequence[Span], instrumented: Collection[str] = ()
) -> list[Finding]:
    """Callees whose clients' calls started failing without reaching them.

    `instrumented`: services known to export telemetry of their own (metrics, logs). One of
    them that no server span answers, in the baseline or now, has lost its spans rather than
    stopped answering: it is not charged."""
    base, inc = unanswered_counts(baseline), unanswered_counts(incident)
    lost = set(instrumented) - answered_in(baseline) - answered_in(incident)
    findings = []
    for callee, (failed, total, onset) in sorted(inc.items()):
        if callee in lost:
            continue
        b_failed, b_total, _ = base.get(callee, (0, 0, None))
        p0 = (b_failed + 0.5) / (b_total + 1.0)
        if failed < MIN_FAILURES or failed <= total * p0:
            continue
        z = z_from_p(float(binom.sf(failed - 1, total, p0)))
        if z < MIN_Z:
            continue
        statement = (
            f"{callee}: client calls failing before any {callee} server answered: "
            f"{b_failed}/{b_total} fault-free -> {failed}/{total} now"
        )
        evidence = Evidence(
            id=f"trace:{callee}:{UNANSWERED}",
            statement=statement,
            value=failed / total,
            baseline=b_failed / b_total if b_total else None,
            unit="share of client calls",
            source=f"experts.peers.unanswered_findings(callee={callee})",
        )
        findings.append(
            Finding(
                callee,
                UNANSWERED,
                IndicatorKind.RESOURCE,
                Modality.TRACE,
                z,
                onset,
                +1,
                (evidence,),
            )
        )
    return findings


# --- calls slowed on the way to the callee ---------------------------------------------------

# Labels naming the callee on a client's request metrics (Prometheus clients, OpenTelemetry
# semantic conventions as exported to Prometheus, service meshes).
PEER_LABELS = (
    "peer",
    "peer_service",
    "server_address",
    "server.address",
    "net_peer_name",
    "destination_service",
)
_LABELLED = re.compile(r"^(?P<family>[^{]+)\{(?P<labels>.*)\}$")
_LABEL = re.compile(r'([A-Za-z_][\w.]*)\s*=\s*"((?:[^"\\]|\\.)*)"')
_LATENCY = re.compile(r"latency|duration|response_time|rtt", re.IGNORECASE)
# Most of the calls' extra time must be unexplained by the callee's own latency.
UNEXPLAINED_SHARE = 0.5
# Most of a callee's callers must see it: one slow caller is that caller's story.
CALLER_SHARE = 0.5
UPPER = 75  # the window's level: the upper quartile (the window holds healthy minutes too)


@dataclass(frozen=True)
class EdgeDelay:
    """Calls from one caller into one callee, slower than the callee's own latency explains."""

    caller: str
    callee: str
    z: float  # robust z of the caller's client latency to the callee
    before_ms: float  # the client latency's baseline median
    added_ms: float  # client latency added in the window, upper quartile
    unexplained_ms: float  # of which the callee's own latency does not account for
    onset: float | None
    source: str  # metric name


def peer_of(metric: str) -> str | None:
    """The callee a per-peer client latency metric is about, or None for any other metric."""
    match = _LABELLED.match(metric)
    if match is None or not _LATENCY.search(match["family"]) or "server" in match["family"]:
        return None
    labels = dict(_LABEL.findall(match["labels"]))
    return next((labels[k] for k in PEER_LABELS if labels.get(k)), None)


def to_ms(metric: str) -> float:
    """Milliseconds per unit of a latency metric, from its name (seconds by Prometheus habit
    when it says so, else milliseconds)."""
    family = _LABELLED.match(metric)
    name = (family["family"] if family else metric).lower()
    return 1000.0 if re.search(r"(_|\b)(seconds|secs?|s)(_|$)", name) else 1.0


def is_server_latency(metric: str) -> bool:
    """A service's own (server-side, unlabelled) request latency metric."""
    return "{" not in metric and bool(_LATENCY.search(metric)) and "server" in metric.lower()


def server_latency(series: Sequence[Series]) -> dict[str, Series]:
    """Per service, its own request latency series (the first by name when there are several)."""
    out: dict[str, Series] = {}
    for s in sorted(series, key=lambda s: (s.service, s.name)):
        if is_server_latency(s.name):
            out.setdefault(s.service, s)
    return out


def edge_delays(
    series: Sequence[Series], baseline: TimeRange, window: TimeRange
) -> dict[tuple[str, str], EdgeDelay]:
    """(caller, callee) -> the edge's delay, for edges whose client latency rose beyond the
    callee's own latency (if known) by at least MIN_RATIO."""
    servers = server_latency(series)
    out = {}
    for s in series:
        callee = peer_of(s.name)
        if callee is None or callee == s.service:
            continue
        edge = _edge_delay(s, callee, servers.get(callee), baseline, window)
        if edge is not None:
            out[(s.service, callee)] = edge
    return out


def _edge_delay(
    client: Series, callee: str, server: Series | None, baseline: TimeRange, window: TimeRange
) -> EdgeDelay | None:
    dev = deviation(client, baseline, window, +1)
    if dev is None or dev.peak_z < ONSET_Z:
        return None
    inc = client.within(window)
    added = (inc.values - dev.baseline_median) * to_ms(client.name)
    explained = np.zeros(len(inc.values))
    if server is not None:
        base = server.within(baseline).values
        base = base[np.isfinite(base)]
        if len(base):
            own = (_aligned(server, inc.times) - float(np.median(base))) * to_ms(server.name)
            explained = np.maximum(0.0, np.nan_to_num(own, nan=0.0))
    finite = np.isfinite(added)
    if not finite.any():
        return None
    added_ms = float(np.percentile(added[finite], UPPER))
    unexplained_ms = float(np.percentile((added - explained)[finite], UPPER))
    before_ms = dev.baseline_median * to_ms(client.name)
    if unexplained_ms < UNEXPLAINED_SHARE * added_ms:
        return None
    if (before_ms + unexplained_ms + 1.0) / (before_ms + 1.0) < MIN_RATIO:
        return None
    return EdgeDelay(
        client.service,
        callee,
        dev.peak_z,
        before_ms,
        added_ms,
        unexplained_ms,
        dev.onset,
        client.name,
    )


def _aligned(series: Series, times: FloatArray) -> FloatArray:
    """The series' values at the given times: its nearest point, when no further away than
    its usual spacing (two exporters are scraped at slightly different moments), else NaN."""
    if len(series.times) == 0:
        return np.full(len(times), np.nan)
    t = series.times
    spacing = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
    right = np.clip(np.searchsorted(t, times), 0, len(t) - 1)  # the neighbours of each time
    left = np.maximum(right - 1, 0)
    nearest = np.where(np.abs(t[left] - times) <= np.abs(t[right] - times), left, right)
    close = np.abs(t[nearest] - times) <= spacing / 2 + 1e-9
    return np.where(close, series.values[nearest], np.nan)


def peer_latency_findings(
    series: Sequence[Series], baseline: TimeRange, window: TimeRange
) -> list[Finding]:
    """Callees whose callers' calls into them slowed beyond their own latency: a delay on
    the way to them. A caller whose every call (to two or more callees) slowed is slow on its
    own side, and says nothing about its callees."""
    delays = edge_delays(series, baseline, window)
    callers: dict[str, set[str]] = defaultdict(set)  # callee -> callers measuring it
    callees: dict[str, set[str]] = defaultdict(set)  # caller -> callees it measures
    for s in series:
        callee = peer_of(s.name)
        if callee is not None and callee != s.service and np.isfinite(s.values).any():
            callers[callee].add(s.service)
            callees[s.service].add(callee)
    own_side = {c for c, xs in callees.items() if len(xs) > 1 and all((c, x) in delays for x in xs)}
    findings = []
    for callee in sorted(callers):
        slowed = [
            delays[(c, callee)]
            for c in sorted(callers[callee])
            if (c, callee) in delays and c not in own_side
        ]
        share = len(slowed) / len(callers[callee])
        if slowed and share >= CALLER_SHARE:
            findings.append(_peer_finding(callee, slowed, len(callers[callee]), share))
    return findings


def _peer_finding(callee: str, slowed: list[EdgeDelay], callers: int, share: float) -> Finding:
    z = float(np.median([e.z for e in slowed])) * share
    unexplained = float(np.median([e.unexplained_ms for e in slowed]))
    before = float(np.median([e.before_ms for e in slowed]))
    onsets = [e.onset for e in slowed if e.onset is not None]
    names = ", ".join(e.caller for e in slowed)
    statement = (
        f"{callee}: calls into it from {names} ({len(slowed)}/{callers} callers) slower by "
        f"{unexplained:.1f} ms (client p90 {before:.1f} ms fault-free) beyond its own "
        f"latency: the time is spent on the way to {callee}"
    )
    evidence = Evidence(
        id=f"metric:{callee}:{PEER_LATENCY}",
        statement=statement,
        value=unexplained,
        baseline=before,
        unit="ms",
        source=f"experts.peers.peer_latency_findings(callee={callee}, metrics={slowed[0].source})",
    )
    return Finding(
        callee,
        NETWORK,
        IndicatorKind.RESOURCE,
        Modality.METRIC,
        z,
        min(onsets) if onsets else None,
        +1,
        (evidence,),
    )
