"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1: a stdlib
http.server in a thread serving /v1/chat/completions with scripted behaviour per model name."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from warroom.llm import (
    Message,
    ModelBadOutput,
    ModelTimeout,
    ModelUnavailable,
    Router,
    narrate,
    with_narrative,
)
from warroom.llm.audit import AuditLog
from warroom.llm.openai_compat import OpenAICompatible
from warroom.llm.router import Route
from warroom.model import Evidence, Incident, Report, RootCause, TimeRange

SCHEMA = {"title": "Reply", "type": "object", "properties": {"ok": {"type": "boolean"}}}
HI = [Message("system", "be brief"), Message("user", "hi")]


class Handler(BaseHTTPRequestHandler):
    """Behaviour by model name: ok, flaky (500 once), down (always 503), slow, old (no
    json_schema), garbage (not a completion), narrator (a grounded narrative)."""

    server: Server

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(
            {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
        )
        model = body["model"]
        count = sum(1 for r in self.server.requests if r["body"]["model"] == model)
        fmt = body.get("response_format", {}).get("type")
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": "not found"})
        elif model == "flaky" and count == 1 or model == "down":
            self._send(500 if model == "flaky" else 503, {"error": "overloaded"})
        elif model == "slow":
            time.sleep(1.0)
            self._send(200, _completion('{"ok": true}'))
        elif model == "old" and fmt == "json_schema":
            self._send(400, {"error": "response_format json_schema not supported"})
        elif model == "garbage":
            self._send(200, {"id": "x"})
        elif model == "narrator":
            self._send(200, _completion(json.dumps(NARRATIVE)))
        else:
            self._send(200, _completion(json.dumps({"ok": True, "format": fmt})))

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        # The client may have given up (the timeout test): then there is nothing to answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[dict[str, Any]]


NARRATIVE = {
    "summary": "orders-db connections went 12 -> 95 (x7.9) and checkout failed.",
    "steps": ["Raise the orders-db pool limit."],
}


def _completion(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
    }


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server(("127.0.0.1", 0), Handler)
    srv.requests = []
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def _backend(server: Server, model: str, **kw: Any) -> OpenAICompatible:
    host, port = server.server_address[:2]
    spec_url = f"http://{host!s}:{port}/v1"
    return OpenAICompatible(spec_url, model, backoff=0.01, **kw)


def test_structured_output_request(server: Server) -> None:
    backend = _backend(server, "ok", api_key="sk-local-test")
    text = backend.complete(HI, SCHEMA, 5.0, max_tokens=50, temperature=0.1)
    assert json.loads(text) == {"ok": True, "format": "json_schema"}
    [request] = server.requests
    body = request["body"]
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == "Bearer sk-local-test"
    assert body["response_format"]["json_schema"] == {"name": "Reply", "schema": SCHEMA}
    assert (body["max_tokens"], body["temperature"], body["stream"]) == (50, 0.1, False)
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]


def test_no_schema_sends_no_response_format(server: Server) -> None:
    backend = _backend(server, "ok")
    assert json.loads(backend.complete(HI, None, 5.0))["format"] is None
    assert server.requests[0]["auth"] is None


def test_a_500_is_retried_then_succeeds(server: Server) -> None:
    backend = _backend(server, "flaky", retries=2)
    assert json.loads(backend.complete(HI, SCHEMA, 5.0))["ok"] is True
    assert len(server.requests) == 2


def test_persistent_5xx_gives_up_with_unavailable(server: Server) -> None:
    backend = _backend(server, "down", retries=2)
    with pytest.raises(ModelUnavailable, match="gave up after 3 attempts .*HTTP 503"):
        backend.complete(HI, SCHEMA, 5.0)
    assert len(server.requests) == 3


def test_a_slow_reply_times_out_without_retry(server: Server) -> None:
    backend = _backend(server, "slow", retries=3)
    started = time.perf_counter()
    with pytest.raises(ModelTimeout, match="no answer within 0.3 s"):
        backend.complete(HI, SCHEMA, 0.3)
    assert time.perf_counter() - started < 0.9
    assert len(server.requests) == 1


def test_400_on_json_schema_falls_back_to_json_object_and_remembers(server: Server) -> None:
    backend = _backend(server, "old")
    assert json.loads(backend.complete(HI, SCHEMA, 5.0))["format"] == "json_object"
    assert json.loads(backend.complete(HI, SCHEMA, 5.0))["format"] == "json_object"
    formats = [r["body"].get("response_format", {}).get("type") for r in server.requests]
    assert formats == ["json_schema", "json_object", "json_object"]


