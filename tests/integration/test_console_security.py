"""The console's security, adversarially, against the real console and PostgreSQL.

Two tenants share a venue: ``alpha`` (sim and its own venue) and ``bravo`` (sim and twse). Bravo's people work
their cases first (a note, an assignment, a link, a case of a venue alpha does not have). Then every route of the
app's own route table is asked by every kind of principal of alpha — nobody, an analyst, a supervisor, an admin,
a service token — about one of alpha's cases and about one of bravo's: each answer's status is the rule's, no
answer holds anything of bravo's, and bravo's rows are unchanged afterwards. A route added without a rule here
fails the suite. Then: CSRF missing or forged on every state-changing route; what the serving role may not do to the
audit; the chain's integrity; sign-in abuse (enumeration, forged forwarded headers, parallel bursts); live
streams that end with the session.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from unittest.mock import ANY

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from starlette.routing import Mount, Route
from starlette.testclient import TestClient
from typer.testing import CliRunner

from tapewatch.cli.app import cli
from tapewatch.console import audit as audit_chain
from tapewatch.console import users
from tapewatch.console.accounts import AccountFeed
from tapewatch.console.app import create_app
from tapewatch.console.live import AlertListener
from tapewatch.console.schema import accounts, audit, case_links, case_notes, cases, sessions
from tapewatch.kafka_producer import FLUSH_TIMEOUT_S, DeliveryError, KafkaProducer
from tapewatch.records import AccountRef, Alert, ExecutionReport, account_key
from tapewatch.settings import Settings
from tapewatch.sinks import db
from tapewatch.topics import ACCOUNTS, DLQ_PRODUCERS
from tests.browser import served
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
from tests.kafka_reader import read_topic
from tests.stream_runs import private_topics

pytestmark = pytest.mark.integration

OTHER = "bravo"
ALPHA = "alpha"
ALPHA_VENUE = "xalp"  # a venue only alpha has: the fresh cases the writes work on are alpha's alone
ROLES = ("anonymous", "analyst", "supervisor", "admin", "service")
SESSION_ROLES = ("analyst", "supervisor", "admin")
#: what must never appear in an answer to alpha: bravo's tenant, people, notes and its own symbol
FOREIGN = ("bravo", "SECRET-BRAVO", "BRAVOONLY")
#: bravo's account, which its admin keeps (owner SECRET-BRAVO)
BRAVO_ACCOUNT = "BRAVOONLY-ACC"


@dataclass
class World:
    settings: Settings
    owner: Engine
    app: FastAPI
    shared: Alert  # a sim alert: alpha and bravo each have their own case of it
    bravo_only: Alert  # a twse alert: bravo's only
    bravo_only_twin: Alert  # bravo's second case of that symbol (the link target)
    clients: dict[str, TestClient] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # role -> CSRF token of its session
    twins: dict[str, str] = field(default_factory=dict)  # an own case -> a second alpha case of its symbol


def _bravo_works_its_cases(world: World) -> None:
    """Bravo's people: a note on each case, an assignment, a link — all of which alpha must never see."""
    with TestClient(world.app, base_url=BASE_URL) as client:
        assert sign_in(client, "bravo-analyst") == 303
        token = page_csrf(client)
        for target in (world.shared, world.bravo_only):
            form = {"csrf_token": token, "alert_id": target.alert_id}
            assert client.post("/case/act", data={**form, "action": "take"}, follow_redirects=False).status_code == 303
            note = {**form, "note": f"SECRET-BRAVO note on {target.symbol}"}
            assert client.post("/case/note", data=note, follow_redirects=False).status_code == 303
        link = {"csrf_token": token, "alert_id": world.bravo_only.alert_id, "linked_id": world.bravo_only_twin.alert_id}
        assert client.post("/case/link", data=link, follow_redirects=False).status_code == 303
    with TestClient(world.app, base_url=BASE_URL) as client:
        assert sign_in(client, "bravo-admin") == 303
        account = {"csrf_token": page_csrf(client), "account": BRAVO_ACCOUNT, "owner": "SECRET-BRAVO", "group": "G-B"}
        saved = client.post("/accounts", data=account, follow_redirects=False)
        assert (saved.status_code, saved.headers["location"]) == (303, "/accounts?done=saved")


@pytest.fixture(scope="module")
def world(services: Settings) -> Iterator[World]:
    # topics of its own: an admin's account changes are published to ref.accounts
    with private_topics(services) as topical, console_schema(topical) as settings:
        owner = db.make_engine(settings)
        with owner.begin() as conn:
            users.add_tenant(conn, OTHER, ["sim", "twse"], "test")
            users.add_tenant(conn, ALPHA, ["sim", ALPHA_VENUE], "test")
        for name, role in (("a-analyst", "analyst"), ("a-super", "supervisor"), ("a-admin", "admin")):
            add_user(owner, name, role, tenant=ALPHA)
        add_user(owner, "bravo-analyst", "analyst", tenant=OTHER)
        add_user(owner, "bravo-admin", "admin", tenant=OTHER)
        shared = make_alert("SHRD")
        bravo_only = make_alert("BRAVOONLY", venue="twse")
        twin = make_alert("BRAVOONLY", venue="twse", start=bravo_only.window_start + 600_000)
        store_alerts(owner, [shared, bravo_only, twin])
        app = create_app(settings)
        built = World(settings, owner, app, shared, bravo_only, twin)
        _bravo_works_its_cases(built)
        try:
            yield built
        finally:
            for client in built.clients.values():
                client.close()
            owner.dispose()


