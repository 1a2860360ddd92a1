"""Cases: the queue, one case with its alert, and the workflow's changes — each change and its audit line in
one transaction, the case row locked while it is decided (:mod:`console.rules`). A user sees only the cases of
their tenant's venues: another tenant's case is "not found", not "forbidden", so its existence does not leak."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, Row, Select, func, insert, select, true, union, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from console import audit
from console.auth import Principal
from console.rules import CaseState, ConflictError, decide
from console.schema import audit as audit_table
from console.schema import case_links, case_notes, cases, severity_history, users
from sinks.db import alerts

__all__ = [
    "MAX_NOTE_CHARS",
    "PAGE_SIZE",
    "NotFoundError",
    "QueueFilter",
    "TooLargeError",
    "act",
    "add_note",
    "bulk_close",
    "case_audit",
    "case_detail",
    "history",
    "link",
    "notes",
    "queue",
    "related",
]

MAX_NOTE_CHARS: Final = 10_000
PAGE_SIZE: Final = 50
MAX_PAGE: Final = 200  # deeper pages: narrow the filter (an OFFSET scan grows with the page)


class NotFoundError(Exception):
    """No such case, or not one of the principal's tenant (HTTP 404)."""


class TooLargeError(Exception):
    """A note over :data:`MAX_NOTE_CHARS` (HTTP 413)."""


@dataclass(frozen=True, slots=True)
class QueueFilter:
    state: str = "open"  # open (not closed), all, or one state
    kind: str = ""
    symbol: str = ""
    assignee: str = ""  # a user name, "none" (unassigned) or "" (anyone)
    severity: str = ""
    since: datetime | None = None  # the episode's start, from …
    until: datetime | None = None  # … to
    page: int = 0


def visible(principal: Principal) -> ColumnElement[bool]:
    return true() if principal.all_venues else cases.c.venue.in_(principal.venues)


def _filtered(principal: Principal, f: QueueFilter) -> list[ColumnElement[bool]]:
    where = [visible(principal)]
    if f.state == "open":
        where.append(cases.c.state != "closed")
    elif f.state != "all":
        where.append(cases.c.state == f.state)
    for column, value in ((cases.c.kind, f.kind), (cases.c.symbol, f.symbol), (cases.c.severity, f.severity)):
        if value:
            where.append(column == value)
    if f.severity:
        # the same filter through the rank (the database's own severity_rank(), folded to a constant): the queue's
        # indexes lead with it, so one severity is a range of the index, not a scan past the higher ones
        where.append(cases.c.severity_rank == func.severity_rank(f.severity))
    if f.assignee == "none":
        where.append(cases.c.assignee.is_(None))
    elif f.assignee:
        where.append(cases.c.assignee == f.assignee)
    if f.since is not None:
        where.append(cases.c.opened_at >= f.since)
    if f.until is not None:
        where.append(cases.c.opened_at <= f.until)
    return where


def queue(conn: Connection, principal: Principal, f: QueueFilter) -> tuple[list[Row[Any]], bool]:
    """One page of cases by severity (highest first) then age (oldest first); and whether there is a next page."""
    page = min(max(f.page, 0), MAX_PAGE)
    query = (
        select(cases, alerts.c.message)
        .join(alerts, alerts.c.alert_id == cases.c.alert_id)
        .where(*_filtered(principal, f))
        .order_by(cases.c.severity_rank.desc(), cases.c.opened_at, cases.c.alert_id)
        .limit(PAGE_SIZE + 1)
        .offset(page * PAGE_SIZE)
    )
    rows = list(conn.execute(query))
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def _case_query(principal: Principal, alert_id: str) -> Select[Any]:
    return (
        select(
            cases,
            alerts.c.ts,
            alerts.c.window_start,
            alerts.c.window_end,
            alerts.c.evidence,
            alerts.c.message,
        )
        .join(alerts, alerts.c.alert_id == cases.c.alert_id)
        .where(cases.c.alert_id == alert_id, visible(principal))
    )


def case_detail(conn: Connection, principal: Principal, alert_id: str) -> Row[Any]:
    row = conn.execute(_case_query(principal, alert_id)).first()
    if row is None:
        raise NotFoundError(alert_id)
    return row


def _locked(conn: Connection, principal: Principal, alert_id: str) -> Row[Any]:
    row = conn.execute(select(cases).where(cases.c.alert_id == alert_id, visible(principal)).with_for_update()).first()
    if row is None:
        raise NotFoundError(alert_id)
    return row


def _check_assignee(conn: Connection, principal: Principal, assignee: str | None) -> None:
    if assignee is None:
        return
    found = conn.execute(
        select(users.c.username).where(
            users.c.username == assignee, users.c.tenant == principal.tenant, users.c.disabled.is_(False)
        )
    ).first()
    if found is None:
        raise ConflictError(f"no active user {assignee!r} in this tenant")


def act(
    conn: Connection,
    principal: Principal,
    alert_id: str,
    action: str,
    *,
    assignee: str | None = None,
    disposition: str | None = None,
    note: str = "",
    client: str | None = None,
) -> dict[str, Any]:
    """Apply one workflow action (and its note, if any); returns the changed fields."""
    held = _locked(conn, principal, alert_id)
    changes: dict[str, Any] = decide(
        action, principal.actor, CaseState(held.state, held.assignee), assignee=assignee, disposition=disposition
    )
    if action == "assign":
        _check_assignee(conn, principal, assignee)
    closing = changes.get("state") == "closed"
    if closing or action == "reopen":
        changes |= {"closed_at": func.now() if closing else None, "closed_by": principal.username if closing else None}
    conn.execute(update(cases).where(cases.c.alert_id == alert_id).values(**changes, updated_at=func.now()))
    shown = {k: v for k, v in changes.items() if k not in ("closed_at",)}
    before = {k: held._mapping[k] for k in shown}
    audit.record(
        conn, principal.username, f"case.{action}", "case", alert_id, before=before, after=shown, client=client
    )
    if note:
        add_note(conn, principal, alert_id, note, client=client, locked=True)
    return shown


