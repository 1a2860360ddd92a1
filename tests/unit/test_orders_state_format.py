"""The orders stage's entry, format 4 → 5: the public spoofing detector no longer keeps a book of its own but reads
the level-2 feed's, so an entry of format 4 loses that copy and the stage goes on from it as from its own entry."""

from __future__ import annotations

from typing import Any

from tapewatch.generators.lob_market import LobConfig, generate
from tapewatch.streams.orders import ORDERS_STATE, STATE_FORMAT
from tests.stage_harness import ALERTS, BOOKS, ORDERS, QUOTES, as_messages, orders_stage_run


def as_format_4(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry as format 4 kept it: the detector's own book beside the feed's (the same one)."""
    public = entry["public"]
    detector = {"book": entry["feed"]["book"], **public["detector"]}
    return {**entry, "format": 4, "public": {**public, "detector": detector}}


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
    assert all(entry["format"] == STATE_FORMAT == 5 for entries in current.values() for entry in entries.values())
    assert all("book" not in entry["public"]["detector"] for entries in current.values() for entry in entries.values())
    older = {p: {k: as_format_4(entry) for k, entry in entries.items()} for p, entries in current.items()}
    assert all(ORDERS_STATE.upgrade(older[p][k]) == current[p][k] for p in current for k in current[p])
    resumed.changelog = older
    resumed.restart()
    resumed.run(messages[half:])
    for topic in (QUOTES, BOOKS, ALERTS):
        assert resumed.sent(topic) == straight.sent(topic)
    assert len(resumed.producer.sent) > sent_before
    assert resumed.changelog == straight.changelog


def test_an_entry_without_the_public_detector_is_left_as_it_is() -> None:
    entry = {"format": 4, "feed": {}, "firms": {}, "public": None, "offsets": {}, "partition": 0}
    assert ORDERS_STATE.upgrade(entry) == {**entry, "format": 5}
