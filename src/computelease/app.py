"""The FastAPI application: every router authenticated by default, problem+json errors, web pages."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from computelease import __version__
from computelease.auth.deps import get_principal
from computelease.config import Settings, get_settings
from computelease.db import Database
from computelease.errors import PROBLEM_JSON, AppError, problem
from computelease.metrics import Metrics
from computelease.registry import parts

log = logging.getLogger("computelease")


def _problem_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    # ("body", "credit_limit") -> "credit_limit"; ("query", "limit") -> "limit (query)"
    where, *path = loc or ("body",)
    name = ".".join(str(p) for p in path) or str(where)
    return name if where == "body" else f"{name} ({where})"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return _problem_response(exc.status, exc.problem(instance=request.url.path), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()]
        detail = "fix these fields: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return _problem_response(422, problem(422, detail, instance=request.url.path, errors=errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404 and exc.detail == "Not Found":
            detail = f"nothing at {request.url.path}; the API is listed at /docs"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}; see /docs for its methods"
        else:
            detail = str(exc.detail)
        return _problem_response(
            exc.status_code, problem(exc.status_code, detail, instance=request.url.path), exc.headers
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # Services check what they can; a race between two writers still ends here, rolled back.
        return _problem_response(
            409,
            problem(
                409,
                "the change conflicts with a record stored meanwhile; reload and retry",
                instance=request.url.path,
            ),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:12]
        log.exception("unhandled error %s on %s %s", incident, request.method, request.url.path)
        return _problem_response(
            500,
            problem(
                500,
                f"an internal error occurred and nothing was saved; report incident {incident}",
                instance=request.url.path,
            ),
        )


SECURITY_HEADERS = (
    # No framing (clickjacking), no MIME sniffing, no full URLs leaked to other sites.
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


class Observe:
    """Counts and times every request by route, and adds the security headers.

    Plain ASGI rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware runs each request
    through an extra task and memory stream, which on 2 cores cost node agents' heartbeat posts more
    than the ingest itself."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                if extra:
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            route = scope.get("route")
            self.metrics.observe(scope["method"], getattr(route, "path", "unmatched"), status, started)


def api_router() -> APIRouter:
    """All of /api/v1. The router-level dependency makes every route authenticated by default."""
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(get_principal)])
    for module in parts("endpoints"):
        api.include_router(module.router)
    return api


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    db = db or Database(settings.database_url, echo=settings.sql_echo)
    app = FastAPI(
        title="computelease",
        version=__version__,
        description="GPU compute leasing: fleet, contracts, SLA, billing, leases and economics.",
    )
    app.state.settings = settings
    app.state.db = db
    app.state.metrics = metrics = Metrics(db)
    install_error_handlers(app)

    app.add_middleware(Observe, metrics=metrics)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.resolved_secret_key(),
        session_cookie="computelease_session",
        max_age=settings.session_max_age_s,
        same_site="lax",
        https_only=settings.secure_cookies,
    )

    @app.get("/healthz", tags=["ops"], summary="Liveness and database check (no auth)")
    def healthz() -> JSONResponse:
        ok = db.ping()
        body = {"status": "ok" if ok else "degraded", "database": "ok" if ok else "unreachable"}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", include_in_schema=True)
    def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    app.include_router(api_router())

    import computelease.models  # noqa: F401  (every mapper configured before the first request)
    from computelease.web.pages import install as install_web

    install_web(app)
    for module in parts("pages"):
        app.include_router(module.router)
    return app
