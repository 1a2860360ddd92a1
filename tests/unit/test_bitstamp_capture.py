"""The Bitstamp capture → tick file: the order-book rebuild on hand-made events, then the real capture that
ob-analytics ships, through the tick contract and `detect file`'s code path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tapewatch.detectors.flow import FlowConfig
from tapewatch.errors import TapewatchError
from tapewatch.evaluation.lookback import DetectionOutput, detect_frames, read_input
from tapewatch.feeds import FeedProfiles
from tapewatch.producers.bitstamp_capture import (
    Conversion,
    Dropped,
    convert,
    read_capture_file,
    rebuild_books,
    sample_paths,
    summary,
    tick_frame,
    trade_rows,
    write_ticks,
)
from tapewatch.records import Alert, Book, Quote
from tapewatch.settings import Settings
from tapewatch.ticks import Validated

T0 = 1_777_689_380_000  # a multiple of 100: the hand-made events below fall into one 100 ms bucket

#: alerts the current detectors raise on the real capture (ordinary market activity): measured 0 with the
#: default 100 ms books and with every change (1 ms); the bound the detector side holds itself to
MAX_FALSE_ALERTS = 0
#: the capture's own numbers (ob-analytics 0.1.0, meta.json): trades, order events, stale crossing orders
CAPTURE_TRADES = 284
CAPTURE_EVENTS = 314_057
CAPTURE_STALE = 2


def events(rows: list[tuple[int, int, float, float, str, str]]) -> pd.DataFrame:
    columns = ["id", "exchange_timestamp", "price", "volume", "action", "direction"]
    return pd.DataFrame(rows, columns=columns)


HAND_MADE = events(
    [
        # the snapshot, one millisecond: two bid levels (99 holds two orders), three ask levels, and a
        # placeholder bid at price 0 that must never rest
        (1, T0, 100.0, 1.0, "created", "bid"),
        (2, T0, 99.0, 2.0, "created", "bid"),
        (3, T0, 99.0, 0.5, "created", "bid"),
        (4, T0, 101.0, 1.5, "created", "ask"),
        (5, T0, 102.0, 1.0, "created", "ask"),
        (8, T0, 103.0, 1.0, "created", "ask"),
        (10, T0, 104.0, 2.0, "created", "ask"),
        (6, T0, 0.0, 5.0, "created", "bid"),
        # a partial fill of ask 4
        (4, T0 + 10, 101.0, 1.0, "changed", "ask"),
        # a sweep in one millisecond: the taker arrives at its limit (crossing), its changes report fill
        # prices, the makers go; the rest (0.5) rests at the taker's limit 102, not at a fill price
        (7, T0 + 20, 102.0, 2.5, "created", "bid"),
        (7, T0 + 20, 101.0, 1.5, "changed", "bid"),
        (4, T0 + 20, 101.0, 0.0, "deleted", "ask"),
        (7, T0 + 20, 102.0, 0.5, "changed", "bid"),
        (5, T0 + 20, 102.0, 0.0, "deleted", "ask"),
        # a delete for an order the book never held
        (99, T0 + 30, 98.0, 1.0, "deleted", "bid"),
        # a bid through ask 8 and no trade: ask 8's delete was missed, it goes
        (9, T0 + 40, 103.5, 0.2, "created", "bid"),
        # … and its late delete is counted, not applied twice
        (8, T0 + 50, 103.0, 1.0, "deleted", "ask"),
        # the capture's closing flush: an empty book is not a market state, no row
        *((i, T0 + 60, 0.0, 0.0, "deleted", "bid") for i in (1, 2, 3, 7, 9)),
        (10, T0 + 60, 104.0, 2.0, "deleted", "ask"),
    ]
)


def levels(row: pd.Series, side: str) -> list[tuple[float, float]]:
    out = []
    for k in range(1, 6):
        price, size = row[f"{side}{k}"], row[f"{side}sz{k}"]
        if not np.isnan(price):
            out.append((float(price), round(float(size), 8)))
    return out


def test_book_rebuild_on_hand_made_events() -> None:
    books, report = rebuild_books(HAND_MADE, symbol="BTCUSD", interval_ms=1)
    assert books["ts"].tolist() == [T0, T0 + 10, T0 + 20, T0 + 40]
    got = [(levels(row, "bid"), levels(row, "ask")) for _, row in books.iterrows()]
    assert got == [
        ([(100.0, 1.0), (99.0, 2.5)], [(101.0, 1.5), (102.0, 1.0), (103.0, 1.0), (104.0, 2.0)]),
        ([(100.0, 1.0), (99.0, 2.5)], [(101.0, 1.0), (102.0, 1.0), (103.0, 1.0), (104.0, 2.0)]),
        ([(102.0, 0.5), (100.0, 1.0), (99.0, 2.5)], [(103.0, 1.0), (104.0, 2.0)]),
        ([(103.5, 0.2), (102.0, 0.5), (100.0, 1.0), (99.0, 2.5)], [(104.0, 2.0)]),
    ]
    assert (books["bid1"] < books["ask1"]).all()
    assert set(books["venue"]) == {"bitstamp"} and books["price"].isna().all()
    assert report.events == len(HAND_MADE) and report.actions == {"created": 10, "changed": 3, "deleted": 10}
    assert (report.unusable_creates, report.unknown_orders, report.late_for_dropped) == (1, 1, 1)
    assert report.crossed_states == 1  # the sweep's crossing lasted within its millisecond: not counted
    assert report.dropped == [Dropped(8, "ask", 103.0, 1.0, seen=T0, dropped_at=T0 + 40)]
    assert report.states == 7 and report.book_rows == 4


def test_books_are_sampled_per_interval() -> None:
    # every event falls into one 100 ms bucket: one row, the bucket's last change of the top five
    books, _ = rebuild_books(HAND_MADE, interval_ms=100)
    assert books["ts"].tolist() == [T0 + 40]
    assert levels(books.iloc[0], "ask") == [(104.0, 2.0)]
    # buckets of 20 ms: [T0, T0+20) ends with the partial fill, [T0+20, T0+40) with the sweep (the unknown
    # delete at T0+30 changes nothing), [T0+40, T0+60) with the drop
    books, _ = rebuild_books(HAND_MADE, interval_ms=20)
    assert books["ts"].tolist() == [T0 + 10, T0 + 20, T0 + 40]


def test_trades_come_before_the_book_of_their_millisecond() -> None:
    books, _ = rebuild_books(HAND_MADE, interval_ms=1)
    trades = pd.DataFrame(
        {
            "exchange_timestamp": [T0 + 20, T0 + 20, T0 + 45],
            "price": [101.0, 102.0, 103.5],
            "amount": [1.0, 1.0, 0.1],
            "side": ["buy", "buy", "sell"],
        }
    )
    ticks = tick_frame(books, trade_rows(trades))
    assert ticks["ts"].tolist() == [T0, T0 + 10, T0 + 20, T0 + 20, T0 + 20, T0 + 40, T0 + 45]
    assert ticks["side"].tolist() == [None, None, "B", "B", None, None, "S"]
    checked = Validated(ticks, "x")
    assert checked.good.all()
    # the quote in force before the sweep's prints is the book before it, not the one it left
    assert checked.quote_ask[2] == checked.quote_ask[3] == 101.0
    assert checked.quote_bid[6] == 103.5


def test_the_bitstamp_feed_profile() -> None:
    bitstamp = FeedProfiles()("bitstamp")
    assert bitstamp.books and bitstamp.sides and bitstamp.prints == "trades" and bitstamp.close_time is None
    assert bitstamp.implausible(Quote(symbol="BTCUSD", venue="bitstamp", ts=1, price=78_318.0, size=1.5)) is None
    assert bitstamp.implausible(Book(symbol="SHIBUSD", venue="bitstamp", ts=1, bids=[(1e-5, 3e9)], asks=[])) is None
    assert bitstamp.implausible(Quote(symbol="BTCUSD", venue="bitstamp", ts=1, price=2e7, size=1.0))[0] == "price"  # type: ignore[index]
    assert bitstamp.implausible(Quote(symbol="btc-usd", venue="bitstamp", ts=1, price=1.0, size=1.0))[0] == "symbol"  # type: ignore[index]


# --- the real capture -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def capture() -> Conversion:
    orders, trades = sample_paths()
    return convert(orders, trades)


@pytest.fixture(scope="module")
def detected(capture: Conversion, tmp_path_factory: pytest.TempPathFactory) -> DetectionOutput:
    """`tapewatch detect file` on the converted file, as its command runs it (patterns only: no K-means
    model is trained on this venue)."""
    path = tmp_path_factory.mktemp("bitstamp") / "bitstamp.parquet"
    write_ticks(capture.ticks, path)
    settings = Settings()
    return detect_frames(
        read_input([path]),
        None,
        flow_config=FlowConfig.from_settings(settings),
        grace_ms=settings.stream.grace_ms,
        feeds=settings.venues.feeds(),
    )


def test_the_real_capture_converts_whole(capture: Conversion) -> None:
    print("\n".join(summary(capture)))
    _, trades_csv = sample_paths()
    assert capture.rebuild.events == CAPTURE_EVENTS
    assert capture.trades == CAPTURE_TRADES == len(read_capture_file(trades_csv))
    ticks = capture.ticks
    checked = Validated(ticks, "bitstamp")
    assert checked.good.all(), ticks[~checked.good].head()
    assert int((~np.isnan(checked.price)).sum()) == CAPTURE_TRADES
    books = ticks[ticks["bid1"].notna()]
    assert len(books) == capture.rebuild.book_rows > 5_000
    assert (books["bid1"] < books["ask1"]).all(), "a crossed book was written"
    assert books[["bid5", "ask5"]].notna().all().all(), "a BTC/USD book has five levels a side"
    assert len(capture.rebuild.dropped) == CAPTURE_STALE
    assert capture.seconds < 60


def test_prints_meet_the_rebuilt_book() -> None:
    # with every change written, a buy prints at or above the best ask in force before it and a sell at or
    # below the best bid: what a book rebuilt right shows (hidden orders and unannounced re-prices aside)
    orders, trades = sample_paths()
    ticks = convert(orders, trades, interval_ms=1).ticks
    checked = Validated(ticks, "bitstamp")
    prints = ~np.isnan(checked.price)
    price, side = checked.price[prints], checked.side[prints]
    through = np.where(side == "B", price >= checked.quote_ask[prints], price <= checked.quote_bid[prints])
    assert through.mean() >= 0.99, f"{int((~through).sum())} of {len(through)} prints inside the quote"


def test_detect_file_on_the_real_capture(detected: DetectionOutput) -> None:
    assert detected.symbols == ["BTCUSD"]
    assert len(detected.bars) >= 25  # 30 minutes of trades, the last ones still open
    kinds: dict[str, int] = {}
    for alert in detected.alerts:
        kinds[str(alert.kind)] = kinds.get(str(alert.kind), 0) + 1
        print(describe(alert))
    print(f"{len(detected.alerts)} alert(s) on the real capture: {kinds or 'none'}")
    assert len(detected.alerts) <= MAX_FALSE_ALERTS, "\n".join(map(describe, detected.alerts))


def describe(alert: Alert) -> str:
    window = pd.to_datetime([alert.window_start, alert.window_end], unit="ms", utc=True)
    evidence = ", ".join(f"{k}={v}" for k, v in alert.evidence.items())
    span = f"{window[0]:%H:%M:%S}–{window[1]:%H:%M:%S}"
    return f"{alert.kind} {span} score {alert.score:.2f}: {alert.message} [{evidence}]"


def test_fetch_command_on_a_capture_elsewhere(tmp_path: Path) -> None:
    from tapewatch.cli.app import cli

    orders = tmp_path / "capture" / "orders.csv.gz"
    orders.parent.mkdir()
    HAND_MADE.assign(timestamp=HAND_MADE["exchange_timestamp"] + 80).to_csv(orders, index=False)
    pd.DataFrame(
        {"trade_id": [1], "timestamp": [T0 + 100], "exchange_timestamp": [T0 + 20], "price": [101.0], "amount": [1.0]}
        | {"buy_order_id": [7], "sell_order_id": [4], "side": ["buy"]}
    ).to_csv(orders.parent / "trades.csv", index=False)
    out = tmp_path / "ethereum.csv"
    runner = CliRunner()
    args = ["fetch", "bitstamp-sample", "--orders", str(orders), "--symbol", "ETHEUR", "--book-interval-ms", "1"]
    result = runner.invoke(cli(), [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 trades" in result.output and "4 book rows" in result.output
    ticks = read_input([out])
    assert ticks.rejected == [] and set(ticks.frame["symbol"]) == {"ETHEUR"} and len(ticks.frame) == 5
    # a file of another layout is named with what it lacks
    (tmp_path / "other.csv").write_text("id,price\n1,2.0\n")
    result = runner.invoke(cli(), [*args[:2], "--orders", str(tmp_path / "other.csv"), "--out", str(out)])
    assert isinstance(result.exception, TapewatchError) and "missing column(s)" in str(result.exception)
    result = runner.invoke(cli(), [*args[:2], "--trades", str(orders), "--out", str(out)])
    assert isinstance(result.exception, TapewatchError) and "--trades needs --orders" in str(result.exception)
