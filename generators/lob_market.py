"""An order-book market: a second labelled generator, written apart from :mod:`tapewatch.generators.simulator`.

Why a second one: detectors tuned on one generator learn its signatures (its episode shapes, its book churn, its
print sizes), and users will point them at data no generator of ours made. This one shares no model with the
simulator. Prices are not drawn: they come out of an order-by-order limit order book, and every manipulation is
*enacted* by an agent placing, crossing and cancelling orders in that book, so what a detector sees is what the
agent's orders did to the tape and the book, not a prescribed signature. Numbers from it are reported apart from
the simulator's and were never used for tuning (``tapewatch eval matrix --generator lob``).

The market, per symbol (every symbol draws its own parameters from its own random stream):

* **Instrument**: a first price log-uniform 2–800 on a decimal tick of 1, 2 or 5 × 10ᵏ chosen so that one tick
  is 1–25 bps; a lot of 1, 10, 100 or 1,000 units.
* **Noise flow** in the spirit of Cont, Stoikov & Talreja (2010): limit orders arrive at λ per side per second,
  placed a power-law number of ticks behind the best (some improve the spread); each resting order is cancelled
  at rate θ; market orders arrive at μ and walk the book, one print per resting order they meet, all in one
  millisecond. Order sizes are log-normal in lots.
* **Price formation**: a market order buys with probability ½ + ⅓·tanh(κ·(fundamental − mid)) + 0.15·(level 1–5
  imbalance) + 0.1·tanh(last minute's return): value traders, book readers and trend followers. The
  log-fundamental is a random walk whose volatility switches between calm, normal and agitated regimes (a Markov
  chain, mean stays of 10–30 min), which also scale activity.
* **Legitimate look-alikes on every symbol, labelled apart from manipulation** (:meth:`LobSession.lookalikes_frame`;
  the kinds are :data:`tapewatch.generators.simulator.LOOKALIKES`, the simulator's; ``lookalikes=False`` leaves out the
  two the order book's history did not have): ``news`` (the fundamental jumps 1.5–5 % and holds, activity triples for
  five minutes, ~0.4 per symbol-day), ``meta_order`` (an institution's parent order buying or selling 3–8 % of the day's
  volume over 20–60 minutes through market orders), ``large_order`` (a genuine order of 3–8× the level's typical size
  rests at the touch and a taker's market orders execute it over 10–90 s; what is left after three minutes is cancelled)
  and, on about half the symbols, a market maker who keeps a large quote (4–10× the typical level) at level 2 on both
  sides, moves it whenever the touch moves, and every 5–20 minutes pulls both quotes for 2–10 s (``quote_pull``).
* **News items** (``news=True``; :mod:`tapewatch.generators.news`, English headlines): one per news repricing, published
  1 min before to 2 min after the jump, background items that move nothing, and a promotional item for 30 % of
  the labelled pumps; in :attr:`LobSession.news` with their labels, drawn from streams of their own (the tapes of
  a seed are the same with and without them).
* **Books** are published at most every ``book_ms`` when the best five changed (a depth stream); trades as they
  print, with the aggressor side. Snapshot feeds (``twse-mis``, ``snapshot-1s``) are shaped from them by
  :mod:`tapewatch.generators.feed_shapes`' rules: the last price, the size since the previous snapshot, no side, the
  last book at or before the snapshot.

Manipulators (labelled; a symbol gets one to three episodes, a ``clean_fraction`` of the symbols none; none in
the first ``quiet_open_s``; the truth window runs from the agent's first order to its last):

* ``pump_and_dump`` — buys until the price is up 3–12 % (market orders, or with variant ``ladder`` mostly limit
  buys stepping the bid up), over 3–12 minutes or, variant ``slow``, 15–30; then sells it back with market
  orders over 1–4 minutes.
* ``spoofing`` — 2–6 cycles: a limit order of 0.5–2× the side's whole visible depth (what it takes to tilt the
  book, as in the Sarao and Coscia cases) at level 1, 2 or 3, resting 1–6 s
  (``short``) or 10–60 s (``long``), while the agent sells (buys) on the other side; then cancelled.
* ``wash_trading`` — prints between two of the agent's own accounts (through the firm, a ring of three owners'
  accounts now and then, each print between the next two in turn) at the touch or inside the spread, one clip
  size (±20 % with variant ``jitter``), every 2–15 s for 2–10 minutes, aggressor sides alternating or random; the
  book is not touched (the pair crosses off book and reports to the tape).
* ``marking_the_close`` — moves the price 1–4 % in the last 2–10 minutes before the close with market orders,
  gradually (``ramp``) or mostly in the final minute (``late``), up or down.
* ``quote_stuffing`` (``quote_stuffing=True``; on about half the manipulated symbols, beside their other episodes) —
  one to three bursts of 2–10 s, 5–30 s apart, each of 20–150 small orders a second (one to two lots) placed at the
  touch (``touch``) or one to five ticks behind it (``away``), on one side or both, each one's size taken back
  5–500 ms later (the ledger cancels the newest of the account's orders at a price first, so an order id may rest
  until the burst's last cancel at its price); what the touch meets meanwhile executes. Drawn from a stream of its
  own: a symbol without one has the same tapes with and without the option, one with one the same up to its first
  order.

>>> sim = generate(LobConfig(symbols=2, minutes=40, seed=3, quiet_open_s=600))
>>> ticks = sim.ticks_frame()
>>> sorted(ticks.columns[:5])
['price', 'side', 'size', 'symbol', 'ts']
>>> bool((ticks["ts"].diff().dropna() >= 0).all())
True
>>> set(ticks["side"].dropna()) <= {"B", "S"}
True
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Final

import numpy as np
import pandas as pd

from tapewatch.generators.feed_shapes import snapshot_index, snapshot_interval, snapshot_times
from tapewatch.generators.news import NewsParams, NewsWire, SymbolPlan, news_frame, session_news
from tapewatch.generators.order_ledger import (
    ANYONE,
    OUTSIDE,
    Clients,
    OrderLedger,
    Participant,
    account_refs,
    accounts_frame,
    drop_copy_frame,
    execution_reports,
    order_events,
    orders_frame,
    orders_frame_of,
    ring_pair,
)
from tapewatch.generators.simulator import EPISODE_COLUMNS, LOOKALIKES, TICK_COLUMNS, iso_ms
from tapewatch.records import (
    AccountRef,
    AlertKind,
    ExecutionReport,
    NewsItem,
    OrderBookEvent,
)

LEVELS: Final = 5
TAIPEI: Final = timezone(timedelta(hours=8))
#: the kinds a manipulated symbol draws its episodes from (the quote stuffers, with ``quote_stuffing``, are drawn apart)
KINDS: Final[tuple[AlertKind, ...]] = (
    AlertKind.PUMP_AND_DUMP,
    AlertKind.SPOOFING,
    AlertKind.WASH_TRADING,
    AlertKind.MARKING_THE_CLOSE,
)


@dataclass(frozen=True, slots=True)
class LobConfig:
    """One session of the order-book market; the same config (seed included) gives the same session."""

    symbols: int = 16
    seed: int = 0
    minutes: float = 210.0
    day: date = date(2024, 1, 2)
    #: the session ends here (Asia/Taipei), so marking the close is at a venue's close
    close_time: time = time(13, 30)
    feed: str = "trades"
    venue: str = "sim"
    clean_fraction: float = 0.35
    quiet_open_s: float = 2_700.0
    episode_gap_s: float = 300.0
    book_ms: int = 250
    #: the large genuine orders and the market makers' quote pulls (news and meta-orders are always there)
    lookalikes: bool = True
    #: news items (:mod:`tapewatch.generators.news`, English headlines: the instruments are no venue's in particular):
    #: one per news repricing, background news, touting during some pumps; drawn from streams of their own
    news: bool = True
    news_params: NewsParams = field(default_factory=NewsParams)
    #: the orders one by one (:mod:`tapewatch.generators.order_ledger`): the market-by-order feed and a firm's drop
    #: copy, drawn from streams of their own (the tapes are the same without them)
    orders: bool = False
    #: the share of the noise flow's orders, and of the agents, that are the firm's clients'
    firm_share: float = 0.3
    firm_agents: float = 0.5
    #: the console tenant the firm's drop copy belongs to
    tenant: str = "firm"
    #: quote-stuffing episodes (:class:`QuoteStuffer`) on about half the manipulated symbols (off: the sessions the
    #: trade-feed evaluations were measured on)
    quote_stuffing: bool = False

    def __post_init__(self) -> None:
        snapshot_interval(self.feed)  # refuses an unknown feed
        if self.symbols < 1 or self.minutes <= 0:
            raise ValueError("a session needs at least one symbol and a positive length")

    @property
    def end_ms(self) -> int:
        return int(datetime.combine(self.day, self.close_time, TAIPEI).timestamp() * 1000)

    @property
    def start_ms(self) -> int:
        return self.end_ms - int(self.minutes * 60_000)


@dataclass(slots=True)
class Instrument:
    """A symbol's draws: instrument, noise flow and volatility."""

    tick: float
    first_tick: int
    lot: int
    limit_rate: float
    market_share: float
    cancel_rate: float
    limit_lots: float
    market_lots: float
    depth_alpha: float
    daily_vol: float