def _client(world: World, role: str) -> TestClient:
    """One signed-in client per role of alpha (the service carries its token; nobody carries nothing)."""
    if role in world.clients:
        return world.clients[role]
    client = TestClient(world.app, base_url=BASE_URL)
    if role in SESSION_ROLES:
        assert sign_in(client, {"analyst": "a-analyst", "supervisor": "a-super", "admin": "a-admin"}[role]) == 303
        world.tokens[role] = page_csrf(client)
    elif role == "service":
        with world.owner.begin() as conn:
            token = users.add_token(conn, "risk-feed", ALPHA, "test")
        client.headers["Authorization"] = f"Bearer {token.secret}"
    world.clients[role] = client
    return client


# --- the rules: one per route of the app's route table -------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """How a route answers alpha's principals: ``own`` per role about alpha's case, ``foreign`` about bravo's
    (None: the route takes no case). ``request`` builds the call from (world, role, case id, form token)."""

    request: Callable[[World, str, str, str], tuple[str, str, dict[str, Any]]] | None
    own: dict[str, int]
    foreign: dict[str, int] | None = None
    special: str = ""  # tested by its own test below (named here)
    # the audit page lists alpha's own probes, which name the bravo case alpha asked for: alpha's data, no leak
    shows_probes: bool = False


def _get(path: str, *, with_id: bool = False) -> Callable[[World, str, str, str], tuple[str, str, dict[str, Any]]]:
    def build(world: World, role: str, case: str, token: str) -> tuple[str, str, dict[str, Any]]:
        return "GET", path.replace("{alert_id}", case), ({"params": {"id": case}} if with_id else {})

    return build


def _post(path: str, **form: str) -> Callable[[World, str, str, str], tuple[str, str, dict[str, Any]]]:
    def build(world: World, role: str, case: str, token: str) -> tuple[str, str, dict[str, Any]]:
        data = {"alert_id": case, **form} | ({"csrf_token": token} if token else {})
        return "POST", path, {"data": data}

    return build


def _link(world: World, role: str, case: str, token: str) -> tuple[str, str, dict[str, Any]]:
    twin = world.bravo_only_twin.alert_id if case == world.bravo_only.alert_id else world.twins[case]
    data = {"alert_id": case, "linked_id": twin} | ({"csrf_token": token} if token else {})
    return "POST", "/case/link", {"data": data}


def _remove_account(world: World, role: str, case: str, token: str) -> tuple[str, str, dict[str, Any]]:
    """The removal of an alpha account that is there (one per role)."""
    account = f"ALPHA-{role.upper()}"
    with world.owner.begin() as conn:
        conn.execute(
            insert(accounts)
            .values(tenant=ALPHA, account=account, updated_at=func.now(), updated_by="test")
            .on_conflict_do_nothing()
        )
    return "POST", "/accounts/remove", {"data": {"account": account} | ({"csrf_token": token} if token else {})}


def _accounts_of(world: World, tenant: str) -> list[tuple[Any, ...]]:
    with world.owner.connect() as conn:
        query = select(accounts).where(accounts.c.tenant == tenant).order_by(accounts.c.account)
        return [tuple(row) for row in conn.execute(query)]


def _everyone(status: int) -> dict[str, int]:
    return dict.fromkeys(ROLES, status)


PAGE = {"anonymous": 303, "analyst": 200, "supervisor": 200, "admin": 200, "service": 303}
PAGE_FOREIGN = {"anonymous": 303, "analyst": 404, "supervisor": 404, "admin": 404, "service": 303}
WRITE = {"anonymous": 401, "analyst": 303, "supervisor": 303, "admin": 303, "service": 401}
WRITE_FOREIGN = {"anonymous": 401, "analyst": 404, "supervisor": 404, "admin": 404, "service": 401}
SUPERVISORS = {"anonymous": 303, "analyst": 403, "supervisor": 200, "admin": 200, "service": 303}
ADMINS = {"anonymous": 303, "analyst": 403, "supervisor": 403, "admin": 200, "service": 303}
ADMIN_WRITE = {"anonymous": 401, "analyst": 403, "supervisor": 403, "admin": 303, "service": 401}
API = {"anonymous": 401, "analyst": 200, "supervisor": 200, "admin": 200, "service": 200}
API_FOREIGN = {"anonymous": 401, "analyst": 404, "supervisor": 404, "admin": 404, "service": 404}

RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/login"): Rule(_get("/login"), _everyone(200)),
    ("POST", "/login"): Rule(None, {}, special="test_one_answer_for_every_failed_sign_in"),
    ("POST", "/logout"): Rule(None, {}, special="test_logout_ends_the_session_and_its_live_stream"),
    ("GET", "/"): Rule(_get("/"), _everyone(303)),
    ("GET", "/queue"): Rule(_get("/queue"), PAGE),
    ("GET", "/queue/rows"): Rule(_get("/queue/rows"), PAGE),
    ("GET", "/events"): Rule(None, {}, special="test_logout_ends_the_session_and_its_live_stream"),
    ("GET", "/case"): Rule(_get("/case", with_id=True), PAGE, PAGE_FOREIGN),
    ("GET", "/case/book.json"): Rule(_get("/case/book.json", with_id=True), PAGE, PAGE_FOREIGN),
    ("GET", "/case/report"): Rule(_get("/case/report", with_id=True), PAGE, PAGE_FOREIGN),
    ("POST", "/case/act"): Rule(_post("/case/act", action="take"), WRITE, WRITE_FOREIGN),
    ("POST", "/case/note"): Rule(_post("/case/note", note="alpha's note"), WRITE, WRITE_FOREIGN),
    ("POST", "/case/link"): Rule(_link, WRITE, WRITE_FOREIGN),
    ("POST", "/cases/bulk-close"): Rule(
        _post("/cases/bulk-close", disposition="false_positive", note="noise"),
        WRITE | {"analyst": 403},  # an analyst closes only what is assigned to them
        WRITE_FOREIGN,
    ),
    ("GET", "/supervisor"): Rule(_get("/supervisor"), SUPERVISORS),
    ("GET", "/audit"): Rule(_get("/audit"), SUPERVISORS, shows_probes=True),
    ("GET", "/accounts"): Rule(_get("/accounts"), ADMINS),
    ("POST", "/accounts"): Rule(_post("/accounts", account="ALPHA-ACC", owner="ALPHA-OWNER"), ADMIN_WRITE),
    ("POST", "/accounts/remove"): Rule(_remove_account, ADMIN_WRITE),
    ("GET", "/api/v1/cases"): Rule(_get("/api/v1/cases"), API),
    ("GET", "/api/v1/cases/{alert_id}"): Rule(_get("/api/v1/cases/{alert_id}"), API, API_FOREIGN),
    ("GET", "/api/v1/false-positive-rates"): Rule(
        _get("/api/v1/false-positive-rates"), API | {"analyst": 403, "service": 403}
    ),
    ("GET", "/api/openapi.json"): Rule(_get("/api/openapi.json"), _everyone(200)),
    ("MOUNT", "/static"): Rule(_get("/static/app.css"), _everyone(200)),
}


def route_table(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves (a mount as ``MOUNT``), included routers flattened."""
    return _routes(app.routes, "")


