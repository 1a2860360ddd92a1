"""Labelled market simulator: a seeded, deterministic TWSE-like trading session with injected manipulation.

Pure computation (numpy, pandas for frames): no Kafka, no database, no asyncio. The same
:class:`SimulationConfig` (seed included) always yields byte-identical records.

Output, in event-time order across symbols (:func:`simulate`):

* ``Quote`` trades (``price``, ``size``, aggressor ``side``, the ``bid``/``ask`` the trade executed against)
  and no-trade snapshots (``price`` null) every ``cadence_ms`` per symbol; both carry the cumulative
  ``volume`` and the session ``open``/``high``/``low``/``prev_close``. Sizes and volumes are **shares**
  (lots × 1,000), like the TWSE producer.
* ``Book`` snapshots (5 levels a side, quantities in shares) at the same cadence as the snapshot quotes.
* ``Episode`` labels, each emitted at its ``end`` (a label is complete only then, and a live consumer of
  the truth topic must never learn of an episode before it has happened).

Ties at one millisecond: trades (in execution order), then the snapshot quote, then the book, then labels;
across symbols, symbol order. ``seq`` counts every quote of a symbol from 0.

Feed profiles (``SimulationConfig.feed``, :mod:`tapewatch.generators.feed_shapes`). Every session is built as the trade
feed above; a snapshot profile is a transformation of it, so the labelled episodes are the same whatever the
profile:

* ``trades`` (default) — as above.
* ``twse-mis`` — what the TWSE MIS service sends: per symbol one quote and one ``Book`` every 5 s (from the open,
  and at the close). The quote carries the last price of the interval's prints (null when nothing traded),
  ``size`` = shares traded since the previous snapshot, the cumulative ``volume``, the session's open/high/low,
  **no aggressor side**, and as ``bid``/``ask`` the best bid/ask of the *previous* snapshot's book (the quote
  in force before the interval's prints, for the quote rule; the first snapshot carries its own). The book is
  the last one at or before the snapshot time. Prints are not individually time-stamped.
* ``snapshot-1s`` — the same at 1 s.

Sizes are conserved: a symbol's snapshot sizes add up to its trade sizes, and the last cumulative volume equals
the trade feed's.

Model (per symbol; every symbol draws its own parameters from its own random stream, so adding symbols never
changes the existing ones):

* **Prices** live on the TWSE tick ladder (< 10 → 0.01, < 50 → 0.05, < 100 → 0.1, < 500 → 0.5, < 1000 → 1,
  else 5). Internally every price is an integer *tick index* on that ladder, so "n ticks up" is exact across
  band boundaries and every emitted price is on the grid by construction.
* **Latent price**: log-price random walk with stochastic volatility (log-vol AR(1), half-life ~20 min),
  volatility scaled by the intraday activity curve; daily volatility 1.2–3 %.
* **Quotes**: the best bid moves only when the latent price leaves the current spread (a backlash
  quantiser), so big-tick stocks sit on one quote for minutes, as they do. The spread in ticks is a
  mean-reverting AR(1) around a symbol's target (4–15 bps, never below one tick), wider right after the
  open. Quotes are clamped so that all five levels stay inside the ±10 % daily price limits.
* **Activity**: U-shaped over the session (about 2× midday in the first half hour, 1.7× in the last),
  raised further when volatility is high.
* **Orders**: a Hawkes process (exponential kernel, branching ratio 0.5, simulated by its cluster
  representation so it vectorises) of aggressive orders, 0.1–4 per second on average per symbol.
  An order fills against one or more resting orders: 1 + geometric fills (p = 0.72) in the *same
  millisecond*, as exchange feeds report one print per counter-order.
* **Aggressor side** follows the latent innovation of the second (P(buy) = 0.5 + 0.4 tanh(0.9 z)), and a buy
  prints at the ask, a sell at the bid; a quote change inside an interval is seen progressively by the
  trades in it. So up-moves come with buy pressure and prints walk with the quote.
* **Sizes**: lots, Pareto (α 1.5–1.9, minimum 1–3 lots, capped at 3,000 lots). The session opens with one
  auction print (no aggressor side) of about 2 % of a typical day's volume.
* **Book**: per level queues that shift with the quote (a level that becomes level 1 keeps its size; an
  improving price starts a small queue, a revealed deep level a typical one), lose trade volume at level 1,
  and receive sparse Pareto-sized additions (at most 3× the equilibrium) and proportional cancellations.
  Equilibrium depth is 10–30× the symbol's minimum trade size, queues relax towards it in about a minute,
  and level 1 is refilled about as fast as the order flow eats it (most limit orders join the touch).
* **Book churn** (``book_churn``, default 0 = the persistent queues above): each book step, each level 2–5
  queue is replaced with that probability by a fresh draw around the equilibrium (log-normal, σ 0.5), as
  TWSE's best five move from one snapshot to the next; at 1 every level 2–5 is re-drawn every book. Spoofing
  layers are added on top, so a detector cannot rely on a quiet book to see them.
* **Regimes** (``regimes``): ``twse`` (default) draws the parameters above; ``wide`` spreads them out —
  previous close log-uniform 5–2,000, 0.1–50 prints/s (aggressive orders 0.07–36/s), minimum trade size
  log-uniform 1–50 lots (Pareto α 1.4–2.2), equilibrium depth 2–100× the minimum trade (thin to deep books),
  target spread 3–30 bps.

Episodes (rates are expected episodes per manipulated symbol and session, ``floor(rate)`` always plus one more
with probability ``rate - floor(rate)``; a ``clean_fraction`` of the symbols get none; episodes on one symbol
never overlap and keep ``episode_gap_s`` apart; none in the first ``quiet_open_s``; one that does not fit is
dropped, never truncated). Signatures, as described in the surveillance literature:

* ``pump_and_dump`` — a convex ramp of 5–15 min lifting the price +3–8 %, carried by a surge of trades
  (4–10× the symbol's order rate, growing through the ramp), 85 % buy-aggressor and small (1–3 lots), with
  "rush orders": bursts of 4–15 small buys in the same millisecond every 4–12 s (La Morgia et al. 2020);
  ask depth thins (×0.6), bid depth thickens (×1.3). Then a dump of 1–3 min: sell-aggressor trades (85 %)
  of about three times the usual size at 3–6× the order rate take the price back to −30 %…+20 % of the
  pump; bid depth halves. Label: ramp start → end of the dump.
* ``spoofing`` (layering) — 3–6 cycles: 2–4 orders of 6–15× the equilibrium level depth appear at once at
  levels 2–4 of one side; the price ticks one tick *away* from them (bid layers → up) with 2–6
  aggressive trades against the other side (the spoofer's genuine resting orders being filled: bid layers,
  buy-aggressor prints at the ask); after 2–6 s the layers vanish together without any trade at their
  prices. 5–20 s between cycles; the layered side alternates with probability 0.6. Label: first layer →
  end of the last cycle.
* ``wash_trading`` — 2–5 bursts of 10–30 trades of one identical round size (≥ 10 lots, chosen so a burst
  trades 3–6× the symbol's mean volume rate), strictly alternating buy/sell aggressor every 0.3–1.5 s at a
  frozen quote (buys at the ask, sells at the bid: no net price change), consuming no depth (the trader
  crosses with himself); 5–20 s between bursts. Label: first → last burst.
* ``marking_the_close`` — the last 3–8 min: buy-aggressor trades (85 %, 3–6× the order rate, intensifying
  towards the close) walk the ask up monotonically by +1–3 % (at least 3 ticks, and always above the
  session's previous high); the session's last trade is a buy at that ask, so the close is the session
  high. A push that would need more than ``max_ret`` (4 %) to top the high (say, after a pump) is not
  attempted: the episode is dropped. Label: push start → session end.
* ``momentum_ignition`` — a burst of 5–15 s opened by a marketable order sweeping 2–3 price levels in one
  millisecond (1–3 prints per level, at successive prices), followed by more sweeps and one-sided
  aggressive orders (8× the order rate) carrying about half of a 0.6–1.5 % move (at least 4 ticks); a run of
  20–60 s where followers (3× the order rate, 80 % same side) take it to the full move; then a reversal of
  30–120 s back to the pre-ignition quote with 75 % opposite-side flow at 2× the order rate (the igniter
  unwinding), after which the undisturbed price resumes from there. Label: first sweep → end of reversal.

Episode variants (``variants=True``; default False keeps every episode its kind's first variant, as above).
Each episode draws one of its kind's variants (:data:`VARIANTS`, uniformly) at planning, so the episode's
window and phases come with it; the variant is kept in ``Simulation.episode_variants`` and in the ``variant``
column of :meth:`Simulation.episodes_frame` (the ``Episode`` record has no field for it):

* pump-and-dump: ``rush`` (as above), ``no-rush`` (the same ramp and surge without same-millisecond bursts),
  ``slow-ramp`` (a linear 15–30 min ramp of +6–14 % on 1.5–3× the order rate, 70 % buys of ordinary size, no
  bursts; then the usual dump). TWSE's ±10 % limit leaves less room from most starting prices: the ramp is
  capped to stay under limit-up, so the prints rise +4–13 % (median about 8 %);
* spoofing: ``short`` (2–6 s) or ``long`` (20–90 s) persistence; with variants the layers go to levels 1–3
  (a level-1 layer sits at the touch until the price ticks away from it, so prints may occur at its price);
* wash trading: ``alternating`` (as above) or ``random-sides`` (sides at random; same equal sizes at the
  pinned quote, no price change);
* marking the close: ``surge`` (as above) or ``no-surge`` (the same walk up to a closing high on ordinary
  volume: 0–0.5× the order rate of extra orders, 85 % buys);
* momentum ignition: ``sweep`` only.

Legitimate look-alikes (``lookalikes=True``; default False): activity that is not manipulation but can look like
it, on every symbol, clean ones included, labelled apart from the episodes (:data:`LOOKALIKES`,
:meth:`Simulation.lookalikes_frame`: symbol, kind, start, end; no record carries them) so that an evaluation can
count the alerts they draw. Rates (:class:`LookalikeParams`) are per symbol and full 270-minute session, scaled by
the session's length. They keep to the gaps the symbol's episodes leave, by the episodes' own rule (no overlap,
``episode_gap_s`` apart, none in the first ``quiet_open_s``, one that does not fit dropped), and draw from a
stream of their own, so the episodes are planned and drawn alike with and without them:

* ``news`` (~0.4) — a repricing: the latent price jumps ±1.5–5 % (direction at random) over 3–20 s and holds,
  on a surge of extra orders (4–8× the order rate, 80 % on the jump's side); then extra orders at 2× the order
  rate, decaying with τ 120 s, 55 % on the jump's side. Label: onset → onset + 5 min.
* ``meta_order`` (~0.3) — an institution's parent order: 20–60 min of extra child market orders at 0.3–0.8× the
  order rate, all on one side, of ordinary size; the latent price drifts 0.5–2 % its way over the window and
  stays there. Label: the window.
* ``large_order`` (~0.4) — a genuine order of 3–8× the equilibrium level depth joins the touch (bid or ask) and
  rests 20–120 s; then 3–8 market orders of the other side execute it over 10–60 s, printing at its price, their
  sizes adding up to its size (they take nothing from the modelled queue). The book shows the order's remaining
  lots on top of the queue at its price, shrinking with each execution. The quote stays at the order until it is
  filled; the price then carries on from there. Label: placed → fully executed.
* ``quote_pull`` (Poisson, mean 1.5, at most 3, on half of the symbols) — a market maker pulls its quotes for
  2–10 s: the displayed depth at all five levels of both sides falls to 10–30 % and the spread widens by a tick
  on each side (the queue at the old touch goes with it); then the quote is back, and the touch's queue refills.
  Label: first thinned snapshot → first one back.

News items (``news=True``, the default; :mod:`tapewatch.generators.news`, headlines in zh-TW): one per enacted news
repricing, published 1 min before to 2 min after its first move, background items that move nothing (a per-symbol rate,
log-uniform 0.25–4 per full session) and a promotional item for 30 % of the pump-and-dumps (a quarter of them up to 15
min before the onset, the rest during the run-up), in :attr:`Simulation.news` (``NewsItem`` records, not among
:meth:`Simulation.records`) and :meth:`Simulation.news_frame` with their labels. They come from streams of their
own: the market records, episodes and look-alikes of a seed are the same with and without them.

A news repricing or meta-order that would take the price past a daily limit is not enacted (and not labelled).
Look-alikes move the price, and a few episodes depend on the price when they are enacted: marking the close is
given up when topping the session's high would take more than ``max_ret`` (after a drop on news or a selling
meta-order, say), and spoofing or an ignition that meets a daily limit stops early or is given up. So with
look-alikes such an episode can be missing (or present where it was not): the others keep their windows and
variants.

Simplifications worth knowing: continuous trading right up to the close (TWSE runs a closing call auction
13:25–13:30), no odd-lot board, no trial-match (``ts``/``pz``) fields, all five levels on consecutive ticks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Final

import numpy as np
import numpy.typing as npt
import orjson
import pandas as pd

from tapewatch.generators.feed_shapes import interval_sizes, snapshot_index, snapshot_interval, snapshot_times
from tapewatch.generators.news import NewsParams, NewsWire, SymbolPlan, news_frame, session_news
from tapewatch.price_grid import TWSE_BAND_LOW, TWSE_BAND_TICK, twse_tick
from tapewatch.records import BOOK_DEPTH, AlertKind, Book, Episode, NewsItem, Quote

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Range = tuple[float, float]
IntRange = tuple[int, int]

#: Taiwan has kept UTC+8 without daylight saving since 1979; a fixed offset needs no tz database.
TAIPEI: Final = timezone(timedelta(hours=8), "Asia/Taipei")
LOT_SHARES: Final = 1000
FULL_DAY_MINUTES: Final = 270.0
PRICE_LIMIT: Final = 0.10
QUEUE_RELAXATION_S: Final = 60.0

INJECTED_KINDS: Final[tuple[AlertKind, ...]] = (
    AlertKind.PUMP_AND_DUMP,
    AlertKind.SPOOFING,
    AlertKind.WASH_TRADING,
    AlertKind.MARKING_THE_CLOSE,
    AlertKind.MOMENTUM_IGNITION,
)

# --- TWSE tick ladder -------------------------------------------------------------------------------------
# Band boundaries are multiples of the coarser tick, so a single integer index runs over all bands.
_BAND_LOW: Final = TWSE_BAND_LOW
_BAND_TICK: Final = TWSE_BAND_TICK
_BAND_FIRST: Final = np.array([0, 1000, 1800, 2300, 3100, 3600], dtype=np.int64)


def tick_size(price: float) -> float:
    """TWSE tick for a price: < 10 → 0.01, < 50 → 0.05, < 100 → 0.1, < 500 → 0.5, < 1000 → 1, else 5."""
    return twse_tick(price)


def on_tick_grid(price: float) -> bool:
    """True when ``price`` is a whole number of ticks of its band (to float precision)."""
    tick = tick_size(price)
    return price > 0 and abs(round(price / tick) * tick - price) <= 1e-9 * max(1.0, price)


def index_to_price(index: npt.ArrayLike) -> FloatArray:
    """Tick index → price, rounded to cents so the float is the shortest decimal (``49.95``, not ``49.9500001``)."""
    idx = np.asarray(index, dtype=np.int64)
    band = np.searchsorted(_BAND_FIRST, idx, side="right") - 1
    price: FloatArray = np.round(_BAND_LOW[band] + (idx - _BAND_FIRST[band]) * _BAND_TICK[band], 2)
    return price


def price_to_index(price: npt.ArrayLike) -> FloatArray:
    """Price → continuous tick index (integral exactly on the grid)."""
    p = np.asarray(price, dtype=np.float64)
    band = np.searchsorted(_BAND_LOW, p, side="right") - 1
    index: FloatArray = _BAND_FIRST[band] + (p - _BAND_LOW[band]) / _BAND_TICK[band]
    return index


# --- configuration ----------------------------------------------------------------------------------------
#: ``*Injection``: how the simulator injects one kind of episode, the ranges each episode's parameters are drawn from
@dataclass(frozen=True, slots=True)
class PumpInjection:
    ramp_s: Range = (300.0, 900.0)
    dump_s: Range = (60.0, 180.0)
    ret: Range = (0.03, 0.08)
    #: price level after the dump, as a fraction of the pump's return (negative: below the pre-pump price)
    retrace: Range = (-0.3, 0.2)
    surge: Range = (4.0, 10.0)
    buy_share: float = 0.85
    rush_every_s: Range = (4.0, 12.0)
    rush_trades: IntRange = (4, 15)
    dump_surge: Range = (3.0, 6.0)
    dump_sell_share: float = 0.85
    #: the ``slow-ramp`` variant: a steady drift on moderate, ordinary-sized buying, no rush orders
    slow_ramp_s: Range = (900.0, 1800.0)
    slow_ret: Range = (0.06, 0.14)
    slow_surge: Range = (1.5, 3.0)
    slow_buy_share: float = 0.7


@dataclass(frozen=True, slots=True)
class SpoofingInjection:
    cycles: IntRange = (3, 6)
    layers: IntRange = (2, 4)
    size_x: Range = (6.0, 15.0)
    hold_s: Range = (2.0, 6.0)
    gap_s: Range = (5.0, 20.0)
    lift_trades: IntRange = (2, 6)
    alternate: float = 0.6
    #: book levels (1 = best) the layers go to; with ``variants`` they go to ``variant_levels``
    levels: IntRange = (2, 4)
    variant_levels: IntRange = (1, 3)
    #: the ``long`` variant's persistence
    long_hold_s: Range = (20.0, 90.0)


@dataclass(frozen=True, slots=True)
class WashInjection:
    bursts: IntRange = (2, 5)
    trades: IntRange = (10, 30)
    spacing_ms: Range = (300.0, 1500.0)
    gap_s: Range = (5.0, 20.0)
    #: volume rate of a burst, × the symbol's mean volume rate (sets the repeated trade size)
    volume_x: Range = (3.0, 6.0)
    min_lots: int = 10


@dataclass(frozen=True, slots=True)
class MarkingInjection:
    push_s: Range = (180.0, 480.0)
    ret: Range = (0.01, 0.03)
    min_ticks: int = 3
    #: a push that would need more than this to top the session's high is not attempted (episode dropped)
    max_ret: float = 0.04
    surge: Range = (3.0, 6.0)
    buy_share: float = 0.85
    #: the ``no-surge`` variant: extra buy orders × the order rate, so the walk rides on ordinary volume
    quiet_surge: Range = (0.0, 0.5)


@dataclass(frozen=True, slots=True)
class MomentumInjection:
    burst_s: Range = (5.0, 15.0)
    run_s: Range = (20.0, 60.0)
    reversal_s: Range = (30.0, 120.0)
    move: Range = (0.006, 0.015)
    min_ticks: int = 4
    burst_surge: float = 8.0
    burst_share: float = 1.0
    follow_surge: float = 3.0
    follow_share: float = 0.8
    unwind_surge: float = 2.0
    unwind_share: float = 0.75


#: episode variants per kind; without ``SimulationConfig.variants`` every episode is its kind's first one
VARIANTS: Final[Mapping[AlertKind, tuple[str, ...]]] = {
    AlertKind.PUMP_AND_DUMP: ("rush", "no-rush", "slow-ramp"),
    AlertKind.SPOOFING: ("short", "long"),
    AlertKind.WASH_TRADING: ("alternating", "random-sides"),
    AlertKind.MARKING_THE_CLOSE: ("surge", "no-surge"),
    AlertKind.MOMENTUM_IGNITION: ("sweep",),
}
REGIMES: Final[tuple[str, ...]] = ("twse", "wide")
#: legitimate activity that looks like manipulation, labelled apart from the episodes so that alerts on it can be
#: counted (:meth:`Simulation.lookalikes_frame`; :mod:`tapewatch.generators.lob_market` labels the same kinds)
LOOKALIKES: Final[tuple[str, ...]] = ("news", "meta_order", "large_order", "quote_pull")


@dataclass(frozen=True, slots=True)
class LookalikeParams:
    """The legitimate look-alikes. Rates are expected events per symbol and full 270-minute session (scaled by the
    session's length), each ``floor(rate)`` plus one more with probability ``rate - floor(rate)``."""

    news_rate: float = 0.4
    #: the latent price's jump (direction at random), over ``news_jump_s``; it holds
    news_move: Range = (0.015, 0.05)
    news_jump_s: Range = (3.0, 20.0)
    #: extra orders during the jump, × the order rate, and the share of them on the jump's side
    news_surge: Range = (4.0, 8.0)
    news_share: float = 0.8
    #: then extra orders at ``news_after`` × the order rate, decaying with ``news_decay_s``, to the window's end
    news_after: float = 2.0
    news_decay_s: float = 120.0
    news_after_share: float = 0.55
    news_window_s: float = 300.0
    meta_rate: float = 0.3
    meta_s: Range = (1200.0, 3600.0)
    #: the parent order's child market orders, × the order rate, all on one side
    meta_surge: Range = (0.3, 0.8)
    #: the latent drift the parent order leaves behind, in its direction
    meta_drift: Range = (0.005, 0.02)
    large_rate: float = 0.4
    #: the genuine order's size, × the equilibrium level depth
    large_x: Range = (3.0, 8.0)
    large_rest_s: Range = (20.0, 120.0)
    large_exec_s: Range = (10.0, 60.0)
    #: the other side's market orders that execute it
    large_takers: IntRange = (3, 8)
    #: the share of the symbols with a market maker who pulls its quotes, its pulls (Poisson mean, at most
    #: ``pull_max``) per full session, how long, and what is left of the displayed depth meanwhile
    pull_share: float = 0.5
    pull_rate: float = 1.5
    pull_max: int = 3
    pull_s: Range = (2.0, 10.0)
    pull_depth: Range = (0.1, 0.3)

    def __post_init__(self) -> None:
        for name in ("news_rate", "meta_rate", "large_rate", "pull_rate"):
            rate = getattr(self, name)
            if not (rate >= 0 and math.isfinite(rate)):
                raise ValueError(f"lookalike_params.{name} must be a finite rate ≥ 0")
        for name in ("news_share", "news_after_share", "pull_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"lookalike_params.{name} must be within 0..1")
        if not 0.0 < self.pull_depth[0] <= self.pull_depth[1] <= 1.0:
            raise ValueError("lookalike_params.pull_depth must be within 0..1")
        if self.news_window_s <= self.news_jump_s[1]:
            raise ValueError("lookalike_params.news_window_s must outlast the jump")


def default_rates() -> dict[AlertKind, float]:
    """Expected episodes per manipulated symbol and session."""
    return {
        AlertKind.PUMP_AND_DUMP: 0.3,
        AlertKind.SPOOFING: 0.6,
        AlertKind.WASH_TRADING: 0.5,
        AlertKind.MARKING_THE_CLOSE: 0.25,
        AlertKind.MOMENTUM_IGNITION: 0.6,
    }


@dataclass(frozen=True)
class SimulationConfig:
    """One simulated session. Everything the output depends on is here; the same config, the same bytes."""

    symbols: int = 20
    seed: int = 0
    day: date = date(2024, 1, 2)
    open_time: time = time(9, 0)
    #: session length; the activity curve, the close and marking-the-close follow it (270 = a TWSE day)
    minutes: float = FULL_DAY_MINUTES
    #: snapshot (quote + book) interval per symbol; at most 1000 so every symbol updates at ≥ 1 Hz
    cadence_ms: int = 1000
    venue: str = "sim"
    symbol_prefix: str = "SIM"
    clean_fraction: float = 0.3
    rates: Mapping[AlertKind, float] = field(default_factory=default_rates)
    episode_gap_s: float = 60.0
    quiet_open_s: float = 120.0
    hawkes_branching: float = 0.5
    pump: PumpInjection = PumpInjection()
    spoofing: SpoofingInjection = SpoofingInjection()
    wash: WashInjection = WashInjection()
    marking: MarkingInjection = MarkingInjection()
    momentum: MomentumInjection = MomentumInjection()
    #: the shape of the published records (:mod:`tapewatch.generators.feed_shapes`): trades, twse-mis or snapshot-1s
    feed: str = "trades"
    #: probability per book step that a level-2–5 queue is re-drawn around the equilibrium (0: persistent)
    book_churn: float = 0.0
    #: per-symbol parameter draws: ``twse`` (the default mix) or ``wide`` (prices, rates, lots, depths spread out)
    regimes: str = "twse"
    #: draw a variant per episode (:data:`VARIANTS`); False: every episode is its kind's first variant
    variants: bool = False
    #: legitimate look-alikes on every symbol (:data:`LOOKALIKES`), labelled apart from the episodes
    lookalikes: bool = False
    lookalike_params: LookalikeParams = LookalikeParams()
    #: news items (:mod:`tapewatch.generators.news`, headlines in zh-TW): one per news repricing, background news,
    #: touting during some pumps; drawn from streams of their own, so the market is the same without them
    news: bool = True
    news_params: NewsParams = field(default_factory=NewsParams)

    def __post_init__(self) -> None:
        if self.symbols < 1:
            raise ValueError("symbols must be ≥ 1")
        if not 10 <= self.cadence_ms <= 1000:
            raise ValueError("cadence_ms must be within 10..1000 (at least one snapshot per second)")
        if self.minutes <= 0 or self.steps < 10:
            raise ValueError("minutes must give at least 10 snapshot intervals")
        if not 0.0 <= self.clean_fraction <= 1.0:
            raise ValueError("clean_fraction must be within 0..1")
        if not 0.0 <= self.hawkes_branching < 0.95:
            raise ValueError("hawkes_branching must be within 0..0.95")
        for kind, rate in self.rates.items():
            if AlertKind(kind) not in INJECTED_KINDS:
                raise ValueError(f"rates: {kind} is not an injectable episode kind")
            if not (rate >= 0 and math.isfinite(rate)):
                raise ValueError(f"rates: {kind} must be a finite rate ≥ 0")
        snapshot_interval(self.feed)  # raises for an unknown profile
        if not 0.0 <= self.book_churn <= 1.0:
            raise ValueError("book_churn must be within 0..1")
        if self.regimes not in REGIMES:
            raise ValueError(f"regimes must be one of {', '.join(REGIMES)}, not {self.regimes!r}")
        if not isinstance(self.lookalikes, bool):
            raise ValueError("lookalikes must be True or False")

    @property
    def steps(self) -> int:
        """Snapshot intervals in the session (snapshots are taken at steps 0..steps inclusive)."""
        return round(self.minutes * 60_000 / self.cadence_ms)

    @property
    def start_ms(self) -> int:
        return int(datetime.combine(self.day, self.open_time, tzinfo=TAIPEI).timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.steps * self.cadence_ms

    @property
    def symbol_names(self) -> tuple[str, ...]:
        return tuple(f"{self.symbol_prefix}{i + 1:04d}" for i in range(self.symbols))

    def rate(self, kind: AlertKind) -> float:
        return float(self.rates.get(kind, 0.0))


# --- helpers ------------------------------------------------------------------------------------------------
def _ar1(innovations: FloatArray, phi: float, y0: float) -> FloatArray:
    """``y[k] = phi * y[k-1] + innovations[k]`` with ``y[-1] = y0``, vectorised.

    Solved as ``phi**k * cumsum(innovations / phi**k)`` in blocks short enough that ``phi**-k`` stays finite.
    """
    n = len(innovations)
    out = np.empty(n)
    if phi <= 0.0:
        out[:] = innovations
        return out
    block = n if phi >= 1.0 else max(1, int(300.0 / -math.log(phi)))
    previous = y0
    for start in range(0, n, block):
        chunk = innovations[start : start + block]
        powers = phi ** np.arange(1, len(chunk) + 1)
        values = powers * (previous + np.cumsum(chunk / powers))
        out[start : start + len(chunk)] = values
        previous = float(values[-1])
    return out


def _pareto_lots(rng: np.random.Generator, n: int, xmin: float, alpha: float, cap: float) -> IntArray:
    u = rng.random(n)
    return np.minimum(np.floor(xmin * (1.0 - u) ** (-1.0 / alpha)), cap).astype(np.int64)


def _uniform(rng: np.random.Generator, bounds: Range) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _integers(rng: np.random.Generator, bounds: IntRange) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


def _interp_ticks(start: int, stop: int, n: int, power: float = 1.0) -> IntArray:
    """``n`` tick indices from ``start`` towards ``stop`` (reached at the last one), shaped by ``power``."""
    frac = (np.arange(1, n + 1) / n) ** power
    return (start + np.rint((stop - start) * frac)).astype(np.int64)


# --- per-symbol state ------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Trades:
    """Trades of one symbol being assembled. ``px`` -1 = priced from the quote path by the aggressor side."""

    ts: list[IntArray] = field(default_factory=list)
    side: list[IntArray] = field(default_factory=list)
    lots: list[IntArray] = field(default_factory=list)
    px: list[IntArray] = field(default_factory=list)
    bid: list[IntArray] = field(default_factory=list)
    ask: list[IntArray] = field(default_factory=list)
    consume: list[BoolArray] = field(default_factory=list)
    #: who the prints are (:data:`ORDINARY` and the others): read by the order feed
    #: (:mod:`tapewatch.generators.sim_orders`), nothing else
    tag: list[npt.NDArray[np.int8]] = field(default_factory=list)

    def add(
        self,
        ts: IntArray,
        side: IntArray,
        lots: IntArray,
        *,
        px: IntArray | None = None,
        bid: IntArray | None = None,
        ask: IntArray | None = None,
        consume: bool = True,
        tag: int | npt.NDArray[np.int8] = 0,
    ) -> None:
        n = len(ts)
        none = np.full(n, -1, dtype=np.int64)
        self.ts.append(ts.astype(np.int64))
        self.side.append(side.astype(np.int64))
        self.lots.append(np.maximum(lots, 1).astype(np.int64))
        self.px.append(none if px is None else px.astype(np.int64))
        self.bid.append(none if bid is None else bid.astype(np.int64))
        self.ask.append(none if ask is None else ask.astype(np.int64))
        self.consume.append(np.full(n, consume))
        self.tag.append(np.full(n, tag, dtype=np.int8) if isinstance(tag, int) else tag.astype(np.int8))


#: what a print is (:attr:`_Trades.tag`): the order flow's, the spoofer's genuine orders filled as the price moves,
#: a wash pair's, a taker executing a genuine large order, an agent's own orders on its side of the flow it drives
#: (a pump's buying and dumping, the buying that marks the close, a meta-order's child orders)
ORDINARY: Final = 0
SPOOF_FILL: Final = 1
WASH_PRINT: Final = 2
LARGE_FILL: Final = 3
AGENT_FLOW: Final = 4


@dataclass(slots=True)
class _Planned:
    kind: AlertKind
    parts: tuple[int, ...] = ()  # phase lengths in steps, drawn once at planning
    k0: int = -1
    variant: str = ""

    @property
    def length(self) -> int:
        return sum(self.parts)


@dataclass(slots=True)
class _RestingOrder:
    """A large order shown in the book on top of the modelled queues: a spoofing layer, a genuine order."""

    side: int  # 0 bid, 1 ask
    price: int  # tick index
    k_from: int  # first snapshot showing it
    lots: IntArray  # lots shown at each snapshot from ``k_from`` on; the first snapshot without it follows the last
    kind: str = ""  # what placed it: "spoofing", "large_order"

    @property
    def k_to(self) -> int:
        return self.k_from + len(self.lots)


@dataclass(slots=True)
class _Symbol:
    """Everything about one symbol that the cross-symbol book pass and the final assembly need."""

    name: str
    rng: np.random.Generator
    prev_close: int  # tick index
    limit_low: int  # lowest allowed level-5 bid index
    limit_high: int  # highest allowed level-5 ask index
    rate: float  # aggressive orders per second, session mean
    xmin: float
    alpha: float
    depth: float  # equilibrium lots per level
    activity: FloatArray  # (T+1,) mean 1
    p_buy: FloatArray  # (T+1,)
    spread: IntArray  # (T+1,) ticks
    bid: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    ask: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    trades: _Trades = field(default_factory=_Trades)
    resting: list[_RestingOrder] = field(default_factory=list)  # shown on top of the queues
    depth_factor: FloatArray = field(default_factory=lambda: np.empty(0))  # (T+1, 2) display multipliers
    episodes: list[tuple[AlertKind, int, int, str]] = field(default_factory=list)  # kind, first, last step, variant
    lookalikes: list[tuple[str, int, int]] = field(default_factory=list)  # kind, first, last step
    repricings: list[tuple[int, int]] = field(default_factory=list)  # news repricings: first step, direction
    runups: list[tuple[int, int]] = field(default_factory=list)  # pumps: first step, last step of the run-up
    consumed: FloatArray = field(default_factory=lambda: np.empty(0))  # (T+1, 2) lots taken from level 1


class _Context:
    """Session-wide constants shared by the per-symbol builders."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.steps = config.steps
        self.cad = config.cadence_ms
        self.cad_s = config.cadence_ms / 1000.0
        self.k = np.arange(self.steps + 1)
        tau = self.k / self.steps
        # Intraday U: strong opening half hour, a rising close, a quiet lunch.
        u = 0.55 + 1.6 * np.exp(-tau / 0.07) + 1.1 * np.exp(-(1.0 - tau) / 0.06)
        self.u = u / u[1:].mean()
        self.seconds = self.k * self.cad_s

    def steps_for(self, seconds: float) -> int:
        return max(1, math.ceil(seconds * 1000.0 / self.cad))


def _symbol_rng(config: SimulationConfig, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(0, index)))


def _lookalike_rng(config: SimulationConfig, index: int) -> np.random.Generator:
    """The look-alikes' own stream for a symbol (spawn keys: 0 the symbols', 1 the clean choice), so that turning
    them on changes no draw of the symbol's own stream."""
    return np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(2, index)))


