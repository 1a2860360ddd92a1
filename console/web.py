"""The analyst's pages: login, the queue (live), a case with its evidence, charts and book replay, the
workflow's forms, the evidence report, the supervisor's numbers and the audit trail. Server-rendered (Jinja2,
escaped by default); every post carries the session's CSRF token; every change is one transaction with its
audit line (:mod:`tapewatch.console.cases`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import Connection, Row
from starlette.concurrency import run_in_threadpool

from tapewatch.console import accounts, audit, cases, chart_data, firm_orders, supervisor, venue_indicators
from tapewatch.console.auth import Principal, csrf_matches, load_session, login, logout
from tapewatch.console.charts import book_columns, book_svg, price_svg, volume_svg
from tapewatch.console.explain import explanation, news_window
from tapewatch.console.passwords import new_token
from tapewatch.console.schema import DISPOSITIONS, STATES
from tapewatch.console.security import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    RequestRefusedError,
    checked_form,
    client_of,
    cookie_name,
    engine_of,
    passive_user,
    settings_of,
    user,
)
from tapewatch.console.security import admin as admin_only
from tapewatch.console.security import supervisor as supervisor_only
from tapewatch.console.tenancy import scoped
from tapewatch.records import AlertKind, RecordError, Severity

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
Form_ = Annotated[dict[str, str], Depends(checked_form)]
User = Annotated[Principal, Depends(user)]
PassiveUser = Annotated[Principal, Depends(passive_user)]
Admin = Annotated[Principal, Depends(admin_only)]
#: how often an open event stream checks that its session still holds (a sign-out ends it within this)
SESSION_RECHECK_S: Final = 5.0


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    templates = request.app.state.templates
    response: HTMLResponse = templates.TemplateResponse(request, template, context, status_code=status)
    return response


@router.get("/login")
def login_page(request: Request, next: Annotated[str, Query(max_length=512)] = "/queue") -> HTMLResponse:
    token = new_token()
    response = render(request, "login.html", login_csrf=token, next=_local(next), message="")
    _set_cookie(request, response, LOGIN_COOKIE, token, max_age=3600)
    return response


@router.post("/login")
def login_submit(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    csrf_token: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=512)] = "/queue",
) -> Response:
    expected = request.cookies.get(cookie_name(settings_of(request), LOGIN_COOKIE), "")
    if not csrf_matches(expected, csrf_token):
        raise RequestRefusedError(403, "The login form expired; reload it and try again.")
    outcome = login(engine_of(request), settings_of(request), username.strip().lower(), password, client_of(request))
    if outcome.token is None:
        token = new_token()
        response = render(
            request, "login.html", outcome.status, login_csrf=token, next=_local(next), message=outcome.message
        )
        _set_cookie(request, response, LOGIN_COOKIE, token, max_age=3600)
        return response
    redirect = RedirectResponse(_local(next), status_code=303)
    _set_cookie(request, redirect, SESSION_COOKIE, outcome.token, max_age=None)
    _delete_cookie(request, redirect, LOGIN_COOKIE)
    return redirect


@router.post("/logout")
def logout_submit(request: Request, principal: User, form: Form_) -> Response:
    with scoped(engine_of(request), principal.tenant) as conn:
        logout(
            conn,
            principal,
            request.cookies.get(cookie_name(settings_of(request), SESSION_COOKIE), ""),
            client_of(request),
        )
    response = RedirectResponse("/login", status_code=303)
    _delete_cookie(request, response, SESSION_COOKIE)
    return response


@router.get("/")
def home() -> Response:
    return RedirectResponse("/queue", status_code=303)


def queue_filter(
    state: str = "open",
    kind: str = "",
    symbol: Annotated[str, Query(max_length=32)] = "",
    assignee: Annotated[str, Query(max_length=64)] = "",
    severity: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    page: Annotated[int, Query(ge=0, le=cases.MAX_PAGE)] = 0,
) -> cases.QueueFilter:
    return cases.QueueFilter(state, kind, symbol.strip(), assignee.strip(), severity, since, until, page)


Filter = Annotated[cases.QueueFilter, Depends(queue_filter)]


@router.get("/queue")
def queue_page(request: Request, principal: User, f: Filter) -> HTMLResponse:
    with scoped(engine_of(request), principal.tenant) as conn:
        rows, more = cases.queue(conn, f)
        analysts = cases.active_users(conn, principal.tenant)
    return render(
        request,
        "queue.html",
        user=principal,
        rows=rows,
        more=more,
        f=f,
        query=request.url.query,
        kinds=[k.value for k in AlertKind],
        severities=[s.value for s in Severity],
        states=STATES,
        dispositions=DISPOSITIONS,
        analysts=analysts,
    )


@router.get("/queue/rows")
def queue_rows(request: Request, principal: PassiveUser, f: Filter) -> HTMLResponse:
    with scoped(engine_of(request), principal.tenant) as conn:
        rows, more = cases.queue(conn, f)
    return render(request, "queue_rows.html", rows=rows, more=more, f=f, user=principal)


@router.get("/events")
async def events(request: Request, principal: PassiveUser) -> StreamingResponse:
    """Server-sent events: ``changed`` whenever one of the tenant's cases is made or escalated (no content: the
    page asks for its own rows); ``ended`` once the session no longer holds (signed out, disabled, expired or
    idle), and the stream closes; a comment between, so proxies keep it open."""
    listener = request.app.state.listener
    settings = settings_of(request)
    token = request.cookies.get(cookie_name(settings, SESSION_COOKIE), "")

    def session_holds() -> bool:
        with engine_of(request).begin() as conn:
            return load_session(conn, settings, token, touch=False) is not None

    async def stream() -> AsyncIterator[bytes]:
        queue = listener.subscribe(principal.tenant)
        try:
            yield b"retry: 2000\n\n"
            while not await request.is_disconnected():
                try:
                    await asyncio.wait_for(queue.get(), timeout=SESSION_RECHECK_S)
                    woken = True
                except TimeoutError:
                    woken = False
                if not await run_in_threadpool(session_holds):
                    yield b"event: ended\ndata: {}\n\n"
                    return
                yield b"event: changed\ndata: {}\n\n" if woken else b": keep-alive\n\n"
        finally:
            listener.unsubscribe(queue)

    return StreamingResponse(stream(), media_type="text/event-stream")


@router.get("/case")
def case_page(request: Request, principal: User, id: Annotated[str, Query(max_length=200)]) -> HTMLResponse:
    context = _case_context(request, principal, id)
    return render(request, "case.html", user=principal, dispositions=DISPOSITIONS, **context)


def _case_context(request: Request, principal: Principal, alert_id: str) -> dict[str, Any]:
    with scoped(engine_of(request), principal.tenant) as conn:
        case = cases.case_detail(conn, alert_id)
        window = chart_data.window_of(case)
        bars = chart_data.bar_points(conn, window)
        books = chart_data.book_points(conn, window, columns=book_columns(window.view))
        notes, notes_hidden = cases.notes(conn, alert_id)
        trail, trail_hidden = cases.case_audit(conn, alert_id)
        context: dict[str, Any] = {
            "case": case,
            "why": explanation(case, settings_of(request)),
            "history": cases.history(conn, alert_id),
            "notes": notes,
            "notes_hidden": notes_hidden,
            "related": cases.related(conn, case),
            "trail": trail,
            "trail_hidden": trail_hidden,
            "analysts": cases.active_users(conn, principal.tenant),
            "news_window": news_window(settings_of(request)),
            "firm": _firm_context(conn, case, window),
            "indicators": venue_indicators.indicators_of(conn, case),
        }
    view, episode, title = window.view, window.episode, f"{case.symbol} · {case.venue}"
    context["charts"] = {
        "price": price_svg(bars, view=view, episode=episode, marker_ms=window.alert_ms, title=f"Price · {title}"),
        "volume": volume_svg(bars, view=view, episode=episode, title=f"Volume · {title}"),
        "book": book_svg(books, view=view, episode=episode, title=f"Order book (5 levels) · {title}"),
    }
    context["snapshots"] = len(books)
    return context


def _firm_context(conn: Connection, case: Row[Any], window: chart_data.Window) -> dict[str, Any] | None:
    """For an alert of the tenant's own (from its drop copy): the named accounts' orders and their other cases."""
    accounts = firm_orders.named_accounts(case.evidence) if case.alert_tenant is not None else []
    if not accounts:
        return None
    orders, more = firm_orders.orders_of(conn, case, accounts, window.view)
    return {
        "accounts": accounts,
        "orders": orders,
        "more": more,
        "cases": firm_orders.cases_of_accounts(conn, case, accounts),
    }


@router.get("/case/book.json")
def case_book(request: Request, principal: User, id: Annotated[str, Query(max_length=200)]) -> JSONResponse:
    """The stored snapshots of the window, for the replay, and the reports of the accounts a firm's alert names."""
    with scoped(engine_of(request), principal.tenant) as conn:
        case = cases.case_detail(conn, id)
        window = chart_data.window_of(case)
        books = chart_data.book_points(conn, window)
        orders = firm_orders.replay_reports(conn, case, window.view)
    return JSONResponse(
        {
            "episode": [window.episode.start_ms, window.episode.end_ms],
            "alert_ms": window.alert_ms,
            "snapshots": [{"ts": b.ts_ms, "bids": b.bids, "asks": b.asks} for b in books],
            "orders": orders,
        }
    )


