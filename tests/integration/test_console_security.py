"""The console's security, adversarially, against the real console and PostgreSQL.

Two tenants share a venue: ``alpha`` (sim and its own venue) and ``bravo`` (sim and twse). Bravo's people work
their cases first (a note, an assignment, a link, a case of a venue alpha does not have). Then every route of the app's own
route table is asked by every kind of principal of alpha — nobody, an analyst, a supervisor, an admin, a service
token — about one of alpha's cases and about one of bravo's: each answer's status is the rule's, no answer holds
anything of bravo's, and bravo's rows are unchanged afterwards. A route added without a rule here fails the
suite. Then: CSRF missing or forged on every state-changing route; what the serving role may not do to the
audit; the chain's integrity; sign-in abuse (enumeration, forged forwarded headers, parallel bursts); live
streams that end with the session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from console import accounts
from console.app import create_app
from console.schema import audit, case_links, case_notes, cases
from sinks import db
from tapewatch.records import Alert
from tapewatch.settings import Settings
from tests.console_support import (
    BASE_URL,
    TENANT,
    add_user,
    console_schema,
    make_alert,
    page_csrf,
    sign_in,
    store_alerts,
)

pytestmark = pytest.mark.integration

OTHER = "bravo"
ALPHA = "alpha"
ALPHA_VENUE = "xalp"  # a venue only alpha has: the fresh cases the writes work on are alpha's alone
ROLES = ("anonymous", "analyst", "supervisor", "admin", "service")
SESSION_ROLES = ("analyst", "supervisor", "admin")
#: what must never appear in an answer to alpha: bravo's tenant, people, notes and its own symbol
FOREIGN = ("bravo", "SECRET-BRAVO", "BRAVOONLY")


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


@pytest.fixture(scope="module")
def world(services: Settings) -> Iterator[World]:
    with console_schema(services) as settings:
        owner = db.make_engine(settings)
        with owner.begin() as conn:
            accounts.add_tenant(conn, OTHER, ["sim", "twse"], "test")
            accounts.add_tenant(conn, ALPHA, ["sim", ALPHA_VENUE], "test")
        for name, role in (("a-analyst", "analyst"), ("a-super", "supervisor"), ("a-admin", "admin")):
            add_user(owner, name, role, tenant=ALPHA)
        add_user(owner, "bravo-analyst", "analyst", tenant=OTHER)
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
            token = accounts.add_token(conn, "risk-feed", ALPHA, "test")
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


def _everyone(status: int) -> dict[str, int]:
    return dict.fromkeys(ROLES, status)


PAGE = {"anonymous": 303, "analyst": 200, "supervisor": 200, "admin": 200, "service": 303}
PAGE_FOREIGN = {"anonymous": 303, "analyst": 404, "supervisor": 404, "admin": 404, "service": 303}
WRITE = {"anonymous": 401, "analyst": 303, "supervisor": 303, "admin": 303, "service": 401}
WRITE_FOREIGN = {"anonymous": 401, "analyst": 404, "supervisor": 404, "admin": 404, "service": 401}
SUPERVISORS = {"anonymous": 303, "analyst": 403, "supervisor": 200, "admin": 200, "service": 303}
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
        for table in (cases, case_notes, case_links):
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