def _routes(routes: Any, prefix: str) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI includes a router lazily
        if included is not None:
            found |= _routes(included.routes, prefix + route.include_context.prefix)
        elif isinstance(route, Mount):
            found.add(("MOUNT", prefix + route.path))
        elif isinstance(route, Route):
            found.update((method, prefix + route.path) for method in (route.methods or set()) - {"HEAD"})
    return found


def _own_case(world: World, role: str, route: tuple[str, str]) -> str:
    """A fresh alpha case for one (role, route), so one write's effect never decides another's status; with a
    second case of its symbol (what a link needs)."""
    symbol = f"W{sorted(RULES).index(route)}{role[:3].upper()}"
    first, second = (
        make_alert(symbol, venue=ALPHA_VENUE),
        make_alert(symbol, venue=ALPHA_VENUE, start=1_700_000_900_000),
    )
    store_alerts(world.owner, [first, second])
    world.twins[first.alert_id] = second.alert_id
    return first.alert_id


def _bravo_rows(world: World) -> list[tuple[Any, ...]]:
    with world.owner.connect() as conn:
        rows: list[tuple[Any, ...]] = []
        for table in (cases, case_notes, case_links, accounts):
            query = select(table).where(table.c.tenant == OTHER).order_by(*table.primary_key)
            rows += [tuple(r) for r in conn.execute(query)]
        return rows


def test_every_route_has_a_rule(world: World) -> None:
    served_routes = route_table(world.app)
    assert served_routes - RULES.keys() == set(), "routes without a security rule in this suite"
    assert RULES.keys() - served_routes == set(), "rules for routes the app no longer serves"


@pytest.mark.parametrize("route", sorted(RULES), ids=lambda r: f"{r[0]} {r[1]}")
def test_route_by_role_and_tenant(world: World, route: tuple[str, str]) -> None:
    rule = RULES[route]
    if rule.special or rule.request is None:
        pytest.skip(f"covered by {rule.special}")
    before = _bravo_rows(world)
    failures = []
    for role in ROLES:
        _client(world, role)
        targets = [("own", _own_case(world, role, route), rule.own)]
        if rule.foreign is not None:
            targets.append(("foreign", world.bravo_only.alert_id, rule.foreign))
        for label, case, expected in targets:
            method, path, kwargs = rule.request(world, role, case, world.tokens.get(role, ""))
            answer = _client(world, role).request(method, path, follow_redirects=False, **kwargs)
            if answer.status_code != expected[role]:
                failures.append(f"{role} × {label}: {answer.status_code}, expected {expected[role]}")
            leaked = [marker for marker in FOREIGN if marker.lower() in answer.text.lower()]
            if world.bravo_only.alert_id in answer.text and not rule.shows_probes:
                leaked.append("bravo's alert id")
            if leaked:
                failures.append(f"{role} × {label}: the answer holds {leaked}")
    assert not failures, failures
    assert _bravo_rows(world) == before, "bravo's cases, notes or links changed"


def test_a_probe_of_another_tenant_is_audited_and_a_shared_alert_stays_two_cases(world: World) -> None:
    client = _client(world, "analyst")
    assert client.get("/case", params={"id": world.bravo_only.alert_id}).status_code == 404
    with world.owner.connect() as conn:
        probes = conn.execute(
            select(audit.c.actor, audit.c.after).where(audit.c.tenant == ALPHA, audit.c.action == "not_found")
        ).all()
    assert ("a-analyst", world.bravo_only.alert_id) in {(a, (after or {}).get("asked")) for a, after in probes}
    # alpha's work on the shared alert is alpha's case only: bravo's keeps its own assignee
    form = {"csrf_token": world.tokens["analyst"], "alert_id": world.shared.alert_id, "action": "take"}
    assert client.post("/case/act", data=form, follow_redirects=False).status_code == 303
    with world.owner.connect() as conn:
        assignees = dict(
            conn.execute(
                select(cases.c.tenant, cases.c.assignee).where(cases.c.alert_id == world.shared.alert_id)
            ).all()
        )
    assert assignees == {TENANT: None, ALPHA: "a-analyst", OTHER: "bravo-analyst"}
    page = client.get("/case", params={"id": world.shared.alert_id}).text
    assert "SECRET-BRAVO" not in page and "bravo-analyst" not in page


