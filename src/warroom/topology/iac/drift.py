"""Drift: the calls infrastructure code declares against the calls the window's traces show.

    found = drift(graph, window_spans, names, traced)
    found.undeclared     # seen in the traces, declared nowhere
    found.silent         # declared, both ends traced, not one call in the window
    found.unobservable   # declared, but an end sends no spans: the traces cannot tell

An observed call is a span whose parent runs in another service (experts.traces.call_edges),
or a client span that names its peer (OTel peer.service / server.address) with no instrumented
server under it: the only sign of a call to a third party or an untraced store. A declared
call can only be seen when its caller sends spans and its callee sends spans or is named as a
peer somewhere in the data (baseline or window); otherwise it is unobservable, not silent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from warroom.experts.traces import call_edges
from warroom.model import Span
from warroom.topology.iac.model import IacGraph
from warroom.topology.iac.names import normal


@dataclass(frozen=True)
class DriftEdge:
    """One caller -> callee (telemetry names where matched) and where each side says so.

    `sources`: file:line of every declaration of the pair (none for an undeclared call; then
    the caller's own declaration, where the dependency would be written, when there is one).
    `example`: a trace showing the call ("trace <id> span <id>"), for an undeclared one."""

    caller: str
    callee: str
    calls: int = 0
    sources: tuple[str, ...] = ()
    example: str = ""
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "caller": self.caller,
            "callee": self.callee,
            "calls": self.calls,
            "sources": list(self.sources),
            "example": self.example or None,
            "reason": self.reason or None,
        }


@dataclass(frozen=True)
class Drift:
    """Declared against observed, for one window."""

    undeclared: tuple[DriftEdge, ...] = ()
    silent: tuple[DriftEdge, ...] = ()
    unobservable: tuple[DriftEdge, ...] = ()
    agreed: int = 0  # declared pairs that carried calls in the window
    declared: int = 0  # declared pairs (telemetry names)
    observed: int = 0  # observed pairs
    renamed: tuple[tuple[str, str], ...] = ()  # (IaC name, telemetry name) where they differ

    @property
    def clean(self) -> bool:
        """Nothing observed that is not declared, nothing declared that is silent."""
        return not self.undeclared and not self.silent

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (`warroom topology diff --json`, the report's `drift`)."""
        return {
            "declared": self.declared,
            "observed": self.observed,
            "agreed": self.agreed,
            "undeclared": [e.to_dict() for e in self.undeclared],
            "silent": [e.to_dict() for e in self.silent],
            "unobservable": [e.to_dict() for e in self.unobservable],
            "renamed": [{"iac": a, "telemetry": b} for a, b in self.renamed],
        }


def observed_calls(spans: Sequence[Span]) -> Counter[tuple[str, str]]:
    """(caller, callee) -> calls: cross-service parent links, plus client spans naming a peer
    that no instrumented child answers (peers as `normal` names them: no port, lower case)."""
    calls = call_edges(spans)
    by_id = {s.span_id: s for s in spans}
    answered = {
        s.parent_id
        for s in spans
        if s.parent_id in by_id and by_id[s.parent_id].service != s.service
    }
    for span in spans:
        if span.peer and span.span_id not in answered:
            peer = normal_peer(span.peer)
            if peer and peer != span.service:
                calls[(span.service, peer)] += 1
    return calls


def normal_peer(peer: str) -> str:
    """A peer as a client names it, without its port: `redis-cart:6379` -> `redis-cart`."""
    host = peer.strip().lower()
    head, _, port = host.rpartition(":")
    return head if head and port.isdigit() else host


@dataclass(frozen=True)
class Traced:
    """Who the traces can speak for: services that send spans, and peers that client spans
    name. A call a -> b can be seen only when a sends spans and b sends spans or is named."""

    senders: frozenset[str]
    peers: frozenset[str] = frozenset()

    @classmethod
    def of(cls, spans: Iterable[Span]) -> Traced:
        """From a list of spans."""
        senders, peers = set(), set()
        for span in spans:
            senders.add(span.service)
            if span.peer:
                peers.add(normal_peer(span.peer))
        return cls(frozenset(senders), frozenset(peers))

    def blind(self, caller: str, callee: str, canonical: Callable[[str], str]) -> list[str]:
        """The ends that keep the traces from showing caller -> callee (none: it could be seen)."""
        peers = {canonical(p) for p in self.peers}
        out = []
        if caller not in self.senders:
            out.append(caller)
        if callee not in self.senders and callee not in peers:
            out.append(callee)
        return out


def drift(
    graph: IacGraph,
    spans: Sequence[Span],
    names: Mapping[str, str],
    traced: Traced | None = None,
    telemetry: Iterable[str] = (),
) -> Drift:
    """Declared against observed: `spans` are the window's, `names` IaC -> telemetry names
    (names.match_names), `traced` who has spans anywhere in the data (default: in `spans`),
    `telemetry` every service with any data (to word why an end is unobservable)."""
    declared = _declared(graph, names)
    seen = set(telemetry)
    canonical = _canonical({*seen, *(end for pair in declared for end in pair)})
    calls: Counter[tuple[str, str]] = Counter()
    for (caller, callee), count in observed_calls(spans).items():
        calls[(caller, canonical(callee))] += count
    traced = traced if traced is not None else Traced.of(spans)
    silent, unobservable = [], []
    for (caller, callee), sources in sorted(declared.items()):
        if calls.get((caller, callee)):
            continue
        blind = traced.blind(caller, callee, canonical)
        if blind:
            unobservable.append(_blind(DriftEdge(caller, callee, 0, sources), blind, seen))
        else:
            silent.append(DriftEdge(caller, callee, 0, sources, reason="no call in the window"))
    undeclared = _undeclared(calls, declared, graph, names, spans, canonical)
    agreed = sum(1 for pair in declared if calls.get(pair))
    renamed = tuple(sorted((a, b) for a, b in names.items() if a != b))
    return Drift(
        tuple(undeclared),
        tuple(silent),
        tuple(unobservable),
        agreed,
        len(declared),
        len(calls),
        renamed,
    )


def _declared(graph: IacGraph, names: Mapping[str, str]) -> dict[tuple[str, str], tuple[str, ...]]:
    """Declared pairs in telemetry names -> the file:line of each declaration."""
    out: dict[tuple[str, str], list[str]] = {}
    for edge in graph.edges:
        pair = (names.get(edge.caller, edge.caller), names.get(edge.callee, edge.callee))
        if pair[0] != pair[1]:
            sources = out.setdefault(pair, [])
            if edge.source not in sources:
                sources.append(edge.source)
    return {pair: tuple(sources) for pair, sources in out.items()}


def _canonical(known: Iterable[str]) -> Callable[[str], str]:
    """A peer's name as the known name it loosely is (`redis-cart.shop.svc:6379` is
    `redis-cart`), when exactly one known name is; other names unchanged."""
    names = set(known)
    by_normal: dict[str, list[str]] = {}
    for name in names:
        by_normal.setdefault(normal(name), []).append(name)

    def canonical(name: str) -> str:
        if name in names:
            return name
        group = by_normal.get(normal(name), [])
        return group[0] if len(group) == 1 else name

    return canonical


def _blind(edge: DriftEdge, blind: list[str], seen: set[str]) -> DriftEdge:
    words = [
        f"{end} sends no spans (other telemetry only)"
        if end in seen
        else f"no telemetry from {end}"
        for end in blind
    ]
    return DriftEdge(edge.caller, edge.callee, 0, edge.sources, reason="; ".join(words))


def _undeclared(
    calls: Counter[tuple[str, str]],
    declared: Mapping[tuple[str, str], tuple[str, ...]],
    graph: IacGraph,
    names: Mapping[str, str],
    spans: Sequence[Span],
    canonical: Callable[[str], str],
) -> list[DriftEdge]:
    """Observed pairs no declaration has, with the caller's declaration (where the dependency
    would be written) and a trace that shows the call."""
    missing = [pair for pair in calls if pair not in declared]
    if not missing:
        return []
    where = {names.get(c.name, c.name): c.source for c in graph.components}
    examples = _examples(spans, set(missing), canonical)
    return [
        DriftEdge(
            caller,
            callee,
            calls[(caller, callee)],
            (where[caller],) if caller in where else (),
            examples.get((caller, callee), ""),
            "declared nowhere"
            + ("" if caller in where else f"; {caller} is not in the infrastructure code"),
        )
        for caller, callee in sorted(missing)
    ]


def _examples(
    spans: Sequence[Span], wanted: set[tuple[str, str]], canonical: Callable[[str], str]
) -> dict[tuple[str, str], str]:
    """The first span of each wanted call, as 'trace <id> span <id>'."""
    by_id = {s.span_id: s for s in spans}
    found: dict[tuple[str, str], str] = {}
    for span in spans:
        parent = by_id.get(span.parent_id)
        pairs = []
        if parent is not None and parent.service != span.service:
            pairs.append((parent.service, span.service))
        if span.peer:
            pairs.append((span.service, canonical(normal_peer(span.peer))))
        for pair in pairs:
            if pair in wanted and pair not in found:
                found[pair] = f"trace {span.trace_id} span {span.span_id}"
    return found
