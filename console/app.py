"""The console's ASGI application: pages (:mod:`tapewatch.console.web`), the JSON API with its OpenAPI document
(:mod:`tapewatch.console.api`), static assets shipped in the package, the live alert listener, and one answer per kind
of refusal — each audited where it matters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from tapewatch.console import api, web
from tapewatch.console.accounts import AccountFeed
from tapewatch.console.auth import Principal
from tapewatch.console.cases import NotFoundError, TooLargeError
from tapewatch.console.live import AlertListener
from tapewatch.console.security import LoginRequiredError, RequestRefusedError, SecurityHeaders, audit_refusal
from tapewatch.console.workflow import ConflictError, ForbiddenError
from tapewatch.errors import TapewatchError
from tapewatch.settings import Settings
from tapewatch.sinks import db

__all__ = ["create_app"]

HERE: Final = Path(__file__).resolve().parent


def create_app(settings: Settings) -> FastAPI:
    """The application, serving as the console's database role (:mod:`tapewatch.sinks.serving_role`), which may not
    migrate: the schema must already be at the newest revision (``tapewatch db upgrade``, or any sink's start)."""
    engine = db.make_engine(settings, serving=True, timeouts=True)
    event.listen(engine, "connect", _utc)
    _check_database(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.listener.start(asyncio.get_running_loop())
        yield
        app.state.listener.stop()
        app.state.account_feed.close()
        app.state.engine.dispose()

    app = FastAPI(
        title="tapewatch console API", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url="/api/openapi.json"
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.templates = Jinja2Templates(directory=HERE / "templates")
    app.state.templates.env.filters["fmt"] = format_value
    app.state.templates.env.filters["utc"] = utc_time
    app.state.listener = AlertListener(settings)
    app.state.account_feed = AccountFeed(settings)
    app.include_router(web.router)
    app.include_router(api.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _handle_refusals(app)
    app.add_middleware(
        SecurityHeaders, max_body_bytes=settings.console.max_body_bytes, https=settings.console.cookie_secure
    )
    return app


def _check_database(engine: Engine) -> None:
    """One clear line when the console cannot serve: no serving role, or a schema behind the code."""
    try:
        current = db.schema_is_current(engine)
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise TapewatchError(f"console: cannot reach PostgreSQL as the serving role: {reason}") from None
    if not current:
        engine.dispose()
        raise TapewatchError("console: the database schema is not the newest; run `tapewatch db upgrade` first")


def _utc(dbapi_connection: Any, connection_record: Any) -> None:
    """Every time on the pages is UTC, whatever the server's time zone."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET TIME ZONE 'UTC'")
        dbapi_connection.commit()
    finally:
        cursor.close()


def utc_time(epoch_ms: int) -> str:
    """An event time (epoch milliseconds) as an analyst reads it.

    >>> utc_time(1_764_200_000_000)
    '2025-11-26 23:33:20'
    """
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_value(value: object) -> str:
    """A number as an analyst reads it: integers whole, others to four significant digits.

    >>> format_value(3), format_value(2.718281), format_value(12345.678), format_value(None), format_value(True)
    ('3', '2.718', '12346', '—', 'yes')
    """
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.0f}" if 1000 <= abs(value) < 1e15 else f"{value:.4g}"
    return str(value)


STATUS: Final[dict[type[Exception], int]] = {
    ForbiddenError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    TooLargeError: 413,
}


def _handle_refusals(app: FastAPI) -> None:
    async def login_required(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": "authentication required"}, status_code=401)
        if request.method != "GET":
            return _answer(request, 401, "Your session ended; sign in again.")
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", 303)

    async def refused(request: Request, exc: Exception) -> Response:
        status = exc.status if isinstance(exc, RequestRefusedError) else STATUS[type(exc)]
        reason = (
            exc.reason if isinstance(exc, RequestRefusedError) else (str(exc) if status != 404 else "No such case.")
        )
        principal = getattr(request.state, "principal", None)
        if status in (403, 404) and principal is not None and not isinstance(exc, RequestRefusedError):
            # a 404 is audited too: asking for a case the tenant does not have is how another tenant is probed
            await run_in_threadpool(_audit_refusal, request, principal, status, reason, str(exc))
        return _answer(request, status, reason)

    app.add_exception_handler(LoginRequiredError, login_required)
    kinds: list[type[Exception]] = [RequestRefusedError, *STATUS]
    for kind in kinds:
        app.add_exception_handler(kind, refused)


def _audit_refusal(request: Request, principal: Principal, status: int, reason: str, detail: str) -> None:
    after = {"reason": reason, "asked": detail[:200]} if status == 404 else {"reason": reason}
    audit_refusal(request, principal, "refused" if status == 403 else "not_found", "request", after)


def _answer(request: Request, status: int, reason: str) -> Response:
    if request.url.path.startswith("/api/") or "json" in request.headers.get("accept", ""):
        return JSONResponse({"detail": reason}, status_code=status)
    templates = request.app.state.templates
    response: HTMLResponse = templates.TemplateResponse(
        request,
        "error.html",
        {"status": status, "reason": reason, "user": getattr(request.state, "principal", None)},
        status_code=status,
    )
    return response
