"""The orders stage's entry, format 4 → 5: the public spoofing detector no longer keeps a book of its own but reads
the level-2 feed's, so an entry of format 4 loses that copy and the stage goes on from it as from its own entry;
5 → 6: each tenant's detector keeps its quote-stuffing detector, which an entry of format 5 starts afresh."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tapewatch.detectors.orders.firm_messages import fresh_state
from tapewatch.generators.lob_market import LobConfig, generate
from tapewatch.streams.orders import ORDERS_STATE, STATE_FORMAT
from tests.stage_harness import ALERTS, BOOKS, FIRM, ORDERS, QUOTES, as_messages, orders_stage_run


def as_format_5(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The entry as format 5 kept it: no tenant's detector keeps a quote-stuffing detector."""
    firms = entry["firms"]
    tenants = {t: {k: v for k, v in firm.items() if k != "messages"} for t, firm in firms["firms"].items()}
    return {**entry, "format": 5, "firms": {**firms, "firms": tenants}}


def as_format_4(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry as format 4 kept it: the detector's own book beside the feed's (the same one), and format 5's."""
    entry = as_format_5(entry)
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
    assert all(entry["format"] == STATE_FORMAT == 6 for entries in current.values() for entry in entries.values())
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
    entry = {
        "format": 4,
        "feed": {},
        "firms": {"placements": {}, "firms": {}},
        "public": None,
        "offsets": {},
        "partition": 0,
    }
    assert ORDERS_STATE.upgrade(entry) == {**entry, "format": 6}


def without_messages(
    changelog: Mapping[int, Mapping[bytes, Mapping[str, Any]]],
) -> dict[int, dict[bytes, dict[str, Any]]]:
    return {p: {k: as_format_5(entry) for k, entry in entries.items()} for p, entries in changelog.items()}


def test_a_format_5_entry_goes_on_with_its_quote_stuffing_detector_afresh() -> None:
    session = generate(LobConfig(symbols=1, minutes=20, seed=5, orders=True, venue="sim-orders", news=False))
    symbol = session.symbols[0]
    public = as_messages(ORDERS, list(session.order_events(symbol)))
    reports = as_messages(FIRM, list(session.execution_reports(symbol)))
    assert reports
    messages = sorted([*public, *reports], key=lambda m: (orjson_ts(m.value()), m.topic() == FIRM))
    straight = orders_stage_run()
    straight.run(messages)
    resumed = orders_stage_run()
    half = len(messages) // 2
    resumed.run(messages[:half])
    current = resumed.changelog
    tenants = [firm for entries in current.values() for e in entries.values() for firm in e["firms"]["firms"].values()]
    assert tenants and all("messages" in firm for firm in tenants)
    older = without_messages(current)
    upgraded = {p: {k: ORDERS_STATE.upgrade(e) for k, e in entries.items()} for p, entries in older.items()}
    assert all(
        firm["messages"] == fresh_state()
        for entries in upgraded.values()
        for e in entries.values()
        for firm in e["firms"]["firms"].values()
    )
    assert without_messages(upgraded) == without_messages(current)
    resumed.changelog = older
    resumed.restart()
    resumed.run(messages[half:])
    for topic in (QUOTES, BOOKS, ALERTS):
        assert resumed.sent(topic) == straight.sent(topic)
    assert without_messages(resumed.changelog) == without_messages(straight.changelog)


def orjson_ts(raw: bytes) -> int:
    return int(orjson.loads(raw)["ts"])
