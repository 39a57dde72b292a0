"""Notifications out, against a scripted receiver on 127.0.0.1: bodies, retries, giving up,
a dead receiver, secrets, draining."""

from __future__ import annotations

import json
import logging
import socket
import time
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
from pydantic import ValidationError

from loopback import Loopback, Reply, Request
from warroom.server import notify
from warroom.server.model import Status, Summary
from warroom.server.notify import (
    Notifier,
    Retry,
    Target,
    json_message,
    retry_after,
    slack_message,
    title,
)

SECRET_PATH = "/services/T0001/B0002/XyZsEcReT0123456789"
TOKEN = "Bearer s3cr3t-header-token"
SUMMARY = Summary(
    investigation_id="inv-1",
    service="checkout",
    status=Status.done,
    culprit="orders-db",
    confidence=0.82,
    evidence="orders-db connections 12 -> 95 (x7.9) from 10:03:20, 40 s before checkout errors",
    url="http://warroom.example:8080/investigations/inv-1",
    fault_type="cpu",
    path=("orders-db", "orders", "checkout"),
)


class FakeTime:
    """A clock that only moves when the notifier sleeps: retries take no real time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        """Now."""
        return self.now

    def sleep(self, seconds: float) -> None:
        """Move on instead of waiting."""
        self.waits.append(seconds)
        self.now += seconds


def notifier(targets: list[Target], fake: FakeTime, **kwargs: Any) -> Notifier:
    """A notifier on fake time with no jitter spread (jitter 1.0: the whole backoff)."""
    kwargs.setdefault("retry", Retry(attempts=4, deadline_s=60, base_s=1.0, max_s=30))
    return Notifier(targets, clock=fake.clock, sleep=fake.sleep, jitter=lambda: 1.0, **kwargs)


def deliver(target: Target, fake: FakeTime | None = None, **kwargs: Any) -> Notifier:
    """Send SUMMARY to one target and drain."""
    n = notifier([target], fake or FakeTime(), **kwargs)
    n.send(SUMMARY)
    assert n.close(timeout=10)
    return n


def slack(url: str, **fields: Any) -> Target:
    """A Slack target at the loopback server's secret path."""
    return Target(kind="slack", url=url + SECRET_PATH, **fields)


# --- bodies -----------------------------------------------------------------------------


def test_a_slack_message_as_an_incoming_webhook_takes_it() -> None:
    with Loopback({SECRET_PATH: Reply(b"ok", 200, {"Content-Type": "text/plain"})}) as server:
        n = deliver(slack(server.url))
    (request,) = server.requests
    assert request.method == "POST" and request.headers["content-type"] == "application/json"
    sent = json.loads(request.body)
    assert sent == slack_message(SUMMARY)
    assert "orders-db" in sent["text"] and SUMMARY.url in sent["text"]
    header, fields, evidence, path, link = sent["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": title(SUMMARY)}}
    assert "orders-db (cpu) at 82% confidence" in header["text"]["text"]
    assert [f["type"] for f in fields["fields"]] == ["mrkdwn"] * 4
    assert "*Culprit*\n`orders-db`" in fields["fields"][0]["text"]
    assert fields["fields"][1]["text"] == "*Confidence*\n82%"
    assert evidence["text"]["text"] == "*Evidence*\n" + SUMMARY.evidence.replace(">", "&gt;")
    assert path["type"] == "context" and "orders-db -&gt; orders -&gt; checkout" in str(path)
    assert link["text"]["text"] == f"<{SUMMARY.url}|Open the report>"
    (result,) = n.results
    assert result.ok and result.attempts == 1 and result.status == 200 and result.error == ""
    assert result.target == f"slack {server.url}"  # scheme and host only
    assert n.stats()[0].sent == 1


def test_a_json_message_carries_the_summary() -> None:
    with Loopback({"/hook": Reply({"accepted": True}, 202)}) as server:
        n = deliver(Target(kind="json", url=server.url + "/hook", headers={"X-Tenant": "a"}))
    (request,) = server.requests
    sent = json.loads(request.body)
    assert sent == json_message(SUMMARY)
    assert sent["kind"] == "warroom.investigation" and sent["version"] == 1
    assert sent["summary"] == {
        "investigation_id": "inv-1",
        "service": "checkout",
        "status": "done",
        "culprit": "orders-db",
        "confidence": 0.82,
        "fault_type": "cpu",
        "evidence": SUMMARY.evidence,
        "path": ["orders-db", "orders", "checkout"],
        "url": SUMMARY.url,
    }
    assert request.headers["x-tenant"] == "a"
    assert n.results[0].ok and n.results[0].status == 202