def test_a_tenants_own_alert_is_its_case_alone_and_no_other_tenant_reads_it(world: World) -> None:
    """An alert from bravo's drop copy (``tenant``: bravo), on a venue alpha's cases cover too: bravo gets its case;
    alpha gets none, its every principal finds it not found on the page and the API, and alpha's serving role cannot
    read the alert's row though it reads the public ones; a connection with no tenant reads none of it."""
    firm = make_alert("BRAVOFIRM", venue="sim", tenant=OTHER, start=1_700_200_000_000)
    assert firm.alert_id != make_alert("BRAVOFIRM", venue="sim", start=1_700_200_000_000).alert_id
    store_alerts(world.owner, [firm])
    with world.owner.connect() as conn:
        owners = set(conn.execute(select(cases.c.tenant).where(cases.c.alert_id == firm.alert_id)).scalars())
    assert owners == {OTHER}
    for role in ("analyst", "supervisor", "admin", "service"):
        client = _client(world, role)
        page = client.get("/case", params={"id": firm.alert_id}) if role != "service" else None
        api = client.get(f"/api/v1/cases/{firm.alert_id}")
        for answer in (page, api):
            assert answer is None or (answer.status_code == 404 and "BRAVOFIRM" not in answer.text), role
    serving = db.make_engine(world.settings, serving=True)
    try:
        for tenant, expected in ((ALPHA, 0), (OTHER, 1), (None, 0)):
            with serving.begin() as conn:
                if tenant is not None:
                    conn.execute(text("SELECT set_config('tapewatch.tenant', :tenant, true)"), {"tenant": tenant})
                seen = {
                    str(row)
                    for row in conn.execute(
                        select(db.alerts.c.alert_id).where(
                            db.alerts.c.alert_id.in_([firm.alert_id, world.shared.alert_id])
                        )
                    ).scalars()
                }
            assert seen == {world.shared.alert_id, *([firm.alert_id] if expected else [])}, tenant
    finally:
        serving.dispose()


def test_a_firms_drop_copy_is_read_by_its_own_tenant_only(world: World) -> None:
    report = ExecutionReport(symbol="BRAVOFIRM", venue="sim", ts=1_700_200_000_000, exec_id="E-BRAVO-1",
                             order_id="O-1", tenant=OTHER, account="BRAVO-ACC", exec_type="new", side="BUY",
                             price=10.0, quantity=100.0, leaves_qty=100.0)  # fmt: skip
    with world.owner.begin() as conn:
        db.copy_rows(conn, db.executions, [db.record_doc(report)])
    serving = db.make_engine(world.settings, serving=True)
    try:
        for tenant, expected in ((ALPHA, []), (OTHER, ["BRAVO-ACC"]), (None, [])):
            with serving.begin() as conn:
                if tenant is not None:
                    conn.execute(text("SELECT set_config('tapewatch.tenant', :tenant, true)"), {"tenant": tenant})
                assert list(conn.execute(select(db.executions.c.account)).scalars()) == expected, tenant
    finally:
        serving.dispose()


# --- the tenant's accounts ----------------------------------------------------------------------------------------
def test_an_admins_account_changes_reach_the_stream_and_stay_its_tenants(world: World) -> None:
    """Alpha's admin adds, changes and removes an account on the page: each change is in alpha's rows with its audit
    line and on ref.accounts (the removal a tombstone). The name of bravo's account is alpha's own row when alpha
    saves it; bravo's row is never touched nor shown; a value the contract refuses is refused; `console accounts
    publish` sends the tenant's accounts again."""
    client, token = _client(world, "admin"), world.tokens["admin"]

    def post(path: str, **form: str) -> httpx.Response:
        answer: httpx.Response = client.post(path, data={"csrf_token": token, **form}, follow_redirects=False)
        return answer

    def outcome(answer: httpx.Response) -> str:
        assert answer.status_code == 303, answer.text[-500:]
        return answer.headers["location"].removeprefix("/accounts?done=")

    bravo_before = _accounts_of(world, OTHER)
    assert outcome(post("/accounts", account="ACC-1", owner="OWN-1")) == "saved"
    assert outcome(post("/accounts", account="ACC-1", owner="OWN-1")) == "unchanged"
    assert outcome(post("/accounts", account="ACC-1", owner="OWN-2", group="GRP-1")) == "saved"
    assert outcome(post("/accounts", account=BRAVO_ACCOUNT, owner="OWN-3")) == "saved"
    assert post("/accounts", account="two words", owner="OWN-4").status_code == 422
    assert post("/accounts", account="", owner="OWN-4").status_code == 422
    assert post("/accounts/remove", account="NO-SUCH").status_code == 404
    page = client.get("/accounts").text
    assert all(text in page for text in ("ACC-1", "OWN-2", "GRP-1", "OWN-3")), page[-2000:]
    assert "Saved, and the stream has it." in client.get("/accounts", params={"done": "saved"}).text
    assert "SECRET-BRAVO" not in page and "G-B" not in page
    assert outcome(post("/accounts/remove", account="ACC-1")) == "removed"
    assert _accounts_of(world, OTHER) == bravo_before
    assert [row[1] for row in _accounts_of(world, ALPHA) if row[1] in ("ACC-1", BRAVO_ACCOUNT)] == [BRAVO_ACCOUNT]
    with world.owner.connect() as conn:
        trail = conn.execute(
            select(audit.c.action, audit.c.after)
            .where(audit.c.tenant == ALPHA, audit.c.object_type == "account", audit.c.object_id == "ACC-1")
            .order_by(audit.c.audit_id)
        ).all()
    assert [(a, after) for a, after in trail] == [
        ("account.add", {"owner": "OWN-1", "group": None}),
        ("account.change", {"owner": "OWN-2", "group": "GRP-1"}),
        ("account.remove", None),
    ]
    topic = world.settings.topic(ACCOUNTS.name)
    versions = read_topic(world.settings, topic, 3, keep=lambda m: m.key == account_key(ALPHA, "ACC-1"))
    assert [orjson.loads(m.value) if m.value else None for m in versions] == [
        AccountRef(tenant=ALPHA, account="ACC-1", owner="OWN-1", ts=1).model_dump() | {"ts": ANY},
        AccountRef(tenant=ALPHA, account="ACC-1", owner="OWN-2", group="GRP-1", ts=1).model_dump() | {"ts": ANY},
        None,
    ]
    env = {"TAPEWATCH_POSTGRES_URL": world.settings.postgres.url_plain,
           "TAPEWATCH_TOPIC_PREFIX": world.settings.kafka.topic_prefix}  # fmt: skip
    published = CliRunner().invoke(cli(), ["console", "accounts", "publish", "--tenant", ALPHA], env=env)
    assert published.exit_code == 0, published.output
    mine = read_topic(world.settings, topic, 2, keep=lambda m: m.key == account_key(ALPHA, BRAVO_ACCOUNT))
    assert [orjson.loads(m.value)["owner"] for m in mine] == ["OWN-3", "OWN-3"]
    theirs = read_topic(world.settings, topic, 1, keep=lambda m: m.key == account_key(OTHER, BRAVO_ACCOUNT))
    assert [orjson.loads(m.value)["owner"] for m in theirs] == ["SECRET-BRAVO"]  # bravo's, sent once, by bravo
    unknown = CliRunner().invoke(cli(), ["console", "accounts", "publish", "--tenant", "nobody"], env=env)
    assert unknown.exit_code != 0 and "no tenant 'nobody'" in str(unknown.exception)  # main() prints it


