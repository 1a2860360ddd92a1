"""``detect file --orders``' market-by-order path offline (:mod:`tapewatch.evaluation.order_lookback`) against the
stream's orders stage over the same session: the same public and firm alerts, the same derived trades and books."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson

from tapewatch.evaluation.lookback import detect_frames
from tapewatch.evaluation.order_lookback import derived_ticks, order_feeds, run_orders
from tapewatch.feeds import FeedProfiles
from tapewatch.generators.lob_market import generate
from tapewatch.records import Book, ExecutionReport, Features, OrderBookEvent, Quote
from tests.detect_harness import DetectRun, messages
from tests.order_samples import firm_market
from tests.stage_harness import (
    ALERTS,
    BOOKS,
    FEATURES,
    FIRM,
    ORDERS,
    QUOTES,
    as_messages,
    derived,
    market_stage_run,
    orders_stage_run,
)


def test_the_offline_chain_raises_the_stages_alerts_and_derives_its_trades_and_books() -> None:
    session = generate(firm_market(10, symbols=2, minutes=30, venue="sim-orders", clean_fraction=0.25))
    public = [event for symbol in session.tapes for event in session.order_events(symbol)]
    reports = [report for symbol in session.tapes for report in session.execution_reports(symbol)]
    run = orders_stage_run()
    items: list[OrderBookEvent | ExecutionReport] = [*public, *reports]
    messages = {id(m_record): m for m_record, m in zip(public, as_messages(ORDERS, public), strict=True)}
    messages |= {id(m_record): m for m_record, m in zip(reports, as_messages(FIRM, reports), strict=True)}
    in_time = sorted(items, key=lambda r: (r.ts, isinstance(r, ExecutionReport)))
    run.run([messages[id(record)] for record in in_time])

    # the stream never ends: what waits at the end of the input is judged offline only when flushed
    offline = run_orders(public, reports, FeedProfiles(), flush=False)
    assert not offline.rejected
    kinds = Counter((str(a.kind), a.tenant is None) for a in offline.alerts)
    assert kinds[("spoofing", True)] and kinds[("spoofing", False)] and kinds[("wash_trading", False)], kinds
    assert set(run.sent(ALERTS)) == {alert.to_json() for alert in offline.alerts}
    quotes = [r.to_json() for r in offline.derived if isinstance(r, Quote)]
    books = [r.to_json() for r in offline.derived if isinstance(r, Book)]
    assert sorted(run.sent(QUOTES)) == sorted(quotes) and sorted(run.sent(BOOKS)) == sorted(books)
    # the derived feed becomes the tick path's input, each trade with the touch the book gave it
    ticks, dropped = derived_ticks(offline.derived, FeedProfiles())
    assert not dropped and len(ticks.frame) == len(offline.derived)
    trades = ticks.frame[ticks.frame["price"].notna()]
    first = orjson.loads(quotes[0])
    row = trades[(trades["symbol"] == first["symbol"]) & (trades["ts"] == first["ts"])].iloc[0]
    assert (row["quote_bid"], row["quote_ask"]) == (first["bid"], first["ask"])


def test_bad_records_are_counted_with_their_reason_and_the_rest_applied() -> None:
    add = OrderBookEvent(
        symbol="X", venue="sim-orders", ts=1_000, sequence=1, action="add", order_id="a", side="BUY", price=10.0,
        size=5.0,
    )  # fmt: skip
    again = add.model_copy(update={"sequence": 2, "ts": 1_001})  # the same order id while it rests
    stray = add.model_copy(update={"sequence": 3, "ts": 1_002, "action": "cancel", "order_id": "zz"})
    huge = add.model_copy(update={"sequence": 4, "ts": 1_003, "order_id": "b", "size": 5e9})
    report = ExecutionReport(
        symbol="X", venue="sim-orders", ts=1_000, exec_id="e1", order_id="o1", account="A", tenant="t",
        exec_type="new", side="BUY", price=10.0, quantity=5.0,
    )  # fmt: skip
    out = run_orders([add, again, stray, huge], [report, report], FeedProfiles())
    assert out.rejected == [
        ("X exec_id e1", "duplicate: a report of this exec_id was judged already"),
        ("X seq 2", "refused by the book: order id already resting"),
        ("X seq 3", "refused by the book: unknown order id"),
        ("X seq 4", "implausible: size 5e+09 above the venue's bound 1e+09"),
    ]


def test_detect_file_orders_raises_the_streams_alerts_end_to_end(tmp_path: Path) -> None:
    """``detect file --orders``' whole path — the orders stage's step, the derived trades and books through
    ``detect_frames`` — against the stream's three stages over the same session: the orders stage, the market stage
    on what it derived (bars, features) and the detect stage on those features: the same alerts, each as sent. A
    stream never flushes, so each symbol gets one more order the next morning (the session's last minutes close when
    a later record comes), and the alerts are compared up to where the stream's features reach."""
    session = generate(firm_market(10, symbols=2, minutes=30, venue="sim-orders", clean_fraction=0.25))
    public = [event for symbol in session.tapes for event in session.order_events(symbol)]
    feeds = order_feeds(FeedProfiles())
    public += next_morning(public, run_orders(public, (), feeds, flush=False).derived)
    orders = orders_stage_run()
    orders.run(as_messages(ORDERS, public))
    market = market_stage_run()
    market.run(derived(orders))
    features = [Features.from_json(value) for value in market.sent(FEATURES)]
    detect = DetectRun(tmp_path)
    detect.process(messages(features))
    streamed = {value for (topic, _), values in detect.outputs().items() if topic == ALERTS for value in values}

    ticks, dropped = derived_ticks(run_orders(public, (), feeds, flush=False).derived, feeds)
    batch = detect_frames(ticks, None, feeds=feeds)
    reach = min(max(f.ts for f in features if f.symbol == symbol) for symbol in session.tapes)
    expected = {alert.to_json() for alert in batch.alerts if alert.ts <= reach}
    assert not dropped and expected, "the session's closes are marked, and the stream's features reach them"
    assert streamed == expected


def next_morning(events: list[OrderBookEvent], derived: list[Quote | Book]) -> list[OrderBookEvent]:
    """Per symbol, an hour after its last event, one order joining its best bid, one trade against hidden liquidity at
    its last price, and the order's cancel a millisecond later (the stage sends a millisecond's book once the next
    event is past it): a later book and trade for the stream, whose chunks close when both have passed."""
    last = {event.symbol: event for event in events}
    prices = {record.symbol: record.price for record in derived if isinstance(record, Quote)}
    bids = {record.symbol: record.bids[0][0] for record in derived if isinstance(record, Book)}
    out: list[OrderBookEvent] = []
    for symbol, event in last.items():
        later, n = event.ts + 3_600_000, event.sequence
        steps: list[dict[str, object]] = [
            {"action": "add", "order_id": "morning", "side": "BUY", "price": bids[symbol], "size": 1.0},
            {"action": "trade", "order_id": None, "side": "SELL", "price": prices[symbol], "size": 1.0},
            {"action": "cancel", "order_id": "morning", "side": "BUY", "price": None, "size": 0.0},
        ]
        for k, fields in enumerate(steps):
            update: dict[str, object] = {"ts": later + (k == 2), "sequence": n + 1 + k, "snapshot": False}
            update |= fields
            out.append(OrderBookEvent.model_validate(event.model_dump() | update))
    return out
