"""The fault catalogue: what each fault does to the simulated system, and its ground truth.

A Fault answers the simulator's questions ("how much extra CPU does this service burn now?",
"does this call fail before it reaches the server?", "what does the disk gauge read?") for
times after its onset; before it, everything is healthy. Each kind leaves its marks where the
real fault would: a disk fills in the filesystem gauge and fails writes, DNS and TLS failures
never reach the server (only the clients' spans and logs see them), a third party has no
telemetry of its own, a bad config push comes with a config event.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from warroom.gym.topologies import Topology

# name -> (fault type in the ranking's vocabulary, which service kinds it may hit)
CATALOGUE: dict[str, tuple[str, tuple[str, ...]]] = {
    "cpu-hog": ("cpu", ("api", "web", "worker")),
    "memory-leak": ("memory", ("api", "worker")),
    "disk-full": ("disk", ("db", "worker")),
    "network-delay": ("network-delay", ("api", "worker", "db", "cache")),
    "packet-loss": ("network-loss", ("api", "worker", "db", "cache")),
    "dns-failure": ("dns", ("api", "worker", "db", "cache")),
    "db-pool-exhaustion": ("pool", ("db",)),
    "db-lock-contention": ("db-lock", ("db",)),
    "cache-down": ("cache", ("cache",)),
    "queue-consumer-lag": ("queue", ("worker",)),
    "thread-pool-exhaustion": ("thread-pool", ("api",)),
    "bad-deploy": ("code-exception", ("api", "worker")),
    "bad-config-push": ("config", ("api", "worker")),
    "cert-expiry": ("tls", ("api", "db")),
    "third-party-outage": ("dependency", ("external",)),
    "retry-storm": ("retry-storm", ("api", "db")),
    "none": ("none", ()),
}
FAULTS = tuple(CATALOGUE)

MEMORY_LIMIT_MIB = 512.0
LEAK_MIB_PER_S = 1.2
RESTART_S = 20.0
DISK_BASE_PERCENT = 38.0
DISK_FILL_S = 150.0  # from onset to a full disk
WRITE_WORDS = ("INSERT", "UPSERT", "UPDATE", "Write", "Charge", "PlaceOrder", "Consume", "Ship")
THREAD_POOL_MAX = 200
CLIENT_TIMEOUT_MS = 1.0  # the bad config value: a 2000 ms client timeout pushed as 1 ms
RTO_MS = 200.0  # TCP's minimum retransmission timeout
RETRIES = 3  # the storm's clients retry this often, without backoff
STORM_TRIGGER_S = 30.0  # the brief blip that sets a retry storm off


@dataclass(frozen=True)
class Fault:
    """One injected fault: kind, target service and onset (None target for the control case)."""

    kind: str
    target: str | None
    onset: float
    operation: str = ""  # the code path a bad deploy breaks
    callee: str = ""  # the dependency whose client config a bad push breaks

    @property
    def fault_type(self) -> str:
        """The fault type the ranking should name."""
        return CATALOGUE[self.kind][0]

    def active(self, service: str, t: float) -> bool:
        """Whether this fault affects `service` at time t."""
        return self.target == service and t >= self.onset

    def _is(self, kind: str, service: str, t: float) -> bool:
        return self.kind == kind and self.active(service, t)

    # -- resources -----------------------------------------------------------------------

    def cpu_extra(self, service: str, t: float) -> float:
        """CPU percentage points burnt by a hog."""
        return 75.0 if self._is("cpu-hog", service, t) else 0.0

    def slow_factor(self, service: str, t: float, overload: float = 1.0) -> float:
        """Multiplier of own processing time (CPU starvation, GC pressure, pool waits).

        `overload` is the service's load relative to its normal load (retry storms)."""
        if not self.active(service, t):
            return 1.0
        if self.kind == "cpu-hog":
            return 4.0
        if self.kind == "memory-leak":
            return 1.0 + 3.0 * (self.memory_extra(service, t) / MEMORY_LIMIT_MIB) ** 3
        if self.kind == "db-pool-exhaustion":
            return 12.0
        if self.kind == "retry-storm":
            return 1.0 + 3.0 * max(0.0, overload - 1.0)
        return 1.0

    def wait_ms(self, service: str, t: float, rng: np.random.Generator) -> float:
        """Time a request waits before the service works on it (locks, a full thread pool)."""
        if self._is("db-lock-contention", service, t) and rng.random() < 0.6:
            return float(rng.lognormal(np.log(700.0), 0.5))
        if self._is("thread-pool-exhaustion", service, t):
            return float(rng.lognormal(np.log(400.0), 0.4))
        if self._is("queue-consumer-lag", service, t) and rng.random() < 0.7:
            return float(rng.lognormal(np.log(900.0), 0.3))  # a consumer stuck rebalancing
        return 0.0

    def memory_extra(self, service: str, t: float) -> float:
        """MiB leaked since the last restart."""
        if not self._is("memory-leak", service, t):
            return 0.0
        cycle = MEMORY_LIMIT_MIB / LEAK_MIB_PER_S + RESTART_S
        since = (t - self.onset) % cycle
        return min(MEMORY_LIMIT_MIB, since * LEAK_MIB_PER_S)

    def restarting(self, service: str, t: float) -> bool:
        """True while an OOM-killed container is coming back."""
        if not self._is("memory-leak", service, t):
            return False
        cycle = MEMORY_LIMIT_MIB / LEAK_MIB_PER_S + RESTART_S
        return (t - self.onset) % cycle >= MEMORY_LIMIT_MIB / LEAK_MIB_PER_S

    def disk_percent(self, service: str, t: float, normal: float) -> float:
        """Filesystem usage: a log or WAL volume filling up after the onset."""
        if not self._is("disk-full", service, t):
            return normal
        return min(100.0, normal + (100.0 - normal) * (t - self.onset) / DISK_FILL_S)

    def disk_full(self, service: str, t: float) -> bool:
        """The volume has no space left."""
        return self.disk_percent(service, t, DISK_BASE_PERCENT) >= 99.5

    def pool_in_use(self, service: str, t: float, normal: float) -> float:
        """Connections held from the service's pool."""
        return 50.0 if self._is("db-pool-exhaustion", service, t) else normal

    def threads_busy(self, service: str, t: float, normal: float) -> float:
        """Busy worker threads of the service's request executor."""
        return float(THREAD_POOL_MAX) if self._is("thread-pool-exhaustion", service, t) else normal

    # -- the network between caller and callee -------------------------------------------

    def network_delay_ms(
        self, caller: str, callee: str, t: float, rng: np.random.Generator
    ) -> float:
        """Extra round-trip time on a call (delay, or retransmissions). A faulty interface
        slows every call that crosses it: calls into the target and the target's calls out."""
        ends = (caller, callee)
        if any(self._is("network-delay", end, t) for end in ends):
            return 250.0
        if any(self._is("packet-loss", end, t) for end in ends) and rng.random() < 0.3:
            return RTO_MS * float(rng.choice([1.0, 3.0, 7.0], p=[0.7, 0.2, 0.1]))
        return 0.0

    def retransmits(self, service: str, t: float) -> float:
        """TCP segments retransmitted per request served (the interface drops packets)."""
        return 0.6 if self._is("packet-loss", service, t) else 0.01

    def call_failure(
        self, caller: str, callee: str, t: float, rng: np.random.Generator
    ) -> str | None:
        """Why a call fails before any server of the callee sees it, or None."""
        if self._is("dns-failure", callee, t):
            return (
                f"java.net.UnknownHostException: {callee}.prod.svc.cluster.local: "
                "Name or service not known"
            )
        if self._is("cert-expiry", callee, t):
            return (
                "javax.net.ssl.SSLHandshakeException: PKIX path validation failed: "
                "java.security.cert.CertificateExpiredException: NotAfter: "
                f"certificate of {callee} expired"
            )
        if self._is("packet-loss", callee, t) and rng.random() < 0.02:
            return f"java.net.SocketTimeoutException: connect timed out ({callee})"
        if self._is("third-party-outage", callee, t) and rng.random() < 0.7:
            return str(
                rng.choice(
                    [
                        "HTTP 503 Service Unavailable from upstream",
                        "HTTP 429 Too Many Requests: rate limit exceeded",
                    ]
                )
            )
        return None

    def client_timeout_ms(self, caller: str, callee: str, t: float) -> float | None:
        """The caller's timeout on calls into the callee, when a bad config push set one."""
        if self._is("bad-config-push", caller, t) and callee == self.callee:
            return CLIENT_TIMEOUT_MS
        return None

    def retries(self, caller: str, callee: str, t: float) -> int:
        """How often the caller retries a failed call into the callee."""
        return RETRIES if self.kind == "retry-storm" and callee == self.target else 0

    # -- failures inside the service ------------------------------------------------------

    def error(
        self,
        service: str,
        operation: str,
        t: float,
        rng: np.random.Generator,
        overload: float = 1.0,
    ) -> str | None:
        """Why this request fails at this service now, or None."""
        if not self.active(service, t):
            return None
        kind = self.kind
        if kind == "bad-deploy" and operation == self.operation and rng.random() < 0.8:
            return "java.lang.NullPointerException"
        if kind == "cache-down":
            return "connection refused"
        if kind == "db-pool-exhaustion" and rng.random() < 0.3:
            return "timeout acquiring connection from pool"
        if kind == "disk-full" and self.disk_full(service, t) and _writes(operation):
            return "java.io.IOException: No space left on device"
        if kind == "thread-pool-exhaustion" and rng.random() < 0.25:
            return (
                "java.util.concurrent.RejectedExecutionException: Task rejected from "
                f"ThreadPoolExecutor[Running, pool size = {THREAD_POOL_MAX}, "
                f"active threads = {THREAD_POOL_MAX}, queued tasks = 1000]"
            )
        if kind == "db-lock-contention" and rng.random() < 0.08:
            return "Lock wait timeout exceeded; try restarting transaction"
        if kind == "retry-storm":
            blip = t - self.onset < STORM_TRIGGER_S
            share = 0.6 if blip else min(0.8, 0.8 * max(0.0, overload - 1.0))
            if rng.random() < share:
                return "server overloaded: request queue full (503)"
        if self.restarting(service, t):
            return "connection reset (container restarting)"
        return None