def test_a_reply_that_is_not_a_completion_is_bad_output(server: Server) -> None:
    with pytest.raises(ModelBadOutput, match="not a chat completion"):
        _backend(server, "garbage").complete(HI, None, 5.0)


def test_wrong_path_is_unavailable_with_a_hint(server: Server) -> None:
    host, port = server.server_address[:2]
    backend = OpenAICompatible(f"http://{host!s}:{port}", "ok")  # forgot the /v1
    with pytest.raises(ModelUnavailable, match="HTTP 404 .is the URL the server's /v1 root"):
        backend.complete(HI, None, 5.0)


def test_nothing_listening_is_unavailable_after_retries() -> None:
    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = OpenAICompatible(f"http://127.0.0.1:{port}/v1", "m", retries=1, backoff=0.01)
    with pytest.raises(ModelUnavailable, match="gave up after 2 attempts .*ConnectError"):
        backend.complete(HI, None, 2.0)


def _pool_report() -> Report:
    evidence = Evidence("m", "orders-db connections 12 -> 95 (x7.92)", 95.0, 12.0)
    culprit = RootCause(
        "orders-db", "connections", "pool", 8.0, 0.0, ("orders-db", "checkout"), 1.0, (evidence,)
    )
    return Report(Incident("I", TimeRange(0, 60), 30.0), (culprit,), 0.7)


def test_narrate_end_to_end_over_http(server: Server, tmp_path: Path) -> None:
    backend = _backend(server, "narrator")
    router = Router({"narrate": Route(backend, timeout=5.0)}, AuditLog(tmp_path / "a.jsonl"))
    report = _pool_report()
    final = with_narrative(report, narrate(router, report))
    assert final.narrative is not None and final.narrative.source == "model"
    assert final.narrative.summary == NARRATIVE["summary"]
    assert any(
        n.startswith("llm narrate: model output (openai:http://127.0.0.1") for n in final.notes
    )
    sent = server.requests[0]["body"]
    assert sent["response_format"]["json_schema"]["name"] == "Narrative"


# --- deadlines: servers that accept and never answer, or answer a byte a second ------------


class Hostile:
    """A raw TCP server on 127.0.0.1: `silent` accepts and never answers; `drip` sends a valid
    chat completion one byte a second, status line first. Stopped (sockets closed, threads
    joined) by close()."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.accepted = 0
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            worker = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(worker)
            worker.start()

    def _serve(self, conn: socket.socket) -> None:
        body = json.dumps(_completion(json.dumps({"ok": True}))).encode()
        reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        reply += b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        with conn:
            for byte in reply:
                if self._stop.wait(1.0):
                    return
                if self.mode == "drip":
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:  # the client gave up: the deadline did its work
                        return

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@pytest.fixture(params=["silent", "drip"])
def hostile(request: pytest.FixtureRequest) -> Iterator[Hostile]:
    server = Hostile(request.param)
    yield server
    server.close()


def test_a_server_that_never_finishes_answering_is_a_timeout_at_the_deadline(
    hostile: Hostile,
) -> None:
    backend = OpenAICompatible(hostile.url, "m", retries=3, backoff=0.01)
    started = time.perf_counter()
    with pytest.raises(ModelTimeout, match="no answer within 2 s"):
        backend.complete(HI, SCHEMA, 2.0)
    elapsed = time.perf_counter() - started
    assert 1.9 < elapsed < 2.6, elapsed  # per-read timeouts alone would wait ~300 s here
    assert hostile.accepted == 1  # a timeout is not retried


def test_the_report_records_the_timed_out_model_task(hostile: Hostile, tmp_path: Path) -> None:
    backend = OpenAICompatible(hostile.url, "m", backoff=0.01)
    router = Router({"narrate": Route(backend, timeout=1.5)}, AuditLog(tmp_path / "a.jsonl"))
    report = _pool_report()
    started = time.perf_counter()
    final = with_narrative(report, narrate(router, report))
    assert time.perf_counter() - started < 2.2
    assert final.narrative is not None and final.narrative.source == "fallback"
    [rejection] = final.model_rejections
    assert (rejection.task, rejection.reason) == ("narrate", "timeout")
    audit = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert "no answer within 1.5 s" in audit[0]["failure"]