def draw_instrument(rng: np.random.Generator) -> Instrument:
    price = math.exp(rng.uniform(math.log(2), math.log(800)))
    raw = price * math.exp(rng.uniform(math.log(1), math.log(25))) / 1e4
    exponent = math.floor(math.log10(raw))
    tick = min((m * 10.0**exponent for m in (1, 2, 5, 10)), key=lambda t: abs(math.log(t / raw)))
    return Instrument(
        tick=tick,
        first_tick=max(10, round(price / tick)),
        lot=int(rng.choice([1, 10, 100, 1000])),
        limit_rate=math.exp(rng.uniform(math.log(0.5), math.log(8.0))),
        market_share=rng.uniform(0.08, 0.25),
        cancel_rate=rng.uniform(0.02, 0.1),
        limit_lots=math.exp(rng.uniform(0.0, math.log(5.0))),
        market_lots=math.exp(rng.uniform(0.0, math.log(4.0))),
        depth_alpha=rng.uniform(1.0, 2.0),
        daily_vol=rng.uniform(0.01, 0.04),
    )


@dataclass(slots=True)
class Tape:
    """What one symbol published: trades and books, each in time order."""

    trade_ts: list[int] = field(default_factory=list)
    trade_price: list[float] = field(default_factory=list)
    trade_size: list[int] = field(default_factory=list)
    trade_side: list[str] = field(default_factory=list)
    book_ts: list[int] = field(default_factory=list)
    books: list[list[float]] = field(default_factory=list)
    episodes: list[tuple[str, int, int, str]] = field(default_factory=list)
    #: what else happened that is not manipulation (:data:`LOOKALIKES`, and ``market_maker`` for the session of a
    #: symbol that has one): for counting the alerts on legitimate activity
    events: list[tuple[str, int, int]] = field(default_factory=list)
    #: each news repricing's jump (ms) and direction, and each pump's first order and the end of its run-up (ms)
    repricings: list[tuple[int, int]] = field(default_factory=list)
    runups: list[tuple[int, int]] = field(default_factory=list)
    #: each episode's accounts at the firm (";"-joined; empty when it traded through other firms), and the orders
    #: one by one (``LobConfig(orders=True)``)
    episode_accounts: list[str] = field(default_factory=list)
    ledger: OrderLedger | None = None


