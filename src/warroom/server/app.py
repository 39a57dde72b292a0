"""`warroom serve`'s HTTP side: the Alertmanager webhook, the investigations API, report pages,
health and metrics, behind bearer tokens.

    app = create_app(settings, repository, workers)      # uvicorn.run(app, host=..., port=...)

A notification is parsed (a bad one gets a 4xx naming the problem and stores nothing), then
persisted, then answered: 200 within milliseconds, the investigation queued for the workers.
Alertmanager's repeats join the investigation of the same alert (groupKey + fingerprint +
startsAt). Every route but /healthz and /readyz needs a token, as `Authorization: Bearer` or,
for a person with a browser, the cookie /login sets; tokens are compared in constant time.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from starlette.concurrency import run_in_threadpool

from warroom.errors import InputError
from warroom.server.model import InvestigationRecord, Status

DEFAULT_MAX_BODY = 1024 * 1024  # an Alertmanager notification is kilobytes; 1 MiB is generous
COOKIE = "warroom_token"
MACHINE_PATHS = ("/metrics", "/openapi.json")  # answered 401, not sent to the sign-in page
JSON_TYPES = ("application/json",)


class ServerSettings(BaseModel):
    """How the server guards itself (the `[server]` table of warroom.toml and the flags)."""

    model_config = ConfigDict(extra="forbid")

    tokens: tuple[SecretStr, ...] = ()
    insecure_no_auth: bool = False
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY, ge=1024, le=64 * 1024 * 1024)
    public_url: str = "http://127.0.0.1:8080"  # how report links in notifications begin


def create_app(
    settings: ServerSettings, service: Any, clock: Callable[[], float] = time.time
) -> FastAPI:
    """The application around a server/service.py Service (started and stopped with it)."""
    if not settings.tokens and not settings.insecure_no_auth:
        raise InputError(
            "no API token: set WARROOM_API_TOKENS (comma-separated) or a tokens file, "
            "or start with --insecure-no-auth on a trusted network"
        )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(
        title="warroom",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, behind the token like every other route
        lifespan=lifespan,
    )
    app.state.service = service
    guard = _guard(settings)
    _add_open_routes(app, service.repository, service.workers)
    _add_api(app, settings, service, guard)
    _add_pages(app, settings, service.repository, guard)
    return app


def _guard(settings: ServerSettings) -> Callable[[Request], Awaitable[None]]:
    tokens = [t.get_secret_value().encode() for t in settings.tokens]

    async def check(request: Request) -> None:
        if settings.insecure_no_auth:
            return
        given = _token(request)
        # Every token is compared, each in constant time, so timing tells nothing.
        matched = [hmac.compare_digest(given.encode(), t) for t in tokens]
        if not given or not any(matched):
            if request.url.path.startswith("/api/") or request.url.path in MACHINE_PATHS:
                raise HTTPException(401, "a valid bearer token is required", _challenge())
            raise HTTPException(303, headers={"Location": _login_url(request)})

    return check


def _token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(COOKIE, "")


def _challenge() -> dict[str, str]:
    return {"WWW-Authenticate": 'Bearer realm="warroom"'}


def _login_url(request: Request) -> str:
    return f"/login?next={quote(request.url.path)}"


def _add_open_routes(app: FastAPI, repository: Any, workers: Any) -> None:
    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        try:
            depth = repository.queue_depth()
        except Exception as err:  # the database is what readiness is about
            return JSONResponse({"status": "not ready", "why": f"repository: {err}"}, 503)
        if not workers.alive():
            return JSONResponse({"status": "not ready", "why": "workers are not running"}, 503)
        return JSONResponse({"status": "ready", "queue_depth": depth})


async def bounded_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past `limit` bytes (declared or streamed): the
    receiver's bounded read, its refusal as FastAPI's."""
    from warroom.telemetry.otlp_receiver import Refused, read_body

    try:
        return await read_body(request, limit)
    except Refused:
        raise HTTPException(413, f"body over {limit} bytes") from None


def _json_body_type(request: Request) -> str:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in JSON_TYPES:
        raise HTTPException(
            415, f"content type {content_type or '(none)'!r}: send application/json"
        )
    return content_type


