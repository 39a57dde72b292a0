"""Calls that never reached the callee: the only trace of DNS, TLS and third-party failures.

An instrumented client names its callee on its span (OTel peer.service); when the callee's
server answers, its own span is the client span's child. A failing client span with no child
means the request died before any server of the callee saw it (the name did not resolve, the
handshake failed, the connection was refused) or the callee is not instrumented at all (a
third party). Either way the failure belongs to the callee, not to the caller that reports it.
Pure function over spans, like the other experts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from scipy.stats import binom

from warroom.experts.surprise import z_from_p
from warroom.model import Evidence, Finding, IndicatorKind, Modality, Span

UNANSWERED = "calls-failing-before-server"
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


def unanswered_findings(baseline: Sequence[Span], incident: Sequence[Span]) -> list[Finding]:
    """Callees whose clients' calls started failing without reaching them."""
    base, inc = unanswered_counts(baseline), unanswered_counts(incident)
    findings = []
    for callee, (failed, total, onset) in sorted(inc.items()):
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
