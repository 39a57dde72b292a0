"""`warroom serve` over HTTP with a real SQLite repository: tokens, the webhook persisted before
its answer, repeats joining, bad payloads storing nothing, reports, pages, recovery.

The investigation itself is a scripted runner here (tests/integration runs the real one against
a real Prometheus and Alertmanager)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from warroom.server.app import ServerSettings, create_app
from warroom.server.model import InvestigationRecord, Status
from warroom.server.repository import Repository, default_url
from warroom.server.service import Service
from warroom.server.workers import Outcome

FIXTURES = Path(__file__).parents[2] / "fixtures" / "alertmanager"
TOKEN = "right-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Scripted:
    """A runner that answers at once (or waits for `gate`), recording what it ran."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.ran: list[str] = []
        self.gate = gate

    def __call__(self, record: InvestigationRecord) -> Outcome:
        if self.gate is not None:
            self.gate.wait(10)
        self.ran.append(record.id)
        report = {"culprit": {"service": "orders-db"}, "confidence": 0.9}
        page = f"<html><body>culprit orders-db for {record.request.service}</body></html>"
        return Outcome(Status.done, json.dumps(report), page, "orders-db", 0.9)


def _service(tmp_path: Path, runner: Scripted) -> Service:
    return Service(Repository(default_url(tmp_path)), runner, workers=1)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, Service, Scripted]]:
    runner = Scripted()
    service = _service(tmp_path, runner)
    app = create_app(ServerSettings(tokens=(TOKEN,)), service)  # type: ignore[arg-type]
    with TestClient(app) as http:
        yield http, service, runner


def _firing() -> bytes:
    return (FIXTURES / "firing-group.json").read_bytes()


def _wait_done(http: TestClient, investigation: str) -> dict[str, object]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        body = http.get(f"/api/v1/investigations/{investigation}", headers=AUTH).json()
        if body["status"] in ("done", "failed", "inconclusive"):
            return body  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"{investigation} not finished")


def _post(http: TestClient, body: bytes, headers: dict[str, str] | None = None) -> object:
    sent = {"Content-Type": "application/json", **AUTH, **(headers or {})}
    return http.post("/api/v1/alerts", content=body, headers=sent)