def _add_api(
    app: FastAPI,
    settings: ServerSettings,
    service: Any,
    guard: Callable[[Request], Awaitable[None]],
) -> None:
    repository, metrics = service.repository, service.metrics

    async def _ingest(request: Request, ingest: Callable[[bytes, str], Any]) -> Any:
        content_type = _json_body_type(request)
        body = await bounded_body(request, settings.max_body_bytes)
        try:
            # The repository blocks (a synchronous commit): off the event loop, so one slow
            # commit does not hold every other sender's answer.
            answer = await run_in_threadpool(ingest, body, content_type)
        except InputError as err:
            metrics.rejected.labels("invalid").inc()
            raise HTTPException(400, str(err)) from None
        metrics.notifications.inc()
        return answer

    @app.post("/api/v1/alerts", dependencies=[Depends(guard)])
    async def receive_alerts(request: Request) -> dict[str, Any]:
        """Alertmanager's webhook (version 4): persisted before the answer, investigated after."""
        answer: dict[str, Any] = await _ingest(request, service.ingest_alerts)
        return answer

    @app.post("/api/v1/investigations", status_code=202, dependencies=[Depends(guard)])
    async def start_investigation(request: Request) -> dict[str, Any]:
        """Investigate {service, start, end, symptom} from any other alert source."""
        answer: dict[str, Any] = await _ingest(request, service.ingest_investigation)
        return answer

    @app.get("/api/v1/investigations", dependencies=[Depends(guard)])
    def list_investigations(
        service_name: str | None = Query(None, alias="service"),
        status: Status | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = Query(50, ge=1, le=500),
        offset: int = Query(0, ge=0),
    ) -> dict[str, Any]:
        """Investigations, newest first, filtered and paged."""
        rows = repository.list(service_name, status, since, until, limit, offset)
        total = repository.count(service_name, status, since, until)
        items = [_brief(r) for r in rows]
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    @app.get("/api/v1/investigations/{investigation_id}", dependencies=[Depends(guard)])
    def get_investigation(investigation_id: str) -> dict[str, Any]:
        """One investigation; `report` is what `investigate --json` prints, once finished."""
        record = _found(repository, investigation_id)
        answer = _brief(record)
        answer["report"] = json.loads(record.report_json) if record.report_json else None
        return answer

    @app.get("/openapi.json", dependencies=[Depends(guard)], include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return app.openapi()

    @app.get("/metrics", dependencies=[Depends(guard)], include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _found(repository: Any, investigation_id: str) -> InvestigationRecord:
    record = repository.get(investigation_id)
    if record is None:
        raise HTTPException(404, f"no investigation {investigation_id!r}")
    return record


def _brief(record: InvestigationRecord) -> dict[str, Any]:
    request = record.request
    return {
        "id": record.id,
        "status": record.status.value,
        "reason": record.reason,
        "service": request.service,
        "window": {"start": request.start, "end": request.end},
        "alert_time": request.alert_time,
        "source": request.source,
        "resolved": record.resolved,
        "notifications": record.notifications,
        "culprit": record.culprit,
        "confidence": record.confidence,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "links": {
            "page": f"/investigations/{record.id}",
            "api": f"/api/v1/investigations/{record.id}",
        },
    }


def _add_pages(
    app: FastAPI,
    settings: ServerSettings,
    repository: Any,
    guard: Callable[[Request], Awaitable[None]],
) -> None:
    from warroom.server import pages

    @app.get("/login", include_in_schema=False)
    def login_form(next: str = "/") -> HTMLResponse:  # noqa: A002 (the usual parameter name)
        return HTMLResponse(pages.login(next))

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        # The form is parsed here: FastAPI's Form() needs python-multipart for one field.
        form = parse_qs((await bounded_body(request, 16 * 1024)).decode("utf-8", "replace"))
        token, next = form.get("token", [""])[0], form.get("next", ["/"])[0]  # noqa: A001
        tokens = [t.get_secret_value() for t in settings.tokens]
        if not any(hmac.compare_digest(token.encode(), t.encode()) for t in tokens):
            return HTMLResponse(pages.login(next, failed=True), 401)
        target = next if next.startswith("/") and not next.startswith("//") else "/"
        response = RedirectResponse(target, 303)
        secure = settings.public_url.startswith("https://")
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure)
        return response

    @app.get("/", response_class=HTMLResponse, dependencies=[Depends(guard)])
    def index() -> str:
        return pages.listing(repository.list(None, None, None, None, 100, 0))

    @app.get("/investigations/{investigation_id}", dependencies=[Depends(guard)])
    def page(investigation_id: str) -> HTMLResponse:
        record = _found(repository, investigation_id)
        if record.report_html:
            return HTMLResponse(record.report_html)
        return HTMLResponse(pages.pending(record))
