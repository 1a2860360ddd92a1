"""The state machine of one symbol (:class:`FlowState`): its input (quotes and books, each in its own stream's
order), its watermark, and the closing of a chunk into a :class:`~tapewatch.detectors.flow.FlowChunk`.

Watermark, lateness, the two input streams
------------------------------------------
Quotes and books are two Kafka topics consumed with arbitrary interleaving (a catch-up may read one far ahead
of the other, two workers interleave them differently). The output must not depend on that interleaving, so
every decision is taken from one stream's own order, never from wall time or from how far the other stream
happens to have been read:

* ``qwm``/``bwm`` are the newest quote/book ``ts`` seen.
* **Lateness is per stream.** A quote of chunk ``n`` is late once ``n < (qwm - grace_ms) // chunk_ms`` (its
  own stream has moved on), a book likewise against ``bwm``; late also once the chunk was emitted.
* **Closing.** For a feed with books (:attr:`FlowState.books`, from the venue's feed profile) the watermark is
  ``W = min(qwm, bwm)``: a chunk waits for both streams. For a feed without books ``W = qwm``; a stray book
  then counts only if its chunk is still open. Chunk ``n`` closes once ``W >= (n + 1) * chunk_ms + grace_ms``
  (the effective watermark never goes back); several chunks may be open at once, they close oldest first.

Since a chunk closes only after *both* streams passed it, and a record is accepted only while *its own*
stream has not passed its chunk, each chunk holds exactly the records each stream delivered before passing
it, whatever the interleaving. Every per-chunk aggregate is fed by one stream only (in that stream's order)
and the two meet only when the chunk closes, so one worker, two workers and a replay after a crash give the
same chunks. The price of that: a symbol of a book feed emits its chunks only once its quotes move on (a
symbol that trades rarely waits for its next trade, or the producer's snapshot quotes, to close them).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Mapping
from typing import Any

from tapewatch.detectors.aggressor import AggressorInference
from tapewatch.detectors.feed_learning import PrintsLearner
from tapewatch.detectors.flow.baseline import Baseline, BaselineEntry
from tapewatch.detectors.flow.catalogue import FLOW_FEATURE_NAMES, PRINT_LEVEL_FEATURE_NAMES, FlowChunk, FlowConfig
from tapewatch.detectors.flow.chunk import BookSide, LevelMap, Levels, _Chunk, _depth_changes, _level_maps
from tapewatch.detectors.flow.persistence import ChunkLists, restore, state_of
from tapewatch.detectors.flow.values import (
    _cancellations,
    _chunk_book_values,
    _chunk_trade_values,
    _largest_layer,
    _long_book_values,
    _long_order_values,
    _long_size_values,
)
from tapewatch.detectors.layers import LayerTracker
from tapewatch.feeds import Prints
from tapewatch.records import Book, Quote


class LateRecordError(ValueError):
    """A quote or book of a chunk that is already closed. The state is unchanged; dead-letter the record."""

    def __init__(self, symbol: str, kind: str, ts: int, chunk_start: int, closed_until: int) -> None:
        self.symbol = symbol
        self.kind = kind
        self.ts = ts
        self.chunk_start = chunk_start
        self.closed_until = closed_until
        super().__init__(
            f"late {kind}: {symbol} ts={ts} belongs to the flow chunk starting {chunk_start}, "
            f"closed (every chunk before {closed_until} is)"
        )


class FlowState:
    """Order-flow features of one symbol; O(1) amortised work per quote or book.

    :meth:`on_quote` / :meth:`on_book` return the chunks the advancing watermark closed, oldest first,
    or raise :class:`LateRecordError` (state unchanged) for a record of a closed chunk.

    A feed with books: a chunk closes once both streams have passed it (plus the grace), and its book features
    come from the books of the chunk only. Here the bid's second level (9.9) shrinks from 5,000 to 1,000
    without a trade there: 4,000 cancelled at levels 2–5.

    >>> flow = FlowState("2330", FlowConfig(chunk_ms=1_000, grace_ms=0))
    >>> flow.on_book_values(0, [(10.0, 100.0), (9.9, 5_000.0)], [(10.1, 200.0)])
    []
    >>> flow.on_quote_values(300, 10.1, 50.0, "B")  # a buy at the ask
    []
    >>> flow.on_book_values(600, [(10.0, 100.0), (9.9, 1_000.0)], [(10.1, 150.0)])
    []
    >>> flow.on_quote_values(1_100, None)  # the quote stream passes 1 s; the book stream has not yet
    []
    >>> [chunk] = flow.on_book_values(1_200, [(10.0, 100.0), (9.9, 1_000.0)], [(10.1, 150.0)])
    >>> chunk.start, chunk.end, chunk.values["trades"], chunk.values["book_updates"], chunk.values["cancel_l25"]
    (0, 1000, 1.0, 2.0, 4000.0)
    >>> round(chunk.values["book_imb_l1"], 3), round(chunk.values["spread_bps"], 1)  # means over the two books
    (-0.267, 99.5)
    >>> flow.on_quote_values(900, 10.1, 10.0, "B")  # chunk 0 is closed
    Traceback (most recent call last):
    ...
    tapewatch.detectors.flow.state.LateRecordError: late quote: 2330 ts=900 belongs to the flow chunk starting 0, closed
    ...
    """

    def __init__(
        self,
        symbol: str,
        config: FlowConfig | None = None,
        *,
        books: bool = True,
        prints: Prints | None = "trades",
    ) -> None:
        self.symbol = symbol
        self.config = config if config is not None else FlowConfig()
        #: the feed sends books (its venue's feed profile): chunks wait for both streams. Not state: the
        #: caller passes the profile in force.
        self.books = books
        #: the feed's prints (its venue's feed profile): ``snapshots`` leaves :data:`PRINT_LEVEL_FEATURE_NAMES`
        #: null. Not state either, unless the profile does not say (``None``): then the symbol's own quote
        #: records decide (:class:`~tapewatch.detectors.feed_learning.PrintsLearner`, state), and until they have, the
        #: print-level features are null (unknown, not calm).
        self.prints: Prints | None = prints
        self.prints_learner = PrintsLearner() if prints is None else None
        self.qwm: int | None = None  # newest quote ts
        self.bwm: int | None = None  # newest book ts
        self.first_quote: int | None = None
        self.first_book: int | None = None
        #: every chunk with a smaller index is closed (records for it are late)
        self.closed_below = 0
        self.open: dict[int, _Chunk] = {}
        self.heap: list[int] = []  # open chunk indices, a heap (derived, not stored)
        self.last_closed: int | None = None  # index of the last emitted chunk
        self.last_price: float | None = None  # last trade price of the closed chunks
        self.last_side: str | None = None  # side of the previous trade (quote-stream order)
        self.last_trade_ts = 0  # ts of the previous trade (quote-stream order)
        self.last_size = 0.0  # size of the previous trade
        self.aggressor = AggressorInference()  # sides of trades the feed leaves unsided
        self.layer_tracker = LayerTracker()  # persistent large levels 2–5 and their vanishing (book order)
        self.last_mid: float | None = None  # last mid of the closed chunks
        self.prev_book: tuple[int, BookSide, BookSide] | None = None
        self._prev_maps: tuple[LevelMap, LevelMap] | None = None  # prev_book's level maps (derived, not stored)
        self.recent: deque[_Chunk] = deque()  # closed chunks inside the long window
        self.baseline = Baseline(self.config)  # the closed chunks the z-scores compare with
        self.chunk_lists = ChunkLists()  # the chunks' serialised forms, reused while unchanged (not stored)

    # -- input -------------------------------------------------------------------------------------------
    def _chunk_for(self, kind: str, ts: int) -> _Chunk:
        cfg = self.config
        n = ts // cfg.chunk_ms
        # late against its own stream's progress (not the other's): the same whatever the interleaving
        newest = self.qwm if kind == "quote" else self.bwm
        closed = (
            self.closed_below if newest is None else max(self.closed_below, (newest - cfg.grace_ms) // cfg.chunk_ms)
        )
        if n < closed:
            raise LateRecordError(self.symbol, kind, ts, n * cfg.chunk_ms, closed * cfg.chunk_ms)
        self.chunk_lists.forget(n)  # about to change
        chunk = self.open.get(n)
        if chunk is None:
            chunk = self.open[n] = _Chunk(n)
            heapq.heappush(self.heap, n)
        return chunk

    def on_quote(self, quote: Quote) -> list[FlowChunk]:
        """Apply one quote (trade or snapshot); return the chunks that closed, oldest first."""
        return self.on_quote_values(quote.ts, quote.price, quote.size, quote.side, quote.bid, quote.ask)

    def on_quote_values(
        self,
        ts: int,
        price: float | None,
        size: float = 0.0,
        side: str | None = None,
        bid: float | None = None,
        ask: float | None = None,
    ) -> list[FlowChunk]:
        """:meth:`on_quote` on plain values (``side`` ``"B"``, ``"S"`` or ``None``)."""
        c = self._chunk_for("quote", ts)
        if self.prints_learner is not None and self.prints is None:
            self.prints = self.prints_learner.observe(ts)
        c.quotes += 1
        if bid is not None and ask is not None:
            c.qspread_sum += 2e4 * (ask - bid) / (ask + bid)
            c.qspread_n += 1
        if price is not None:
            self._add_trade(c, ts, price, size, side, bid, ask)
        if self.qwm is None:
            self.qwm = self.first_quote = ts
        elif ts > self.qwm:
            self.qwm = ts
        return self._advance()

    def _add_trade(
        self, c: _Chunk, ts: int, price: float, size: float, side: str | None, bid: float | None, ask: float | None
    ) -> None:
        """A quote with a price: the chunk's prices, sizes and sides, and the symbol's previous trade (for the
        orders, alternation and mirror trades that span quotes and chunks)."""
        if c.trades == 0:
            c.first_ts = c.last_ts = ts
            c.first_price = c.last_price = c.high = c.low = price
        else:
            if ts < c.first_ts:
                c.first_ts, c.first_price = ts, price
            if ts >= c.last_ts:
                c.last_ts, c.last_price = ts, price
            c.high = max(c.high, price)
            c.low = min(c.low, price)
        c.trades += 1
        c.sizes[size] = c.sizes.get(size, 0) + 1
        c.ms[ts] = c.ms.get(ts, 0) + 1
        c.traded[price] = c.traded.get(price, 0.0) + size
        if side != "B" and side != "S":  # noqa: PLR1714 (Side is a StrEnum: == works, `in` on a tuple too)
            side = self.aggressor.infer(price, bid, ask)
            c.inferred += side is not None
        self.aggressor.observe(price)
        if side == "B" or side == "S":  # noqa: PLR1714
            last_side = self.last_side
            # fills of one aggressive order print together: one order per run of (ts, side)
            new_order = side != last_side or ts != self.last_trade_ts
            if side == "B":
                c.buy += size
                c.buy_orders += new_order
            else:
                c.sell += size
                c.sell_orders += new_order
            if last_side is not None:
                c.pairs += 1
                if side != last_side:
                    c.switches += 1
                    if size == self.last_size and size > 0 and ts - self.last_trade_ts <= self.config.mirror_ms:
                        c.mirror_trades += 1
                        c.mirror_volume += size
            self.last_side = str(side)
        else:
            self.last_side = None
        self.last_trade_ts = ts
        self.last_size = size

    def on_book(self, book: Book) -> list[FlowChunk]:
        """Apply one book snapshot; return the chunks that closed, oldest first."""
        # a validated Book's levels are (float, float) tuples already: no per-level conversion on the hot path
        return self._apply_book(book.ts, tuple(book.bids), tuple(book.asks))

    def on_book_values(self, ts: int, bids: Levels, asks: Levels) -> list[FlowChunk]:
        """:meth:`on_book` on plain values: ``(price, size)`` levels, best first."""
        return self._apply_book(
            ts, tuple((float(p), float(q)) for p, q in bids), tuple((float(p), float(q)) for p, q in asks)
        )

    def _apply_book(self, ts: int, bids: BookSide, asks: BookSide) -> list[FlowChunk]:
        c = self._chunk_for("book", ts)
        c.books += 1
        bid_sizes = [q for _, q in bids]
        ask_sizes = [q for _, q in asks]
        if bids and asks:
            c.spread_sum += 2e4 * (asks[0][0] - bids[0][0]) / (asks[0][0] + bids[0][0])
            c.spread_n += 1
        b1 = bid_sizes[0] if bids else 0.0
        a1 = ask_sizes[0] if asks else 0.0
        if b1 + a1 > 0:
            c.imb1_sum += (b1 - a1) / (b1 + a1)
            c.imb1_n += 1
        b5 = math.fsum(bid_sizes)
        a5 = math.fsum(ask_sizes)
        if b5 + a5 > 0:
            c.imb5_sum += (b5 - a5) / (b5 + a5)
            c.imb5_n += 1
        if bids or asks:
            c.level_sum += b5 + a5
            c.level_n += len(bids) + len(asks)
            c.level_max = max(c.level_max, *bid_sizes, *ask_sizes)
        # one price → (size, level) map per side and book, kept for the next book's comparison
        maps = _level_maps(bids, asks)
        prev = self.prev_book
        if prev is not None and ts - prev[0] <= self.config.idle_ms:
            before = self._prev_maps or _level_maps(prev[1], prev[2])
            _depth_changes(c, prev[1], bids, before[0], maps[0], bid_side=True)
            _depth_changes(c, prev[2], asks, before[1], maps[1], bid_side=False)
        self.prev_book = (ts, bids, asks)
        self._prev_maps = maps
        if bids and asks:
            c.last_mid = (bids[0][0] + asks[0][0]) / 2
        # plain lists: the chunk is state, and the changelog's writer (orjson) refuses a named tuple
        c.layers_gone.extend(list(layer) for layer in self.layer_tracker.on_book(ts, bids, asks))
        if self.bwm is None:
            self.bwm = self.first_book = ts
        elif ts > self.bwm:
            self.bwm = ts
        return self._advance()

    def flush(self) -> list[FlowChunk]:
        """End of input: close every open chunk now. Their records are late from here on."""
        if self.open:
            self.closed_below = max(self.closed_below, max(self.open) + 1)
        return self._close_ready()

    # -- watermark ---------------------------------------------------------------------------------------
    def watermark(self) -> int | None:
        """``min(qwm, bwm)`` for a feed with books, ``qwm`` without (``None``: no progress yet)."""
        q, b = self.qwm, self.bwm
        if not self.books:
            return q
        if q is None or b is None:
            return None
        return min(q, b)

    def _advance(self) -> list[FlowChunk]:
        w = self.watermark()
        if w is not None:
            below = (w - self.config.grace_ms) // self.config.chunk_ms
            self.closed_below = max(self.closed_below, below)
        if self.heap and self.heap[0] < self.closed_below:
            return self._close_ready()
        return []

    def _close_ready(self) -> list[FlowChunk]:
        out: list[FlowChunk] = []
        heap = self.heap
        while heap and heap[0] < self.closed_below:
            out.append(self._close(self.open.pop(heapq.heappop(heap))))
        return out

    # -- closing a chunk ---------------------------------------------------------------------------------
    def _close(self, c: _Chunk) -> FlowChunk:
        """Chunk ``c``'s features as it closes. The windows slide to it first; it joins the stored ones (the
        recent chunks, the baseline) only at the end, so its z-scores compare it with the chunks before it."""
        cfg = self.config
        n = c.index
        layer = self._settle(c)
        baseline = self.baseline
        span = baseline.slide(n, self.last_closed)
        volume_p95 = baseline.long_volume_p95(n)
        level_typical = baseline.level_typical()
        window = self._long_window(c)

        v: dict[str, float | None] = dict.fromkeys(FLOW_FEATURE_NAMES)
        trades, volume = _chunk_trade_values(v, c)
        _chunk_book_values(v, c, level_typical, layer)
        trades_l, volume_l = _long_size_values(v, window, cfg.long_chunks, volume_p95)
        rush_l, rush_max_l, buy_orders_l, mirror_l = _long_order_values(v, window, volume_l)
        level_max_l = _long_book_values(v, window, volume_l, level_typical)
        if span >= cfg.baseline_min_chunks:
            baseline.sum_z_scores(v, span, (trades, trades_l), (volume, volume_l), (c.rush_orders, rush_l))
            baseline.order_z_scores(v, span, buy_orders_l, mirror_l)
            baseline.own_scale_values(v, c, span, rush_max_l, level_max_l)
        self._join_windows(c, trades, volume, v)
        return self._emit(n, v)

    def _settle(self, c: _Chunk) -> tuple[float | None, float | None, float | None, float | None]:
        """Derive the closing chunk's rush orders, cancellation proxy and largest vanished layer, then drop the
        per-ms and per-price detail they came from (not needed any more, and not worth keeping in the state);
        carry the last trade price and mid on. Returns the layer's size in typical levels, move, snapshots, level."""
        self.chunk_lists.forget(c.index)
        k = self.config.rush_min_trades
        rushes = [count for count in c.ms.values() if count >= k]
        c.rush_orders, c.rush_trades = len(rushes), sum(rushes)
        c.rush_max = max(c.ms.values(), default=0)
        c.cancel_l1, c.cancel_l25 = _cancellations(c)
        layer = _largest_layer(c)
        c.ms, c.traded, c.gone_l1, c.gone_l25, c.layers_gone = {}, {}, {}, {}, []
        c.prev_price = self.last_price
        if c.trades:
            self.last_price = c.last_price
        c.prev_mid = self.last_mid
        if c.last_mid is not None:
            self.last_mid = c.last_mid
        return layer

    def _long_window(self, c: _Chunk) -> list[_Chunk]:
        """The long chunk of ``c``: the closed chunks of the last ``long_chunks`` indices plus ``c`` itself."""
        recent = self.recent
        while recent and recent[0].index <= c.index - self.config.long_chunks:
            recent.popleft()
        return [*recent, c]

    def _join_windows(self, c: _Chunk, trades: int, volume: float, v: Mapping[str, float | None]) -> None:
        """The closed chunk joins the long window and the baseline (after its own features are computed)."""
        self.recent.append(c)
        entry = BaselineEntry(
            chunk=c.index,
            trades=trades,
            volume=volume,
            rush_orders=c.rush_orders,
            level_mean=c.level_mean,
            buy_orders=c.buy_orders,
            rush_max=c.rush_max,
            mirror_volume=c.mirror_volume,
            cancel_l25=c.cancel_l25,
            level_max=c.level_max if c.books else 0.0,
            ret_bps=v["ret_bps"] or 0.0,
            mid_ret_bps=v["mid_ret_bps"] or 0.0,
        )
        self.baseline.observe(entry)
        self.last_closed = c.index

    def _emit(self, n: int, v: Mapping[str, float | None]) -> FlowChunk:
        """The chunk's record: non-finite values as ``None``, print-level features null unless every trade prints."""
        isfinite = math.isfinite
        values = {name: x if x is None or isfinite(x) else None for name, x in v.items()}
        if self.prints != "trades":  # snapshots, or not known yet
            values.update(dict.fromkeys(PRINT_LEVEL_FEATURE_NAMES))
        cfg = self.config
        return FlowChunk(self.symbol, n * cfg.chunk_ms, (n + 1) * cfg.chunk_ms, values)

    # -- state -------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """JSON-safe snapshot (lists, floats, ints, strings; floats round-trip exactly through JSON)."""
        return state_of(self)

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        config: FlowConfig | None = None,
        *,
        books: bool = True,
        prints: Prints | None = "trades",
    ) -> FlowState:
        """Restore a :meth:`to_state` snapshot; ``config`` may change ``grace_ms``/``idle_ms`` only. A snapshot of an
        older version is brought up to this one first (:mod:`~tapewatch.detectors.flow.versions`), so an upgraded
        worker resumes where it stopped."""
        return restore(cls, state, config, books=books, prints=prints)

    def __repr__(self) -> str:
        return f"FlowState({self.symbol!r}, open={sorted(self.open)}, closed_below={self.closed_below})"