def test_an_account_change_the_stream_refuses_is_not_made(world: World) -> None:
    """Kafka refusing a change (and then its compensation: the topic is missing) makes nothing, and the 503 says the
    stream may still receive it and how to mend that."""
    client, token = _client(world, "admin"), world.tokens["admin"]
    assert client.post("/accounts", data={"csrf_token": token, "account": "KEPT", "owner": "O-1"}).status_code == 200
    before = _accounts_of(world, ALPHA)
    # the real broker refusing: a topic it does not have (it creates none), given up on after a second
    missing = world.settings.updated(kafka={"topic_prefix": f"missing-{uuid.uuid4().hex[:8]}."})
    refusing = AccountFeed(missing, **{"topic.metadata.propagation.max.ms": 1000})
    feed, world.app.state.account_feed = world.app.state.account_feed, refusing
    try:
        for path, form in (("/accounts", {"account": "NEVER", "owner": "O-2"}), ("/accounts", {"account": "KEPT"}),
                           ("/accounts/remove", {"account": "KEPT"})):  # fmt: skip
            answer = client.post(path, data={"csrf_token": token, **form}, follow_redirects=False)
            assert answer.status_code == 503 and "nothing was changed" in answer.text, (path, form)
            assert "run `tapewatch console accounts publish --tenant alpha`" in answer.text, answer.text[-500:]
    finally:
        world.app.state.account_feed = feed
        refusing.close()
    assert _accounts_of(world, ALPHA) == before
    with world.owner.connect() as conn:
        lines = conn.execute(
            select(audit.c.action, audit.c.object_id).where(audit.c.tenant == ALPHA, audit.c.object_type == "account")
        ).all()
    assert ("account.add", "KEPT") in lines and not {("account.add", "NEVER"), ("account.remove", "KEPT")} & set(lines)


class _ImpatientProducer(KafkaProducer):
    """A producer whose wait of 0 s gives up without waking the broker: librdkafka's flush sends what lingers at
    once, even for 0 s, so on a busy machine the acknowledgement could come before the wait ends, and the change be
    made — the machine's timing would decide what the test tests."""

    def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> None:
        if timeout_s > 0:
            super().flush(timeout_s)
        elif self.counters.sent > self.delivered:
            raise DeliveryError("kafka: not acknowledged within 0 s")