def test_inconclusive_and_failed_say_so() -> None:
    vague = Summary("i", "checkout", Status.inconclusive, None, 0.2, "nothing stood out", "")
    assert title(vague) == "warroom: checkout: inconclusive, no culprit named"
    assert "Open the report" not in json.dumps(slack_message(vague))  # no link without a URL
    assert slack_message(vague)["blocks"][1]["fields"][0]["text"] == "*Culprit*\nnone named"
    broken = Summary("i", None, Status.failed, None, None, "prometheus: connection refused", "u")
    assert title(broken) == "warroom: the investigation of an alert failed"
    assert json_message(broken)["summary"]["confidence"] is None
    odd = Summary("i", "a", Status.done, "db", float("nan"), "e", "u")
    assert json_message(odd)["summary"]["confidence"] is None  # no NaN in JSON


def test_slack_text_is_escaped_and_cut_to_block_kit_limits() -> None:
    hostile = Summary(
        "i", "<!channel>", Status.done, "a&b`<x>", 0.5, "e" * 5000, "http://w/x?a=1&b=2|3"
    )
    message = slack_message(hostile)
    # mrkdwn would turn <!channel> into a ping; plain_text (the header) shows it as written
    mrkdwn = json.dumps([message["text"], message["blocks"][1:]])
    assert "<!channel>" not in mrkdwn and "&lt;!channel&gt;" in mrkdwn
    assert message["blocks"][0]["text"]["type"] == "plain_text"
    assert "`a&amp;b'&lt;x&gt;`" in message["blocks"][1]["fields"][0]["text"]
    assert len(message["blocks"][0]["text"]["text"]) <= 150
    assert len(message["blocks"][2]["text"]["text"]) <= 3000 and len(message["text"]) <= 3000
    assert message["blocks"][-1]["text"]["text"] == "<http://w/x?a=1&amp;b=2%7C3|Open the report>"


# --- retries ----------------------------------------------------------------------------


def test_a_503_is_retried_after_a_backoff() -> None:
    fake = FakeTime()
    with Loopback({SECRET_PATH: [Reply(b"busy", 503), Reply(b"ok")]}) as server:
        n = deliver(slack(server.url), fake)
    assert len(server.requests) == 2
    assert server.requests[0].body == server.requests[1].body
    assert fake.waits == [1.0]
    (result,) = n.results
    assert result.ok and result.attempts == 2 and n.stats()[0].retries == 1


def test_backoff_doubles_with_jitter_and_stops_at_its_cap() -> None:
    fake = FakeTime()
    retry = Retry(attempts=6, deadline_s=1000, base_s=1.0, max_s=5.0)
    with Loopback({"/h": Reply(b"", 502)}) as server:
        n = Notifier(
            [Target(kind="json", url=server.url + "/h")],
            retry=retry,
            clock=fake.clock,
            sleep=fake.sleep,
            jitter=lambda: 0.0,  # the least of the spread: half of each backoff
        )
        n.send(SUMMARY)
        assert n.close(10)
    assert fake.waits == [0.5, 1.0, 2.0, 2.5, 2.5]
    assert n.results[0].attempts == 6 and not n.results[0].ok


def test_a_429_waits_its_retry_after() -> None:
    fake = FakeTime()
    routes = {SECRET_PATH: [Reply(b"rate_limited", 429, {"Retry-After": "7"}), Reply(b"ok")]}
    with Loopback(routes) as server:
        n = deliver(slack(server.url), fake)
    assert fake.waits == [7.0]
    assert n.results[0].ok and n.results[0].attempts == 2