@dataclass(frozen=True, slots=True)
class _Regime:
    """A symbol's own parameters, drawn once."""

    prev_price: float
    sigma_day: float
    rate: float  # aggressive orders per second, session mean
    xmin: float  # minimum trade size, lots
    alpha: float  # Pareto tail of trade sizes
    depth: float  # equilibrium lots per level
    spread_bps: float


#: prints per aggressive order: 1 + geometric fills (p = 0.72), at most 6 (see :func:`_baseline_trades`)
PRINTS_PER_ORDER: Final = (1.0 - 0.28**6) / 0.72


def _twse_regime(rng: np.random.Generator) -> _Regime:
    """The default mix: prices around 45 (5–2,000), 0.1–4 orders/s, 1–3-lot minimum trades, 10–30× deep."""
    prev_price = float(np.clip(math.exp(rng.normal(math.log(45.0), 1.1)), 5.0, 2000.0))
    sigma_day = float(rng.uniform(0.012, 0.03))
    rate = float(np.clip(math.exp(rng.normal(math.log(0.6), 0.5)), 0.1, 4.0))
    xmin = float(rng.choice([1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 3.0]))
    alpha = float(rng.uniform(1.5, 1.9))
    depth = float(max(5.0, round(xmin * rng.uniform(10.0, 30.0))))
    return _Regime(prev_price, sigma_day, rate, xmin, alpha, depth, float(rng.uniform(4.0, 15.0)))


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return math.exp(float(rng.uniform(math.log(low), math.log(high))))


