"""The orders stage's entry, format 4 → 5: the public spoofing detector no longer keeps a book of its own but reads
the level-2 feed's, so an entry of format 4 loses that copy; 5 → 6: the firms read the symbol's public trades, which
start afresh. The stage goes on from an older entry as from its own, but for the public trades it had not kept."""

from __future__ import annotations

from typing import Any

from tapewatch.generators.lob_market import LobConfig, generate
from tapewatch.streams.orders import ORDERS_STATE, STATE_FORMAT
from tests.stage_harness import ALERTS, BOOKS, ORDERS, QUOTES, as_messages, orders_stage_run


def as_format_5(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry as format 5 kept it: no public trades, no owner flows."""
    firms = {key: part for key, part in entry["firms"].items() if key != "tape"}
    tenants = {
        tenant: {key: part for key, part in firm.items() if key != "ramp"} for tenant, firm in firms["firms"].items()
    }
    return {**entry, "format": 5, "firms": {**firms, "firms": tenants}}


def as_format_4(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry as format 4 kept it: the detector's own book beside the feed's (the same one)."""
    older = as_format_5(entry)
    public = older["public"]
    detector = {"book": entry["feed"]["book"], **public["detector"]}
    return {**older, "format": 4, "public": {**public, "detector": detector}}


def without_tape(entry: dict[str, Any]) -> dict[str, Any]:
    return {**entry, "firms": {key: part for key, part in entry["firms"].items() if key != "tape"}}


def test_a_format_4_entry_goes_on_as_the_current_one() -> None:
    session = generate(LobConfig(symbols=1, minutes=20, seed=5, orders=True, venue="sim-orders", news=False))
    messages = as_messages(ORDERS, [event for symbol in session.tapes for event in session.order_events(symbol)])
    half = len(messages) // 2
    straight = orders_stage_run()
    straight.run(messages)
    resumed = orders_stage_run()
    resumed.run(messages[:half])
    sent_before = len(resumed.producer.sent)
    current = resumed.changelog
    assert all(entry["format"] == STATE_FORMAT == 6 for entries in current.values() for entry in entries.values())
    assert all("book" not in entry["public"]["detector"] for entries in current.values() for entry in entries.values())
    assert all(entry["firms"]["tape"]["buckets"] for entries in current.values() for entry in entries.values())
    older = {p: {k: as_format_4(entry) for k, entry in entries.items()} for p, entries in current.items()}
    upgraded = {p: {k: ORDERS_STATE.upgrade(older[p][k]) for k in current[p]} for p in current}
    assert all(without_tape(upgraded[p][k]) == without_tape(current[p][k]) for p in current for k in current[p])
    assert all(upgraded[p][k]["firms"]["tape"]["buckets"] == [] for p in current for k in current[p])
    resumed.changelog = older
    resumed.restart()
    resumed.run(messages[half:])
    for topic in (QUOTES, BOOKS, ALERTS):
        assert resumed.sent(topic) == straight.sent(topic)
    assert len(resumed.producer.sent) > sent_before
    assert {p: {k: without_tape(e) for k, e in entries.items()} for p, entries in resumed.changelog.items()} == {
        p: {k: without_tape(e) for k, e in entries.items()} for p, entries in straight.changelog.items()
    }


def test_an_entry_without_the_public_detector_is_left_as_it_is() -> None:
    entry = {"format": 4, "feed": {}, "firms": {"firms": {}}, "public": None, "offsets": {}, "partition": 0}
    upgraded = ORDERS_STATE.upgrade(entry)
    assert without_tape(upgraded) == {**entry, "format": 6} and upgraded["firms"]["tape"]["buckets"] == []