# Faults that live on a caller's connection to the target.
ON_THE_WIRE = frozenset({"network-delay", "packet-loss", "dns-failure", "cert-expiry"})


def _dialled(topology: Topology, service: str) -> bool:
    """Some synchronous caller connects to the service (not only a queue delivering to it)."""
    return any(
        c.callee == service and topology.service(c.caller).kind != "queue" for c in topology.calls
    )


def _writes(operation: str) -> bool:
    return any(word.lower() in operation.lower() for word in WRITE_WORDS)


def pick_fault(topology: Topology, kind: str, onset: float, rng: np.random.Generator) -> Fault:
    """A fault of `kind` on a random eligible service of the topology."""
    if kind not in CATALOGUE:
        raise ValueError(f"unknown fault {kind!r} (known: {', '.join(FAULTS)})")
    if kind == "none":
        return Fault("none", None, onset)
    kinds = CATALOGUE[kind][1]
    eligible = [s.name for s in topology.services if s.kind in kinds and s.name != topology.entry]
    if kind == "bad-config-push":  # it breaks a client: the target must call somebody
        eligible = [s for s in eligible if topology.calls_from(s)]
    if kind in ON_THE_WIRE:  # a queue's consumers pull: nobody dials them, nothing to break
        eligible = [s for s in eligible if _dialled(topology, s)]
    if not eligible:
        raise ValueError(
            f"topology {topology.name} has no service a {kind} fault can hit ({kinds})"
        )
    target = str(rng.choice(eligible))
    operations = sorted({c.operation for c in topology.calls if c.callee == target}) or ["Handle"]
    callees = sorted({c.callee for c in topology.calls_from(target)}) or [""]
    return Fault(kind, target, onset, str(rng.choice(operations)), str(rng.choice(callees)))