@router.post("/case/act")
def case_act(request: Request, principal: User, form: Form_) -> Response:
    alert_id = form.get("alert_id", "")
    with scoped(engine_of(request), principal.tenant) as conn:
        cases.act(
            conn,
            principal,
            alert_id,
            form.get("action", ""),
            assignee=form.get("assignee") or None,
            disposition=form.get("disposition") or None,
            note=form.get("note", ""),
            client=client_of(request),
        )
    return _to_case(alert_id)


@router.post("/case/note")
def case_note(request: Request, principal: User, form: Form_) -> Response:
    """A note, or (``supersedes``: a note id) an edit of one of the author's notes: a new note, both kept."""
    alert_id, supersedes = form.get("alert_id", ""), form.get("supersedes", "")
    if supersedes and not supersedes.isdigit():
        raise RequestRefusedError(409, "Which note does this edit?")
    with scoped(engine_of(request), principal.tenant) as conn:
        cases.add_note(
            conn,
            principal,
            alert_id,
            form.get("note", ""),
            client=client_of(request),
            supersedes=int(supersedes) if supersedes else None,
        )
    return _to_case(alert_id)


@router.post("/case/link")
def case_link(request: Request, principal: User, form: Form_) -> Response:
    alert_id = form.get("alert_id", "")
    with scoped(engine_of(request), principal.tenant) as conn:
        cases.link(conn, principal, alert_id, form.get("linked_id", ""), client_of(request))
    return _to_case(alert_id)


