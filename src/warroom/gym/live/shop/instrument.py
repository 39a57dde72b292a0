"""The hand-written instrumentation (the opentelemetry-instrumentation packages are not here):
an ASGI middleware for the server side, an httpx wrapper for calls to peers, and a context
manager for datastore calls.

    app.add_middleware(ServerInstrumentation, telemetry=telemetry, router=app.router)
    peers = PeerClient(config, telemetry)            # one pooled httpx client per service
    answer = await peers.call("cart", "GET", f"/cart/{user}")   # PeerError on 5xx / no answer
    async with datastore_call(telemetry, "redis", "HGETALL"): ...

Server side: one SERVER span per request, continuing the caller's W3C traceparent, named by the
route template ("GET /cart/{user}", not the raw path: one series per route, not per user), and
one observation of http_server_request_duration_seconds. An exception escaping a handler is
logged with its stack trace and answered 500, as a framework's default error page would be.
Client side: one CLIENT span per attempt with peer.service naming the callee, the traceparent
injected, one observation of http_client_request_duration_seconds{peer}.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from warroom.gym.live.contracts import ServiceConfig
from warroom.gym.live.shop.telemetry import Telemetry

log = logging.getLogger("shop.http")

# Scrapes, health checks and chaos hooks are the platform's traffic, not the shop's: counting
# them would dilute the error ratio the SLO alerts on and fill traces with scrape spans.
UNINSTRUMENTED = ("/metrics", "/healthz", "/_chaos/")
UNMATCHED = "unmatched"  # the route label of a request no route matched (a 404)
IDEMPOTENT_METHODS = ("GET", "HEAD", "PUT", "DELETE")


class PeerError(Exception):
    """A call to a peer that failed on its side (5xx) or got no answer (timeout, refused)."""

    def __init__(self, peer: str, reason: str, status_code: int | None = None) -> None:
        super().__init__(f"{peer}: {reason}")
        self.peer = peer
        self.reason = reason
        self.status_code = status_code

    @property
    def answer_status(self) -> int:
        """What the caller answers its own client: 502 for a failing peer, 503 for none."""
        return 502 if self.status_code is not None else 503


def route_template(scope: Scope) -> str:
    """The template of the route that took the request ("/cart/{user}"). The router puts the
    route into the request's scope once it has matched; matching the app's routes again here
    would not see through FastAPI's included routers."""
    return str(getattr(scope.get("route"), "path", UNMATCHED))


class ServerInstrumentation:
    """Pure ASGI middleware: a SERVER span and a duration observation per request."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the request inside its span; time it."""
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(UNINSTRUMENTED):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        status = {"code": 500, "started": False}

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
            await send(message)

        started = time.perf_counter()
        with self.telemetry.tracer.start_as_current_span(
            method,  # named for its route once the router has found it
            context=propagate.extract(headers),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                await self.app(scope, receive, send_and_note)
            except Exception as err:  # the edge of the service: a crash answers 500
                span.record_exception(err)
                log.exception("unhandled error in %s %s", method, route_template(scope))
                if not status["started"]:
                    await _answer_500(send_and_note)
            route, code = route_template(scope), int(status["code"])
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", code)
            if code >= 500:
                span.set_status(Status(StatusCode.ERROR, f"HTTP {code}"))
        elapsed = time.perf_counter() - started
        self.telemetry.server_duration.labels(route, method, str(code)).observe(elapsed)


async def _answer_500(send: Send) -> None:
    body = b'{"error":"internal server error"}'
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"33")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class PeerClient:
    """Calls to the service's peers through one pooled httpx client (the edge proxy's ports)."""

    def __init__(self, config: ServiceConfig, telemetry: Telemetry) -> None:
        self.peers = dict(config.peers)
        self.retries = config.settings.retries
        self.telemetry = telemetry
        timeout = config.settings.client_timeout_s
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            trust_env=False,  # never a proxy from the environment: loopback only
        )

    async def call(
        self,
        peer: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """The peer's answer (2xx-4xx); PeerError after the last failed attempt. Idempotent
        calls (GET, DELETE, or a request with an idempotency key) are retried per settings."""
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        attempts = 1 + (self.retries if idempotent else 0)
        failure: PeerError | None = None
        for _ in range(attempts):
            try:
                return await self._attempt(peer, method, path, json, params, headers)
            except PeerError as err:
                failure = err
        assert failure is not None
        raise failure

    async def call_ok(self, peer: str, method: str, path: str, **options: Any) -> httpx.Response:
        """Like call, but a 4xx is a failure too (the caller sent what the callee refused:
        a bug between them, answered 502 like any failing callee)."""
        answer = await self.call(peer, method, path, **options)
        if answer.status_code >= 400:
            raise PeerError(peer, f"HTTP {answer.status_code}", answer.status_code)
        return answer

    async def _attempt(
        self,
        peer: str,
        method: str,
        path: str,
        body: Any,
        params: Mapping[str, str | int] | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        address = self.peers[peer]
        url = f"http://{address}{path}"
        host, _, port = address.rpartition(":")
        attributes: dict[str, str | int] = {
            "peer.service": peer,
            "http.request.method": method,
            "server.address": host,
            "server.port": int(port),
            "url.full": url,
        }
        outgoing = dict(headers or {})
        with self.telemetry.tracer.start_as_current_span(
            f"{method} {peer}", kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            propagate.inject(outgoing)  # the callee's SERVER span becomes this span's child
            started = time.perf_counter()
            try:
                answer = await self.client.request(
                    method, url, json=body, params=params, headers=outgoing
                )
            except httpx.HTTPError as err:
                self._observe(peer, "error", started)
                span.set_status(Status(StatusCode.ERROR, type(err).__name__))
                span.set_attribute("error.type", type(err).__name__)
                raise PeerError(peer, f"{type(err).__name__}: {err}") from err
            self._observe(peer, str(answer.status_code), started)
            span.set_attribute("http.response.status_code", answer.status_code)
            if answer.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR, f"HTTP {answer.status_code}"))
                raise PeerError(peer, f"HTTP {answer.status_code}", answer.status_code)
            return answer

    def _observe(self, peer: str, status: str, started: float) -> None:
        elapsed = time.perf_counter() - started
        self.telemetry.client_duration.labels(peer, status).observe(elapsed)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self.client.aclose()


@contextlib.asynccontextmanager
async def datastore_call(
    telemetry: Telemetry, system: str, operation: str, statement: str = "", traced: bool = True
) -> AsyncIterator[trace.Span]:
    """A CLIENT span with peer.service and db.system `system` around one datastore call, and
    its duration in http_client_request_duration_seconds{peer=system, status_code=ok|error}.
    traced=False: the duration only (a background poll every second would otherwise fill the
    traces with one-span traces nobody asked for)."""
    attributes = {
        "peer.service": system,
        "db.system": system,
        "db.system.name": system,
        "db.operation.name": operation,
    }
    if statement:
        attributes["db.query.text"] = statement
    started = time.perf_counter()
    outcome = "error"
    span_or_none: contextlib.AbstractContextManager[trace.Span] = (
        telemetry.tracer.start_as_current_span(
            f"{system} {operation}", kind=SpanKind.CLIENT, attributes=attributes
        )
        if traced
        else contextlib.nullcontext(trace.INVALID_SPAN)
    )
    with span_or_none as span:
        try:
            yield span
            outcome = "ok"
        finally:
            elapsed = time.perf_counter() - started
            telemetry.client_duration.labels(system, outcome).observe(elapsed)
