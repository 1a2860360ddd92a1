"""Cases: the queue, one case with its alert, and the workflow's changes — each change and its audit line in
one transaction, the case row locked while it is decided (:mod:`tapewatch.console.workflow`). Every function takes a
connection scoped to the principal's tenant (:func:`tapewatch.console.tenancy.scoped`): row-level security shows it that
tenant's cases, notes, links and audit lines only, so another tenant's case is "not found", not "forbidden", and
its existence does not leak."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, Row, Select, func, insert, select, union, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from tapewatch.console import audit
from tapewatch.console.auth import Principal
from tapewatch.console.schema import audit as audit_table
from tapewatch.console.schema import case_links, case_notes, cases, severity_history, users
from tapewatch.console.workflow import CaseState, ConflictError, ForbiddenError, decide
from tapewatch.sinks.db import alerts

__all__ = [
    "MAX_NOTE_CHARS",
    "MAX_SHOWN",
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
#: notes and audit lines a case page or report shows at most (the newest; the page says how many more there are)
MAX_SHOWN: Final = 200


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


def _filtered(f: QueueFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
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


def queue(conn: Connection, f: QueueFilter) -> tuple[list[Row[Any]], bool]:
    """One page of cases by severity (highest first) then age (oldest first); and whether there is a next page."""
    page = min(max(f.page, 0), MAX_PAGE)
    query = (
        select(cases, alerts.c.message)
        .join(alerts, alerts.c.alert_id == cases.c.alert_id)
        .where(*_filtered(f))
        .order_by(cases.c.severity_rank.desc(), cases.c.opened_at, cases.c.alert_id)
        .limit(PAGE_SIZE + 1)
        .offset(page * PAGE_SIZE)
    )
    rows = list(conn.execute(query))
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def _case_query(alert_id: str) -> Select[Any]:
    return (
        select(
            cases,
            alerts.c.ts,
            alerts.c.window_start,
            alerts.c.window_end,
            alerts.c.evidence,
            alerts.c.message,
            alerts.c.news,
            # whose confidential data raised it: only then does the evidence name accounts
            alerts.c.tenant.label("alert_tenant"),
        )
        .join(alerts, alerts.c.alert_id == cases.c.alert_id)
        .where(cases.c.alert_id == alert_id)
    )


def case_detail(conn: Connection, alert_id: str) -> Row[Any]:
    row = conn.execute(_case_query(alert_id)).first()
    if row is None:
        raise NotFoundError(alert_id)
    return row


def _locked(conn: Connection, alert_id: str) -> Row[Any]:
    row = conn.execute(select(cases).where(cases.c.alert_id == alert_id).with_for_update()).first()
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
    held = _locked(conn, alert_id)
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
        conn,
        principal.username,
        f"case.{action}",
        "case",
        alert_id,
        tenant=principal.tenant,
        before=before,
        after=shown,
        client=client,
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
    conn: Connection,
    principal: Principal,
    alert_id: str,
    body: str,
    *,
    client: str | None,
    locked: bool = False,
    supersedes: int | None = None,
) -> int:
    """Add a note; with ``supersedes``, an edit of one of the author's own notes on this case: a new note that
    names the old one, both kept. The audit line carries the body's SHA-256, so a note's text is on the chain."""
    body = body.strip()
    if len(body) > MAX_NOTE_CHARS:
        raise TooLargeError(f"a note holds at most {MAX_NOTE_CHARS} characters")
    if not body:
        raise ConflictError("an empty note")
    if not locked:
        _locked(conn, alert_id)
    if supersedes is not None:
        _check_supersedes(conn, principal, alert_id, supersedes)
    note_id: int = conn.execute(
        insert(case_notes)
        .values(tenant=principal.tenant, alert_id=alert_id, author=principal.username, body=body, supersedes=supersedes)
        .returning(case_notes.c.note_id)
    ).scalar_one()
    after = {"note_id": note_id, "chars": len(body), "sha256": hashlib.sha256(body.encode()).hexdigest()}
    if supersedes is not None:
        after["supersedes"] = supersedes
    audit.record(
        conn, principal.username, "case.note", "case", alert_id, tenant=principal.tenant, after=after, client=client
    )
    return note_id


def _check_supersedes(conn: Connection, principal: Principal, alert_id: str, note_id: int) -> None:
    old = conn.execute(
        select(case_notes.c.author).where(case_notes.c.note_id == note_id, case_notes.c.alert_id == alert_id)
    ).first()
    if old is None:
        raise NotFoundError(f"note {note_id}")
    if old.author != principal.username:
        raise ForbiddenError("only a note's author may edit it")
    if conn.execute(select(case_notes.c.note_id).where(case_notes.c.supersedes == note_id)).first() is not None:
        raise ConflictError("that note was already edited: edit its newest version")


def link(conn: Connection, principal: Principal, alert_id: str, linked_id: str, client: str | None) -> None:
    """Link two cases of one symbol (both ways)."""
    first, second = _locked(conn, alert_id), _locked(conn, linked_id)
    if (first.symbol, first.venue) != (second.symbol, second.venue) or alert_id == linked_id:
        raise ConflictError("only two different cases of one symbol can be linked")
    for a, b in ((alert_id, linked_id), (linked_id, alert_id)):
        conn.execute(
            pg_insert(case_links)
            .values(tenant=principal.tenant, alert_id=a, linked_id=b, linked_by=principal.username)
            .on_conflict_do_nothing()
        )
    audit.record(
        conn,
        principal.username,
        "case.link",
        "case",
        alert_id,
        tenant=principal.tenant,
        after={"linked_id": linked_id},
        client=client,
    )


def notes(conn: Connection, alert_id: str, limit: int = MAX_SHOWN) -> tuple[list[Row[Any]], int]:
    """The case's newest ``limit`` notes, oldest first, each with the id of the note that edited it (if any);
    and how many older ones are not shown."""
    newer = case_notes.alias("newer")
    edited_by = select(func.max(newer.c.note_id)).where(newer.c.supersedes == case_notes.c.note_id).scalar_subquery()
    rows = list(
        conn.execute(
            select(case_notes, edited_by.label("edited_by"))
            .where(case_notes.c.alert_id == alert_id)
            .order_by(case_notes.c.note_id.desc())
            .limit(limit + 1)
        )
    )
    return _newest(
        conn, rows, limit, select(func.count()).select_from(case_notes).where(case_notes.c.alert_id == alert_id)
    )


def _newest(conn: Connection, rows: list[Row[Any]], limit: int, counting: Select[Any]) -> tuple[list[Row[Any]], int]:
    """``rows`` (newest first, one past ``limit`` if there are more) oldest first, and how many were left out."""
    hidden = conn.execute(counting).scalar_one() - limit if len(rows) > limit else 0
    return rows[:limit][::-1], hidden


def history(conn: Connection, alert_id: str) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(severity_history).where(severity_history.c.alert_id == alert_id).order_by(severity_history.c.ts)
        )
    )


def related(conn: Connection, case: Row[Any], limit: int = 20) -> list[Row[Any]]:
    """Other cases of the symbol: the linked ones first, then the nearest in time.

    The nearest ``limit`` are among the ``limit`` nearest before and the ``limit`` nearest after the case's start:
    two short scans of ``cases_symbol_idx`` instead of ordering every case of the symbol by distance (``tapewatch
    bench console``, a million cases: 35–60 ms a case page, 140 ms for a busy symbol's 29,000 cases; now 3–9 ms)."""
    same = (
        cases.c.symbol == case.symbol,
        cases.c.venue == case.venue,
        cases.c.alert_id != case.alert_id,
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


def case_audit(conn: Connection, alert_id: str, limit: int = MAX_SHOWN) -> tuple[list[Row[Any]], int]:
    """The case's newest ``limit`` audit lines, oldest first; and how many older ones are not shown."""
    about = (audit_table.c.object_type == "case", audit_table.c.object_id == alert_id)
    rows = list(
        conn.execute(select(audit_table).where(*about).order_by(audit_table.c.audit_id.desc()).limit(limit + 1))
    )
    return _newest(conn, rows, limit, select(func.count()).select_from(audit_table).where(*about))


def audit_lines(conn: Connection, actor: str = "", limit: int = 300) -> list[Row[Any]]:
    """The tenant's newest audit lines, of one actor if given."""
    query = select(audit_table).order_by(audit_table.c.audit_id.desc()).limit(limit)
    if actor:
        query = query.where(audit_table.c.actor == actor)
    return list(conn.execute(query))


def active_users(conn: Connection, tenant: str) -> list[str]:
    """The tenant's users who can be assigned a case."""
    query = select(users.c.username).where(users.c.tenant == tenant, users.c.disabled.is_(False))
    return list(conn.execute(query.order_by(users.c.username)).scalars())
