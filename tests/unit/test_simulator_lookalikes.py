"""The simulator's legitimate look-alikes: labelled apart from the episodes, kept clear of them, leaving the
episodes' draws alone, and showing in the tape and the book what they are (a repricing that holds, one-sided
flow, a large order executed by trades, quotes pulled for seconds)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapewatch.generators import lob_market
from tapewatch.generators.simulator import (
    INJECTED_KINDS,
    LOOKALIKE_COLUMNS,
    LOOKALIKES,
    LookalikeParams,
    Simulation,
    SimulationConfig,
    generate,
)
from tapewatch.records import AlertKind
from tests.unit.test_simulator import check_invariants

#: every look-alike several times per symbol, so that a short session shows each kind often
MANY = LookalikeParams(news_rate=3.0, meta_rate=1.5, large_rate=3.0, pull_share=1.0, pull_rate=3.0)
DEPTH_COLUMNS = [f"{side}sz{i}" for side in ("bid", "ask") for i in range(1, 6)]


_cache: dict[tuple[int, bool], Simulation] = {}


def many(seed: int, lookalikes: bool = True) -> Simulation:
    """Look-alikes only (no episodes), so that the rest of the tape is the symbols' baseline."""
    if (seed, lookalikes) not in _cache:
        config = SimulationConfig(
            symbols=6, seed=seed, minutes=150, clean_fraction=1.0, lookalikes=lookalikes, lookalike_params=MANY
        )
        _cache[seed, lookalikes] = generate(config)
    return _cache[seed, lookalikes]


def extras(seed: int) -> pd.DataFrame:
    """The prints the look-alikes added: the session's trades less its twin's without look-alikes (the baseline
    flow draws from the symbols' own streams, so the twin's prints are all there, at the same times and sizes)."""
    with_, without = many(seed).trades_frame(), many(seed, lookalikes=False).trades_frame()

    def key(frame: pd.DataFrame) -> Counter[tuple[str, int, str, float]]:
        return Counter(zip(frame.symbol, frame.ts, frame.side, frame["size"], strict=True))

    added, baseline = key(with_), key(without)
    assert not baseline - added, "look-alikes add prints, they never take the baseline's away"
    rows = [k for k, n in (added - baseline).items() for _ in range(n)]
    return pd.DataFrame(rows, columns=["symbol", "ts", "side", "size"])


class Look(NamedTuple):
    symbol: str
    kind: str
    start: int
    end: int


def looks_of(sim: Simulation, kind: str | None = None, symbol: str | None = None) -> list[Look]:
    rows = (Look(*row) for row in sim.lookalikes)
    return [r for r in rows if kind in (None, r.kind) and symbol in (None, r.symbol)]


def snapshots(sim: Simulation, symbol: str) -> pd.DataFrame:
    quotes = sim.quotes_frame()
    return quotes[(quotes.symbol == symbol) & quotes.price.isna()].set_index("ts")


# --- labels, placement, determinism ---------------------------------------------------------------------------------
def test_without_lookalikes_there_are_none_and_the_frame_keeps_its_columns() -> None:
    sim = generate(SimulationConfig(symbols=3, seed=2, minutes=30))
    frame = sim.lookalikes_frame()
    assert sim.lookalikes == () and frame.empty and tuple(frame.columns) == LOOKALIKE_COLUMNS
    assert vars(lob_market)["LOOKALIKES"] is LOOKALIKES, "one definition of the kinds"


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="lookalikes"):
        SimulationConfig(lookalikes=1)  # type: ignore[arg-type]
    for bad in ({"news_rate": -1.0}, {"pull_share": 1.5}, {"pull_depth": (0.0, 0.3)}, {"news_window_s": 10.0}):
        with pytest.raises(ValueError, match="lookalike_params"):
            LookalikeParams(**bad)


def test_every_kind_appears_on_clean_and_manipulated_symbols_alike() -> None:
    frames = [generate(SimulationConfig(symbols=10, seed=seed, lookalikes=True)) for seed in range(3)]
    found = pd.concat([sim.lookalikes_frame() for sim in frames])
    assert set(found.kind) == set(LOOKALIKES)
    assert tuple(found.columns) == LOOKALIKE_COLUMNS and found.start.dtype == found.end.dtype == np.int64
    assert all(sim.clean_symbols and set(sim.clean_symbols) & set(sim.lookalikes_frame().symbol) for sim in frames)
    # about the configured rates: 0.4 + 0.3 + 0.4 + 0.75 per symbol-session, less what does not fit
    assert 1.0 < len(found) / 30 < 2.2


