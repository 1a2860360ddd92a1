"""Fast order-flow features over short event-time chunks, defined once: an incremental per-symbol state machine
(:class:`FlowState`) and its batch twin (:func:`compute_flow_frame`, the fold of the same state machine).

Published pump-and-dump detectors get most of their signal from features like these (La Morgia et al. 2020:
25 s chunks, rush orders, z-scores against a rolling window); they are what lets an alert fire within seconds.

Chunks and windows (:class:`FlowConfig`)
----------------------------------------
* **Base chunk** ``n`` covers event time ``[n * chunk_ms, (n + 1) * chunk_ms)`` (default 5 s).
* **Long chunk** of ``n``: the base chunks ``n - long_chunks + 1 .. n`` (default 5, i.e. the last 25 s).
* **Baseline** of ``n``: the base chunks ``max(n - baseline_chunks, origin) .. n - 1`` (default 720 = 60 min),
  where *empty chunks count as zeros*. ``origin`` is the symbol's first chunk, reset whenever a chunk follows
  the previous non-empty one by more than ``baseline_chunks`` (a new session: the whole window would be
  zeros). z-scores need ``span = min(baseline_chunks, n - origin) >= baseline_min_chunks`` and a baseline that
  is not flat (population std > 0); otherwise they are ``None``. Long-chunk z-scores compare the long sum with
  ``L`` independent baseline chunks: ``(x_long - L mean) / (sqrt(L) std)`` (``L = long_chunks``).
* **Robust baseline** of the long volume: the volumes of the long windows that lie wholly inside the baseline
  and the session (last chunk ``max(n - baseline_chunks + L - 1, origin + L - 1) .. n - L``, so none overlaps
  ``n``'s own). ``volume_rel_p95_long`` divides the long volume by their 95th percentile (nearest rank; ``None``
  with fewer than ``baseline_min_chunks`` windows or a zero percentile). A mean and std are pulled up by the
  symbol's own bursts and down by its idle stretches, so a z-score of 4 is everyday trading for one symbol and
  a rare event for another; a ratio to the symbol's own 95th percentile is not (measured on wash trading at a
  pinned quote: at equal recall on the tuning seeds, clean symbols passing the volume test fell from 543 to 56
  chunks at 1 s and from 90 to 8 at 5 s on the wide regime — docs/archive/detection-history.md).
* A chunk is emitted (one :class:`FlowChunk`, ``ts`` = the chunk end) when it closes, only if it holds at least
  one quote or book; empty chunks are never emitted but count as zeros in every window.

Watermark, lateness, the two input streams
------------------------------------------
Quotes and books arrive on two topics in any interleaving; a chunk closes once both streams have passed it, and a
record is late once its own stream has: the rules, and why the output cannot depend on the interleaving, are
:mod:`tapewatch.detectors.flow.state`'s.

Definitions
-----------
* A *trade* is a quote with a price (``size`` may be 0). Its aggressor is ``Quote.side`` (``B``/``S``); when
  the feed does not say, it is *inferred* (:mod:`tapewatch.detectors.aggressor`: the quote rule against the quote's own
  ``bid``/``ask``, the book in force before the trade, then the tick rule) and counted as inferred
  (``inferred_share_long``); unknown only before any quote or price change. On a *snapshot feed*
  (:attr:`FlowState.prints`, from the venue's feed profile) a trade is one snapshot's print — the size traded
  since the previous snapshot at the last price, none when nothing printed — so ``trades`` counts the
  snapshots that printed, and the features only individual prints can show are null
  (:data:`PRINT_LEVEL_FEATURE_NAMES`).
* *First/last trade* of a chunk: earliest/latest by ``ts``; among equal ``ts`` the first/last to arrive.
* *Reference price* of a chunk: the last trade price of the symbol before the chunk (any distance back), else
  the chunk's first trade price. ``ret_bps = 1e4 ln(last / reference)``; ``range_bps = 1e4 ln(high / low)``.
* *Rush order*: a millisecond with at least ``rush_min_trades`` trades (one aggressive order filling several
  resting orders prints them in the same millisecond).
* *Aggressive order*: a run of consecutive trades (quote-stream order) with the same ``ts`` and the same known
  side — the fills of one order print in one millisecond, so counting orders instead of trades removes the
  noise of how many resting orders each one happened to meet. ``buy_orders``/``sell_orders`` count the runs
  that start in the chunk (a rush order is one order).
* *Mirror trade* (wash-trading footprint): a trade whose previous trade (quote-stream order, across chunk
  boundaries) had the opposite known side and the same non-zero size, at most ``mirror_ms`` earlier (one
  account crossing with itself prints the same size on alternating sides). A burst of ``k`` strictly
  alternating equal prints holds ``k - 1`` mirror trades; a trade of unknown side breaks the chain. Pairs of
  small prints also meet by chance in a busy tape: that background is what the baseline z-score measures
  against (counting only prints above the symbol's mean size made the baseline too sparse for a stable
  z-score: it did worse).
* *Baseline-relative* (``*_z_long`` of this version): how unusual the long chunk is for *this* symbol, so a
  quiet stock and a busy one share thresholds: sums use ``(x_long - L mean) / (sqrt(L) std)`` like the other
  long z-scores; ``rush_max_z_long`` compares the window's largest rush with the baseline chunks' largest
  rushes (empty = 0) as ``(x - mean) / std`` — a maximum is not a sum.
* *Alternation*: pairs of consecutive trades of the symbol (quote-stream order, across chunk boundaries) whose
  sides are both known; a pair belongs to the chunk of its later trade and *alternates* when the sides differ.
  A trade of unknown side breaks the chain.
* *Size repetition*: over the window's trades, the share of trades whose size equals another trade's size
  (``size_repeat``), the volume share of such trades (``size_repeat_vol_long``), the share of the modal size
  (``size_mode_share_long``); ``None`` with fewer than 2 trades.
* *Book spread / imbalance*: per book, ``spread = 1e4 (ask1 - bid1) / mid``; ``imb_l1 = (b1 - a1) / (b1 + a1)``
  on level-1 sizes, ``imb_l5`` on the sums of levels 1–5 (a missing level is size 0; a book with both sides
  empty is skipped). Chunk values are means over the chunk's books; ``spread_bps`` falls back to the mean of
  the quotes' bid/ask spreads when the chunk has no two-sided book.
* *Depth added/removed*: each book is compared, price by price and side by side, with the symbol's previous
  book (book-stream order) if that is at most ``idle_ms`` older. Only prices visible in both books count: a
  full side (5 levels) hides what lies beyond its 5th price, so a level scrolling out of view is not a
  removal. Size growth is *added* (classed by the level it has in the new book), shrinkage *removed* (classed
  by its level in the previous book): level 1 vs levels 2–5.
* *Cancellation proxy* (size that left the book without trading): ``Σ_p max(0, removed_p - traded_p)`` over
  prices ``p``, with ``traded_p`` the chunk's traded size at ``p``; split as ``cancel_l1 = Σ_p max(0, r1_p -
  t_p)``, ``cancel_l25 = Σ_p max(0, r25_p - max(0, t_p - r1_p))`` (trades eat level 1 first), so ``cancel =
  cancel_l1 + cancel_l25``. A trade and the book showing its effect in different chunks (a boundary between
  them) over-count the proxy in the later chunk: it is a proxy.
* *Typical level size*: the mean, over the baseline's chunks that had books, of each chunk's mean displayed
  level size (all levels, both sides); ``level_max_rel`` = the largest single level in the window's books /
  that typical size (spoofing layers are 6–15× it; ordinary additions stay below ~3×).
* *Layer* (:mod:`tapewatch.detectors.layers`): a level 2–5 of at least 4× the book's typical level (the mean level size,
  weighted over about 4 minutes of event time), shown at one price over consecutive snapshots (one is enough where
  books come 2 s or more apart: an order resting a few seconds shows in one 5 s snapshot only); it *vanishes* when
  less than a quarter of its largest size is left there while the price is still in view, unless its side gained
  half its size at another price in the same update (it moved) or a layer of the other side vanished with it (the
  book was pulled). ``layer_*`` describe the chunk's largest vanished layer by size not explained by the chunk's
  trades at its price (a level that traded away is not a cancellation), in typical levels; its
  *life* runs from the snapshot it first showed in to the one it was gone from, and ``layer_move_bps`` is the mid's
  move over that life, positive away from the layer's side (a bid layer and the price up): the effect a spoofer
  wants, however long before the cancellation it came (``None`` where the mid was unknown at either end — a
  one-sided book).

Features (:data:`FLOW_FEATURE_NAMES`; window: *chunk* = the base chunk, *long* = the long chunk, *baseline*
as above; ``None`` when undefined, never NaN/inf):

========================  ================================================================  =========  =========
name                      meaning                                                           unit       window
========================  ================================================================  =========  =========
trades                    number of trades                                                  count      chunk
volume                    traded size                                                       shares     chunk
size_mean                 mean trade size (None without trades)                             shares     chunk
size_std                  population std of trade sizes (None with < 2 trades)              shares     chunk
rush_orders               milliseconds with ≥ rush_min_trades trades                        count      chunk
rush_trades               trades inside those milliseconds                                  count      chunk
rush_max                  most trades in one millisecond (0 without trades)                 count      chunk
buy_orders                aggressive buy orders (runs of same-ms buy fills)                 count      chunk
sell_orders               aggressive sell orders                                            count      chunk
mirror_trades             mirror trades (same size as the previous trade, opposite side)    count      chunk
mirror_volume             their size                                                        shares     chunk
buy_volume                size of buy-aggressor trades                                      shares     chunk
sell_volume               size of sell-aggressor trades                                     shares     chunk
aggr_imbalance            (buy - sell) / (buy + sell) volume; None without sided trades     [-1, 1]    chunk
alternation               share of sided consecutive-trade pairs that switch side           [0, 1]     chunk
size_repeat               share of trades whose size another trade of the chunk also has    [0, 1]     chunk
ret_bps                   1e4 ln(last trade / reference price)                              bps        chunk
range_bps                 1e4 ln(high / low) of the trades                                  bps        chunk
spread_bps                mean L1 spread of the books (else of the quotes' bid/ask)         bps        chunk
book_imb_l1               mean level-1 size imbalance of the books                          [-1, 1]    chunk
book_imb_l5               mean levels 1–5 size imbalance of the books                       [-1, 1]    chunk
book_updates              number of book snapshots                                          count      chunk
depth_added               size added to the book (levels 1–5, both sides)                   shares     chunk
depth_added_l1            … at level 1                                                      shares     chunk
depth_added_l25           … at levels 2–5                                                   shares     chunk
depth_removed             size removed from the book                                        shares     chunk
depth_removed_l1          … at level 1                                                      shares     chunk
depth_removed_l25         … at levels 2–5                                                   shares     chunk
cancel                    cancellation proxy: removed size not explained by trades          shares     chunk
cancel_l1                 … removed at level 1                                              shares     chunk
cancel_l25                … removed at levels 2–5                                           shares     chunk
level_typical             typical displayed level size                                      shares     baseline
level_max_rel             largest single level size / level_typical                         ratio      chunk
trades_z                  z-score of trades against the baseline                            std        chunk
volume_z                  z-score of volume                                                 std        chunk
rush_z                    z-score of rush_orders                                            std        chunk
cancel_l25_z              cancel_l25 against the baseline chunks' (the book's own churn)    std        chunk
ret_sigma_bps             population std of the baseline chunks' ret_bps (no trade = 0)     bps        baseline
mid_ret_bps               1e4 ln(last mid / last mid before the chunk), from the books      bps        chunk
mid_sigma_bps             population std of the baseline chunks' mid_ret_bps (no book = 0)  bps        baseline
layer_cancel_rel          largest persistent layer that vanished untraded / its typ. level  ratio      chunk
layer_side                its side: +1 bid, -1 ask                                          sign       chunk
layer_move_bps            the mid's move away from its side while it showed (bps, signed)   bps        layer life
layer_books               snapshots it showed in                                            count      layer life
layer_level               the level (2–5) it last showed at                                 level      layer life
trades_long               number of trades                                                  count      long
trades_std_long           population std of the base chunks' trade counts (empty = 0)       count      long
volume_long               traded size                                                       shares     long
volume_std_long           population std of the base chunks' volumes (empty = 0)            shares     long
size_mean_long            mean trade size                                                   shares     long
size_std_long             population std of trade sizes                                     shares     long
rush_orders_long          rush orders                                                       count      long
rush_trades_long          trades inside rush orders                                         count      long
aggr_imbalance_long       aggressor volume imbalance                                        [-1, 1]    long
alternation_long          share of sided consecutive-trade pairs that switch side           [0, 1]     long
size_repeat_long          share of trades whose size another trade of the window also has   [0, 1]     long
size_repeat_vol_long      volume share of those trades                                      [0, 1]     long
size_mode_share_long      share of trades with the most frequent size                       [0, 1]     long
ret_bps_long              1e4 ln(last trade / reference price of the long chunk)            bps        long
range_bps_long            1e4 ln(high / low)                                                bps        long
spread_bps_long           mean L1 spread of the books (else of the quotes)                  bps        long
book_imb_l1_long          mean level-1 imbalance of the books                               [-1, 1]    long
book_imb_l5_long          mean levels 1–5 imbalance of the books                            [-1, 1]    long
depth_added_l25_long      size added at levels 2–5                                          shares     long
cancel_long               cancellation proxy                                                shares     long
cancel_l1_long            … at level 1                                                      shares     long
cancel_l25_long           … at levels 2–5                                                   shares     long
level_max_rel_long        largest single level size / level_typical                         ratio      long
trades_z_long             (trades_long - L mean) / (sqrt(L) std) against the baseline       std        long
volume_z_long             same for volume                                                   std        long
volume_rel_p95_long       volume_long / the 95th percentile of the baseline's long windows  ratio      long
rush_z_long               same for rush_orders                                              std        long
rush_max_long             most trades in one millisecond                                    count      long
rush_max_z_long           (rush_max_long - mean) / std of the baseline chunks' rush_max     std        long
order_imbalance_long      (buy - sell) / (buy + sell) aggressive orders (count, not size)   [-1, 1]    long
order_imbalance_z_long    (buy - sell) / sqrt(buy + sell) orders: a fair coin's z           std        long
buy_orders_z_long         buy orders, (x_long - L mean) / (sqrt(L) std) vs the baseline     std        long
mirror_vol_share_long     mirror volume / volume                                            [0, 1]     long
mirror_z_long             mirror volume, (x_long - L mean) / (sqrt(L) std) vs the baseline  std        long
mirror_trades_long        mirror trades                                                     count      long
mirror_excess_share_long  mirror_vol_share_long - the baseline's mirror volume / its volume  share      long
size_mode_vol_share_long  volume share of the size carrying the most volume (≥ 2 trades)    [0, 1]     long
inferred_share_long       share of trades whose side was inferred (quote rule, tick rule)   [0, 1]     long
level_max_z_long          largest level in the window vs the baseline chunks' largest       std        long
consumed_share_long       size removed at level 1 / traded size (wash trades consume none)  ratio      long
mid_ret_bps_long          1e4 ln(last mid / last mid before the long chunk)                 bps        long
========================  ================================================================  =========  =========

Exactness: every accumulator is fed in a fixed order (one stream's order, or chunk-index order), so stream
and batch agree bit for bit. The baseline's running sums are exact (dyadic rationals held as integers, see
:mod:`tapewatch.detectors.features`), so they never drift however long the stream runs; other sums use ``math.fsum``.

The package, by concern:

* :mod:`~tapewatch.detectors.flow.catalogue` — the feature names and labels, the feature-set version,
  :class:`FlowConfig` and the emitted :class:`FlowChunk`;
* :mod:`~tapewatch.detectors.flow.chunk` — the per-chunk accumulator and the depth changes between consecutive books;
* :mod:`~tapewatch.detectors.flow.values` — a closing chunk's features, pure functions of the chunk and its long window;
* :mod:`~tapewatch.detectors.flow.baseline` — the baseline window, its exact running sums and the z-scores against it;
* :mod:`~tapewatch.detectors.flow.state` — :class:`FlowState`: input, watermark, lateness, closing a chunk;
* :mod:`~tapewatch.detectors.flow.persistence` — the state as JSON and back, and its format;
* :mod:`~tapewatch.detectors.flow.versions` — the state's versions: the step from each to the next;
* :mod:`~tapewatch.detectors.flow.batch` — the batch twin: :func:`iter_flow`, :func:`compute_flow_frame`,
  :func:`chunks_to_frame`.

The stream worker keeps one :class:`FlowState` per symbol, persisted with :meth:`FlowState.to_state` /
:meth:`FlowState.from_state` (JSON-safe, versioned). Pure computation: no Kafka, no database.

One symbol's trades on a feed without books, in 1 s chunks: the three buys printed in one millisecond are one
rush order and one aggressive order. The batch twin and the stream's state machine give the same chunks:

>>> import pandas as pd
>>> quotes = pd.DataFrame({
...     "symbol": "2330",
...     "ts": [100, 500, 500, 500, 1_200, 2_300],
...     "price": [10.0, 10.1, 10.1, 10.1, 10.1, 10.0],
...     "size": [100.0, 50.0, 50.0, 50.0, 50.0, 20.0],
...     "side": ["B", "B", "B", "B", "S", "S"],
... })
>>> config = FlowConfig(chunk_ms=1_000)
>>> frame = compute_flow_frame(quotes, pd.DataFrame(columns=BOOK_COLUMNS), config)
>>> frame.ts.tolist(), frame.trades.tolist(), frame.rush_orders.tolist(), frame.buy_orders.tolist()
([1000, 2000, 3000], [4.0, 1.0, 1.0], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0])
>>> state = FlowState("2330", config, books=False)
>>> chunks = [c for q in quotes.itertuples() for c in state.on_quote_values(q.ts, q.price, q.size, q.side)]
>>> chunks_to_frame([*chunks, *state.flush()]).equals(frame)
True
"""

