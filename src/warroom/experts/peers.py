"""The call edges between services, seen from the client's side.

Calls that never reached the callee: the only trace of DNS, TLS and third-party failures.

An instrumented client names its callee on its span (OTel peer.service); when the callee's
server answers, its own span is the client span's child. A failing client span with no child
means the request died before any server of the callee saw it (the name did not resolve, the
handshake failed, the connection was refused) or the callee is not instrumented at all (a
third party). Either way the failure belongs to the callee, not to the caller that reports it.
A callee of ours (it exports metrics or logs) with no server span anywhere, not even in the
fault-free baseline, may have lost its traces (sampled away, exporter down): every call into it
looks unanswered, failing ones included, when its failures are its callees'. Lost spans leave
orphans behind (its callees' server spans point at client spans that are not there), so that
reading needs traces that show losses; in complete traces such a callee is one that is not
traced at all, as databases, caches and queues are, and its callers' failing calls are its own.

Calls slowed on the way: clients export their per-peer request latency as metrics
(OpenTelemetry `http.client.request.duration` with `server.address`, a Prometheus histogram
with a `peer` label), which survive lost spans. A call edge whose client latency rose while the
callee's own server-side latency did not rise as much spends the extra time between them; the
component that the slowed edges have in common (experts.edges) is the one whose network
is slow: its callers' calls into it and its own calls out.
Pure functions over spans and series, like the other experts.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

from warroom.experts.edges import EdgeBlame, EdgeSlowdown, common_endpoints
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
# Share of child spans whose parent is missing above which the traces are taken to have lost
# spans (a window's edges alone cut a few traces: their parents started before it).
LOST_SPANS_SHARE = 0.02


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


def orphan_share(spans: Sequence[Span]) -> float:
    """Share of the spans with a parent id whose parent is not among `spans`."""
    ids = {(s.trace_id, s.span_id) for s in spans}
    children = [s for s in spans if s.parent_id]
    if not children:
        return 0.0
    return sum((s.trace_id, s.parent_id) not in ids for s in children) / len(children)


def answered_in(spans: Sequence[Span]) -> set[str]:
    """Callees with at least one server span answering a client span among `spans`."""
    clients = {(s.trace_id, s.span_id): s.peer for s in spans if s.peer}
    return {s.service for s in spans if s.parent_id and clients.get((s.trace_id, s.parent_id))}


def unanswered_findings(
    baseline: Sequence[Span], incident: Sequence[Span], instrumented: Collection[str] = ()
) -> list[Finding]:
    """Callees whose clients' calls started failing without reaching them.

    `instrumented`: services known to export telemetry of their own (metrics, logs). Where the
    traces show lost spans, one of them that no server span answers, in the baseline or now,
    has lost its spans rather than stopped answering: it is not charged."""
    base, inc = unanswered_counts(baseline), unanswered_counts(incident)
    lost: set[str] = set()
    if orphan_share(baseline) > LOST_SPANS_SHARE or orphan_share(incident) > LOST_SPANS_SHARE:
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
# A good part of the calls' extra time must be unexplained by the callee's own latency. Not
# most: a delay on the callee's interface also slows its own calls out, which its server
# latency includes, so its callers see only about half of their extra time unexplained.
UNEXPLAINED_SHARE = 1 / 3
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
    """Components whose network the slowed client calls have in common (experts.edges): calls
    into them slowed beyond their own latency, and so did their own calls out."""
    delays = edge_delays(series, baseline, window)
    measured = {
        (s.service, callee)
        for s in series
        if (callee := peer_of(s.name)) is not None
        and callee != s.service
        and np.isfinite(s.values).any()
    }
    slowed = [
        EdgeSlowdown(
            d.caller,
            d.callee,
            d.z,
            d.before_ms,
            d.before_ms + d.unexplained_ms,
            d.onset,
            source=d.source,
        )
        for _, d in sorted(delays.items())
    ]
    return [_peer_finding(blame, delays) for blame in common_endpoints(slowed, measured)]


def _peer_finding(blame: EdgeBlame, delays: dict[tuple[str, str], EdgeDelay]) -> Finding:
    service = blame.service
    edges = [delays[(e.caller, e.callee)] for e in blame.edges]
    z = float(np.median([e.z for e in edges])) * blame.purity
    unexplained = float(np.median([e.unexplained_ms for e in edges]))
    before = float(np.median([e.before_ms for e in edges]))
    onsets = [e.onset for e in edges if e.onset is not None]
    names = ", ".join(f"{e.caller}->{e.callee}" for e in edges)
    statement = (
        f"{service}: client calls on {names} ({blame.slowed_touching} of {blame.measured} "
        f"measured edges touching it) slower by {unexplained:.1f} ms (client p90 {before:.1f} ms "
        f"fault-free) beyond the callee's own latency: the time is spent on {service}'s network"
    )
    evidence = Evidence(
        id=f"metric:{service}:{PEER_LATENCY}",
        statement=statement,
        value=unexplained,
        baseline=before,
        unit="ms",
        source=f"experts.peers.peer_latency_findings(service={service}, metrics={edges[0].source})",
    )
    return Finding(
        service,
        NETWORK,
        IndicatorKind.RESOURCE,
        Modality.METRIC,
        z,
        min(onsets) if onsets else None,
        +1,
        (evidence,),
    )