class Draws:
    """Random numbers drawn in blocks: one numpy call per 8,192 draws instead of one per event."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._u: list[float] = []
        self._n: list[float] = []

    def uniform(self) -> float:
        if not self._u:
            self._u = self.rng.random(8_192).tolist()
        return self._u.pop()

    def normal(self) -> float:
        if not self._n:
            self._n = self.rng.standard_normal(8_192).tolist()
        return self._n.pop()

    def exp(self, mean: float) -> float:
        return -mean * math.log(1.0 - self.uniform())

    def lots(self, median: float, sigma: float) -> int:
        return max(1, round(median * math.exp(sigma * self.normal())))


#: volatility regimes: (activity factor, volatility factor); mean stay drawn per switch
REGIMES: Final[tuple[tuple[float, float], ...]] = ((0.6, 0.6), (1.0, 1.0), (2.0, 2.2))
SECONDS_PER_DAY: Final = 16_200.0


class Market:
    """One symbol's order book and noise flow; agents trade in it through :meth:`limit`, :meth:`market`,
    :meth:`cancel` and :meth:`cross`. Prices are integer ticks; sizes whole units."""

    def __init__(
        self, inst: Instrument, rng: np.random.Generator, config: LobConfig, ledger: OrderLedger | None = None
    ) -> None:
        self.inst, self.config, self.draw = inst, config, Draws(rng)
        self.ledger = ledger
        self.start_ms = config.start_ms  # read on every event: the config computes it from the calendar
        norm = sum((k + 1) ** -inst.depth_alpha for k in range(10))
        #: the noise's placement weight at each depth (ticks behind the best), power-law in the depth
        self.placement = [float((d + 1) ** -inst.depth_alpha / norm) for d in range(12)]
        #: who acts now: the agent whose step runs, and its second account (a wash's other side); None: the noise
        self.actor: Participant | None = None
        self.counterparty: Participant = OUTSIDE
        self.meta_actor: Participant | None = None
        self.tape = Tape()
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.own: dict[int, dict[int, int]] = {1: {}, -1: {}}  # agents' resting size per side and tick
        self.best_bid = inst.first_tick - 1
        self.best_ask = inst.first_tick + 1
        self.t = -300.0  # five minutes of warm-up before the session opens, not published
        self.fundamental = math.log(inst.first_tick)
        self.regime = 1
        self.boost_until = -1.0
        self.boost = 1.0
        self.extra_market = 0.0  # a meta-order's child orders per second, on top of the noise
        self.extra_side = 1
        self.memory: list[tuple[float, float]] = []  # (t, log mid) every 5 s over the last minute
        self.imbalance = 0.0
        self.dirty, self.changed_at, self.next_book = True, 0, 0
        self.recent_sizes: list[int] = []
        self._seed_book()

    # --- the book as agents see it ----------------------------------------------------------------------------
    def level(self, side: int, tick: int) -> int:
        book = self.bids if side > 0 else self.asks
        return book.get(tick, 0) + self.own[side].get(tick, 0)

    def best(self, side: int) -> int:
        return self.best_bid if side > 0 else self.best_ask

    def mid(self) -> float:
        return 0.5 * (self.best_bid + self.best_ask)

    def spread(self) -> int:
        return self.best_ask - self.best_bid

    def typical_level(self, side: int) -> float:
        ticks = [self.best(side) - side * d for d in range(LEVELS)]
        sizes = sorted(self.level(side, k) for k in ticks)
        return float(max(sizes[LEVELS // 2], self.inst.lot))

    def typical_trade(self) -> int:
        sizes = sorted(self.recent_sizes[-200:]) or [self.inst.lot * max(1, round(self.inst.market_lots))]
        return sizes[len(sizes) // 2]

    @property
    def now_ms(self) -> int:
        return self.start_ms + math.floor(self.t * 1000)

    def _seed_book(self) -> None:
        inst = self.inst
        for d in range(12):
            size = max(1, round(self.placement[d] * inst.limit_rate / inst.cancel_rate)) * inst.lot
            size *= max(1, round(inst.limit_lots))
            self.bids[self.best_bid - d] = size
            self.asks[self.best_ask + d] = size
            if self.ledger is not None:
                self.ledger.seed(1, self.best_bid - d, size, inst.limit_lots * inst.lot)
                self.ledger.seed(-1, self.best_ask + d, size, inst.limit_lots * inst.lot)

    # --- orders ---------------------------------------------------------------------------------------------------
    def limit(self, side: int, tick: int, size: int, agent: bool = False) -> int:
        """Rest ``size`` at ``tick`` (clamped to the passive side of the spread); returns the tick used."""
        tick = min(tick, self.best_ask - 1) if side > 0 else max(tick, self.best_bid + 1)
        tick = max(1, tick)
        if agent:
            self.own[side][tick] = self.own[side].get(tick, 0) + size
        else:
            book = self.bids if side > 0 else self.asks
            book[tick] = book.get(tick, 0) + size
        if side > 0:
            self.best_bid = max(self.best_bid, tick)
        else:
            self.best_ask = min(self.best_ask, tick)
        if self.ledger is not None:
            self.ledger.rest(self.now_ms, self.t >= 0, side, tick, size, (self.actor or OUTSIDE) if agent else None)
        self._touched()
        return tick

    def cancel(self, side: int, tick: int, size: int | None = None) -> None:
        """An agent takes back (up to ``size`` of) what it still has resting at ``tick``."""
        own = self.own[side]
        left = own.get(tick, 0) - (own.get(tick, 0) if size is None else min(size, own.get(tick, 0)))
        if self.ledger is not None:
            self.ledger.cancel(self.now_ms, self.t >= 0, side, tick, own.get(tick, 0) - left, self.actor or OUTSIDE)
        if left > 0:
            own[tick] = left
        else:
            own.pop(tick, None)
        self._refresh_best(side)
        self._touched()

    def visible_depth(self, side: int) -> int:
        return sum(size for _, size in self.top(side))

    def market(self, side: int, size: int, who: Participant | None = None) -> int:
        """A market order of ``side`` (+1 buy) walks the opposite book, one print per resting order met (all in
        one millisecond); returns the size filled. ``who``: whose (default the acting agent, else the noise's)."""
        opposite = -side
        book, own = (self.asks, self.own[-1]) if side > 0 else (self.bids, self.own[1])
        left = size
        ledger = self.ledger
        if ledger is not None:
            taker = None if who is ANYONE else (who or self.actor)
            ledger.begin_market(self.now_ms, self.t >= 0, side, size, taker)
        while left > 0:
            tick = self.best(opposite)
            resting = book.get(tick, 0) + own.get(tick, 0)
            if resting <= 0:
                if not self._refresh_best(opposite, beyond=tick):
                    break
                continue
            take = min(left, resting)
            self._print(tick, take, side)
            from_noise = min(take, book.get(tick, 0))
            if ledger is not None:
                ledger.execute(self.now_ms, self.t >= 0, side, tick, from_noise, take - from_noise)
            self._reduce(book, tick, from_noise)
            self._reduce(own, tick, take - from_noise)
            left -= take
            if take == resting:
                self._refresh_best(opposite, beyond=tick)
        if ledger is not None:
            ledger.end_market(self.now_ms)
        self._touched()
        return size - left

    def cross(self, side: int, tick: int, size: int) -> None:
        """A print between two accounts of one owner, reported to the tape off book: the book is untouched."""
        self._print(tick, size, side, pieces=False)
        if self.ledger is not None:
            actor, other = self.actor or OUTSIDE, self.counterparty
            buyer, seller = (actor, other) if side > 0 else (other, actor)
            self.ledger.cross(self.now_ms, self.t >= 0, side, tick, size, buyer, seller)

    def _print(self, tick: int, size: int, side: int, pieces: bool = True) -> None:
        if self.t < 0:
            return
        price = round(tick * self.inst.tick, 10)
        ts, total = self.now_ms, size
        chunk_median = self.inst.limit_lots
        while size > 0:
            piece = min(size, self.draw.lots(chunk_median, 0.9) * self.inst.lot) if pieces else size
            piece = max(piece, min(size, -(-total // 25)))  # at most ~25 prints per market order
            self.tape.trade_ts.append(ts)
            self.tape.trade_price.append(price)
            self.tape.trade_size.append(piece)
            self.tape.trade_side.append("B" if side > 0 else "S")
            self.recent_sizes.append(piece)
            size -= piece
        if len(self.recent_sizes) > 400:
            del self.recent_sizes[:200]

    @staticmethod
    def _reduce(book: dict[int, int], tick: int, size: int) -> None:
        if size <= 0:
            return
        left = book.get(tick, 0) - size
        if left > 0:
            book[tick] = left
        else:
            book.pop(tick, None)

    def _refresh_best(self, side: int, beyond: int | None = None) -> bool:
        """Re-read the side's best after a level emptied. An emptied side is refilled a few ticks past ``beyond``
        (the last level a market order took) or off the other side (liquidity providers step in); False when it
        had to be refilled."""
        ticks = [k for k in self.bids if self.bids[k] > 0] + [k for k in self.own[1] if self.own[1][k] > 0]
        if side < 0:
            ticks = [k for k in self.asks if self.asks[k] > 0] + [k for k in self.own[-1] if self.own[-1][k] > 0]
        if ticks:
            if side > 0:
                self.best_bid = max(ticks)
            else:
                self.best_ask = min(ticks)
            return True
        gap = 1 + int(self.draw.uniform() * 3)
        size = self.draw.lots(self.inst.limit_lots, 0.9) * self.inst.lot * 3
        if side > 0:
            self.best_bid = max(1, (self.best_ask if beyond is None else beyond + 1) - gap)
            self.bids[self.best_bid] = size
        else:
            self.best_ask = (self.best_bid if beyond is None else beyond - 1) + gap
            self.asks[self.best_ask] = size
        if self.ledger is not None:
            self.ledger.rest(self.now_ms, self.t >= 0, side, self.best(side), size, None)
        return False

    def _touched(self) -> None:
        self.dirty = True
        self.changed_at = self.now_ms

    # --- the noise flow -----------------------------------------------------------------------------------------
    def activity(self) -> float:
        minutes_left = (self.config.minutes * 60 - self.t) / 60
        close_lift = 1.0 + 0.6 * math.exp(-max(0.0, minutes_left) / 20)
        boost = self.boost if self.t < self.boost_until else 1.0
        return REGIMES[self.regime][0] * close_lift * boost

    def advance(self, until: float) -> None:
        """Noise events (Gillespie, rates re-read after each event) up to ``until`` seconds into the session."""
        inst, draw = self.inst, self.draw
        per_order = inst.limit_lots * inst.lot
        while True:
            act = self.activity()
            limit = inst.limit_rate * act
            market = limit * inst.market_share + self.extra_market
            depth = sum(self.bids.values()) + sum(self.asks.values())
            cancel = inst.cancel_rate * depth / per_order
            total = 2 * limit + market + cancel
            step = draw.exp(1.0 / total)
            if self.t + step > until:
                self._evolve(until - self.t)
                self.t = until
                self._publish_book()
                return
            self._evolve(step)
            self.t += step
            self._publish_book()
            u = draw.uniform() * total
            if u < 2 * limit:
                self._noise_limit(1 if u < limit else -1)
            elif u < 2 * limit + market:
                self._noise_market(u - 2 * limit < self.extra_market)
            else:
                self._noise_cancel()

    def _evolve(self, dt: float) -> None:
        """The fundamental and the regime over ``dt`` seconds; the last minute's mid path every 5 s."""
        vol = self.inst.daily_vol * REGIMES[self.regime][1] / math.sqrt(SECONDS_PER_DAY)
        self.fundamental += vol * math.sqrt(dt) * self.draw.normal()
        if self.draw.uniform() < dt / (600 + 1200 * self.draw.uniform()):
            self.regime = int(self.draw.uniform() * len(REGIMES))
        if not self.memory or self.t - self.memory[-1][0] >= 5:
            self.memory.append((self.t, math.log(self.mid())))
            if len(self.memory) > 13:
                del self.memory[0]

    def _noise_limit(self, side: int) -> None:
        inst, draw = self.inst, self.draw
        size = draw.lots(inst.limit_lots, 0.9) * inst.lot
        if self.spread() > 1 and draw.uniform() < 0.25:
            self.limit(side, self.best(side) + side, size)
            return
        u, d, acc = draw.uniform(), 0, 0.0
        while d < 9:
            acc += self.placement[d]
            if u < acc:
                break
            d += 1
        self.limit(side, self.best(side) - side * d, size)

    def _noise_market(self, meta: bool) -> None:
        inst, draw = self.inst, self.draw
        if meta:
            side = self.extra_side
        else:
            sigma10 = self.inst.daily_vol * math.sqrt(600 / SECONDS_PER_DAY)
            value = math.tanh((self.fundamental - math.log(self.mid())) / sigma10) / 3
            trend = 0.1 * math.tanh((self.memory[-1][1] - self.memory[0][1]) / (sigma10 / 3)) if self.memory else 0.0
            p_buy = min(0.95, max(0.05, 0.5 + value + 0.15 * self.imbalance + trend))
            side = 1 if draw.uniform() < p_buy else -1
        self.market(side, draw.lots(inst.market_lots, 0.8) * inst.lot, self.meta_actor if meta else None)

    def _noise_cancel(self) -> None:
        draw = self.draw
        bid_depth, ask_depth = sum(self.bids.values()), sum(self.asks.values())
        book, side = (self.bids, 1) if draw.uniform() * (bid_depth + ask_depth) < bid_depth else (self.asks, -1)
        target, acc = draw.uniform() * (bid_depth if side > 0 else ask_depth), 0.0
        for tick, size in book.items():
            acc += size
            if acc >= target:
                lots = draw.lots(self.inst.limit_lots, 0.9) * self.inst.lot
                if self.ledger is not None:
                    self.ledger.cancel(self.now_ms, self.t >= 0, side, tick, min(lots, size), None)
                self._reduce(book, tick, lots)
                break
        far = self.best(side) - side * 30
        for tick in [k for k in book if (k < far if side > 0 else k > far)]:
            if self.ledger is not None:
                self.ledger.cancel(self.now_ms, self.t >= 0, side, tick, book[tick], None)
            del book[tick]
        self._refresh_best(side)
        self._touched()

    # --- publishing ---------------------------------------------------------------------------------------------
    def top(self, side: int) -> list[tuple[int, int]]:
        book, own = (self.bids, self.own[1]) if side > 0 else (self.asks, self.own[-1])
        ticks = sorted({*book, *own}, reverse=side > 0)
        levels = [(k, book.get(k, 0) + own.get(k, 0)) for k in ticks]
        return [(k, s) for k, s in levels if s > 0][:LEVELS]

    def _publish_book(self) -> None:
        if not self.dirty:
            return
        now = self.now_ms
        if now < self.next_book:
            return
        stamp = max(self.next_book, self.changed_at)
        if stamp >= now:
            return
        bids, asks = self.top(1), self.top(-1)
        depth_b, depth_a = sum(s for _, s in bids), sum(s for _, s in asks)
        self.imbalance = (depth_b - depth_a) / max(1, depth_b + depth_a)
        if self.t >= 0:
            row = [math.nan] * (4 * LEVELS)
            for i, (k, s) in enumerate(bids):
                row[i], row[LEVELS + i] = round(k * self.inst.tick, 10), float(s)
            for i, (k, s) in enumerate(asks):
                row[2 * LEVELS + i], row[3 * LEVELS + i] = round(k * self.inst.tick, 10), float(s)
            stamp = max(stamp, self.start_ms)
            self.tape.book_ts.append(stamp)
            self.tape.books.append(row)
        self.dirty, self.next_book = False, stamp + self.config.book_ms


# --- agents ---------------------------------------------------------------------------------------------------------
class Agent:
    """Something that acts in a market at times of its own choosing: ``step`` acts at ``market.t`` and returns
    when it wants to act next (seconds into the session), None when it is done."""

    kind: AlertKind | None = None
    variant: str = ""
    #: whose orders these are: its account (and a second, for a wash) at the firm, or someone at another firm
    participants: tuple[Participant, ...] = (OUTSIDE,)

    def __init__(self, start: float) -> None:
        self.start = start
        self.first_ms = -1

    def step(self, m: Market) -> float | None:
        raise NotImplementedError

    def acted(self, m: Market) -> None:
        if self.first_ms < 0:
            self.first_ms = m.now_ms

    def label(self, m: Market, end_ms: int | None = None) -> None:
        if self.kind is not None and self.first_ms >= 0:
            m.tape.episodes.append((str(self.kind), self.first_ms, end_ms or m.now_ms, self.variant))
            m.tape.episode_accounts.append(";".join(p.account for p in self.participants if p.account is not None))


class Pump(Agent):
    """Buys the price up along a convex path, then dumps it."""

    kind = AlertKind.PUMP_AND_DUMP

    def __init__(self, start: float, draw: Draws) -> None:
        super().__init__(start)
        self.variant = ("market", "ladder", "slow")[int(draw.uniform() * 3)]
        self.rise = 0.03 + 0.09 * draw.uniform()
        self.length = (900 + 900 * draw.uniform()) if self.variant == "slow" else (180 + 540 * draw.uniform())
        self.dump_length = 60 + 180 * draw.uniform()
        self.gap = 0.8 + 2.5 * draw.uniform()
        self.clip = 1.0 + 3.0 * draw.uniform()
        self.m0 = self.peak = 0.0
        self.phase, self.dump_start = "up", 0.0
        self.orders: list[tuple[int, int]] = []

    @classmethod
    def budget(cls) -> float:
        return 1_800 + 240 + 60

    def step(self, m: Market) -> float | None:
        if self.phase == "up":
            return self._up(m)
        return self._dump(m)

    def _up(self, m: Market) -> float:
        draw = m.draw
        if self.first_ms < 0:
            self.m0 = m.mid()
        self.acted(m)
        frac = (m.t - self.start) / self.length
        if frac >= 1 or m.mid() >= self.m0 * (1 + self.rise):
            for tick, size in self.orders:
                m.cancel(1, tick, size)
            self.phase, self.peak, self.dump_start = "dump", m.mid(), m.t + 60 * draw.uniform()
            m.tape.runups.append((self.first_ms, m.now_ms))
            return self.dump_start
        behind = m.mid() < self.m0 * (1 + self.rise * frac**1.5)
        self.clip = min(self.clip * 1.25, 50.0) if behind else max(1.0, self.clip / 1.1)
        size = max(1, round(self.clip * m.inst.market_lots * (0.5 + draw.uniform()))) * m.inst.lot
        size = min(size, max(m.inst.lot, m.visible_depth(-1) // 2))
        if behind:
            if self.variant == "ladder" and draw.uniform() < 0.5:
                self.orders.append((m.limit(1, m.best_bid + 1, size, agent=True), size))
            else:
                m.market(1, size)
        elif draw.uniform() < 0.3:
            self.orders.append((m.limit(1, m.best_bid, size, agent=True), size))
        return m.t + draw.exp(self.gap * (1 - 0.6 * frac))

    def _dump(self, m: Market) -> float | None:
        done = m.t - self.dump_start >= self.dump_length or m.mid() <= self.m0 + 0.35 * (self.peak - self.m0)
        if done:
            self.label(m)
            return None
        size = max(1, round(self.clip * 1.5 * m.inst.market_lots * (0.5 + m.draw.uniform()))) * m.inst.lot
        m.market(-1, size)
        return m.t + m.draw.exp(self.gap / 2)


class Spoof(Agent):
    """Rests a large order on one side, trades on the other, cancels; a few cycles."""

    kind = AlertKind.SPOOFING

    def __init__(self, start: float, draw: Draws) -> None:
        super().__init__(start)
        self.side = 1 if draw.uniform() < 0.5 else -1
        self.depth = int(draw.uniform() * 3)  # level 1, 2 or 3
        self.long = draw.uniform() < 0.5
        self.variant = f"{'long' if self.long else 'short'}-l{self.depth + 1}"
        self.cycles = 2 + int(draw.uniform() * 5)
        self.mult = 0.5 + 1.5 * draw.uniform()
        self.plan: list[tuple[float, str]] = []
        self.resting = self.size = 0
        self.orders: list[tuple[int, int]] = []

    @classmethod
    def budget(cls) -> float:
        return 6 * (60 + 60)

    def step(self, m: Market) -> float | None:
        draw = m.draw
        if not self.plan:
            self.cycles -= 1
            life = (10 + 50 * draw.uniform()) if self.long else (1 + 5 * draw.uniform())
            self.plan = [(m.t, "place"), (m.t + life * (0.3 + 0.5 * draw.uniform()), "trade"), (m.t + life, "cancel")]
            self.plan.append((m.t + life + 5 + 55 * draw.uniform(), "next"))
        _, what = self.plan.pop(0)
        if what == "place":
            self.acted(m)
            self.size = max(1, round(self.mult * m.visible_depth(self.side) / m.inst.lot)) * m.inst.lot
            self.resting = m.limit(self.side, m.best(self.side) - self.side * self.depth, self.size, agent=True)
        elif what == "trade":
            size = max(1, round(m.inst.market_lots)) * m.inst.lot
            if draw.uniform() < 0.6:
                self.orders.append((m.limit(-self.side, m.best(-self.side), size, agent=True), size))
            else:
                m.market(-self.side, size)
        elif what == "cancel":
            m.cancel(self.side, self.resting, self.size)
            if self.cycles == 0:
                for tick, size in self.orders:
                    m.cancel(-self.side, tick, size)
                self.label(m)
                return None
        return self.plan[0][0] if self.plan else m.t


class Wash(Agent):
    """Prints between two accounts of one owner at the touch or inside the spread, one clip size."""

    kind = AlertKind.WASH_TRADING

    def __init__(self, start: float, draw: Draws) -> None:
        super().__init__(start)
        self.alternate = draw.uniform() < 0.5
        self.inside = draw.uniform() < 0.5
        self.jitter = draw.uniform() < 0.5
        self.variant = f"{'alternate' if self.alternate else 'random'}-{'inside' if self.inside else 'touch'}"
        self.length = 120 + 480 * draw.uniform()
        self.gap = 2 + 13 * draw.uniform()
        self.mult = 2 + 8 * draw.uniform()
        self.clip = 0
        self.side = 1
        self.prints = 0

    @classmethod
    def budget(cls) -> float:
        return 600.0

    def step(self, m: Market) -> float | None:
        draw = m.draw
        if m.t - self.start >= self.length:
            self.label(m, self.last_ms)
            return None
        if self.clip == 0:
            self.clip = max(1, round(self.mult * m.typical_trade() / m.inst.lot)) * m.inst.lot
        self.acted(m)
        self.side = -self.side if self.alternate else (1 if draw.uniform() < 0.5 else -1)
        if self.inside and m.spread() >= 2:
            tick = m.best_bid + 1 + int(draw.uniform() * (m.spread() - 1))
        else:
            tick = m.best_ask if self.side > 0 else m.best_bid
        size = self.clip
        if self.jitter:
            size = max(m.inst.lot, round(self.clip * (0.8 + 0.4 * draw.uniform()) / m.inst.lot) * m.inst.lot)
        m.actor, m.counterparty = ring_pair(self.participants, self.prints)
        self.prints += 1
        m.cross(self.side, tick, size)
        self.last_ms = m.now_ms
        return m.t + draw.exp(self.gap)

    last_ms: int = 0


class Close(Agent):
    """Moves the price in the last minutes before the close with market orders."""

    kind = AlertKind.MARKING_THE_CLOSE

    def __init__(self, start: float, draw: Draws, close: float) -> None:
        super().__init__(start)
        self.close = close
        self.direction = 1 if draw.uniform() < 0.8 else -1
        self.late = draw.uniform() < 0.5
        self.variant = ("late" if self.late else "ramp") + ("-up" if self.direction > 0 else "-down")
        self.move = 0.01 + 0.03 * draw.uniform()
        self.clip = 1.0 + 2.0 * draw.uniform()
        self.m0 = 0.0

    def step(self, m: Market) -> float | None:
        draw = m.draw
        if m.t >= self.close - 1:
            self.label(m, m.config.end_ms)
            return None
        if self.first_ms < 0:
            self.m0 = m.mid()
        self.acted(m)
        frac = (m.t - self.start) / (self.close - self.start)
        path = 0.2 * frac if self.late and m.t < self.close - 60 else frac
        target = self.m0 * (1 + self.direction * self.move * path)
        behind = (m.mid() - target) * self.direction < 0
        self.clip = min(self.clip * 1.25, 50.0) if behind else max(1.0, self.clip / 1.1)
        if behind:
            size = max(1, round(self.clip * m.inst.market_lots * (0.5 + draw.uniform()))) * m.inst.lot
            size = min(size, max(m.inst.lot, m.visible_depth(-self.direction) // 2))
            m.market(self.direction, size)
        gap = 0.4 if self.late and m.t >= self.close - 60 else 1.5
        return min(self.close - 1, m.t + draw.exp(gap))


class QuoteStuffer(Agent):
    """Bursts of many small orders placed and cancelled within a moment, far more than anyone's pace: a few bursts of
    2–10 s at 20–150 orders a second, each order's size taken back 5–500 ms after it rests. Draws from its own stream
    (``draw``), never the market's."""

    kind = AlertKind.QUOTE_STUFFING

    def __init__(self, start: float, draw: Draws) -> None:
        super().__init__(start)
        self.draw = draw
        self.bursts = 1 + int(draw.uniform() * 3)
        self.away = draw.uniform() < 0.5
        self.both = draw.uniform() < 0.5
        self.variant = f"{'away' if self.away else 'touch'}-{'both' if self.both else 'one'}"
        self.side = 1 if draw.uniform() < 0.5 else -1
        self.burst_end = -1.0
        self.rate = 0.0
        self.next_order = start
        #: the orders resting: (when they are cancelled, side, tick, size)
        self.resting: list[tuple[float, int, int, int]] = []
        self.last_ms = 0

    def step(self, m: Market) -> float | None:
        draw = self.draw
        while self.resting and self.resting[0][0] <= m.t:
            _, side, tick, size = heapq.heappop(self.resting)
            m.cancel(side, tick, min(size, m.own[side].get(tick, 0)))
            self.last_ms = m.now_ms
        if m.t >= self.next_order:
            if m.t > self.burst_end:  # a new burst
                if self.bursts == 0:
                    if not self.resting:
                        self.label(m, self.last_ms)
                        return None
                    self.next_order = math.inf
                    return self.resting[0][0]
                self.bursts -= 1
                self.burst_end = m.t + 2 + 8 * draw.uniform()
                self.rate = 20 + 130 * draw.uniform()
            self._place(m)
            self.next_order = m.t + draw.exp(1 / self.rate)
            if self.next_order > self.burst_end and self.bursts > 0:
                self.next_order = self.burst_end + 5 + 25 * draw.uniform()
            elif self.next_order > self.burst_end:
                self.next_order = self.burst_end + 1e-3
        wake = min(self.next_order, self.resting[0][0] if self.resting else math.inf)
        if wake == math.inf:  # the last order cancelled
            self.label(m, self.last_ms)
            return None
        return wake

    def _place(self, m: Market) -> None:
        draw = self.draw
        side = (1 if draw.uniform() < 0.5 else -1) if self.both else self.side
        behind = 1 + int(draw.uniform() * 5) if self.away else 0
        tick = m.best(side) - side * behind
        size = (1 + int(draw.uniform() * 2)) * m.inst.lot
        self.acted(m)
        tick = m.limit(side, tick, size, agent=True)
        heapq.heappush(self.resting, (m.t + 0.005 + 0.495 * draw.uniform(), side, tick, size))
        self.last_ms = m.now_ms


def plan_stuffing(draw: Draws, config: LobConfig) -> QuoteStuffer | None:
    """A manipulated symbol's quote stuffer, one in two, after the quiet open and before the close's last twelve
    minutes (drawn from the stuffer's own stream)."""
    if draw.uniform() >= 0.5:
        return None
    length = config.minutes * 60
    latest = length - 720
    if latest <= config.quiet_open_s:
        return None
    return QuoteStuffer(config.quiet_open_s + draw.uniform() * (latest - config.quiet_open_s), draw)


class News(Agent):
    """Not manipulation: the fundamental jumps and activity triples for five minutes."""

    def step(self, m: Market) -> float | None:
        m.tape.events.append(("news", m.now_ms, m.now_ms + 300_000))
        size = 0.015 + 0.035 * m.draw.uniform()
        direction = 1 if m.draw.uniform() < 0.5 else -1
        m.fundamental += size if direction > 0 else -size
        m.tape.repricings.append((m.now_ms, direction))
        m.boost, m.boost_until = 3.0, m.t + 300
        return None


class MetaOrder(Agent):
    """Not manipulation: an institution works a parent order through market orders over 20–60 minutes."""

    def __init__(self, start: float, draw: Draws) -> None:
        super().__init__(start)
        self.length = 1_200 + 2_400 * draw.uniform()
        self.share = 0.15 + 0.25 * draw.uniform()
        self.side = 1 if draw.uniform() < 0.5 else -1
        self.on = False

    def step(self, m: Market) -> float | None:
        if self.on:
            m.extra_market, m.meta_actor = 0.0, None
            m.tape.events.append(("meta_order", self.first_ms, m.now_ms))
            return None
        self.on = True
        self.acted(m)
        m.meta_actor = m.actor
        m.extra_side = self.side
        m.extra_market = m.inst.limit_rate * m.inst.market_share * self.share
        return m.t + self.length


class MarketMaker(Agent):
    """Not manipulation: a large quote at level 2 on both sides, moved whenever the touch moves; with ``pulls``,
    both quotes withdrawn for 2–10 s every 5–20 minutes (risk off for a moment, as market makers do)."""

    def __init__(self, start: float, draw: Draws, pulls: bool = False) -> None:
        super().__init__(start)
        self.mult = 4 + 6 * draw.uniform()
        self.quotes: dict[int, int] = {}
        self.touch = (0, 0)
        self.size = 0
        self.pulls = pulls
        self.next_pull = start + 300 + 900 * draw.uniform()
        self.pulled_at = -1

    def step(self, m: Market) -> float | None:
        if self.size == 0:
            self.size = max(1, round(self.mult * m.typical_level(1) / m.inst.lot)) * m.inst.lot
            m.tape.events.append(("market_maker", m.config.start_ms, m.config.end_ms))
        if self.pulled_at >= 0:  # back after a pull
            m.tape.events.append(("quote_pull", self.pulled_at, m.now_ms))
            self.pulled_at, self.touch = -1, (0, 0)
            self.next_pull = m.t + 300 + 900 * m.draw.uniform()
        elif self.pulls and m.t >= self.next_pull and m.t >= 0:
            for side, tick in self.quotes.items():
                m.cancel(side, tick, self.size)
            self.quotes, self.pulled_at = {}, m.now_ms
            return m.t + 2 + 8 * m.draw.uniform()
        if (m.best_bid, m.best_ask) != self.touch:
            for side, tick in self.quotes.items():
                m.cancel(side, tick, self.size)
            self.quotes = {1: m.limit(1, m.best_bid - 1, self.size, agent=True)}
            self.quotes[-1] = m.limit(-1, m.best_ask + 1, self.size, agent=True)
            self.touch = (m.best_bid, m.best_ask)
        return m.t + 1.0 + m.draw.uniform()


class LargeOrder(Agent):
    """Not manipulation: a genuine large order rests at the touch and is executed — a taker's market orders work
    it off over 10–90 s; what is left after three minutes is cancelled. A level that vanishes because it traded."""

    def __init__(self, start: float, draw: Draws) -> None:
        super().__init__(start)
        self.side = 1 if draw.uniform() < 0.5 else -1
        self.mult = 3 + 5 * draw.uniform()
        self.fill_s = 10 + 80 * draw.uniform()
        self.tick = self.size = 0

    def step(self, m: Market) -> float | None:
        if self.size == 0:
            self.size = max(1, round(self.mult * m.typical_level(self.side) / m.inst.lot)) * m.inst.lot
            self.tick = m.limit(self.side, m.best(self.side), self.size, agent=True)
            self.acted(m)
            return m.t + 1.0
        left = m.own[self.side].get(self.tick, 0)
        if left == 0 or m.t - self.start > 180:
            if left:
                m.cancel(self.side, self.tick, left)
            m.tape.events.append(("large_order", self.first_ms, m.now_ms))
            return None
        if m.best(self.side) == self.tick:  # the taker trades when the order is at the touch (it stands behind
            # the noise orders queued at its price before it)
            ahead = (m.bids if self.side > 0 else m.asks).get(self.tick, 0)
            steps = max(1.0, (self.start + self.fill_s - m.t) / 3)
            clip = max(m.inst.lot, round((left + ahead) / steps / m.inst.lot) * m.inst.lot)
            m.market(-self.side, min(clip, left + ahead), ANYONE)
        return m.t + 1.5 + 3 * m.draw.uniform()


# --- sessions -------------------------------------------------------------------------------------------------------
def plan_agents(draw: Draws, config: LobConfig, manipulated: bool) -> list[Agent]:
    """A symbol's agents: the unlabelled confounders always, one to three manipulators when ``manipulated``."""
    length = config.minutes * 60
    agents: list[Agent] = []
    t = draw.exp(length / 0.4 / (270 / config.minutes))
    while t < length:
        agents.append(News(t))
        t += draw.exp(270 * 60 / 0.4)
    if draw.uniform() < 0.5:
        agents.append(MetaOrder(draw.uniform() * length * 0.8, draw))
    if draw.uniform() < 0.5:
        agents.append(MarketMaker(0.0, draw, pulls=config.lookalikes))
    if config.lookalikes:
        agents.extend(_large_orders(draw, config))
    if not manipulated:
        return agents
    wanted = 1 + int(draw.uniform() * 3)
    t = config.quiet_open_s + draw.uniform() * config.episode_gap_s
    latest = length - 720  # the last twelve minutes belong to the close
    for _ in range(wanted):
        kind = int(draw.uniform() * 4)
        if kind == 3:
            start = length - 120 - 480 * draw.uniform()
            if not any(isinstance(a, Close) for a in agents) and start > t:
                agents.append(Close(start, draw, length))
            continue
        maker: type[Pump] | type[Spoof] | type[Wash] = (Pump, Spoof, Wash)[kind]
        if t + maker.budget() > latest:
            continue
        agents.append(maker(t, draw))
        t += maker.budget() + config.episode_gap_s * (1 + draw.uniform())
    return agents


def _large_orders(draw: Draws, config: LobConfig) -> list[Agent]:
    """About two large genuine orders per symbol-day (a Poisson stream), none in the last ten minutes."""
    length = config.minutes * 60
    orders: list[Agent] = []
    t = draw.exp(SECONDS_PER_DAY / 2)
    while t < length - 600:
        orders.append(LargeOrder(t, draw))
        t += draw.exp(SECONDS_PER_DAY / 2)
    return orders


def symbol_name(index: int) -> str:
    """The name of a session's ``index``-th symbol (from 0): ``L001``, ``L002``, …"""
    return f"L{index + 1:03d}"


def _symbol_stream(seed: int, index: int) -> np.random.Generator:
    """A symbol's market stream: its instrument first, then its noise flow and agents."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def exchange_info(seed: int, symbols: int) -> dict[str, dict[str, str]]:
    """What the venue publishes of a session's instruments (any length, any feed: they depend on the seed alone):
    each symbol's tick and lot as exchange information (``{"L001": {"tick": "0.05", "step": "100"}}``, the layout
    of ``TAPEWATCH_TRADE_EXCHANGE_INFO``), drawn as the session draws them.

    >>> exchange_info(3, 2)
    {'L001': {'tick': '0.02', 'step': '10'}, 'L002': {'tick': '0.002', 'step': '100'}}
    """
    info = {}
    for index in range(symbols):
        instrument = instrument_of(seed, index)
        info[symbol_name(index)] = {"tick": f"{instrument.tick:.12g}", "step": str(instrument.lot)}
    return info


def instrument_of(seed: int, index: int) -> Instrument:
    """The instrument of a session's ``index``-th symbol: the first draws of its market stream."""
    return draw_instrument(_symbol_stream(seed, index))


def run_symbol(config: LobConfig, index: int, manipulated: bool, clients: Clients | None = None) -> tuple[Market, str]:
    rng = _symbol_stream(config.seed, index)
    inst = draw_instrument(rng)
    ledger = None
    if clients is not None:
        own = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(index, 1)))
        ledger = OrderLedger(own, clients, inst.tick, config.firm_share)
    market = Market(inst, rng, config, ledger)
    market.tape.ledger = ledger
    agents = plan_agents(market.draw, config, manipulated)
    if ledger is not None and clients is not None:
        assign_participants(agents, ledger.rng, clients, config.firm_agents)
    if config.quote_stuffing and manipulated:
        draws = Draws(np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(index, _STUFFING_KEY))))
        stuffer = plan_stuffing(draws, config)
        if stuffer is not None:
            if clients is not None and draws.uniform() < config.firm_agents:
                stuffer.participants = tuple(clients.new_owner())
            agents.append(stuffer)
    queue: list[tuple[float, int, Agent]] = [(a.start, i, a) for i, a in enumerate(agents)]
    heapq.heapify(queue)
    length = config.minutes * 60
    while queue and queue[0][0] < length:
        when, i, agent = heapq.heappop(queue)
        market.advance(max(when, market.t))
        market.actor, market.counterparty = agent.participants[0], agent.participants[-1]
        after = agent.step(market)
        market.actor, market.counterparty = None, OUTSIDE
        if after is not None:
            heapq.heappush(queue, (max(after, market.t + 0.001), i, agent))
    market.advance(length)
    return market, symbol_name(index)


def assign_participants(agents: list[Agent], rng: np.random.Generator, clients: Clients, share: float) -> None:
    """A ``share`` of the agents trade through the firm, each with an account of a new owner; a wash with the
    accounts :meth:`Clients.wash_accounts` draws: one owner's two, two linked owners', or a ring of unlinked owners'."""
    for agent in agents:
        if isinstance(agent, News) or rng.random() >= share:
            continue
        if isinstance(agent, Wash):
            agent.participants = clients.wash_accounts(rng)
            continue
        agent.participants = tuple(clients.new_owner())


def _ledger(tape: Tape) -> OrderLedger:
    if tape.ledger is None:
        raise ValueError("a session without orders has no market-by-order feed (LobConfig(orders=True))")
    return tape.ledger


@dataclass(frozen=True)
class LobSession:
    """A generated session: each symbol's tape, shaped into the configured feed on the way out."""

    config: LobConfig
    tapes: dict[str, Tape]
    #: the session's news items in publication order (no market record depends on them), and what each is
    #: (:data:`tapewatch.generators.news.NEWS_LABELS`)
    news: tuple[NewsItem, ...] = ()
    news_labels: tuple[str, ...] = ()
    #: the firm's client book (``LobConfig(orders=True)``)
    clients: Clients | None = None

    def shaped(self, feed: str, venue: str) -> LobSession:
        """The same market published as ``feed`` by ``venue``: the tapes are the feed's source, not its shape (the
        feed is applied on the way out), so one generation serves every feed; the news names the venue, so it is
        drawn again (from the same seed: the same items)."""
        config = replace(self.config, feed=feed, venue=venue)
        return LobSession(config, self.tapes, *_news_items(config, self.tapes), clients=self.clients)

    def ticks_frame(self) -> pd.DataFrame:
        """The replay file layout (:data:`tapewatch.generators.simulator.TICK_COLUMNS`), in time order, trades before
        the book of the same millisecond."""
        frames = [self._symbol_frame(symbol, tape) for symbol, tape in self.tapes.items()]
        frame = pd.concat(frames, ignore_index=True)
        frame = frame.sort_values(["ts", "_order"], kind="stable").drop(columns="_order").reset_index(drop=True)
        return frame[list(TICK_COLUMNS)]

    def episodes_frame(self) -> pd.DataFrame:
        rows = [(s, *e) for s, tape in self.tapes.items() for e in tape.episodes]
        frame = pd.DataFrame(
            {
                "symbol": [r[0] for r in rows],
                "venue": self.config.venue,
                "kind": [r[1] for r in rows],
                "start": pd.array([r[2] for r in rows], dtype="int64"),
                "end": pd.array([r[3] for r in rows], dtype="int64"),
                "start_iso": [iso_ms(r[2]) for r in rows],
                "end_iso": [iso_ms(r[3]) for r in rows],
            },
            columns=list(EPISODE_COLUMNS),
        )
        frame["variant"] = [r[4] for r in rows]
        if self.config.orders:
            frame["accounts"] = [a for tape in self.tapes.values() for a in tape.episode_accounts]
        return frame

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.tapes)

    @property
    def venue(self) -> str:
        return self.config.venue

    @property
    def tenant(self) -> str:
        return self.config.tenant

    def orders_frame(self) -> pd.DataFrame:
        """The market-by-order feed (``LobConfig(orders=True)``): :data:`~.order_ledger.ORDER_COLUMNS`, each symbol's
        events numbered one after the other (``sequence``), in time order across symbols."""
        return orders_frame(self._ledgers(), self.config.venue)

    def orders_frame_of(self, symbol: str) -> pd.DataFrame:
        """One symbol's market-by-order feed, in its order."""
        return orders_frame_of(_ledger(self.tapes[symbol]), symbol, self.config.venue)

    def order_events(self, symbol: str) -> Iterator[OrderBookEvent]:
        """One symbol's market-by-order feed as records (built from the market's own state, so not validated again:
        ``tests/unit/test_order_ledger.py`` validates every one)."""
        return order_events(_ledger(self.tapes[symbol]), symbol, self.config.venue)

    def execution_reports(self, symbol: str) -> Iterator[ExecutionReport]:
        """One symbol's drop copy as records, in time order (not validated again, as :meth:`order_events`)."""
        return execution_reports(_ledger(self.tapes[symbol]), symbol, self.config.venue, self.config.tenant)

    def drop_copy_frame(self) -> pd.DataFrame:
        """The firm's execution reports (``LobConfig(orders=True)``): :data:`~.order_ledger.REPORT_COLUMNS`, in time
        order."""
        return drop_copy_frame(self._ledgers(), self.config.venue, self.config.tenant)

    def accounts_frame(self) -> pd.DataFrame:
        """The firm's reference data: each account's beneficial owner, and its linked-account group if any."""
        return accounts_frame(self._clients())

    def account_refs(self) -> list[AccountRef]:
        """The firm's reference data as its tenant's ``ref.accounts`` records, set at the session's start."""
        return account_refs(self._clients(), self.config.tenant, self.config.start_ms)

    def _ledgers(self) -> dict[str, OrderLedger]:
        return {symbol: _ledger(tape) for symbol, tape in self.tapes.items()}

    def _clients(self) -> Clients:
        if self.clients is None:
            raise ValueError("a session without orders has no accounts (LobConfig(orders=True))")
        return self.clients

    def events_frame(self) -> pd.DataFrame:
        """What happened that is not manipulation: the :data:`LOOKALIKES`, and ``market_maker`` over the whole
        session of a symbol that has one."""
        rows = [(s, *e) for s, tape in self.tapes.items() for e in tape.events]
        return pd.DataFrame(rows, columns=["symbol", "kind", "start", "end"])

    def lookalikes_frame(self) -> pd.DataFrame:
        """The labelled legitimate look-alikes (``symbol``, ``kind`` one of :data:`LOOKALIKES`, ``start``, ``end``
        in epoch ms), in time order."""
        events = self.events_frame()
        frame = events[events["kind"].isin(LOOKALIKES)].sort_values(["start", "symbol"], kind="stable")
        return frame.reset_index(drop=True)

    def news_frame(self) -> pd.DataFrame:
        """The news items with their labels (:data:`tapewatch.generators.news.NEWS_COLUMNS`), in publication order."""
        return news_frame(self.news, self.news_labels)

    def _symbol_frame(self, symbol: str, tape: Tape) -> pd.DataFrame:
        trade_ts = np.asarray(tape.trade_ts, dtype=np.int64)
        price = np.asarray(tape.trade_price, dtype=float)
        size = np.asarray(tape.trade_size, dtype=float)
        side = np.asarray(tape.trade_side, dtype=object)
        book_ts = np.asarray(tape.book_ts, dtype=np.int64)
        books = np.asarray(tape.books, dtype=float).reshape(-1, 4 * LEVELS)
        interval = snapshot_interval(self.config.feed)
        if interval is not None:
            times = snapshot_times(self.config.start_ms, self.config.end_ms, interval)
            index = snapshot_index(trade_ts, price, book_ts, times)
            cumulative = np.concatenate([np.cumsum(size), [0.0]])[index.row]
            sizes = np.diff(cumulative, prepend=0.0)
            printed = index.last_print >= 0
            trade_ts, price, size = times[printed], price[index.last_print[printed]], sizes[printed]
            side = np.full(len(trade_ts), None, dtype=object)
            has_book = index.book >= 0
            book_ts, books = times[has_book], books[index.book[has_book]]
        trades = pd.DataFrame({"ts": trade_ts, "price": price, "size": size, "side": side, "_order": 0})
        levels = pd.DataFrame(books, columns=list(TICK_COLUMNS[5:])).assign(ts=book_ts, _order=1)
        return pd.concat([trades, levels], ignore_index=True).assign(symbol=symbol)


def generate(config: LobConfig) -> LobSession:
    """Every symbol's session; a ``clean_fraction`` of the symbols (drawn from the seed) get no manipulator."""
    plan = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(10_000,)))
    clean = set(plan.permutation(config.symbols)[: round(config.clean_fraction * config.symbols)].tolist())
    clients = None
    if config.orders:
        clients = Clients(np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(_CLIENTS_KEY,))))
    tapes: dict[str, Tape] = {}
    for i in range(config.symbols):
        market, symbol = run_symbol(config, i, i not in clean, clients)
        tapes[symbol] = market.tape
    return LobSession(config, tapes, *_news_items(config, tapes), clients=clients)


