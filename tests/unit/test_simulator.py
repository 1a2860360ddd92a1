"""The labelled market simulator: determinism, TWSE microstructure invariants, and that every injected episode
shows its documented signature in the data a detector would see (not just in the labels)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapewatch.generators.simulator import (
    EPISODE_COLUMNS,
    INJECTED_KINDS,
    TICK_COLUMNS,
    VARIANTS,
    Simulation,
    SimulationConfig,
    episodes_frame,
    generate,
    index_to_price,
    on_tick_grid,
    price_to_index,
    simulate,
    tick_size,
)
from tapewatch.records import AlertKind, Book, Episode, Quote

K = AlertKind
ALL_FORCED = dict.fromkeys(INJECTED_KINDS, 1.0)


# --- independent reference implementations (not the simulator's own ladder) -----------------------------------------
def twse_tick(price: np.ndarray) -> np.ndarray:
    return np.select(
        [price < 10, price < 50, price < 100, price < 500, price < 1000], [0.01, 0.05, 0.1, 0.5, 1.0], default=5.0
    )


def assert_on_grid(prices: np.ndarray, what: str) -> None:
    prices = np.asarray(prices, dtype=float)
    assert np.all(prices > 0), f"{what}: non-positive price"
    ticks = prices / twse_tick(prices)
    bad = np.abs(ticks - np.rint(ticks)) > 1e-6
    assert not bad.any(), f"{what}: off the TWSE grid: {prices[bad][:5]}"


def level_columns(side: str) -> tuple[list[str], list[str]]:
    return [f"{side}{i}" for i in range(1, 6)], [f"{side}sz{i}" for i in range(1, 6)]


def episode_windows(sim: Simulation, symbol: str) -> list[tuple[int, int]]:
    return [(e.start, e.end) for e in sim.episodes if e.symbol == symbol]


def outside(frame: pd.DataFrame, sim: Simulation, symbol: str, pad_ms: int = 60_000) -> pd.DataFrame:
    """Rows of ``symbol`` away from its episodes: the symbol's own baseline."""
    rows = frame[frame["symbol"] == symbol]
    keep = np.ones(len(rows), dtype=bool)
    for start, end in episode_windows(sim, symbol):
        keep &= ~((rows["ts"] >= start - pad_ms) & (rows["ts"] <= end + pad_ms)).to_numpy()
    return rows[keep]


def in_window(frame: pd.DataFrame, symbol: str, start: int, end: int) -> pd.DataFrame:
    return frame[(frame["symbol"] == symbol) & (frame["ts"] >= start) & (frame["ts"] <= end)]


# --- fixtures -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def day() -> Simulation:
    """A full TWSE day (09:00-13:30) with the default episode mix."""
    return generate(SimulationConfig(symbols=8, seed=11, clean_fraction=0.25))


@pytest.fixture(scope="module")
def day_trades(day: Simulation) -> pd.DataFrame:
    return day.trades_frame()


@pytest.fixture(scope="module")
def mixed() -> Simulation:
    """Every kind forced on every symbol of a shorter session."""
    return generate(SimulationConfig(symbols=6, seed=3, minutes=150, clean_fraction=0.0, rates=ALL_FORCED))


FORCED: dict[AlertKind, SimulationConfig] = {
    kind: SimulationConfig(
        symbols=4,
        seed=21 + i,
        minutes=120,
        clean_fraction=0.0,
        rates={kind: 1.0 if kind is K.MARKING_THE_CLOSE else 2.0},
    )
    for i, kind in enumerate(INJECTED_KINDS)
}
_forced_cache: dict[AlertKind, Simulation] = {}


def forced(kind: AlertKind) -> Simulation:
    """A session where only ``kind`` is injected, so the rest of the tape is the symbols' baseline."""
    if kind not in _forced_cache:
        _forced_cache[kind] = generate(FORCED[kind])
    return _forced_cache[kind]


def small_config(seed: int, cadence_ms: int = 1000) -> SimulationConfig:
    return SimulationConfig(
        symbols=3, seed=seed, minutes=20, cadence_ms=cadence_ms, clean_fraction=0.0, rates=ALL_FORCED
    )


# --- determinism and the wire form ----------------------------------------------------------------------------------
def payloads(sim: Simulation) -> Iterator[bytes]:
    for _, _, chunk in sim.encoded(1000):
        yield from chunk


def test_same_seed_gives_byte_identical_records() -> None:
    first = [r.to_json() for r in simulate(small_config(5))]
    second = [r.to_json() for r in simulate(small_config(5))]
    assert first == second
    assert len(first) > 2000


def test_different_seed_gives_different_records() -> None:
    a = list(payloads(generate(small_config(5))))
    b = list(payloads(generate(small_config(6))))
    assert a != b
    assert len(set(a) & set(b)) < len(a) // 100


def test_fast_encoding_is_exactly_the_record_contract() -> None:
    sim = generate(small_config(8))
    records = list(sim.records())
    fast = list(payloads(sim))
    assert fast == [r.to_json() for r in records]
    assert [orjson.dumps(row) for _, _, row in sim.rows()] == fast
    # ...and the bytes decode back into equal records.
    decoders = {Quote: Quote.from_json, Book: Book.from_json, Episode: Episode.from_json}
    assert all(decoders[type(r)](p) == r for r, p in zip(records, fast, strict=True))


