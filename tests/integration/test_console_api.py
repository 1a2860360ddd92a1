"""The console against the real PostgreSQL: cases made by the database from stored alerts, the workflow, roles,
tenants, sessions, CSRF, throttling, size limits and the append-only audit trail — each refusal with its status,
nothing changed, an audit line where it matters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, inspect, select, text, update
from sqlalchemy.exc import DBAPIError
from starlette.testclient import TestClient

from tapewatch.console import users
from tapewatch.console.app import create_app
from tapewatch.console.schema import audit, cases, metadata, sessions
from tapewatch.records import AlertKind, Severity, VenueIndicator, WashTest
from tapewatch.settings import Settings
from tapewatch.sinks import db
from tests.console_support import (
    BASE_URL,
    PASSWORD,
    TENANT,
    add_user,
    console_schema,
    make_alert,
    page_csrf,
    sign_in,
    store_alerts,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def console_settings(services: Settings) -> Iterator[Settings]:
    with console_schema(services) as settings:
        yield settings


@pytest.fixture
def engine(console_settings: Settings) -> Iterator[Engine]:
    engine = db.make_engine(console_settings)
    yield engine
    engine.dispose()


@pytest.fixture
def app_client(console_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(console_settings), base_url=BASE_URL) as client:
        yield client


def _case(engine: Engine, alert_id: str, tenant: str = TENANT) -> dict[str, object]:
    with engine.connect() as conn:
        query = select(cases).where(cases.c.alert_id == alert_id, cases.c.tenant == tenant)
        return dict(conn.execute(query).one()._mapping)


def _audit_actions(engine: Engine, actor: str | None = None) -> list[str]:
    query = select(audit.c.action).order_by(audit.c.audit_id)
    if actor:
        query = query.where(audit.c.actor == actor)
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def test_migration_matches_the_console_tables(engine: Engine) -> None:
    inspector = inspect(engine)
    for table in metadata.sorted_tables:
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name


def test_the_audit_table_refuses_update_delete_and_truncate(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(audit.insert().values(actor="t", action="probe", object_type="test"))
    for statement in ("UPDATE audit SET actor = 'x'", "DELETE FROM audit", "TRUNCATE audit"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    assert _audit_actions(engine) == ["tenant.add", "probe"]


def test_a_stored_alert_becomes_a_case_and_its_escalation_updates_it(engine: Engine) -> None:
    first = make_alert(severity=Severity.MEDIUM, score=0.6)
    store_alerts(engine, [first])
    store_alerts(engine, [first])  # a replay changes nothing
    case = _case(engine, first.alert_id)
    assert (case["state"], case["severity"], case["symbol"]) == ("new", "medium", "ACME")
    escalated = first.model_copy(update={"ts": first.ts + 30_000, "severity": Severity.HIGH, "score": 0.9})
    store_alerts(engine, [escalated])
    case = _case(engine, first.alert_id)
    assert (case["severity"], case["severity_rank"], case["score"]) == ("high", 3, 0.9)
    with engine.connect() as conn:
        steps = conn.execute(text("SELECT severity FROM severity_history ORDER BY ts")).scalars().all()
    assert steps == ["medium", "high"]


def test_an_escalation_after_the_close_reopens_the_case(engine: Engine, app_client: TestClient) -> None:
    alert = make_alert()
    store_alerts(engine, [alert])
    add_user(engine, "sue", "supervisor")
    assert sign_in(app_client, "sue") == 303
    token = page_csrf(app_client)
    closed = app_client.post(
        "/case/act",
        data={"csrf_token": token, "alert_id": alert.alert_id, "action": "close", "disposition": "false_positive"},
        follow_redirects=False,
    )
    assert closed.status_code == 303
    assert _case(engine, alert.alert_id)["state"] == "closed"
    store_alerts(engine, [alert.model_copy(update={"ts": alert.ts + 60_000, "severity": Severity.CRITICAL})])
    case = _case(engine, alert.alert_id)
    assert (case["state"], case["disposition"]) == ("new", None)
    assert _audit_actions(engine, "system") == ["reopen"]


def test_an_analyst_works_a_case_from_queue_to_close(engine: Engine, app_client: TestClient) -> None:
    alerts = [make_alert(f"S{i}", severity=s) for i, s in enumerate([Severity.LOW, Severity.CRITICAL])]
    store_alerts(engine, alerts)
    add_user(engine, "ann")
    assert sign_in(app_client, "ann") == 303
    queue = app_client.get("/queue").text
    # critical first (the symbols as their rows link them: a bare "S0" may sit in a random token of the page)
    assert queue.index(">S1</a>") < queue.index(">S0</a>")
    target = alerts[0].alert_id
    token = page_csrf(app_client)
    for form in (
        {"action": "take"},
        {"action": "close", "disposition": "true_positive", "note": "<b>confirmed</b>'; DROP TABLE cases;--"},
    ):
        response = app_client.post(
            "/case/act", data={"csrf_token": token, "alert_id": target, **form}, follow_redirects=False
        )
        assert response.status_code == 303, response.text
    case = _case(engine, target)
    assert (case["state"], case["assignee"], case["disposition"], case["closed_by"]) == (
        "closed",
        "ann",
        "true_positive",
        "ann",
    )
    page = app_client.get("/case", params={"id": target}).text
    assert "&lt;b&gt;confirmed&lt;/b&gt;&#39;; DROP TABLE cases;--" in page and "<b>confirmed" not in page
    assert _audit_actions(engine, "ann") == ["login", "case.take", "case.close", "case.note"]
    assert target not in app_client.get("/queue").text  # the default queue shows open cases


def test_an_analyst_cannot_close_another_analysts_case_or_see_the_supervisor_page(
    engine: Engine, app_client: TestClient
) -> None:
    alert = make_alert()
    store_alerts(engine, [alert])
    add_user(engine, "ann")
    add_user(engine, "bob")
    with engine.begin() as conn:
        conn.execute(update(cases).values(assignee="ann", state="in_review"))
    assert sign_in(app_client, "bob") == 303
    token = page_csrf(app_client)
    refused = app_client.post(
        "/case/act",
        data={"csrf_token": token, "alert_id": alert.alert_id, "action": "close", "disposition": "false_positive"},
    )
    assert refused.status_code == 403
    assert _case(engine, alert.alert_id)["state"] == "in_review"
    assert app_client.get("/supervisor").status_code == 403
    assert app_client.get("/audit").status_code == 403
    assert _audit_actions(engine, "bob") == ["login", "refused", "forbidden", "forbidden"]


def test_csrf_missing_or_forged_is_refused_and_audited(engine: Engine, app_client: TestClient) -> None:
    alert = make_alert()
    store_alerts(engine, [alert])
    add_user(engine, "ann")
    assert sign_in(app_client, "ann") == 303
    for token in (None, "forged"):
        data = {"alert_id": alert.alert_id, "action": "take"} | ({"csrf_token": token} if token else {})
        assert app_client.post("/case/act", data=data).status_code == 403
    assert _case(engine, alert.alert_id)["state"] == "new"
    assert _audit_actions(engine, "ann") == ["login", "csrf.refused", "csrf.refused"]


def test_a_case_of_another_tenant_is_not_found(engine: Engine, app_client: TestClient) -> None:
    theirs, ours = make_alert("THEIRS", venue="sim"), make_alert("OURS", venue="twse")
    store_alerts(engine, [theirs, ours])
    with engine.begin() as conn:
        users.add_tenant(conn, "tw", ["twse"], "test")
    add_user(engine, "tina", "supervisor", tenant="tw")
    assert sign_in(app_client, "tina") == 303
    assert app_client.get("/case", params={"id": theirs.alert_id}).status_code == 404
    assert app_client.get("/case", params={"id": ours.alert_id}).status_code == 200
    queue = app_client.get("/queue", params={"state": "all"}).text
    assert "OURS" in queue and "THEIRS" not in queue
    token = page_csrf(app_client)
    data = {"csrf_token": token, "alert_id": theirs.alert_id, "action": "take"}
    assert app_client.post("/case/act", data=data).status_code == 404
    assert _case(engine, theirs.alert_id)["state"] == "new"


def test_wrong_passwords_lock_the_user_and_then_the_client(
    engine: Engine, app_client: TestClient, console_settings: Settings
) -> None:
    add_user(engine, "ann")
    statuses = [sign_in(app_client, "ann", "wrong password!") for _ in range(12)]
    limit = console_settings.console.login_max_failures
    assert statuses == [401] * 12
    assert sign_in(app_client, "ann") == 401  # the right password does not open a locked account
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(sessions)).scalar_one() == 0
    actions = _audit_actions(engine, "ann")
    # each checked password is one line, the lock one more; the attempts refused while locked are only counted
    assert actions.count("login.failed") == limit and actions.count("login.locked") == 1 and "login" not in actions
    add_user(engine, "bob")
    for _ in range(console_settings.console.client_max_failures):
        sign_in(app_client, "nobody", "wrong password!")
    assert sign_in(app_client, "bob") == 401  # this address has guessed too often
    with engine.begin() as conn:  # the lock's period ends: the name's counter starts again from nothing
        conn.execute(text("UPDATE login_throttle SET locked_until = now() - interval '1 second'"))
    assert sign_in(app_client, "bob") == 303
    assert sign_in(app_client, "ann", "wrong password!") == 401
    assert sign_in(app_client, "ann") == 303  # one wrong guess after a lock expired does not lock it again


def test_the_session_cookie_is_secure_httponly_samesite(engine: Engine, app_client: TestClient) -> None:
    add_user(engine, "ann")
    login_page = app_client.get("/login")
    response = app_client.post(
        "/login",
        data={"username": "ann", "password": PASSWORD, "csrf_token": login_page.cookies.get("__Host-tw_login")},
        follow_redirects=False,
    )
    cookie = next(
        v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("__Host-tw_session=")
    )
    parts = {part.strip() for part in cookie.split(";")}
    assert {"HttpOnly", "Secure", "SameSite=strict", "Path=/"} <= parts
    assert not any(p.lower().startswith("domain") for p in parts)  # what the __Host- prefix requires
    assert response.headers["strict-transport-security"].startswith("max-age=")
    assert PASSWORD not in response.text


def test_an_expired_session_or_a_disabled_user_is_signed_out(engine: Engine, app_client: TestClient) -> None:
    add_user(engine, "ann")
    assert sign_in(app_client, "ann") == 303
    assert app_client.get("/queue").status_code == 200
    with engine.begin() as conn:
        conn.execute(update(sessions).values(last_seen_at=func.now() - timedelta(hours=1)))
    response = app_client.get("/queue", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert sign_in(app_client, "ann") == 303
    with engine.begin() as conn:
        users.set_disabled(conn, "ann", True, "test")
    assert app_client.get("/queue", follow_redirects=False).status_code == 303
    assert sign_in(app_client, "ann") == 401


def test_oversized_notes_and_bodies_are_refused(engine: Engine, app_client: TestClient) -> None:
    alert = make_alert()
    store_alerts(engine, [alert])
    add_user(engine, "ann")
    assert sign_in(app_client, "ann") == 303
    token = page_csrf(app_client)
    data = {"csrf_token": token, "alert_id": alert.alert_id, "note": "x" * 10_001}
    assert app_client.post("/case/note", data=data).status_code == 413
    data["note"] = "x" * 200_000
    assert app_client.post("/case/note", data=data).status_code == 413
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM case_notes")).scalar_one() == 0


def test_bulk_close_is_all_or_nothing(engine: Engine, app_client: TestClient) -> None:
    alerts = [make_alert(f"B{i}") for i in range(3)]
    store_alerts(engine, alerts)
    add_user(engine, "ann")
    add_user(engine, "sue", "supervisor")
    with engine.begin() as conn:
        conn.execute(update(cases).where(cases.c.symbol != "B2").values(assignee="ann", state="in_review"))
    assert sign_in(app_client, "ann") == 303
    selection = [a.alert_id for a in alerts]
    form = {
        "csrf_token": page_csrf(app_client),
        "disposition": "false_positive",
        "note": "noise",
        "alert_id": selection,
    }
    refused = app_client.post("/cases/bulk-close", data=form)
    assert refused.status_code == 403 and "assignee" in refused.text  # B2 is not hers
    assert {_case(engine, a.alert_id)["state"] for a in alerts} == {"in_review", "new"}
    app_client.cookies.clear()
    assert sign_in(app_client, "sue") == 303
    form["csrf_token"] = page_csrf(app_client)
    closed = app_client.post("/cases/bulk-close", data=form, follow_redirects=False)
    assert closed.status_code == 303, closed.text
    assert {_case(engine, a.alert_id)["disposition"] for a in alerts} == {"false_positive"}
    rates = app_client.get("/supervisor").text
    assert "100.0 %" in rates and AlertKind.SPOOFING.value in rates


def test_the_api_answers_a_service_token_and_not_a_revoked_one(engine: Engine, app_client: TestClient) -> None:
    alert = make_alert()
    store_alerts(engine, [alert])
    with engine.begin() as conn:
        token = users.add_token(conn, "risk-feed", TENANT, "test")
    headers = {"Authorization": f"Bearer {token.secret}"}
    listed = app_client.get("/api/v1/cases", headers=headers)
    assert listed.status_code == 200
    assert [c["alert_id"] for c in listed.json()["cases"]] == [alert.alert_id]
    detail = app_client.get(f"/api/v1/cases/{alert.alert_id}", headers=headers).json()
    assert detail["rule"] == "spoofing" and not detail["rule_is_current"]  # raised by "patterns-test"
    bars = {line["key"]: (line["comparison"], line["threshold"], line["passed"]) for line in detail["evidence"]}
    assert bars["layer_cancel_rel"] == ("≥", 6.0, True) and bars["cancel_l25_z"] == ("≥", 3.0, True)
    assert bars["layers"][2] is False and bars["layer_side"] == (None, None, None)  # fired on cycles; context
    assert "/api/v1/cases" in app_client.get("/api/openapi.json").json()["paths"]
    with engine.begin() as conn:
        users.revoke_token(conn, token.token_id, "test")
    assert app_client.get("/api/v1/cases", headers=headers).status_code == 401
    assert app_client.get("/api/v1/cases", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT token_hash FROM api_tokens")).scalar_one()
    assert token.secret not in stored


def test_assign_escalate_link_and_the_evidence_report(engine: Engine, app_client: TestClient) -> None:
    first, second, other = make_alert("LNK"), make_alert("LNK", start=1_700_000_600_000), make_alert("ELSE")
    store_alerts(engine, [first, second, other])
    add_user(engine, "ann")
    add_user(engine, "sue", "supervisor")
    assert sign_in(app_client, "sue") == 303
    token = page_csrf(app_client)

    def post(path: str, **form: str) -> int:
        status: int = app_client.post(path, data={"csrf_token": token, **form}, follow_redirects=False).status_code
        return status

    assert post("/case/act", alert_id=first.alert_id, action="assign", assignee="ann") == 303
    assert post("/case/act", alert_id=first.alert_id, action="assign", assignee="nobody") == 409
    assert post("/case/act", alert_id=first.alert_id, action="escalate", note="needs a second look") == 303
    assert _case(engine, first.alert_id)["state"] == "escalated"
    assert post("/case/link", alert_id=first.alert_id, linked_id=second.alert_id) == 303
    assert post("/case/link", alert_id=first.alert_id, linked_id=other.alert_id) == 409  # another symbol
    page = app_client.get("/case", params={"id": first.alert_id}).text
    assert page.count('class="badge">linked<') == 1
    report = app_client.get("/case/report", params={"id": first.alert_id})
    assert report.status_code == 200 and report.text.count("<svg") >= 3 and "needs a second look" in report.text
    assert _audit_actions(engine, "sue")[1:] == [
        "case.assign",
        "case.escalate",
        "case.note",
        "case.link",
        "case.report",
    ]


def test_the_book_chart_picks_its_snapshots_in_sql_as_the_chart_would(engine: Engine) -> None:
    from tapewatch.console import chart_data, charts
    from tests.console_support import seed_market

    seed_market(engine, "BOOK", "sim", 1_700_000_000_000, 1_700_000_000_000 + 31 * 60_000)
    with engine.connect() as conn:
        for start_s, minutes, width in ((0, 21, 900), (37, 7, 900), (301, 3, 400), (5, 30, 250)):
            start = 1_700_000_000_000 + start_s * 1000
            view = charts.Span(start, start + minutes * 60_000)
            window = chart_data.Window("BOOK", "sim", view, view, start)
            every = chart_data.book_points(conn, window)
            columns = charts.book_columns(view, width)
            frame = charts._frame(view, width, 260)
            expected = [b.ts_ms for b in charts._sample(every, frame, columns)]
            chosen = chart_data.book_points(conn, window, columns=columns)
            assert [b.ts_ms for b in chosen] == expected, (start_s, minutes, width)
            assert chosen == [b for b in every if b.ts_ms in set(expected)]


def test_the_case_page_shows_the_venue_level_wash_indicator_beside_the_alert(
    engine: Engine, app_client: TestClient
) -> None:
    """The windows of the symbol's trade sizes its episode falls in, read by the serving role; a case without one
    says so."""
    washy = make_alert("WASHY", kind=AlertKind.WASH_TRADING)
    plain = make_alert("PLAIN", kind=AlertKind.WASH_TRADING)
    store_alerts(engine, [washy, plain])
    day = washy.window_start - washy.window_start % 86_400_000
    indicator = VenueIndicator(
        symbol="WASHY", venue=washy.venue, ts=day + 86_400_000, window_start=day, window_end=day + 86_400_000,
        complete=True, trades=4_210, lot=1.0, benford=WashTest.DOES_NOT_CONFORM, benford_n=4_200, benford_chi2=88.0,
        benford_p=1e-12, benford_mad=0.0251, benford_band="nonconformity", decades=3, rounding=WashTest.CONFORMS,
        round_at=640, round_near=90, round_ratio=7.1, round_share=0.31, round_p=1e-9, tail_alpha=1.62, tail_n=200,
        version="wash-test",
    )  # fmt: skip
    elsewhere = indicator.model_copy(update={"symbol": "PLAIN", "window_start": day - 86_400_000, "window_end": day})
    with engine.begin() as conn:
        db.copy_rows(conn, db.venue_indicators, [db.record_doc(indicator), db.record_doc(elsewhere)])
    add_user(engine, "ana")
    assert sign_in(app_client, "ana") == 303
    page = app_client.get("/case", params={"id": washy.alert_id})
    assert page.status_code == 200
    section = page.text[page.text.index('id="indicators"') :]
    assert "does not conform · MAD 0.0251 (nonconformity)" in section
    assert "conforms · 7.1× the sizes beside them · 31 % of trades ≥ 100 lots" in section
    assert "α 1.62 (200 largest)" in section and "4210" in section
    other = app_client.get("/case", params={"id": plain.alert_id}).text
    assert 'id="no-indicators"' in other and 'id="indicators"' not in other  # the day before its episode: not shown
