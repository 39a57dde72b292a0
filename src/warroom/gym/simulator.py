"""The chaos gym's simulator: requests flow through a topology, a fault is injected, and the
resulting CoMELT telemetry (metrics every 10 s, logs, spans, events) lands in a TelemetryStore.

Deterministic: everything random comes from one numpy Generator seeded by the case seed, and the
clock starts at a fixed epoch. The ground truth stays in the returned GymCase, never in the store.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from warroom.gym.case import GymCase, GymTruth
from warroom.gym.faults import CATALOGUE, DISK_BASE_PERCENT, FAULTS, Fault, pick_fault
from warroom.gym.topologies import TOPOLOGIES, ServiceSpec, Topology, build
from warroom.model import Incident, TimeRange
from warroom.telemetry.store import TelemetryStore

__all__ = ["FAULTS", "TOPOLOGIES", "Knobs", "generate"]

T0 = 1_750_000_000.0  # a fixed clock: runs are reproducible to the byte
DURATION_S = 30 * 60.0
STEP_S = 10.0
ONSET_S = 20 * 60.0
DETECTION_DELAY_S = 90.0
WINDOW_HALF_S = 300.0


@dataclass(frozen=True)
class Knobs:
    """Difficulty knobs: red herrings, missing modalities, clock skew."""

    red_herring: bool = False
    drop_traces: float = 0.0  # share of services whose spans are missing
    drop_logs: float = 0.0  # share of log lines lost
    clock_skew_s: float = 0.0  # log clock ahead of the metrics/trace clock
    # Several alerts at once: the culprit's caller alerts too (a real consequence) and an
    # innocent service's alert flaps in the same minutes (noise).
    alert_storm: bool = False
    # Datastores (db and cache kinds) export no spans and no application log lines, as a real
    # PostgreSQL or Redis does: only their clients' spans (naming them as the peer) and their
    # own metrics see them. Learned from the live gym, where a stopped Redis was no candidate.
    untraced_stores: bool = False

    def __post_init__(self) -> None:
        # ValueError, as for an unknown topology or fault: the generator's "not a case".
        for name in ("drop_traces", "drop_logs"):
            share = getattr(self, name)
            if not 0.0 <= share <= 1.0:  # also false for NaN
                raise ValueError(f"knob {name} is a share from 0 to 1, not {share}")
        if not abs(self.clock_skew_s) <= DURATION_S:
            raise ValueError(
                f"knob clock_skew_s is at most {DURATION_S:g} s either way (the length of a "
                f"case), not {self.clock_skew_s}"
            )


@dataclass
class _Recorder:
    """Column lists for the store plus per-step request statistics."""

    spans: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    logs: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    stats: dict[tuple[int, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[tuple[int, str], int] = field(default_factory=lambda: defaultdict(int))
    waits: dict[tuple[int, str], int] = field(default_factory=lambda: defaultdict(int))
    # (step, caller, callee) -> each call attempt's duration as the caller's client measured it
    client: dict[tuple[int, str, str], list[float]] = field(
        default_factory=lambda: defaultdict(list)
    )
    next_id: int = 1

    def span_id(self) -> str:
        self.next_id += 1
        return f"{self.next_id:016x}"

    def span(
        self,
        trace: str,
        sid: str,
        parent: str,
        service: str,
        op: str,
        start: float,
        end: float,
        error: bool,
        peer: str = "",
    ) -> None:
        for key, value in (
            ("trace_id", trace),
            ("span_id", sid),
            ("parent_id", parent),
            ("service", service),
            ("pod", f"{service}-0"),
            ("operation", op),
            ("start_ts", start),
            ("end_ts", end),
            ("error", error),
            ("peer", peer),
        ):
            self.spans[key].append(value)

    def log(self, ts: float, service: str, level: str, message: str, trace: str, sid: str) -> None:
        for key, value in (
            ("ts", ts),
            ("service", service),
            ("pod", f"{service}-0"),
            ("level", level),
            ("message", message),
            ("trace_id", trace),
            ("span_id", sid),
        ):
            self.logs[key].append(value)


def _line(service: str, operation: str, k: int) -> int:
    """A stable source line for the k-th log statement of an operation."""
    return 20 + zlib.crc32(f"{service}/{operation}".encode()) % 400 + 3 * k


class _World:
    """One simulation run: a topology, a fault, a random source and a recorder."""

    def __init__(self, topology: Topology, fault: Fault, rng: np.random.Generator) -> None:
        self.topology, self.fault, self.rng = topology, fault, rng
        self.rec = _Recorder()
        # Messages a queue accepted, delivered to consumers after the synchronous requests:
        # (published at, consumer, operation, trace, parent span)
        self.deliveries: list[tuple[float, str, str, str, str]] = []
        self.consumed: dict[str, list[tuple[float, float]]] = defaultdict(list)  # (in, start)
        self._normal_load: dict[str, float] = {}

    def request(self, start: float) -> None:
        trace = f"{int(self.rng.integers(0, 2**63)):032x}"
        self.handle(self.topology.entry, "GET /", start, trace, "")

    def deliver(self) -> None:
        """Each consumer takes its messages one at a time, in order (one partition each)."""
        free_at: dict[str, float] = defaultdict(float)
        for published, consumer, op, trace, parent in sorted(self.deliveries):
            start = max(published + 0.005, free_at[consumer])
            self.consumed[consumer].append((published, start))
            free_at[consumer], _ = self.handle(consumer, op, start, trace, parent)

    def overload(self, service: str, t: float) -> float:
        """Requests in the previous 10 s step relative to the service's normal load."""
        if self.fault.kind != "retry-storm" or not self.fault.active(service, t):
            return 1.0
        if service not in self._normal_load:
            first, last = (
                int((x - T0) // STEP_S) for x in (self.fault.onset - 300, self.fault.onset)
            )
            counts = [len(self.rec.stats.get((k, service), [])) for k in range(first, last)]
            self._normal_load[service] = max(1.0, float(np.mean(counts)))
        step = int((t - T0) // STEP_S)
        return len(self.rec.stats.get((step - 1, service), [])) / self._normal_load[service]

    def handle(
        self, service: str, op: str, start: float, trace: str, parent: str
    ) -> tuple[float, str | None]:
        spec, fault, rec = self.topology.service(service), self.fault, self.rec
        sid = rec.span_id()
        overload = self.overload(service, start)
        wait = fault.wait_ms(service, start, self.rng)
        own = spec.base_ms * fault.slow_factor(service, start, overload)
        own *= float(self.rng.lognormal(0.0, 0.3))
        t = start + (wait + own / 2) / 1000.0
        log = self._logger(service, op, trace, sid)
        log(t, "INFO", 1, "request received")
        if wait >= 500.0:
            self._log_wait(service, op, t, wait, log)
        error = fault.error(service, op, start, self.rng, overload)
        if error is None:
            t, error = self._calls(service, op, t, trace, sid)
        elif "Exception" in error:
            frame = (
                f"\n\tat {spec.code}.{op}({spec.code.split('.')[-1]}.java:{_line(service, op, 9)})"
            )
            log(t, "ERROR", 9, f"{error}{frame}")
        else:
            log(t, "ERROR", 8, error)
        t += own / 2000.0
        if error is None:
            log(t, "INFO", 2, f"completed in {(t - start) * 1000.0:.1f} ms")
        rec.span(trace, sid, parent, service, op, start, t, error is not None)
        step = int((start - T0) // STEP_S)
        rec.stats[(step, service)].append((t - start) * 1000.0)
        rec.errors[(step, service)] += int(error is not None)
        rec.waits[(step, service)] += int(wait > 0)
        return t, error

    def _logger(self, service: str, op: str, trace: str, sid: str) -> Callable[..., None]:
        """log(ts, level, k, text): a line from the k-th log statement of this operation."""
        code = self.topology.service(service).code

        def log(ts: float, level: str, k: int, text: str) -> None:
            self.rec.log(
                ts, service, level, f"{code}#{_line(service, op, k)} [{op}] {text}", trace, sid
            )

        return log

    def _log_wait(
        self, service: str, op: str, t: float, wait: float, log: Callable[..., None]
    ) -> None:
        kind = self.fault.kind
        if kind == "db-lock-contention":
            log(t, "WARN", 5, f"slow query: {op} took {wait:.0f} ms (waiting for row lock)")
        elif kind == "thread-pool-exhaustion":
            log(t, "WARN", 6, f"request queued {wait:.0f} ms: all worker threads busy")
        elif kind == "queue-consumer-lag":
            log(t, "WARN", 7, "consumer group rebalancing: revoking assigned partitions")

    def _calls(
        self, service: str, op: str, t: float, trace: str, sid: str
    ) -> tuple[float, str | None]:
        if self.topology.service(service).kind == "queue":
            for call in self.topology.calls_from(service):
                self.deliveries.append((t, call.callee, call.operation, trace, sid))
            return t, None
        for call in self.topology.calls_from(service):
            if self.rng.random() > call.probability:
                continue
            t, error = self._call(service, op, call.callee, call.operation, t, trace, sid)
            if error is not None:
                return t, f"upstream {call.callee} failed"
        return t, None

    def _call(
        self, service: str, op: str, callee: str, operation: str, t: float, trace: str, sid: str
    ) -> tuple[float, str | None]:
        """One call with its client span, retried as the client is configured to."""
        fault, log = self.fault, self._logger(service, op, trace, sid)
        attempts = 1 + fault.retries(service, callee, t)
        error: str | None = None
        for attempt in range(1, attempts + 1):
            t, error = self._attempt(service, callee, operation, t, trace, sid)
            if error is None:
                return t, None
            if attempt < attempts:
                log(
                    t,
                    "WARN",
                    4,
                    f"retrying call to {callee} (attempt {attempt + 1}/{attempts}): {error}",
                )
        log(t, "ERROR", 3, f"call to {callee} failed: {error}")
        return t, error

    def _attempt(
        self, service: str, callee: str, operation: str, t: float, trace: str, sid: str
    ) -> tuple[float, str | None]:
        fault, rng, rec = self.fault, self.rng, self.rec
        delay = fault.network_delay_ms(service, callee, t, rng)
        rtt = (0.4 + delay) * float(rng.lognormal(0, 0.2))
        client = rec.span_id()
        name = f"call {callee}.{operation}"
        failure = fault.call_failure(service, callee, t, rng)
        kind = self.topology.service(callee).kind
        if failure is not None:  # refused before any server of the callee saw the request
            end = t + (1000.0 if "connect timed out" in failure else 2.0 + rtt) / 1000.0
            if "SSLHandshake" in failure:
                spec = self.topology.service(callee)
                rec.log(
                    t + rtt / 2000.0,
                    callee,
                    "WARN",
                    f"{spec.code}#{_line(callee, 'tls', 1)} http: TLS handshake error from "
                    f"{service}: remote error: tls: bad certificate",
                    "",
                    "",
                )
            rec.span(trace, client, sid, service, name, t, end, True, peer=callee)
            rec.client[(int((t - T0) // STEP_S), service, callee)].append((end - t) * 1000.0)
            return end, failure
        child_error: str | None = None
        if kind == "external":  # a third party: only the client's span sees it
            spec = self.topology.service(callee)
            end = t + (rtt + spec.base_ms * float(rng.lognormal(0, 0.3))) / 1000.0
        else:
            child_end, child_error = self.handle(callee, operation, t + rtt / 2000.0, trace, client)
            end = child_end + rtt / 2000.0
        timeout = fault.client_timeout_ms(service, callee, t)
        if timeout is not None and (end - t) * 1000.0 > timeout:
            message = f"java.net.SocketTimeoutException: Read timed out (timeout {timeout:g} ms)"
            end, child_error = t + timeout / 1000.0, message
        rec.span(trace, client, sid, service, name, t, end, child_error is not None, peer=callee)
        rec.client[(int((t - T0) // STEP_S), service, callee)].append((end - t) * 1000.0)
        return end, child_error


def generate(topology: str, fault: str, seed: int, knobs: Knobs = Knobs()) -> GymCase:
    """Simulate one incident (or a healthy control run for fault 'none')."""
    if seed < 0:  # numpy's own message would not say which number it means
        raise ValueError(f"the seed of a gym case must be 0 or more, not {seed}")
    topo = build(topology, seed)
    rng = np.random.default_rng(seed)
    onset = T0 + ONSET_S + float(rng.uniform(0, 60))
    injected = pick_fault(topo, fault, onset, rng)
    world = _World(topo, injected, rng)
    arrivals = np.sort(rng.uniform(T0, T0 + DURATION_S, rng.poisson(topo.entry_rps * DURATION_S)))
    for start in arrivals:
        world.request(float(start))
    world.deliver()
    store = TelemetryStore()
    herring = _red_herring(topo, injected, rng) if knobs.red_herring else None
    _store_metrics(store, topo, world, herring, rng)
    _store_traces_and_logs(store, topo, world.rec, knobs, rng)
    _store_events(store, topo, injected, herring, rng)
    storm = _alert_storm(topo, injected, rng) if knobs.alert_storm else ()
    return _case(topology, fault, seed, topo, injected, store, storm)


def _red_herring(topo: Topology, fault: Fault, rng: np.random.Generator) -> tuple[str, float]:
    """An innocent service with a batch job burning CPU for a while near the onset."""
    innocent = [
        s.name
        for s in topo.services
        if s.name not in (fault.target, topo.entry) and s.kind not in ("db", "external")
    ]
    return str(rng.choice(innocent)), fault.onset + float(rng.uniform(-240, 120))


def _store_metrics(
    store: TelemetryStore,
    topo: Topology,
    world: _World,
    herring: tuple[str, float] | None,
    rng: np.random.Generator,
) -> None:
    columns: dict[str, list[Any]] = defaultdict(list)
    fault, rec = world.fault, world.rec
    lag = {name: _lag_series(consumed) for name, consumed in world.consumed.items()}
    for step in range(int(DURATION_S // STEP_S)):
        ts = T0 + (step + 1) * STEP_S
        for spec in topo.services:
            if spec.kind == "external":
                continue  # a third party exports nothing to us
            latencies = rec.stats.get((step, spec.name), [])
            count, errors = len(latencies), rec.errors.get((step, spec.name), 0)
            values = _service_metrics(spec, fault, ts, latencies, errors, rng)
            if herring and herring[0] == spec.name and 0 <= ts - herring[1] < 180:
                values["container_cpu_usage_percent"] += 45.0
            if spec.kind == "db":
                normal = 2.0 + count * float(np.mean(latencies or [0.0])) / (STEP_S * 1000.0) * 20.0
                values["db_pool_connections_in_use"] = fault.pool_in_use(
                    spec.name, ts, normal + float(rng.normal(0, 0.3))
                )
                waits = rec.waits.get((step, spec.name), 0)
                lock_waits = (waits + 0.3) / STEP_S * float(rng.lognormal(0.0, 0.1))
                values["db_lock_waits_per_second"] = lock_waits
            if spec.kind == "cache":
                miss = 1.0 if fault.active(spec.name, ts) else 0.08 + float(rng.normal(0, 0.01))
                values["cache_miss_ratio"] = miss
            if spec.name in lag:
                values["kafka_consumer_records_lag_max"] = float(lag[spec.name](ts))
            values.update(_client_metrics(rec, step, spec.name, topo))
            for name, value in values.items():
                columns["service"].append(spec.name)
                columns["name"].append(name)
                columns["ts"].append(ts)
                columns["value"].append(None if value != value else value)  # NaN -> NULL
    store.insert_columns("metrics", columns)


def _service_metrics(
    spec: ServiceSpec,
    fault: Fault,
    ts: float,
    latencies: list[float],
    errors: int,
    rng: np.random.Generator,
) -> dict[str, float]:
    """The gauges every service exports, as cAdvisor and a client library would."""
    count = len(latencies)
    busy = count * spec.cpu_ms * fault.slow_factor(spec.name, ts) / (STEP_S * 1000.0) * 500.0
    cpu = 3.0 + busy + fault.cpu_extra(spec.name, ts) + float(rng.normal(0, 0.4))
    # Little's law: busy threads = arrival rate x time in the service.
    in_flight = count / STEP_S * float(np.mean(latencies or [0.0])) / 1000.0
    # A rate over a minute of a kernel counter: smooth, proportional to the traffic.
    retransmits = (count * fault.retransmits(spec.name, ts) + 0.5) / STEP_S
    retransmits *= float(rng.lognormal(0.0, 0.1))
    disk = DISK_BASE_PERCENT + (zlib.crc32(spec.name.encode()) % 20) + (ts - T0) / 3600.0
    values = {
        "container_cpu_usage_percent": max(0.0, cpu),
        "container_memory_working_set_mib": 180.0
        + 0.2 * count
        + fault.memory_extra(spec.name, ts)
        + float(rng.normal(0, 2)),
        "container_filesystem_usage_percent": fault.disk_percent(
            spec.name, ts, disk + float(rng.normal(0, 0.05))
        ),
        "container_network_tcp_retransmits_per_second": retransmits,
        "http_server_requests_per_second": count / STEP_S,
        "http_server_error_ratio": errors / count if count else 0.0,
        "http_server_latency_p90_ms": float(np.percentile(latencies, 90))
        if latencies
        else float("nan"),
    }
    if spec.kind in ("api", "web", "worker"):
        values["executor_active_threads"] = fault.threads_busy(
            spec.name, ts, 1.0 + in_flight + abs(float(rng.normal(0, 0.3)))
        )
    return values


# A client library's per-peer request latency (OTel http.client.request.duration with
# server.address, a Prometheus client's {peer="..."}): the store keeps labels in the name, as the
# Prometheus loader does. Metrics are scraped apart from traces, so they survive lost spans.
CLIENT_LATENCY = "http_client_latency_p90_ms"


def _client_metrics(rec: _Recorder, step: int, caller: str, topo: Topology) -> dict[str, float]:
    """p90 of the caller's call attempts into each callee in one step (NaN without calls)."""
    values = {}
    for callee in sorted({c.callee for c in topo.calls_from(caller)}):
        if topo.service(caller).kind == "queue":
            continue  # a broker hands messages over; it measures no request latency
        durations = rec.client.get((step, caller, callee), [])
        p90 = float(np.percentile(durations, 90)) if durations else float("nan")
        values[f'{CLIENT_LATENCY}{{peer="{callee}"}}'] = p90
    return values


def _lag_series(consumed: list[tuple[float, float]]) -> Callable[[float], int]:
    """Messages published but not yet taken by the consumer, at any time."""
    published = np.sort(np.array([p for p, _ in consumed]))
    started = np.sort(np.array([s for _, s in consumed]))

    def lag(ts: float) -> int:
        return int(np.searchsorted(published, ts, "right") - np.searchsorted(started, ts, "right"))

    return lag


def _store_traces_and_logs(
    store: TelemetryStore, topo: Topology, rec: _Recorder, knobs: Knobs, rng: np.random.Generator
) -> None:
    names = [s.name for s in topo.services]
    hidden = (
        set(rng.choice(names, size=int(round(knobs.drop_traces * len(names))), replace=False))
        if knobs.drop_traces
        else set()
    )
    stores = (
        {s.name for s in topo.services if s.kind in ("db", "cache")}
        if knobs.untraced_stores
        else set()
    )
    spans = rec.spans
    keep = [i for i, s in enumerate(spans["service"]) if s not in hidden | stores]
    store.insert_columns("spans", {k: [v[i] for i in keep] for k, v in spans.items()})
    logs = rec.logs
    lost = [rng.random() < knobs.drop_logs for _ in range(len(logs["ts"]))]  # same draws as ever
    kept = [i for i, gone in enumerate(lost) if not gone and logs["service"][i] not in stores]
    columns = {k: [v[i] for i in kept] for k, v in logs.items()}
    columns["ts"] = [float(t) + knobs.clock_skew_s for t in columns["ts"]]
    store.insert_columns("logs", columns)


def _store_events(
    store: TelemetryStore,
    topo: Topology,
    fault: Fault,
    herring: tuple[str, float] | None,
    rng: np.random.Generator,
) -> None:
    events: dict[str, list[Any]] = defaultdict(list)

    def add(ts: float, service: str, kind: str, description: str) -> None:
        events["ts"].append(ts)
        events["service"].append(service)
        events["kind"].append(kind)
        events["description"].append(description)

    if fault.kind == "bad-deploy" and fault.target:
        add(
            fault.onset - 5,
            fault.target,
            "deploy",
            f"version v2.{int(rng.integers(10, 99))}.0 commit {int(rng.integers(0, 16**7)):07x}",
        )
    if fault.kind == "bad-config-push" and fault.target:
        add(
            fault.onset - 5,
            fault.target,
            "config",
            f"ConfigMap {fault.target}-config updated: {fault.callee}.client.timeout_ms 2000 -> 1",
        )
    if fault.kind == "memory-leak" and fault.target:
        t = fault.onset
        while t < T0 + DURATION_S:
            t += 512.0 / 1.2
            if t < T0 + DURATION_S:
                add(t, fault.target, "restart", "OOMKilled: container exceeded memory limit 512Mi")
            t += 20.0
    if herring:
        add(herring[1], herring[0], "deploy", "version v1.4.2 (batch job schedule change)")
    if events:
        store.insert_columns("events", events)


def _alert_storm(topo: Topology, fault: Fault, rng: np.random.Generator) -> tuple[str, ...]:
    """The other alerts of the storm: the culprit's first caller on the way to the entry, and a
    flapping alert on a service the fault does not reach."""
    graph = nx.DiGraph(list(topo.edges()))
    alerts: list[str] = []
    if fault.target:
        path = nx.shortest_path(graph, topo.entry, fault.target)
        if len(path) > 2:
            alerts.append(path[-2])
    affected = set(nx.ancestors(graph, fault.target)) | {fault.target} if fault.target else set()
    innocent = [
        s.name
        for s in topo.services
        if s.name not in affected and s.name != topo.entry and s.kind != "external"
    ]
    if innocent:
        alerts.append(str(rng.choice(innocent)))
    return tuple(alerts)


def _case(
    topology: str,
    fault: str,
    seed: int,
    topo: Topology,
    injected: Fault,
    store: TelemetryStore,
    also_alerting: tuple[str, ...] = (),
) -> GymCase:
    alert = injected.onset + DETECTION_DELAY_S
    window = TimeRange(alert - WINDOW_HALF_S, min(alert + WINDOW_HALF_S, T0 + DURATION_S))
    # The id must not give the answer away: the report prints it.
    tag = zlib.crc32(f"{fault}/{seed}".encode()) & 0xFFFF
    incident = Incident(
        id=f"{topology}-{seed}-{tag:04x}",
        window=window,
        alert_time=alert,
        symptom_service=topo.entry,
        also_alerting=also_alerting,
    )
    path: tuple[str, ...] = ()
    if injected.target:
        graph = nx.DiGraph(list(topo.edges()))
        path = tuple(reversed(nx.shortest_path(graph, topo.entry, injected.target)))
    truth = GymTruth(
        service=injected.target,
        fault=fault,
        fault_type=CATALOGUE[fault][0],
        onset=injected.onset,
        path=path,
        code_location=f"{topo.service(injected.target).code}.{injected.operation}"
        if injected.target and fault == "bad-deploy"
        else None,
    )
    return GymCase(
        id=incident.id,
        topology=topology,
        fault=fault,
        seed=seed,
        incident=incident,
        baseline=TimeRange(T0, window.start),
        truth=truth,
        store=store,
        # The declared dependencies, as a deployment manifest or service mesh would give them:
        # without them, dropped traces would also drop the graph.
        graph_edges=topo.edges(),
    )
