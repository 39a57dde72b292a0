"""The third-party payment gateway stub: none of our telemetry (no OTel, no /metrics), as a
real third party would have none we could read.

    POST /v1/charges              200 {"id": "ch_...", "status": "succeeded"} after 20-60 ms
    GET  /healthz                 200 (the stack waits for it)
    POST /_chaos/outage {"mode": "ok" | "errors" | "slow" | "down"}   loopback only

    errors: 503 at once      slow: answers after 5 s      down: closes the connection unanswered

A small HTTP/1.1 server on asyncio streams rather than an ASGI app: "down" must close the TCP
connection without any answer, which an ASGI app cannot do (the server answers 500 for it).
Keep-alive is honoured, since payment's pooled client reuses connections.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import signal
from dataclasses import dataclass

from warroom.gym.live.contracts import HOST

MODES = ("ok", "errors", "slow", "down")
SLOW_S = 5.0
MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 1024 * 1024
LOOPBACK = ("127.0.0.1", "::1")


@dataclass
class Request:
    """One parsed request."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Reply:
    """What to write back, or None to hang up."""

    status: int
    body: dict[str, object]


REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 503: "Unavailable"}


class Gateway:
    """The gateway's state (its outage mode) and its request handling."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.mode = "ok"
        self.rng = rng or random.Random()

    async def handle(self, request: Request, client_host: str) -> Reply | None:
        """The reply to `request`; None: close the connection without one."""
        if request.path == "/healthz":
            return Reply(200, {"status": "ok", "mode": self.mode})
        if request.path == "/_chaos/outage" and request.method == "POST":
            return self._set_outage(request, client_host)
        if request.path == "/v1/charges" and request.method == "POST":
            return await self._charge(request)
        return Reply(404, {"error": f"no route {request.method} {request.path}"})

    def _set_outage(self, request: Request, client_host: str) -> Reply:
        if client_host not in LOOPBACK:
            return Reply(403, {"error": "chaos hooks answer loopback clients only"})
        try:
            mode = json.loads(request.body or b"{}").get("mode")
        except (ValueError, AttributeError):
            mode = None
        if mode not in MODES:
            return Reply(400, {"error": f"mode must be one of {MODES}"})
        self.mode = mode
        return Reply(200, {"mode": mode})

    async def _charge(self, request: Request) -> Reply | None:
        if self.mode == "down":
            return None
        if self.mode == "errors":
            return Reply(503, {"error": "gateway unavailable"})
        await asyncio.sleep(SLOW_S if self.mode == "slow" else self.rng.uniform(0.02, 0.06))
        try:
            amount = json.loads(request.body or b"{}").get("amount")
        except (ValueError, AttributeError):
            amount = None
        return Reply(
            200, {"id": f"ch_{secrets.token_hex(8)}", "status": "succeeded", "amount": amount}
        )

    async def serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Answer requests on one connection until the client closes it (or we hang up)."""
        peer = writer.get_extra_info("peername") or ("", 0)
        try:
            while (request := await read_request(reader)) is not None:
                reply = await self.handle(request, str(peer[0]))
                if reply is None:
                    break
                writer.write(encode(reply, keep_alive=_keep_alive(request)))
                await writer.drain()
                if not _keep_alive(request):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # a client that went away or spoke nonsense: nothing to answer
        finally:
            writer.close()


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request on the connection; None at a clean end of the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as err:
        if err.partial.strip():
            raise
        return None
    if len(head) > MAX_HEADER_BYTES:
        raise ValueError("headers too large")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if length > MAX_BODY_BYTES:
        raise ValueError("body too large")
    body = await reader.readexactly(length) if length else b""
    return Request(method, target.split("?", 1)[0], headers, body)


def _keep_alive(request: Request) -> bool:
    return request.headers.get("connection", "").lower() != "close"


def encode(reply: Reply, keep_alive: bool = True) -> bytes:
    """The reply as HTTP/1.1 bytes."""
    body = json.dumps(reply.body).encode()
    head = (
        f"HTTP/1.1 {reply.status} {REASONS.get(reply.status, 'Status')}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode("latin-1") + body


async def run_gateway(port: int, host: str = HOST) -> None:
    """Serve the gateway on host:port until SIGTERM or SIGINT."""
    gateway = Gateway()
    server = await asyncio.start_server(gateway.serve_connection, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
