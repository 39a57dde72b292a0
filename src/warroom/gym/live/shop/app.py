"""One shop service as a FastAPI app: the routes every service shares (/healthz, /metrics,
/_chaos/leak), its instrumentation, and the service's own routes and datastores.

    app = create_app(load_config(path))       # no I/O until the app's lifespan starts
    serve(config)                             # uvicorn on 127.0.0.1:config.port until SIGTERM

The lifespan opens the service's datastores and the log handlers, and on SIGTERM (uvicorn's
graceful shutdown) closes them and flushes spans and logs with a short timeout.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import uvicorn
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from warroom.gym.live.contracts import HOST, ServiceConfig
from warroom.gym.live.shop.chaos import Leak, chaos_router
from warroom.gym.live.shop.config import BAD_VERSION
from warroom.gym.live.shop.instrument import PeerClient, PeerError, ServerInstrumentation
from warroom.gym.live.shop.telemetry import Telemetry

log = logging.getLogger("shop")

# service -> "module:Class", imported when that service starts (one process runs one service)
SERVICE_CLASSES = {
    "frontend": "warroom.gym.live.shop.frontend:Frontend",
    "checkout": "warroom.gym.live.shop.checkout:Checkout",
    "cart": "warroom.gym.live.shop.cart:Cart",
    "orders": "warroom.gym.live.shop.orders:Orders",
    "payment": "warroom.gym.live.shop.payment:Payment",
    "shipping": "warroom.gym.live.shop.shipping:Shipping",
    "worker": "warroom.gym.live.shop.worker:Worker",
}
GRACEFUL_SHUTDOWN_S = 3


@dataclass
class Runtime:
    """What a service's handlers share: its config, instruments, peer client and leak."""

    config: ServiceConfig
    telemetry: Telemetry
    peers: PeerClient
    leak: Leak

    @property
    def bad(self) -> bool:
        """Whether this process runs the faulty release."""
        return self.config.version == BAD_VERSION


class Service(Protocol):
    """One service's own routes and the resources it opens and closes."""

    router: APIRouter

    async def start(self) -> None:
        """Open datastores, start background tasks."""
        ...

    async def stop(self) -> None:
        """Stop background tasks, close datastores."""
        ...


def load_service(runtime: Runtime) -> Service:
    """The service class named by the config, built on `runtime`."""
    module, _, name = SERVICE_CLASSES[runtime.config.service].partition(":")
    cls = getattr(importlib.import_module(module), name)
    service: Service = cls(runtime)
    return service


def create_app(config: ServiceConfig, span_exporter: SpanExporter | None = None) -> FastAPI:
    """The app of `config`'s service (`span_exporter`: a test's extra span sink)."""
    telemetry = Telemetry.create(config, span_exporter)
    runtime = Runtime(config, telemetry, PeerClient(config, telemetry), Leak())
    service = load_service(runtime)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        telemetry.attach_logging()
        await service.start()
        log.info("%s %s listening on %s", config.service, config.version, config.port)
        try:
            yield
        finally:
            log.info("%s shutting down", config.service)
            await service.stop()
            await runtime.leak.stop()
            await runtime.peers.aclose()
            telemetry.shutdown()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.runtime = runtime
    app.state.service = service
    app.add_middleware(ServerInstrumentation, telemetry=telemetry)
    app.add_exception_handler(PeerError, _peer_failed)  # type: ignore[arg-type]
    app.include_router(_platform_router(telemetry))
    app.include_router(chaos_router(runtime.leak))
    app.include_router(service.router)
    return app


async def _peer_failed(request: Request, err: PeerError) -> JSONResponse:
    """A callee failed: say which, in the log and in the answer (502 failing, 503 silent)."""
    log.error("call to %s failed: %s", err.peer, err.reason)
    return JSONResponse({"error": f"{err.peer} failed: {err.reason}"}, err.answer_status)


def _platform_router(telemetry: Telemetry) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz")
    async def healthz() -> dict[str, str | int]:
        return {
            "status": "ok",
            "service": telemetry.service,
            "version": telemetry.version,
            "pid": os.getpid(),  # which process answered (two share the port in a rollout)
        }

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(telemetry.registry), media_type=CONTENT_TYPE_LATEST)

    return router


def serve(config: ServiceConfig) -> None:
    """Run the service in this process until SIGTERM or SIGINT.

    The port is bound with SO_REUSEPORT, so a new release can start on it while the old one
    still answers and take over when the old one stops, as a rolling update's surge pod does:
    a deploy by itself fails no request."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((HOST, config.port))
    settings = uvicorn.Config(
        create_app(config),
        workers=1,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    uvicorn.Server(settings).run(sockets=[listener])