def test_lookalikes_keep_clear_of_episodes_and_of_each_other() -> None:
    for seed in range(3):
        sim = generate(SimulationConfig(symbols=10, seed=seed, lookalikes=True, rates=dict.fromkeys(INJECTED_KINDS, 1)))
        cfg = sim.config
        looks = sim.lookalikes_frame()
        assert (looks.start >= cfg.start_ms + cfg.quiet_open_s * 1000).all() and (looks.end <= cfg.end_ms).all()
        assert (looks.start < looks.end).all()
        for symbol in sim.symbols:
            windows = sorted(
                [(e.start, e.end) for e in sim.episodes if e.symbol == symbol]
                + [(r.start, r.end) for r in looks_of(sim, symbol=symbol)]
            )
            gaps = [b[0] - a[1] for a, b in pairwise(windows)]
            assert all(gap >= cfg.episode_gap_s * 1000 for gap in gaps), (seed, symbol, windows)


def test_the_episodes_are_the_same_with_and_without_lookalikes() -> None:
    """Same windows, same variants. The one difference allowed: marking the close, which is not attempted when
    topping the session's high would take more than ``max_ret``, can be given up (or become possible) because a
    repricing moved the price before it."""
    differ = 0
    for seed in (0, 1, 2):
        config = SimulationConfig(symbols=20, seed=seed, variants=True)
        without, with_ = generate(config), generate(replace(config, lookalikes=True))
        a = set(zip(without.episodes, without.episode_variants, strict=True))
        b = set(zip(with_.episodes, with_.episode_variants, strict=True))
        for episode, _ in a ^ b:
            assert episode.kind is AlertKind.MARKING_THE_CLOSE, episode
            before = [r for r in looks_of(with_, symbol=episode.symbol) if r.end <= episode.start]
            snaps = snapshots(with_, episode.symbol)
            mid = (snaps.bid + snaps.ask) / 2
            moved = [mid.loc[: r.end].iloc[-1] / mid.loc[: r.start].iloc[-1] - 1 for r in before]
            assert max(map(abs, moved), default=0.0) > 0.01, "a repricing moved the price before the close"
            differ += 1
        assert len(a ^ b) <= 1, seed
    assert differ <= 2


def test_snapshot_feeds_carry_the_same_labels() -> None:
    config = SimulationConfig(symbols=4, seed=7, minutes=120, lookalikes=True, lookalike_params=MANY)
    trades = generate(config)
    for feed in ("twse-mis", "snapshot-1s"):
        shaped = generate(replace(config, feed=feed))
        pd.testing.assert_frame_equal(shaped.lookalikes_frame(), trades.lookalikes_frame())
        assert shaped.episodes == trades.episodes


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), cadence=st.sampled_from([200, 500, 1000]))
def test_invariants_hold_with_lookalikes(seed: int, cadence: int) -> None:
    config = SimulationConfig(
        symbols=3,
        seed=seed,
        minutes=40,
        cadence_ms=cadence,
        clean_fraction=0.0,
        rates=dict.fromkeys(INJECTED_KINDS, 1.0),
        lookalikes=True,
        # as many as fit a short session beside an episode of every kind
        lookalike_params=LookalikeParams(news_rate=15, meta_rate=5, large_rate=15, pull_share=1, pull_rate=20),
        quiet_open_s=60,
        episode_gap_s=20,
    )
    sim = generate(config)
    check_invariants(sim)
    assert len(sim.lookalikes) >= 3


# --- signatures -----------------------------------------------------------------------------------------------------
def test_news_jumps_and_holds_on_one_sided_surge() -> None:
    moves: list[tuple[float, float]] = []
    with_jump: list[bool] = []  # per extra order of the first 20 s (the jump, 3-20 s, then the aftermath)
    for seed in (0, 1):
        sim, added = many(seed), extras(seed)
        for r in looks_of(sim, "news"):
            mid = np.log((snapshots(sim, r.symbol).bid + snapshots(sim, r.symbol).ask) / 2)
            before, jumped, after = (mid.loc[:t].iloc[-1] for t in (r.start, r.start + 20_000, r.end))
            jump = jumped - before
            moves.append((jump, (after - before) / jump))
            surge = added[(added.symbol == r.symbol) & (added.ts > r.start) & (added.ts <= r.start + 20_000)]
            with_jump.extend(surge.side == ("B" if jump > 0 else "S"))
    assert np.mean(with_jump) > 0.7, "the surge takes the jump's side"
    jumps, kept = (np.array(column) for column in zip(*moves, strict=True))
    assert len(jumps) >= 10 and (jumps > 0).any() and (jumps < 0).any()
    assert np.all((np.abs(jumps) > 0.012) & (np.abs(jumps) < 0.06)), "±1.5-5 %, give or take a tick"
    assert kept.min() > 0.5 and np.median(kept) > 0.85, "the price holds: no reversal to the pre-jump level"


def test_meta_orders_are_one_sided_flow_beyond_the_baseline() -> None:
    seen = 0
    for seed in (0, 1):
        sim, added = many(seed), extras(seed)
        trades = sim.trades_frame()
        for r in looks_of(sim, "meta_order"):
            mine = added[(added.symbol == r.symbol) & (added.ts > r.start) & (added.ts <= r.end)]
            assert len(mine) > 100 and mine.side.nunique() == 1, "child orders, all on one side"
            side = mine.side.iloc[0]
            window = trades[(trades.symbol == r.symbol) & (trades.ts > r.start) & (trades.ts <= r.end)]
            assert (window.side == side).mean() > 0.55, "the window's flow leans the parent order's way"
            assert mine["size"].median() <= 3000, "ordinary sizes"
            seen += 1
    assert seen >= 5


