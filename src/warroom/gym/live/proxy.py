"""The edge proxy: one asyncio process listening on every edge port of the shop (contracts.EDGES)
and forwarding bytes to the callee's own port, so a fault can slow or break one edge the way
netem would on a host (tc netem is not in this kernel).

    python -m warroom.gym.live.proxy --layout-base 18000 --control-port 18299

    PUT    /edges/{caller}/{callee}  {"delay_ms": 200, "jitter_ms": 20, "reset": false}
    DELETE /edges                    every edge healthy again
    GET    /edges                    each edge's state and its connection and byte counts

A delay holds every chunk, in both directions, for delay_ms (± jitter_ms) and never reorders:
a chunk leaves no earlier than the one read before it. A reset edge accepts a connection and
resets it at once (a refused dependency) and resets the connections it already carries. A
healthy edge only copies bytes: long-lived connections (Redis, PostgreSQL pools) live as long
as their ends want; a half-close is passed on; an error on one side resets the other.
Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import random
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from warroom.gym.live.contracts import EDGES, HOST, Layout

CHUNK = 64 * 1024
QUEUE_CHUNKS = 64  # per direction: a slow reader holds the writer back, not our memory
CONNECT_S = 3.0
MAX_LINKS = 1024  # per edge: a runaway client cannot exhaust the proxy's descriptors


class EdgeFault(BaseModel):
    """What an edge does to its traffic (all zero/false: healthy)."""

    model_config = ConfigDict(extra="forbid")

    delay_ms: float = Field(default=0.0, ge=0, le=60_000)
    jitter_ms: float = Field(default=0.0, ge=0, le=60_000)
    reset: bool = False


@dataclass
class Edge:
    """One edge: where it listens, where it forwards, its fault and its counts."""

    caller: str
    callee: str
    listen_port: int
    target_port: int
    fault: EdgeFault = field(default_factory=EdgeFault)
    connections: int = 0
    refused: int = 0
    bytes_up: int = 0  # caller -> callee
    bytes_down: int = 0  # callee -> caller
    links: set[Link] = field(default_factory=set, repr=False)

    def delay_s(self) -> float:
        """This chunk's delay, drawn now (so a changed fault applies to live connections)."""
        fault = self.fault
        if fault.delay_ms <= 0 and fault.jitter_ms <= 0:
            return 0.0
        jitter = random.uniform(-fault.jitter_ms, fault.jitter_ms) if fault.jitter_ms else 0.0
        return max(0.0, fault.delay_ms + jitter) / 1000.0

    def state(self) -> dict[str, Any]:
        return {
            "caller": self.caller,
            "callee": self.callee,
            "listen_port": self.listen_port,
            "target_port": self.target_port,
            **self.fault.model_dump(),
            "connections": self.connections,
            "active": len(self.links),
            "refused": self.refused,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
        }


class Link:
    """One proxied connection: the caller's socket and the callee's."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream

    def reset(self) -> None:
        """Abort both sockets with a TCP reset (as a broken network path would)."""
        for writer in (self.client, self.upstream):
            _reset(writer)


class Proxy:
    """Every edge's listener and the faults set on them."""

    def __init__(self, edges: list[Edge]) -> None:
        self.edges = {(e.caller, e.callee): e for e in edges}
        self._servers: list[asyncio.Server] = []

    @classmethod
    def for_layout(cls, layout: Layout) -> Proxy:
        """The shop's edges at a layout's ports."""
        return cls(
            [Edge(a, b, layout.edge_port(a, b), layout.port(b)) for a, b in EDGES],
        )

    async def start(self) -> None:
        """Listen on every edge port (127.0.0.1)."""
        for edge in self.edges.values():
            server = await asyncio.start_server(
                functools.partial(self._serve, edge), HOST, edge.listen_port
            )
            self._servers.append(server)

    async def close(self) -> None:
        """Stop listening and reset every live connection."""
        for server in self._servers:
            server.close()
        for edge in self.edges.values():
            for link in list(edge.links):
                link.reset()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)

    def set_fault(self, caller: str, callee: str, fault: EdgeFault) -> Edge:
        """Change one edge's fault; a reset also resets the connections it carries."""
        edge = self.edges[(caller, callee)]
        edge.fault = fault
        if fault.reset:
            for link in list(edge.links):
                link.reset()
        return edge

    def heal(self) -> None:
        """Every edge healthy."""
        for edge in self.edges.values():
            edge.fault = EdgeFault()

    def state(self) -> list[dict[str, Any]]:
        return [e.state() for e in self.edges.values()]

    # -- one connection -----------------------------------------------------------------------

    async def _serve(
        self, edge: Edge, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if edge.fault.reset or len(edge.links) >= MAX_LINKS:
            edge.refused += 1
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(HOST, edge.target_port), CONNECT_S
            )
        except (OSError, TimeoutError):
            edge.refused += 1  # the callee is down: the caller sees its connection reset
            _reset(writer)
            return
        edge.connections += 1
        link = Link(writer, up_writer)
        edge.links.add(link)
        try:
            await self._carry(edge, link, reader, up_reader)
        finally:
            edge.links.discard(link)
            for side in (writer, up_writer):
                side.close()

    async def _carry(
        self,
        edge: Edge,
        link: Link,
        client: asyncio.StreamReader,
        upstream: asyncio.StreamReader,
    ) -> None:
        """Both directions until both ends closed them; an error in one resets both."""
        up = asyncio.create_task(_pipe(edge, client, link.upstream, "up"))
        down = asyncio.create_task(_pipe(edge, upstream, link.client, "down"))
        done, pending = await asyncio.wait({up, down}, return_when=asyncio.FIRST_EXCEPTION)
        failed = any(t.exception() is not None for t in done if not t.cancelled())
        if failed:
            link.reset()
            for task in pending:
                task.cancel()
        for task in (up, down):
            with contextlib.suppress(BaseException):
                await task


