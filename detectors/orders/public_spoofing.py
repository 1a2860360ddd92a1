"""Spoofing and layering from the public market-by-order feed alone: order ids, no accounts.

Without accounts nothing says that a large order and a trade on the other side are one trader's, so this detector
asks what the order itself and the book around it say, each judged against the symbol's own statistics:

* **A spoof order** is *large for the symbol*: at least ``size_multiple`` × its usual (median) order, among the
  largest it sees (``rare_quantile`` of its one-sided orders: a market maker's large two-sided quotes do not set
  that bar), and ``depth_share`` of its side's visible depth once it rests (the CFTC's markers: spoof orders 10–50 ×
  the genuine ones; Sarao's 200–900 lots against a 7-lot average; in the Coscia case the large orders tilted the
  book). It is *near the touch* (within ``near_levels`` prices, where it shows as pressure), it is *pulled* —
  removed by cancels within ``pair_ms`` that take ``pulled_share`` of what was placed (at once, not worked down),
  within ``max_life_ms``, with at most ``max_filled`` of it filled (CFTC: cancelled after about 12 s against 55 s,
  2 % filled against 89 %; Coscia's cycles lasted 0.6 s). Orders of one side pulled within ``pair_ms`` of each other
  are one cycle (layers withdrawn together: one decision), their sizes added.
* **Not fleeing the price**: the other side's best, at the end of the pull's millisecond (what happened in that
  millisecond happened at once), is no nearer the order than when it was placed. A spoof's pressure is meant to hold
  the price or push it away from the large order, and the spoofer withdraws it once it has done its work; a large
  order pulled as the other side comes at it is being kept from a move against it — what market makers and genuine
  large orders do when the price turns, and what a book whose queues thin as the price comes shows.
* **Not a market maker**: an opposite order at least ``pair_ratio`` as large pulled within ``pair_ms`` of it is the
  other leg of a two-sided quote being moved or withdrawn, not pressure on one side; an order as large placed on
  the same side within ``pair_ms`` of the pull is the order moved (a quote following the touch): its pressure stayed.
* **The other side acted while it rested**: the spoofer's purpose is a fill on the other side; an order pulled
  before anything happened on the other side (an aggressor of the other side executed, or an order of the other
  side was placed at its best or filled after it) had nothing to help and is not a cycle. On a busy book this is
  nearly always met: it only rules out the shortest pulls on a quiet one.
* **Repetition beyond the symbol's own habit**: ``min_cycles`` cycles on one side within ``window_ms`` (Eventus and
  the trade's alerts look at minutes; a manipulator repeats, an odd large order does not), and more of them than
  the symbol's own rate of cycles *as large* makes likely (a Poisson tail of at most ``surprise``). The rate is
  read on the symbol's own clock — cycles per order placed over the last ``baseline_ms`` — so a busy open or close
  expects more; it starts from a prior (``prior_cycles`` over ``prior_ms``, fewer the larger: ``prior_tail``), so
  the open is judged, not skipped; and each count of the window's largest cycles is tried against the rate of
  cycles at least as large, the least likely taken times the number tried (a burst of ordinary large pulls is not
  read as its largest few).

What is left alone: a genuine large order fills (``max_filled``); a market maker quotes and pulls both sides at once
(``pair_ms``); a participant pulls a large order as the price comes at it (the other side's best); a meta-order
executes through marketable orders and rests nothing large; one large cancel is one cycle. What breaks it: a
spoofer whose orders are no larger than the symbol's largest usual ones (many mid-size layers placed apart), one who
works the order down in small cancels, hidden or iceberg size the feed does not show, a spoofer who quotes a token
opposite order at once (reads as two-sided), one who pulls only as the price comes at his orders (a spoof that failed
reads as a participant fleeing the move), a venue that publishes what moved the price and the pulls it caused in
different milliseconds (a flight is then read before the price is seen to move), and a symbol spoofed all day (its
baseline learns the spoofing).

The hit names the large orders' ids at the venue (``order_ids``): nothing on the public feed names the trader, so its
severity is at most medium (a lead for the desk); the account that did both is named, and raised to high, by the
firm's drop copy (:mod:`tapewatch.detectors.orders.firm_spoofing`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import astuple, dataclass
from typing import Any, ClassVar, Final

from mypy_extensions import mypyc_attr

from tapewatch.detectors.alerting import MEDIUM_AT_MOST, Hit
from tapewatch.detectors.evidence import Key, Rule
from tapewatch.detectors.orders.book import BID, OrderBook, RestingOrder, Step
from tapewatch.detectors.orders.params import PublicSpoofingParams
from tapewatch.detectors.orders.usual_size import UsualSize
from tapewatch.records import ADD, BUY_SIDE, CANCEL, FILL, TRADE, AlertKind, OrderBookEvent

MODEL_VERSION: Final = "public-orders-v4"
#: the levels of a side its visible depth is read over
VISIBLE_LEVELS: Final = 5


EVIDENCE: Final[Mapping[str, Key]] = {
    "side": Key("the side the large orders rested on"),
    "cycles": Key("large orders pulled after the other side traded, on that side, in the window", "cycles"),
    "order_ids": Key("the large orders' ids at the venue"),
    "size_multiple": Key("the largest against the symbol's usual order", "×"),
    "depth_share": Key("the largest share of its side's visible depth", "share"),
    "median_life_s": Key("how long the large orders rested", "s"),
    "opposite_volume": Key("what executed on the other side while they rested", "shares"),
    "expected_cycles": Key("cycles as large the symbol's own rate makes expected in the window", "cycles"),
    "surprise": Key("how likely that many cycles are at the symbol's own rate", "probability"),
}
RULE: Final = Rule(AlertKind.SPOOFING, "spoofing on the public feed", "expected_cycles", EVIDENCE)


@dataclass(slots=True)
class Large:
    """A large order resting now, and what the other side did while it rested."""

    side: int
    placed_ts: int
    size: float
    multiple: float
    share: float
    near: bool
    opposite: float = 0.0
    #: what the cancels of the last ``pair_ms`` took off it, and when that burst began
    burst: float = 0.0
    burst_ts: int = 0
    #: the other side's best price once it rested (None: that side was empty)
    across: float | None = None


@dataclass(slots=True)
class Before:
    """The event's resting order before the event, and its size then (None, 0: no such order)."""

    order: RestingOrder | None
    size: float