from tapewatch.detectors.flow.baseline import BaselineEntry
from tapewatch.detectors.flow.batch import BOOK_COLUMNS, QUOTE_COLUMNS, chunks_to_frame, compute_flow_frame, iter_flow
from tapewatch.detectors.flow.catalogue import (
    CHUNK_FEATURE_NAMES,
    FEATURE_LABELS,
    FLOW_FEATURE_NAMES,
    FLOW_FEATURE_SET_VERSION,
    LONG_FEATURE_NAMES,
    PRINT_LEVEL_FEATURE_NAMES,
    FlowChunk,
    FlowConfig,
)
from tapewatch.detectors.flow.chunk import BookSide, LevelMap, Levels
from tapewatch.detectors.flow.persistence import FLOW_STATE_VERSION
from tapewatch.detectors.flow.state import FlowState, LateRecordError

__all__ = [
    "BOOK_COLUMNS",
    "CHUNK_FEATURE_NAMES",
    "FEATURE_LABELS",
    "FLOW_FEATURE_NAMES",
    "FLOW_FEATURE_SET_VERSION",
    "FLOW_STATE_VERSION",
    "LONG_FEATURE_NAMES",
    "PRINT_LEVEL_FEATURE_NAMES",
    "QUOTE_COLUMNS",
    "BaselineEntry",
    "BookSide",
    "FlowChunk",
    "FlowConfig",
    "FlowState",
    "LateRecordError",
    "LevelMap",
    "Levels",
    "chunks_to_frame",
    "compute_flow_frame",
    "iter_flow",
]
