"""`tapewatch console accounts load` on the real PostgreSQL and Kafka: a file's accounts land in the tenant's table as
the console's serving role writes them (row-level security, an audit line each by cli:accounts-load) and on
ref.accounts, each account's records in the order of the loads; a refused line goes to dlq.producers by place and the
load goes on; --replace tombstones what no line names and nothing of another tenant's; a load Kafka refuses commits
nothing and says so in one line."""

from __future__ import annotations

import os
import pwd
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, insert, select
from typer.testing import CliRunner, Result

from tapewatch.cli.app import cli
from tapewatch.console import accounts as accounts_module
from tapewatch.console import audit as audit_chain
from tapewatch.console import users
from tapewatch.console.accounts import LOADER, AccountFeed, listed
from tapewatch.console.schema import accounts, audit
from tapewatch.console.tenancy import scoped
from tapewatch.deadletter import DeadLetter
from tapewatch.settings import Settings, get_settings
from tapewatch.sinks import db
from tapewatch.topics import ACCOUNTS, DLQ_PRODUCERS
from tests.console_support import console_schema
from tests.kafka_reader import Received, read_topic
from tests.stream_runs import private_topics

pytestmark = pytest.mark.integration

NEIGHBOUR = "bravo"  # another tenant, whose account R-2 shares a name with one a test's tenant removes


@dataclass
class Place:
    settings: Settings
    owner: Engine


@pytest.fixture(scope="module")
def place(services: Settings) -> Iterator[Place]:
    with private_topics(services) as topical, console_schema(topical) as settings:
        owner = db.make_engine(settings)
        with owner.begin() as conn:
            users.add_tenant(conn, NEIGHBOUR, ["sim"], "test")
            theirs = {"tenant": NEIGHBOUR, "account": "R-2", "owner": "THEIRS", "updated_by": "test"}
            conn.execute(insert(accounts).values(**theirs, updated_at=datetime.now(UTC)))
        try:
            yield Place(settings, owner)
        finally:
            owner.dispose()


@pytest.fixture
def tenant(place: Place) -> str:
    """A tenant of the test's own: its accounts start empty."""
    name = f"load_{uuid.uuid4().hex[:8]}"
    with place.owner.begin() as conn:
        users.add_tenant(conn, name, ["sim"], "test")
    return name