def test_adding_symbols_does_not_change_existing_ones() -> None:
    three = generate(SimulationConfig(symbols=3, seed=9, minutes=15, clean_fraction=0.0)).quotes_frame()
    five = generate(SimulationConfig(symbols=5, seed=9, minutes=15, clean_fraction=0.0)).quotes_frame()
    for symbol in ("SIM0001", "SIM0003"):
        a = three[three.symbol == symbol].reset_index(drop=True)
        b = five[five.symbol == symbol].reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)


# --- microstructure invariants --------------------------------------------------------------------------------------
def check_invariants(sim: Simulation) -> None:
    cfg = sim.config
    quotes = sim.quotes_frame()
    books = sim.books_frame()
    trades = quotes[quotes.price.notna()]

    # event-time order, within and across symbols; seq counts each symbol's quotes
    assert np.all(np.diff(sim.event_ts) >= 0)
    assert quotes.ts.min() >= cfg.start_ms and quotes.ts.max() <= cfg.end_ms
    for _, group in quotes.groupby("symbol"):
        assert np.all(np.diff(group.ts.to_numpy()) >= 0)
        assert group.seq.tolist() == list(range(len(group)))

    # the tick grid, everywhere a price appears
    for column in ("price", "open", "high", "low", "prev_close", "bid", "ask"):
        values = quotes[column].dropna().to_numpy()
        assert_on_grid(values, column)
    for side in ("bid", "ask"):
        prices, sizes = level_columns(side)
        assert_on_grid(books[prices].to_numpy().ravel(), f"book {side}")
        qty = books[sizes].to_numpy()
        assert np.all(qty >= 1000) and np.all(qty % 1000 == 0), "book sizes are whole lots"

    # books ordered best first, never crossed
    bid_px, ask_px = books[level_columns("bid")[0]].to_numpy(), books[level_columns("ask")[0]].to_numpy()
    assert np.all(np.diff(bid_px, axis=1) < 0) and np.all(np.diff(ask_px, axis=1) > 0)
    assert np.all(bid_px[:, 0] < ask_px[:, 0])
    assert np.all(quotes.bid < quotes.ask)

    # a snapshot quote shows its book's level 1; every symbol has a snapshot every cadence
    snaps = quotes[quotes.price.isna()].reset_index(drop=True)
    assert len(snaps) == len(books) == cfg.symbols * (cfg.steps + 1)
    assert np.array_equal(snaps.bid.to_numpy(), bid_px[:, 0]) and np.array_equal(snaps.ask.to_numpy(), ask_px[:, 0])
    assert np.array_equal(snaps.ts.to_numpy(), books.ts.to_numpy())

    # trades: whole lots, buys lift the ask, sells hit the bid, the only side-less print is the opening auction
    assert np.all(trades["size"] % 1000 == 0) and np.all(trades["size"] >= 1000)
    buys, sells = trades[trades.side == "B"], trades[trades.side == "S"]
    assert np.array_equal(buys.price, buys.ask) and np.array_equal(sells.price, sells.bid)
    auction = trades[trades.side.isna()]
    assert len(auction) == cfg.symbols and np.all(auction.ts == cfg.start_ms)

    # cumulative volume: exactly the running sum of trade sizes (snapshots add nothing), open/high/low running
    assert np.all(snaps["size"] == 0)
    for _, group in quotes.groupby("symbol"):
        assert np.array_equal(group.volume.to_numpy(), np.cumsum(group["size"].to_numpy()))
        traded = group[group.price.notna()]
        assert group.volume.iloc[-1] == traded["size"].sum()
        assert np.array_equal(traded.high.to_numpy(), np.maximum.accumulate(traded.price.to_numpy()))
        assert np.array_equal(traded.low.to_numpy(), np.minimum.accumulate(traded.price.to_numpy()))
        assert (group.open == traded.price.iloc[0]).all()

    # episodes: inside the session, ordered, never overlapping on a symbol
    frame = episodes_frame(sim.episodes)
    assert np.all(frame.start < frame.end)
    assert np.all(frame.start >= cfg.start_ms) and np.all(frame.end <= cfg.end_ms)
    for _, group in frame.sort_values("start").groupby("symbol"):
        assert np.all(group.start.to_numpy()[1:] > group.end.to_numpy()[:-1])


def test_full_day_invariants(day: Simulation) -> None:
    check_invariants(day)
    assert len(day.episodes) > 0


def test_forced_mix_invariants(mixed: Simulation) -> None:
    check_invariants(mixed)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), cadence=st.sampled_from([200, 500, 1000]))
def test_invariants_hold_for_any_seed(seed: int, cadence: int) -> None:
    check_invariants(generate(small_config(seed, cadence)))


@given(index=st.integers(1, 20_000))
def test_tick_ladder_round_trips(index: int) -> None:
    price = float(index_to_price(index))
    assert on_tick_grid(price)
    assert price_to_index(price) == pytest.approx(index)
    assert tick_size(price) == float(twse_tick(np.array([price]))[0])


def test_tick_bands() -> None:
    assert [tick_size(p) for p in (9.99, 10.0, 49.95, 50.0, 99.9, 100.0, 499.5, 500.0, 999.0, 1000.0)] == [
        0.01,
        0.05,
        0.05,
        0.1,
        0.1,
        0.5,
        0.5,
        1.0,
        1.0,
        5.0,
    ]
    assert not on_tick_grid(10.01) and on_tick_grid(10.05) and not on_tick_grid(100.2)


