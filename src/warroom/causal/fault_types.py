"""Name the fault type from the words the failure itself used.

The ranking knows *where* (the culprit) and *which signal* (its strongest finding); the error
lines say *what*: "UnknownHostException" is DNS whatever metric moved, "No space left on
device" is a full disk. The table maps the standard messages of the JVM, glibc, Go, MySQL,
PostgreSQL, HTTP and Kubernetes to fault types; the first pattern that matches wins, so the
more specific ones come first. Text is read from the culprit's own findings and from its direct
callers' findings that name it (a DNS failure is reported only by the clients).
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


def type_from_text(texts: Iterable[str]) -> str | None:
    """The first fault type whose pattern matches any of the texts (table order decides)."""
    joined = "\n".join(texts)
    for fault, pattern in KEYWORD_TYPES:
        if pattern.search(joined):
            return fault
    return None


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