def _wide_regime(rng: np.random.Generator) -> _Regime:
    """Spread out: prices log-uniform 5–2,000, 0.1–50 prints/s, 1–50-lot minimum trades, books 2–100× deep."""
    prev_price = _log_uniform(rng, 5.0, 2000.0)
    sigma_day = float(rng.uniform(0.012, 0.03))
    rate = _log_uniform(rng, 0.1 / PRINTS_PER_ORDER, 50.0 / PRINTS_PER_ORDER)
    xmin = float(round(_log_uniform(rng, 1.0, 50.0)))
    alpha = float(rng.uniform(1.4, 2.2))
    depth = float(max(2.0, round(xmin * _log_uniform(rng, 2.0, 100.0))))
    return _Regime(prev_price, sigma_day, rate, xmin, alpha, depth, float(rng.uniform(3.0, 30.0)))


def _new_symbol(ctx: _Context, index: int) -> tuple[_Symbol, FloatArray]:
    """Draw a symbol's parameters and its latent log-price path."""
    cfg, n = ctx.config, ctx.steps
    rng = _symbol_rng(cfg, index)
    regime = _wide_regime(rng) if cfg.regimes == "wide" else _twse_regime(rng)
    prev_idx = int(np.rint(price_to_index(regime.prev_price)))
    prev_price = float(index_to_price(prev_idx))
    limit_up = math.floor(float(price_to_index(prev_price * (1 + PRICE_LIMIT))) + 1e-9)
    limit_down = math.ceil(float(price_to_index(prev_price * (1 - PRICE_LIMIT))) - 1e-9)
    sigma_day, rate, spread_bps = regime.sigma_day, regime.rate, regime.spread_bps
    gap = rng.normal(0.0, 0.006)

    # Stochastic volatility: log-vol AR(1), half-life ~20 minutes, stationary sd 0.35.
    sd_h = 0.35
    phi_h = math.exp(-ctx.cad_s / 1800.0)
    h = _ar1(rng.standard_normal(n + 1) * sd_h * math.sqrt(1 - phi_h**2), phi_h, rng.normal(0.0, sd_h))
    vol_u = np.sqrt(ctx.u)
    vol_u /= math.sqrt(float(np.mean(vol_u[1:] ** 2)))
    sigma_step = sigma_day * math.sqrt(cfg.cadence_ms / (FULL_DAY_MINUTES * 60_000))
    z = rng.standard_normal(n + 1)
    z[0] = 0.0
    returns = sigma_step * np.exp(h - sd_h**2) * vol_u * z
    x = math.log(prev_price) + gap + np.cumsum(returns)

    activity = ctx.u * np.exp(h)
    activity /= activity[1:].mean()
    p_buy = 0.5 + 0.4 * np.tanh(0.9 * z)

    # Spread: mean-reverting log-AR(1) around the symbol's target in ticks, wider for ~3 min after the open.
    tick0 = tick_size(prev_price)
    target = spread_bps * 1e-4 * prev_price / tick0
    phi_g = math.exp(-ctx.cad_s / 30.0)
    g = _ar1(rng.standard_normal(n + 1) * 0.45 * math.sqrt(1 - phi_g**2), phi_g, rng.normal(0.0, 0.45))
    widen = 1.0 + 1.5 * np.exp(-ctx.seconds / 90.0)
    spread = np.clip(np.rint(target * np.exp(g) * widen), 1, 12).astype(np.int64)

    symbol = _Symbol(
        name=cfg.symbol_names[index],
        rng=rng,
        prev_close=prev_idx,
        limit_low=limit_down,
        limit_high=limit_up,
        rate=rate,
        xmin=regime.xmin,
        alpha=regime.alpha,
        depth=regime.depth,
        activity=activity,
        p_buy=p_buy,
        spread=spread,
    )
    symbol.depth_factor = np.ones((n + 1, 2))
    return symbol, x


def _quantise(sym: _Symbol, x: FloatArray) -> None:
    """Latent log-price → best bid/ask tick indices. The bid moves only when the latent leaves the spread."""
    c = price_to_index(np.exp(x)).tolist()
    spreads = sym.spread.tolist()
    lo = sym.limit_low + (BOOK_DEPTH - 1)
    hi = sym.limit_high - (BOOK_DEPTH - 1)
    bids = [0] * len(c)
    b = round(c[0] - spreads[0] / 2)
    previous_spread = spreads[0]
    for k, (ck, sk) in enumerate(zip(c, spreads, strict=True)):
        if sk != previous_spread:
            b = round(ck - sk / 2)
        elif ck > b + sk:
            b = math.ceil(ck) - sk
        elif ck < b:
            b = math.floor(ck)
        b = max(lo, min(b, hi - sk))
        bids[k] = b
        previous_spread = sk
    sym.bid = np.array(bids, dtype=np.int64)
    sym.ask = sym.bid + sym.spread


def _mean_lots(sym: _Symbol) -> float:
    return sym.xmin * sym.alpha / (sym.alpha - 1.0)


# --- episode planning ----------------------------------------------------------------------------------------------
def _episode_count(rng: np.random.Generator, rate: float) -> int:
    whole = math.floor(rate)
    return whole + int(rng.random() < rate - whole)


def _plan(ctx: _Context, sym: _Symbol, clean: bool) -> list[_Planned]:
    """Which episodes this symbol gets and where (non-overlapping, with gaps, inside the session)."""
    cfg, rng = ctx.config, sym.rng
    # Draw the same numbers for clean and manipulated symbols so the clean choice never shifts the streams.
    counts = {kind: _episode_count(rng, cfg.rate(kind)) for kind in INJECTED_KINDS}
    placement_seed = int(rng.integers(2**63))
    if clean:
        return []
    counts[AlertKind.MARKING_THE_CLOSE] = min(counts[AlertKind.MARKING_THE_CLOSE], 1)
    place = np.random.default_rng(placement_seed)
    planned: list[_Planned] = []
    # Marking the close first: its slot is fixed at the end of the session, the others go around it.
    order = sorted(INJECTED_KINDS, key=lambda kind: kind is not AlertKind.MARKING_THE_CLOSE)
    for kind in order:
        for _ in range(counts[kind]):
            planned.append(_Planned(kind))

    occupied: list[tuple[int, int]] = []
    kept: list[_Planned] = []
    for item in planned:
        item.variant = _draw_variant(cfg, item.kind, place)
        item.parts = _episode_parts(ctx, item, place)
        if item.kind is AlertKind.MARKING_THE_CLOSE:
            item.k0 = ctx.steps - item.length
            if item.k0 < _quiet_open(ctx):
                continue
            occupied.append((item.k0, ctx.steps))
            kept.append(item)
            continue
        item.k0 = _place(ctx, place, occupied, item.length)
        if item.k0 >= 0:
            kept.append(item)
    kept.sort(key=lambda p: p.k0)
    return kept


