"""Fault types from the words the failure used."""

from __future__ import annotations

from warroom.causal.fault_types import (
    texts_about,
    type_from_changes,
    type_from_text,
    unanswered_type,
)
from warroom.model import Event, Evidence, Finding, IndicatorKind, Modality


def _finding(service: str, statement: str) -> Finding:
    evidence = Evidence(id="x", statement=statement, value=1.0)
    return Finding(service, "log:x", IndicatorKind.SYMPTOM, Modality.LOG, 5.0, 0.0, 1, (evidence,))


def test_standard_messages_name_their_fault() -> None:
    cases = {
        "java.net.UnknownHostException: geo.prod.svc: Name or service not known": "dns",
        "javax.net.ssl.SSLHandshakeException: PKIX path validation failed": "tls",
        "java.io.IOException: No space left on device": "disk",
        "Lock wait timeout exceeded; try restarting transaction": "db-lock",
        "RejectedExecutionException: Task rejected from ThreadPoolExecutor": "thread-pool",
        "HTTP 429 Too Many Requests: rate limit exceeded": "dependency",
        "java.lang.NullPointerException": None,
    }
    for text, fault in cases.items():
        assert type_from_text([text]) == fault, text


def test_callers_lines_count_only_when_they_name_the_service_itself() -> None:
    callers = [
        _finding("api", "call to svc-1 failed: UnknownHostException: svc-1.prod"),
        _finding("api", "call to svc-10 failed: SSLHandshakeException"),
    ]
    assert type_from_text(texts_about("svc-1", [], callers)) == "dns"
    assert type_from_text(texts_about("svc-10", [], callers)) == "tls"
    assert texts_about("svc", [], callers) == []


def test_a_config_change_just_before_the_onset_names_a_config_fault() -> None:
    events = [Event(995.0, "api", "config", "timeout 2000 -> 1"), Event(990.0, "db", "deploy", "")]
    assert type_from_changes(events, "api", 1000.0) == "config"
    assert type_from_changes(events, "db", 1000.0) is None


def test_a_callee_that_stopped_answering_is_a_cache_fault_only_when_it_is_a_cache() -> None:
    hits = Finding("store", "redis_keyspace_hits_total", IndicatorKind.RESOURCE, Modality.METRIC,
                   4.0, 0.0, -1, (Evidence(id="m", statement="hits fell", value=0.0),))  # fmt: skip
    assert unanswered_type("redis", []) == "cache"
    assert unanswered_type("session-store", [hits]) == "cache"  # its own metrics say so
    assert unanswered_type("payment-gateway", []) == "dependency"
    assert unanswered_type("postgres", []) == "dependency"
