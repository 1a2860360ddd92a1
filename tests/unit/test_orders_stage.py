"""The orders stage without a broker: md.orders in, the level-2 feed its books imply out, to the market stage.

The order-book market's market-by-order feed (venue ``sim-orders``: its level-2 comes from its orders) runs through a
real :class:`OrdersStage`, whose trades and books run through a real :class:`MarketStage`. A ``kill -9`` of the worker
after a checkpoint sends again what the orders since the last commit released; the market stage must know those by
their number and time, so its bars and features are those of a run without a crash.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from functools import cache

import orjson

from tapewatch.detectors.orders.book import OrderBook
from tapewatch.detectors.orders.firm_desk import FirmDesk
from tapewatch.detectors.orders.level2 import Level2Feed
from tapewatch.detectors.orders.symbol_orders import PUBLIC_SCOPE, PublicWatch
from tapewatch.feeds import FeedProfiles
from tapewatch.generators.lob_market import LobConfig, generate
from tapewatch.records import Book, ExecutionReport, OrderBookEvent, Quote, alert_id
from tapewatch.streams.orders import OrdersStage
from tests.detect_harness import FakeMessage
from tests.order_samples import firm_market
from tests.stage_harness import (
    ALERTS,
    BARS,
    BOOKS,
    CHANGELOG,
    FEATURES,
    FIRM,
    ORDERS,
    QUOTES,
    as_messages,
    derived,
    market_stage_run,
    orders_stage_run,
)


@cache
def market_events() -> tuple[OrderBookEvent, ...]:
    """Two symbols' market-by-order feeds over 10 minutes, one symbol after the other."""
    session = generate(LobConfig(symbols=2, seed=5, minutes=10, orders=True, venue="sim-orders", news=False))
    return tuple(event for symbol in session.tapes for event in session.order_events(symbol))


def offline(events: Sequence[OrderBookEvent]) -> Iterator[Quote | Book]:
    feeds: dict[str, Level2Feed] = {}
    for event in events:
        feed = feeds.setdefault(event.symbol, Level2Feed(event.symbol, event.venue, "contiguous"))
        yield from feed.on_order(event).records


def test_the_stage_sends_what_the_book_implies_and_a_crash_sends_only_the_same_again() -> None:
    events = market_events()
    messages = as_messages(ORDERS, events)
    straight, crashed = orders_stage_run(), orders_stage_run()
    straight.run(messages)
    crashed.run(messages, kills=[1_700, 5_250, 5_300, len(messages) - 10])
    expected = [record.to_json() for record in offline(events)]
    assert len(expected) > 2_000
    got = straight.sent(QUOTES) + straight.sent(BOOKS)
    assert sorted(got) == sorted(expected)
    again = crashed.sent(QUOTES) + crashed.sent(BOOKS)
    assert len(again) > len(expected) and set(again) == set(expected)  # sent again, nothing new
    assert not straight.sent("dlq") and not crashed.sent("dlq")


def test_the_market_stage_skips_what_the_orders_stage_sent_again() -> None:
    messages = as_messages(ORDERS, market_events())
    straight, crashed = orders_stage_run(), orders_stage_run()
    straight.run(messages)
    crashed.run(messages, kills=[1_700, 5_250, 5_300])
    reference, replayed = market_stage_run(), market_stage_run()
    reference.run(derived(straight))
    replayed.run(derived(crashed), kills=[2_000])
    for topic in (BARS, FEATURES):
        assert reference.sent(topic), topic
        assert set(replayed.sent(topic)) == set(reference.sent(topic)), topic
    assert not reference.sent("dlq") and not replayed.sent("dlq")


def test_refused_events_are_dead_lettered_once_and_a_gap_is_counted() -> None:
    events = list(market_events()[:400])
    sent_twice, lost = events[50], events[200:205]
    tape = [*events[:100], sent_twice, *events[100:200], *events[205:]]
    refused = []
    feed = Level2Feed("S", "sim-orders", "contiguous")
    for event in tape:
        anomaly = feed.on_order(event).step.anomaly
        if anomaly is not None and anomaly.refused:
            refused.append(event.to_json())
    worker = orders_stage_run()
    worker.run(as_messages(ORDERS, tape))
    stage = worker.stage
    assert isinstance(stage, OrdersStage)
    assert sent_twice.to_json() in refused and lost
    assert worker.sent("dlq") == refused and stage.counters.dead_letters == len(refused)
    assert stage.counters.gaps == 1


