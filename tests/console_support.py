"""Helpers of the console's tests: a private PostgreSQL schema migrated to head with one tenant (:data:`TENANT`,
venue ``sim``), alerts stored the way the PostgreSQL sink stores them (so the database's own trigger makes the
cases), users, and a signed-in client."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from starlette.testclient import TestClient

from tapewatch.console import users
from tapewatch.records import Alert, AlertKind, Book, Severity, alert_id
from tapewatch.settings import Settings
from tapewatch.sinks import db

PASSWORD = "correct horse battery"  # a test user's password (≥ 12 characters)
TENANT = "acme"  # the tenant the schema starts with: its cases are made from venue "sim"
BASE_URL = "https://testserver"  # the session cookie is Secure: the test client must speak "https"


@contextmanager
def console_schema(settings: Settings) -> Iterator[Settings]:
    schema = f"console_{uuid.uuid4().hex[:8]}"
    db.create_schema(settings, schema)
    isolated = db.in_schema(settings, schema)
    db.upgrade(isolated)
    engine = db.make_engine(isolated)
    try:
        with engine.begin() as conn:
            users.add_tenant(conn, TENANT, ["sim"], "test")
    finally:
        engine.dispose()
    try:
        yield isolated
    finally:
        db.drop_schema(settings, schema)


def make_alert(
    symbol: str = "ACME",
    *,
    venue: str = "sim",
    kind: AlertKind = AlertKind.SPOOFING,
    start: int = 1_700_000_000_000,
    ts: int | None = None,
    severity: Severity = Severity.MEDIUM,
    score: float = 0.7,
    message: str = "layers pulled as the price moved",
    tenant: str | None = None,
) -> Alert:
    end = start + 60_000
    return Alert(
        symbol=symbol,
        venue=venue,
        tenant=tenant,
        alert_id=alert_id(symbol, kind.value, start, tenant),
        ts=ts if ts is not None else end,
        kind=kind,
        severity=severity,
        score=score,
        window_start=start,
        window_end=end,
        # the spoofing rule's layout (detectors/patterns/spoofing.py): what the case page explains
        evidence={
            "layer_cancel_rel": 8.5,
            "cancel_l25_z": 4.1,
            "cycles": 3,
            "layers": 2,
            "layer_side": "bid",
            "hits": 2,
        },
        model_version="patterns-test",
        message=message,
    )


def store_alerts(engine: Engine, alerts: list[Alert]) -> None:
    """As the PostgreSQL sink does (COPY and ON CONFLICT): the trigger makes or updates the cases."""
    with engine.begin() as conn:
        db.copy_rows(conn, db.alerts, [db.alert_doc(a) for a in alerts])


def add_user(engine: Engine, name: str, role: str = "analyst", tenant: str = TENANT) -> None:
    with engine.begin() as conn:
        users.add_user(conn, name, PASSWORD, role, tenant, "test")


def session_cookie(client: TestClient) -> str | None:
    """The client's session cookie (``__Host-`` prefixed: the test client speaks https)."""
    value: str | None = client.cookies.get("__Host-tw_session")
    return value


def login_csrf(client: TestClient) -> str:
    page = client.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> int:
    response = client.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": login_csrf(client)},
        follow_redirects=False,
    )
    status: int = response.status_code
    return status


def page_csrf(client: TestClient, path: str = "/queue") -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def seed_market(engine: Engine, symbol: str, venue: str, start: int, end: int) -> None:
    """Bars and 2-second book snapshots of a gently drifting price from ``start`` to ``end`` (epoch ms)."""
    from tapewatch.records import Bar

    bars, books = [], []
    for minute, t in enumerate(range(start, end, 60_000)):
        price = 100 + 0.05 * minute
        bars.append(
            Bar(
                symbol=symbol,
                venue=venue,
                start=t,
                end=t + 60_000,
                open=price,
                high=price + 0.2,
                low=price - 0.2,
                close=price + 0.05,
                volume=1000.0 + 37 * (minute % 7),
                vwap=price,
                trades=20 + minute % 5,
            )
        )
    for t in range(start, end, 2_000):
        mid = 100 + 0.05 * (t - start) / 60_000
        books.append(
            Book(
                symbol=symbol,
                venue=venue,
                ts=t,
                bids=[(round(mid - 0.01 * (i + 1), 2), 100.0 * (i + 1)) for i in range(5)],
                asks=[(round(mid + 0.01 * (i + 1), 2), 90.0 * (i + 1)) for i in range(5)],
            )
        )
    with engine.begin() as conn:
        db.copy_rows(conn, db.bars, [db.bar_doc(b) for b in bars])
        db.copy_rows(conn, db.book_snapshots, [db.record_doc(b) for b in books])
