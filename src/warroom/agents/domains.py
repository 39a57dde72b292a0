"""Domain experts for the stateful dependencies: database, cache, queue.

Each is the playbook an SRE of that domain runs on a hypothesis "the culprit is S, a <type>
fault", written as evidence expressions (agents/checks.py runs them; every number in a Check
can be re-run from its expression) and a rule that weighs them:

    database  pool saturated (in use vs max, pinned at a ceiling, waiters) or lock contention
              (lock waits, lock / slow-query lines); callers hurt from the same minute; load-
              driven (requests into the DB rose first: it is busy, not broken)
    cache     callers refused by it; its misses; the backing store taking the misses after it
    queue     consumer lag: a slow consumer (its processing time, CPU, errors, rebalances) or a
              producer flooding (the publish rate rose first: the blame moves upstream)

Metric names differ between exporters, so the playbooks find them by pattern among the
service's series (facts.metric_names); a check whose series is not exported is "missing".
The old "still off its baseline at the end of the window" rule runs inside each of them.

A kind that infrastructure code declares (topology/iac: a StatefulSet running postgres, an
ElastiCache cluster) counts too: `with declared_kinds({"orders": "database"}): ...` around an
investigation lets the database and cache playbooks take a component whose name and metrics do
not say what it is. It only adds: a declared "service" never hides a name that says database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace

from warroom.agents.actors import (
    LATE,
    REFUTES,
    SUPPORTS,
    Actor,
    CaseFacts,
    Check,
    PersistenceActor,
    Results,
    Verdict,
    _value,
    q,
)
from warroom.model import Evidence, RootCause

# Telemetry service name -> kind declared by infrastructure code ("database", "cache", ...).
# A context variable, not a parameter: the director and its actors stay as they are, and the
# executor runs actors in the caller's context (agents/executor.in_current_context).
DECLARED_KINDS: ContextVar[Mapping[str, str] | None] = ContextVar("declared_kinds", default=None)


@contextmanager
def declared_kinds(kinds: Mapping[str, str]) -> Iterator[None]:
    """Within the block, the database and cache playbooks also take the declared kinds."""
    token = DECLARED_KINDS.set(dict(kinds))
    try:
        yield
    finally:
        DECLARED_KINDS.reset(token)


def declared_kind(service: str) -> str | None:
    """The kind infrastructure code declares for the service, if any is in effect."""
    return (DECLARED_KINDS.get() or {}).get(service)


SIDE = 3  # callers (or upstreams) a playbook looks at, the most harmed first
SAME_ONSET_S = 60.0  # a caller hurt within this of the dependency's onset: the same failure
AFTER_ONSET_S = 180.0  # ... or this long after it (timeouts and retries take a while)
LEAD_S = 20.0  # a load that rose this much earlier came first (two scrapes at 10 s)
LOAD_UP = 1.5  # window mean over baseline mean: more traffic than usual
PINNED = 0.9  # the late minimum this close to the peak: held at a ceiling
ABOVE_BASELINE = 2.0  # the peak this many times anything the baseline saw
LINES = 5  # log lines that make a pattern, not an accident
SLOWER = 1.5  # p90 ratio (or metric change) that counts as slower / busier


def metric_of(facts: CaseFacts, service: str, pattern: re.Pattern[str]) -> str | None:
    """The service's first metric (by name) matching the pattern, if it exports one."""
    names = sorted(n for s, n in facts.metric_names if s == service and pattern.search(n))
    return names[0] if names else None


def callers_of(service: str, facts: CaseFacts) -> list[str]:
    """Direct callers, the most harmed first (by their strongest latency/error finding)."""
    callers = [c for c, callees in facts.callees.items() if service in callees and c != service]

    def harm(caller: str) -> float:
        return max((f.score for f in facts.of(caller) if f.direction > 0), default=0.0)

    return sorted(callers, key=lambda c: (-harm(c), c))[:SIDE]


