"""Wash trading from the public market-by-order feed alone: prints whose passive side the market never saw.

A trader who trades with himself (or with an account of the same owner) cannot let anyone else take the other side:
the passive side is either never displayed (the pair crosses off the book, or meets a non-displayed order) or shown
for an instant and taken whole by the one print it was placed for. The feed shows both: a trade that no ``fill``
follows executed liquidity the book did not display, and a fill names an order whose placement the feed showed. So a
print is **unexposed** when no displayed order that rested for it was filled at its price, on its passive side, in
its millisecond — an order taken whole at most ``fleeting_ms`` after its placement, untouched until then, did not
rest for it — and it printed within the touch the book showed (at or between the best bid and offer): both sides of
a wash agree on a price the market would give, while a print beyond the touch swept liquidity the feed did not show.
The prints and fills of one millisecond are matched once it is over (price by price, in the order the prints came),
so a feed that sends a millisecond's trades before its fills reads as one that interleaves them.

Unexposed prints are everyday trading too: hidden and midpoint orders, an order that improves the touch and is taken
at once. What a wash adds is **many unexposed prints of one clip size**: the pair repeats a size (give or take
jitter) because each print needs both sides. So prints are counted by size band — ``band_bins`` adjacent quarter
octaves (sizes within a factor of about 1.4–1.7) — and, over the last ``window_ms``, the share of a band's prints
that were unexposed is judged against the symbol's own share for that band: a binomial tail of at most ``surprise``
(times the bands tried). Read per print of the band, the test follows the symbol's own trading: a busy spell with
more prints of every kind expects more unexposed ones, and a wash, whose every print is unexposed, lifts the share.
The symbol's share is learnt from the prints before the window, their weight halving every ``half_life_prints``
prints (so it is kept across a night's gap and the open is judged against the day before), from a prior
(``prior_share`` of ``prior_prints`` prints) so that a symbol that has shown none is judged, not skipped. A hit
also needs ``min_prints`` unexposed prints in the band, ``min_volume_share`` of everything the symbol traded in the
window (a wash is there to be seen), both sides aggressing — each at least ``min_side_share`` of them where the feed
gives the side: a pair trading with itself has no side to push, while one-sided prints against unseen liquidity are a
hidden order being worked, or a meta-order meeting one — and ``warmup_prints`` prints seen before it.

What is left alone: hidden liquidity executed at the symbol's usual share (its baseline learns it), a busy spell (the
share is read per print), one large hidden order executed by aggressors of many sizes (no one band holds them), a
hidden order worked by one side's aggressors, sporadic fast fills. What breaks it: a washer who varies his size over
more than the band (each band then holds fewer prints), one who lets his passive order rest beyond ``fleeting_ms``
(it reads as exposed, and someone else might have taken it), one who trades a small share of a busy symbol's volume,
one who always aggresses from the same side, a symbol where most prints of the clip's size are unexposed all day (the
share cannot rise much), and two-sided bursts of one size against hidden liquidity (hidden orders on both sides met
by equal-sized aggressors, as a market whose book shows little of its liquidity may have in fast spells), which read
as a wash.

The hit names no one (the public feed does not say who traded): its severity is at most medium, a lead for the desk;
the firm's drop copy names the owner on both sides (:mod:`tapewatch.detectors.orders.firm_wash`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import astuple, dataclass, field
from typing import Any, ClassVar, Final

from tapewatch.detectors.alerting import MEDIUM_AT_MOST, Hit
from tapewatch.detectors.evidence import Key, Rule
from tapewatch.detectors.orders.book import BID, OrderBook, Step
from tapewatch.detectors.orders.params import MINUTE_MS, PublicWashParams
from tapewatch.detectors.orders.public_spoofing import NO_ORDER, Before
from tapewatch.records import FILL, TRADE, AlertKind, OrderBookEvent

MODEL_VERSION: Final = "public-wash-v1"
#: size bins per octave (a size and 1.19 × it share a bin)
BINS_PER_OCTAVE: Final = 4


EVIDENCE: Final[Mapping[str, Key]] = {
    "prints": Key("unexposed prints of the clip in the window", "prints"),
    "clip": Key("the clip's sizes, smallest and largest"),
    "volume_share": Key("their share of what the symbol traded in the window", "share"),
    "buys": Key("of them, prints a buyer aggressed", "prints"),
    "sells": Key("of them, prints a seller aggressed", "prints"),
    "price_range_bps": Key("how far apart their prices were", "bps"),
    "band_prints": Key("prints of the clip's sizes in the window, exposed or not", "prints"),
    "expected_prints": Key("unexposed prints of the clip the symbol's own share makes expected", "prints"),
    "surprise": Key("how likely that many are at the symbol's own share", "probability"),
}
RULE: Final = Rule(AlertKind.WASH_TRADING, "wash trading on the public feed", "expected_prints", EVIDENCE)


@dataclass(slots=True)
class Print:
    """A print: its price, size and aggressor side (+1 buy, -1 sell, 0 the venue does not say), and whether it
    printed within the touch (at or between the best bid and offer the book showed)."""

    ts: int
    price: float
    size: float
    side: int
    inside: bool = True


@dataclass(slots=True)
class Minute:
    """One minute of the symbol: volume traded, prints by size bin, and of them the unexposed ones."""

    start: int
    volume: float = 0.0
    prints: dict[int, int] = field(default_factory=dict)
    unexposed: dict[int, int] = field(default_factory=dict)


def size_bin(size: float) -> int:
    """The quarter octave ``size`` falls in."""
    return math.floor(math.log2(size) * BINS_PER_OCTAVE)


class PublicWash:
    """One symbol's unexposed prints from its market-by-order feed (stage: ``on_order``)."""

    PARAMS: ClassVar[type[PublicWashParams]] = PublicWashParams
    EVIDENCE: ClassVar[Mapping[str, Key]] = EVIDENCE

    def __init__(self, params: PublicWashParams | None = None, book: OrderBook | None = None) -> None:
        self.params = params or PublicWashParams()
        #: the symbol's book: the detector's own, or one it shares with whoever applies the feed's events to it
        self.shared = book is not None
        self.book = OrderBook() if book is None else book
        #: the millisecond being read: its prints, and what its fills took from displayed orders that rested, by
        #: (price, side)
        self.now: int | None = None
        self.pending: list[Print] = []
        self.exposed: dict[tuple[float, int], float] = {}
        #: the minutes of the window; the unexposed prints of the window, for the evidence
        self.minutes: deque[Minute] = deque()
        self.recent: deque[Print] = deque()
        #: the prints before the window by size bin, and of them the unexposed ones, their weight halving every
        #: ``half_life_prints`` prints since (the symbol's own share, kept across a night's gap)
        self.prints: dict[int, float] = {}
        self.unexposed: dict[int, float] = {}
        #: prints the symbol traded since the detector began (its warm-up)
        self.seen = 0

    def on_order(self, event: OrderBookEvent) -> list[Hit]:
        """An event of the feed, applied to the detector's own book."""
        order = None if event.order_id is None else self.book.orders.get(event.order_id)
        before = NO_ORDER if order is None else Before(order, order.size)
        return self.after_book(event, self.book.on_order(event), before)

    def after_book(self, event: OrderBookEvent, step: Step, before: Before) -> list[Hit]:
        """An event of the feed once applied to the book (``step``), with the read of its order before it was."""
        if event.ts != self.now:
            hits = self._settled() if self.pending else []
            self.now = event.ts
            if self.exposed:
                self.exposed = {}
        else:
            hits = []
        action = event.action
        if action is TRADE and step.trade is not None:
            price, size, side = step.trade
            if size > 0:
                self.pending.append(Print(event.ts, price, size, side or 0, self._inside(price)))
        elif action is FILL and before.order is not None:
            self._filled(event, before)
        return hits

    def _inside(self, price: float) -> bool:
        bid, offer = self.book.side(BID).best(), self.book.side(-BID).best()
        return (bid is None or price >= bid) and (offer is None or price <= offer)

    def flush(self) -> list[Hit]:
        """The end of the input: the last millisecond's prints are judged."""
        return self._settled() if self.pending else []

    def _filled(self, event: OrderBookEvent, before: Before) -> None:
        """A fill of a displayed order: it rested for the prints at its price, unless taken whole just after its
        placement."""
        order = before.order
        assert order is not None
        whole = before.size == order.placed_size and event.size >= before.size
        if whole and event.ts - order.placed_ts <= self.params.fleeting_ms:
            return
        key = (order.price, order.side)
        self.exposed[key] = self.exposed.get(key, 0.0) + event.size

    def _settled(self) -> list[Hit]:
        """The millisecond's prints matched with its fills, in turn: a print no rested order's fill met at its price
        on its passive side is unexposed. Each is counted, and an unexposed one judged."""
        hits: list[Hit] = []
        exposed = self.exposed
        for held in self.pending:
            sides = (-held.side,) if held.side else (1, -1)
            met = 0.0
            for side in sides:
                key = (held.price, side)
                take = min(exposed.get(key, 0.0), held.size - met)
                if take > 0:
                    exposed[key] -= take
                    met += take
            hits += self._counted(held, unexposed=met <= 0.0 and held.inside)
        self.pending = []
        return hits

    def _counted(self, held: Print, unexposed: bool) -> list[Hit]:
        """A print in its minute's counts; an unexposed one judged."""
        minute = self._minute(held.ts)
        minute.volume += held.size
        bin_ = size_bin(held.size)
        minute.prints[bin_] = minute.prints.get(bin_, 0) + 1
        self.seen += 1
        if not unexposed:
            return []
        minute.unexposed[bin_] = minute.unexposed.get(bin_, 0) + 1
        self.recent.append(held)
        while self.recent and self.recent[0].ts <= held.ts - self.params.window_ms:
            self.recent.popleft()
        return self._judged(held.ts, bin_)

    def _minute(self, ts: int) -> Minute:
        """The minute of ``ts``, the minutes that left the window folded into the baseline."""
        start = ts - ts % MINUTE_MS
        if not self.minutes or self.minutes[-1].start < start:
            self.minutes.append(Minute(start))
            while self.minutes[0].start <= start - self.params.window_ms:
                self._fold(self.minutes.popleft())
        return self.minutes[-1]

    def _fold(self, minute: Minute) -> None:
        """A minute that left the window joins the baseline, whose weight halves every ``half_life_prints``."""
        decay = 0.5 ** (sum(minute.prints.values()) / self.params.half_life_prints)
        self.prints = _decayed(self.prints, decay, minute.prints)
        self.unexposed = _decayed(self.unexposed, decay, minute.unexposed)

    # --- the judgement --------------------------------------------------------------------------------------------
    def _judged(self, ts: int, bin_: int) -> list[Hit]:
        """Each band holding ``bin_``: its unexposed share in the window against the symbol's own; the least likely
        band, times the bands tried."""
        p = self.params
        if self.seen < p.warmup_prints:
            return []
        best: tuple[float, float, int, int] | None = None
        for low in range(bin_ - p.band_bins + 1, bin_ + 1):
            band = range(low, low + p.band_bins)
            unexposed = sum(m.unexposed.get(b, 0) for m in self.minutes for b in band)
            if unexposed < p.min_prints:
                continue
            prints = sum(m.prints.get(b, 0) for m in self.minutes for b in band)
            seen_unexposed = sum(self.unexposed.get(b, 0.0) for b in band)
            seen_prints = sum(self.prints.get(b, 0.0) for b in band)
            share = (seen_unexposed + p.prior_share * p.prior_prints) / (seen_prints + p.prior_prints)
            tail = binomial_tail(unexposed, prints, share)
            if best is None or tail < best[0]:
                best = (tail, prints * share, low, prints)
        if best is None:
            return []
        tail, expected, low, band_prints = best
        surprise = min(1.0, tail * p.band_bins)
        if surprise > p.surprise:  # the common case: judged on the counts alone, the window's prints left unread
            return []
        prints_ = [q for q in self.recent if low <= size_bin(q.size) < low + p.band_bins]
        volume = sum(m.volume for m in self.minutes)
        share = sum(q.size for q in prints_) / volume if volume > 0 else 0.0
        if share < p.min_volume_share or len(prints_) < p.min_prints:
            return []
        buys, sells = sum(1 for q in prints_ if q.side > 0), sum(1 for q in prints_ if q.side < 0)
        if min(buys, sells) < p.min_side_share * (buys + sells):
            return []
        return [self._hit(ts, prints_, band_prints, share, expected, surprise)]

    def _hit(
        self, ts: int, prints: list[Print], band_prints: int, share: float, expected: float, surprise: float
    ) -> Hit:
        sizes = sorted(q.size for q in prints)
        prices = [q.price for q in prints]
        low_price = min(prices)
        strength = min(1.0, -math.log10(max(surprise, 1e-12)) / 12)
        # naming no one, a hit is a lead for the desk, never more than medium: the public feed cannot say whose both
        # sides were; the firm's drop copy, which names the owner on both, raises wash trading to high
        score = min(MEDIUM_AT_MOST, 0.7 + 0.1 * strength)
        evidence: dict[str, Any] = {
            "prints": len(prints),
            "clip": f"{sizes[0]:g}–{sizes[-1]:g}",
            "volume_share": round(share, 3),
            "buys": sum(1 for q in prints if q.side > 0),
            "sells": sum(1 for q in prints if q.side < 0),
            "price_range_bps": round((max(prices) - low_price) / low_price * 1e4, 1) if low_price > 0 else 0.0,
            "band_prints": band_prints,
            "expected_prints": round(expected, 3),
            "surprise": surprise,
        }
        message = (
            f"{len(prints)} prints of {sizes[0]:g}–{sizes[-1]:g} against liquidity the book never showed "
            f"({share:.0%} of the volume), against {expected:.2f} expected at the symbol's own share"
        )
        return Hit(AlertKind.WASH_TRADING, ts, prints[0].ts, ts, score, evidence, MODEL_VERSION, message)

    # --- state ----------------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """The book (when the detector's own), the millisecond being read, the window's minutes and prints, the
        baseline."""
        book = {} if self.shared else {"book": self.book.to_state()}
        return {
            **book,
            "now": self.now,
            "pending": [list(astuple(q)) for q in self.pending],
            "exposed": [[price, side, size] for (price, side), size in self.exposed.items()],
            "minutes": [[m.start, m.volume, _pairs(m.prints), _pairs(m.unexposed)] for m in self.minutes],
            "recent": [list(astuple(q)) for q in self.recent],
            "prints": _pairs(self.prints),
            "unexposed": _pairs(self.unexposed),
            "seen": self.seen,
        }

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any], params: PublicWashParams | None = None, book: OrderBook | None = None
    ) -> PublicWash:
        """The detector of ``state``, on its own book from the state, or on the shared ``book``."""
        detector = cls(params, book)
        if book is None:
            detector.book = OrderBook.from_state(state["book"], depth=detector.book.depth)
        detector.now = state["now"]
        detector.pending = [Print(*row) for row in state["pending"]]
        detector.exposed = {(float(price), int(side)): float(size) for price, side, size in state["exposed"]}
        detector.minutes = deque(
            Minute(int(start), float(volume), {int(b): int(n) for b, n in prints}, {int(b): int(n) for b, n in un})
            for start, volume, prints, un in state["minutes"]
        )
        detector.recent = deque(Print(*row) for row in state["recent"])
        detector.prints = {int(b): float(n) for b, n in state["prints"]}
        detector.unexposed = {int(b): float(n) for b, n in state["unexposed"]}
        detector.seen = int(state["seen"])
        return detector


def _decayed(counts: dict[int, float], decay: float, added: Mapping[int, int]) -> dict[int, float]:
    kept = {b: n * decay for b, n in counts.items() if n * decay >= 1e-6}
    for b, n in added.items():
        kept[b] = kept.get(b, 0.0) + n
    return kept


def _pairs(counts: Mapping[int, object]) -> list[list[object]]:
    """``counts`` as [bin, count] pairs, each count as it is: a minute's are ints, the baseline's floats (typed
    ``float``, a compiled module would make a float of an int count, and the state would read ``7.0`` for ``7``)."""
    return [[b, n] for b, n in counts.items()]


#: terms of a binomial tail added exactly; the rest is bounded (a busy band's tail costs no more than this)
TAIL_TERMS: Final = 64


def binomial_tail(count: int, trials: int, share: float) -> float:
    """P(X ≥ count) for X binomial over ``trials`` with ``share`` (1 when ``count`` is at most the mean: not a
    surprise, whatever its exact tail). Past the mean the terms shrink by a falling ratio, so after
    :data:`TAIL_TERMS` of them the rest is bounded by a geometric series: never less than the exact tail, and as
    close as makes no difference to a surprise.

    >>> round(binomial_tail(3, 3, 0.5), 4), binomial_tail(1, 10, 0.5), binomial_tail(4, 3, 0.5)
    (0.125, 1.0, 0.0)
    >>> round(binomial_tail(8, 10, 0.5), 4)  # (45 + 10 + 1) / 1024
    0.0547
    >>> exact = sum(math.comb(1_000, k) * 0.2**k * 0.8 ** (1_000 - k) for k in range(230, 1_001))
    >>> exact <= binomial_tail(230, 1_000, 0.2) <= exact * 1.01
    True
    """
    if count > trials:
        return 0.0
    if count <= trials * share or share >= 1.0:
        return 1.0
    if share <= 0.0:
        return 0.0
    log_term = (
        math.lgamma(trials + 1)
        - math.lgamma(count + 1)
        - math.lgamma(trials - count + 1)
        + count * math.log(share)
        + (trials - count) * math.log1p(-share)
    )
    term, total, odds = math.exp(log_term), 0.0, share / (1.0 - share)
    for k in range(count, min(trials, count + TAIL_TERMS) + 1):
        total += term
        ratio = (trials - k) / (k + 1) * odds
        term *= ratio
        if term < total * 1e-15 or k == trials:
            return min(1.0, total)
    return min(1.0, total + term / (1.0 - ratio))


def fresh_state() -> dict[str, Any]:
    """The state of a detector on a shared book that has seen nothing (an entry saved before the detector existed)."""
    return PublicWash(book=OrderBook()).to_state()
