"""A tenant's account reference data. The ``accounts`` table is the truth (row-level security keeps each tenant to its
own rows, reading and writing), whoever writes it: an admin on the Accounts page (:func:`save`, :func:`remove`) or a
file from the firm's system of record (:func:`load`, ``tapewatch console accounts load``). Every change goes on to
``ref.accounts`` (compacted, keyed ``<tenant>/<account>``, a removal a tombstone), which every stream worker follows.

A change is one transaction with its audit lines, and it is sent to the stream — waiting for Kafka's acknowledgement —
before that transaction commits (:func:`send_before_commit`): a change the stream did not take is not made, and
whoever made it is told so. Kafka may still acknowledge a refused record after the wait (:data:`PUBLISH_TIMEOUT_S`)
gave up, which would put the stream ahead of the table; so a refused change is compensated before its transaction
rolls back: what the producer still holds unsent is purged, then each account's committed value (its row, or a
tombstone where it has none) is sent after the refused record. The key is the same, so the partition is, and the
producer is idempotent: the compensation lands after whatever of the refused change lands, and the newest record of
each key is the table's again. If the compensation fails too (Kafka down), the refused change may still reach the
stream later: whoever made it is told to run ``tapewatch console accounts publish``, which sends a tenant's table
whole (the topic keeps the newest per key, so a repeat is harmless). One gap is left: the database failing at the
commit, after Kafka acknowledged, leaves the stream ahead until the account's next change or publication.

Nothing here is logged: accounts and owners are the tenant's confidential data."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from confluent_kafka import KafkaException
from sqlalchemy import Connection, Engine, Row, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError

from tapewatch.console import audit
from tapewatch.console.account_file import RefusedLine
from tapewatch.console.schema import accounts
from tapewatch.console.tenancy import scoped
from tapewatch.deadletter import DeadLetter
from tapewatch.errors import TapewatchError
from tapewatch.kafka_producer import DeliveryError, KafkaProducer
from tapewatch.records import AccountRef, account_key
from tapewatch.settings import Settings
from tapewatch.topics import ACCOUNTS, DLQ_PRODUCERS

__all__ = [
    "LOADER",
    "AccountFeed",
    "Edit",
    "Loaded",
    "NotPublishedError",
    "edits_to",
    "entered",
    "listed",
    "load",
    "publish_table",
    "published_refs",
    "remove",
    "republish_command",
    "save",
    "send_before_commit",
]

#: the accounts page lists at most this many (a firm with more loads them from its system of record: accounts load)
MAX_LISTED: Final = 2_000
#: how long a change waits for Kafka's acknowledgement before it is refused
PUBLISH_TIMEOUT_S: Final = 10.0
#: how long the compensation of a refused change waits for its acknowledgement (best effort)
COMPENSATION_TIMEOUT_S: Final = 10.0
#: who a file load is in the audit trail, the table's ``updated_by`` and its dead letters' stage: no person (the
#: operating-system user who ran it is the audit lines' client)
LOADER: Final = "cli:accounts-load"

#: an account's owner and group, as an audit line shows them before and after a change
Holding = dict[str, str | None]
#: what a ``ref.accounts`` message carries: its key and its value (None: a tombstone)
KeyValue = tuple[bytes, bytes | None]


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


def _holding(ref: AccountRef) -> Holding:
    return {"owner": ref.owner, "group": ref.group}


@dataclass(frozen=True, slots=True)
class Edit:
    """One account's change: what it held (None: it is new) and what it becomes (None: it is removed)."""

    tenant: str
    account: str
    before: Holding | None
    ref: AccountRef | None

    @property
    def action(self) -> str:
        if self.before is None:
            return "account.add"
        return "account.remove" if self.ref is None else "account.change"

    def key_value(self) -> KeyValue:
        return account_key(self.tenant, self.account), None if self.ref is None else self.ref.to_json()

    def audit_entry(self, actor: str, client: str | None) -> audit.Entry:
        after = None if self.ref is None else _holding(self.ref)
        return audit.Entry(actor, self.action, "account", self.account, self.tenant, self.before, after, client)


def edits_to(
    tenant: str,
    held: Mapping[str, Holding],
    refs: Iterable[AccountRef],
    *,
    remove_others: bool = False,
    keep: Collection[str] = (),
) -> list[Edit]:
    """The edits that make the tenant's accounts ``held`` (by name) read as ``refs`` (of one account, the last wins),
    in the order the accounts first come; ``remove_others``: and remove every account held that neither ``refs``
    nor ``keep`` names.

    >>> held = {"A1": {"owner": "O1", "group": None}, "A2": {"owner": "O2", "group": None}, "A3": {}, "A4": {}}
    >>> refs = [AccountRef(tenant="t", account=a, owner=o, ts=0) for a, o in (("A5", "O5"), ("A1", "O1"), ("A2", "O9"))]
    >>> [(edit.action, edit.account) for edit in edits_to("t", held, refs, remove_others=True, keep={"A4"})]
    [('account.add', 'A5'), ('account.change', 'A2'), ('account.remove', 'A3')]
    """
    wanted = {ref.account: ref for ref in refs}
    edits = [Edit(tenant, name, held.get(name), ref) for name, ref in wanted.items() if held.get(name) != _holding(ref)]
    if remove_others:
        named = wanted.keys() | set(keep)
        edits += [Edit(tenant, name, was, None) for name, was in held.items() if name not in named]
    return edits