def _file(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _console(settings: Settings, *args: str) -> Result:
    """`tapewatch console accounts …` in this process, with ``settings``' database and topics (the command reads its
    settings once per process: they are read afresh for each call, and not left behind)."""
    env = {"TAPEWATCH_POSTGRES_URL": settings.postgres.url_plain, "TAPEWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix,
           "COLUMNS": "300"}  # fmt: skip
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(cli(), ["console", "accounts", *args], env=env)
    finally:
        get_settings.cache_clear()


def _loaded(settings: Settings, file: Path, tenant: str, *options: str) -> str:
    result = _console(settings, "load", str(file), "--tenant", tenant, *options)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def _page(place: Place, tenant: str) -> list[tuple[str, str | None, str | None, str]]:
    """What the Accounts page lists: the tenant's rows as the serving role reads them."""
    serving = db.make_engine(place.settings, serving=True)
    try:
        with scoped(serving, tenant) as conn:
            return [(row.account, row.owner, row.account_group, row.updated_by) for row in listed(conn)]
    finally:
        serving.dispose()


def _trail(place: Place, tenant: str) -> list[Any]:
    with place.owner.connect() as conn:
        query = select(audit.c.actor, audit.c.action, audit.c.object_id, audit.c.before, audit.c.after, audit.c.client)
        accounts_only = query.where(audit.c.tenant == tenant, audit.c.object_type == "account")
        return list(conn.execute(accounts_only.order_by(audit.c.audit_id)))


def _owners_by_account(records: list[Received], tenant: str) -> dict[str, list[str | None]]:
    """Each account's records in the order the topic holds them (one key, one partition): owner, or "-" a tombstone."""
    owners: dict[str, list[str | None]] = defaultdict(list)
    for record in records:
        assert record.key is not None
        owners[record.key.decode().removeprefix(f"{tenant}/")].append(
            orjson.loads(record.value)["owner"] if record.value else "-"
        )
    return dict(owners)


def _of_tenant(place: Place, tenant: str, expected: int) -> list[Received]:
    prefix = f"{tenant}/".encode()
    topic = place.settings.topic(ACCOUNTS.name)
    return read_topic(place.settings, topic, expected, keep=lambda m: (m.key or b"").startswith(prefix))


def test_a_file_load_lands_in_the_table_and_then_on_the_stream(place: Place, tenant: str, tmp_path: Path) -> None:
    lines = "account,owner,group\nL-1,OWN-1,\nL-2,OWN-2,GRP-1\nbad account,OWN-9,\nL-3,,\n"
    first = _file(tmp_path, "first.csv", lines)
    said = _loaded(place.settings, first, tenant)
    assert "3 added, 0 changed, 0 unchanged, 0 removed; 1 line(s) dead-lettered to dlq.producers" in said, said
    assert f"{first}:4: field 'account'" in said and "OWN-" not in said  # places, never an owner
    second = _file(tmp_path, "second.csv", "account,owner\nL-1,OWN-1B\nL-3,\n")  # upsert only: L-2 stays
    assert "0 added, 1 changed, 1 unchanged, 0 removed; 0 line(s)" in _loaded(place.settings, second, tenant)
    assert _page(place, tenant) == [("L-1", "OWN-1B", None, LOADER), ("L-2", "OWN-2", "GRP-1", LOADER),
                                    ("L-3", None, None, LOADER)]  # fmt: skip
    trail = _trail(place, tenant)
    assert [(line.action, line.object_id, line.before, line.after) for line in trail] == [
        ("account.add", "L-1", None, {"owner": "OWN-1", "group": None}),
        ("account.add", "L-2", None, {"owner": "OWN-2", "group": "GRP-1"}),
        ("account.add", "L-3", None, {"owner": None, "group": None}),
        ("account.change", "L-1", {"owner": "OWN-1", "group": None}, {"owner": "OWN-1B", "group": None}),
    ]
    runner = f"cli:{pwd.getpwuid(os.geteuid()).pw_name}"  # who ran the load: the lines' client
    assert {(line.actor, line.client) for line in trail} == {(LOADER, runner)}
    with place.owner.connect() as conn:
        assert audit_chain.verify(conn).intact
    assert _console(place.settings, "publish", "--tenant", tenant).exit_code == 0  # the table again, as stored
    assert _owners_by_account(_of_tenant(place, tenant, 7), tenant) == {
        "L-1": ["OWN-1", "OWN-1B", "OWN-1B"], "L-2": ["OWN-2", "OWN-2"], "L-3": [None, None],
    }  # fmt: skip
    bad_line = f"{first}:4"
    dlq = place.settings.topic(DLQ_PRODUCERS.name)
    (letter,) = read_topic(place.settings, dlq, 1, keep=lambda m: DeadLetter.from_headers(m.headers).source == bad_line)
    told = DeadLetter.from_headers(letter.headers)
    assert (letter.value, told.stage, told.field) == (b"bad account,OWN-9,", LOADER, "account")


def test_replace_removes_what_no_line_names_and_nothing_of_another_tenants(
    place: Place, tenant: str, tmp_path: Path
) -> None:
    everything = _file(tmp_path, "all.csv", "account,owner\nR-1,O-1\nR-2,O-2\nR-3,O-3\nR-4,O-4\n")
    _loaded(place.settings, everything, tenant)
    # R-3's line is refused (its owner breaks the contract), so R-3 is named and kept; R-2 and R-4 are not
    fewer = _file(tmp_path, "fewer.csv", "account,owner\nR-1,O-1\nR-3,bad owner\n")
    said = _loaded(place.settings, fewer, tenant, "--replace")
    assert "0 added, 0 changed, 1 unchanged, 2 removed; 1 line(s) dead-lettered" in said, said
    assert [row[0] for row in _page(place, tenant)] == ["R-1", "R-3"]
    assert _page(place, NEIGHBOUR) == [("R-2", "THEIRS", None, "test")]
    removals = [(line.object_id, line.before) for line in _trail(place, tenant) if line.action == "account.remove"]
    assert removals == [("R-2", {"owner": "O-2", "group": None}), ("R-4", {"owner": "O-4", "group": None})]
    assert _owners_by_account(_of_tenant(place, tenant, 6), tenant) == {
        "R-1": ["O-1"], "R-2": ["O-2", "-"], "R-3": ["O-3"], "R-4": ["O-4", "-"],
    }  # fmt: skip


def test_a_load_kafka_refuses_commits_nothing_and_says_so_in_one_line(
    place: Place, tenant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _loaded(place.settings, _file(tmp_path, "kept.csv", "account,owner\nK-1,O-1\n"), tenant)
    page, trail = _page(place, tenant), _trail(place, tenant)
    # the real broker refusing: topics it does not have (it creates none), given up on after a second
    missing = place.settings.updated(kafka={"topic_prefix": f"missing-{uuid.uuid4().hex[:8]}."})

    def refusing(settings: Settings) -> AccountFeed:
        return AccountFeed(settings, **{"topic.metadata.propagation.max.ms": 1000})

    monkeypatch.setattr(accounts_module, "AccountFeed", refusing)
    changes = _file(tmp_path, "changes.csv", "account,owner\nK-1,O-2\nK-2,O-3\nbad account,\n")
    refused = _console(missing, "load", str(changes), "--tenant", tenant, "--replace")
    message = str(refused.exception)  # main() prints it as the one line
    assert refused.exit_code != 0 and message.startswith("console: nothing was loaded: Kafka did not take"), message
    assert f"run `tapewatch console accounts publish --tenant {tenant}` once Kafka is back" in message
    assert "\n" not in message and "O-2" not in message
    assert (_page(place, tenant), _trail(place, tenant)) == (page, trail)
    unknown = _console(place.settings, "load", str(changes), "--tenant", "nobody")
    assert unknown.exit_code != 0 and str(unknown.exception) == "console: no tenant 'nobody'"