def _to_case(alert_id: str) -> RedirectResponse:
    """A path, never an absolute URL: a redirect must not take its host from the request's Host header."""
    return RedirectResponse(f"/case?id={quote(alert_id, safe='')}", status_code=303)


@router.post("/cases/bulk-close")
def bulk_close(request: Request, principal: User, form: Form_) -> Response:
    selected = [i for i in form.get("alert_ids", "").split(",") if i]
    if not selected:
        raise RequestRefusedError(409, "Select the cases to close.")
    with scoped(engine_of(request), principal.tenant) as conn:
        cases.bulk_close(
            conn, principal, selected, form.get("disposition", ""), form.get("note", ""), client_of(request)
        )
    return RedirectResponse("/queue", status_code=303)


@router.get("/case/report")
def case_report(request: Request, principal: User, id: Annotated[str, Query(max_length=200)]) -> HTMLResponse:
    """The evidence report for a regulator: one self-contained printable page; who exported it is audited."""
    context = _case_context(request, principal, id)
    with scoped(engine_of(request), principal.tenant) as conn:
        audit.record(
            conn, principal.username, "case.report", "case", id, tenant=principal.tenant, client=client_of(request)
        )
    return render(request, "report.html", user=principal, generated=datetime.now().astimezone(), **context)


@router.get("/supervisor")
def supervisor_page(request: Request, principal: Annotated[Principal, Depends(supervisor_only)]) -> HTMLResponse:
    with scoped(engine_of(request), principal.tenant) as conn:
        context: dict[str, Any] = {
            "workload": supervisor.workload(conn),
            "ages": supervisor.open_by_age(conn),
            "rates": supervisor.false_positive_rates(conn),
        }
    return render(request, "supervisor.html", user=principal, buckets=[b for b, _ in supervisor.AGE_BUCKETS], **context)