def test_giving_up_after_n_attempts() -> None:
    fake = FakeTime()
    with Loopback({SECRET_PATH: Reply(b"oops", 500)}) as server:
        n = deliver(slack(server.url), fake, retry=Retry(attempts=3, base_s=1.0))
    assert len(server.requests) == 3 and fake.waits == [1.0, 2.0]
    (result,) = n.results
    assert not result.ok and result.attempts == 3 and result.status == 500
    assert result.error == "HTTP 500: oops"
    stats = n.stats()[0]
    assert (stats.sent, stats.failed, stats.dropped, stats.retries) == (0, 1, 0, 2)


def test_giving_up_at_the_deadline() -> None:
    fake = FakeTime()
    routes = {"/h": Reply(b"", 429, {"Retry-After": "3600"})}  # longer than the deadline
    with Loopback(routes) as server:
        n = deliver(Target(kind="json", url=server.url + "/h"), fake)
    assert len(server.requests) == 1 and fake.waits == []
    assert "past the deadline" in n.results[0].error and n.results[0].status == 429


def test_a_client_error_is_not_retried() -> None:
    with Loopback({SECRET_PATH: Reply(b"invalid_token", 403)}) as server:
        n = deliver(slack(server.url))
    assert len(server.requests) == 1
    assert n.results[0].error == "HTTP 403: invalid_token" and n.results[0].attempts == 1


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_refused_connection_is_retried_then_given_up() -> None:
    fake = FakeTime()
    target = slack(f"http://127.0.0.1:{free_port()}")
    n = deliver(target, fake, retry=Retry(attempts=3, base_s=0.5))
    (result,) = n.results
    assert not result.ok and result.attempts == 3 and result.status is None
    assert result.error.startswith("connection failed (ConnectError")
    assert fake.waits == [0.5, 1.0]


def test_retry_after_reads_seconds_and_dates() -> None:
    wall = datetime(2024, 3, 12, 10, 0, tzinfo=UTC).timestamp()
    later = format_datetime(datetime(2024, 3, 12, 10, 0, 30, tzinfo=UTC), usegmt=True)
    assert retry_after("12", wall) == 12.0
    assert retry_after(later, wall) == 30.0
    assert retry_after("-5", wall) == 0.0
    assert retry_after("soon", wall) is None and retry_after(None, wall) is None
    assert retry_after("inf", wall) is None


# --- never blocking, draining -----------------------------------------------------------


def test_a_dead_receiver_never_blocks_send() -> None:
    stuck = Reply(b"", 200, delay_s=5.0)  # accepts the connection, never answers in time
    with Loopback({"/h": stuck}) as server:
        target = Target(kind="json", url=server.url + "/h", timeout_s=5.0)
        n = Notifier([target], queue_size=3)
        started = time.perf_counter()
        for _ in range(50):
            n.send(SUMMARY)
        assert time.perf_counter() - started < 0.5
        stats = n.stats()[0]
        assert stats.dropped >= 46 and stats.queued <= 3  # one in flight, three waiting
        started = time.perf_counter()
        assert n.close(timeout=0.2) is False  # could not drain: says so, and returns
        assert time.perf_counter() - started < 2.0
    assert all("queue full" in r.error for r in n.results[:46])
    deadline = time.monotonic() + 3.0  # the server has gone: the one in flight ends
    while len(n.results) < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    waiting = [r for r in n.results if "closed before its turn" in r.error]
    # three waited; the thread may have taken the first before the fourth came (then two)
    assert len(waiting) in (2, 3) and all(r.attempts == 0 for r in waiting)
    assert sum(s.sent + s.failed + s.dropped for s in n.stats()) == 50


def test_a_dead_receiver_does_not_delay_other_targets() -> None:
    routes = {"/dead": Reply(b"", 200, delay_s=5.0), "/ok": Reply(b"ok")}
    with Loopback(routes) as server:
        dead = Target(kind="json", url=server.url + "/dead", name="dead")
        alive = Target(kind="json", url=server.url + "/ok", name="alive")
        n = Notifier([dead, alive])
        n.send(SUMMARY)
        deadline = time.monotonic() + 3.0
        while not n.results and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [r.target for r in n.results] == ["alive"]
        n.close(timeout=0.1)