def test_a_report_beyond_the_venues_bounds_or_sent_again_is_dead_lettered_once_and_the_rest_judged() -> None:
    plain = ExecutionReport(
        symbol="S", venue="sim-orders", ts=1_000, exec_id="E1", order_id="O1", tenant="acme", account="A1",
        exec_type="new", side="BUY", price=10.0, quantity=100.0, leaves_qty=100.0,
    )  # fmt: skip
    absurd = plain.model_copy(
        update={"exec_id": "E2", "order_id": "O2", "quantity": FeedProfiles()("sim-orders").max_size * 10}
    )
    worker = orders_stage_run(max_pending=20)
    worker.run(as_messages(FIRM, [plain, absurd, plain]))  # the last: the first sent again, at a new offset
    assert worker.sent("dlq") == [absurd.to_json(), plain.to_json()]
    state = [orjson.loads(v) for topic, _, v in worker.producer.sent if topic == CHANGELOG][-1]
    assert [orjson.loads(r)["exec_id"] for r in state["firms"]["firms"]["acme"]["pending"]] == ["E1"]


def test_a_venue_that_sends_its_own_level2_gets_only_its_book_kept() -> None:
    worker = orders_stage_run(FeedProfiles({"sim-orders": {"level2": "venue"}}))
    worker.run(as_messages(ORDERS, market_events()[:1_000]))
    assert not worker.sent(QUOTES) and not worker.sent(BOOKS)
    assert any(topic == CHANGELOG for topic, _, _ in worker.producer.sent)


def fuzzed(events: Sequence[OrderBookEvent], seed: int) -> tuple[list[FakeMessage], set[bytes]]:
    """``events`` as md.orders messages with a bad record after about one in ten: bytes that are no JSON, a record
    the contract refuses, one keyed by another symbol, an absurd size, an exact re-send, an old number with other
    content. Returns the messages and the bad records' payloads."""
    rng = random.Random(seed)
    good = as_messages(ORDERS, events)
    out: list[FakeMessage] = []
    bad: set[bytes] = set()
    offsets: dict[int, int] = defaultdict(int)
    for message, event in zip(good, events, strict=True):
        payloads = [(message.key(), message.value())]
        if rng.random() < 0.1:
            payload = _bad_payload(rng, event, len(bad))
            payloads.append(payload)
            bad.add(payload[1])
        for key, value in payloads:
            partition = message.partition()
            out.append(FakeMessage(ORDERS, partition, offsets[partition], key, value))
            offsets[partition] += 1
    return out, bad


def _bad_payload(rng: random.Random, event: OrderBookEvent, n: int) -> tuple[bytes, bytes]:
    """One bad record after ``event`` (``n`` makes each one's bytes unique)."""
    key = event.key()
    kind = rng.randrange(6)
    if kind == 0:
        return key, b"\x00not json " + str(n).encode()
    if kind == 1:
        return key, orjson.dumps({**orjson.loads(event.to_json()), "action": "add", "size": -1.0 - n})
    if kind == 2:
        return b"SOMEONE-ELSE", event.model_copy(update={"ts": event.ts + n}).to_json()
    if kind == 3:
        return key, event.model_copy(update={"action": "add", "size": 5e12 + n, "order_id": f"x{n}"}).to_json()
    if kind == 4:
        return key, event.model_copy(update={"ts": event.ts + n}).to_json()  # its number again
    return key, event.model_copy(update={"sequence": max(0, event.sequence - 1 - n % 50), "ts": event.ts}).to_json()


def test_ten_thousand_fuzzed_records_leave_the_level2_feed_as_the_clean_feed_made_it() -> None:
    events = market_events()[:10_000]
    messages, bad = fuzzed(events, seed=3)
    clean = orders_stage_run()
    clean.run(as_messages(ORDERS, events))
    dirty = orders_stage_run()
    dirty.run(messages)
    stage = dirty.stage
    assert isinstance(stage, OrdersStage) and len(messages) > 10_000 + 800
    letters = dirty.sent("dlq")
    assert sorted(letters) == sorted(bad)  # every bad record once, nothing else
    assert stage.counters.gaps == 0
    for topic in (QUOTES, BOOKS):
        assert dirty.sent(topic) == clean.sent(topic), topic
    crashed = orders_stage_run()
    crashed.run(messages, kills=[3_333, 7_777])
    assert set(crashed.sent("dlq")) == bad
    for topic in (QUOTES, BOOKS):
        assert set(crashed.sent(topic)) == set(clean.sent(topic)), topic