def _quiet_open(ctx: _Context) -> int:
    """The first step a window may start at: nothing is injected in the first ``quiet_open_s``."""
    return min(ctx.steps_for(ctx.config.quiet_open_s), ctx.steps)


def _place(ctx: _Context, rng: np.random.Generator, occupied: list[tuple[int, int]], length: int) -> int:
    """A random start for a window of ``length`` steps in the gaps between the ``occupied`` windows, ``episode_gap_s``
    clear of each of them and of the close, not before the quiet open ends; -1 when it does not fit (the window is
    dropped, never truncated). A placed window joins ``occupied``."""
    gap = ctx.steps_for(ctx.config.episode_gap_s)
    # Feasible starts: every gap between occupied windows, shrunk by the buffer and the length.
    ranges: list[tuple[int, int]] = []
    previous_end = _quiet_open(ctx) - gap
    for a, b in sorted(occupied):
        ranges.append((previous_end + gap, a - gap - length))
        previous_end = b
    ranges.append((previous_end + gap, ctx.steps - gap - length))
    sizes = np.array([max(0, hi - low + 1) for low, hi in ranges], dtype=np.float64)
    if sizes.sum() <= 0:
        return -1
    which = int(rng.choice(len(ranges), p=sizes / sizes.sum()))
    low, hi = ranges[which]
    k0 = int(rng.integers(low, hi + 1))
    occupied.append((k0, k0 + length))
    return k0


@dataclass(slots=True)
class _Lookalike:
    """A planned legitimate look-alike: its kind (:data:`LOOKALIKES`), phase lengths (steps) and first step."""

    kind: str
    parts: tuple[int, ...]
    k0: int = -1
    direction: int = 0  # a repricing's, once enacted

    @property
    def length(self) -> int:
        return sum(self.parts)

    @property
    def end(self) -> int:
        return self.k0 + self.length


def _lookalike_counts(config: SimulationConfig, rng: np.random.Generator) -> dict[str, int]:
    p, scale = config.lookalike_params, config.minutes / FULL_DAY_MINUTES
    # Drawn whether or not the symbol has a market maker, so that the choice never shifts the stream.
    has_maker = rng.random() < p.pull_share
    pulls = min(int(rng.poisson(p.pull_rate * scale)), p.pull_max)
    return {
        "news": _episode_count(rng, p.news_rate * scale),
        "meta_order": _episode_count(rng, p.meta_rate * scale),
        "large_order": _episode_count(rng, p.large_rate * scale),
        "quote_pull": pulls if has_maker else 0,
    }


def _lookalike_parts(ctx: _Context, kind: str, rng: np.random.Generator) -> tuple[int, ...]:
    """Phase lengths (steps): news (jump, aftermath), large_order (rest, execution), the others one phase."""
    p = ctx.config.lookalike_params
    if kind == "news":
        jump = ctx.steps_for(_uniform(rng, p.news_jump_s))
        return jump, max(1, ctx.steps_for(p.news_window_s) - jump)
    if kind == "meta_order":
        return (ctx.steps_for(_uniform(rng, p.meta_s)),)
    if kind == "large_order":
        return ctx.steps_for(_uniform(rng, p.large_rest_s)), ctx.steps_for(_uniform(rng, p.large_exec_s))
    return (ctx.steps_for(_uniform(rng, p.pull_s)),)


def _plan_lookalikes(
    ctx: _Context, index: int, planned: Sequence[_Planned]
) -> tuple[list[_Lookalike], np.random.Generator]:
    """The symbol's look-alikes in time order, and the stream their builders draw from: placed in the gaps the
    episodes leave, by the rule that keeps episodes apart; one that does not fit is dropped."""
    rng = _lookalike_rng(ctx.config, index)
    if not ctx.config.lookalikes:
        return [], rng
    counts = _lookalike_counts(ctx.config, rng)
    occupied = [(item.k0, item.k0 + item.length) for item in planned]
    looks: list[_Lookalike] = []
    for kind in LOOKALIKES:
        for _ in range(counts[kind]):
            look = _Lookalike(kind, _lookalike_parts(ctx, kind, rng))
            look.k0 = _place(ctx, rng, occupied, look.length)
            if look.k0 >= 0:
                looks.append(look)
    looks.sort(key=lambda look: look.k0)
    return looks, rng


def _draw_variant(config: SimulationConfig, kind: AlertKind, rng: np.random.Generator) -> str:
    """The episode's variant, uniformly among its kind's; the first one (no draw) without ``variants``."""
    names = VARIANTS[kind]
    if not config.variants or len(names) == 1:
        return names[0]
    return names[int(rng.integers(len(names)))]


def _episode_parts(ctx: _Context, item: _Planned, rng: np.random.Generator) -> tuple[int, ...]:
    """Phase lengths (steps) of an episode. Spoofing and wash trading get a room sized for their cycles or
    bursts at the longest; their builders stop at its end rather than overrun it."""
    cfg, kind = ctx.config, item.kind
    if kind is AlertKind.PUMP_AND_DUMP:
        ramp_s = cfg.pump.slow_ramp_s if item.variant == "slow-ramp" else cfg.pump.ramp_s
        return ctx.steps_for(_uniform(rng, ramp_s)), ctx.steps_for(_uniform(rng, cfg.pump.dump_s))
    if kind is AlertKind.SPOOFING:
        p = cfg.spoofing
        per_cycle = _spoof_hold_s(p, item.variant)[1] + 3.0 + p.gap_s[1]
        return (ctx.steps_for(_integers(rng, p.cycles) * per_cycle),)
    if kind is AlertKind.WASH_TRADING:
        w = cfg.wash
        per_burst = w.trades[1] * w.spacing_ms[1] / 1000.0 + 2.0 + w.gap_s[1]
        return (ctx.steps_for(_integers(rng, w.bursts) * per_burst),)
    if kind is AlertKind.MARKING_THE_CLOSE:
        return (ctx.steps_for(_uniform(rng, cfg.marking.push_s)),)
    m = cfg.momentum
    return (
        ctx.steps_for(_uniform(rng, m.burst_s)),
        ctx.steps_for(_uniform(rng, m.run_s)),
        ctx.steps_for(_uniform(rng, m.reversal_s)),
    )


# --- episode builders ---------------------------------------------------------------------------------------------
def _flow(
    ctx: _Context,
    sym: _Symbol,
    k_from: int,
    k_to: int,
    orders_per_s: FloatArray | float,
    side_share: float,
    direction: int,
    size_mult: float = 1.0,
    small: IntRange | None = None,
    rng: np.random.Generator | None = None,
    agent: bool = False,
) -> None:
    """Extra aggressive orders over steps (k_from, k_to]: Poisson per interval, uniform times inside it; drawn from
    ``rng`` (default: the symbol's stream). ``agent``: those on ``direction``'s side are the agent's own
    (:data:`AGENT_FLOW`), the others the crowd's."""
    rng = sym.rng if rng is None else rng
    steps = np.arange(k_from + 1, k_to + 1)
    if len(steps) == 0:
        return
    lam = np.broadcast_to(np.asarray(orders_per_s, dtype=np.float64), steps.shape) * ctx.cad_s
    counts = rng.poisson(lam)
    k = np.repeat(steps, counts)
    n = len(k)
    ts = (k - 1) * ctx.cad + rng.integers(1, ctx.cad + 1, n)
    side = np.where(rng.random(n) < side_share, direction, -direction)
    if small is not None:
        lots = rng.integers(small[0], small[1] + 1, n)
    else:
        lots = np.maximum(1, np.rint(_pareto_lots(rng, n, sym.xmin, sym.alpha, 3000) * size_mult)).astype(np.int64)
    sym.trades.add(ts, side, lots, tag=np.where(side == direction, AGENT_FLOW, ORDINARY) if agent else ORDINARY)


def _room(sym: _Symbol, x: FloatArray, k0: int, k1: int, direction: int = 1) -> float:
    """Log-return the latent price can still move in ``direction`` over steps k0..k1 with all five levels of that
    side inside the daily price limits."""
    if direction > 0:
        ceiling = math.log(float(index_to_price(sym.limit_high - BOOK_DEPTH - 1)))
        return ceiling - float(np.max(x[k0 : k1 + 1]))
    floor = math.log(float(index_to_price(sym.limit_low + BOOK_DEPTH + 1)))
    return float(np.min(x[k0 : k1 + 1])) - floor


def _pump_overlay(ctx: _Context, sym: _Symbol, item: _Planned, x: FloatArray) -> tuple[int, int, int]:
    p, rng = ctx.config.pump, sym.rng
    ramp, dump_steps = item.parts
    k0, k1, k2 = item.k0, item.k0 + ramp, item.k0 + ramp + dump_steps
    slow = item.variant == "slow-ramp"
    ret = _uniform(rng, p.slow_ret if slow else p.ret)
    if slow:
        # +6–14 % does not fit TWSE's ±10 % daily limit from most starting points: stop short of limit-up.
        ret = min(ret, max(_room(sym, x, k0, k1), p.ret[0]))
    post = ret * _uniform(rng, p.retrace)
    overlay = np.zeros(ctx.steps + 1)
    overlay[k0 : k1 + 1] = ret * (np.arange(k1 - k0 + 1) / (k1 - k0)) ** (1.0 if slow else 1.5)
    dump = np.arange(1, k2 - k1 + 1) / (k2 - k1)
    overlay[k1 + 1 : k2 + 1] = ret + (post - ret) * dump**0.6
    overlay[k2 + 1 :] = post
    x += overlay
    return k0, k1, k2


def _rush_orders(ctx: _Context, sym: _Symbol, k0: int, k1: int) -> None:
    """Bursts of small buys printed in one millisecond, every few seconds of the ramp (La Morgia et al.)."""
    p, rng = ctx.config.pump, sym.rng
    ramp_s = (k1 - k0) * ctx.cad_s
    n_rush = int(rng.poisson(ramp_s / _uniform(rng, p.rush_every_s)))
    for _ in range(n_rush):
        at = int(rng.integers(k0 * ctx.cad + 1, k1 * ctx.cad + 1))
        n = _integers(rng, p.rush_trades)
        sym.trades.add(np.full(n, at), np.ones(n, dtype=np.int64), rng.integers(1, 3, n))


def _pump_ramp_flow(ctx: _Context, sym: _Symbol, variant: str, k0: int, k1: int) -> None:
    p, rng = ctx.config.pump, sym.rng
    if variant == "slow-ramp":
        _flow(ctx, sym, k0, k1, sym.rate * _uniform(rng, p.slow_surge), p.slow_buy_share, +1, agent=True)
        return
    surge = _uniform(rng, p.surge)
    # The ramp accelerates: the surge grows from half to one and a half times its mean.
    shape = 0.5 + np.arange(k1 - k0) / max(1, k1 - k0 - 1)
    _flow(ctx, sym, k0, k1, sym.rate * surge * shape, p.buy_share, +1, small=(1, 3), agent=True)
    if variant == "rush":
        _rush_orders(ctx, sym, k0, k1)


def _pump_trades(ctx: _Context, sym: _Symbol, variant: str, k0: int, k1: int, k2: int) -> None:
    p, rng = ctx.config.pump, sym.rng
    _pump_ramp_flow(ctx, sym, variant, k0, k1)
    _flow(ctx, sym, k1, k2, sym.rate * _uniform(rng, p.dump_surge), p.dump_sell_share, -1, size_mult=3.0, agent=True)
    sym.depth_factor[k0:k1, 0] *= 1.3
    sym.depth_factor[k0:k1, 1] *= 0.6
    sym.depth_factor[k1:k2, 0] *= 0.5
    sym.depth_factor[k1:k2, 1] *= 1.2


def _override(sym: _Symbol, k_from: int, bid: IntArray, ask: IntArray) -> None:
    sym.bid[k_from : k_from + len(bid)] = bid
    sym.ask[k_from : k_from + len(ask)] = ask


def _clamp(sym: _Symbol, k_from: int) -> None:
    """Keep all five levels inside the daily price limits from ``k_from`` on."""
    spread = sym.ask[k_from:] - sym.bid[k_from:]
    low, high = sym.limit_low + (BOOK_DEPTH - 1), sym.limit_high - (BOOK_DEPTH - 1)
    sym.bid[k_from:] = np.clip(sym.bid[k_from:], low, high - spread)
    sym.ask[k_from:] = sym.bid[k_from:] + spread


def _resume_from(sym: _Symbol, k: int, bid: int) -> None:
    """After step ``k`` the quote path carries on from ``bid`` (its moves kept, its level shifted): where an
    episode held or steered the quote, the undisturbed price picks up where the episode left it, without a jump."""
    drift = int(sym.bid[k]) - bid
    sym.bid[k + 1 :] -= drift
    sym.ask[k + 1 :] -= drift
    _clamp(sym, k + 1)


def _spoof_hold_s(p: SpoofingInjection, variant: str) -> Range:
    return p.long_hold_s if variant == "long" else p.hold_s


def _spoof_levels(config: SimulationConfig) -> IntArray:
    """Zero-based book levels the layers may take (distinct levels per cycle)."""
    low, high = config.spoofing.variant_levels if config.variants else config.spoofing.levels
    levels: IntArray = np.arange(low - 1, high, dtype=np.int64)
    return levels


