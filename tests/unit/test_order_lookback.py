"""``detect file --orders``' market-by-order path offline (:mod:`tapewatch.evaluation.order_lookback`) against the
stream's orders stage over the same session: the same public and firm alerts, the same derived trades and books."""

from __future__ import annotations

from collections import Counter

import orjson

from tapewatch.evaluation.order_lookback import derived_ticks, run_orders
from tapewatch.feeds import FeedProfiles
from tapewatch.generators.lob_market import generate
from tapewatch.records import Book, ExecutionReport, OrderBookEvent, Quote
from tests.order_samples import firm_market
from tests.stage_harness import ALERTS, BOOKS, FIRM, ORDERS, QUOTES, as_messages, orders_stage_run


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
