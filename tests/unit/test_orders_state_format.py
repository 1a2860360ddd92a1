"""The orders stage's entry, format 4 → 5: the public spoofing detector no longer keeps a book of its own but reads
the level-2 feed's, so an entry of format 4 loses that copy; 5 → 6: the firms read the symbol's public trades, which
start afresh; 6 → 7: each tenant's detector keeps its quote-stuffing detector, which starts afresh; 7 → 8: that
detector counts the owners' messages too, which start afresh; 8 → 9: the public detector keeps the other side's best
when each large order rested and its pulls until their millisecond is over; 9 → 10: the public feed's wash detector,
which starts afresh; 10 → 11: each tenant's collusive-ring detector, which starts afresh. The stage goes on from an
older entry as from its own, but for the public trades, the accounts' and owners' message histories, the resting large
orders' prices, the wash detector's history and the accounts' recent prints with each other it had not kept."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tapewatch.detectors.orders.firm_messages import fresh_state
from tapewatch.detectors.orders.firm_ring import fresh_state as fresh_ring
from tapewatch.detectors.orders.public_wash import fresh_state as fresh_wash
from tapewatch.generators.lob_market import LobConfig, generate
from tapewatch.streams.orders import ORDERS_STATE, STATE_FORMAT
from tests.detect_harness import FakeMessage
from tests.stage_harness import ALERTS, BOOKS, FIRM, ORDERS, QUOTES, StageRun, as_messages, orders_stage_run


def as_format_10(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The entry as format 10 kept it: no tenant's collusive-ring detector."""
    firms = entry["firms"]
    tenants = {tenant: {k: part for k, part in firm.items() if k != "ring"} for tenant, firm in firms["firms"].items()}
    return {**entry, "format": 10, "firms": {**firms, "firms": tenants}}


def with_rings_afresh(entry: Mapping[str, Any]) -> dict[str, Any]:
    firms = entry["firms"]
    tenants = {tenant: {**firm, "ring": fresh_ring()} for tenant, firm in firms["firms"].items()}
    return {**entry, "firms": {**firms, "firms": tenants}}


