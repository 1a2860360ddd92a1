"""A tenant's account reference data, edited by its admins: the ``accounts`` table is the truth (row-level security
keeps each tenant to its own rows, reading and writing), and every change goes on to ``ref.accounts`` (compacted,
keyed ``<tenant>/<account>``, a removal a tombstone), which every stream worker follows.

A change is one transaction with its audit line, and it is sent to the stream — waiting for Kafka's acknowledgement —
before that transaction commits: a change the stream did not take is not made, and the admin is told so. (Sent but
then not committed — the database failed in between, or Kafka acknowledged the change only after the
:data:`PUBLISH_TIMEOUT_S` the page waits — the stream is ahead of the table until the admin saves again; ``tapewatch
console accounts publish`` sends a tenant's table whole, as after a move to a new cluster: the topic keeps the newest
per key, so a repeat is harmless.) Nothing here is logged: accounts and owners are the tenant's confidential data."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Row, delete, select
from sqlalchemy.dialects.postgresql import insert

from tapewatch.console import audit
from tapewatch.console.auth import Principal
from tapewatch.console.schema import accounts
from tapewatch.kafka_producer import DeliveryError, KafkaProducer
from tapewatch.records import AccountRef, account_key
from tapewatch.settings import Settings
from tapewatch.topics import ACCOUNTS, DLQ_PRODUCERS

__all__ = ["AccountFeed", "entered", "listed", "published_refs", "remove", "save"]

#: the accounts page lists at most this many (a firm with more loads them from its system of record: produce accounts)
MAX_LISTED: Final = 2_000
#: how long a change waits for Kafka's acknowledgement before the admin is told it was not published
PUBLISH_TIMEOUT_S: Final = 10.0


def entered(tenant: str, form: Mapping[str, str]) -> AccountRef:
    """The account a form names, as the contract says it must be (:class:`RecordError` if not); empty is none."""
    fields = {name: (form.get(name) or "").strip() or None for name in ("account", "owner", "group")}
    return AccountRef.from_dict({"tenant": tenant, "ts": int(time.time() * 1000), **fields})


def listed(conn: Connection) -> list[Row[tuple[str, str | None, str | None, datetime, str]]]:
    """The transaction's tenant's accounts, by name."""
    query = select(
        accounts.c.account, accounts.c.owner, accounts.c.account_group, accounts.c.updated_at, accounts.c.updated_by
    )
    return list(conn.execute(query.order_by(accounts.c.account).limit(MAX_LISTED)))


def _current(conn: Connection, tenant: str, account: str) -> dict[str, str | None] | None:
    row = conn.execute(
        select(accounts.c.owner, accounts.c.account_group).where(
            accounts.c.tenant == tenant, accounts.c.account == account
        )
    ).first()
    return None if row is None else {"owner": row.owner, "group": row.account_group}


def save(conn: Connection, principal: Principal, ref: AccountRef, client: str | None) -> bool:
    """Add or change ``ref`` in its tenant's accounts, with its audit line; whether anything changed."""
    before = _current(conn, ref.tenant, ref.account)
    after = {"owner": ref.owner, "group": ref.group}
    if before == after:
        return False
    values = {"owner": ref.owner, "account_group": ref.group, "updated_at": datetime.now(UTC)}
    values["updated_by"] = principal.username
    upsert = insert(accounts).values(tenant=ref.tenant, account=ref.account, **values)
    conn.execute(upsert.on_conflict_do_update(index_elements=[accounts.c.tenant, accounts.c.account], set_=values))
    action = "account.add" if before is None else "account.change"
    audit.record(
        conn, principal.username, action, "account", ref.account, tenant=ref.tenant, before=before, after=after,
        client=client,
    )  # fmt: skip
    return True


def remove(conn: Connection, principal: Principal, account: str, client: str | None) -> bool:
    """Remove an account of the principal's tenant, with its audit line; whether it was there."""
    before = _current(conn, principal.tenant, account)
    if before is None:
        return False
    conn.execute(delete(accounts).where(accounts.c.tenant == principal.tenant, accounts.c.account == account))
    audit.record(
        conn, principal.username, "account.remove", "account", account, tenant=principal.tenant, before=before,
        client=client,
    )  # fmt: skip
    return True


def published_refs(conn: Connection, tenant: str) -> list[AccountRef]:
    """The tenant's every account as its ``ref.accounts`` record (what a full publication sends)."""
    now = int(time.time() * 1000)
    rows = conn.execute(select(accounts).where(accounts.c.tenant == tenant).order_by(accounts.c.account))
    return [AccountRef(tenant=tenant, account=r.account, owner=r.owner, group=r.account_group, ts=now) for r in rows]


class AccountFeed:
    """The console's writer of ``ref.accounts``: one producer, made on first use (a console whose admins edit no
    account never connects to Kafka), shared by the request threads."""

    def __init__(self, settings: Settings, **producer_overrides: Any) -> None:
        """``producer_overrides``: librdkafka settings over the project's (:class:`KafkaProducer`)."""
        self._settings = settings
        self._topic = settings.topic(ACCOUNTS.name)
        self._overrides = producer_overrides
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def publish(self, refs: list[AccountRef]) -> None:
        """Send ``refs`` and wait for their acknowledgement (:class:`DeliveryError` if Kafka did not take them)."""
        self._send([(ref.key(), ref.to_json()) for ref in refs])

    def withdraw(self, tenant: str, account: str) -> None:
        """The account's tombstone: the stream forgets it."""
        self._send([(account_key(tenant, account), None)])

    def _send(self, records: list[tuple[bytes, bytes | None]]) -> None:
        with self._lock:
            if self._producer is None:
                self._producer = KafkaProducer(self._settings, DLQ_PRODUCERS, **self._overrides)
            for key, value in records:
                self._producer.produce(self._topic, key, value)
            self._producer.flush(PUBLISH_TIMEOUT_S)

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                with contextlib.suppress(DeliveryError):  # each change already told its admin whether it went
                    self._producer.flush(PUBLISH_TIMEOUT_S)
                self._producer = None