@router.get("/audit")
def audit_page(
    request: Request,
    principal: Annotated[Principal, Depends(supervisor_only)],
    actor: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    with scoped(engine_of(request), principal.tenant) as conn:
        lines = cases.audit_lines(conn, actor.strip(), limit=300)
    return render(request, "audit.html", user=principal, lines=lines, actor=actor)


#: what the accounts page says after a change (chosen by the code: the address carries a word, never a text)
ACCOUNT_OUTCOMES: Final = {
    "saved": "Saved, and the stream has it.",
    "unchanged": "Nothing to change: the account already reads so.",
    "removed": "Removed, and the stream has forgotten it.",
}


@router.get("/accounts")
def accounts_page(request: Request, principal: Admin, done: Annotated[str, Query(max_length=16)] = "") -> HTMLResponse:
    """The tenant's accounts (beneficial owner, linked group) and the form that adds or changes one."""
    with scoped(engine_of(request), principal.tenant) as conn:
        rows = accounts.listed(conn)
    outcome = ACCOUNT_OUTCOMES.get(done, "")
    return render(request, "accounts.html", user=principal, rows=rows, outcome=outcome, limit=accounts.MAX_LISTED)


@router.post("/accounts")
def account_save(request: Request, principal: Admin, form: Form_) -> Response:
    try:
        ref = accounts.entered(principal.tenant, form)
    except RecordError as exc:
        raise RequestRefusedError(422, f"{exc.field or 'account'}: {exc.reason}") from None
    with scoped(engine_of(request), principal.tenant) as conn:
        edits = accounts.save(conn, principal.username, ref, client_of(request))
        _to_the_stream(request, principal.tenant, edits)
    return RedirectResponse(f"/accounts?done={'saved' if edits else 'unchanged'}", status_code=303)


@router.post("/accounts/remove")
def account_remove(request: Request, principal: Admin, form: Form_) -> Response:
    account = form.get("account", "")
    with scoped(engine_of(request), principal.tenant) as conn:
        edits = accounts.remove(conn, principal.username, principal.tenant, account, client_of(request))
        if not edits:
            raise RequestRefusedError(404, "No such account.")
        _to_the_stream(request, principal.tenant, edits)
    return RedirectResponse("/accounts?done=removed", status_code=303)


def _to_the_stream(request: Request, tenant: str, edits: list[accounts.Edit]) -> None:
    """Inside the change's transaction, before it commits: a change the stream did not take is not made (the
    table and ``ref.accounts`` never disagree on what an admin was told)."""
    if not edits:
        return
    try:
        accounts.send_before_commit(request.app.state.account_feed, engine_of(request), tenant, edits)
    except accounts.NotPublishedError as exc:
        refused = "The stream did not take the change (Kafka is unavailable): nothing was changed."
        if exc.restored:
            raise RequestRefusedError(503, f"{refused} Try again later.") from None
        mend = f"ask an operator to run `{accounts.republish_command(tenant)}` once Kafka is back"
        raise RequestRefusedError(503, f"{refused} Kafka may still deliver it to the stream: {mend}.") from None


def _local(target: str) -> str:
    """Only same-site paths are followed after a login (no open redirect).

    >>> _local("/case?id=1"), _local("https://evil.example/"), _local("//evil.example")
    ('/case?id=1', '/queue', '/queue')
    """
    return target if target.startswith("/") and not target.startswith("//") else "/queue"


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        cookie_name(settings_of(request), name),
        value,
        max_age=max_age,
        httponly=True,
        secure=settings_of(request).console.cookie_secure,
        samesite="strict",
        path="/",
    )


def _delete_cookie(request: Request, response: Response, name: str) -> None:
    settings = settings_of(request)
    response.delete_cookie(
        cookie_name(settings, name), path="/", secure=settings.console.cookie_secure, httponly=True, samesite="strict"
    )
