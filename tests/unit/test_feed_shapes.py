"""Feed profiles of the labelled simulator: the snapshot feeds are the trade feed aggregated per symbol and
interval (sizes conserved, last print kept, no side, the quote of the previous snapshot), with the same labels."""

from __future__ import annotations

import doctest
import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tapewatch.generators import feed_shapes
from tapewatch.generators.feed_shapes import FEEDS, snapshot_index, snapshot_interval, snapshot_times
from tapewatch.generators.simulator import INJECTED_KINDS, TICK_COLUMNS, Simulation, SimulationConfig, generate
from tapewatch.records import Book, Episode, Quote

SNAPSHOT_FEEDS = ("twse-mis", "snapshot-1s")
BASE = SimulationConfig(
    symbols=4, seed=17, minutes=40, clean_fraction=0.0, rates=dict.fromkeys(INJECTED_KINDS, 1.0), variants=True
)
_cache: dict[str, Simulation] = {}


def session(feed: str) -> Simulation:
    if feed not in _cache:
        _cache[feed] = generate(replace(BASE, feed=feed))
    return _cache[feed]


def digest(sim: Simulation) -> str:
    h = hashlib.sha256()
    for _, _, chunk in sim.encoded(2048):
        for payload in chunk:
            h.update(payload + b"\n")
    return h.hexdigest()


