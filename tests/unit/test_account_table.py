"""The stream worker's table of every tenant's accounts (``ref.accounts``): the newest record per key wins, a tombstone
removes the account, a tenant's reference object stays the one the detectors hold, and a record that breaks the
contract (or its key) is refused and logged by its place, never by its content."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import cast

import pytest
from confluent_kafka import Message

from tapewatch.records import AccountRef, account_key
from tapewatch.streams.accounts import AccountTable

_offsets = iter(range(1_000_000))


@dataclass
class RefMessage:
    """What the table reads of a ``ref.accounts`` message (a tombstone has no value)."""

    _key: bytes | None
    _value: bytes | None
    _offset: int

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def topic(self) -> str:
        return "ref.accounts"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


def ref(tenant: str, account: str, owner: str | None = None, group: str | None = None) -> Message:
    record = AccountRef(tenant=tenant, account=account, owner=owner, group=group, ts=1)
    return cast(Message, RefMessage(record.key(), record.to_json(), next(_offsets)))


def raw(key: bytes | None, value: bytes | None) -> Message:
    return cast(Message, RefMessage(key, value, next(_offsets)))


def test_the_newest_wins_a_tombstone_removes_and_the_reference_object_stays() -> None:
    table = AccountTable()
    held = table.of("acme")  # what a tenant's detectors were given before any record came
    table.apply([ref("acme", "A1", "O1"), ref("acme", "A2", "O1", "G1"), ref("bravo", "A1", "O9")])
    assert dict(held.owners) == {"A1": "O1", "A2": "O1"} and dict(held.groups) == {"A2": "G1"}
    table.apply([ref("acme", "A2", "O2"), raw(account_key("acme", "A1"), None)])
    assert dict(held.owners) == {"A2": "O2"} and dict(held.groups) == {}
    assert table.of("acme") is held and dict(table.of("bravo").owners) == {"A1": "O9"}
    assert table.accounts() == 2 and table.applied == 5 and table.refused == 0


@pytest.mark.parametrize(
    ("message", "why"),
    [
        (raw(b"acme/A1", b"{not json"), "invalid JSON"),
        (raw(b"acme/A1", b'{"tenant": "acme", "account": "A 1", "ts": 1}'), "account"),
        (raw(b"acme/A1", b'{"tenant": "acme", "account": "A2", "owner": "O7", "ts": 1}'), "key"),
        (raw(b"no-slash", None), "key"),
        (raw(None, b'{"tenant": "acme", "account": "A1", "ts": 1}'), "key"),
    ],
    ids=["not JSON", "bad account", "key of another account", "tombstone with a bad key", "no key"],
)
def test_a_bad_record_is_refused_logged_by_place_and_changes_nothing(
    message: Message, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    table = AccountTable()
    table.apply([ref("acme", "A1", "O1")])
    with caplog.at_level(logging.WARNING, logger="tapewatch.streams.accounts"):
        table.apply([message])
    assert table.refused == 1 and dict(table.of("acme").owners) == {"A1": "O1"}
    [line] = caplog.messages
    assert why in line and "ref.accounts[0]@" in line
    assert "O7" not in line and "A2" not in line  # the content stays out of the log