def _held(conn: Connection, tenant: str, names: Collection[str] | None = None) -> dict[str, Holding]:
    """The tenant's accounts (those of ``names`` only, if given) by name, locked to the transaction's end: no other
    change can come between this read and the edits made from it, nor commit before this transaction ends."""
    query = select(accounts.c.account, accounts.c.owner, accounts.c.account_group).where(accounts.c.tenant == tenant)
    if names is not None:
        query = query.where(accounts.c.account.in_(names))
    rows = conn.execute(query.with_for_update())
    return {row.account: {"owner": row.owner, "group": row.account_group} for row in rows}


def _make(conn: Connection, tenant: str, edits: Sequence[Edit], actor: str, client: str | None) -> None:
    """Make ``edits`` in the tenant's accounts, each with its audit line: one statement of each kind, whatever their
    number (the audit chain's lock is held from the first line to the commit)."""
    now = datetime.now(UTC)
    saved = [_row(ref, now, actor) for ref in (edit.ref for edit in edits) if ref is not None]
    if saved:
        upsert = insert(accounts)
        changing = {name: upsert.excluded[name] for name in ("owner", "account_group", "updated_at", "updated_by")}
        key = [accounts.c.tenant, accounts.c.account]
        conn.execute(upsert.on_conflict_do_update(index_elements=key, set_=changing), saved)
    removed = [edit.account for edit in edits if edit.ref is None]
    if removed:
        conn.execute(delete(accounts).where(accounts.c.tenant == tenant, accounts.c.account.in_(removed)))
    audit.append(conn, [edit.audit_entry(actor, client) for edit in edits])


def _row(ref: AccountRef, now: datetime, actor: str) -> dict[str, Any]:
    return {
        "tenant": ref.tenant, "account": ref.account, "owner": ref.owner, "account_group": ref.group,
        "updated_at": now, "updated_by": actor,
    }  # fmt: skip


def save(conn: Connection, actor: str, ref: AccountRef, client: str | None) -> list[Edit]:
    """Add or change ``ref`` in its tenant's accounts, with its audit line: the edit made (none if it read so)."""
    edits = edits_to(ref.tenant, _held(conn, ref.tenant, [ref.account]), [ref])
    _make(conn, ref.tenant, edits, actor, client)
    return edits


def remove(conn: Connection, actor: str, tenant: str, account: str, client: str | None) -> list[Edit]:
    """Remove ``account`` from the tenant's accounts, with its audit line: the edit made (none if there was none)."""
    edits = edits_to(tenant, _held(conn, tenant, [account]), [], remove_others=True)
    _make(conn, tenant, edits, actor, client)
    return edits


def _ref_of(tenant: str, row: Any, ts: int) -> AccountRef:
    return AccountRef(tenant=tenant, account=row.account, owner=row.owner, group=row.account_group, ts=ts)


def published_refs(conn: Connection, tenant: str) -> list[AccountRef]:
    """The tenant's every account as its ``ref.accounts`` record (what a full publication sends)."""
    now = int(time.time() * 1000)
    rows = conn.execute(select(accounts).where(accounts.c.tenant == tenant).order_by(accounts.c.account))
    return [_ref_of(tenant, row, now) for row in rows]


def publish_table(engine: Engine, feed: AccountFeed, tenant: str) -> int:
    """Send the tenant's every account as stored (after Kafka refused a change, or to new topics: the topic keeps the
    newest per account, so a repeat changes nothing); how many. :class:`DeliveryError` if Kafka did not take them."""
    with scoped(engine, tenant) as conn:
        refs = published_refs(conn, tenant)
    feed.publish(refs)
    return len(refs)


# --- to the stream, before the commit -------------------------------------------------------------------------
def republish_command(tenant: str) -> str:
    return f"tapewatch console accounts publish --tenant {tenant}"


class NotPublishedError(TapewatchError):
    """Kafka did not take a change, so its transaction must roll back. ``restored``: whether the stream was set back
    to the table; if not, the refused change may still reach it (:func:`republish_command` mends that)."""

    def __init__(self, cause: str, tenant: str, restored: bool) -> None:
        super().__init__(cause)
        self.tenant = tenant
        self.restored = restored


def send_before_commit(feed: AccountFeed, engine: Engine, tenant: str, edits: Sequence[Edit]) -> None:
    """Send ``edits`` to the stream and wait for Kafka's acknowledgement: inside the transaction that made them,
    before it commits. If Kafka does not take them, the stream is set back to the table (the module's docstring)
    and :class:`NotPublishedError` raised."""
    try:
        feed.send([edit.key_value() for edit in edits])
    except (DeliveryError, KafkaException) as exc:
        restored = _restore(feed, engine, tenant, {edit.account for edit in edits})
        raise NotPublishedError(str(exc), tenant, restored) from None