def bulk_close(
    conn: Connection, principal: Principal, alert_ids: Sequence[str], disposition: str, note: str, client: str | None
) -> int:
    """Close every case of the selection with one note, or none of them: one refusal refuses the lot."""
    for alert_id in sorted(set(alert_ids)):  # one lock order for every caller: no deadlock between two bulk closes
        act(conn, principal, alert_id, "close", disposition=disposition, note=note, client=client)
    return len(set(alert_ids))


def add_note(
    conn: Connection, principal: Principal, alert_id: str, body: str, *, client: str | None, locked: bool = False
) -> None:
    body = body.strip()
    if len(body) > MAX_NOTE_CHARS:
        raise TooLargeError(f"a note holds at most {MAX_NOTE_CHARS} characters")
    if not body:
        raise ConflictError("an empty note")
    if not locked:
        _locked(conn, principal, alert_id)
    note_id = conn.execute(
        insert(case_notes)
        .values(alert_id=alert_id, author=principal.username, body=body)
        .returning(case_notes.c.note_id)
    ).scalar_one()
    audit.record(
        conn,
        principal.username,
        "case.note",
        "case",
        alert_id,
        after={"note_id": note_id, "chars": len(body)},
        client=client,
    )


def link(conn: Connection, principal: Principal, alert_id: str, linked_id: str, client: str | None) -> None:
    """Link two cases of one symbol (both ways)."""
    first, second = _locked(conn, principal, alert_id), _locked(conn, principal, linked_id)
    if (first.symbol, first.venue) != (second.symbol, second.venue) or alert_id == linked_id:
        raise ConflictError("only two different cases of one symbol can be linked")
    for a, b in ((alert_id, linked_id), (linked_id, alert_id)):
        conn.execute(
            pg_insert(case_links).values(alert_id=a, linked_id=b, linked_by=principal.username).on_conflict_do_nothing()
        )
    audit.record(conn, principal.username, "case.link", "case", alert_id, after={"linked_id": linked_id}, client=client)


def notes(conn: Connection, alert_id: str) -> list[Row[Any]]:
    return list(
        conn.execute(select(case_notes).where(case_notes.c.alert_id == alert_id).order_by(case_notes.c.note_id))
    )


def history(conn: Connection, alert_id: str) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(severity_history).where(severity_history.c.alert_id == alert_id).order_by(severity_history.c.ts)
        )
    )


def related(conn: Connection, principal: Principal, case: Row[Any], limit: int = 20) -> list[Row[Any]]:
    """Other cases of the symbol: the linked ones first, then the nearest in time.

    The nearest ``limit`` are among the ``limit`` nearest before and the ``limit`` nearest after the case's start:
    two short scans of ``cases_symbol_idx`` instead of ordering every case of the symbol by distance (``tapewatch
    bench console``, a million cases: 35–60 ms a case page, 140 ms for a busy symbol's 29,000 cases; now 3–9 ms)."""
    same = (
        cases.c.symbol == case.symbol,
        cases.c.venue == case.venue,
        cases.c.alert_id != case.alert_id,
        visible(principal),
    )
    linked = select(case_links.c.linked_id).where(case_links.c.alert_id == case.alert_id)
    before = (
        select(cases.c.alert_id)
        .where(*same, cases.c.opened_at <= case.opened_at)
        .order_by(cases.c.opened_at.desc())
        .limit(limit)
        .subquery()
    )
    after = (
        select(cases.c.alert_id)
        .where(*same, cases.c.opened_at > case.opened_at)
        .order_by(cases.c.opened_at)
        .limit(limit)
        .subquery()
    )
    candidates = union(linked, select(before.c.alert_id), select(after.c.alert_id))
    query = (
        select(cases, cases.c.alert_id.in_(linked.scalar_subquery()).label("linked"))
        .where(*same, cases.c.alert_id.in_(candidates))
        .order_by(
            cases.c.alert_id.in_(linked.scalar_subquery()).desc(),
            func.abs(func.extract("epoch", cases.c.opened_at - case.opened_at)),
        )
        .limit(limit)
    )
    return list(conn.execute(query))


def case_audit(conn: Connection, alert_id: str) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(audit_table)
            .where(audit_table.c.object_type == "case", audit_table.c.object_id == alert_id)
            .order_by(audit_table.c.audit_id)
        )
    )


def audit_lines(conn: Connection, actor: str = "", limit: int = 300) -> list[Row[Any]]:
    """The newest audit lines, of one actor if given."""
    query = select(audit_table).order_by(audit_table.c.audit_id.desc()).limit(limit)
    if actor:
        query = query.where(audit_table.c.actor == actor)
    return list(conn.execute(query))


def active_users(conn: Connection, tenant: str) -> list[str]:
    """The tenant's users who can be assigned a case."""
    query = select(users.c.username).where(users.c.tenant == tenant, users.c.disabled.is_(False))
    return list(conn.execute(query.order_by(users.c.username)).scalars())