#: the news streams' spawn keys start with this (a symbol's market stream is keyed by its index alone, the clean
#: choice by 10,000)
_NEWS_KEY: Final = 20_000
#: the firm's client book's stream (a symbol's orders are drawn from ``(index, 1)``)
_CLIENTS_KEY: Final = 30_000
#: a symbol's quote stuffer's stream is ``(index, _STUFFING_KEY)``
_STUFFING_KEY: Final = 2


def _news_items(config: LobConfig, tapes: dict[str, Tape]) -> tuple[tuple[NewsItem, ...], tuple[str, ...]]:
    """The session's news items (:mod:`tapewatch.generators.news`) and their labels; none without ``news``. Only
    labelled pumps are touted (one still running at the close has no label)."""
    if not config.news:
        return (), ()
    plans = []
    for symbol, tape in tapes.items():
        pumps = {start for kind, start, _, _ in tape.episodes if kind == AlertKind.PUMP_AND_DUMP}
        plans.append(SymbolPlan(symbol, tape.repricings, [runup for runup in tape.runups if runup[0] in pumps]))
    wire = NewsWire("lob", config.seed, config.day, config.venue, "en")
    keys = [(_NEWS_KEY, i) for i in range(len(plans))]
    return session_news(config.news_params, wire, plans, keys, (config.start_ms, config.end_ms))
