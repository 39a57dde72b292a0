"""Name the fault type from the words the failure itself used.

The ranking knows *where* (the culprit) and *which signal* (its strongest finding); the error
lines say *what*: "UnknownHostException" is DNS whatever metric moved, "No space left on
device" is a full disk. The table maps the standard messages of the JVM, glibc, Go, MySQL,
PostgreSQL, HTTP and Kubernetes to fault types; the first pattern that matches wins, so the
more specific ones come first. Text is read from the culprit's own findings and from its direct
callers' findings that name it (a DNS failure is reported only by the clients).

A refused connection alone says only "nothing listens"; it names a cache fault when the refusal
names a cache (redis-cart, :6379) or comes with the service's own cache metrics — a dead cache
is otherwise read as a code exception in its callers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from warroom.experts.changes import changes_before
from warroom.model import Event, Finding

KEYWORD_TYPES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (fault, re.compile(pattern, re.IGNORECASE))
    for fault, pattern in (
        (
            "dns",
            r"UnknownHost|NXDOMAIN|SERVFAIL|Name or service not known|no such host"
            r"|Temporary failure in name resolution",
        ),
        (
            "tls",
            r"SSLHandshake|certificate (has )?expired|CertificateExpired|x509:"
            r"|TLS handshake error|bad certificate",
        ),
        ("disk", r"No space left on device|ENOSPC|disk (is )?full|DiskFull"),
        ("db-lock", r"lock wait|deadlock|waiting for (row |table )?lock|could not obtain lock"),
        (
            "thread-pool",
            r"RejectedExecution|thread pool (is )?(full|exhausted)"
            r"|all worker threads busy",
        ),
        (
            "pool",
            r"acquiring connection|connection pool (is )?(full|exhausted)"
            r"|too many connections",
        ),
        ("memory", r"OutOfMemory|OOMKilled|Cannot allocate memory"),
        ("queue", r"rebalanc|consumer lag|revoking (assigned )?partitions"),
        ("retry-storm", r"retrying call|retry attempt|retries exhausted"),
        (
            "dependency",
            r"\b429\b|Too Many Requests|rate limit|HTTP 50[234]\b"
            r"|Service Unavailable from upstream",
        ),
    )
)


# A cache's own error replies (Redis, Memcached clients): the cache is the fault whatever else.
CACHE_ERRORS = re.compile(
    r"OOM command not allowed|LOADING Redis is loading|MISCONF Redis|CLUSTERDOWN"
    r"|READONLY You can't write|JedisConnectionException|RedisConnectionFailure"
    r"|RedisConnectionException|Could not connect to Redis|Unable to connect to Redis"
    r"|MemcachedException|SERVER_ERROR out of memory",
    re.IGNORECASE,
)
# Nothing listens: the process is down (a dropped packet times out, a bad name never resolves).
REFUSED = re.compile(r"connection refused|ECONNREFUSED|Error 111 connecting", re.IGNORECASE)
# What says a service is a cache: its kind in its name or port, or a cache's own metrics.
CACHE_NAMED = re.compile(
    r"(?<![a-z])(redis|memcache[d]?|valkey|keydb|dragonfly|hazelcast|elasticache)|cache"
    r"|:6379\b|:11211\b",
    re.IGNORECASE,
)
CACHE_METRIC = re.compile(
    r"cache_(miss|hit)|(miss|hit)_ratio|keyspace_(hits|misses)|evicted_keys|get_misses",
    re.IGNORECASE,
)
# Where the cache rule sits in the table: after the specific resource messages (a cache's
# callers may also say "pool exhausted" about their own pool), before retries and third
# parties (clients retry against a dead cache too).
CACHE_AFTER = "memory"


def type_from_text(texts: Iterable[str]) -> str | None:
    """The first fault type whose pattern matches any of the texts (table order decides)."""
    lines = list(texts)
    joined = "\n".join(lines)
    for fault, pattern in KEYWORD_TYPES:
        if pattern.search(joined):
            return fault
        if fault == CACHE_AFTER and _cache_down(lines, joined):
            return "cache"
    return None


def _cache_down(lines: list[str], joined: str) -> bool:
    """A cache's error reply, or connections refused where the cache is the one refusing: a
    refusal that names a cache, or a refusal next to the service's own cache metrics."""
    if CACHE_ERRORS.search(joined):
        return True
    refusals = [line for line in lines if REFUSED.search(line)]
    if not refusals:
        return False
    return any(CACHE_NAMED.search(line) for line in refusals) or bool(CACHE_METRIC.search(joined))


def unanswered_type(service: str, findings: Iterable[Finding]) -> str:
    """The type of a callee whose callers' calls fail before it answers, when no error line
    says more: a cache that stopped answering (its name or its own cache metrics say it is
    one) is a cache fault; anything else is a dependency its callers could not reach."""
    if CACHE_NAMED.search(service) or any(CACHE_METRIC.search(f.indicator) for f in findings):
        return "cache"
    return "dependency"


def texts_about(service: str, own: Iterable[Finding], callers: Iterable[Finding]) -> list[str]:
    """Evidence statements of the service's findings and of its callers' findings naming it."""
    texts = [e.statement for f in own for e in f.evidence]
    mention = re.compile(rf"(?<![\w-]){re.escape(service)}(?![\w-])")
    texts += [e.statement for f in callers for e in f.evidence if mention.search(e.statement)]
    return texts


def type_from_changes(events: Iterable[Event], service: str, onset: float | None) -> str | None:
    """'config' when a config change on the service shortly preceded its anomaly."""
    for change in changes_before(list(events), service, onset):
        if change.kind == "config":
            return "config"
    return None
