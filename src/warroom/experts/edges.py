"""Which component a set of slowed call edges points at: the endpoint they have in common.

A delay on one component's network slows every call edge that touches it, in both directions:
its callers' calls into it (its answers travel late) and its own calls out (its requests travel
late). Charging each slowed edge to its callee would blame the culprit's callees for its own
outgoing calls; charging it to its caller would blame every client. The component common to
the slowed edges is the one whose network explains them all.

Attribution is a greedy weighted set cover over the slowed edges: take the endpoint that
explains the most surprise (the z of the slowed edges not yet explained that touch it, added
up) times its purity (the share of its own measured edges that slowed: a delay on it would have
slowed them all), charge those edges to it, repeat until every slowed edge is explained. One
slowed edge alone goes to whichever end has fewer healthy edges of its own; a strong edge and a
faint one do not outvote a component whose only edge is the strong one.

Pure functions over edge values, shared by the trace expert (client vs server span time) and
the per-peer client latency metrics (experts.peers).

    blames = common_endpoints(slowed, measured={("a", "b"), ("b", "c"), ("a", "d")})
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class EdgeSlowdown:
    """Calls from one caller into one callee that spend more time between the two than before."""

    caller: str
    callee: str
    z: float  # how surprising the slowdown is (one-sided normal z)
    before_ms: float  # the time between the two, fault-free (p90 or median, per source)
    now_ms: float  # the same in the window
    onset: float | None
    calls: int = 0  # calls measured in the window (0: not counted, e.g. a metric)
    source: str = ""  # which expert / metric measured it

    def touches(self, service: str) -> bool:
        """Whether the service is either end of the edge."""
        return service in (self.caller, self.callee)


@dataclass(frozen=True)
class EdgeBlame:
    """Slowed edges charged to one endpoint, and how many edges of its own were measured."""

    service: str
    edges: tuple[EdgeSlowdown, ...]  # the slowed edges it explains, strongest first
    slowed_touching: int  # all slowed edges that touch it (some may be charged elsewhere)
    measured: int  # edges touching it with enough data to tell (slowed or not)

    @property
    def purity(self) -> float:
        """Share of its measured edges that slowed: 1.0 when every call in and out did."""
        return self.slowed_touching / max(1, self.measured)

    @property
    def z(self) -> float:
        """The strongest of its edges' surprises."""
        return max(e.z for e in self.edges)


def common_endpoints(
    slowed: Sequence[EdgeSlowdown], measured: Collection[tuple[str, str]]
) -> list[EdgeBlame]:
    """Charge every slowed edge to one endpoint (greedy set cover), best-covering first.

    `measured`: every (caller, callee) edge with enough data in the window to tell whether it
    slowed, the slowed ones included."""
    all_edges = set(measured) | {(e.caller, e.callee) for e in slowed}
    remaining = list(slowed)
    blames: list[EdgeBlame] = []
    while remaining:
        endpoints = sorted({e.caller for e in remaining} | {e.callee for e in remaining})
        best = min(endpoints, key=lambda s: _cover_key(s, remaining, slowed, all_edges))
        cover = tuple(sorted((e for e in remaining if e.touches(best)), key=lambda e: -e.z))
        blames.append(
            EdgeBlame(
                best,
                cover,
                sum(e.touches(best) for e in slowed),
                sum(best in edge for edge in all_edges),
            )
        )
        remaining = [e for e in remaining if not e.touches(best)]
    return blames


def _cover_key(
    service: str,
    remaining: Sequence[EdgeSlowdown],
    slowed: Sequence[EdgeSlowdown],
    all_edges: set[tuple[str, str]],
) -> tuple[float, int, str]:
    """Smallest first: the most surprise explained (the remaining slowed edges it touches,
    their z added up) times its purity, then the most edges, then the name."""
    covered = [e for e in remaining if e.touches(service)]
    touching = sum(service in edge for edge in all_edges)
    purity = sum(e.touches(service) for e in slowed) / max(1, touching)
    return -sum(e.z for e in covered) * purity, -len(covered), service