def test_a_large_order_rests_in_the_book_and_is_executed_by_trades() -> None:
    seen = 0
    for seed in (0, 1):
        sim, added = many(seed), extras(seed)
        books = sim.books_frame()
        for r in looks_of(sim, "large_order"):
            takers = added[(added.symbol == r.symbol) & (added.ts > r.start) & (added.ts <= r.end)]
            book = books[(books.symbol == r.symbol) & books.ts.between(r.start, r.end)].set_index("ts")
            side = "bid" if takers.side.iloc[0] == "S" else "ask"  # sellers execute a bid, buyers an ask
            price = book[f"{side}1"].iloc[0]
            trades = sim.trades_frame()
            prints = trades[(trades.symbol == r.symbol) & trades.ts.between(r.start, r.end)]
            assert takers.side.nunique() == 1 and takers.ts.nunique() >= 2, "several market orders of one side"
            assert (prints[prints.ts.isin(takers.ts)].price == price).all(), "printing at the order's price"
            lots = takers["size"].sum()
            other = prints[(prints.price == price) & (prints.side == takers.side.iloc[0])]
            assert other["size"].sum() >= lots, "prints at its price by the other side add up to its size"
            assert (book[f"{side}1"] == price).all(), "the quote stays at the order"
            # what the book shows at its price never falls below what is left of it: it goes as it trades
            done = np.array([takers[takers.ts <= ts]["size"].sum() for ts in book.index])
            left = lots - done
            shown = book[f"{side}sz1"].to_numpy()
            assert np.all(shown[:-1] > left[:-1]), "the remaining lots stay visible"
            assert left[-1] == 0 and shown[-1] < lots, "gone once executed"
            resting = shown[done == 0]
            assert len(resting) >= 20 and resting.min() > lots, "it rests first"
            seen += 1
    assert seen >= 5


def test_a_quote_pull_thins_the_book_for_seconds_then_it_is_back() -> None:
    ratios: list[float] = []
    for seed in (0, 1):
        sim = many(seed)
        books = sim.books_frame()
        for r in looks_of(sim, "quote_pull"):
            book = books[books.symbol == r.symbol].set_index("ts")
            depth = book[DEPTH_COLUMNS].sum(axis=1)
            before = depth.loc[r.start - 60_000 : r.start - 1].mean()
            during = depth.loc[r.start : r.end - 1]
            assert 2 <= len(during) <= 10
            ratios.append(float(during.max() / before))
            spread_before = (book.ask1 - book.bid1).loc[: r.start - 1].iloc[-1]
            spread_during = (book.ask1 - book.bid1).loc[r.start : r.end - 1]
            assert (spread_during > spread_before).all(), "the spread widens"
            assert depth.loc[r.end : r.end + 30_000].mean() > 0.5 * before, "the depth is back"
    # A level shows at least one lot, and the old touch's queue goes with the widening: the whole book's depth is
    # measured against the minute before, so a thin book's ratio sits a little above the pulled fraction.
    assert len(ratios) >= 10 and np.median(ratios) <= 0.3 and max(ratios) <= 0.5


# --- files and commands ---------------------------------------------------------------------------------------------
def test_file_mode_writes_the_lookalikes_beside_the_episodes(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from tapewatch.cli.produce import produce_simulate

    app = typer.Typer()
    app.command("simulate")(produce_simulate)
    runner = CliRunner()
    assert "--lookalikes" in runner.invoke(app, ["--help"], terminal_width=200).output
    args = ["--symbols", "3", "--minutes", "120", "--seed", "4", "--no-progress", "--format", "csv"]
    result = runner.invoke(app, [*args, "--out-dir", str(tmp_path / "on"), "--lookalikes"])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(tmp_path / "on" / "lookalikes.csv")
    config = SimulationConfig(symbols=3, minutes=120, seed=4, lookalikes=True)
    pd.testing.assert_frame_equal(written, generate(config).lookalikes_frame())
    assert (tmp_path / "on" / "episodes.csv").exists()
    result = runner.invoke(app, [*args, "--out-dir", str(tmp_path / "off")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "off" / "episodes.csv").exists() and not (tmp_path / "off" / "lookalikes.csv").exists()


def test_eval_simulate_writes_them_and_eval_matrix_can_leave_them_out(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tapewatch.cli.app import cli

    runner = CliRunner()
    args = ["eval", "simulate", "--out", str(tmp_path), "--symbols", "3", "--minutes", "120", "--seed", "4"]
    result = runner.invoke(cli(), [*args, "--lookalikes"])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(tmp_path / "lookalikes.csv")
    assert len(written) > 0 and set(written.kind) <= set(LOOKALIKES)
    assert "--no-lookalikes" in runner.invoke(cli(), ["eval", "matrix", "--help"], terminal_width=200).output