def test_close_drains_what_is_queued() -> None:
    slow = Reply(b"ok", 200, delay_s=0.03)
    with Loopback({"/h": slow}) as server:
        n = Notifier([Target(kind="json", url=server.url + "/h")])
        for i in range(5):
            n.send(Summary(f"inv-{i}", "a", Status.done, "b", 0.9, "e", "u"))
        assert n.close(timeout=10) is True
    assert [r.investigation_id for r in n.results] == [f"inv-{i}" for i in range(5)]
    assert n.stats()[0].sent == 5 and n.stats()[0].queued == 0
    assert len(server.requests) == 5


def test_send_after_close_is_dropped_not_raised() -> None:
    n = Notifier([Target(kind="json", url="http://127.0.0.1:9/h")])
    assert n.close(timeout=1) is True  # nothing was ever sent: no thread to stop
    n.send(SUMMARY)
    assert n.results[0].error == "notifier closed" and n.stats()[0].dropped == 1


def test_a_bug_never_reaches_the_caller_nor_kills_the_lane(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    n = Notifier([Target(kind="json", url="http://127.0.0.1:9/h")])
    n.send("not a summary")  # type: ignore[arg-type]
    assert n.results == () and n.stats()[0].queued == 0
    real = notify.encode
    calls: list[str] = []

    def once_broken(kind: str, summary: Summary) -> bytes:
        calls.append(summary.investigation_id)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return real(kind, summary)

    monkeypatch.setattr(notify, "encode", once_broken)
    with Loopback({"/h": Reply(b"ok")}) as server:
        n = Notifier([Target(kind="json", url=server.url + "/h")])
        n.send(replace(SUMMARY, investigation_id="first"))
        n.send(replace(SUMMARY, investigation_id="second"))
        assert n.close(timeout=10)
    first, second = n.results
    assert (first.investigation_id, first.ok, first.error) == (
        "first",
        False,
        "crashed (see the log)",
    )
    assert (second.investigation_id, second.ok) == ("second", True)


# --- secrets ----------------------------------------------------------------------------


def echo(request: Request) -> Reply:
    """A receiver that repeats what it was sent in its error (some do)."""
    said = f"bad token {request.headers.get('authorization')} for {request.path}"
    return Reply(said.encode(), 400)


def test_secrets_never_appear_in_results_logs_or_reprs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="warroom.server.notify")
    with Loopback({SECRET_PATH: echo}) as server:
        target = slack(server.url, headers={"Authorization": TOKEN})
        n = deliver(target)
    assert server.requests[0].headers["authorization"] == TOKEN  # it was sent
    (result,) = n.results
    assert result.error.startswith("HTTP 400: bad token [REDACTED] for [REDACTED]")
    shown = " ".join([repr(result), repr(n.stats()), repr(target), str(target), caplog.text])
    for secret in ("XyZsEcReT0123456789", "s3cr3t-header-token", "T0001/B0002"):
        assert secret not in shown
    assert "slack http://127.0.0.1:" in caplog.text  # the log still says which target


def test_a_connection_error_does_not_show_the_url() -> None:
    port = free_port()
    target = Target(kind="slack", url=f"http://user:pw12345@127.0.0.1:{port}{SECRET_PATH}")
    n = deliver(target, retry=Retry(attempts=1))
    assert target.label == f"slack http://127.0.0.1:{port}"
    assert "XyZsEcReT" not in repr(n.results) and "pw12345" not in repr(n.results)


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"kind": "slack", "url": "ftp://hooks.example" + SECRET_PATH}, "http:// or https://"),
        ({"kind": "slack", "url": "https:///no-host"}, "with a host"),
        ({"kind": "slack", "url": "https://h/a b"}, "spaces"),
        ({"kind": "teams", "url": "https://h/x"}, "kind"),
        ({"kind": "json", "url": "https://h/x", "secret": "x"}, "secret"),
        ({"kind": "json", "url": "https://h/x", "headers": {"A B": "x"}}, "not an HTTP token"),
        ({"kind": "json", "url": "https://h/x", "headers": {"A": "x\r\nB: y"}}, "line break"),
        ({"kind": "json", "url": "https://h/x", "timeout_s": 0}, "timeout_s"),
    ],
)
def test_targets_are_checked_without_echoing_them(fields: dict[str, Any], why: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Target.model_validate(fields)
    assert why in str(caught.value)
    assert "XyZsEcReT" not in str(caught.value)