def number(results: Results, expression: str | None) -> tuple[float | None, Evidence | None]:
    """An evaluated expression's number and evidence (None, None: not run, no data, failed)."""
    if expression is None:
        return None, None
    value, evidence, _ = _value(results, expression)
    return value, evidence


def _metric(service: str, name: str) -> str:
    return f"metric({q(service)}, {q(name)})"


def _any_lines(service: str, words: Iterable[str], window: str = "") -> str:
    """count() of the service's log lines containing any of the words (summed per word)."""
    return " + ".join(f"count(logs({q(service)}, message~{q(w)}){window})" for w in words)


def _evidence(*found: Evidence | None) -> tuple[Evidence, ...]:
    return tuple(e for e in found if e is not None)


def _earliest(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


LATENCY = re.compile(r"latency|duration|response_time", re.IGNORECASE)
ERRORS = re.compile(r"error|fail", re.IGNORECASE)
REQUESTS = re.compile(
    r"requests_per_second|request_rate|queries_per_second|qps|questions|xact_commit"
    r"|transactions|ops_per_sec|commands_processed|messages_?in|publish",
    re.IGNORECASE,
)


class _Side:
    """The onset of harm in a few neighbours (callers): the earliest of latency and errors."""

    def __init__(self, services: Sequence[str], facts: CaseFacts) -> None:
        self.exprs: dict[str, list[str]] = {}
        for s in services:
            names = [metric_of(facts, s, p) for p in (LATENCY, ERRORS)]
            self.exprs[s] = [f"onset({_metric(s, n)})" for n in names if n]

    def all(self) -> list[str]:
        return [e for es in self.exprs.values() for e in es]

    def onsets(self, results: Results) -> dict[str, tuple[float, Evidence]]:
        out: dict[str, tuple[float, Evidence]] = {}
        for s, exprs in self.exprs.items():
            found = [number(results, e) for e in exprs]
            known = [(v, ev) for v, ev in found if v is not None and ev is not None]
            if known:
                out[s] = min(known, key=lambda x: x[0])
        return out


def same_onset(
    actor: str, what: str, onset: float | None, side: _Side, results: Results
) -> list[Check]:
    """Did the callers' latency or errors rise with the dependency (most of them, within a
    minute, or up to three after), or before it (then they were not hurt by it)?"""
    hurt = side.onsets(results)
    if onset is None or not hurt:
        reason = "no onset of its own" if onset is None else "no caller's latency or errors rose"
        return [Check(actor, "callers hurt with it", "missing", 1.0, reason)]
    lags = {s: t - onset for s, (t, _) in hurt.items()}
    evidence = tuple(ev for _, ev in hurt.values())
    along = [s for s, lag in lags.items() if -SAME_ONSET_S <= lag <= AFTER_ONSET_S]
    before = [s for s, lag in lags.items() if lag < -SAME_ONSET_S]
    words = ", ".join(f"{s} {lag:+.0f} s" for s, lag in sorted(lags.items()))
    if len(along) * 2 > len(lags):
        reason = f"callers' latency/errors rose with {what}: {words}"
        return [Check(actor, "callers hurt with it", "supports", SUPPORTS, reason, evidence)]
    if len(before) * 2 > len(lags):
        reason = f"callers were hurt before {what} moved: {words}"
        return [Check(actor, "callers hurt with it", "refutes", 0.5, reason, evidence)]
    return [Check(actor, "callers hurt with it", "neutral", 1.0, words, evidence)]


# -- database ---------------------------------------------------------------------------------

POOL_IN_USE = re.compile(
    r"pool.*(in_?use|active|busy|used)|connections_(in_?use|active|busy)|threads_connected"
    r"|numbackends|stat_activity_count",
    re.IGNORECASE,
)
POOL_MAX = re.compile(r"pool.*max|max_?connections|connections_max|pool_size", re.IGNORECASE)
POOL_PENDING = re.compile(r"(pool|connection).*(pending|waiting|waiters)", re.IGNORECASE)
LOCK_WAITS = re.compile(r"lock.*wait|deadlock|lock_timeout|row_lock", re.IGNORECASE)
# HikariCP, DBCP, SQLAlchemy, PostgreSQL, MySQL and generic wordings of "no connection for you".
WAITER_WORDS = (
    "acquiring connection",
    "connection is not available",
    "too many c",  # clients already (PostgreSQL), connections (MySQL)
    "pool exhausted",
    "queuepool limit",
)
# InnoDB, PostgreSQL (log_lock_waits), generic ORMs; the slow-query log.
LOCK_WORDS = ("lock wait", "deadlock", "row lock", "obtain lock", "still waiting for", "slow query")


DB_NAMES = re.compile(
    r"(?<![a-z])db|db(?![a-z])|sql|postgres|mongo|maria|cassandra|dynamo", re.IGNORECASE
)


def is_store(service: str, facts: CaseFacts) -> bool:
    """A database by its own metrics (pool, locks, queries), its declared kind or its name."""
    if declared_kind(service) == "database":
        return True
    exported = any(
        s == service and (POOL_IN_USE.search(n) or LOCK_WAITS.search(n))
        for s, n in facts.metric_names
    )
    return exported or bool(DB_NAMES.search(service))


ONSETS = ("in_use_onset", "latency_onset", "errors_onset", "lock_onset")


class DatabaseActor(Actor):
    """Pool exhaustion, lock contention, or a DB that is merely busy with its callers' load."""

    name = "database"
    domains = frozenset({"pool", "db-lock"})

    def __init__(self) -> None:
        self.persistence = PersistenceActor(self.name, tuple(self.domains))

    def relevant(self, h: RootCause, facts: CaseFacts) -> bool:
        # A caller quoting the DB's pool timeouts is not the one with the pool.
        return super().relevant(h, facts) and is_store(h.service, facts)

    def plan(self, h: RootCause, facts: CaseFacts) -> dict[str, str]:
        """Role -> expression (only the roles whose series exist)."""
        s, out = h.service, dict[str, str]()
        in_use = metric_of(facts, s, POOL_IN_USE)
        if in_use:
            m = _metric(s, in_use)
            out |= {
                "in_use_late": f"min({m}{LATE})",
                "in_use_peak": f"max({m}[window])",
                "in_use_base": f"max({m}[baseline])",
                "in_use_onset": f"onset({m})",
            }
            cap = metric_of(facts, s, POOL_MAX)
            if cap and cap != in_use:
                out["headroom"] = f"max({m}[window]) / max({_metric(s, cap)}[window])"
        pending = metric_of(facts, s, POOL_PENDING)
        if pending:
            out["pending"] = f"max({_metric(s, pending)}[window])"
        lock = metric_of(facts, s, LOCK_WAITS)
        if lock:
            out |= {
                "lock_change": f"change({_metric(s, lock)})",
                "lock_onset": f"onset({_metric(s, lock)})",
            }
        out["lock_lines"] = _any_lines(s, LOCK_WORDS)
        out["lock_lines_base"] = _any_lines(s, LOCK_WORDS, "[baseline]")
        for i, who in enumerate([s, *callers_of(s, facts)]):
            out[f"waiters_{i}"] = _any_lines(who, WAITER_WORDS)
        rate = metric_of(facts, s, REQUESTS)
        if rate:
            out |= {
                "load_change": f"change({_metric(s, rate)})",
                "load_onset": f"onset({_metric(s, rate)})",
            }
        for role, pattern in (("latency_onset", LATENCY), ("errors_onset", ERRORS)):
            name = metric_of(facts, s, pattern)
            if name:
                out[role] = f"onset({_metric(s, name)})"
        return out

    def playbook(self, h: RootCause, facts: CaseFacts) -> list[str]:
        own = self.persistence.playbook(h, facts) if self._persists(h, facts) else []
        side = _Side(callers_of(h.service, facts), facts)
        return [*own, *self.plan(h, facts).values(), *side.all()]

    def _persists(self, h: RootCause, facts: CaseFacts) -> bool:
        return self.persistence.relevant(h, facts)

    def weigh(self, h: RootCause, facts: CaseFacts, results: Results) -> list[Check]:
        plan = self.plan(h, facts)
        v = {role: number(results, e) for role, e in plan.items()}
        checks = self.persistence.weigh(h, facts, results) if self._persists(h, facts) else []
        pool = self._pool(v)
        locks = self._locks(v)
        checks.append(self._mechanism(h, pool, locks))
        moved = _earliest(v[r][0] for r in ONSETS if r in v)
        # Its pool fills with the load too; the trouble is when it got slow, failed or waited.
        hurt = _earliest(v[r][0] for r in ONSETS[1:] if r in v) or moved
        side = _Side(callers_of(h.service, facts), facts)
        checks += same_onset(self.name, h.service, moved, side, results)
        checks.append(self._load(v, hurt))
        return checks

    def _pool(self, v: dict[str, tuple[float | None, Evidence | None]]) -> Check:
        """Saturated: at >= 90 % of its max, or pinned at a ceiling far above the baseline's
        peak; or somebody waits for a connection (a pending gauge, pool-timeout lines)."""
        late, peak, base = (
            v.get(r, (None, None))[0] for r in ("in_use_late", "in_use_peak", "in_use_base")
        )
        headroom, head_ev = v.get("headroom", (None, None))
        waiters = sum(x for r, (x, _) in v.items() if r.startswith("waiters_") and x)
        waiter_ev = [ev for r, (x, ev) in v.items() if r.startswith("waiters_") and x]
        pending, pend_ev = v.get("pending", (None, None))
        evidence = _evidence(v.get("in_use_peak", (None, None))[1], head_ev, pend_ev, *waiter_ev)
        reasons: list[str] = []
        if headroom is not None and headroom >= PINNED:
            reasons.append(f"in use at {headroom:.0%} of max")
        if (
            late
            and peak
            and base is not None
            and late / peak >= PINNED
            and peak >= ABOVE_BASELINE * max(base, 1e-9)
        ):
            reasons.append(f"pinned at {peak:.4g} (baseline peak {base:.4g})")
        if pending:
            reasons.append(f"{pending:.4g} waiting for a connection")
        if waiters >= LINES:
            reasons.append(f"{waiters:.0f} pool-timeout lines")
        known = peak is not None or waiters or pending is not None
        verdict: Verdict = "supports" if reasons else ("refutes" if known else "missing")
        reason = "; ".join(reasons) or (
            f"headroom left (peak {peak:.4g}, late low {late or 0:.4g}), nobody waits"
            if peak is not None
            else "no pool gauge, no pool-timeout lines"
        )
        return Check(self.name, "pool saturated", verdict, 1.0, reason, evidence)

    def _locks(self, v: dict[str, tuple[float | None, Evidence | None]]) -> Check:
        """Contention: lock waits well up on the baseline, or lock / slow-query lines new."""
        change, change_ev = v.get("lock_change", (None, None))
        lines, lines_ev = v.get("lock_lines", (None, None))
        base_lines = v.get("lock_lines_base", (None, None))[0] or 0.0
        reasons: list[str] = []
        if change is not None and change >= 3.0:
            reasons.append(f"lock waits x{change:.3g}")
        if lines is not None and lines >= LINES and lines > 3 * base_lines:
            reasons.append(f"{lines:.0f} lock / slow-query lines (baseline {base_lines:.0f})")
        known = change is not None or lines is not None
        verdict: Verdict = "supports" if reasons else ("refutes" if known else "missing")
        reason = "; ".join(reasons) or "lock waits flat, no lock or slow-query lines"
        return Check(
            self.name, "lock contention", verdict, 1.0, reason, _evidence(change_ev, lines_ev)
        )

    def _mechanism(self, h: RootCause, pool: Check, locks: Check) -> Check:
        """One verdict on the mechanism the hypothesis names; the other one, seen instead, is
        the same DB at fault by another mechanism: said, not held against the DB."""
        named, other = (pool, locks) if h.fault_type == "pool" else (locks, pool)
        evidence = named.evidence + other.evidence
        if named.verdict == "supports":
            return Check(self.name, named.name, "supports", SUPPORTS, named.reason, evidence)
        if other.verdict == "supports":
            reason = f"not {named.name}, but {other.name}: {other.reason}"
            return Check(self.name, named.name, "neutral", 1.0, reason, evidence)
        if named.verdict == "refutes" and other.verdict != "supports":
            return Check(self.name, named.name, "refutes", 0.5, named.reason, evidence)
        return Check(self.name, named.name, "missing", 1.0, named.reason, evidence)

    def _load(
        self, v: dict[str, tuple[float | None, Evidence | None]], trouble: float | None
    ) -> Check:
        """Load-driven: requests into the DB rose, and before its trouble began."""
        change, change_ev = v.get("load_change", (None, None))
        onset, onset_ev = v.get("load_onset", (None, None))
        evidence = _evidence(change_ev, onset_ev)
        if change is None:
            return Check(self.name, "load-driven", "missing", 1.0, "no request-rate series")
        if (
            change >= LOAD_UP
            and onset is not None
            and trouble is not None
            and onset <= trouble - LEAD_S
        ):
            reason = (
                f"requests into it x{change:.2f}, from {trouble - onset:.0f} s before its "
                "trouble: busy with its callers' load, not broken"
            )
            return Check(self.name, "load-driven", "refutes", REFUTES, reason, evidence)
        reason = f"requests into it x{change:.2f}" + (
            " (not before its trouble)" if change >= LOAD_UP else ": the load did not drive it"
        )
        return Check(self.name, "load-driven", "neutral", 1.0, reason, evidence)


# -- cache ------------------------------------------------------------------------------------

MISSES = re.compile(r"miss", re.IGNORECASE)
HITS = re.compile(r"hit_?ratio|hit_?rate|hits", re.IGNORECASE)
CACHE_METRICS = re.compile(r"cache|keyspace|evict|hit_?ratio|miss_?ratio", re.IGNORECASE)
CACHE_NAMES = re.compile(r"redis|memcache|valkey|keydb|dragonfly|hazelcast|cache", re.IGNORECASE)
REFUSAL_WORDS = ("connection refused", "econnrefused", "could not connect", "unable to connect")


def is_cache(service: str, facts: CaseFacts) -> bool:
    """A cache by its own metrics (misses, keyspace, evictions), its declared kind or its name."""
    if declared_kind(service) == "cache":
        return True
    exported = any(s == service and CACHE_METRICS.search(n) for s, n in facts.metric_names)
    return exported or bool(CACHE_NAMES.search(service))


class CacheActor(Actor):
    """A cache down or degraded: its callers refused or missing, the store behind it busier."""

    name = "cache"
    domains = frozenset({"cache"})

    def __init__(self) -> None:
        self.persistence = PersistenceActor(self.name, tuple(self.domains))

    def relevant(self, h: RootCause, facts: CaseFacts) -> bool:
        return super().relevant(h, facts) and is_cache(h.service, facts)

    def plan(self, h: RootCause, facts: CaseFacts) -> dict[str, str]:
        """Role -> expression (only the roles whose series exist)."""
        s, out = h.service, dict[str, str]()
        callers = callers_of(s, facts)
        for i, c in enumerate(callers):
            words = [f'count(logs({q(c)}, message~{q(s)}, level="ERROR"))']
            out[f"named_{i}"] = words[0]
            out[f"refused_{i}"] = _any_lines(c, REFUSAL_WORDS)
        out["refused_own"] = _any_lines(s, REFUSAL_WORDS)
        miss = metric_of(facts, s, MISSES)
        if miss:
            m = _metric(s, miss)
            out |= {
                "miss_z": f"zscore({m})",
                "miss_change": f"change({m})",
                "miss_onset": f"onset({m})",
            }
        hit = metric_of(facts, s, HITS)
        if hit and hit != miss:
            out["hit_change"] = f"change({_metric(s, hit)})"
        for j, store in enumerate(self._stores(s, callers, facts)):
            rate = metric_of(facts, store, REQUESTS)
            if rate:
                out[f"store_change_{j}:{store}"] = f"change({_metric(store, rate)})"
                out[f"store_onset_{j}:{store}"] = f"onset({_metric(store, rate)})"
        return out

    def _stores(self, cache: str, callers: Sequence[str], facts: CaseFacts) -> list[str]:
        """The stores behind the cache: databases its callers also call (cache-aside)."""
        behind = {x for c in callers for x in facts.callees.get(c, ()) if x != cache}
        return sorted(x for x in behind if is_store(x, facts))[:SIDE]

    def playbook(self, h: RootCause, facts: CaseFacts) -> list[str]:
        own = self.persistence.playbook(h, facts) if self.persistence.relevant(h, facts) else []
        return [*own, *self.plan(h, facts).values()]

    def weigh(self, h: RootCause, facts: CaseFacts, results: Results) -> list[Check]:
        v = {role: number(results, e) for role, e in self.plan(h, facts).items()}
        checks = []
        if self.persistence.relevant(h, facts):
            checks += self.persistence.weigh(h, facts, results)
        down, misses = self._down(h, v), self._misses(v)
        checks += _either(self.name, "cache down or degraded", down, misses)
        failed = _earliest([v.get("miss_onset", (None, None))[0]])
        checks.append(self._store(v, failed))
        return checks

    def _down(self, h: RootCause, v: dict[str, tuple[float | None, Evidence | None]]) -> Check:
        """Callers' error lines that name the cache, with a refusal: nothing listens there."""
        named = [(x, ev) for r, (x, ev) in v.items() if r.startswith("named_") and x is not None]
        refused = [(x, ev) for r, (x, ev) in v.items() if r.startswith("refused") and x is not None]
        n_named = sum(x for x, _ in named)
        n_refused = sum(x for x, _ in refused)
        evidence = _evidence(*(ev for x, ev in [*refused, *named] if x))
        if n_refused >= LINES and n_named >= LINES:
            reason = (
                f"{n_refused:.0f} 'connection refused' lines; "
                f"callers' errors name {h.service} {n_named:.0f} times"
            )
            return Check(self.name, "callers refused", "supports", SUPPORTS, reason, evidence)
        if not named and not refused:
            return Check(self.name, "callers refused", "missing", 1.0, "no callers' logs")
        reason = f"callers' errors name it {n_named:.0f} times, {n_refused:.0f} refusals"
        return Check(
            self.name,
            "callers refused",
            "refutes" if n_named < LINES else "neutral",
            1.0,
            reason,
            evidence,
        )

    def _misses(self, v: dict[str, tuple[float | None, Evidence | None]]) -> Check:
        """Degraded: misses well up on the baseline (or hits down)."""
        z, z_ev = v.get("miss_z", (None, None))
        change, change_ev = v.get("miss_change", (None, None))
        hit, hit_ev = v.get("hit_change", (None, None))
        evidence = _evidence(change_ev, z_ev, hit_ev)
        if z is not None and z >= 3.0 and change is not None and change >= 2.0:
            return Check(
                self.name,
                "misses",
                "supports",
                SUPPORTS,
                f"miss ratio x{change:.3g} (z {z:.1f})",
                evidence,
            )
        if hit is not None and hit <= 0.5:
            return Check(
                self.name, "misses", "supports", SUPPORTS, f"hit ratio x{hit:.2f}", evidence
            )
        if z is None and hit is None:
            return Check(self.name, "misses", "missing", 1.0, "no miss or hit series")
        return Check(self.name, "misses", "refutes", 1.0, "misses at their baseline", evidence)

    def _store(
        self, v: dict[str, tuple[float | None, Evidence | None]], failed: float | None
    ) -> Check:
        """The store behind it took the misses: its request rate rose after the cache failed."""
        stores = sorted({r.split(":", 1)[1] for r in v if r.startswith("store_change_")})
        if not stores:
            return Check(
                self.name,
                "store takes the misses",
                "missing",
                1.0,
                "no store behind it with a request rate",
            )
        words, evidence = list[str](), list[Evidence]()
        for j, store in enumerate(stores):
            change, ev = v.get(f"store_change_{j}:{store}", (None, None))
            onset, onset_ev = v.get(f"store_onset_{j}:{store}", (None, None))
            evidence += _evidence(ev, onset_ev)
            if change is None:
                continue
            after = onset is not None and (failed is None or onset >= failed - LEAD_S)
            if change >= LOAD_UP and after:
                reason = f"{store} requests x{change:.2f} after the cache failed"
                return Check(
                    self.name,
                    "store takes the misses",
                    "supports",
                    SUPPORTS,
                    reason,
                    tuple(evidence),
                )
            words.append(f"{store} x{change:.2f}")
        reason = "stores behind it unchanged: " + (", ".join(words) or "no rate")
        return Check(self.name, "store takes the misses", "neutral", 1.0, reason, tuple(evidence))


# -- queue ------------------------------------------------------------------------------------

CPU = re.compile(r"cpu", re.IGNORECASE)
REBALANCE_WORDS = ("rebalanc", "revoking", "consumer group", "poll timeout", "max.poll")


class QueueActor(Actor):
    """Consumer lag: is the consumer slow, or does the producer publish more than it can take?"""

    name = "queue"
    domains = frozenset({"queue"})

    def __init__(self) -> None:
        self.persistence = PersistenceActor(self.name, tuple(self.domains))

    def plan(self, h: RootCause, facts: CaseFacts) -> dict[str, str]:
        """Role -> expression (only the roles whose series exist)."""
        s, out = h.service, dict[str, str]()
        spans = f"spans({q(s)})"
        out["p90"] = f"latency_p(90, {spans}) / latency_p(90, {spans}[baseline])"
        out["taken"] = f"change({spans})"
        out["span_errors"] = f"error_ratio({spans})"
        cpu = metric_of(facts, s, CPU)
        if cpu:
            out["cpu"] = f"change({_metric(s, cpu)})"
        latency = metric_of(facts, s, LATENCY)
        if latency:
            out["latency"] = f"change({_metric(s, latency)})"
        out["rebalance"] = _any_lines(s, REBALANCE_WORDS)
        if (s, h.indicator) in facts.metric_names:
            out["lag_onset"] = f"onset({_metric(s, h.indicator)})"
        for j, up in enumerate(self._upstream(s, facts)):
            out[f"publish_{j}:{up}"] = f"change(spans({q(up)}))"
            rate = metric_of(facts, up, REQUESTS)
            if rate:
                out[f"publish_onset_{j}:{up}"] = f"onset({_metric(up, rate)})"
        return out

    def _upstream(self, consumer: str, facts: CaseFacts) -> list[str]:
        """Where its messages come from: the services that deliver to it (a broker, or the
        producer itself)."""
        return callers_of(consumer, facts)

    def playbook(self, h: RootCause, facts: CaseFacts) -> list[str]:
        own = self.persistence.playbook(h, facts) if self.persistence.relevant(h, facts) else []
        return [*own, *self.plan(h, facts).values()]

    def weigh(self, h: RootCause, facts: CaseFacts, results: Results) -> list[Check]:
        v = {role: number(results, e) for role, e in self.plan(h, facts).items()}
        checks = []
        if self.persistence.relevant(h, facts):
            checks += self.persistence.weigh(h, facts, results)
        flood = self._flood(v)
        checks.append(flood)
        checks.append(self._slow(v, flooded=flood.verdict == "refutes"))
        return checks

    def _flood(self, v: dict[str, tuple[float | None, Evidence | None]]) -> Check:
        """The producer floods: what is published rose (by half or more), before the lag."""
        lag_onset = v.get("lag_onset", (None, None))[0]
        ups = sorted(
            {r.split(":", 1)[1] for r in v if r.startswith("publish_") and "onset" not in r}
        )
        words, evidence = list[str](), list[Evidence]()
        for j, up in enumerate(ups):
            change, ev = v.get(f"publish_{j}:{up}", (None, None))
            onset, onset_ev = v.get(f"publish_onset_{j}:{up}", (None, None))
            evidence += _evidence(ev, onset_ev)
            if change is None:
                continue
            first = onset is None or lag_onset is None or onset <= lag_onset
            if change >= LOAD_UP and first:
                reason = f"{up} publishes x{change:.2f} before the lag: the producer floods it"
                return Check(
                    self.name, "producer flood", "refutes", REFUTES, reason, tuple(evidence)
                )
            words.append(f"{up} x{change:.2f}")
        if not words:
            return Check(self.name, "producer flood", "missing", 1.0, "no publish rate")
        reason = "publish rate as usual: " + ", ".join(words)
        return Check(self.name, "producer flood", "neutral", 1.0, reason, tuple(evidence))

    def _slow(self, v: dict[str, tuple[float | None, Evidence | None]], flooded: bool) -> Check:
        """The consumer is slow: each message takes longer, its CPU or errors are up, or its
        group keeps rebalancing."""
        reasons, evidence = list[str](), list[Evidence]()
        for role, label, limit in (
            ("p90", "processing p90", SLOWER),
            ("latency", "latency", SLOWER),
            ("cpu", "CPU", SLOWER),
        ):
            x, ev = v.get(role, (None, None))
            if x is not None and x >= limit:
                reasons.append(f"{label} x{x:.3g}")
                evidence += _evidence(ev)
        errors, err_ev = v.get("span_errors", (None, None))
        if errors is not None and errors >= 0.05:
            reasons.append(f"{errors:.0%} of its spans fail")
            evidence += _evidence(err_ev)
        lines, lines_ev = v.get("rebalance", (None, None))
        if lines is not None and lines >= LINES:
            reasons.append(f"{lines:.0f} rebalance lines")
            evidence += _evidence(lines_ev)
        if not reasons:
            return Check(
                self.name, "consumer slow", "neutral", 1.0, "the consumer works at its usual pace"
            )
        if flooded:
            reason = "busier, but with more messages: " + "; ".join(reasons)
            return Check(self.name, "consumer slow", "neutral", 1.0, reason, tuple(evidence))
        return Check(
            self.name, "consumer slow", "supports", SUPPORTS, "; ".join(reasons), tuple(evidence)
        )


def _either(actor: str, name: str, a: Check, b: Check) -> list[Check]:
    """Two signs of one fault: either one supports it (the other is then no alibi); both
    absent where the data was there speak against it, once."""
    if "supports" in (a.verdict, b.verdict):
        return [c if c.verdict == "supports" else replace(c, verdict="neutral") for c in (a, b)]
    if "refutes" in (a.verdict, b.verdict):
        reason = f"{a.reason}; {b.reason}"
        return [Check(actor, name, "refutes", 0.5, reason, a.evidence + b.evidence)]
    return [a, b]