def test_prices_span_several_tick_bands() -> None:
    sim = generate(SimulationConfig(symbols=40, seed=2, minutes=10, clean_fraction=1.0))
    bands = {float(t) for t in twse_tick(np.array(sim.prev_close))}
    assert len(bands) >= 4


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="cadence"):
        SimulationConfig(cadence_ms=2000)
    with pytest.raises(ValueError, match="minutes"):
        SimulationConfig(minutes=0.05)
    with pytest.raises(ValueError, match="not an injectable"):
        SimulationConfig(rates={K.KMEANS_OUTLIER: 1.0})


# --- realism --------------------------------------------------------------------------------------------------------
def test_activity_is_u_shaped(day: Simulation, day_trades: pd.DataFrame) -> None:
    minutes = (day_trades.ts - day.config.start_ms) / 60_000
    baseline = pd.concat([outside(day_trades, day, s) for s in day.symbols])
    minutes = (baseline.ts - day.config.start_ms) / 60_000
    first = ((minutes >= 0) & (minutes < 30)).sum()
    midday = ((minutes >= 120) & (minutes < 150)).sum()
    last = ((minutes >= 240) & (minutes <= 270)).sum()
    assert first > 1.5 * midday
    assert last > 1.3 * midday


def test_trades_cluster_in_time(day: Simulation, day_trades: pd.DataFrame) -> None:
    per_second = day_trades.groupby(["symbol", day_trades.ts // 1000]).size()
    assert per_second.max() >= 8  # several per second in busy periods
    assert (per_second >= 4).sum() > 1000
    per_ms = day_trades.groupby(["symbol", "ts"]).size()
    assert 0.05 < (per_ms >= 2).mean() < 0.5  # an order filling several resting orders prints in one millisecond
    # Hawkes clustering: counts per second are over-dispersed against a Poisson of the same mean
    midday = day_trades[(day_trades.ts - day.config.start_ms).between(100 * 60_000, 160 * 60_000)]
    counts = midday.groupby(["symbol", midday.ts // 1000]).size().reindex(fill_value=0)
    assert counts.var() > 1.5 * counts.mean()


def test_trade_sizes_are_heavy_tailed_lots(day_trades: pd.DataFrame) -> None:
    lots = day_trades["size"].to_numpy() / 1000
    assert np.median(lots) <= 3
    assert lots.max() >= 100 * np.median(lots)
    assert 0.005 < (lots >= 20 * np.median(lots)).mean() < 0.1


def test_spread_is_a_few_ticks_and_mean_reverting(day: Simulation) -> None:
    snaps = day.quotes_frame()
    snaps = snaps[snaps.price.isna()]
    ticks = np.rint((snaps.ask - snaps.bid) / twse_tick(snaps.bid.to_numpy())).to_numpy()
    assert ticks.min() >= 1 and np.median(ticks) <= 2 and ticks.max() <= 12


def test_books_evolve_and_have_plausible_depth(day: Simulation) -> None:
    books = day.books_frame()
    columns = level_columns("bid")[1] + level_columns("ask")[1]
    median = np.median(books[columns].to_numpy() / 1000, axis=0)
    assert np.all(median >= 3) and np.all(median <= 200)
    # queues change every few seconds (adds, cancels, trades, price moves), not every snapshot and not never
    changed = np.mean(
        [(np.diff(group[columns].to_numpy(), axis=0) != 0).mean() for _, group in books.groupby("symbol")]
    )
    assert 0.05 < changed < 0.8


def test_aggressor_side_follows_price_moves(day: Simulation, day_trades: pd.DataFrame) -> None:
    # Order imbalance (signed trade count) against the mid-quote change over the same 5 minutes.
    window_ms = 5 * 60_000
    trades = day_trades[day_trades.side.notna()]
    trades = trades.assign(
        window=(trades.ts - day.config.start_ms) // window_ms, signed=np.where(trades.side == "B", 1, -1)
    )
    imbalance = trades.groupby(["symbol", "window"]).signed.sum()
    snaps = day.quotes_frame()
    snaps = snaps[snaps.price.isna()]
    snaps = snaps.assign(window=(snaps.ts - day.config.start_ms) // window_ms, mid=np.log((snaps.bid + snaps.ask) / 2))
    mid = snaps.groupby(["symbol", "window"]).mid.agg(["first", "last"])
    joined = mid.join(imbalance, how="inner")
    assert np.corrcoef(joined.signed, joined["last"] - joined["first"])[0, 1] > 0.3
    # the tick rule agrees with the reported side most of the time
    agree = []
    for _, group in trades.groupby("symbol"):
        move = np.sign(np.diff(group.price.to_numpy()))
        side = group.side.to_numpy()[1:]
        agree.append(((move > 0) == (side == "B"))[move != 0].mean())
    assert np.mean(agree) > 0.8


def test_session_fields(day: Simulation) -> None:
    quotes = day.quotes_frame()
    assert set(quotes.symbol) == set(day.symbols) == {f"SIM{i:04d}" for i in range(1, 9)}
    last = quotes.groupby("symbol").last()
    for symbol, row in last.iterrows():
        gap = abs(row.open / row.prev_close - 1)
        assert gap < 0.05, symbol
        assert 0.9 * row.prev_close - 1e-9 <= row.low <= row.high <= 1.1 * row.prev_close + 1e-9  # price limits
    records = list(generate(SimulationConfig(symbols=2, seed=1, minutes=5)).records())
    assert {r.venue for r in records} == {"sim"}


# --- episodes: labels -----------------------------------------------------------------------------------------------
def test_clean_symbols_have_no_episodes(day: Simulation) -> None:
    assert len(day.clean_symbols) == 2
    labelled = {e.symbol for e in day.episodes}
    assert not labelled & set(day.clean_symbols)
    none = generate(SimulationConfig(symbols=4, seed=1, minutes=60, clean_fraction=1.0, rates=ALL_FORCED))
    assert none.episodes == () and none.clean_symbols == none.symbols


@pytest.mark.parametrize("kind", INJECTED_KINDS, ids=str)
def test_each_kind_is_present_when_its_rate_forces_it(kind: AlertKind) -> None:
    sim = forced(kind)
    assert {e.kind for e in sim.episodes} == {kind}
    per_symbol = pd.Series([e.symbol for e in sim.episodes]).value_counts()
    # Marking the close is dropped when topping the day's high would take more than max_ret.
    assert len(per_symbol) >= (3 if kind is K.MARKING_THE_CLOSE else 4)


def test_forced_mix_has_every_kind(mixed: Simulation) -> None:
    # Marking the close is given up on days a pump left the high out of reach (> max_ret above the price).
    assert {e.kind for e in mixed.episodes} >= set(INJECTED_KINDS) - {K.MARKING_THE_CLOSE}


def test_episode_labels_are_emitted_at_their_end() -> None:
    last_ts = 0
    seen = 0
    for record in simulate(small_config(4)):
        if isinstance(record, Episode):
            assert record.end == last_ts or record.end >= last_ts
            seen += 1
        else:
            assert record.ts >= last_ts
            last_ts = record.ts
    assert seen >= 3


# --- episodes: signatures -------------------------------------------------------------------------------------------
def test_pump_and_dump_signature() -> None:
    sim = forced(K.PUMP_AND_DUMP)
    trades = sim.trades_frame()
    assert len(sim.episodes) >= 4
    for e in sim.episodes:
        window = in_window(trades, e.symbol, e.start, e.end)
        base = outside(trades, sim, e.symbol)
        base_rate = len(base) / (sim.config.minutes * 60)
        peak = window.index[window.price == window.price.max()][-1]  # the last touch of the high
        ramp, dump = window.loc[:peak], window.loc[peak:]
        ramp_s = (ramp.ts.iloc[-1] - e.start) / 1000
        assert window.price.max() / window.price.iloc[0] - 1 > 0.02, "ramp return"
        assert dump.price.iloc[-1] / window.price.max() - 1 < -0.015, "dump"
        assert len(ramp) / ramp_s > 3 * base_rate, "trade-count surge"
        assert (ramp.side == "B").mean() > 0.7
        assert ramp["size"].median() <= 2000, "many small buys"
        # rush orders: bursts of >= 4 buys in one millisecond, far more often than in the baseline
        rush = (ramp[ramp.side == "B"].groupby("ts").size() >= 4).sum()
        base_rush_per_s = (base[base.side == "B"].groupby("ts").size() >= 4).sum() / (sim.config.minutes * 60)
        assert rush >= 5 and rush > 5 * base_rush_per_s * ramp_s
        assert (dump.side == "S").mean() > 0.6


def layer_events(books: pd.DataFrame, side: str, typical: float) -> list[tuple[float, int, int]]:
    """(price, first snapshot, first snapshot without it) of every order at levels 2-5 that jumps from <= 2x to
    > 5x the typical level size and later falls back to <= 2x while its price is still in view (cancelled,
    not scrolled away)."""
    prices, sizes = level_columns(side)
    px, sz = books[prices].to_numpy(), books[sizes].to_numpy()
    views = [dict(zip(p, q, strict=True)) for p, q in zip(px.tolist(), sz.tolist(), strict=True)]
    events: list[tuple[float, int, int]] = []
    open_: dict[float, int] = {}
    for k in range(1, len(views)):
        for price, k0 in list(open_.items()):
            size = views[k].get(price)
            if size is None:
                del open_[price]
            elif size <= 2 * typical:
                events.append((price, k0, k))
                del open_[price]
        for j in range(1, 5):
            price, size = float(px[k, j]), float(sz[k, j])
            if size > 5 * typical and price not in open_ and views[k - 1].get(price, 0.0) <= 2 * typical:
                open_[price] = k
    return events


def test_spoofing_signature() -> None:
    sim = forced(K.SPOOFING)
    books, trades = sim.books_frame(), sim.trades_frame()
    seconds = sim.config.cadence_ms / 1000
    inside: list[tuple[bool, bool, bool]] = []  # (vanished within 10 s, never traded, price moved away)
    outside_fast = 0
    for symbol in sim.symbols:
        b = books[books.symbol == symbol].reset_index(drop=True)
        t = trades[trades.symbol == symbol]
        typical = float(np.median(b[level_columns("bid")[1][1:] + level_columns("ask")[1][1:]].to_numpy()))
        mid = ((b.bid1 + b.ask1) / 2).to_numpy()
        spoofs = [e for e in sim.episodes if e.symbol == symbol]
        for side, away in (("bid", 1), ("ask", -1)):
            for price, k0, k1 in layer_events(b, side, typical):
                t0, t1 = int(b.ts[k0]), int(b.ts[k1])
                fast = (k1 - k0) * seconds <= 10
                if not any(e.start <= t0 <= e.end for e in spoofs):
                    outside_fast += fast
                    continue
                untraded = not ((t.ts >= t0) & (t.ts <= t1) & (t.price == price)).any()
                inside.append((fast, untraded, away * (mid[k1 - 1] - mid[k0]) > 0))
    assert len(inside) >= 3 * len(sim.episodes), "several layers per episode"
    fast, untraded, moved_away = (np.mean(column) for column in zip(*inside, strict=True))
    assert fast > 0.9, "layers vanish within seconds"
    assert untraded > 0.9, "without trading"
    assert moved_away > 0.9, "while the price ticks away from them"
    assert outside_fast <= len(inside) // 10, "a signature the baseline book rarely shows"


def test_wash_trading_signature() -> None:
    sim = forced(K.WASH_TRADING)
    trades = sim.trades_frame()
    assert sim.episodes
    for e in sim.episodes:
        window = in_window(trades, e.symbol, e.start, e.end)
        base = outside(trades, sim, e.symbol)
        sizes = window["size"].value_counts()
        wash_size = sizes[sizes.index >= 10_000].idxmax()
        wash = window[window["size"] == wash_size]
        assert len(wash) >= 10, "identical sizes repeated"
        assert (wash.side.to_numpy()[1:] != wash.side.to_numpy()[:-1]).mean() > 0.9, "alternating sides"
        bursts = list(wash.groupby((wash.ts.diff() > 5000).cumsum()))
        assert bursts
        for _, burst in bursts:
            tick = float(twse_tick(burst.price.to_numpy()[:1])[0])
            assert (burst.price.max() - burst.price.min()) / tick <= 2.01, "nearly the same price"
            assert burst.price.iloc[-1] == burst[burst.side == burst.side.iloc[-1]].price.iloc[0], "no net change"
        volume_rate = window["size"].sum() / ((e.end - e.start) / 1000)
        base_rate = base["size"].sum() / (sim.config.minutes * 60)
        assert volume_rate > 1.5 * base_rate, "elevated volume"


def test_marking_the_close_signature() -> None:
    sim = forced(K.MARKING_THE_CLOSE)
    trades = sim.trades_frame()
    assert sim.episodes
    for e in sim.episodes:
        assert e.end == sim.config.end_ms
        day = trades[trades.symbol == e.symbol]
        window = in_window(trades, e.symbol, e.start, e.end)
        close = day.price.iloc[-1]
        assert close == day.price.max(), "the close is the session high"
        assert day.side.iloc[-1] == "B"
        start_price = window.price.iloc[0]
        tick = float(twse_tick(np.array([start_price]))[0])
        assert close / start_price - 1 > 0.005 and (close - start_price) / tick >= 3
        assert (window.side == "B").mean() > 0.6
        base_rate = len(outside(trades, sim, e.symbol)) / (sim.config.minutes * 60)
        assert len(window) / ((e.end - e.start) / 1000) > 2 * base_rate


def test_momentum_ignition_signature() -> None:
    sim = forced(K.MOMENTUM_IGNITION)
    trades, quotes = sim.trades_frame(), sim.quotes_frame()
    assert sim.episodes
    for e in sim.episodes:
        window = in_window(trades, e.symbol, e.start, e.end)
        burst = window[window.ts <= e.start + 10_000]
        # the ignition: one marketable order walking >= 2 price levels in a single millisecond
        walks = burst.groupby("ts").agg(levels=("price", "nunique"), sides=("side", "nunique"), side=("side", "first"))
        sweeps = walks[(walks.levels >= 2) & (walks.sides == 1)]
        assert len(sweeps) >= 1
        direction = 1 if sweeps.side.iloc[0] == "B" else -1
        assert (burst.side == sweeps.side.iloc[0]).mean() > 0.7, "a burst in one direction"
        # in ticks along the ladder: a move may cross a band boundary (100.0 → 99.9 is one tick)
        before = quotes[(quotes.symbol == e.symbol) & (quotes.ts <= e.start) & quotes.price.isna()].iloc[-1]
        start_mid = price_to_index([before.bid, before.ask]).mean()
        excursion = direction * (price_to_index(window.price.to_numpy()) - start_mid)
        assert excursion.max() >= 3, "a run in that direction"
        end = quotes[(quotes.symbol == e.symbol) & (quotes.ts <= e.end) & quotes.price.isna()].iloc[-1]
        final = direction * (price_to_index([end.bid, end.ask]).mean() - start_mid)
        assert final < 0.5 * excursion.max(), "then reversal"


# --- offline files --------------------------------------------------------------------------------------------------
def test_ticks_frame_is_the_replay_layout(tmp_path: Path) -> None:
    from tapewatch.producers.replay import Replay
    from tapewatch.producers.simulate import read_truth_csv, write_files

    sim = generate(small_config(12))
    ticks_path, truth_path = write_files(sim, tmp_path, "parquet")
    ticks = pd.read_parquet(ticks_path)
    assert tuple(ticks.columns) == ("symbol", "venue", *TICK_COLUMNS[1:]) and set(ticks.venue) == {sim.config.venue}
    trades = ticks[ticks.price.notna()]
    books = ticks[ticks.bid1.notna()]
    assert len(trades) + len(books) == len(ticks)
    assert len(trades) == len(sim.trades_frame()) and len(books) == len(sim.books_frame())
    assert np.all(np.diff(ticks.ts.to_numpy()) >= 0)
    replay = Replay([ticks_path], venue="file")
    assert replay.validated.good.all() and set(replay.validated.venue) == {sim.config.venue}
    assert tuple(pd.read_csv(truth_path).columns) == EPISODE_COLUMNS
    assert read_truth_csv(truth_path) == list(sim.episodes)
    csv_path, _ = write_files(sim, tmp_path / "csv", "csv")
    assert Replay([csv_path], venue="sim").validated.good.all()


def test_command_is_typer_compatible_and_writes_files(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from tapewatch.cli.produce import produce_simulate
    from tapewatch.errors import TapewatchError

    app = typer.Typer()
    app.command("simulate")(produce_simulate)
    runner = CliRunner()
    for option in (
        "--symbols",
        "--seed",
        "--minutes",
        "--speed",
        "--out-dir",
        "--truth",
        "--duration",
        "--no-progress",
    ):
        assert option in runner.invoke(app, ["--help"], terminal_width=200).output
    args = ["--symbols", "2", "--minutes", "5", "--seed", "4", "--out-dir", str(tmp_path), "--no-progress"]
    result = runner.invoke(app, [*args, "--format", "csv"])
    assert result.exit_code == 0, result.output
    ticks = pd.read_csv(tmp_path / "ticks.csv")
    assert tuple(ticks.columns) == ("symbol", "venue", *TICK_COLUMNS[1:]) and set(ticks.symbol) == {
        "SIM0001",
        "SIM0002",
    }
    assert tuple(pd.read_csv(tmp_path / "episodes.csv").columns) == EPISODE_COLUMNS
    for bad, message in (
        (["--speed", "-1"], "--speed"),
        (["--speed", "2"], "--out-dir"),
        (["--format", "xlsx"], "--format"),
        (["--minutes", "0"], "minutes"),
    ):
        result = runner.invoke(app, [*args, *bad])
        assert isinstance(result.exception, TapewatchError) and message in str(result.exception), bad


# --- defaults stay byte-identical -------------------------------------------------------------------------------------
#: sha256 over the encoded payloads (each followed by a newline), recorded before feed profiles, book churn,
#: regimes and variants existed: their defaults must not move a byte. Re-record only for a deliberate model change.
GOLDEN: dict[str, tuple[SimulationConfig, str]] = {
    "small": (small_config(5), "9586bcd148ab6e7c289d0f6af264962025025737bfa84df14a2817939bc7f7af"),
    "fast cadence": (small_config(8, 200), "66f60ef5b4eedf17107a92a267b58d58aa6816ec1fc6f671c7fa8f2b65c568a9"),
    "defaults": (
        SimulationConfig(seed=300, minutes=30),
        "d3897d6405b55e8649fcbec5d91e0e688de626f381cea4808368307a35371d14",
    ),
}


def digest(sim: Simulation) -> str:
    h = hashlib.sha256()
    for payload in payloads(sim):
        h.update(payload + b"\n")
    return h.hexdigest()


@pytest.mark.parametrize("name", GOLDEN)
def test_default_output_is_byte_identical_to_before_feed_profiles(name: str) -> None:
    config, expected = GOLDEN[name]
    assert digest(generate(config)) == expected
    explicit = replace(config, feed="trades", book_churn=0.0, regimes="twse", variants=False)
    assert digest(generate(explicit)) == expected


def test_new_config_fields_are_validated() -> None:
    for bad, message in (
        ({"feed": "mis"}, "feed"),
        ({"book_churn": 1.5}, "book_churn"),
        ({"book_churn": -0.1}, "book_churn"),
        ({"regimes": "narrow"}, "regimes"),
    ):
        with pytest.raises(ValueError, match=message):
            SimulationConfig(**bad)


# --- book churn -----------------------------------------------------------------------------------------------------
def churn_config(churn: float, feed: str = "trades") -> SimulationConfig:
    return SimulationConfig(symbols=4, seed=31, minutes=30, clean_fraction=0.0, book_churn=churn, feed=feed)


def deep_sizes(books: pd.DataFrame) -> list[np.ndarray]:
    """Per symbol, the level 2-5 sizes of both sides, one row per book."""
    columns = level_columns("bid")[1][1:] + level_columns("ask")[1][1:]
    return [group[columns].to_numpy() for _, group in books.groupby("symbol")]


def test_full_churn_redraws_levels_2_to_5_every_snapshot() -> None:
    for feed in ("trades", "twse-mis"):
        books = generate(churn_config(1.0, feed)).books_frame()
        symbols = deep_sizes(books)
        assert symbols, feed
        for sizes in symbols:
            changed = np.diff(sizes, axis=0) != 0
            assert changed.any(axis=1).all(), "every snapshot moves"
            assert changed.mean() > 0.85, "nearly every level of every snapshot"


def test_churn_grows_with_the_knob_and_leaves_trades_and_labels_alone() -> None:
    sims = {churn: generate(churn_config(churn)) for churn in (0.0, 0.3, 1.0)}
    moved = {
        churn: np.mean([(np.diff(s, axis=0) != 0).mean() for s in deep_sizes(sim.books_frame())])
        for churn, sim in sims.items()
    }
    assert moved[0.0] + 0.15 < moved[0.3] < moved[1.0] and moved[1.0] > 0.85
    for sim in sims.values():
        check_invariants(sim)
        pd.testing.assert_frame_equal(sim.trades_frame(), sims[0.0].trades_frame())
        assert sim.episodes == sims[0.0].episodes


# --- regimes --------------------------------------------------------------------------------------------------------
def test_wide_regimes_spread_prices_rates_lots_and_depths() -> None:
    sim = generate(SimulationConfig(symbols=30, seed=4, minutes=10, clean_fraction=1.0, regimes="wide"))
    check_invariants(sim)
    trades, books = sim.trades_frame(), sim.books_frame()
    prices = np.array(sim.prev_close)
    assert prices.min() < 15 and prices.max() > 500 and prices.min() >= 5 and prices.max() <= 2000
    rate = trades.groupby("symbol").size() / (sim.config.minutes * 60)
    assert rate.min() < 0.5 and rate.max() > 10
    smallest_lot = trades.groupby("symbol")["size"].min() / 1000
    assert smallest_lot.min() <= 1 and smallest_lot.max() >= 10, "small and large lots"
    depth = books.groupby("symbol")[level_columns("bid")[1][1:]].median().mean(axis=1) / 1000
    assert depth.max() > 20 * depth.min(), "thin and deep books"
    narrow = generate(SimulationConfig(symbols=30, seed=4, minutes=10, clean_fraction=1.0)).trades_frame()
    narrow_rate = narrow.groupby("symbol").size() / (sim.config.minutes * 60)
    assert rate.max() / rate.min() > 3 * narrow_rate.max() / narrow_rate.min()


# --- episode variants -----------------------------------------------------------------------------------------------
def variant_config(seed: int, rates: dict[AlertKind, float] | None = None, minutes: float = 120) -> SimulationConfig:
    return SimulationConfig(
        symbols=6,
        seed=seed,
        minutes=minutes,
        clean_fraction=0.0,
        variants=True,
        rates=dict.fromkeys(INJECTED_KINDS, 1.0) if rates is None else rates,
    )


def labelled(sims: list[Simulation], kind: AlertKind) -> list[tuple[Simulation, Episode, str]]:
    return [
        (sim, e, v) for sim in sims for e, v in zip(sim.episodes, sim.episode_variants, strict=True) if e.kind is kind
    ]


def test_every_variant_appears_over_a_few_seeds() -> None:
    seen: set[tuple[AlertKind, str]] = set()
    for seed in range(3):
        sim = generate(variant_config(seed))
        check_invariants(sim)
        seen |= {(e.kind, v) for e, v in zip(sim.episodes, sim.episode_variants, strict=True)}
    assert seen == {(kind, name) for kind, names in VARIANTS.items() for name in names}


def test_without_variants_every_episode_is_its_kinds_first() -> None:
    sim = forced(K.WASH_TRADING)
    assert sim.episode_variants == tuple(VARIANTS[e.kind][0] for e in sim.episodes)
    assert "variant" not in sim.episodes_frame().columns
    with_variants = generate(variant_config(0)).episodes_frame()
    assert tuple(with_variants.columns) == (*EPISODE_COLUMNS, "variant")


def rushes_per_minute(trades: pd.DataFrame, e: Episode, ramp_end: int) -> float:
    ramp = in_window(trades, e.symbol, e.start, ramp_end)
    rushes = (ramp[ramp.side == "B"].groupby("ts").size() >= 4).sum()
    return float(rushes) / ((ramp_end - e.start) / 60_000)


def test_pump_variants() -> None:
    sims = [generate(variant_config(seed, {K.PUMP_AND_DUMP: 2.0}, minutes=150)) for seed in range(3)]
    rush: dict[str, list[float]] = {name: [] for name in VARIANTS[K.PUMP_AND_DUMP]}
    slow_gain: list[float] = []
    for sim, e, variant in labelled(sims, K.PUMP_AND_DUMP):
        trades = sim.trades_frame()
        window = in_window(trades, e.symbol, e.start, e.end)
        peak = int(window.ts[window.price == window.price.max()].iloc[-1])
        rush[variant].append(rushes_per_minute(trades, e, peak))
        duration_min = (e.end - e.start) / 60_000
        if variant == "slow-ramp":
            assert 15 <= duration_min <= 34
            slow_gain.append(window.price.max() / window.price.iloc[0] - 1)
        else:
            assert duration_min <= 19
    assert all(len(values) >= 2 for values in rush.values()), rush
    assert min(rush["rush"]) > 3 * max(rush["no-rush"]), "bursts only in the rush variant"
    assert np.mean(rush["rush"]) > 3 * np.mean(rush["slow-ramp"])
    assert min(slow_gain) > 0.03 and np.median(slow_gain) > 0.06, "a slow ramp of several percent"


def layer_sightings(books: pd.DataFrame, typical: float) -> list[tuple[int, int, int]]:
    """(level at first sight, first snapshot, first snapshot without it) of every size jumping from <= 2x to
    > 5x the typical level size at any of the five levels, tracked by price."""
    found: list[tuple[int, int, int]] = []
    for side in ("bid", "ask"):
        prices, sizes = level_columns(side)
        px, sz = books[prices].to_numpy(), books[sizes].to_numpy()
        views = [dict(zip(p, q, strict=True)) for p, q in zip(px.tolist(), sz.tolist(), strict=True)]
        open_: dict[float, tuple[int, int]] = {}
        for k in range(1, len(views)):
            for price, (level, k0) in list(open_.items()):
                if views[k].get(price, 0.0) <= 2 * typical:
                    found.append((level, k0, k))
                    del open_[price]
            for j in range(5):
                price, size = float(px[k, j]), float(sz[k, j])
                if size > 5 * typical and price not in open_ and views[k - 1].get(price, 0.0) <= 2 * typical:
                    open_[price] = (j + 1, k)
    return found


def test_spoofing_variants_persist_short_or_long_on_levels_1_to_3() -> None:
    sims = [generate(variant_config(seed, {K.SPOOFING: 2.0}, minutes=90)) for seed in range(2)]
    held: dict[str, list[float]] = {"short": [], "long": []}
    levels: list[int] = []
    for sim in sims:
        books = sim.books_frame()
        for symbol in sim.symbols:
            b = books[books.symbol == symbol].reset_index(drop=True)
            typical = float(np.median(b[level_columns("bid")[1][1:] + level_columns("ask")[1][1:]].to_numpy()))
            mine = [(e, v) for _, e, v in labelled([sim], K.SPOOFING) if e.symbol == symbol]
            for level, k0, k1 in layer_sightings(b, typical):
                variant = [v for e, v in mine if e.start <= int(b.ts[k0]) <= e.end]
                if variant:
                    held[variant[0]].append((k1 - k0) * sim.config.cadence_ms / 1000)
                    levels.append(level)
    assert len(held["short"]) >= 20 and len(held["long"]) >= 20
    assert np.median(held["short"]) <= 7 and np.median(held["long"]) >= 20
    counts = pd.Series(levels).value_counts(normalize=True)
    assert {1, 2, 3} <= set(counts.index) and counts.reindex([1, 2, 3]).sum() > 0.95


def test_wash_variants_alternate_or_not_at_a_pinned_quote() -> None:
    sims = [generate(variant_config(seed, {K.WASH_TRADING: 2.0}, minutes=90)) for seed in range(2)]
    alternation: dict[str, list[float]] = {"alternating": [], "random-sides": []}
    for sim, e, variant in labelled(sims, K.WASH_TRADING):
        window = in_window(sim.trades_frame(), e.symbol, e.start, e.end)
        sizes = window["size"].value_counts()
        wash = window[window["size"] == sizes[sizes.index >= 10_000].idxmax()]
        assert len(wash) >= 10, "equal sizes"
        sides = wash.side.to_numpy()
        alternation[variant].append(float((sides[1:] != sides[:-1]).mean()))
        for _, burst in wash.groupby((wash.ts.diff() > 5000).cumsum()):
            assert burst[burst.side == "B"].price.nunique() <= 1 and burst[burst.side == "S"].price.nunique() <= 1
    assert min(alternation["alternating"]) > 0.9
    assert len(alternation["random-sides"]) >= 3 and np.mean(alternation["random-sides"]) < 0.7


def test_marking_variants_with_and_without_a_volume_surge() -> None:
    # Only marking the close is injected, and it is built after the baseline flow: the clean twin of a seed
    # has the very same ordinary prints, so the window's prints over the twin's measure the extra volume.
    surge: dict[str, list[float]] = {"surge": [], "no-surge": []}
    for seed in range(3):
        config = variant_config(seed, {K.MARKING_THE_CLOSE: 1.0}, minutes=90)
        sim, twin = generate(config), generate(replace(config, clean_fraction=1.0)).trades_frame()
        trades = sim.trades_frame()
        for _, e, variant in labelled([sim], K.MARKING_THE_CLOSE):
            day = trades[trades.symbol == e.symbol]
            assert day.price.iloc[-1] == day.price.max() and day.side.iloc[-1] == "B", "the close is the high"
            window = in_window(trades, e.symbol, e.start, e.end)
            surge[variant].append(len(window) / len(in_window(twin, e.symbol, e.start, e.end)))
    assert len(surge["surge"]) >= 3 and len(surge["no-surge"]) >= 3, surge
    assert min(surge["surge"]) > 1.5 and max(surge["no-surge"]) < 1.3


def test_the_default_truth_file_is_one_per_configuration(tmp_path: Path) -> None:
    """A run with other settings never overwrites another run's ground truth; the same settings find their own."""
    from tapewatch.producers.simulate import default_truth_path

    base = small_config(4)
    paths = {
        default_truth_path(tmp_path, config)
        for config in (base, replace(base, symbols=2), replace(base, minutes=12.0), replace(base, feed="twse-mis"))
    }
    assert len(paths) == 4 and all(f"seed{base.seed}-" in path.name for path in paths)
    assert default_truth_path(tmp_path, small_config(4)) == default_truth_path(tmp_path, base)