# --- the pure helpers -----------------------------------------------------------------------------------------------
def test_docstring_examples() -> None:
    result = doctest.testmod(feed_shapes, raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0


def test_profiles_and_their_intervals() -> None:
    assert FEEDS == ("trades", "twse-mis", "snapshot-1s")
    assert [snapshot_interval(f) for f in FEEDS] == [None, 5_000, 1_000]
    with pytest.raises(ValueError, match="feed must be one of"):
        snapshot_interval("level3")


def test_snapshot_times_always_end_at_the_close() -> None:
    assert snapshot_times(0, 10_000, 5_000).tolist() == [0, 5_000, 10_000]
    assert snapshot_times(0, 7_500, 5_000).tolist() == [0, 5_000, 7_500]
    assert snapshot_times(100, 100, 5_000).tolist() == [100]
    with pytest.raises(ValueError):
        snapshot_times(0, 10, 0)


def test_a_print_at_the_snapshot_time_belongs_to_that_snapshot() -> None:
    quote_ts = np.array([0, 5_000, 5_001, 10_000], dtype=np.int64)
    price = np.array([1.0, 2.0, 3.0, np.nan])
    index = snapshot_index(quote_ts, price, np.array([0], dtype=np.int64), snapshot_times(0, 10_000, 5_000))
    assert index.last_print.tolist() == [0, 1, 2]
    assert index.book.tolist() == [0, 0, 0] and index.previous_book.tolist() == [0, 0, 0]


def test_no_quotes_at_all() -> None:
    empty = np.array([], dtype=np.int64)
    index = snapshot_index(empty, np.array([]), empty, snapshot_times(0, 10_000, 5_000))
    assert index.row.tolist() == index.last_print.tolist() == index.book.tolist() == [-1, -1, -1]


# --- sessions in the snapshot profiles -------------------------------------------------------------------------------
@pytest.mark.parametrize("feed", SNAPSHOT_FEEDS)
def test_labels_are_those_of_the_trade_feed(feed: str) -> None:
    trades, snaps = session("trades"), session(feed)
    assert snaps.episodes == trades.episodes and len(trades.episodes) >= 8
    assert snaps.episode_variants == trades.episode_variants
    assert snaps.clean_symbols == trades.clean_symbols


@pytest.mark.parametrize("feed", SNAPSHOT_FEEDS)
def test_one_snapshot_per_symbol_per_interval(feed: str) -> None:
    sim, interval = session(feed), snapshot_interval(feed)
    assert interval is not None
    quotes, books = sim.quotes_frame(), sim.books_frame()
    times = [*range(BASE.start_ms, BASE.end_ms, interval), BASE.end_ms]
    for symbol in sim.symbols:
        assert quotes[quotes.symbol == symbol].ts.tolist() == times
        assert books[books.symbol == symbol].ts.tolist() == times
        assert quotes[quotes.symbol == symbol].seq.tolist() == list(range(len(times)))
    assert np.all(np.diff(sim.event_ts) >= 0)


def interval_of(trades: pd.DataFrame, interval: int) -> pd.Series:
    """The snapshot time that reports each print: the first grid time at or after it (the close for the last)."""
    grid = BASE.start_ms + -(-(trades.ts - BASE.start_ms) // interval) * interval
    return grid.clip(upper=BASE.end_ms)


@pytest.mark.parametrize("feed", SNAPSHOT_FEEDS)
def test_prints_are_aggregated_per_interval(feed: str) -> None:
    interval = snapshot_interval(feed)
    assert interval is not None
    sim, trades = session(feed), session("trades").trades_frame()
    quotes = sim.quotes_frame().set_index(["symbol", "ts"])
    trades = trades.assign(at=interval_of(trades, interval))
    per_interval = trades.groupby(["symbol", "at"]).agg(traded=("size", "sum"), last=("price", "last"))
    per_interval.index.names = ["symbol", "ts"]
    joined = quotes.join(per_interval, how="left")
    traded = joined["last"].notna()
    # the last price is the interval's last print; nothing printed: null price and size 0
    assert np.array_equal(joined.price[traded], joined["last"][traded])
    assert joined.price[~traded].isna().all() and (joined["size"][~traded] == 0).all()
    assert np.array_equal(joined["size"][traded], joined["traded"][traded])
    assert traded.mean() > 0.5 and (~traded).any()


def test_volume_is_conserved_per_symbol() -> None:
    trades = session("trades").trades_frame()
    for feed in SNAPSHOT_FEEDS:
        quotes = session(feed).quotes_frame()
        assert set(quotes.symbol) == set(trades.symbol), feed
        for symbol, group in quotes.groupby("symbol"):
            traded = trades[trades.symbol == symbol]["size"].sum()
            assert group["size"].sum() == traded, (feed, symbol)
            assert group.volume.iloc[-1] == traded
            assert np.array_equal(group.volume.to_numpy(), np.cumsum(group["size"].to_numpy()))


@pytest.mark.parametrize("feed", SNAPSHOT_FEEDS)
def test_no_side_and_the_quote_of_the_previous_snapshot(feed: str) -> None:
    sim = session(feed)
    quotes, books = sim.quotes_frame(), sim.books_frame()
    assert quotes.side.isna().all()
    for symbol in sim.symbols:
        q, b = quotes[quotes.symbol == symbol], books[books.symbol == symbol]
        previous_bid = np.concatenate([b.bid1.to_numpy()[:1], b.bid1.to_numpy()[:-1]])
        previous_ask = np.concatenate([b.ask1.to_numpy()[:1], b.ask1.to_numpy()[:-1]])
        assert np.array_equal(q.bid.to_numpy(), previous_bid) and np.array_equal(q.ask.to_numpy(), previous_ask)


@pytest.mark.parametrize("feed", SNAPSHOT_FEEDS)
def test_books_are_the_trade_feeds_books_at_the_snapshot_times(feed: str) -> None:
    trade_books = session("trades").books_frame().set_index(["symbol", "ts"])
    books = session(feed).books_frame().set_index(["symbol", "ts"])
    pd.testing.assert_frame_equal(books, trade_books.loc[books.index])


@pytest.mark.parametrize("feed", SNAPSHOT_FEEDS)
def test_session_fields_follow_the_prints(feed: str) -> None:
    quotes = session(feed).quotes_frame()
    trades = session("trades").trades_frame()
    assert set(quotes.symbol) == set(trades.symbol)
    for symbol, group in quotes.groupby("symbol"):
        prints = trades[trades.symbol == symbol]
        assert (group.open == prints.price.iloc[0]).all()
        assert group.high.iloc[-1] == prints.price.max() and group.low.iloc[-1] == prints.price.min()
        assert np.all(np.diff(group.high.to_numpy()) >= 0) and np.all(np.diff(group.low.to_numpy()) <= 0)


@pytest.mark.parametrize("feed", SNAPSHOT_FEEDS)
def test_records_validate_and_the_fast_encoding_matches(feed: str) -> None:
    sim = session(feed)
    records = list(sim.records())
    assert {type(r) for r in records} == {Quote, Book, Episode}
    fast = [payload for _, _, chunk in sim.encoded(1000) for payload in chunk]
    assert fast == [r.to_json() for r in records]


@pytest.mark.parametrize("feed", SNAPSHOT_FEEDS)
def test_same_config_same_bytes(feed: str) -> None:
    again = generate(replace(BASE, feed=feed))
    assert digest(again) == digest(session(feed))
    assert digest(session(feed)) != digest(generate(replace(BASE, feed=feed, seed=18)))


def test_snapshot_ticks_file_replays(tmp_path: Path) -> None:
    from tapewatch.producers.replay import Replay
    from tapewatch.producers.simulate import write_files

    sim = session("twse-mis")
    ticks_path, _ = write_files(sim, tmp_path, "parquet")
    ticks = pd.read_parquet(ticks_path)
    assert tuple(ticks.columns) == ("symbol", "venue", *TICK_COLUMNS[1:])
    prints = ticks[ticks.price.notna()]
    assert prints.side.isna().all() and len(prints) == len(sim.trades_frame())
    assert Replay([ticks_path], venue="sim").validated.good.all()


def test_feed_is_validated() -> None:
    with pytest.raises(ValueError, match="feed"):
        SimulationConfig(feed="twse")


def test_commands_accept_the_new_options(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from tapewatch.cli.detect import eval_app
    from tapewatch.cli.produce import produce_simulate
    from tapewatch.errors import TapewatchError

    app = typer.Typer()
    app.command("simulate")(produce_simulate)
    runner = CliRunner()
    args = ["--symbols", "2", "--minutes", "6", "--seed", "4", "--no-progress", "--book-churn", "0.5"]
    result = runner.invoke(app, [*args, "--out-dir", str(tmp_path / "p"), "--feed", "twse-mis", "--regimes", "wide"])
    assert result.exit_code == 0, result.output
    ticks = pd.read_parquet(tmp_path / "p" / "ticks.parquet")
    assert ticks.side.isna().all() and (ticks.ts.diff().dropna() % 5_000 == 0).all()
    result = runner.invoke(app, [*args, "--out-dir", str(tmp_path / "q"), "--feed", "level3"])
    assert isinstance(result.exception, TapewatchError) and "feed" in str(result.exception)

    out = tmp_path / "e"
    eval_args = ["simulate", "--out", str(out), "--symbols", "3", "--minutes", "30", "--seed", "2"]
    result = runner.invoke(eval_app, [*eval_args, "--feed", "snapshot-1s", "--variants"])
    assert result.exit_code == 0, result.output
    truth = pd.read_csv(out / "episodes.csv")
    assert "variant" in truth.columns and len(truth)
    assert pd.read_parquet(out / "ticks.parquet").side.isna().all()
    result = runner.invoke(eval_app, [*eval_args, "--regimes", "narrow"])
    assert isinstance(result.exception, TapewatchError) and "regimes" in str(result.exception)
