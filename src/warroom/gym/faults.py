"""The fault catalogue: what each fault does to the simulated system, and its ground truth.

A Fault answers the simulator's questions ("how much extra CPU does this service burn now?",
"does this call fail?") for times after its onset; before it, everything is healthy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from warroom.gym.topologies import Topology

# name -> (fault type in the ranking's vocabulary, which services it may hit)
CATALOGUE: dict[str, tuple[str, tuple[str, ...]]] = {
    "cpu-hog": ("cpu", ("api", "web", "worker")),
    "memory-leak": ("memory", ("api", "worker")),
    "network-delay": ("network-delay", ("api", "worker", "db", "cache")),
    "bad-deploy": ("code-exception", ("api", "worker")),
    "db-pool-exhaustion": ("pool", ("db",)),
    "cache-down": ("cache", ("cache",)),
    "none": ("none", ()),
}
FAULTS = tuple(CATALOGUE)

MEMORY_LIMIT_MIB = 512.0
LEAK_MIB_PER_S = 1.2
RESTART_S = 20.0


@dataclass(frozen=True)
class Fault:
    """One injected fault: kind, target service and onset (None target for the control case)."""

    kind: str
    target: str | None
    onset: float
    operation: str = ""  # the code path a bad deploy breaks

    @property
    def fault_type(self) -> str:
        """The fault type the ranking should name."""
        return CATALOGUE[self.kind][0]

    def active(self, service: str, t: float) -> bool:
        """Whether this fault affects `service` at time t."""
        return self.target == service and t >= self.onset

    def cpu_extra(self, service: str, t: float) -> float:
        """CPU percentage points burnt by a hog."""
        return 75.0 if self.kind == "cpu-hog" and self.active(service, t) else 0.0

    def slow_factor(self, service: str, t: float) -> float:
        """Multiplier of own processing time (CPU starvation, GC pressure, pool waits)."""
        if not self.active(service, t):
            return 1.0
        if self.kind == "cpu-hog":
            return 4.0
        if self.kind == "memory-leak":
            return 1.0 + 3.0 * (self.memory_extra(service, t) / MEMORY_LIMIT_MIB) ** 3
        if self.kind == "db-pool-exhaustion":
            return 12.0
        return 1.0

    def network_delay_ms(self, callee: str, t: float) -> float:
        """Extra round-trip time on calls into the callee."""
        return 250.0 if self.kind == "network-delay" and self.active(callee, t) else 0.0

    def memory_extra(self, service: str, t: float) -> float:
        """MiB leaked since the last restart."""
        if self.kind != "memory-leak" or not self.active(service, t):
            return 0.0
        cycle = MEMORY_LIMIT_MIB / LEAK_MIB_PER_S + RESTART_S
        since = (t - self.onset) % cycle
        return min(MEMORY_LIMIT_MIB, since * LEAK_MIB_PER_S)

    def restarting(self, service: str, t: float) -> bool:
        """True while an OOM-killed container is coming back."""
        if self.kind != "memory-leak" or not self.active(service, t):
            return False
        cycle = MEMORY_LIMIT_MIB / LEAK_MIB_PER_S + RESTART_S
        return (t - self.onset) % cycle >= MEMORY_LIMIT_MIB / LEAK_MIB_PER_S

    def error(self, service: str, operation: str, t: float, rng: np.random.Generator) -> str | None:
        """Why this request fails at this service now, or None."""
        if not self.active(service, t):
            return None
        if self.kind == "bad-deploy" and operation == self.operation and rng.random() < 0.8:
            return "java.lang.NullPointerException"
        if self.kind == "cache-down":
            return "connection refused"
        if self.kind == "db-pool-exhaustion" and rng.random() < 0.3:
            return "timeout acquiring connection from pool"
        if self.restarting(service, t):
            return "connection reset (container restarting)"
        return None

    def pool_in_use(self, service: str, t: float, normal: float) -> float:
        """Connections held from the service's pool."""
        return 50.0 if self.kind == "db-pool-exhaustion" and self.active(service, t) else normal


def pick_fault(topology: Topology, kind: str, onset: float, rng: np.random.Generator) -> Fault:
    """A fault of `kind` on a random eligible service of the topology."""
    if kind not in CATALOGUE:
        raise ValueError(f"unknown fault {kind!r} (known: {', '.join(FAULTS)})")
    if kind == "none":
        return Fault("none", None, onset)
    kinds = CATALOGUE[kind][1]
    eligible = [s.name for s in topology.services if s.kind in kinds and s.name != topology.entry]
    if not eligible:
        raise ValueError(
            f"topology {topology.name} has no service a {kind} fault can hit ({kinds})"
        )
    target = str(rng.choice(eligible))
    operations = sorted({c.operation for c in topology.calls if c.callee == target}) or ["Handle"]
    return Fault(kind, target, onset, str(rng.choice(operations)))