def test_the_drop_copy_raises_the_offline_detectors_alerts_however_the_feeds_interleave_and_through_kills() -> None:
    session = generate(firm_market(10, symbols=2, minutes=30, venue="sim-orders", clean_fraction=0.25))
    public = [event for symbol in session.tapes for event in session.order_events(symbol)]
    reports = [report for symbol in session.tapes for report in session.execution_reports(symbol)]
    expected: set[bytes] = set()
    for symbol in session.tapes:
        calendar = FeedProfiles()("sim-orders").ms_to_close  # the stage reads the venue's close from its profile
        detector, book = FirmDesk(symbol, "sim-orders", ms_to_close=calendar), OrderBook()
        items: list[OrderBookEvent | ExecutionReport] = [
            *session.order_events(symbol),
            *session.execution_reports(symbol),
        ]
        for item in sorted(items, key=lambda r: (r.ts, isinstance(r, ExecutionReport))):
            if isinstance(item, OrderBookEvent):
                expected.update(a.to_json() for a in detector.on_order(item, book.visible_depth(item.side)))
                book.on_order(item)
            else:
                expected.update(a.to_json() for a in detector.on_execution(item))
    assert len(expected) >= 2
    # the public feed's own spoofing alerts come out of the same stage beside the firm's
    for symbol in session.tapes:
        watch = PublicWatch.new(symbol, "sim-orders")
        expected.update(alert.to_json() for event in session.order_events(symbol) for alert in watch.on_order(event))
    run = orders_stage_run()
    messages = interleaved(public, reports, seed=2)
    run.run(messages, kills=[len(messages) // 3, 2 * len(messages) // 3])
    assert set(run.sent(ALERTS)) == expected
    # the drop copy read ahead of the whole public feed: reports wait, at most 20 a symbol in its state, the rest
    # held back unread
    ahead = orders_stage_run(max_pending=20)
    firm_first = [*as_messages(FIRM, reports), *as_messages(ORDERS, public)]
    ahead.run(firm_first, kills=[1_000, len(firm_first) // 2])
    assert set(ahead.sent(ALERTS)) == expected
    most = max(
        sum(len(firm["pending"]) for firm in orjson.loads(value)["firms"]["firms"].values())
        for topic, _, value in ahead.producer.sent
        if topic == CHANGELOG
    )
    assert most == 20


def interleaved(public: Sequence[OrderBookEvent], reports: Sequence[ExecutionReport], seed: int) -> list[FakeMessage]:
    """md.orders and orders.firm messages, each symbol's records in their order, a report read up to half a minute
    before or after its time (the drop copy and the public feed are two streams)."""
    rng = random.Random(seed)
    keyed: list[tuple[float, int, OrderBookEvent | ExecutionReport]] = [(float(e.ts), 0, e) for e in public]
    last: dict[str, float] = defaultdict(lambda: -math.inf)
    for report in reports:
        last[report.symbol] = max(last[report.symbol], report.ts + rng.uniform(-30_000, 30_000))
        keyed.append((last[report.symbol], 1, report))
    keyed.sort(key=lambda entry: entry[:2])
    offsets: dict[tuple[str, int], int] = defaultdict(int)
    out = []
    for _, _, record in keyed:
        topic = FIRM if isinstance(record, ExecutionReport) else ORDERS
        where = (topic, ord(record.symbol[-1]) % 2)
        out.append(FakeMessage(*where, offsets[where], record.key(), record.to_json()))
        offsets[where] += 1
    return out


def test_the_public_feed_alone_raises_the_offline_detectors_spoofing_alerts_through_kills() -> None:
    """A spoofer trading through another firm (no drop copy): the stage's public path raises the alerts the public
    detector raises offline, in the ``feed:orders`` scope, whatever the kills."""
    session = generate(firm_market(39, symbols=2, minutes=60, venue="sim-orders", quiet_open_s=1900, firm_agents=0.0))
    events = [event for symbol in session.tapes for event in session.order_events(symbol)]
    expected: set[bytes] = set()
    for symbol in session.tapes:
        watch = PublicWatch.new(symbol, "sim-orders")
        expected.update(alert.to_json() for event in session.order_events(symbol) for alert in watch.on_order(event))
    alerts = [orjson.loads(raw) for raw in expected]
    assert alerts and all(a["kind"] == "spoofing" and a["tenant"] is None for a in alerts)
    assert all(a["alert_id"] == alert_id(a["symbol"], "spoofing", a["window_start"], PUBLIC_SCOPE) for a in alerts)
    run = orders_stage_run()
    messages = sorted(as_messages(ORDERS, events), key=lambda m: orjson.loads(m.value())["ts"])
    # a kill every tenth of the session: a detector that came back without its state would lose the symbol's usual
    # sizes and its rate of cycles
    run.run(messages, kills=[len(messages) * k // 10 for k in range(1, 10)])
    assert set(run.sent(ALERTS)) == expected