#: what :meth:`PublicSpoofing.before` reads of an event naming no resting order (never changed)
NO_ORDER: Final = Before(None, 0.0)


@dataclass(slots=True)
class Cycle:
    order_id: str
    placed_ts: int
    pulled_ts: int
    multiple: float
    share: float
    opposite: float


#: compiled by mypyc (``make compiled``), a class Python code subclasses must say so: the order-level evaluation's
#: diagnosis (``evaluation/order_diagnosis.py``) records each cycle through a subclass
@mypyc_attr(allow_interpreted_subclasses=True)
class PublicSpoofing:
    """One symbol's spoofing cycles from its market-by-order feed (stage: ``on_order``)."""

    PARAMS: ClassVar[type[PublicSpoofingParams]] = PublicSpoofingParams
    EVIDENCE: ClassVar[Mapping[str, Key]] = EVIDENCE

    def __init__(self, params: PublicSpoofingParams | None = None, book: OrderBook | None = None) -> None:
        self.params = params or PublicSpoofingParams()
        #: the symbol's book: the detector's own, or one it shares with whoever applies the feed's events to it
        #: (the stream's level-2 feed: the same events make the same book, kept once)
        self.shared = book is not None
        self.book = OrderBook() if book is None else book
        self.usual = UsualSize()
        self.large: dict[str, Large] = {}
        #: cancels lately: (ts, side, size taken), for the two-sided check
        self.recent: deque[tuple[int, int, float]] = deque()
        self.cycles: dict[int, deque[Cycle]] = {BID: deque(), -BID: deque()}
        #: every cycle's pull time and size (× usual) over the baseline, per side: the symbol's own rate
        self.history: dict[int, deque[tuple[int, float]]] = {BID: deque(), -BID: deque()}
        #: pulls whose millisecond is not over yet: (side, size, cycle, the other side's best when it was placed)
        self.pulling: deque[tuple[int, float, Cycle, float | None]] = deque()
        #: pulls waiting ``pair_ms`` for an opposite one: (side, size, cycle)
        self.pending: deque[tuple[int, float, Cycle]] = deque()
        #: the best bid and offer after the last event: at a later millisecond's first event, the touch at the end of
        #: the one before
        self.touch: tuple[float | None, float | None] = (None, None)
        self.first_ts: int | None = None
        #: large placements waiting ``pair_ms`` for an opposite one before the usual sizes learn them: (ts, side, size)
        self.placing: deque[tuple[int, int, float]] = deque()
        #: orders placed per minute over the baseline: the symbol's own activity, the clock its rate is read on
        self.activity: deque[list[int]] = deque()

    def on_order(self, event: OrderBookEvent) -> list[Hit]:
        """An event of the feed, applied to the detector's own book."""
        before = self.before(event)
        return self.after_book(event, self.book.on_order(event), before)

    def before(self, event: OrderBookEvent) -> Before:
        """What the event's order is before the event is applied to the book (read before it is)."""
        order = None if event.order_id is None else self.book.orders.get(event.order_id)
        return NO_ORDER if order is None else Before(order, order.size)

    def after_book(self, event: OrderBookEvent, step: Step, before: Before) -> list[Hit]:
        """An event of the feed once applied to the book (``step``: what it did there), with :meth:`before`'s read of
        its order. A shared book's owner passes on only the events its book took (it refuses those its venue numbers
        out of turn, and the others every book refuses)."""
        if self.first_ts is None:
            self.first_ts = event.ts
        if self.pulling and self.pulling[0][2].pulled_ts < event.ts:
            self._judge_pulls(event.ts)
        hits = self._settle(event.ts - self.params.pair_ms - 1) if self.pending else []
        self._applied(event, step, before)
        self.touch = (self.book.side(BID).best(), self.book.side(-BID).best())
        return hits

    def _applied(self, event: OrderBookEvent, step: Step, before: Before) -> None:
        """What the event tells the detector: a placement, the other side acting, a pull."""
        action = event.action
        if action is ADD:  # the actions as the records' module constants: read per event, faster than off the enum
            self._added(event, step)
            return
        if action is TRADE:
            self._traded(event)
        elif action is FILL:
            self._filled(event, before.order)
        if action is CANCEL:
            self._pulled(event, before)
            if event.order_id in self.large:
                self._cancel(event, step, before)
                return
        if step.departed is not None:
            self.large.pop(step.departed.order.order_id, None)

    def flush(self) -> list[Hit]:
        """The end of the input: the pulls still waiting for their millisecond's end and their ``pair_ms`` are
        judged."""
        self._judge_pulls(None)
        return self._settle(None)

    # --- placements -------------------------------------------------------------------------------------------
    def _added(self, event: OrderBookEvent, step: Step) -> None:
        p = self.params
        warm = self.usual.count() >= p.warmup_orders
        usual, rare = self.usual.quantiles(0.5, p.rare_quantile) if warm else (None, None)
        if event.snapshot or (step.anomaly is not None and step.anomaly.refused):
            return
        self._moved(event)
        order = self.book.orders.get(event.order_id or "")
        self._observe(event.ts, 0 if order is None else order.side, event.size, usual)
        self._count_activity(event.ts)
        if order is not None and order.touch_gap == 0:
            self._joined_touch(order.side, event.size)
        if usual is None or rare is None or order is None or event.size < max(p.size_multiple * usual, rare):
            return
        # against the side's depth without the other large orders resting there: a layer is judged as the book
        # looked before the layering, not against the layers placed with it
        layers = sum(large.size for large in self.large.values() if large.side == order.side)
        depth = max(self.book.visible_depth(event.side, VISIBLE_LEVELS) - layers, event.size)
        share = event.size / depth
        if share < p.depth_share:
            return
        near = order.touch_gap < p.near_levels
        across = self.book.side(-order.side).best()
        self.large[order.order_id] = Large(
            order.side, event.ts, event.size, event.size / usual, share, near, across=across
        )

    def _observe(self, ts: int, side: int, size: float, usual: float | None) -> None:
        """The symbol's usual sizes learn each placement, but a large one only once ``pair_ms`` has passed without
        an opposite one about as large: a two-sided quote is not pressure on one side, and a market maker's large
        quotes must not set the bar that one-sided pressure is measured against."""
        p = self.params
        while self.placing and self.placing[0][0] < ts - p.pair_ms:
            self.usual.observe(self.placing.popleft()[2])
        if usual is None or size < p.size_multiple * usual:
            self.usual.observe(size)
            return
        for i, (_, other_side, other) in enumerate(self.placing):
            if other_side == -side and min(size, other) >= p.pair_ratio * max(size, other):
                del self.placing[i]
                return
        self.placing.append((ts, side, size))

    def _count_activity(self, ts: int) -> None:
        minute = ts - ts % 60_000
        if self.activity and self.activity[-1][0] == minute:
            self.activity[-1][1] += 1
        else:
            self.activity.append([minute, 1])
        horizon = ts - self.params.baseline_ms - self.params.window_ms
        while self.activity and self.activity[0][0] < horizon:
            self.activity.popleft()

    def _placed(self, start: int, end: int) -> int:
        """Orders placed in the minutes from ``start`` to before ``end``."""
        return sum(count for minute, count in self.activity if start <= minute < end)

    def _paired(self, ts: int, side: int, size: float) -> bool:
        """An opposite large order pulled within ``pair_ms`` of ``ts``: a two-sided quote moved or withdrawn (its two
        legs go out together, within milliseconds)."""
        p = self.params
        return any(
            s == -side and abs(t - ts) <= p.pair_ms and other >= p.pair_ratio * size for t, s, other in self.recent
        )

    def _moved(self, event: OrderBookEvent) -> None:
        """An order about as large placed on the same side within ``pair_ms`` of a pull: the order was moved (a
        quote following the touch), its pressure did not go away; the pull is no cycle."""
        if not self.pending and not self.pulling:
            return
        p = self.params
        side = BID if event.side is BUY_SIDE else -BID

        def moved(s: int, size: float, cycle: Cycle) -> bool:
            return s == side and event.ts - cycle.pulled_ts <= p.pair_ms and event.size >= p.pair_ratio * size

        self.pulling = deque(entry for entry in self.pulling if not moved(entry[0], entry[1], entry[2]))
        self.pending = deque(entry for entry in self.pending if not moved(*entry))

    def _pulled(self, event: OrderBookEvent, before: Before) -> None:
        """Any cancel, large or not, is kept while a pull waiting for its ``pair_ms`` may need it (the other leg of
        a two-sided quote need not be large against its own side's depth)."""
        if before.order is None:
            return
        size = _taken(event, before.size)
        self.recent.append((event.ts, before.order.side, size))
        horizon = event.ts - 2 * self.params.pair_ms - 1
        while self.recent and self.recent[0][0] < horizon:
            self.recent.popleft()

    # --- the other side -----------------------------------------------------------------------------------------
    def _traded(self, event: OrderBookEvent) -> None:
        """An aggressor of one side executed: the other side's large orders saw their side trade."""
        if event.side is None or not self.large:
            return
        aggressor = BID if event.side is BUY_SIDE else -BID
        for large in self.large.values():
            if large.side == -aggressor:
                large.opposite += event.size

    def _joined_touch(self, side: int, size: float) -> None:
        """A new order at (or inside) its side's best: the other side's large orders saw an order of this side
        placed where it trades first (the genuine order a spoofer rests opposite his large one)."""
        for large in self.large.values():
            if large.side == -side:
                large.opposite += size

    def _filled(self, event: OrderBookEvent, order: RestingOrder | None) -> None:
        """A passive order filled: large orders of the other side placed before it saw it execute."""
        if order is None or not self.large:
            return
        for large in self.large.values():
            if large.side == -order.side and order.placed_ts >= large.placed_ts:
                large.opposite += event.size

    # --- the pull -----------------------------------------------------------------------------------------------
    def _cancel(self, event: OrderBookEvent, step: Step, before: Before) -> None:
        """A large order's cancel: when it pulls the order as a spoofer would, the pull waits for the end of its
        millisecond (where the price went) and then ``pair_ms`` for an opposite pull that would make it a two-sided
        quote's."""
        order_id = event.order_id or ""
        resting = before.order
        taken = 0.0 if resting is None else _taken(event, before.size)
        filled = 0.0 if resting is None else resting.filled  # a cancel leaves what was filled as it was
        p = self.params
        large = self.large[order_id]
        if event.ts - large.burst_ts > p.pair_ms:
            large.burst, large.burst_ts = 0.0, event.ts
        large.burst += taken
        if step.departed is None:
            return
        del self.large[order_id]
        pulled = large.burst >= p.pulled_share * large.size and filled <= p.max_filled * large.size
        life = event.ts - large.placed_ts
        if pulled and large.near and life <= p.max_life_ms and large.opposite > 0:
            cycle = Cycle(order_id, large.placed_ts, event.ts, large.multiple, large.share, large.opposite)
            self.pulling.append((large.side, large.size, cycle, large.across))

    def _judge_pulls(self, before_ts: int | None) -> None:
        """The pulls of the milliseconds before ``before_ts`` (all: None), with the touch at their end: one whose
        other side came nearer the order than when it was placed fled the price and is no cycle; the others wait
        ``pair_ms`` for an opposite pull."""
        bid, offer = self.touch
        while self.pulling and (before_ts is None or self.pulling[0][2].pulled_ts < before_ts):
            side, size, cycle, across = self.pulling.popleft()
            now = offer if side == BID else bid
            if across is None or now is None or (now - across) * side >= 0:
                self.pending.append((side, size, cycle))

    def _settle(self, until: int | None) -> list[Hit]:
        """The pulls at or before ``until`` (all: None) whose ``pair_ms`` has passed: one-sided ones are cycles."""
        hits: list[Hit] = []
        while self.pending and (until is None or self.pending[0][2].pulled_ts <= until):
            side, size, cycle = self.pending.popleft()
            if not self._paired(cycle.pulled_ts, side, size):
                hits += self._cycle(side, cycle)
        return hits

    def _cycle(self, side: int, cycle: Cycle) -> list[Hit]:
        p = self.params
        ts = cycle.pulled_ts
        cycles, history = self.cycles[side], self.history[side]
        if cycles and ts - cycles[-1].pulled_ts <= p.pair_ms:
            # layers pulled together are one decision, one cycle: their sizes add up
            cycle = _joined(cycles.pop(), cycle)
            history.pop()
        cycles.append(cycle)
        history.append((ts, cycle.multiple))
        while cycles and cycles[0].pulled_ts < ts - p.window_ms:
            cycles.popleft()
        while history and history[0][0] < ts - p.baseline_ms:
            history.popleft()
        if len(cycles) < p.min_cycles or self.first_ts is None or ts - self.first_ts < p.warmup_ms:
            return []
        expected, surprise = self._surprise(list(cycles), history, ts)
        if surprise > p.surprise:
            return []
        return [self._hit(side, list(cycles), ts, expected, surprise)]

    def _surprise(self, cycles: list[Cycle], history: deque[tuple[int, float]], ts: int) -> tuple[float, float]:
        """How unlikely the window's cycles are at the symbol's own rate of cycles *as large*: for each count ``j``
        from ``min_cycles`` up, the ``j`` largest against the rate of cycles at least as large as the ``j``-th; the
        least likely, times the number of counts tried (a symbol whose ordinary large orders are often pulled whole
        sets its own bar for those sizes, and a burst of them is not read as its few largest)."""
        p = self.params
        multiples = sorted((c.multiple for c in cycles), reverse=True)
        tried = range(p.min_cycles, len(multiples) + 1)
        tails = [(poisson_tail(j, e), e) for j in tried for e in [self._expected(history, ts, multiples[j - 1])]]
        tail, expected = min(tails)
        return expected, min(1.0, tail * len(tails))

    def _expected(self, history: deque[tuple[int, float]], ts: int, multiple: float) -> float:
        """Cycles at least ``multiple`` × the usual order that the symbol's own rate makes expected in one window.
        The rate is read on the symbol's own clock — per order placed, not per second — so a busy open or close,
        with more of every kind of order, expects more (the cycles before the window over the orders placed before
        it, up to ``baseline_ms``), with the prior (``prior_cycles`` over ``prior_ms`` at the symbol's order rate) so
        that the open and a symbol that has shown none are not taken to have none."""
        p = self.params
        start = max(ts if self.first_ts is None else self.first_ts, ts - p.baseline_ms)
        cut = ts - p.window_ms
        before = sum(1 for t, m in history if t < cut and m >= multiple)
        placed_before, placed_in = self._placed(start - start % 60_000, cut), self._placed(cut, ts + 1)
        rate = (placed_before + placed_in) / max(ts - start, p.window_ms)
        prior = p.prior_cycles * float(min(1.0, p.size_multiple / multiple) ** p.prior_tail)
        return (before + prior) * placed_in / max(placed_before + p.prior_ms * rate, 1.0)

    def _hit(self, side: int, cycles: list[Cycle], ts: int, expected: float, surprise: float) -> Hit:
        p = self.params
        lives = sorted((c.pulled_ts - c.placed_ts) / 1000 for c in cycles)
        multiple = max(c.multiple for c in cycles)
        extra = len(cycles) - p.min_cycles
        strength = min(1.0, -math.log10(max(surprise, 1e-12)) / 6)
        # naming no one, a hit is a lead for the desk, never more than medium: the public feed cannot tell one trader's
        # cycles from several participants' pulls (market makers, other firms' genuine orders); the firm's drop copy,
        # which names the account that did both, is what raises spoofing to high
        score = min(MEDIUM_AT_MOST, 0.7 + 0.03 * extra + 0.1 * strength)
        name = "bid" if side == BID else "offer"
        evidence: dict[str, Any] = {
            "side": name,
            "cycles": len(cycles),
            "order_ids": ";".join(c.order_id for c in cycles),
            "size_multiple": round(multiple, 2),
            "depth_share": round(max(c.share for c in cycles), 3),
            "median_life_s": lives[len(lives) // 2],
            "opposite_volume": sum(c.opposite for c in cycles),
            "expected_cycles": round(expected, 3),
            "surprise": surprise,
        }
        message = (
            f"{len(cycles)} large {name}s ({multiple:.0f}× the usual order) pulled after the other side traded, "
            f"against {expected:.2f} expected at the symbol's own rate"
        )
        return Hit(AlertKind.SPOOFING, ts, cycles[0].placed_ts, ts, score, evidence, MODEL_VERSION, message)

    # --- state --------------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """The book (when the detector's own), the usual order size, the large orders resting, recent large events,
        pulls and cycles, the touch after the last event."""
        book = {} if self.shared else {"book": self.book.to_state()}
        return {
            **book,
            "usual": self.usual.to_state(),
            "large": {order_id: list(astuple(large)) for order_id, large in self.large.items()},
            "recent": [list(r) for r in self.recent],
            "cycles": {str(side): [list(astuple(c)) for c in cycles] for side, cycles in self.cycles.items()},
            "history": {str(side): [list(h) for h in history] for side, history in self.history.items()},
            "pulling": [[side, size, list(astuple(cycle)), across] for side, size, cycle, across in self.pulling],
            "pending": [[side, size, list(astuple(cycle))] for side, size, cycle in self.pending],
            "touch": list(self.touch),
            "first_ts": self.first_ts,
            "activity": [list(a) for a in self.activity],
            "placing": [list(placed) for placed in self.placing],
        }

    @classmethod
    def from_state(
        cls, state: dict[str, Any], params: PublicSpoofingParams | None = None, book: OrderBook | None = None
    ) -> PublicSpoofing:
        """The detector of ``state``, on its own book from the state, or on the shared ``book``."""
        detector = cls(params, book)
        if book is None:
            detector.book = OrderBook.from_state(state["book"], depth=detector.book.depth)
        detector.usual = UsualSize.from_state(state["usual"])
        detector.large = {order_id: Large(*row) for order_id, row in state["large"].items()}
        detector.recent = deque((int(ts), int(side), float(size)) for ts, side, size in state["recent"])
        for side in (BID, -BID):
            detector.cycles[side] = deque(Cycle(*row) for row in state["cycles"][str(side)])
            detector.history[side] = deque((int(ts), float(m)) for ts, m in state["history"][str(side)])
        detector.pulling = deque(
            (int(side), float(size), Cycle(*row), _price(across)) for side, size, row, across in state["pulling"]
        )
        detector.pending = deque((int(side), float(size), Cycle(*row)) for side, size, row in state["pending"])
        bid, offer = state["touch"]
        detector.touch = (_price(bid), _price(offer))
        detector.first_ts = state["first_ts"]
        detector.placing = deque((int(ts), int(side), float(size)) for ts, side, size in state["placing"])
        detector.activity = deque([int(minute), int(count)] for minute, count in state["activity"])
        return detector


def _joined(first: Cycle, then: Cycle) -> Cycle:
    """Two pulls of one side within ``pair_ms`` as one cycle: every order, the sizes and shares added up."""
    return Cycle(
        f"{first.order_id};{then.order_id}",
        min(first.placed_ts, then.placed_ts),
        then.pulled_ts,
        first.multiple + then.multiple,
        first.share + then.share,
        max(first.opposite, then.opposite),
    )


def _price(value: Any) -> float | None:
    return None if value is None else float(value)


def _taken(event: OrderBookEvent, resting: float) -> float:
    """What a cancel takes off an order resting ``resting``: all of it when its size is 0 or at least that."""
    return resting if event.size <= 0 or event.size >= resting else event.size


def poisson_tail(count: int, mean: float) -> float:
    """P(N ≥ count) for N Poisson with ``mean`` (1 when the mean is unknown, i.e. infinite)."""
    if count <= 0 or math.isinf(mean):
        return 1.0
    if mean <= 0:
        return 0.0
    term = math.exp(-mean)
    below = term
    for k in range(1, count):
        term *= mean / k
        below += term
    return max(0.0, 1.0 - below)