def _spoofing(ctx: _Context, sym: _Symbol, item: _Planned) -> tuple[int, int]:
    p, rng = ctx.config.spoofing, sym.rng
    end_limit = item.k0 + item.length
    k = item.k0
    first, last = -1, -1
    hold_s = _spoof_hold_s(p, item.variant)
    allowed = _spoof_levels(ctx.config)
    side = int(rng.integers(2))  # 0: layers on the bid (price ticks up), 1: on the ask (ticks down)
    for _ in range(_integers(rng, p.cycles)):
        hold = ctx.steps_for(_uniform(rng, hold_s))
        hold = max(hold, 2)
        after = ctx.steps_for(float(rng.uniform(1.0, 3.0)))
        if k + hold + after > end_limit:
            break
        move_at = k + max(1, hold // 3)
        b0, a0 = int(sym.bid[k]), int(sym.ask[k])
        direction = 1 if side == 0 else -1
        if not sym.limit_low + BOOK_DEPTH - 1 <= b0 + direction < a0 + direction <= sym.limit_high - BOOK_DEPTH + 1:
            break  # pinned near a daily limit: the price cannot tick away
        n_before, n_after = move_at - k, k + hold + after - move_at
        _override(
            sym,
            k,
            np.concatenate([np.full(n_before, b0), np.full(n_after, b0 + direction)]).astype(np.int64),
            np.concatenate([np.full(n_before, a0), np.full(n_after, a0 + direction)]).astype(np.int64),
        )
        n_layers = _integers(rng, p.layers)
        levels = rng.choice(allowed, size=min(n_layers, len(allowed)), replace=False)
        for level in levels.tolist():
            lots = round(sym.depth * _uniform(rng, p.size_x))
            price = b0 - level if side == 0 else a0 + level
            sym.resting.append(_RestingOrder(side, price, k, np.full(hold, lots, dtype=np.int64), "spoofing"))
        # The spoofer's genuine orders on the other side get taken as the price moves away from the layers.
        n = _integers(rng, p.lift_trades)
        ts = (move_at - 1) * ctx.cad + np.sort(rng.integers(1, ctx.cad + 1, n))
        px = np.full(n, a0 if side == 0 else b0)
        spread = a0 - b0
        sym.trades.add(
            ts,
            np.full(n, direction),
            _pareto_lots(rng, n, sym.xmin, sym.alpha, 3000) * 2,
            px=px,
            bid=px - spread if side == 0 else px,
            ask=px if side == 0 else px + spread,
            tag=SPOOF_FILL,
        )
        if first < 0:
            first = k
        last = k + hold + after
        k = last + ctx.steps_for(_uniform(rng, p.gap_s))
        if rng.random() < p.alternate:
            side = 1 - side
    return first, last


def _wash_sides(rng: np.random.Generator, n: int, variant: str) -> IntArray:
    """Aggressor sides of a burst: strictly alternating (``alternating``) or at random (``random-sides``)."""
    if variant == "random-sides":
        random_sides: IntArray = np.where(rng.random(n) < 0.5, 1, -1).astype(np.int64)
        return random_sides
    start_side = 1 if rng.random() < 0.5 else -1
    alternating: IntArray = start_side * np.where(np.arange(n) % 2 == 0, 1, -1)
    return alternating


def _wash(ctx: _Context, sym: _Symbol, item: _Planned) -> tuple[int, int]:
    w, rng = ctx.config.wash, sym.rng
    end_limit = item.k0 + item.length
    volume_rate = sym.rate * 1.4 * _mean_lots(sym)  # lots per second, session mean
    mean_spacing_s = (w.spacing_ms[0] + w.spacing_ms[1]) / 2000.0
    size = max(w.min_lots, _uniform(rng, w.volume_x) * volume_rate * mean_spacing_s)
    # Colluding accounts pick round sizes: 10, 15, 20, 25, 30, 40, 50, 100 lots...
    rounds = np.array([10, 15, 20, 25, 30, 40, 50, 60, 80, 100, 150, 200, 250, 300, 400, 500, 1000, 2000, 5000])
    lots = int(rounds[np.argmin(np.abs(rounds - size))])
    k = item.k0
    first, last = -1, -1
    for _ in range(_integers(rng, w.bursts)):
        n = _integers(rng, w.trades)
        spacing = rng.uniform(w.spacing_ms[0], w.spacing_ms[1], n)
        offsets = np.cumsum(np.rint(spacing)).astype(np.int64)
        ts = k * ctx.cad + offsets
        k_last = int(-(-int(ts[-1]) // ctx.cad))
        if k_last + 1 > end_limit:
            break
        # The quote is frozen while the pair trades with itself: buys print at the ask, sells at the bid.
        b0, a0 = int(sym.bid[k]), int(sym.ask[k])
        _override(sym, k, np.full(k_last - k + 1, b0), np.full(k_last - k + 1, a0))
        sym.trades.add(ts, _wash_sides(rng, n, item.variant), np.full(n, lots), consume=False, tag=WASH_PRINT)
        if first < 0:
            first = k
        last = k_last
        k = k_last + ctx.steps_for(_uniform(rng, w.gap_s))
    return first, last


@dataclass(frozen=True, slots=True)
class _Ignition:
    """A momentum-ignition episode as drawn: its phases (steps), direction and size (ticks of the quote)."""

    k0: int
    burst: int
    run: int
    rev: int
    direction: int
    bid: int  # the quote before the ignition
    ask: int
    total_ticks: int  # how far the run takes the quote
    burst_ticks: int  # how far the burst's marketable orders take it

    @property
    def burst_end(self) -> int:
        return self.k0 + self.burst

    @property
    def run_end(self) -> int:
        return self.k0 + self.burst + self.run

    @property
    def end(self) -> int:
        return self.k0 + self.burst + self.run + self.rev


def _draw_ignition(m: MomentumInjection, sym: _Symbol, item: _Planned) -> _Ignition | None:
    """The episode's direction and size; None when its levels would leave the daily price limits."""
    rng = sym.rng
    burst, run, rev = item.parts
    direction = 1 if rng.random() < 0.5 else -1
    b0, a0 = int(sym.bid[item.k0]), int(sym.ask[item.k0])
    price = float(index_to_price(b0))
    target = price * (1.0 + direction * _uniform(rng, m.move))
    total = max(m.min_ticks, abs(round(float(price_to_index(target)) - b0)))
    n_burst = max(2, round(total * rng.uniform(0.4, 0.6)))
    if (
        b0 + direction * total - (BOOK_DEPTH - 1) < sym.limit_low
        or a0 + direction * total + (BOOK_DEPTH - 1) > sym.limit_high
    ):
        return None
    return _Ignition(item.k0, burst, run, rev, direction, b0, a0, total, n_burst)


def _sweep_levels(rng: np.random.Generator, ticks: int, steps: int) -> list[int]:
    """The burst's ``ticks`` split into sweeps of 1-3 levels, at most one per step of the burst."""
    sweeps: list[int] = []
    left = ticks
    while left > 0:
        # The first order is the ignition proper: it always walks at least two levels.
        step = min(left, int(rng.choice([2, 3] if not sweeps else [1, 2, 2, 3])))
        sweeps.append(step)
        left -= step
    n_orders = min(len(sweeps), steps)
    if n_orders < len(sweeps):
        sweeps = [*sweeps[: n_orders - 1], sum(sweeps[n_orders - 1 :])]
    return sweeps


def _sweep_book(ctx: _Context, sym: _Symbol, ig: _Ignition, sweeps: list[int]) -> tuple[IntArray, int]:
    """Print the sweeps as marketable orders walking the book; the ticks walked by each step of the burst, and
    in all."""
    rng, w0, s0 = sym.rng, ig.k0, ig.ask - ig.bid
    # The ignition opens the episode; the other sweeps follow at random within the burst.
    later = rng.choice(np.arange(w0 + 2, ig.burst_end + 1), size=len(sweeps) - 1, replace=False)
    at = np.sort(np.concatenate([[w0 + 1], later])).astype(np.int64)
    offset = np.zeros(ig.burst, dtype=np.int64)
    done = 0
    for order_step, levels in zip(at.tolist(), sweeps, strict=True):
        ts_order = (order_step - 1) * ctx.cad + int(rng.integers(1, ctx.cad + 1))
        # One marketable order walking the book: every resting order it meets is a print of the same millisecond.
        walk = np.repeat(np.arange(levels), rng.integers(1, 4, levels))
        if ig.direction > 0:
            px = ig.ask + done + walk
            bid, ask = px - s0, px
        else:
            px = ig.bid - done - walk
            bid, ask = px, px + s0
        sym.trades.add(
            np.full(len(walk), ts_order),
            np.full(len(walk), ig.direction),
            _pareto_lots(rng, len(walk), sym.xmin, sym.alpha, 3000) * 2,
            px=px,
            bid=bid,
            ask=ask,
        )
        done += levels
        offset[order_step - w0 - 1 :] = done
    return offset, done


def _ignition_quotes(sym: _Symbol, ig: _Ignition, offset: IntArray, done: int) -> None:
    """The quote through the episode: walked by the burst, carried on by the run, given back by the reversal."""
    b0, direction, w3 = ig.bid, ig.direction, ig.end
    burst_bid = b0 + direction * offset
    run_bid = _interp_ticks(b0 + direction * done, b0 + direction * ig.total_ticks, ig.run)
    rev_bid = _interp_ticks(b0 + direction * ig.total_ticks, b0, ig.rev, power=0.8)
    # The undisturbed price waits out the episode: after it, the latent path resumes from the pre-ignition
    # quote instead of wherever it drifted meanwhile (the run is transient, the reversal complete).
    _resume_from(sym, w3, b0)
    bids = np.concatenate([burst_bid, run_bid, rev_bid])
    spreads = np.concatenate([np.full(ig.burst + ig.run, ig.ask - ig.bid), sym.spread[ig.run_end + 1 : w3 + 1]])
    _override(sym, ig.k0 + 1, bids, bids + spreads)


def _momentum(ctx: _Context, sym: _Symbol, item: _Planned) -> tuple[int, int]:
    m = ctx.config.momentum
    ig = _draw_ignition(m, sym, item)
    if ig is None:
        return -1, -1
    offset, done = _sweep_book(ctx, sym, ig, _sweep_levels(sym.rng, ig.burst_ticks, ig.burst))
    _ignition_quotes(sym, ig, offset, done)
    w0, w1, w2, w3 = ig.k0, ig.burst_end, ig.run_end, ig.end
    _flow(ctx, sym, w0, w1, sym.rate * m.burst_surge, m.burst_share, ig.direction, size_mult=2.0)
    _flow(ctx, sym, w1, w2, sym.rate * m.follow_surge, m.follow_share, ig.direction)
    _flow(ctx, sym, w2, w3, sym.rate * m.unwind_surge, m.unwind_share, -ig.direction, size_mult=1.5)
    return w0, w3


def _marking(ctx: _Context, sym: _Symbol, item: _Planned) -> tuple[int, int]:
    p, rng = ctx.config.marking, sym.rng
    k0, n = item.k0, ctx.steps
    a0 = int(sym.ask[k0])
    price = float(index_to_price(a0))
    wanted = round(float(price_to_index(price * (1.0 + _uniform(rng, p.ret)))) - a0)
    # Everything printed so far was at or below some earlier ask; the close must top all of it.
    target = max(a0 + max(p.min_ticks, wanted), int(sym.ask[: k0 + 1].max()) + 1)
    if target + (BOOK_DEPTH - 1) > sym.limit_high or float(index_to_price(target)) > price * (1.0 + p.max_ret):
        return -1, -1
    asks = _interp_ticks(a0, target, n - k0, power=0.8)
    bids = np.maximum(asks - sym.spread[k0 + 1 :], sym.limit_low + (BOOK_DEPTH - 1))
    _override(sym, k0 + 1, bids, asks)
    if item.variant == "no-surge":
        _flow(ctx, sym, k0, n, sym.rate * _uniform(rng, p.quiet_surge), p.buy_share, +1, agent=True)
    else:
        surge = _uniform(rng, p.surge)
        shape = 0.5 + np.arange(n - k0) / max(1, n - k0 - 1)
        _flow(ctx, sym, k0, n, sym.rate * surge * shape, p.buy_share, +1, agent=True)
    # The closing print: a buy lifting the final ask at the last millisecond of the session.
    sym.trades.add(
        np.array([n * ctx.cad]),
        np.array([1]),
        _pareto_lots(rng, 1, sym.xmin, sym.alpha, 3000) * 2,
        px=np.array([target]),
        bid=np.array([bids[-1]]),
        ask=np.array([target]),
        tag=AGENT_FLOW,
    )
    return k0, n


# --- legitimate look-alikes ------------------------------------------------------------------------------------------
def _step_overlay(x: FloatArray, k0: int, k1: int, move: float) -> None:
    """The latent log-price moves by ``move`` evenly over steps k0..k1 and keeps it to the close."""
    x[k0 : k1 + 1] += move * np.arange(k1 - k0 + 1) / (k1 - k0)
    x[k1 + 1 :] += move


def _news(ctx: _Context, sym: _Symbol, look: _Lookalike, x: FloatArray, rng: np.random.Generator) -> bool:
    """A repricing on news: the latent price jumps and holds, on a surge of orders taking the jump's side, then
    activity stays raised (decaying) and leans its way. False: no room inside the daily limits, not enacted."""
    p = ctx.config.lookalike_params
    jump, after = look.parts
    k0, k1, k2 = look.k0, look.k0 + jump, look.end
    direction = 1 if rng.random() < 0.5 else -1
    move = _uniform(rng, p.news_move)
    if move > _room(sym, x, k0, ctx.steps, direction):
        return False
    look.direction = direction
    _step_overlay(x, k0, k1, direction * move)
    _flow(ctx, sym, k0, k1, sym.rate * _uniform(rng, p.news_surge), p.news_share, direction, rng=rng)
    decay = np.exp(-np.arange(after) * ctx.cad_s / p.news_decay_s)
    _flow(ctx, sym, k1, k2, sym.rate * p.news_after * decay, p.news_after_share, direction, rng=rng)
    return True


def _meta_order(ctx: _Context, sym: _Symbol, look: _Lookalike, x: FloatArray, rng: np.random.Generator) -> bool:
    """An institution's parent order: steady child market orders on one side (ordinary sizes) for tens of minutes,
    and the price drifts its way and stays there. False: no room inside the daily limits, not enacted."""
    p = ctx.config.lookalike_params
    k0, k1 = look.k0, look.end
    direction = 1 if rng.random() < 0.5 else -1
    drift = _uniform(rng, p.meta_drift)
    if drift > _room(sym, x, k0, ctx.steps, direction):
        return False
    _step_overlay(x, k0, k1, direction * drift)
    _flow(ctx, sym, k0, k1, sym.rate * _uniform(rng, p.meta_surge), 1.0, direction, rng=rng, agent=True)
    return True


def _execution_sizes(rng: np.random.Generator, lots: int, takers: int) -> IntArray:
    """``lots`` cut at random into ``takers`` (at most ``lots``) whole, positive sizes."""
    n = min(takers, lots)
    cuts = np.sort(rng.choice(np.arange(1, lots), n - 1, replace=False))
    sizes: IntArray = np.diff(np.concatenate([[0], cuts, [lots]])).astype(np.int64)
    return sizes


def _large_order(ctx: _Context, sym: _Symbol, look: _Lookalike, rng: np.random.Generator) -> tuple[int, int]:
    """A genuine order of several times the level depth joins the touch, rests, then the other side's market
    orders execute it at its price, its shown lots shrinking with each; the quote stays at it meanwhile, and the
    price carries on from there. The window: placed → fully executed."""
    p = ctx.config.lookalike_params
    rest, execution = look.parts
    k0 = look.k0
    side = int(rng.integers(2))  # 0: a bid, executed by sellers; 1: an ask, executed by buyers
    b0, a0 = int(sym.bid[k0]), int(sym.ask[k0])
    price = b0 if side == 0 else a0
    lots = max(1, round(sym.depth * _uniform(rng, p.large_x)))
    sizes = _execution_sizes(rng, lots, _integers(rng, p.large_takers))
    n = len(sizes)
    ts = (k0 + rest) * ctx.cad + np.sort(rng.integers(1, execution * ctx.cad + 1, n))
    # The takers trade with this order, not with the modelled queue: they consume none of it.
    taker = np.full(n, -1 if side == 0 else 1)
    full = np.full
    sym.trades.add(ts, taker, sizes, px=full(n, price), bid=full(n, b0), ask=full(n, a0), consume=False, tag=LARGE_FILL)
    steps = -(-ts // ctx.cad)
    k_last = int(steps[-1])
    executed = np.cumsum(np.bincount(steps - k0, weights=sizes, minlength=k_last - k0 + 1))
    sym.resting.append(_RestingOrder(side, price, k0, np.rint(lots - executed[:-1]).astype(np.int64), "large_order"))
    _resume_from(sym, k_last, b0)
    _override(sym, k0, np.full(k_last - k0 + 1, b0), np.full(k_last - k0 + 1, a0))
    return k0, k_last


def _quote_pull(ctx: _Context, sym: _Symbol, look: _Lookalike, rng: np.random.Generator) -> tuple[int, int]:
    """A market maker pulls its quotes for seconds: the best five thin out on both sides and the spread widens by
    a tick each side; then all is back. The window: first thinned snapshot → first one back."""
    k0, k1 = look.k0, look.end
    sym.depth_factor[k0:k1] *= _uniform(rng, ctx.config.lookalike_params.pull_depth)
    low, high = sym.limit_low + BOOK_DEPTH - 1, sym.limit_high - BOOK_DEPTH + 1
    _override(sym, k0, np.maximum(sym.bid[k0:k1] - 1, low), np.minimum(sym.ask[k0:k1] + 1, high))
    return k0, k1


#: the look-alikes that move the latent price, laid over it before it is quantised; the others set the quote
_REPRICINGS: Final = {"news": _news, "meta_order": _meta_order}
_QUOTE_LOOKALIKES: Final = {"large_order": _large_order, "quote_pull": _quote_pull}


# --- baseline order flow --------------------------------------------------------------------------------------
def _baseline_trades(ctx: _Context, sym: _Symbol) -> None:
    rng, n, cad = sym.rng, ctx.steps, ctx.cad
    eta = ctx.config.hawkes_branching
    immigrants = rng.poisson(sym.rate * (1.0 - eta) * sym.activity[1:] * ctx.cad_s)
    k = np.repeat(np.arange(1, n + 1), immigrants)
    times = [(k - 1) * cad + rng.integers(1, cad + 1, len(k))]
    generation = times[0]
    end = n * cad
    # Cluster representation of the Hawkes process: each order begets Poisson(eta) orders after an
    # exponential delay (mostly sub-second reactions, some slower); generations shrink geometrically.
    for _ in range(200):
        if len(generation) == 0:
            break
        children = rng.poisson(eta, len(generation))
        parents = np.repeat(generation, children)
        fast = rng.random(len(parents)) < 0.7
        delay = np.where(fast, rng.exponential(300.0, len(parents)), rng.exponential(4000.0, len(parents)))
        generation = parents + np.ceil(delay).astype(np.int64)
        generation = generation[generation <= end]
        times.append(generation)
    order_ts = np.sort(np.concatenate(times))
    step = -(-order_ts // cad)
    n = len(order_ts)
    side = np.where(rng.random(n) < sym.p_buy[step], 1, -1)
    fills = np.minimum(rng.geometric(0.72, n), 6)
    ts = np.repeat(order_ts, fills)
    lots = _pareto_lots(rng, len(ts), sym.xmin, sym.alpha, 3000)
    sym.trades.add(ts, np.repeat(side, fills), lots)


def _opening_print(ctx: _Context, sym: _Symbol) -> None:
    """The opening call auction: one large print at 09:00:00.000, no aggressor."""
    expected_day_lots = sym.rate * FULL_DAY_MINUTES * 60 * 1.4 * _mean_lots(sym)
    lots = max(5, round(0.02 * expected_day_lots * sym.rng.uniform(0.5, 1.5)))
    px = int(sym.bid[0])
    sym.trades.add(
        np.array([0]),
        np.array([0]),
        np.array([lots]),
        px=np.array([px]),
        bid=np.array([px]),
        ask=np.array([int(sym.ask[0])]),
    )


# --- assembly ---------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _PricedTrades:
    ts: IntArray
    side: IntArray
    lots: IntArray
    px: IntArray
    bid: IntArray
    ask: IntArray
    #: the print took from the modelled level-1 queue (the rest took nothing the queues model), and what it is
    hits: BoolArray
    tag: npt.NDArray[np.int8]


def _price_trades(ctx: _Context, sym: _Symbol) -> _PricedTrades:
    t = sym.trades
    ts = np.concatenate(t.ts)
    # Stable: trades of one millisecond keep their generation order (fills of an order stay together, the
    # marking-the-close print stays last).
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    side = np.concatenate(t.side)[order]
    lots = np.concatenate(t.lots)[order]
    px = np.concatenate(t.px)[order]
    ebid = np.concatenate(t.bid)[order]
    eask = np.concatenate(t.ask)[order]
    consume = np.concatenate(t.consume)[order]
    tag = np.concatenate(t.tag)[order]

    k = -(-ts // ctx.cad)
    kp = np.maximum(k - 1, 0)
    frac = np.where(k == 0, 1.0, (ts - kp * ctx.cad) / ctx.cad)

    def walk(path: IntArray) -> IntArray:
        d = path[k] - path[kp]
        walked: IntArray = (path[kp] + np.sign(d) * np.floor(np.abs(d) * frac + 0.5)).astype(np.int64)
        return walked

    qbid = walk(sym.bid)
    qask = np.maximum(walk(sym.ask), qbid + 1)
    explicit = px >= 0
    bid = np.where(explicit, ebid, qbid)
    ask = np.where(explicit, eask, qask)
    px = np.where(explicit, px, np.where(side < 0, bid, ask))

    consumed = np.zeros((ctx.steps + 1, 2))
    hit_bid = consume & (side < 0) & (px == sym.bid[k])
    hit_ask = consume & (side > 0) & (px == sym.ask[k])
    consumed[:, 0] = np.bincount(k[hit_bid], weights=lots[hit_bid], minlength=ctx.steps + 1)
    consumed[:, 1] = np.bincount(k[hit_ask], weights=lots[hit_ask], minlength=ctx.steps + 1)
    sym.consumed = consumed
    return _PricedTrades(ts, side, lots, px, bid, ask, hit_bid | hit_ask, tag)


def _churn_draws(rng: np.random.Generator, depth: float, churn: float, shape: tuple[int, int, int]) -> FloatArray:
    """(steps, side, level) sizes replacing level-2–5 queues, each with probability ``churn``; NaN: kept.

    A replacement is a typical queue around the equilibrium (the distribution a revealed level starts from).
    """
    chosen = rng.random(shape) < churn
    chosen[:, :, 0] = False  # level 1 keeps its queue: it is what the order flow trades against
    sizes = depth * np.exp(rng.normal(-0.125, 0.5, shape))
    draws: FloatArray = np.where(chosen, sizes, np.nan)
    return draws


@dataclass(slots=True)
class _BookFlow:
    """What happens to every queue at every step, all symbols at once: (T+1, M, 2, 5) unless noted."""

    adds: npt.NDArray[np.float32]  # lots joining
    keep: npt.NDArray[np.float32]  # 1 - fraction cancelled
    fresh: npt.NDArray[np.float32]  # a typical queue, for a level the quote reveals
    consumed: npt.NDArray[np.float32]  # (T+1, M, 2): lots the order flow took from level 1
    improve: IntArray  # (T, M, 2): ticks the best price improved by
    redrawn: npt.NDArray[np.float32] | None  # churned queues (NaN: kept); None without churn


def _book_flow(ctx: _Context, symbols: Sequence[_Symbol]) -> _BookFlow:
    n, n_symbols = ctx.steps, len(symbols)
    shape = (n + 1, n_symbols, 2, BOOK_DEPTH)
    flow = _BookFlow(
        adds=np.empty(shape, dtype=np.float32),
        keep=np.empty(shape, dtype=np.float32),
        fresh=np.empty(shape, dtype=np.float32),
        consumed=np.empty((n + 1, n_symbols, 2), dtype=np.float32),
        improve=np.empty((n, n_symbols, 2), dtype=np.int64),
        redrawn=np.empty(shape, dtype=np.float32) if ctx.config.book_churn > 0 else None,
    )
    for i, sym in enumerate(symbols):
        _draw_book_flow(ctx, sym, flow, i)
    return flow


def _draw_book_flow(ctx: _Context, sym: _Symbol, flow: _BookFlow, i: int) -> None:
    """Symbol ``i``'s share of ``flow``, from its own random stream."""
    rng, n = sym.rng, ctx.steps
    sub = (n + 1, 2, BOOK_DEPTH)
    add_mean = 2.5 * sym.xmin * 1.6 / 0.6
    # Queues relax towards ``depth`` in about a minute (busier when the market is): a cancellation event
    # takes 30 % of a queue on average, additions are Pareto-sized; the rates follow from the equilibrium.
    cancel_rate = ctx.cad_s / QUEUE_RELAXATION_S / 0.3 * sym.activity
    p_cancel = np.clip(cancel_rate, 0, 0.9)[:, None, None]
    p_add = np.repeat((cancel_rate * 0.3 * sym.depth / add_mean)[:, None], BOOK_DEPTH, axis=1)
    # Most limit orders join the best price: level 1 is refilled about as fast as the flow eats it.
    p_add[:, 0] += 0.5 * sym.rate * sym.activity * 1.4 * _mean_lots(sym) * ctx.cad_s / add_mean
    p_add = np.clip(p_add, 0, 0.9)[:, None, :]
    sizes = np.minimum(_pareto_lots(rng, (n + 1) * 2 * BOOK_DEPTH, 2.5 * sym.xmin, 1.6, 3 * sym.depth), 1e9)
    flow.adds[:, i] = np.where(rng.random(sub) < p_add, sizes.reshape(sub), 0.0)
    flow.keep[:, i] = np.where(rng.random(sub) < p_cancel, rng.uniform(0.4, 1.0, sub), 1.0)
    flow.fresh[:, i] = sym.depth * np.exp(rng.normal(-0.125, 0.5, sub))
    flow.consumed[:, i] = sym.consumed
    flow.improve[:, i, 0] = np.diff(sym.bid)
    flow.improve[:, i, 1] = -np.diff(sym.ask)
    if flow.redrawn is not None:
        flow.redrawn[:, i] = _churn_draws(rng, sym.depth, ctx.config.book_churn, sub)


def _evolve_books(ctx: _Context, symbols: Sequence[_Symbol]) -> npt.NDArray[np.float32]:
    """Queues (lots) behind the 5 levels of each side, all symbols at once: (T+1, M, 2, 5).

    Each symbol's random draws come from its own stream, so the result per symbol does not depend on the others.
    """
    n = ctx.steps
    flow = _book_flow(ctx, symbols)
    # Quote changes are sparse: shift only the (symbol, side) rows whose best price moved at that step, with
    # every gather index and replacement precomputed for all moves at once.
    move_k, move_i, move_s = np.nonzero(flow.improve)
    source = np.arange(BOOK_DEPTH) - flow.improve[move_k, move_i, move_s][:, None]
    gather = np.clip(source, 0, BOOK_DEPTH - 1)
    survives = (source >= 0) & (source < BOOK_DEPTH)
    revealed = flow.fresh[move_k + 1, move_i, move_s].astype(np.float64)
    # An improving price starts as one small order; a level revealed at the back is a typical queue.
    replacement = np.where(source < 0, np.maximum(1.0, np.floor(revealed * 0.15)), revealed)
    bounds = np.searchsorted(move_k, np.arange(n + 1)).tolist()
    column = np.arange(max(1, int(np.diff(np.asarray(bounds)).max(initial=1))))[:, None]
    queues = np.empty(flow.adds.shape, dtype=np.float32)
    q = flow.fresh[0].astype(np.float64)
    queues[0] = q
    for k in range(1, n + 1):
        lo, hi = bounds[k - 1], bounds[k]
        if hi > lo:
            rows_i, rows_s = move_i[lo:hi], move_s[lo:hi]
            shifted = q[rows_i, rows_s][column[: hi - lo], gather[lo:hi]]
            q[rows_i, rows_s] = np.where(survives[lo:hi], shifted, replacement[lo:hi])
        if flow.redrawn is not None:
            np.copyto(q, flow.redrawn[k], where=~np.isnan(flow.redrawn[k]))
        q[:, :, 0] -= flow.consumed[k]
        q *= flow.keep[k]
        q += flow.adds[k]
        np.maximum(q, 1.0, out=q)
        queues[k] = q
    return queues


@dataclass(slots=True)
class _Table:
    """One symbol's output columns, ready to merge."""

    quote_ts: IntArray
    price: FloatArray  # NaN on snapshots
    size: FloatArray
    volume: FloatArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    bid: FloatArray
    ask: FloatArray
    side: npt.NDArray[np.int8]
    seq: IntArray
    book_ts: IntArray
    book_bids: FloatArray  # (T+1, 5, 2) price, shares
    book_asks: FloatArray
    episodes: list[Episode]
    variants: list[str]  # one per episode
    prev_close: float
    lookalikes: list[tuple[str, int, int]]  # kind, start, end (epoch ms)


def queue_lots(sym: _Symbol, queues: npt.NDArray[np.float32]) -> FloatArray:
    """(T+1, 2, 5) lots the book shows of the modelled queues (at least one a level)."""
    lots: FloatArray = np.maximum(1.0, np.rint(queues * sym.depth_factor[:, :, None]))
    return lots


def _displayed_lots(sym: _Symbol, queues: npt.NDArray[np.float32]) -> FloatArray:
    """(T+1, 2, 5) lots the book shows: the modelled queues as displayed, and the resting orders on top of them
    wherever their price is within the best five."""
    lots = queue_lots(sym, queues)
    for order in sym.resting:
        ks = np.arange(order.k_from, min(order.k_to, len(lots)))
        level = (sym.bid[ks] - order.price) if order.side == 0 else (order.price - sym.ask[ks])
        visible = (level >= 0) & (level < BOOK_DEPTH)
        lots[ks[visible], order.side, level[visible]] += order.lots[: len(ks)][visible]
    return lots


def _finish(ctx: _Context, sym: _Symbol, trades: _PricedTrades, queues: npt.NDArray[np.float32]) -> _Table:
    cfg, n, cad = ctx.config, ctx.steps, ctx.cad
    start = cfg.start_ms
    levels = np.arange(BOOK_DEPTH)
    lots = _displayed_lots(sym, queues)
    bid_idx = sym.bid[:, None] - levels
    ask_idx = sym.ask[:, None] + levels
    book_bids = np.stack([index_to_price(bid_idx), lots[:, 0] * LOT_SHARES], axis=-1)
    book_asks = np.stack([index_to_price(ask_idx), lots[:, 1] * LOT_SHARES], axis=-1)

    n_trades, n_snaps = len(trades.ts), n + 1
    snap_ts = np.arange(n_snaps, dtype=np.int64) * cad
    all_ts = np.concatenate([trades.ts, snap_ts])
    is_snap = np.concatenate([np.zeros(n_trades, dtype=bool), np.ones(n_snaps, dtype=bool)])
    order = np.argsort(all_ts * 2 + is_snap, kind="stable")
    snap = is_snap[order]
    trade_price = index_to_price(trades.px)
    price = np.concatenate([trade_price, np.full(n_snaps, np.nan)])[order]
    size = np.concatenate([trades.lots * float(LOT_SHARES), np.zeros(n_snaps)])[order]
    bid = index_to_price(np.concatenate([trades.bid, sym.bid])[order])
    ask = index_to_price(np.concatenate([trades.ask, sym.ask])[order])
    side = np.concatenate([trades.side, np.zeros(n_snaps, dtype=np.int64)])[order].astype(np.int8)
    first_trade = int(np.argmax(~snap))
    high = np.fmax.accumulate(price)
    low = np.fmin.accumulate(price)
    open_ = np.full(len(price), price[first_trade])

    labels = sorted(sym.episodes, key=lambda e: (e[2], e[1]))
    episodes = [
        Episode(symbol=sym.name, venue=cfg.venue, kind=kind, start=start + k0 * cad, end=start + k1 * cad)
        for kind, k0, k1, _ in labels
    ]
    return _Table(
        quote_ts=start + all_ts[order],
        price=price,
        size=size,
        volume=np.cumsum(size),
        open=open_,
        high=high,
        low=low,
        bid=bid,
        ask=ask,
        side=side,
        seq=np.arange(len(price), dtype=np.int64),
        book_ts=start + snap_ts,
        book_bids=book_bids,
        book_asks=book_asks,
        episodes=episodes,
        variants=[variant for *_, variant in labels],
        prev_close=float(index_to_price(sym.prev_close)),
        lookalikes=[
            (kind, start + k0 * cad, start + k1 * cad)
            for kind, k0, k1 in sorted(sym.lookalikes, key=lambda label: label[1])
        ],
    )


def _snapshot_table(table: _Table, times: IntArray) -> _Table:
    """The trade-feed table as a snapshot feed (:mod:`tapewatch.generators.feed_shapes`): one quote and one book per
    snapshot time, prints aggregated per interval, no aggressor side, the quote in force before the interval."""
    index = snapshot_index(table.quote_ts, table.price, table.book_ts, times)
    row, last, before = index.row, index.last_print, index.previous_book
    volume = table.volume[row]
    price = np.where(last >= 0, table.price[np.maximum(last, 0)], np.nan)
    return _Table(
        quote_ts=times,
        price=price,
        size=interval_sizes(volume),
        volume=volume,
        open=table.open[row],
        high=table.high[row],
        low=table.low[row],
        bid=table.book_bids[before, 0, 0],
        ask=table.book_asks[before, 0, 0],
        side=np.zeros(len(times), dtype=np.int8),
        seq=np.arange(len(times), dtype=np.int64),
        book_ts=times,
        book_bids=table.book_bids[index.book],
        book_asks=table.book_asks[index.book],
        episodes=table.episodes,
        variants=table.variants,
        prev_close=table.prev_close,
        lookalikes=table.lookalikes,
    )


def _shape_feed(config: SimulationConfig, tables: list[_Table]) -> list[_Table]:
    """The tables in the configured feed profile (``trades``: as built)."""
    interval = snapshot_interval(config.feed)
    if interval is None:
        return tables
    times = snapshot_times(config.start_ms, config.end_ms, interval)
    return [_snapshot_table(table, times) for table in tables]


#: the episodes that set the quote after it is quantised (pumps move the latent price, marking the close comes last)
_QUOTE_EPISODES: Final = {
    AlertKind.SPOOFING: _spoofing,
    AlertKind.WASH_TRADING: _wash,
    AlertKind.MOMENTUM_IGNITION: _momentum,
}


def _set_quotes(
    ctx: _Context, sym: _Symbol, planned: Sequence[_Planned], looks: Sequence[_Lookalike], rng: np.random.Generator
) -> _Planned | None:
    """The episodes and look-alikes that set the quote, in time order: one that shifts the rest of the path must
    have done so before a later one reads its quote. Returns marking the close, which is built last."""
    marking: _Planned | None = None
    items: list[_Planned | _Lookalike] = [*planned, *(look for look in looks if look.kind in _QUOTE_LOOKALIKES)]
    for item in sorted(items, key=lambda item: item.k0):
        if isinstance(item, _Lookalike):
            sym.lookalikes.append((item.kind, *_QUOTE_LOOKALIKES[item.kind](ctx, sym, item, rng)))
        elif item.kind is AlertKind.MARKING_THE_CLOSE:
            marking = item
        elif item.kind in _QUOTE_EPISODES:
            window = _QUOTE_EPISODES[item.kind](ctx, sym, item)
            if window[0] >= 0:
                sym.episodes.append((item.kind, *window, item.variant))
    return marking


def _build_symbol(ctx: _Context, index: int, clean: bool) -> tuple[_Symbol, _PricedTrades]:
    sym, x = _new_symbol(ctx, index)
    planned = _plan(ctx, sym, clean)
    looks, look_rng = _plan_lookalikes(ctx, index, planned)
    pumps: list[tuple[_Planned, tuple[int, int, int]]] = []
    for item in planned:
        if item.kind is AlertKind.PUMP_AND_DUMP:
            pumps.append((item, _pump_overlay(ctx, sym, item, x)))
    # After the pumps, so that a pump's draws never depend on them; each checks its room on the path as it is.
    for look in looks:
        if look.kind in _REPRICINGS and _REPRICINGS[look.kind](ctx, sym, look, x, look_rng):
            sym.lookalikes.append((look.kind, look.k0, look.end))
            if look.kind == "news":
                sym.repricings.append((look.k0, look.direction))
    _quantise(sym, x)
    marking = _set_quotes(ctx, sym, planned, looks, look_rng)
    _opening_print(ctx, sym)
    _baseline_trades(ctx, sym)
    for pump, (k0, k1, k2) in pumps:
        _pump_trades(ctx, sym, pump.variant, k0, k1, k2)
        sym.episodes.append((AlertKind.PUMP_AND_DUMP, k0, k2, pump.variant))
        sym.runups.append((k0, k1))
    if marking is not None:
        # Last: its target must top every price printed before it, whatever the other episodes did.
        window = _marking(ctx, sym, marking)
        if window[0] >= 0:
            sym.episodes.append((AlertKind.MARKING_THE_CLOSE, *window, marking.variant))
    return sym, _price_trades(ctx, sym)


# --- the simulation ------------------------------------------------------------------------------------------------
QUOTE_EVENT: Final = 0
BOOK_EVENT: Final = 1
EPISODE_EVENT: Final = 2
_SIDES: Final[tuple[str | None, str | None, str | None]] = (None, "B", "S")  # index by side code (0, 1, -1)

Row = dict[str, object]


def _interleave(tables: Sequence[_Table]) -> tuple[IntArray, npt.NDArray[np.int8], npt.NDArray[np.int32]]:
    """Every symbol's quotes, books and episode ends in emission order: (time, event kind, symbol index)."""
    per_symbol: list[tuple[IntArray, npt.NDArray[np.int8], IntArray]] = []
    for table in tables:
        ts = np.concatenate([table.quote_ts, table.book_ts, np.array([e.end for e in table.episodes], dtype=np.int64)])
        kind = np.concatenate(
            [
                np.full(len(table.quote_ts), QUOTE_EVENT, dtype=np.int8),
                np.full(len(table.book_ts), BOOK_EVENT, dtype=np.int8),
                np.full(len(table.episodes), EPISODE_EVENT, dtype=np.int8),
            ]
        )
        order = np.argsort(ts * 4 + kind, kind="stable")
        per_symbol.append((ts[order], kind[order], order))
    sym_of = np.concatenate([np.full(len(p[0]), i, dtype=np.int32) for i, p in enumerate(per_symbol)])
    all_ts = np.concatenate([p[0] for p in per_symbol])
    all_kind = np.concatenate([p[1] for p in per_symbol])
    # Per symbol the events are already in order; a stable sort by time interleaves symbols by index.
    order = np.argsort(all_ts, kind="stable")
    return all_ts[order], all_kind[order], sym_of[order]


class Simulation:
    """A generated session: columnar tables in emission order plus the interleaving of record types.

    ``rows()`` yields plain dicts whose JSON (orjson) is byte-identical to the record's ``to_json()``: the
    fast path for publishers. ``records()`` yields validated records.
    """

    def __init__(
        self,
        config: SimulationConfig,
        tables: Sequence[_Table],
        clean: Sequence[int] = (),
        news: tuple[tuple[NewsItem, ...], tuple[str, ...]] = ((), ()),
    ) -> None:
        self.config = config
        #: the session's news items in publication order (no market record depends on them), and what each is
        #: (:data:`tapewatch.generators.news.NEWS_LABELS`)
        self.news, self.news_labels = news
        self.symbols = config.symbol_names
        #: symbols that were kept free of manipulation
        self.clean_symbols: tuple[str, ...] = tuple(self.symbols[i] for i in sorted(clean))
        event_ts, event_kind, event_symbol = _interleave(tables)
        self.event_kind: npt.NDArray[np.int8] = event_kind
        self.event_symbol: npt.NDArray[np.int32] = event_symbol
        self.event_ts: IntArray = event_ts

        # Quote/book rows of every symbol, concatenated, then permuted into emission order.
        q = self._emission(QUOTE_EVENT, [len(t.quote_ts) for t in tables])
        self.quote_symbol = np.concatenate([np.full(len(t.quote_ts), i, np.int32) for i, t in enumerate(tables)])[q]
        self.quote_ts = np.concatenate([t.quote_ts for t in tables])[q]
        self.price = np.concatenate([t.price for t in tables])[q]
        self.size = np.concatenate([t.size for t in tables])[q]
        self.volume = np.concatenate([t.volume for t in tables])[q]
        self.open = np.concatenate([t.open for t in tables])[q]
        self.high = np.concatenate([t.high for t in tables])[q]
        self.low = np.concatenate([t.low for t in tables])[q]
        self.bid = np.concatenate([t.bid for t in tables])[q]
        self.ask = np.concatenate([t.ask for t in tables])[q]
        self.side = np.concatenate([t.side for t in tables])[q]
        self.seq = np.concatenate([t.seq for t in tables])[q]
        self.prev_close: tuple[float, ...] = tuple(t.prev_close for t in tables)

        b = self._emission(BOOK_EVENT, [len(t.book_ts) for t in tables])
        self.book_symbol = np.concatenate([np.full(len(t.book_ts), i, np.int32) for i, t in enumerate(tables)])[b]
        self.book_ts = np.concatenate([t.book_ts for t in tables])[b]
        self.book_bids = np.concatenate([t.book_bids for t in tables])[b]
        self.book_asks = np.concatenate([t.book_asks for t in tables])[b]
        labelled = sorted(
            (pair for t in tables for pair in zip(t.episodes, t.variants, strict=True)),
            key=lambda pair: (pair[0].end, self.symbols.index(pair[0].symbol)),
        )
        self.episodes: tuple[Episode, ...] = tuple(episode for episode, _ in labelled)
        #: each episode's variant (:data:`VARIANTS`), aligned with ``episodes``; the record has no field for it
        self.episode_variants: tuple[str, ...] = tuple(variant for _, variant in labelled)
        #: the legitimate look-alikes (symbol, kind, start, end in epoch ms), in time order; no record carries them
        self.lookalikes: tuple[tuple[str, str, int, int], ...] = tuple(
            sorted(
                (
                    (name, kind, start, end)
                    for name, t in zip(self.symbols, tables, strict=True)
                    for kind, start, end in t.lookalikes
                ),
                key=lambda row: (row[2], self.symbols.index(row[0])),
            )
        )

    def _emission(self, kind: int, counts: list[int]) -> IntArray:
        """Where each event of ``kind`` is in the symbols' concatenated rows (``counts`` per symbol), in emission
        order."""
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        mask = self.event_kind == kind
        syms = self.event_symbol[mask]
        # Within a symbol these events are emitted in their table order, so rank = running count per symbol.
        rank = np.empty(len(syms), dtype=np.int64)
        for s in range(len(counts)):
            hits = np.flatnonzero(syms == s)
            rank[hits] = np.arange(len(hits))
        result: IntArray = offsets[syms] + rank
        return result

    def __len__(self) -> int:
        return len(self.event_kind)

    @property
    def counts(self) -> dict[str, int]:
        return {"quotes": len(self.quote_ts), "books": len(self.book_ts), "episodes": len(self.episodes)}

    def _chunks(self, chunk: int) -> Iterator[tuple[slice, slice, slice]]:
        """The events in chunks of ``chunk``: per chunk, its slices of the event, quote and book columns."""
        qi = bi = 0
        for begin in range(0, len(self.event_kind), chunk):
            events = slice(begin, begin + chunk)
            kinds = self.event_kind[events]
            nq = int(np.count_nonzero(kinds == QUOTE_EVENT))
            nb = int(np.count_nonzero(kinds == BOOK_EVENT))
            yield events, slice(qi, qi + nq), slice(bi, bi + nb)
            qi += nq
            bi += nb

    def _quote_rows(self, q: slice) -> list[Row]:
        """The fields of quotes ``q`` (the columns become Python lists whole: see :meth:`rows`)."""
        venue, symbols, prev = self.config.venue, self.symbols, self.prev_close
        return [
            {
                "symbol": symbols[s],
                "venue": venue,
                "ts": ts,
                "price": None if math.isnan(price) else price,  # NaN marks a no-trade snapshot
                "size": size,
                "volume": volume,
                "open": open_,
                "high": high,
                "low": low,
                "prev_close": prev[s],
                "bid": bid,
                "ask": ask,
                "side": _SIDES[side],
                "seq": seq,
            }
            for s, ts, price, size, volume, open_, high, low, bid, ask, side, seq in zip(
                self.quote_symbol[q].tolist(),
                self.quote_ts[q].tolist(),
                self.price[q].tolist(),
                self.size[q].tolist(),
                self.volume[q].tolist(),
                self.open[q].tolist(),
                self.high[q].tolist(),
                self.low[q].tolist(),
                self.bid[q].tolist(),
                self.ask[q].tolist(),
                self.side[q].tolist(),
                self.seq[q].tolist(),
                strict=True,
            )
        ]

    def rows(self, chunk: int = 8192) -> Iterator[tuple[int, int, Row]]:
        """``(event kind, symbol index, fields)`` in emission order; ``orjson.dumps(fields)`` is the wire form.

        Columns become Python lists one chunk at a time: per-element numpy indexing costs more than the dict.
        """
        venue, symbols = self.config.venue, self.symbols
        episodes = iter(self.episodes)
        for events, q, b in self._chunks(chunk):
            quotes = zip(self.quote_symbol[q].tolist(), self._quote_rows(q), strict=True)
            books = zip(
                self.book_symbol[b].tolist(),
                self.book_ts[b].tolist(),
                self.book_bids[b].tolist(),
                self.book_asks[b].tolist(),
                strict=True,
            )
            for kind in self.event_kind[events].tolist():
                if kind == QUOTE_EVENT:
                    s, fields = next(quotes)
                    yield QUOTE_EVENT, s, fields
                elif kind == BOOK_EVENT:
                    s, ts, bids, asks = next(books)
                    yield BOOK_EVENT, s, {"symbol": symbols[s], "venue": venue, "ts": ts, "bids": bids, "asks": asks}
                else:
                    episode = next(episodes)
                    yield EPISODE_EVENT, symbols.index(episode.symbol), dict(episode.__dict__)

    def encoded(self, chunk: int = 4096) -> Iterator[tuple[list[int], list[int], list[bytes]]]:
        """Per chunk of events: kinds, symbol indices and JSON payloads, in emission order.

        The payloads are byte-identical to ``record.to_json()`` (the tests hold them to it over whole sessions)
        at a fraction of the cost: quotes are one dict and one orjson call each, and the books of a chunk are
        serialised by a single orjson call over their numpy block, then cut into records.
        """
        venue_json = orjson.dumps(self.config.venue)
        names_json = [orjson.dumps(name) for name in self.symbols]
        dumps = orjson.dumps
        episodes = iter(self.episodes)
        for events, q, b in self._chunks(chunk):
            kinds = self.event_kind[events].tolist()
            quotes = iter([dumps(fields) for fields in self._quote_rows(q)])
            books = iter(self._encoded_books(b, names_json, venue_json))
            payloads = [
                next(quotes) if kind == QUOTE_EVENT else next(books) if kind == BOOK_EVENT else next(episodes).to_json()
                for kind in kinds
            ]
            yield kinds, self.event_symbol[events].tolist(), payloads

    def _encoded_books(self, b: slice, names_json: Sequence[bytes], venue_json: bytes) -> list[bytes]:
        """The JSON of books ``b``: one orjson call over their numpy block, cut into records."""
        if b.stop == b.start:
            return []
        block = np.stack([self.book_bids[b], self.book_asks[b]], axis=1)  # (nb, 2 sides, 5, 2)
        # "[[[[p,q],…],[[p,q],…]],[[[…": rows part at "]]],[[[", a row's sides at "]],[[".
        blob = orjson.dumps(block, option=orjson.OPT_SERIALIZE_NUMPY)[4:-4]
        return [
            b'{"symbol":%s,"venue":%s,"ts":%d,"bids":[[%s]],"asks":[[%s]]}'
            % (names_json[s], venue_json, ts, *part.split(b"]],[[", 1))
            for s, ts, part in zip(
                self.book_symbol[b].tolist(), self.book_ts[b].tolist(), blob.split(b"]]],[[["), strict=True
            )
        ]

    def records(self, validate: bool = True) -> Iterator[Quote | Book | Episode]:
        """Records in emission order, validated against their contracts unless ``validate`` is False."""
        builders: tuple[type[Quote], type[Book], type[Episode]] = (Quote, Book, Episode)
        for kind, _, row in self.rows():
            cls = builders[kind]
            yield cls.model_validate(row) if validate else cls.model_construct(**row)  # type: ignore[arg-type]

    # --- frames (offline use, tests) ------------------------------------------------------------------------
    def quotes_frame(self) -> pd.DataFrame:
        """Every quote (trades and snapshots) in emission order; ``side`` is "B", "S" or None."""
        names = np.array(self.symbols, dtype=object)
        sides = np.array([None, "B", "S"], dtype=object)
        return pd.DataFrame(
            {
                "symbol": names[self.quote_symbol],
                "ts": self.quote_ts,
                "price": self.price,
                "size": self.size,
                "volume": self.volume,
                "open": self.open,
                "high": self.high,
                "low": self.low,
                "prev_close": np.array(self.prev_close)[self.quote_symbol],
                "bid": self.bid,
                "ask": self.ask,
                "side": sides[self.side.astype(np.int64)],
                "seq": self.seq,
            }
        )

    def trades_frame(self) -> pd.DataFrame:
        frame = self.quotes_frame()
        return frame[frame["price"].notna()].reset_index(drop=True)

    def books_frame(self) -> pd.DataFrame:
        """Book snapshots with the replay level columns (bid1..bid5, bidsz1..bidsz5, ask1.., asksz1..)."""
        names = np.array(self.symbols, dtype=object)
        columns: dict[str, object] = {"symbol": names[self.book_symbol], "ts": self.book_ts}
        for side, levels in (("bid", self.book_bids), ("ask", self.book_asks)):
            for i in range(BOOK_DEPTH):
                columns[f"{side}{i + 1}"] = levels[:, i, 0]
            for i in range(BOOK_DEPTH):
                columns[f"{side}sz{i + 1}"] = levels[:, i, 1]
        return pd.DataFrame(columns)

    def ticks_frame(self) -> pd.DataFrame:
        """The replay file layout: one row per trade (price, size, side) and one per book snapshot (levels),
        in emission order. No-trade snapshot quotes are left out: their bid/ask are the book rows' level 1."""
        trades = self.trades_frame()[["symbol", "ts", "price", "size", "side"]]
        books = self.books_frame()
        # Emission positions keep trades before the snapshot book of the same millisecond.
        quote_pos = np.flatnonzero(self.event_kind == QUOTE_EVENT)[~np.isnan(self.price)]
        book_pos = np.flatnonzero(self.event_kind == BOOK_EVENT)
        frame = pd.concat([trades, books], ignore_index=True, sort=False)
        order = np.argsort(np.concatenate([quote_pos, book_pos]), kind="stable")
        frame = frame.iloc[order].reset_index(drop=True)
        return frame[list(TICK_COLUMNS)]

    def episodes_frame(self) -> pd.DataFrame:
        """The ground truth; with ``variants`` configured, a ``variant`` column after the usual ones."""
        return episodes_frame(self.episodes, self.episode_variants if self.config.variants else None)

    def news_frame(self) -> pd.DataFrame:
        """The news items with their labels (:data:`tapewatch.generators.news.NEWS_COLUMNS`), in publication order."""
        return news_frame(self.news, self.news_labels)

    def lookalikes_frame(self) -> pd.DataFrame:
        """The labelled legitimate look-alikes (``symbol``, ``kind`` one of :data:`LOOKALIKES`, ``start``, ``end``
        in epoch ms), in time order; empty, with those columns, without look-alikes."""
        rows = self.lookalikes
        return pd.DataFrame(
            {
                "symbol": [row[0] for row in rows],
                "kind": [row[1] for row in rows],
                "start": pd.array([row[2] for row in rows], dtype="int64"),
                "end": pd.array([row[3] for row in rows], dtype="int64"),
            },
            columns=list(LOOKALIKE_COLUMNS),
        )


TICK_COLUMNS: Final[tuple[str, ...]] = (
    "symbol",
    "ts",
    "price",
    "size",
    "side",
    *(f"{side}{kind}{i}" for side in ("bid", "ask") for kind in ("", "sz") for i in range(1, BOOK_DEPTH + 1)),
)
EPISODE_COLUMNS: Final[tuple[str, ...]] = ("symbol", "venue", "kind", "start", "end", "start_iso", "end_iso")
LOOKALIKE_COLUMNS: Final[tuple[str, ...]] = ("symbol", "kind", "start", "end")


def iso_ms(epoch_ms: int) -> str:
    """``2024-01-02T09:00:00.000+08:00``: the exchange's local time, unambiguous thanks to the offset."""
    return datetime.fromtimestamp(epoch_ms / 1000, TAIPEI).isoformat(timespec="milliseconds")


def episodes_frame(episodes: Sequence[Episode], variants: Sequence[str] | None = None) -> pd.DataFrame:
    """Ground truth table: symbol, venue, kind, start, end (epoch ms), start_iso, end_iso (Asia/Taipei), and
    ``variant`` when ``variants`` (one per episode) is given."""
    frame = pd.DataFrame(
        {
            "symbol": [e.symbol for e in episodes],
            "venue": [e.venue for e in episodes],
            "kind": [str(e.kind) for e in episodes],
            "start": pd.array([e.start for e in episodes], dtype="int64"),
            "end": pd.array([e.end for e in episodes], dtype="int64"),
            "start_iso": [iso_ms(e.start) for e in episodes],
            "end_iso": [iso_ms(e.end) for e in episodes],
        },
        columns=list(EPISODE_COLUMNS),
    )
    if variants is not None:
        frame["variant"] = list(variants)
    return frame


def generate(config: SimulationConfig) -> Simulation:
    """Run the whole session (vectorised per symbol, books for all symbols at once)."""
    return generate_built(config)[0]


@dataclass(frozen=True, slots=True)
class Built:
    """The session's symbols as built, for what is drawn on top of it (:mod:`tapewatch.generators.sim_orders`): each
    symbol's model (quote path, resting orders, episodes in steps), its priced prints, its queues (T+1, 2, 5)."""

    cadence_ms: int
    symbols: list[_Symbol]
    trades: list[_PricedTrades]
    queues: list[npt.NDArray[np.float32]]


def generate_built(config: SimulationConfig) -> tuple[Simulation, Built]:
    """:func:`generate`, and the symbols as built."""
    ctx = _Context(config)
    plan_rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(1,)))
    n_clean = round(config.clean_fraction * config.symbols)
    clean = set(plan_rng.permutation(config.symbols)[:n_clean].tolist())
    built = [_build_symbol(ctx, i, i in clean) for i in range(config.symbols)]
    queues = _evolve_books(ctx, [sym for sym, _ in built])
    tables = [_finish(ctx, sym, trades, queues[:, i]) for i, (sym, trades) in enumerate(built)]
    news = _news_items(config, [sym for sym, _ in built])
    simulation = Simulation(config, _shape_feed(config, tables), sorted(clean), news)
    parts = Built(
        config.cadence_ms, [s for s, _ in built], [t for _, t in built], [queues[:, i] for i in range(len(built))]
    )
    return simulation, parts


#: the news streams' spawn keys start with this (0: the symbols', 1: the clean choice, 2: the look-alikes')
_NEWS_KEY: Final = 3


def _news_items(config: SimulationConfig, symbols: Sequence[_Symbol]) -> tuple[tuple[NewsItem, ...], tuple[str, ...]]:
    """The session's news items (:mod:`tapewatch.generators.news`) and their labels; none without ``news``."""
    if not config.news:
        return (), ()
    start, cad = config.start_ms, config.cadence_ms
    plans = [
        SymbolPlan(
            sym.name,
            repricings=[(start + k * cad, direction) for k, direction in sym.repricings],
            runups=[(start + k0 * cad, start + k1 * cad) for k0, k1 in sym.runups],
        )
        for sym in symbols
    ]
    wire = NewsWire("simulator", config.seed, config.day, config.venue, "zh-TW")
    keys = [(_NEWS_KEY, i) for i in range(len(plans))]
    return session_news(config.news_params, wire, plans, keys, (config.start_ms, config.end_ms))


def simulate(config: SimulationConfig, validate: bool = True) -> Iterator[Quote | Book | Episode]:
    """Quote, Book and Episode records of one session, in event-time order across symbols."""
    return generate(config).records(validate)