def as_format_9(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The entry as format 9 kept it: no public wash detector (and format 10's)."""
    entry = as_format_10(entry)
    public = entry["public"]
    if public is None:
        return {**entry, "format": 9}
    return {**entry, "format": 9, "public": {key: part for key, part in public.items() if key != "wash"}}


def as_format_8(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The entry as format 8 kept it: the public detector's large orders without the other side's best when they
    rested, no pulls waiting for their millisecond's end, no touch (and format 9's)."""
    entry = as_format_9(entry)
    public = entry["public"]
    if public is None:
        return {**entry, "format": 8}
    kept = {key: part for key, part in public["detector"].items() if key not in ("pulling", "touch")}
    detector = {**kept, "large": {order_id: row[:-1] for order_id, row in kept["large"].items()}}
    return {**entry, "format": 8, "public": {**public, "detector": detector}}


def as_format_7(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The entry as format 7 kept it: the quote-stuffing detector counts accounts only, their recent messages
    without the account that sent them (and format 8's)."""
    entry = as_format_8(entry)
    firms = entry["firms"]
    tenants = {}
    for tenant, firm in firms["firms"].items():
        messages = {key: part for key, part in firm["messages"].items() if key != "owned"}
        messages["accounts"] = {
            name: {**traffic, "recent": [row[:3] for row in traffic["recent"]]}
            for name, traffic in messages["accounts"].items()
        }
        tenants[tenant] = {**firm, "messages": messages}
    return {**entry, "format": 7, "firms": {**firms, "firms": tenants}}


def as_format_6(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The entry as format 6 kept it: no tenant's detector keeps a quote-stuffing detector (and format 8's)."""
    entry = as_format_8(entry)
    firms = entry["firms"]
    tenants = {t: {k: v for k, v in firm.items() if k != "messages"} for t, firm in firms["firms"].items()}
    return {**entry, "format": 6, "firms": {**firms, "firms": tenants}}


def as_format_5(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The entry as format 5 kept it: no public trades, no owner flows (and format 6's)."""
    entry = as_format_6(entry)
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


def without_tape(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The entry without the public trades and the accounts' message histories (an older entry starts them afresh)."""
    return as_format_6({**entry, "firms": {key: part for key, part in entry["firms"].items() if key != "tape"}})


def public_halfway() -> tuple[list[FakeMessage], StageRun, StageRun]:
    """A one-symbol session's public feed, the stage run over all of it, and another over its first half."""
    session = generate(LobConfig(symbols=1, minutes=20, seed=5, orders=True, venue="sim-orders", news=False))
    messages = as_messages(ORDERS, [event for symbol in session.tapes for event in session.order_events(symbol)])
    straight = orders_stage_run()
    straight.run(messages)
    resumed = orders_stage_run()
    resumed.run(messages[: len(messages) // 2])
    return messages, straight, resumed


def test_a_format_4_entry_goes_on_as_the_current_one() -> None:
    messages, straight, resumed = public_halfway()
    half = len(messages) // 2
    sent_before = len(resumed.producer.sent)
    current = resumed.changelog
    assert all(entry["format"] == STATE_FORMAT == 11 for entries in current.values() for entry in entries.values())
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
    assert upgraded["format"] == 11


def without_messages(
    changelog: Mapping[int, Mapping[bytes, Mapping[str, Any]]],
) -> dict[int, dict[bytes, dict[str, Any]]]:
    return {p: {k: as_format_6(entry) for k, entry in entries.items()} for p, entries in changelog.items()}


def with_drop_copy() -> list[FakeMessage]:
    """A one-symbol session's public feed and drop copy, in time order (a report after its millisecond's events)."""
    session = generate(LobConfig(symbols=1, minutes=20, seed=5, orders=True, venue="sim-orders", news=False))
    symbol = session.symbols[0]
    public = as_messages(ORDERS, list(session.order_events(symbol)))
    reports = as_messages(FIRM, list(session.execution_reports(symbol)))
    assert reports
    return sorted([*public, *reports], key=lambda m: (orjson_ts(m.value()), m.topic() == FIRM))


def firm_halfway() -> tuple[list[FakeMessage], StageRun, StageRun]:
    """A one-symbol session's public feed and drop copy, the stage run over all of it, and another over its first
    half."""
    messages = with_drop_copy()
    straight = orders_stage_run()
    straight.run(messages)
    resumed = orders_stage_run()
    resumed.run(messages[: len(messages) // 2])
    return messages, straight, resumed


def test_a_format_6_entry_goes_on_with_its_quote_stuffing_detector_afresh() -> None:
    messages, straight, resumed = firm_halfway()
    half = len(messages) // 2
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


def without_owners(
    changelog: Mapping[int, Mapping[bytes, Mapping[str, Any]]],
) -> dict[int, dict[bytes, dict[str, Any]]]:
    return {p: {k: as_format_7(entry) for k, entry in entries.items()} for p, entries in changelog.items()}


def test_a_format_7_entry_goes_on_with_its_owners_messages_afresh() -> None:
    """Every account's recent messages are its own; the owners' counts start afresh."""
    messages = with_drop_copy()
    resumed = orders_stage_run()
    resumed.run(messages[: len(messages) // 2])
    current = resumed.changelog
    older = without_owners(current)
    upgraded = {p: {k: ORDERS_STATE.upgrade(e) for k, e in entries.items()} for p, entries in older.items()}
    firms = [firm for entries in current.values() for e in entries.values() for firm in e["firms"]["firms"].values()]
    assert any(traffic["recent"] for firm in firms for traffic in firm["messages"]["accounts"].values())
    for p, entries in upgraded.items():
        for k, entry in entries.items():
            for tenant, firm in entry["firms"]["firms"].items():
                now = current[p][k]["firms"]["firms"][tenant]["messages"]
                assert firm["messages"] == {**now, "owned": {}}


def test_a_format_8_entry_goes_on_with_its_large_orders_unpriced() -> None:
    messages, straight, resumed = public_halfway()
    half = len(messages) // 2
    current = resumed.changelog
    older = {p: {k: as_format_8(e) for k, e in entries.items()} for p, entries in current.items()}
    upgraded = {p: {k: ORDERS_STATE.upgrade(e) for k, e in entries.items()} for p, entries in older.items()}
    for entries in upgraded.values():
        for entry in entries.values():
            detector = entry["public"]["detector"]
            assert entry["format"] == 11 and detector["pulling"] == [] and detector["touch"] == [None, None]
            assert all(row[-1] is None for row in detector["large"].values())
    assert {p: {k: as_format_8(e) for k, e in es.items()} for p, es in upgraded.items()} == older
    resumed.changelog = older
    resumed.restart()
    resumed.run(messages[half:])
    for topic in (QUOTES, BOOKS, ALERTS):
        assert resumed.sent(topic) == straight.sent(topic)


def test_a_format_9_entry_goes_on_with_its_wash_detector_afresh() -> None:
    messages, straight, resumed = public_halfway()
    half = len(messages) // 2
    current = resumed.changelog
    assert all(entry["public"]["wash"]["seen"] for entries in current.values() for entry in entries.values())
    older = {p: {k: as_format_9(e) for k, e in entries.items()} for p, entries in current.items()}
    upgraded = {p: {k: ORDERS_STATE.upgrade(e) for k, e in entries.items()} for p, entries in older.items()}
    for p, entries in upgraded.items():
        for k, entry in entries.items():
            now = with_rings_afresh(current[p][k])
            assert entry == {**now, "public": {**now["public"], "wash": fresh_wash()}}
    resumed.changelog = older
    resumed.restart()
    resumed.run(messages[half:])
    for topic in (QUOTES, BOOKS, ALERTS):
        assert resumed.sent(topic) == straight.sent(topic)


def test_a_format_10_entry_goes_on_with_its_rings_afresh() -> None:
    messages, straight, resumed = firm_halfway()
    half = len(messages) // 2
    current = resumed.changelog
    firms = [firm for entries in current.values() for e in entries.values() for firm in e["firms"]["firms"].values()]
    assert any(firm["ring"]["executions"] for firm in firms)
    older = {p: {k: as_format_10(e) for k, e in entries.items()} for p, entries in current.items()}
    upgraded = {p: {k: ORDERS_STATE.upgrade(e) for k, e in entries.items()} for p, entries in older.items()}
    assert upgraded == {p: {k: with_rings_afresh(e) for k, e in entries.items()} for p, entries in current.items()}
    resumed.changelog = older
    resumed.restart()
    resumed.run(messages[half:])
    for topic in (QUOTES, BOOKS, ALERTS):
        assert resumed.sent(topic) == straight.sent(topic)
