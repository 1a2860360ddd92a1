"""Every tenant's accounts, as the stream worker knows them: ``ref.accounts`` (compacted, keyed
``<tenant>/<account>``) read whole by every worker, as a global table. A firm's reports land on whichever worker holds
their symbol, and any account may trade any symbol, so each worker needs every account.

The worker reads the topic to its end before it takes its first record (:meth:`AccountReader.load`), then, between
batches, whatever came since (:meth:`AccountReader.refresh`, without waiting). The entries are the newest per key; a
tombstone removes the account. A record that breaks the contract is counted and logged by its place (never its
content: accounts are a tenant's confidential data), and the account keeps what it had. It is not dead-lettered: every
worker reads the whole topic at every start, so it would be dead-lettered again each time; ``tapewatch accounts load``
checks every record before it is sent, and dead-letters what it refuses, once.

Reference data changes seldom and is not ordered against the drop copy: a report judged while an update is in flight
may see the account before or after it. Load the reference data before the trading it describes.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Final

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from tapewatch.detectors.orders.firm_desk import AccountReference
from tapewatch.errors import TapewatchError
from tapewatch.kafka import consumer_config
from tapewatch.records import AccountRef, RecordError
from tapewatch.settings import Settings
from tapewatch.streams.state import watermarks

log = logging.getLogger(__name__)

LOAD_TIMEOUT_S: Final = 120.0


class AccountTable:
    """Tenant → its :class:`AccountReference`, the same object for a tenant whatever changes (the detectors hold
    it). :meth:`apply` takes ``ref.accounts`` messages; ``of`` is the stream's ``ReferenceOf``."""

    def __init__(self) -> None:
        self._tenants: dict[str, AccountReference] = {}
        #: tenant → (account → owner, account → group): the dicts its AccountReference shows
        self._maps: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
        self.applied = 0
        self.refused = 0

    def of(self, tenant: str) -> AccountReference:
        known = self._tenants.get(tenant)
        if known is None:
            owners, groups = self._maps[tenant] = {}, {}
            known = self._tenants[tenant] = AccountReference(owners, groups)
        return known

    def accounts(self) -> int:
        """The accounts known, over every tenant."""
        return sum(len(set(owners) | set(groups)) for owners, groups in self._maps.values())

    def apply(self, messages: Sequence[Message]) -> None:
        """Messages of ``ref.accounts`` in their partition's order: the newest per key wins, a tombstone removes."""
        for message in messages:
            key = message.key()
            value = message.value()
            try:
                tenant, account = _split(key)
                if value is None:
                    self._set(tenant, account, None, None)
                else:
                    ref = AccountRef.from_json(value)
                    if ref.key() != key:
                        raise RecordError(
                            AccountRef.record_name, "the key is not the record's <tenant>/<account>", "key"
                        )
                    self._set(ref.tenant, ref.account, ref.owner, ref.group)
            except RecordError as exc:
                self.refused += 1
                where = f"{message.topic()}[{message.partition()}]@{message.offset()}"
                log.warning("accounts: %s refused (%s%s)", where, exc.field + ": " if exc.field else "", exc.reason)
                continue
            self.applied += 1

    def _set(self, tenant: str, account: str, owner: str | None, group: str | None) -> None:
        self.of(tenant)
        for mapping, value in zip(self._maps[tenant], (owner, group), strict=True):
            if value is None:
                mapping.pop(account, None)
            else:
                mapping[account] = value


def _split(key: bytes | None) -> tuple[str, str]:
    tenant, _, account = (key or b"").decode(errors="replace").partition("/")
    if not tenant or not account:
        raise RecordError(AccountRef.record_name, "the key is not <tenant>/<account>", "key")
    return tenant, account


class AccountReader:
    """Follows ``topic`` into ``table``: every partition from the start, with no consumer group (nothing is
    committed: every worker, every start, reads it whole)."""

    def __init__(self, settings: Settings, topic: str, table: AccountTable) -> None:
        self.topic, self.table = topic, table
        self.consumer = Consumer(
            consumer_config(
                settings,
                **{
                    "group.id": f"{topic}-reader-{uuid.uuid4().hex[:8]}",  # never commits: assign only
                    "enable.auto.commit": False,
                    "enable.partition.eof": False,
                },
            )
        )

    def load(self) -> int:
        """Read the topic to its end as of now; the messages read."""
        metadata = self.consumer.list_topics(self.topic, timeout=30.0).topics.get(self.topic)
        if metadata is None or metadata.error is not None:
            raise TapewatchError(f"accounts: topic {self.topic} does not exist (tapewatch topics create)")
        partitions = sorted(metadata.partitions)
        ends = {}
        for partition in partitions:
            low, high = watermarks(self.consumer, TopicPartition(self.topic, partition))
            if high > low:
                ends[partition] = high
        self.consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
        read, deadline = 0, time.monotonic() + LOAD_TIMEOUT_S
        while ends:
            if time.monotonic() > deadline:
                raise TapewatchError(
                    f"accounts: reading {self.topic} stalled {LOAD_TIMEOUT_S:.0f} s; partitions left: {sorted(ends)}"
                )
            taken = self._take(self.consumer.consume(num_messages=10_000, timeout=1.0))
            if taken:  # a long topic read steadily is not a timeout: only a stall is
                read, deadline = read + taken, time.monotonic() + LOAD_TIMEOUT_S
            # the position, not the last offset seen: compaction leaves offset gaps
            for position in self.consumer.position([TopicPartition(self.topic, p) for p in ends]):
                if position.offset >= ends[position.partition]:
                    del ends[position.partition]
        log.info("accounts: %d record(s) read, %d account entries", read, self.table.accounts())
        return read

    def refresh(self) -> int:
        """What came since, without waiting; the messages read."""
        return self._take(self.consumer.consume(num_messages=10_000, timeout=0))

    def close(self) -> None:
        self.consumer.close()

    def _take(self, messages: list[Message]) -> int:
        good = []
        for message in messages:
            error = message.error()
            if error is None:
                good.append(message)
            elif error.code() != KafkaError._PARTITION_EOF:
                raise KafkaException(error)
        self.table.apply(good)
        return len(good)