def _restore(feed: AccountFeed, engine: Engine, tenant: str, names: Collection[str]) -> bool:
    """Send each named account's committed value (its record, or a tombstone) after its refused record; whether
    Kafka took them. Read in a transaction of its own, which sees what is committed, not the refused transaction's
    edits; and that one's row locks keep any other change of these accounts from committing before it rolls back."""
    try:
        with scoped(engine, tenant) as conn:
            stored = {ref.account: ref for ref in published_refs(conn, tenant)}
        records = [(account_key(tenant, name), _value(stored.get(name))) for name in sorted(names)]
        feed.send(records, timeout_s=COMPENSATION_TIMEOUT_S)
    except (DeliveryError, KafkaException, SQLAlchemyError):
        return False
    return True


def _value(ref: AccountRef | None) -> bytes | None:
    return None if ref is None else ref.to_json()


# --- a file load ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Loaded:
    """What a load did: its edits (in the file's order, then the removals), the accounts it named that already read
    so, and the lines dead-lettered."""

    edits: list[Edit]
    unchanged: int
    refused: list[RefusedLine]

    def count(self, action: str) -> int:
        return sum(1 for edit in self.edits if edit.action == action)


def load(
    engine: Engine,
    feed: AccountFeed,
    tenant: str,
    lines: Sequence[AccountRef | RefusedLine],
    *,
    replace: bool,
    client: str | None,
    actor: str = LOADER,
) -> Loaded:
    """Make the tenant's accounts read as ``lines`` — ``replace``: and remove those no line names, even a refused
    one — in one transaction under the tenant's row-level security (``engine``: the console's serving role), its
    audit lines by ``actor`` (a program, no person: :data:`LOADER` for a file). The refused lines go to
    ``dlq.producers``; they and the edits are sent before the commit (:func:`send_before_commit`: if Kafka does not
    take them, nothing is loaded)."""
    refs = [line for line in lines if isinstance(line, AccountRef)]
    refused = [line for line in lines if isinstance(line, RefusedLine)]
    keep = {line.account for line in refused if line.account is not None}
    with scoped(engine, tenant) as conn:
        edits = edits_to(tenant, _held(conn, tenant), refs, remove_others=replace, keep=keep)
        _make(conn, tenant, edits, actor, client)
        for line in refused:  # queued now, so a load the database refuses dead-letters nothing
            feed.dead_letter(line.raw, line.dead_letter(actor))
        send_before_commit(feed, engine, tenant, edits)
    saved = sum(1 for edit in edits if edit.ref is not None)
    return Loaded(edits, len({ref.account for ref in refs}) - saved, refused)


# --- the producer -------------------------------------------------------------------------------------------
class AccountFeed:
    """The console's writer of ``ref.accounts`` (and of a load's dead letters): one producer, made on first use (a
    console whose admins edit no account never connects to Kafka), shared by the request threads."""

    def __init__(self, settings: Settings, publish_timeout_s: float = PUBLISH_TIMEOUT_S, **overrides: Any) -> None:
        """``publish_timeout_s``: how long a change waits for its acknowledgement; ``overrides``: librdkafka
        settings over the project's (:class:`KafkaProducer`)."""
        self._settings = settings
        self._topic = settings.topic(ACCOUNTS.name)
        self._publish_timeout_s = publish_timeout_s
        self._overrides = overrides
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def publish(self, refs: Iterable[AccountRef]) -> None:
        """Send ``refs`` as they are (:meth:`send`)."""
        self.send([(ref.key(), ref.to_json()) for ref in refs])

    def send(self, records: Sequence[KeyValue], *, timeout_s: float | None = None) -> None:
        """Send ``records`` in order, with the dead letters queued before them, and wait for their acknowledgement
        (default: the feed's publish timeout). :class:`DeliveryError` if Kafka did not take them all; then nothing
        is left queued that could reach the broker later (what was already on its way may still land)."""
        with self._lock:
            producer = self._made()
            try:
                for key, value in records:
                    producer.produce(self._topic, key, value)
                producer.flush(self._publish_timeout_s if timeout_s is None else timeout_s)
            except (DeliveryError, KafkaException):
                producer.purge_queued()
                raise

    def dead_letter(self, raw: bytes, letter: DeadLetter) -> None:
        """Queue a refused line for ``dlq.producers``; it goes with the next :meth:`send`."""
        with self._lock:
            self._made().dead_letter(raw, letter)

    def _made(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(self._settings, DLQ_PRODUCERS, **self._overrides)
        return self._producer

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                with contextlib.suppress(DeliveryError):  # each change already told its maker whether it went
                    self._producer.flush(PUBLISH_TIMEOUT_S)
                self._producer = None
