"""A scripted HTTP server on 127.0.0.1 for backend clients whose real server cannot be installed
here (Loki, Tempo, Jaeger, Elasticsearch, the Kubernetes API): it answers with response files
in the documented format and records what it was asked.

    with Loopback({"/loki/api/v1/query_range": answer_file("loki/streams.json")}) as server:
        client_under_test(server.url)
        assert server.requests[0].query["query"] == ['{service_name="api"}']

A route's value is a Reply, a callable taking the Request and returning one, or a list of
either (served in turn, the last repeated).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).parent / "fixtures" / "backends"


@dataclass(frozen=True)
class Request:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, list[str]]:
        """The body parsed as application/x-www-form-urlencoded."""
        return parse_qs(self.body.decode("utf-8"))


@dataclass(frozen=True)
class Reply:
    """What to answer: a status, a body (bytes, or any JSON value) and headers."""

    body: Any = b""
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # to play a slow backend


Route = Reply | Callable[[Request], Reply] | list[Any]


def answer_file(name: str, status: int = 200) -> Reply:
    """A reply whose body is a response file under tests/fixtures/backends."""
    return Reply((FIXTURES / name).read_bytes(), status, {"Content-Type": "application/json"})


class Loopback:
    """The server: start it with `with`, read `url` and `requests`."""

    def __init__(self, routes: Mapping[str, Route]) -> None:
        self.routes = dict(routes)
        self.requests: list[Request] = []
        self._served: dict[str, int] = {}
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        # A short poll: shutdown() waits up to one poll interval (0.5 s by default, per test).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:38211."""
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def __enter__(self) -> Loopback:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def reply(self, request: Request) -> Reply:
        """The scripted answer to a request (404 for a path with no route)."""
        self.requests.append(request)
        route = self.routes.get(request.path)
        if route is None:
            return Reply({"error": f"no route for {request.path}"}, 404)
        if isinstance(route, list):
            turn = self._served.get(request.path, 0)
            self._served[request.path] = turn + 1
            route = route[min(turn, len(route) - 1)]
        return route(request) if callable(route) else route

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        loopback = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                self._answer()

            def do_POST(self) -> None:  # noqa: N802
                self._answer()

            def _answer(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                reply = loopback.reply(request)
                if reply.delay_s:
                    loopback._stop.wait(reply.delay_s)
                body = reply.body
                if not isinstance(body, bytes):
                    body = json.dumps(body).encode("utf-8")
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json", **reply.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                # the client may have given up (a timeout test)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # quiet: the tests read `requests`

        return Handler
