"""The FastAPI application: ``create_app(settings)``.

Every rule lives in ``thresher.platform``; this module maps its errors to Lightly's error body
(``ApiErrorResponse``) and status codes, runs the migrations and the crash-detection timer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from thresher.errors import ThresherError
from thresher.platform import workers
from thresher.platform.core import Platform
from thresher.platform.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PlatformError,
    Unprocessable,
)
from thresher.platform.settings import SELECTION_BODY_FACTOR, Settings
from thresher.server import export_routes, lightly_routes, sharing_routes, web, worker_routes
from thresher.wire import ApiErrorResponse

log = logging.getLogger("thresher.server")

_STATUS: dict[type[PlatformError], int] = {
    NotFound: 404,
    Forbidden: 403,
    Invalid: 400,
    Conflict: 409,
    Unprocessable: 422,
}


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """Lightly's error body."""
    return JSONResponse(ApiErrorResponse(code=code, error=message).wire(), status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "The request is not valid: " + "; ".join(parts)


class _BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"The request body is larger than this server accepts ({limit} bytes); the limit is "
            "THRESHER_MAX_BODY_BYTES in the server's environment.",
        )


class BodyLimit:
    """Refuses request bodies over a limit with 413 ``PAYLOAD_TOO_LARGE``, reading no more.

    A ``Content-Length`` over the limit is refused before the body is read; a body sent without
    one (chunked) is counted as it streams in and refused once it passes the limit.

    Args:
        app: The app to protect.
        limit: The largest body in bytes; the worker's selection report
            (``POST /v1/docker/runs/{r}/selection``) may be ``SELECTION_BODY_FACTOR`` times it.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit
        if scope["method"] == "POST" and scope["path"].endswith("/selection"):
            limit *= SELECTION_BODY_FACTOR
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            status, message = (413, _BodyTooLarge(limit).detail)
            if not declared.isdigit():
                status, message = (400, "The Content-Length header is not a number.")
            code = "PAYLOAD_TOO_LARGE" if status == 413 else "BAD_REQUEST"
            await error_response(status, code, message)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


def _crash_timer(platform: Platform, stop: threading.Event) -> None:
    period = max(0.5, min(5.0, platform.settings.worker_timeout_s / 4))
    while not stop.wait(period):
        try:
            n = workers.detect_crashes(platform)
        except Exception:  # the timer must survive a database hiccup; the next tick retries
            log.exception("crash detection failed")
            continue
        if n:
            log.warning("%d run(s) marked CRASHED: their worker stopped responding", n)


#: Where the Swagger UI's script, style sheet and icon are served (by this server, not a CDN).
DOCS_ASSETS_URL = "/docs/assets"
#: The files served there, and their media types.
DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}


def _swagger_assets() -> Path:
    """The folder with Swagger UI's files (swagger-ui-bundle.js, swagger-ui.css, favicon.png).

    The ``fastapi-offline`` package ships them (Swagger UI 5, which reads OpenAPI 3.1);
    only its files are used.
    """
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def _add_asset(app: FastAPI, path: Path, media_type: str) -> None:
    @app.get(f"{DOCS_ASSETS_URL}/{path.name}", include_in_schema=False)
    async def asset() -> FileResponse:
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "max-age=86400"})


def _add_docs(app: FastAPI) -> None:
    """``/docs``: FastAPI's Swagger page, its assets served from here so it works offline.

    FastAPI's own page loads them from a CDN, which leaves it blank on a machine without
    internet access. The OpenAPI document itself is ``/openapi.json``.
    """
    folder = _swagger_assets()
    for name, media_type in DOCS_ASSETS.items():
        _add_asset(app, folder / name, media_type)
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - API",
            swagger_js_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
            # Swagger UI would send the document to validator.swagger.io for a badge: no.
            swagger_ui_parameters={"validatorUrl": None},
        )


def create_app(
    settings: Settings | None = None,
    *,
    platform: Platform | None = None,
    migrate: bool = True,
    crash_timer: bool = True,
) -> FastAPI:
    """The server's ASGI app.

    Args:
        settings: Where the database is etc.; default ``Settings.from_env()``.
        platform: Use this service-layer object instead of making one from ``settings``.
        migrate: Run the Alembic migrations at start-up.
        crash_timer: Run crash detection on a background timer (it also runs before the run
            routes answer).
    """
    p = platform or Platform(settings or Settings.from_env())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if migrate:
            p.migrate()
        n = workers.forgive_downtime(p)  # heartbeats sent while it was down were lost
        if n:
            log.info("%d worker(s) were busy or idle: their silence counts from now", n)
        stop = threading.Event()
        thread = None
        if crash_timer:
            thread = threading.Thread(
                target=_crash_timer, args=(p, stop), name="crash-detection", daemon=True
            )
            thread.start()
        try:
            yield
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=10)

    app = FastAPI(title="thresher", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.platform = p
    _add_docs(app)

    @app.exception_handler(PlatformError)
    async def _platform_error(request: Request, exc: PlatformError) -> JSONResponse:
        status = next((v for k, v in _STATUS.items() if isinstance(exc, k)), 400)
        return error_response(status, exc.code, exc.message)

    @app.exception_handler(ThresherError)
    async def _thresher_error(request: Request, exc: ThresherError) -> JSONResponse:
        return error_response(400, "BAD_REQUEST", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, "BAD_REQUEST", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "NOT_IMPLEMENTED", 413: "PAYLOAD_TOO_LARGE"}.get(
            exc.status_code, "BAD_REQUEST"
        )
        return error_response(exc.status_code, code, str(exc.detail))

    app.include_router(lightly_routes.router)
    app.include_router(worker_routes.router)
    app.include_router(export_routes.router)
    app.include_router(sharing_routes.router)
    app.include_router(web.router)
    app.add_middleware(BodyLimit, limit=p.settings.max_body_bytes)
    return app