def test_every_route_but_health_needs_the_token(
    client: tuple[TestClient, Service, Scripted],
) -> None:
    http, _, _ = client
    assert http.get("/healthz").status_code == 200
    assert http.get("/readyz").json()["status"] == "ready"
    for path in ("/api/v1/investigations", "/metrics", "/openapi.json"):
        assert http.get(path).status_code == 401
        assert http.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert http.get(path, headers=AUTH).status_code == 200
    no_token = http.post(
        "/api/v1/alerts", content=_firing(), headers={"Content-Type": "application/json"}
    )
    assert no_token.status_code == 401 and no_token.headers["www-authenticate"].startswith("Bearer")
    paths = http.get("/openapi.json", headers=AUTH).json()["paths"]
    assert {"/api/v1/alerts", "/api/v1/investigations"} <= set(paths)
    page = http.get("/investigations/x", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/investigations/x"


def test_a_person_signs_in_with_the_token_and_reads_pages(
    client: tuple[TestClient, Service, Scripted],
) -> None:
    http, _, _ = client
    assert http.post("/login", data={"token": "wrong", "next": "/"}).status_code == 401
    signed = http.post(
        "/login", data={"token": TOKEN, "next": "//evil.example"}, follow_redirects=False
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/"
    assert "Investigations" in http.get("/").text  # the cookie now stands for the token


def test_a_notification_is_persisted_investigated_and_its_repeat_joins(
    client: tuple[TestClient, Service, Scripted],
) -> None:
    http, service, runner = client
    first = _post(http, _firing())
    assert first.status_code == 200  # type: ignore[attr-defined]
    created = first.json()["investigations"]  # type: ignore[attr-defined]
    assert len(created) == 3 and all(item["new"] for item in created)
    repeat = _post(http, _firing()).json()["investigations"]  # type: ignore[attr-defined]
    assert [i["id"] for i in repeat] == [i["id"] for i in created] and not any(
        i["new"] for i in repeat
    )
    done = _wait_done(http, created[0]["id"])
    assert done["culprit"] == "orders-db" and done["notifications"] == 2
    assert done["report"] == {"culprit": {"service": "orders-db"}, "confidence": 0.9}
    assert service.repository.notifications_count() == 2
    page = http.get(f"/investigations/{created[0]['id']}", headers=AUTH)
    assert "culprit orders-db" in page.text
    listing = http.get("/api/v1/investigations?limit=2", headers=AUTH).json()
    assert listing["total"] == 3 and len(listing["items"]) == 2
    metrics = http.get("/metrics", headers=AUTH).text
    assert "warroom_notifications_total 2.0" in metrics


@pytest.mark.parametrize(
    ("body", "headers", "status", "words"),
    [
        (b"not json", {}, 400, "JSON"),
        (b'{"version": "3", "alerts": []}', {}, 400, "version"),
        (b"{}", {"Content-Type": "text/plain"}, 415, "application/json"),
        (b" " * (2 * 1024 * 1024), {}, 413, "body over"),
    ],
)
def test_a_bad_payload_is_refused_naming_why_and_nothing_is_stored(
    client: tuple[TestClient, Service, Scripted],
    body: bytes,
    headers: dict[str, str],
    status: int,
    words: str,
) -> None:
    http, service, _ = client
    answer = _post(http, body, headers)
    assert answer.status_code == status  # type: ignore[attr-defined]
    assert words in answer.json()["detail"]  # type: ignore[attr-defined]
    assert service.repository.notifications_count() == 0


def test_the_investigations_api_takes_a_window(
    client: tuple[TestClient, Service, Scripted],
) -> None:
    http, _, _ = client
    body = {"service": "checkout", "start": "2026-12-03T02:00:00Z", "end": "2026-12-03T02:30:00Z"}
    answer = http.post("/api/v1/investigations", json=body, headers=AUTH)
    assert answer.status_code == 202 and answer.json()["new"]
    assert _wait_done(http, answer.json()["id"])["status"] == "done"
    bad = http.post(
        "/api/v1/investigations", json={"service": "x", "start": 5, "end": 1}, headers=AUTH
    )
    assert bad.status_code == 400


def test_no_token_configured_refuses_to_start(tmp_path: Path) -> None:
    from warroom.errors import InputError

    with pytest.raises(InputError, match="WARROOM_API_TOKENS"):
        create_app(ServerSettings(), _service(tmp_path, Scripted()))


def test_a_server_killed_mid_investigation_finishes_it_after_a_restart(tmp_path: Path) -> None:
    gate = threading.Event()  # never opened: the first server dies with the work running
    first = _service(tmp_path, Scripted(gate))
    first.start()
    (item, *_) = first.ingest_alerts(_firing(), "application/json")["investigations"]
    deadline = time.monotonic() + 5
    while first.repository.get(item["id"]).status is not Status.running:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    first.repository.close()  # what a SIGKILL leaves: the row says running, nobody runs it
    runner = Scripted()
    second = _service(tmp_path, runner)
    second.start()
    try:
        deadline = time.monotonic() + 10
        while second.repository.get(item["id"]).status is not Status.done:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert item["id"] in runner.ran
    finally:
        first.workers.stop(timeout=0)  # the "dead" server's thread ends quietly
        gate.set()
        second.stop()


def test_secrets_in_quoted_log_lines_are_redacted_before_a_report_is_stored() -> None:
    from warroom.model import Evidence, Incident, Report, RootCause, TimeRange
    from warroom.server.workers import redacted

    line = Evidence("e1", "new log line: login failed password=hunter2 token=abc123", 1.0)
    cause = RootCause("auth", "log", "code-exception", 1.0, None, ("auth",), 1.0, (line,))
    incident = Incident("i", TimeRange(0, 60), 30)
    clean = redacted(Report(incident, (cause,), 0.9, notes=("api_key=sk-live-123",)))
    text = clean.candidates[0].evidence[0].statement + " ".join(clean.notes)
    assert "hunter2" not in text and "abc123" not in text and "sk-live-123" not in text
    assert "login failed" in text  # the evidence itself stays


def test_a_finished_investigation_is_told_to_the_webhooks_with_its_link(tmp_path: Path) -> None:
    from loopback import Loopback, Reply
    from warroom.server.notify import Notifier, Target

    with Loopback({"/hook": Reply({"ok": True})}) as receiver:
        notifier = Notifier([Target(kind="json", url=f"{receiver.url}/hook")])
        service = Service(
            Repository(default_url(tmp_path)),
            Scripted(),
            notifier=notifier,
            workers=1,
            public_url="https://warroom.example",
        )
        service.start()
        try:
            (item, *_) = service.ingest_alerts(_firing(), "application/json")["investigations"]
            deadline = time.monotonic() + 10
            while not receiver.requests:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        finally:
            service.stop()
    sent = json.loads(receiver.requests[0].body)["summary"]
    assert sent["culprit"] == "orders-db" and sent["status"] == "done"
    assert sent["url"].startswith("https://warroom.example/investigations/")