class _GivingUpAtOnce(AccountFeed):
    """The console's feed, its producer impatient (the compensation's wait is a real one)."""

    def _made(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = _ImpatientProducer(self._settings, DLQ_PRODUCERS, **self._overrides)
        return self._producer


def test_after_a_refused_account_change_the_streams_newest_record_is_the_tables(world: World) -> None:
    """A change the page gave up waiting for must not leave the stream ahead of the table: the page refuses (503),
    and each account's newest record on ref.accounts is its committed row, or a tombstone for an account the table
    does not hold. Here each change lingers in the producer's queue (5 s) while the page waits for nothing, so the
    page always gives up first and the change is purged unsent; a change already on its way when the page gives up
    (which the page cannot purge) is ordered before the compensation on its key's partition all the same."""
    client, token = _client(world, "admin"), world.tokens["admin"]
    kept = {"csrf_token": token, "account": "LATE-KEPT", "owner": "O-1"}
    assert client.post("/accounts", data=kept, follow_redirects=False).status_code == 303
    before = _accounts_of(world, ALPHA)
    impatient = _GivingUpAtOnce(world.settings, publish_timeout_s=0.0, **{"linger.ms": 5_000})
    feed, world.app.state.account_feed = world.app.state.account_feed, impatient
    try:
        for path, form in (("/accounts", {"account": "LATE-NEW", "owner": "O-2"}),
                           ("/accounts", {"account": "LATE-KEPT", "owner": "O-3"}),
                           ("/accounts/remove", {"account": "LATE-KEPT"})):  # fmt: skip
            answer = client.post(path, data={"csrf_token": token, **form}, follow_redirects=False)
            assert answer.status_code == 503 and "nothing was changed. Try again later." in answer.text, (path, form)
    finally:
        world.app.state.account_feed = feed
        impatient.close()
    assert _accounts_of(world, ALPHA) == before
    keys = {account_key(ALPHA, "LATE-KEPT"), account_key(ALPHA, "LATE-NEW")}
    # each key at least once: every record here was acknowledged before its page answered, and the topic is compacted
    # (the log cleaner may have kept only a key's newest), so waiting for more than one a key could wait for ever
    records = read_topic(world.settings, world.settings.topic(ACCOUNTS.name), len(keys), keep=lambda m: m.key in keys)
    newest = {m.key: orjson.loads(m.value) if m.value else None for m in records}  # one key, one partition: in order
    kept_ref = AccountRef(tenant=ALPHA, account="LATE-KEPT", owner="O-1", ts=1).model_dump() | {"ts": ANY}
    assert newest == {account_key(ALPHA, "LATE-KEPT"): kept_ref, account_key(ALPHA, "LATE-NEW"): None}


# --- CSRF ------------------------------------------------------------------------------------------------------
def test_csrf_missing_or_forged_is_refused_on_every_state_changing_route(world: World) -> None:
    client = _client(world, "admin")  # who may post to every route: the token alone refuses
    posts = [route for route in RULES if route[0] == "POST" and route[1] not in ("/login", "/logout")]
    assert posts, "no state-changing route found"
    _remove_account(world, "admin", "", "")  # the account a forged removal would take
    alpha_accounts = _accounts_of(world, ALPHA)
    for route in posts:
        case = _own_case(world, "csrf", route)
        rule = RULES[route]
        assert rule.request is not None
        for token in ("", "forged-token"):
            method, path, kwargs = rule.request(world, "admin", case, token)
            assert client.request(method, path, follow_redirects=False, **kwargs).status_code == 403, (route, token)
        with world.owner.connect() as conn:
            row = conn.execute(select(cases.c.state).where(cases.c.tenant == ALPHA, cases.c.alert_id == case)).one()
            notes = conn.execute(select(func.count()).select_from(case_notes).where(case_notes.c.alert_id == case))
            assert (row.state, notes.scalar_one()) == ("new", 0), route
    assert _accounts_of(world, ALPHA) == alpha_accounts, "a forged post changed alpha's accounts"
    logout = client.post("/logout", data={"csrf_token": "forged"}, follow_redirects=False)
    assert logout.status_code == 403 and client.get("/queue", follow_redirects=False).status_code == 200
    login_page = client.get("/login")
    forged = {"username": "a-super", "password": PASSWORD, "csrf_token": "forged"}
    assert client.post("/login", data=forged, follow_redirects=False).status_code == 403
    assert login_page.status_code == 200


# --- the audit's integrity --------------------------------------------------------------------------------------
SERVING_ROLE_MAY_NOT = (
    "ALTER TABLE audit DISABLE TRIGGER USER",
    "ALTER TABLE audit DISABLE TRIGGER audit_chain",
    "ALTER TABLE audit DISABLE ROW LEVEL SECURITY",
    "DROP TABLE audit",
    "DELETE FROM audit",
    "UPDATE audit SET actor = 'someone else'",
    "TRUNCATE audit",
    "DROP TRIGGER audit_no_update_delete ON audit",
    "UPDATE case_notes SET body = 'rewritten'",
    "DELETE FROM case_notes",
    "DELETE FROM cases",
    "INSERT INTO cases (tenant, alert_id, symbol, venue, kind, model_version, severity, severity_rank, score, "
    "opened_at, alert_ts) SELECT 'alpha', alert_id, symbol, venue, kind, model_version, severity, 1, score, "
    "window_start, ts FROM alerts LIMIT 1",
    "UPDATE cases SET tenant = 'bravo'",
    "INSERT INTO case_notes (tenant, alert_id, author, body) SELECT 'bravo', alert_id, 'x', 'planted' FROM alerts "
    "LIMIT 1",
    "INSERT INTO accounts (tenant, account, owner, updated_at, updated_by) "
    "VALUES ('bravo', 'PLANTED', 'x', now(), 'x')",
    "SET ROLE tapewatch",
    "DELETE FROM venue_indicators",  # market data the case page reads: read only
)


@pytest.mark.parametrize("statement", SERVING_ROLE_MAY_NOT)
def test_the_serving_role_cannot_rewrite_the_audit_or_the_case_work(world: World, statement: str) -> None:
    serving = db.make_engine(world.settings, serving=True)
    try:
        with pytest.raises(DBAPIError), serving.begin() as conn:
            conn.execute(text("SELECT set_config('tapewatch.tenant', 'alpha', true)"))
            conn.execute(text(statement))
    finally:
        serving.dispose()
    with world.owner.connect() as conn:
        assert audit_chain.verify(conn).intact


def test_the_database_numbers_stamps_and_chains_every_line_whatever_is_sent(world: World) -> None:
    serving = db.make_engine(world.settings, serving=True)
    try:
        with serving.begin() as conn:
            conn.execute(text("SELECT set_config('tapewatch.tenant', 'alpha', true)"))
            conn.execute(
                text(
                    "INSERT INTO audit (audit_id, at, tenant, actor, action, object_type, prev_hash, hash) VALUES "
                    "(1, '2001-01-01', 'alpha', 'forger', 'forged', 'test', 'x', 'y'), "
                    "(2, '2001-01-01', 'alpha', 'forger', 'forged', 'test', 'x', 'y')"
                )
            )
    finally:
        serving.dispose()
    with world.owner.connect() as conn:
        forged = conn.execute(select(audit.c.audit_id, audit.c.at, audit.c.hash).where(audit.c.actor == "forger")).all()
        newest = conn.execute(select(func.max(audit.c.audit_id))).scalar_one()
        report = audit_chain.verify(conn)
    assert len(forged) == 2 and all(r.audit_id > 2 and r.at.year > 2001 and r.hash != "y" for r in forged)
    assert report.intact and report.head_id == newest


# --- sign-in abuse ----------------------------------------------------------------------------------------------
def _forget_throttle(world: World) -> None:
    """Another test's failed sign-ins (the same loopback address) must not decide this one's."""
    with world.owner.begin() as conn:
        conn.execute(text("DELETE FROM login_throttle"))


def _failure_text(answer: httpx.Response) -> tuple[int, str]:
    found = re.search(r'<p class="error" role="alert">(.*?)</p>', answer.text)
    return answer.status_code, found.group(1) if found else ""


def _attempt(client: TestClient, name: str, password: str) -> httpx.Response:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    form = {"username": name, "password": password, "csrf_token": token.group(1)}
    answer: httpx.Response = client.post("/login", data=form, follow_redirects=False)
    return answer


def test_one_answer_for_every_failed_sign_in(world: World) -> None:
    with world.owner.begin() as conn:
        users.add_user(conn, "a-disabled", PASSWORD, "analyst", ALPHA, "test")
        users.set_disabled(conn, "a-disabled", True, "test")
        users.add_user(conn, "a-locked", PASSWORD, "analyst", ALPHA, "test")
    limit = world.settings.console.login_max_failures
    with TestClient(world.app, base_url=BASE_URL, client=("192.0.2.10", 4000)) as client:
        for _ in range(limit + 1):
            _attempt(client, "a-locked", "wrong password!")
    answers = {}
    for i, (name, password) in enumerate(
        (
            ("a-analyst", "wrong password!"),  # exists, wrong password
            ("nobody-at-all", "wrong password!"),  # unknown
            ("nobody-at-all", PASSWORD),
            ("a-disabled", PASSWORD),  # disabled, right password
            ("a-locked", PASSWORD),  # locked, right password
        )
    ):
        with TestClient(world.app, base_url=BASE_URL, client=(f"192.0.2.{20 + i}", 4000)) as client:
            answers[name + password] = _failure_text(_attempt(client, name, password))
    assert len(set(answers.values())) == 1, answers
    assert next(iter(answers.values()))[0] == 401
    # and a locked unknown name looks like a locked known one
    with TestClient(world.app, base_url=BASE_URL, client=("192.0.2.40", 4000)) as client:
        unknown = [_failure_text(_attempt(client, "ghost-user", "wrong password!")) for _ in range(limit + 2)]
    assert set(unknown) == set(answers.values())


def test_forwarded_headers_count_only_from_a_trusted_proxy(world: World) -> None:
    _forget_throttle(world)
    limit = world.settings.console.client_max_failures
    peer = ("198.51.100.7", 5000)
    with TestClient(world.app, base_url=BASE_URL, client=peer) as client:
        for i in range(limit + 5):  # each attempt claims another address
            client.headers["X-Forwarded-For"] = f"203.0.113.{i + 1}"
            _attempt(client, f"guess-{i}", "wrong password!")
        client.headers["X-Forwarded-For"] = "203.0.113.250"
        assert _attempt(client, "a-analyst", PASSWORD).status_code == 401  # the peer itself is throttled
    proxied = create_app(world.settings.updated(console={"trusted_proxies": "198.51.100.0/28"}))
    with TestClient(proxied, base_url=BASE_URL, client=("198.51.100.9", 5000)) as client:
        client.headers["X-Forwarded-For"] = "203.0.113.77, 198.51.100.3"  # client, then another trusted hop
        for i in range(limit + 1):
            _attempt(client, f"other-{i}", "wrong password!")
        assert _attempt(client, "a-admin", PASSWORD).status_code == 401  # that client is throttled …
        client.headers["X-Forwarded-For"] = "203.0.113.78"
        assert _attempt(client, "a-admin", PASSWORD).status_code == 303  # … the one beside it is not
    with world.owner.connect() as conn:
        keys = set(conn.execute(text("SELECT key FROM login_throttle WHERE key LIKE 'client:%'")).scalars())
    assert "client:203.0.113.77" in keys and not any(k.startswith("client:203.0.113.1") for k in keys if "77" not in k)


def test_a_parallel_burst_cannot_pass_the_limits(world: World) -> None:
    _forget_throttle(world)
    settings = world.settings.updated(console={"cookie_secure": False})  # plain http on loopback
    with world.owner.begin() as conn:
        users.add_user(conn, "a-target", PASSWORD, "analyst", ALPHA, "test")
    with served(create_app(settings)) as url:

        def guess(i: int) -> int:
            with httpx.Client(base_url=url, timeout=60) as http:
                page = http.get("/login")
                token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
                assert token
                form = {"username": "a-target", "password": f"wrong {i:04d} password", "csrf_token": token.group(1)}
                return http.post("/login", data=form).status_code

        with ThreadPoolExecutor(max_workers=24) as pool:
            statuses = list(pool.map(guess, range(48)))
    assert set(statuses) == {401}
    with world.owner.connect() as conn:
        checked = conn.execute(
            select(func.count()).where(audit.c.action == "login.failed", audit.c.object_id == "a-target")
        ).scalar_one()
        locks = conn.execute(
            select(func.count()).where(audit.c.action == "login.locked", audit.c.object_id == "a-target")
        ).scalar_one()
    # at most the limit's passwords were checked, one lock line, the rest counted only
    assert checked <= world.settings.console.login_max_failures and locks == 1, (checked, locks)


# --- sessions and live streams ----------------------------------------------------------------------------------
def _sse_lines(url: str, cookies: httpx.Cookies, seen: list[str], done: threading.Event) -> None:
    timeout = httpx.Timeout(60, read=30)
    with httpx.Client(base_url=url, cookies=cookies, timeout=timeout) as http, http.stream("GET", "/events") as stream:
        seen.append(f"status {stream.status_code}")
        for line in stream.iter_lines():
            seen.append(line)
    done.set()


def test_logout_ends_the_session_and_its_live_stream(world: World) -> None:
    _forget_throttle(world)
    settings = world.settings.updated(console={"cookie_secure": False})
    with served(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as http:
        page = http.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        form = {"username": "a-super", "password": PASSWORD, "csrf_token": token.group(1)}
        assert http.post("/login", data=form).status_code == 303
        seen: list[str] = []
        done = threading.Event()
        reader = threading.Thread(target=_sse_lines, args=(url, http.cookies, seen, done), daemon=True)
        reader.start()
        deadline = time.monotonic() + 30
        while "status 200" not in seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "status 200" in seen, seen
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', http.get("/queue").text)
        assert csrf
        assert http.post("/logout", data={"csrf_token": csrf.group(1)}, follow_redirects=False).status_code == 303
        assert done.wait(30), f"the stream outlived its session: {seen}"
    assert "event: ended" in seen


def test_a_live_refresh_does_not_keep_an_idle_session_alive(world: World) -> None:
    client = _client(world, "analyst")
    stale = func.now() - text("interval '20 minutes'")
    with world.owner.begin() as conn:
        conn.execute(update(sessions).where(sessions.c.username == "a-analyst").values(last_seen_at=stale))
    assert client.get("/queue/rows").status_code == 200  # the page's own refresh: not activity
    assert _idle_s(world, "a-analyst") > 19 * 60
    assert client.get("/queue").status_code == 200  # a person's click is
    assert _idle_s(world, "a-analyst") < 60


def _idle_s(world: World, username: str) -> float:
    idle = func.extract("epoch", func.now() - func.max(sessions.c.last_seen_at))
    with world.owner.connect() as conn:
        return float(conn.execute(select(idle).where(sessions.c.username == username)).scalar_one())


def test_an_alert_wakes_only_its_tenants_queues(world: World) -> None:
    listener = AlertListener(world.settings)
    loop = asyncio.new_event_loop()
    alpha_queue, bravo_queue = listener.subscribe(ALPHA), listener.subscribe(OTHER)
    listener.start(loop)
    try:
        deadline = time.monotonic() + 30
        while not listener.connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        loop.run_until_complete(asyncio.sleep(0.2))
        while not alpha_queue.empty():  # the wake-up a connection sends to everyone
            alpha_queue.get_nowait()
        while not bravo_queue.empty():
            bravo_queue.get_nowait()
        store_alerts(world.owner, [make_alert("TWONLY", venue="twse", start=1_700_100_000_000)])
        loop.run_until_complete(asyncio.wait_for(bravo_queue.get(), timeout=30))
        loop.run_until_complete(asyncio.sleep(0.5))
        assert alpha_queue.empty(), "a bravo-only alert woke alpha's queue"
    finally:
        listener.stop()
        loop.close()


# --- smaller ----------------------------------------------------------------------------------------------------
def test_redirects_never_take_their_host_from_the_request(world: World) -> None:
    client = _client(world, "supervisor")
    case = _own_case(world, "supervisor", ("POST", "/case/note"))
    form = {"csrf_token": world.tokens["supervisor"], "alert_id": case, "note": "host check"}
    answer = client.post("/case/note", data=form, headers={"Host": "evil.example"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/case?id=")


def test_the_login_page_shows_no_text_from_the_address(world: World) -> None:
    page = TestClient(world.app, base_url=BASE_URL).get("/login", params={"message": "Call 555-0100 to verify"})
    assert page.status_code == 200 and "555-0100" not in page.text


def test_notes_are_immutable_an_edit_supersedes_and_pages_are_capped(world: World) -> None:
    client = _client(world, "analyst")
    case = _own_case(world, "analyst", ("GET", "/case"))
    token = world.tokens["analyst"]
    assert (
        client.post("/case/note", data={"csrf_token": token, "alert_id": case, "note": "first text"}).status_code == 200
    )
    with world.owner.connect() as conn:
        first = conn.execute(select(case_notes.c.note_id).where(case_notes.c.alert_id == case)).scalar_one()
    edit = {"csrf_token": token, "alert_id": case, "note": "second text", "supersedes": str(first)}
    assert client.post("/case/note", data=edit).status_code == 200
    assert client.post("/case/note", data=edit).status_code == 409  # edit the newest version, not the old one
    other = _client(world, "supervisor")
    theirs = {**edit, "csrf_token": world.tokens["supervisor"], "note": "not mine to edit"}
    assert other.post("/case/note", data=theirs).status_code in (403, 409)
    with world.owner.connect() as conn:
        bodies = list(conn.execute(select(case_notes.c.body).where(case_notes.c.alert_id == case)).scalars())
        hashes = [
            (after or {}).get("sha256")
            for after in conn.execute(
                select(audit.c.after).where(audit.c.object_id == case, audit.c.action == "case.note")
            ).scalars()
        ]
    assert bodies == ["first text", "second text"] and all(hashes)
    with pytest.raises(DBAPIError, match="immutable"), world.owner.begin() as conn:  # not even the owner
        conn.execute(text("UPDATE case_notes SET body = 'x' WHERE note_id = :n"), {"n": first})
    with world.owner.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO case_notes (tenant, alert_id, author, body) "
                "SELECT :t, :a, 'a-analyst', 'bulk note ' || g FROM generate_series(1, 250) AS g"
            ),
            {"t": ALPHA, "a": case},
        )
    page = client.get("/case", params={"id": case}).text
    assert "52 older notes are not shown" in page and page.count("bulk note ") == 200