async def _pipe(
    edge: Edge, source: asyncio.StreamReader, sink: asyncio.StreamWriter, direction: str
) -> None:
    """Copy one direction, each chunk held for the edge's delay, in order; EOF passed on."""
    queue: asyncio.Queue[tuple[float, bytes | OSError]] = asyncio.Queue(QUEUE_CHUNKS)
    feeder = asyncio.create_task(_read_into(edge, source, queue))
    loop = asyncio.get_running_loop()
    try:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if isinstance(data, OSError):
                raise data
            if not data:  # the sender half-closed: pass it on, keep the other direction
                if sink.can_write_eof() and not sink.is_closing():
                    sink.write_eof()
                return
            sink.write(data)
            await sink.drain()
            if direction == "up":
                edge.bytes_up += len(data)
            else:
                edge.bytes_down += len(data)
    finally:
        feeder.cancel()
        with contextlib.suppress(BaseException):
            await feeder


async def _read_into(
    edge: Edge, source: asyncio.StreamReader, queue: asyncio.Queue[tuple[float, bytes | OSError]]
) -> None:
    loop = asyncio.get_running_loop()
    last_due = 0.0
    while True:
        try:
            data: bytes | OSError = await source.read(CHUNK)
        except OSError as err:  # a reset: handed to the writer, which resets the other side
            data = err
        # never before the previous chunk: a jittered delay must not reorder the stream
        last_due = max(last_due, loop.time() + edge.delay_s())
        await queue.put((last_due, data))
        if not isinstance(data, bytes) or not data:
            return


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0) rather than a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# --- the control API -----------------------------------------------------------------------


def control_app(proxy: Proxy) -> Any:
    """The FastAPI app that changes and shows the edges' faults."""
    from fastapi import FastAPI, HTTPException

    app = FastAPI(title="warroom gym edge proxy")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/edges")
    def edges() -> dict[str, Any]:
        return {"edges": proxy.state()}

    @app.put("/edges/{caller}/{callee}")
    def put_edge(caller: str, callee: str, fault: EdgeFault) -> dict[str, Any]:
        if (caller, callee) not in proxy.edges:
            raise HTTPException(404, f"no edge {caller} -> {callee}")
        return proxy.set_fault(caller, callee, fault).state()

    @app.delete("/edges")
    def heal() -> dict[str, Any]:
        proxy.heal()
        return {"edges": proxy.state()}

    return app


async def run(layout: Layout, control_port: int) -> None:
    """Serve the edges and the control API until SIGTERM or SIGINT."""
    import uvicorn

    proxy = Proxy.for_layout(layout)
    await proxy.start()
    config = uvicorn.Config(
        control_app(proxy), host=HOST, port=control_port, log_level="warning", access_log=False
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        await proxy.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layout-base", type=int, default=Layout().base_port)
    parser.add_argument("--control-port", type=int, default=None)
    args = parser.parse_args(argv)
    layout = Layout(args.layout_base)
    asyncio.run(run(layout, args.control_port or layout.port("proxy-control")))


if __name__ == "__main__":
    main()
