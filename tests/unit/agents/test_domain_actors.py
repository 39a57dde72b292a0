"""The database, cache and queue playbooks on small hand-built cases.

Times are seconds from the epoch: baseline [0, 600), incident window [600, 1200), alert at 900;
metrics every 10 s. Each case holds only the series the rule under test reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from warroom.agents.actors import Actor, CaseFacts, Check, Results
from warroom.agents.base import NoData
from warroom.agents.checks import DslCheck, DslCheckIn
from warroom.agents.context import AgentContext
from warroom.agents.domains import CacheActor, DatabaseActor, QueueActor
from warroom.causal.fault_types import type_from_text
from warroom.model import RootCause, TimeRange
from warroom.telemetry.store import TelemetryStore

WINDOW = TimeRange(600.0, 1200.0)
BASELINE = TimeRange(0.0, 600.0)
ALERT = 900.0
Curve = Callable[[float], float]


def _store(
    metrics: Mapping[tuple[str, str], Curve],
    logs: Sequence[tuple[float, str, str, str]] = (),
    spans: Sequence[tuple[str, float, float]] = (),
) -> TelemetryStore:
    store = TelemetryStore()
    rows = [(s, n, t, f(t)) for (s, n), f in metrics.items() for t in range(0, 1200, 10)]
    store.insert_columns(
        "metrics",
        {k: [r[i] for r in rows] for i, k in enumerate(("service", "name", "ts", "value"))},
    )
    if logs:
        store.insert_columns(
            "logs",
            {
                "ts": [x[0] for x in logs],
                "service": [x[1] for x in logs],
                "pod": [f"{x[1]}-0" for x in logs],
                "level": [x[2] for x in logs],
                "message": [x[3] for x in logs],
                "trace_id": [""] * len(logs),
                "span_id": [""] * len(logs),
            },
        )
    if spans:
        n = len(spans)
        store.insert_columns(
            "spans",
            {
                "trace_id": [f"t{i}" for i in range(n)],
                "span_id": [f"s{i}" for i in range(n)],
                "parent_id": [""] * n,
                "service": [x[0] for x in spans],
                "pod": [f"{x[0]}-0" for x in spans],
                "operation": ["Consume"] * n,
                "start_ts": [x[1] for x in spans],
                "end_ts": [x[1] + x[2] for x in spans],
                "error": [False] * n,
            },
        )
    return store


def _facts(store: TelemetryStore, callees: Mapping[str, frozenset[str]]) -> CaseFacts:
    names = store.rows("SELECT DISTINCT service, name FROM metrics")
    return CaseFacts(
        findings=(),
        changes=(),
        symptom_service=None,
        symptom_metric=None,
        symptom_onset=None,
        metric_names=frozenset((str(s), str(n)) for s, n in names),
        window=WINDOW,
        callees=callees,
    )


def _weigh(actor: Actor, h: RootCause, facts: CaseFacts, store: TelemetryStore) -> list[Check]:
    """Run the playbook as the director would (one DSL agent per expression), then weigh."""
    assert actor.relevant(h, facts)
    ctx = AgentContext(store)
    results: dict[str, object] = {}
    for expression in actor.playbook(h, facts):
        check_in = DslCheckIn(expression=expression, window=WINDOW, alert=ALERT, baseline=BASELINE)
        try:
            results[expression] = DslCheck().run(check_in, ctx)
        except NoData:
            continue  # no data: the check sees "missing"
    return actor.weigh(h, facts, results)  # type: ignore[arg-type]


def _check(checks: list[Check], name: str) -> Check:
    return next(c for c in checks if c.name == name)


def _h(service: str, indicator: str, fault_type: str) -> RootCause:
    return RootCause(service, indicator, fault_type, 10.0, ALERT, (service,), 1.0)


def step(before: float, after: float, at: float = 900.0) -> Curve:
    """A level that changes at `at`, with a small regular wobble so scales are not zero."""
    return lambda t: (before if t < at else after) * (1.0 + 0.02 * ((t // 10) % 3 - 1))


DB_CALLERS = {"checkout": frozenset({"orders-db"})}
POOL, LOCKS = "db_pool_connections_in_use", "db_lock_waits_per_second"
RATE, LATENCY = "http_server_requests_per_second", "http_server_latency_p90_ms"


def _db(
    in_use: Curve, locks: Curve, rate: Curve, logs: list[tuple[float, str, str, str]]
) -> TelemetryStore:
    return _store(
        {
            ("orders-db", POOL): in_use,
            ("orders-db", LOCKS): locks,
            ("orders-db", RATE): rate,
            ("checkout", LATENCY): step(10.0, 200.0, 910.0),
        },
        logs,
    )


def test_a_pool_pinned_at_its_ceiling_with_waiters_supports_pool_exhaustion() -> None:
    timeouts = [
        (900.0 + i, "checkout", "ERROR", "timeout acquiring connection from pool")
        for i in range(20)
    ]
    store = _db(lambda t: 3.0 if t < 900 else 50.0, step(0.03, 0.03), step(30.0, 30.0), timeouts)
    checks = _weigh(
        DatabaseActor(), _h("orders-db", POOL, "pool"), _facts(store, DB_CALLERS), store
    )
    pool = _check(checks, "pool saturated")
    assert pool.verdict == "supports" and pool.ratio > 1
    assert "pinned at 50" in pool.reason and "20 pool-timeout lines" in pool.reason
    assert _check(checks, "callers hurt with it").verdict == "supports"  # checkout +10 s
    assert _check(checks, "load-driven").verdict == "neutral"
    assert _check(checks, "persists").verdict == "supports"


def test_connections_held_by_lock_waits_are_contention_not_exhaustion() -> None:
    # In use rises (connections held while they wait) but swings: not pinned at a ceiling.
    swinging: Curve = lambda t: 3.0 if t < 900 else (20.0 if (t // 10) % 2 else 60.0)  # noqa: E731
    lines = [
        (905.0 + i, "orders-db", "WARN", "slow query: UPDATE took 800 ms (waiting for row lock)")
        for i in range(30)
    ]
    store = _db(swinging, step(0.03, 6.0), step(30.0, 30.0), lines)
    facts = _facts(store, DB_CALLERS)
    as_pool = _check(
        _weigh(DatabaseActor(), _h("orders-db", POOL, "pool"), facts, store), "pool saturated"
    )
    assert as_pool.verdict == "neutral" and "lock contention" in as_pool.reason
    as_lock = _weigh(DatabaseActor(), _h("orders-db", LOCKS, "db-lock"), facts, store)
    assert _check(as_lock, "lock contention").verdict == "supports"


def test_a_db_busy_with_its_callers_load_is_refuted() -> None:
    # Requests double at 700; the pool fills from 900: the load came first.
    store = _db(lambda t: 3.0 if t < 900 else 50.0, step(0.03, 0.03), step(30.0, 60.0, 700.0), [])
    checks = _weigh(
        DatabaseActor(), _h("orders-db", POOL, "pool"), _facts(store, DB_CALLERS), store
    )
    load = _check(checks, "load-driven")
    assert load.verdict == "refutes" and load.ratio < 1
    assert "200 s before" in load.reason


def test_a_pool_with_headroom_and_nobody_waiting_refutes_pool_exhaustion() -> None:
    store = _db(step(3.0, 3.0), step(0.03, 0.03), step(30.0, 30.0), [])
    checks = _weigh(
        DatabaseActor(), _h("orders-db", POOL, "pool"), _facts(store, DB_CALLERS), store
    )
    assert _check(checks, "pool saturated").verdict == "refutes"


def test_a_caller_quoting_the_dbs_pool_timeouts_is_not_examined_as_a_db() -> None:
    store = _db(step(3.0, 3.0), step(0.03, 0.03), step(30.0, 30.0), [])
    assert not DatabaseActor().relevant(_h("checkout", LATENCY, "pool"), _facts(store, DB_CALLERS))


CACHE_CALLERS = {"cart": frozenset({"redis-cart"})}


def _cache(miss: Curve, errors: int) -> TelemetryStore:
    lines = [(t, "cart", "INFO", "request received") for t in range(0, 1200, 10)]
    lines += [
        (905.0 + i, "cart", "ERROR", "call to redis-cart failed: connection refused")
        for i in range(errors)
    ]
    return _store({("redis-cart", "cache_miss_ratio"): miss}, lines)


def test_a_cache_its_callers_cannot_reach_is_down() -> None:
    store = _cache(step(0.08, 1.0), errors=25)
    h = _h("redis-cart", "cache_miss_ratio", "cache")
    checks = _weigh(CacheActor(), h, _facts(store, CACHE_CALLERS), store)
    assert _check(checks, "callers refused").verdict == "supports"
    assert _check(checks, "misses").verdict == "supports"
    assert _check(checks, "store takes the misses").verdict == "missing"  # no store behind it


def test_a_cache_that_answers_and_hits_as_usual_is_refuted() -> None:
    store = _cache(step(0.08, 0.08), errors=0)
    h = _h("redis-cart", "cache_miss_ratio", "cache")
    checks = _weigh(CacheActor(), h, _facts(store, CACHE_CALLERS), store)
    down = _check(checks, "cache down or degraded")
    assert down.verdict == "refutes" and down.ratio == 0.5


def test_refused_connections_naming_a_cache_type_a_cache_fault() -> None:
    caller = "cart: error log e.g. '[GetCart] call to redis-cart failed: connection refused'"
    assert type_from_text([caller]) == "cache"
    assert (
        type_from_text(["sessions: [GET] connection refused", "sessions cache_miss_ratio 0.1 -> 1"])
        == "cache"
    )
    assert type_from_text(["READONLY You can't write against a read only replica"]) == "cache"
    # Refused by a database, or a cache timing out (packet loss): not a cache fault by words.
    assert type_from_text(["call to orders-db failed: connection refused"]) is None
    assert type_from_text(["SocketTimeoutException: connect timed out (redis-cart)"]) is None
    assert type_from_text(["UnknownHostException: redis-cart: connection refused"]) == "dns"


QUEUE_GRAPH = {"api": frozenset({"broker"}), "broker": frozenset({"worker"})}
LAG = "kafka_consumer_records_lag_max"


def _queue(publish_per_s: Curve, consume_s: Curve) -> TelemetryStore:
    spans = []
    for t in range(0, 1200):
        for k in range(int(publish_per_s(t))):
            spans.append(("broker", t + k / 10.0, 0.001))
        spans.append(("worker", float(t), consume_s(t)))
    metrics = {
        ("worker", LAG): lambda t: 0.0 if t < 900 else (t - 890) * 2.0,
        ("broker", RATE): publish_per_s,
    }
    return _store(metrics, spans=spans)


def test_lag_from_a_consumer_that_got_slow_supports_the_consumer() -> None:
    store = _queue(step(2.0, 2.0), lambda t: 0.01 if t < 900 else 0.5)
    checks = _weigh(QueueActor(), _h("worker", LAG, "queue"), _facts(store, QUEUE_GRAPH), store)
    slow = _check(checks, "consumer slow")
    assert slow.verdict == "supports" and "processing p90 x50" in slow.reason
    assert _check(checks, "producer flood").verdict == "neutral"


def test_lag_from_a_producer_flooding_moves_the_blame_upstream() -> None:
    store = _queue(lambda t: 2.0 if t < 800 else 6.0, lambda t: 0.01)
    checks = _weigh(QueueActor(), _h("worker", LAG, "queue"), _facts(store, QUEUE_GRAPH), store)
    flood = _check(checks, "producer flood")
    assert flood.verdict == "refutes" and flood.ratio < 1 and "broker publishes" in flood.reason
    assert _check(checks, "consumer slow").verdict == "neutral"


def test_results_that_failed_or_were_not_run_are_missing_not_verdicts() -> None:
    store = _db(step(3.0, 3.0), step(0.03, 0.03), step(30.0, 30.0), [])
    facts = _facts(store, DB_CALLERS)
    empty: Results = {}
    checks = DatabaseActor().weigh(_h("orders-db", POOL, "pool"), facts, empty)
    assert all(c.ratio == 1.0 for c in checks)


def _unanswered(service: str) -> RootCause:
    from warroom.experts.peers import UNANSWERED

    return RootCause(service, UNANSWERED, "dependency", 9.0, 700.0, (service,), 1.0)


def test_a_callee_seen_only_through_its_one_caller_that_just_changed_hands_the_blame_back() -> None:
    from dataclasses import replace

    from warroom.agents.actors import ChangeActor
    from warroom.model import Event

    push = Event(650.0, "payment", "config", "payment.yaml: timeout 3s -> 3ms")
    facts = replace(
        _facts(_store({}), {"payment": frozenset({"gateway"}), "web": frozenset({"payment"})}),
        changes=(push,),
    )
    (check,) = ChangeActor().weigh(_unanswered("gateway"), facts, {})
    assert (check.verdict, check.redirect) == ("refutes", "payment")
    assert "config" in check.reason and check.evidence[0].value == 50.0
    # Two callers, or no change on the caller: a third party that is down for everyone.
    two = replace(facts, callees={**facts.callees, "web": frozenset({"payment", "gateway"})})
    assert ChangeActor().weigh(_unanswered("gateway"), two, {}) == []
    assert ChangeActor().weigh(_unanswered("gateway"), replace(facts, changes=()), {}) == []


def test_a_suspect_whose_own_interface_drops_packets_keeps_the_blame_for_its_timeouts() -> None:
    from dataclasses import replace

    from warroom.agents.actors import NetworkActor
    from warroom.model import Evidence, Finding, IndicatorKind, Modality

    said = Evidence("log:geo", "geo: call to geoip failed: connect timed out (geoip)", 5.0)
    errors = Finding("geo", "log:x", IndicatorKind.SYMPTOM, Modality.LOG, 9.0, 700.0, 1, (said,))
    drops = Finding(
        "geo",
        "container_network_tcp_retransmits_per_second",
        IndicatorKind.RESOURCE,
        Modality.METRIC,
        9.0,
        700.0,
        1,
    )
    h = RootCause("geo", "log:x", "dependency", 9.0, 700.0, ("geo",), 1.0)
    facts = replace(_facts(_store({}), {"geo": frozenset({"geoip"})}), findings=(errors,))
    (moved,) = NetworkActor().weigh(h, facts, {})
    assert moved.redirect == "geoip"  # its errors name the callee: the blame moves there
    own = replace(facts, findings=(errors, drops))
    assert NetworkActor().weigh(h, own, {}) == []  # unless its own interface is the problem
