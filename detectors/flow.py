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
  chunks at 1 s and from 90 to 8 at 5 s on the wide regime — README).
* A chunk is emitted (one :class:`FlowChunk`, ``ts`` = the chunk end) when it closes, only if it holds at least
  one quote or book; empty chunks are never emitted but count as zeros in every window.

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

Definitions
-----------
* A *trade* is a quote with a price (``size`` may be 0). Its aggressor is ``Quote.side`` (``B``/``S``); when
  the feed does not say, it is *inferred* (:mod:`detectors.aggressor`: the quote rule against the quote's own
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
* *Layer* (:mod:`detectors.layers`): a level 1–5 of at least 8× the book's typical level (the median level size,
  weighted over about 4 minutes of event time), shown at one price over consecutive snapshots (one is enough where
  books come 2 s or more apart: an order resting a few seconds shows in one 5 s snapshot only); it *vanishes* when
  less than a quarter of its largest size is left there while the price is still in view, unless its side gained
  half its size at another price in the same update (it moved) or a layer of the other side vanished with it (the
  book was pulled). ``layer_*`` describe the chunk's largest vanished layer by size not explained by the chunk's
  trades at its price (a level that traded away is not a cancellation: at level 1 most do), in typical levels; its
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
layer_level               the level (1–5) it last showed at                                 level      layer life
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
:mod:`detectors.features`), so they never drift however long the stream runs; other sums use ``math.fsum``.

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
>>> chunks = [c for q in quotes.itertuples() for c in state.update_quote_values(q.ts, q.price, q.size, q.side)]
>>> chunks_to_frame([*chunks, *state.flush()]).equals(frame)
True
"""

from __future__ import annotations

import heapq
import math
import operator
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate, starmap
from typing import Any, Final, NamedTuple

import numpy as np
import pandas as pd

from detectors.aggressor import AggressorInference
from detectors.features import _ExactSums  # the one exact rolling-sum definition of the feature library
from detectors.feed_learning import PrintsLearner
from detectors.layers import LayerTracker, Vanished
from tapewatch.feeds import Prints
from tapewatch.records import BOOK_DEPTH, Book, Cadence, Features, Quote

FLOW_FEATURE_SET_VERSION: Final = "flow-v10"
FLOW_STATE_VERSION: Final = 10
#: a version-1 … -8 (flow-v1 … flow-v8) state still loads: see :meth:`FlowState.from_state`. flow-v5's layer
#: tracker weighs its mean level size in event time (it keeps the last book's ts), flow-v4's per book; flow-v6
#: keeps flow-v5's state and leaves the print-level features null on a snapshot feed; flow-v7 keeps flow-v6's
#: state and adds ``volume_rel_p95_long``, whose window it rebuilds from the baseline; flow-v8 keeps flow-v7's
#: state and adds ``mirror_trades_long`` and ``mirror_excess_share_long`` (from sums the state already keeps);
#: flow-v9's layer tracker learns the gap between books (a flow-v8 state learns it again from its next books);
#: flow-v10's layer tracker judges levels 1–5 against the median level: an older state's tracker starts afresh
_V9: Final = (9, "flow-v9")
_V8: Final = (8, "flow-v8")
_V7: Final = (7, "flow-v7")
_V6: Final = (6, "flow-v6")
_V5: Final = (5, "flow-v5")
_V4: Final = (4, "flow-v4")
_V1: Final = (1, "flow-v1")
_V2: Final = (2, "flow-v2")
_V3: Final = (3, "flow-v3")
#: chunk fields flow-v2 added (a v1 chunk starts them at zero)
_V2_CHUNK_FIELDS: Final = frozenset({"buy_orders", "mirror_trades", "mirror_volume", "rush_max", "sell_orders"})
#: chunk fields flow-v3 added (a v1/v2 chunk starts them at zero)
_V3_CHUNK_FIELDS: Final = frozenset({"inferred", "last_mid", "layer_side", "layer_size", "layers_gone", "prev_mid"})

CHUNK_FEATURE_NAMES: Final[tuple[str, ...]] = (
    "trades",
    "volume",
    "size_mean",
    "size_std",
    "rush_orders",
    "rush_trades",
    "rush_max",
    "buy_orders",
    "sell_orders",
    "mirror_trades",
    "mirror_volume",
    "buy_volume",
    "sell_volume",
    "aggr_imbalance",
    "alternation",
    "size_repeat",
    "ret_bps",
    "range_bps",
    "spread_bps",
    "book_imb_l1",
    "book_imb_l5",
    "book_updates",
    "depth_added",
    "depth_added_l1",
    "depth_added_l25",
    "depth_removed",
    "depth_removed_l1",
    "depth_removed_l25",
    "cancel",
    "cancel_l1",
    "cancel_l25",
    "level_typical",
    "level_max_rel",
    "trades_z",
    "volume_z",
    "rush_z",
    "cancel_l25_z",
    "ret_sigma_bps",
    "mid_ret_bps",
    "mid_sigma_bps",
    "layer_cancel_rel",
    "layer_side",
    "layer_move_bps",
    "layer_books",
    "layer_level",
)
LONG_FEATURE_NAMES: Final[tuple[str, ...]] = (
    "trades_long",
    "trades_std_long",
    "volume_long",
    "volume_std_long",
    "size_mean_long",
    "size_std_long",
    "rush_orders_long",
    "rush_trades_long",
    "aggr_imbalance_long",
    "alternation_long",
    "size_repeat_long",
    "size_repeat_vol_long",
    "size_mode_share_long",
    "ret_bps_long",
    "range_bps_long",
    "spread_bps_long",
    "book_imb_l1_long",
    "book_imb_l5_long",
    "depth_added_l25_long",
    "cancel_long",
    "cancel_l1_long",
    "cancel_l25_long",
    "level_max_rel_long",
    "trades_z_long",
    "volume_z_long",
    "volume_rel_p95_long",
    "rush_z_long",
    "rush_max_long",
    "rush_max_z_long",
    "order_imbalance_long",
    "order_imbalance_z_long",
    "buy_orders_z_long",
    "mirror_vol_share_long",
    "mirror_z_long",
    "mirror_trades_long",
    "mirror_excess_share_long",
    "size_mode_vol_share_long",
    "inferred_share_long",
    "level_max_z_long",
    "consumed_share_long",
    "mid_ret_bps_long",
)
FLOW_FEATURE_NAMES: Final[tuple[str, ...]] = CHUNK_FEATURE_NAMES + LONG_FEATURE_NAMES
_PRINT_LEVEL_PREFIXES: Final = (
    "rush_",
    "buy_orders",
    "sell_orders",
    "mirror_",
    "alternation",
    "size_repeat",
    "size_mode_",
    "order_imbalance",
)
#: what only a feed that prints every trade can show — same-millisecond rush orders, aggressive orders (a run
#: of fills), alternation and size repetition between consecutive prints. A snapshot feed
#: (:attr:`FlowState.prints`) aggregates the prints of each interval into one, so these are ``None`` there,
#: never a misleading zero; its one print per snapshot still carries the interval's volume, price and
#: (inferred) side, and ``trades`` counts the snapshots that printed. Every feature of these families is one:
#: rush orders, aggressive orders, mirror trades, alternation, size repetition and the modal size
PRINT_LEVEL_FEATURE_NAMES: Final[frozenset[str]] = frozenset(
    name for name in FLOW_FEATURE_NAMES if name.startswith(_PRINT_LEVEL_PREFIXES)
)
#: a readable label and the unit of each feature the pattern detectors cite in an alert's evidence (the table
#: above, for an analyst: :mod:`detectors.evidence`); a detector cites one through
#: :func:`detectors.patterns.base.cited`
FEATURE_LABELS: Final[Mapping[str, tuple[str, str]]] = {
    "trades_z": ("trade count vs the symbol's baseline, this chunk", "σ"),
    "trades_z_long": ("trade count vs the symbol's baseline, long window", "σ"),
    "volume_z": ("volume vs the symbol's baseline, this chunk", "σ"),
    "volume_z_long": ("volume vs the symbol's baseline, long window", "σ"),
    "volume_long": ("volume traded, long window", "shares"),
    "volume_rel_p95_long": ("volume / the symbol's 95th-percentile long window", "×"),
    "buy_orders_z_long": ("aggressive buy orders vs the symbol's rate, long window", "σ"),
    "order_imbalance_z_long": ("buy vs sell orders by count, a fair coin's z, long window", "σ"),
    "order_imbalance_long": ("order imbalance by count, (buy − sell) / all, long window", "−1…1"),
    "rush_max_long": ("most trades in one millisecond, long window", "trades"),
    "rush_max_z_long": ("largest rush vs the symbol's usual largest, long window", "σ"),
    "aggr_imbalance": ("aggressor volume imbalance, (buy − sell) / all, this chunk", "−1…1"),
    "aggr_imbalance_long": ("aggressor volume imbalance, (buy − sell) / all, long window", "−1…1"),
    "inferred_share_long": ("share of trades whose side was inferred, long window", "share"),
    "ret_bps": ("price return, this chunk", "bps"),
    "ret_bps_long": ("price return, long window", "bps"),
    "mid_ret_bps": ("mid-price return, this chunk", "bps"),
    "mid_ret_bps_long": ("mid-price return, long window", "bps"),
    "ret_sigma_bps": ("the symbol's usual chunk return (σ of its baseline)", "bps"),
    "range_bps": ("price range (high / low), this chunk", "bps"),
    "range_bps_long": ("price range (high / low), long window", "bps"),
    "spread_bps": ("mean bid-ask spread, this chunk", "bps"),
    "spread_bps_long": ("mean bid-ask spread, long window", "bps"),
    "consumed_share_long": ("level-1 size removed / size traded, long window", "share"),
    "mirror_trades": ("mirror trades (same size, other side), this chunk", "trades"),
    "mirror_trades_long": ("mirror trades (same size, other side), long window", "trades"),
    "mirror_z_long": ("mirror-trade volume vs the symbol's baseline, long window", "σ"),
    "mirror_vol_share_long": ("mirror trades' share of the volume, long window", "share"),
    "mirror_excess_share_long": ("mirror share above the symbol's own, long window", "share"),
    "alternation_long": ("share of consecutive sided trades that switch side, long window", "share"),
    "size_mode_vol_share_long": ("volume share of the size carrying the most volume, long window", "share"),
    "cancel_l25": ("size cancelled at levels 2–5, this chunk", "shares"),
    "cancel_l25_z": ("levels 2–5 cancellations vs the book's own churn, this chunk", "σ"),
    "level_max_rel_long": ("largest level / the typical level size, long window", "×"),
    "level_max_z_long": ("largest level vs the symbol's usual largest, long window", "σ"),
    "book_imb_l5_long": ("book size imbalance, levels 1–5, (bid − ask) / all, long window", "−1…1"),
    "layer_cancel_rel": ("vanished layer's size / the typical level size", "×"),
    "layer_side": ("the layer's side: +1 bid, −1 ask", ""),
    "layer_move_bps": ("the mid's move away from the layer's side over its life", "bps"),
    "layer_books": ("book snapshots the layer showed in", "snapshots"),
    "layer_level": ("the level (1–5) the layer last showed at", "level"),
}

#: quote columns :func:`compute_flow_frame` reads (``side``, ``bid``, ``ask`` optional); the simulator's layout
QUOTE_COLUMNS: Final = ("symbol", "ts", "price", "size", "side", "bid", "ask")
#: book columns: ``symbol``, ``ts`` and the replay level columns (missing levels NaN)
BOOK_COLUMNS: Final = (
    "symbol",
    "ts",
    *(f"{side}{kind}{i}" for side in ("bid", "ask") for kind in ("", "sz") for i in range(1, BOOK_DEPTH + 1)),
)

Levels = Sequence[tuple[float, float]]
#: one side of a book as the state keeps it
BookSide = tuple[tuple[float, float], ...]
#: price → (size, level index) of one side
LevelMap = dict[float, tuple[float, int]]


class BaselineEntry(NamedTuple):
    """One closed non-empty chunk in the baseline window (the state keeps the fields as columns, in this order)."""

    #: the chunk's index (its start over ``chunk_ms``)
    chunk: int
    trades: int
    volume: float
    rush_orders: int
    #: mean displayed level size (None without books)
    level_mean: float | None
    buy_orders: int
    #: largest rush (trades in one millisecond)
    rush_max: int
    mirror_volume: float
    #: size cancelled at levels 2–5
    cancel_l25: float
    #: largest single displayed level (0 without books)
    level_max: float
    #: return and mid return (bps; 0 without trades, without books)
    ret_bps: float
    mid_ret_bps: float


_BASELINE_COLUMNS: Final = len(BaselineEntry._fields)


@dataclass(frozen=True, slots=True)
class FlowConfig:
    """Chunking, windows and thresholds. ``grace_ms``/``idle_ms`` may change across a restart; the others are
    baked into the state (:meth:`FlowState.from_state` refuses a state made with different ones).

    >>> config = FlowConfig(chunk_ms=1_000, long_chunks=25)  # 1 s chunks, a 25 s long window
    >>> config.fingerprint()  # what a saved state must have been made with
    [1000, 25, 720, 60, 3, 5000]
    >>> FlowState.from_state(FlowState("2330", config).to_state(), FlowConfig())
    Traceback (most recent call last):
    ...
    ValueError: flow state was made with config [1000, 25, 720, 60, 3, 5000], not [5000, 5, 720, 60, 3, 5000]
    >>> FlowConfig(chunk_ms=500, rush_min_trades=1)
    Traceback (most recent call last):
    ...
    ValueError: FlowConfig.rush_min_trades must be ≥ 2
    """

    #: base chunk length
    chunk_ms: int = 5_000
    #: base chunks in a long chunk (5 × 5 s = 25 s)
    long_chunks: int = 5
    #: base chunks in the rolling baseline of the z-scores and the typical level size (720 × 5 s = 60 min)
    baseline_chunks: int = 720
    #: baseline chunks needed before z-scores are given (60 × 5 s = 5 min)
    baseline_min_chunks: int = 60
    #: how far behind the watermark a record may still arrive
    grace_ms: int = 2_000
    #: a book more than this after the previous one is not compared with it (depth changes start afresh)
    idle_ms: int = 60_000
    #: trades in one millisecond that make a rush order
    rush_min_trades: int = 3
    #: a trade mirrors the previous one (same size, opposite aggressor) only if at most this much later
    mirror_ms: int = 5_000

    def __post_init__(self) -> None:
        for name in self.__slots__:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"FlowConfig.{name} must be an integer, got {value!r}")
        if self.chunk_ms < 1:
            raise ValueError("FlowConfig.chunk_ms must be ≥ 1")
        if self.long_chunks < 1:
            raise ValueError("FlowConfig.long_chunks must be ≥ 1")
        if self.baseline_chunks < 2:
            raise ValueError("FlowConfig.baseline_chunks must be ≥ 2")
        if not 1 <= self.baseline_min_chunks <= self.baseline_chunks:
            raise ValueError("FlowConfig.baseline_min_chunks must be within 1..baseline_chunks")
        if self.grace_ms < 0:
            raise ValueError("FlowConfig.grace_ms must be ≥ 0")
        if self.idle_ms < 1:
            raise ValueError("FlowConfig.idle_ms must be ≥ 1")
        if self.rush_min_trades < 2:
            raise ValueError("FlowConfig.rush_min_trades must be ≥ 2")
        if self.mirror_ms < 0:
            raise ValueError("FlowConfig.mirror_ms must be ≥ 0")

    def fingerprint(self) -> list[int]:
        """The settings the state depends on."""
        return [
            self.chunk_ms,
            self.long_chunks,
            self.baseline_chunks,
            self.baseline_min_chunks,
            self.rush_min_trades,
            self.mirror_ms,
        ]


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


@dataclass(frozen=True, slots=True)
class FlowChunk:
    """The features of one closed base chunk of one symbol; ``ts`` is the chunk end (exclusive)."""

    symbol: str
    start: int
    end: int
    values: dict[str, float | None]

    @property
    def ts(self) -> int:
        return self.end

    def to_features(self, venue: str) -> Features:
        """The wire record (``features`` topic, cadence ``fast``)."""
        return Features(
            symbol=self.symbol,
            venue=venue,
            ts=self.end,
            values=self.values,
            version=FLOW_FEATURE_SET_VERSION,
            cadence=Cadence.FAST,
        )


# -- per-chunk accumulators --------------------------------------------------------------------------------
_DICT_SLOTS: Final = frozenset({"sizes", "ms", "traded", "gone_l1", "gone_l25"})


class _Chunk:
    """Everything one base chunk accumulates. Quote fields are fed by quotes only, book fields by books only;
    the derived fields are set when the chunk closes (and its per-price/per-ms dicts are then dropped)."""

    __slots__ = (
        "added_l1",
        "added_l25",
        "books",
        "buy",
        "buy_orders",
        "cancel_l1",
        "cancel_l25",
        "first_price",
        "first_ts",
        "gone_l1",
        "gone_l25",
        "high",
        "imb1_n",
        "imb1_sum",
        "imb5_n",
        "imb5_sum",
        "index",
        "inferred",
        "last_mid",
        "last_price",
        "last_ts",
        "layer_side",
        "layer_size",
        "layers_gone",
        "level_max",
        "level_n",
        "level_sum",
        "low",
        "mirror_trades",
        "mirror_volume",
        "ms",
        "pairs",
        "prev_mid",
        "prev_price",
        "qspread_n",
        "qspread_sum",
        "quotes",
        "removed_l1",
        "removed_l25",
        "rush_max",
        "rush_orders",
        "rush_trades",
        "sell",
        "sell_orders",
        "sizes",
        "spread_n",
        "spread_sum",
        "switches",
        "traded",
        "trades",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        # quotes
        self.quotes = 0
        self.trades = 0
        self.sizes: dict[float, int] = {}  # size → trades
        self.ms: dict[int, int] = {}  # ts → trades (rush orders)
        self.traded: dict[float, float] = {}  # price → traded size (cancellation proxy)
        self.first_ts = 0
        self.first_price = 0.0
        self.last_ts = 0
        self.last_price = 0.0
        self.high = 0.0
        self.low = 0.0
        self.buy = 0.0
        self.sell = 0.0
        self.pairs = 0
        self.switches = 0
        self.buy_orders = 0
        self.sell_orders = 0
        self.mirror_trades = 0
        self.mirror_volume = 0.0
        self.inferred = 0  # trades whose side was inferred
        self.qspread_sum = 0.0
        self.qspread_n = 0
        # books
        self.books = 0
        self.spread_sum = 0.0
        self.spread_n = 0
        self.imb1_sum = 0.0
        self.imb1_n = 0
        self.imb5_sum = 0.0
        self.imb5_n = 0
        self.added_l1 = 0.0
        self.added_l25 = 0.0
        self.removed_l1 = 0.0
        self.removed_l25 = 0.0
        self.gone_l1: dict[float, float] = {}  # price → size removed at level 1
        self.gone_l25: dict[float, float] = {}
        self.level_sum = 0.0
        self.level_n = 0
        self.level_max = 0.0
        self.last_mid: float | None = None  # mid of the chunk's last two-sided book (book-stream order)
        self.layers_gone: list[Any] = []  # persistent layers that vanished (detectors.layers.Vanished)
        # derived at close
        self.rush_orders = 0
        self.rush_trades = 0
        self.rush_max = 0
        self.cancel_l1 = 0.0
        self.cancel_l25 = 0.0
        self.prev_price: float | None = None
        self.prev_mid: float | None = None
        self.layer_size = 0.0  # the largest vanished layer's size not explained by trades at its price
        self.layer_side = 0  # its side: +1 bid, -1 ask

    def to_list(self) -> list[Any]:
        out: list[Any] = []
        for name in self.__slots__:
            value = getattr(self, name)
            out.append([list(value), list(value.values())] if name in _DICT_SLOTS else value)
        return out

    @classmethod
    def from_list(cls, data: Sequence[Any], version: int = 3) -> _Chunk:
        chunk = cls(0)
        absent = (_V2_CHUNK_FIELDS if version < 2 else frozenset()) | (_V3_CHUNK_FIELDS if version < 3 else frozenset())
        names = [n for n in cls.__slots__ if n not in absent]
        for name, value in zip(names, data, strict=True):
            if name in _DICT_SLOTS:
                keys, vals = value
                if name == "ms":
                    setattr(chunk, name, {int(k): int(v) for k, v in zip(keys, vals, strict=True)})
                elif name == "sizes":
                    setattr(chunk, name, {float(k): int(v) for k, v in zip(keys, vals, strict=True)})
                else:
                    setattr(chunk, name, {float(k): float(v) for k, v in zip(keys, vals, strict=True)})
            else:
                setattr(chunk, name, value)
        return chunk

    @property
    def volume(self) -> float:
        return math.fsum(size * count for size, count in self.sizes.items())

    @property
    def level_mean(self) -> float | None:
        return self.level_sum / self.level_n if self.level_n else None


def _size_stats(sizes: Mapping[float, int]) -> tuple[int, float, float | None, float | None, float | None]:
    """Trades, volume, mean size, population std (None with < 2 trades) and the repeated-size trade share."""
    n = sum(sizes.values())
    volume = math.fsum(s * c for s, c in sizes.items())
    if n == 0:
        return 0, volume, None, None, None
    mean = volume / n
    if n < 2:
        return n, volume, mean, None, None
    std = math.sqrt(math.fsum(c * (s - mean) ** 2 for s, c in sizes.items()) / n)
    repeat = sum(c for c in sizes.values() if c > 1) / n
    return n, volume, mean, std, repeat


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _imbalance(a: float, b: float) -> float | None:
    return (a - b) / (a + b) if a + b > 0 else None


class _IntSums:
    """``Σx`` and ``Σx²`` of a multiset of integers — the baseline's counts — as plain (exact) ints: the
    interface of :class:`detectors.features._ExactSums` with ``shift`` 0, so :func:`_mean_var` reads both, at a
    fraction of the cost (no float decomposition per value)."""

    __slots__ = ("count", "s1", "s2", "shift")

    def __init__(self, values: Collection[int] = ()) -> None:
        self.count = len(values)
        self.s1 = sum(values)
        self.s2 = sum(map(operator.mul, values, values))
        self.shift = 0

    def add(self, x: int) -> None:
        self.s1 += x
        self.s2 += x * x
        self.count += 1

    def remove(self, x: int) -> None:
        self.s1 -= x
        self.s2 -= x * x
        self.count -= 1


def _mean_var(sums: _ExactSums | _IntSums, span: int) -> tuple[float, float]:
    """Mean and population variance of ``span`` values whose non-zero ones are in ``sums`` (zeros implied),
    correctly rounded from the exact sums."""
    den = span << sums.shift
    return sums.s1 / den, (span * sums.s2 - sums.s1 * sums.s1) / (den * den)


# -- the features of a closing chunk -----------------------------------------------------------------------
# Module functions of the chunks alone (the baseline's z-scores are FlowState methods); each fills its part of
# the chunk's value dict ``v`` in place, so closing a chunk allocates nothing beyond what it did in one piece.
def _cancellations(c: _Chunk) -> tuple[float, float]:
    """The cancellation proxy at level 1 and at levels 2–5: removed size not explained by the chunk's trades at
    its price (trades eat level 1 first)."""
    cancel_l1 = cancel_l25 = 0.0
    for price in {**c.gone_l1, **c.gone_l25}:
        r1 = c.gone_l1.get(price, 0.0)
        r25 = c.gone_l25.get(price, 0.0)
        t = c.traded.get(price, 0.0)
        cancel_l1 += max(0.0, r1 - t)
        cancel_l25 += max(0.0, r25 - max(0.0, t - r1))
    return cancel_l1, cancel_l25


def _largest_layer(c: _Chunk) -> tuple[float | None, float | None, float | None, float | None]:
    """Set the chunk's largest vanished layer (by size its trades at that price do not explain, in typical
    levels) and side; return that layer's size against the typical level, move (bps), snapshots and level."""
    rel: float | None = None
    layer_move: float | None = None
    layer_books: float | None = None
    layer_level: float | None = None
    for entry in c.layers_gone:
        if len(entry) != len(Vanished._fields):  # an older state's: judged by another yardstick
            continue
        layer = Vanished(*entry)
        gone = layer.size - c.traded.get(layer.price, 0.0)
        if gone > c.layer_size and layer.typical > 0:
            c.layer_size, c.layer_side = gone, int(layer.side)
            rel = gone / layer.typical
            layer_move = None if layer.move_bps is None else float(layer.move_bps)
            layer_books, layer_level = float(layer.books), float(layer.level)
    return rel, layer_move, layer_books, layer_level


def _chunk_trade_values(v: dict[str, float | None], c: _Chunk) -> tuple[int, float]:
    """The base chunk's trade features; returns its trades and volume (for the z-scores and the baseline)."""
    trades, volume, size_mean, size_std, repeat = _size_stats(c.sizes)
    v["trades"] = float(trades)
    v["volume"] = volume
    v["size_mean"] = size_mean
    v["size_std"] = size_std
    v["size_repeat"] = repeat
    v["rush_orders"] = float(c.rush_orders)
    v["rush_trades"] = float(c.rush_trades)
    v["rush_max"] = float(c.rush_max)
    v["buy_orders"] = float(c.buy_orders)
    v["sell_orders"] = float(c.sell_orders)
    v["mirror_trades"] = float(c.mirror_trades)
    v["mirror_volume"] = c.mirror_volume
    v["buy_volume"] = c.buy
    v["sell_volume"] = c.sell
    v["aggr_imbalance"] = _imbalance(c.buy, c.sell)
    v["alternation"] = _ratio(c.switches, c.pairs)
    if trades:
        ref = c.prev_price if c.prev_price is not None else c.first_price
        v["ret_bps"] = 1e4 * math.log(c.last_price / ref)
        v["range_bps"] = 1e4 * math.log(c.high / c.low)
    return trades, volume


def _chunk_book_values(
    v: dict[str, float | None],
    c: _Chunk,
    level_typical: float | None,
    layer: tuple[float | None, float | None, float | None, float | None],
) -> None:
    """The base chunk's book features (spread, mid, depth changes, cancellation, levels, layers)."""
    v["spread_bps"] = _ratio(c.spread_sum, c.spread_n) if c.spread_n else _ratio(c.qspread_sum, c.qspread_n)
    if c.last_mid is not None and c.prev_mid is not None:
        v["mid_ret_bps"] = 1e4 * math.log(c.last_mid / c.prev_mid)
    if c.layer_size > 0 and layer[0] is not None:
        v["layer_cancel_rel"], v["layer_move_bps"], v["layer_books"], v["layer_level"] = layer
        v["layer_side"] = float(c.layer_side)
    v["book_imb_l1"] = _ratio(c.imb1_sum, c.imb1_n)
    v["book_imb_l5"] = _ratio(c.imb5_sum, c.imb5_n)
    v["book_updates"] = float(c.books)
    v["depth_added"] = c.added_l1 + c.added_l25
    v["depth_added_l1"] = c.added_l1
    v["depth_added_l25"] = c.added_l25
    v["depth_removed"] = c.removed_l1 + c.removed_l25
    v["depth_removed_l1"] = c.removed_l1
    v["depth_removed_l25"] = c.removed_l25
    v["cancel"] = c.cancel_l1 + c.cancel_l25
    v["cancel_l1"] = c.cancel_l1
    v["cancel_l25"] = c.cancel_l25
    v["level_typical"] = level_typical
    if level_typical and c.books:
        v["level_max_rel"] = c.level_max / level_typical


def _long_size_values(
    v: dict[str, float | None], window: Sequence[_Chunk], big_l: int, volume_p95: float | None
) -> tuple[int, float]:
    """The long chunk's trade counts, volumes and trade sizes; returns its trades and volume."""
    sizes: dict[float, int] = {}
    for w in window:
        for size, count in w.sizes.items():
            sizes[size] = sizes.get(size, 0) + count
    trades_l, volume_l, mean_l, std_l, repeat_l = _size_stats(sizes)
    counts = [w.trades for w in window]
    v["trades_long"] = float(trades_l)
    sq = sum(x * x for x in counts)
    v["trades_std_long"] = math.sqrt((big_l * sq - trades_l * trades_l) / (big_l * big_l))
    v["volume_long"] = volume_l
    if volume_p95:
        v["volume_rel_p95_long"] = volume_l / volume_p95
    volumes = [w.volume for w in window]
    vmean = volume_l / big_l
    v["volume_std_long"] = math.sqrt(
        math.fsum([*((x - vmean) ** 2 for x in volumes), (big_l - len(window)) * vmean * vmean]) / big_l
    )
    v["size_mean_long"] = mean_l
    v["size_std_long"] = std_l
    v["size_repeat_long"] = repeat_l
    if trades_l >= 2:
        v["size_repeat_vol_long"] = _ratio(math.fsum(s * cnt for s, cnt in sizes.items() if cnt > 1), volume_l)
        v["size_mode_share_long"] = max(sizes.values()) / trades_l
        v["size_mode_vol_share_long"] = _ratio(max(s * cnt for s, cnt in sizes.items()), volume_l)
    return trades_l, volume_l


def _long_order_values(
    v: dict[str, float | None], window: Sequence[_Chunk], volume_l: float
) -> tuple[int, int, int, float]:
    """The long chunk's rush, aggressive and mirror orders, sides and prices; returns its rush orders, largest
    rush, buy orders and mirror volume."""
    rush_l = sum(w.rush_orders for w in window)
    v["rush_orders_long"] = float(rush_l)
    v["rush_trades_long"] = float(sum(w.rush_trades for w in window))
    rush_max_l = max(w.rush_max for w in window)
    v["rush_max_long"] = float(rush_max_l)
    buy_orders_l = sum(w.buy_orders for w in window)
    sell_orders_l = sum(w.sell_orders for w in window)
    v["order_imbalance_long"] = _imbalance(buy_orders_l, sell_orders_l)
    if buy_orders_l + sell_orders_l:
        v["order_imbalance_z_long"] = (buy_orders_l - sell_orders_l) / math.sqrt(buy_orders_l + sell_orders_l)
    mirror_l = math.fsum(w.mirror_volume for w in window)
    v["mirror_vol_share_long"] = _ratio(mirror_l, volume_l)
    v["mirror_trades_long"] = float(sum(w.mirror_trades for w in window))
    v["inferred_share_long"] = _ratio(sum(w.inferred for w in window), sum(w.trades for w in window))
    buy_l = math.fsum(w.buy for w in window)
    sell_l = math.fsum(w.sell for w in window)
    v["aggr_imbalance_long"] = _imbalance(buy_l, sell_l)
    v["alternation_long"] = _ratio(sum(w.switches for w in window), sum(w.pairs for w in window))
    traded = [w for w in window if w.trades]
    if traded:
        first = window[0].prev_price
        if first is None:
            first = traded[0].first_price
        v["ret_bps_long"] = 1e4 * math.log(traded[-1].last_price / first)
        v["range_bps_long"] = 1e4 * math.log(max(w.high for w in traded) / min(w.low for w in traded))
    return rush_l, rush_max_l, buy_orders_l, mirror_l


def _long_book_values(
    v: dict[str, float | None], window: Sequence[_Chunk], volume_l: float, level_typical: float | None
) -> float | None:
    """The long chunk's book features; returns its largest displayed level (``None`` without books)."""
    spread_n = sum(w.spread_n for w in window)
    if spread_n:
        v["spread_bps_long"] = math.fsum(w.spread_sum for w in window) / spread_n
    else:
        v["spread_bps_long"] = _ratio(math.fsum(w.qspread_sum for w in window), sum(w.qspread_n for w in window))
    v["book_imb_l1_long"] = _ratio(math.fsum(w.imb1_sum for w in window), sum(w.imb1_n for w in window))
    v["book_imb_l5_long"] = _ratio(math.fsum(w.imb5_sum for w in window), sum(w.imb5_n for w in window))
    v["depth_added_l25_long"] = math.fsum(w.added_l25 for w in window)
    mids = [w.last_mid for w in window if w.last_mid is not None]
    if mids and window[0].prev_mid is not None:
        v["mid_ret_bps_long"] = 1e4 * math.log(mids[-1] / window[0].prev_mid)
    if any(w.books for w in window):
        v["consumed_share_long"] = _ratio(math.fsum(w.removed_l1 for w in window), volume_l)
    v["cancel_l1_long"] = math.fsum(w.cancel_l1 for w in window)
    v["cancel_l25_long"] = math.fsum(w.cancel_l25 for w in window)
    v["cancel_long"] = math.fsum(w.cancel_l1 + w.cancel_l25 for w in window)
    booked = [w.level_max for w in window if w.books]
    level_max_l = max(booked) if booked else None
    if level_typical and level_max_l is not None:
        v["level_max_rel_long"] = level_max_l / level_typical
    return level_max_l


# -- the definition ----------------------------------------------------------------------------------------
class FlowState:
    """Order-flow features of one symbol; O(1) amortised work per quote or book.

    :meth:`update_quote` / :meth:`update_book` return the chunks the advancing watermark closed, oldest first,
    or raise :class:`LateRecordError` (state unchanged) for a record of a closed chunk.

    A feed with books: a chunk closes once both streams have passed it (plus the grace), and its book features
    come from the books of the chunk only. Here the bid's second level (9.9) shrinks from 5,000 to 1,000
    without a trade there: 4,000 cancelled at levels 2–5.

    >>> flow = FlowState("2330", FlowConfig(chunk_ms=1_000, grace_ms=0))
    >>> flow.update_book_values(0, [(10.0, 100.0), (9.9, 5_000.0)], [(10.1, 200.0)])
    []
    >>> flow.update_quote_values(300, 10.1, 50.0, "B")  # a buy at the ask
    []
    >>> flow.update_book_values(600, [(10.0, 100.0), (9.9, 1_000.0)], [(10.1, 150.0)])
    []
    >>> flow.update_quote_values(1_100, None)  # the quote stream passes 1 s; the book stream has not yet
    []
    >>> [chunk] = flow.update_book_values(1_200, [(10.0, 100.0), (9.9, 1_000.0)], [(10.1, 150.0)])
    >>> chunk.start, chunk.end, chunk.values["trades"], chunk.values["book_updates"], chunk.values["cancel_l25"]
    (0, 1000, 1.0, 2.0, 4000.0)
    >>> round(chunk.values["book_imb_l1"], 3), round(chunk.values["spread_bps"], 1)  # means over the two books
    (-0.267, 99.5)
    >>> flow.update_quote_values(900, 10.1, 10.0, "B")  # chunk 0 is closed
    Traceback (most recent call last):
    ...
    detectors.flow.LateRecordError: late quote: 2330 ts=900 belongs to the flow chunk starting 0, closed ...
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
        #: records decide (:class:`~detectors.feed_learning.PrintsLearner`, state), and until they have, the
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
        self._heap: list[int] = []  # open chunk indices
        self.last_closed: int | None = None  # index of the last emitted chunk
        self.origin = 0  # first chunk of the baseline's current session
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
        #: closed non-empty chunks of the baseline window
        self.baseline: deque[BaselineEntry] = deque()
        #: the volumes of the long windows inside the baseline, by last chunk and sorted (derived, not stored)
        self.long_volume_ends: deque[tuple[int, float]] = deque()
        self.long_volumes: list[float] = []
        #: chunk index → its serialised form while unchanged: a catch-up keeps many chunks open, and the state
        #: is written once per batch, so re-serialising only the chunks touched since keeps that cost O(touched)
        self._lists: dict[int, list[Any]] = {}
        self._derive()

    def _derive(self) -> None:
        """Rebuild the derived accumulators (heap, exact sums) from the state."""
        self._heap = sorted(self.open)
        self.long_volume_ends.clear()  # rebuilt from the baseline at the next close
        self.long_volumes.clear()
        columns: list[tuple[Any, ...]] = list(zip(*self.baseline, strict=True)) or [()] * _BASELINE_COLUMNS
        _, trades, volume, rush, levels, buy_orders, rush_max, mirror, cancels, level_maxes, rets, mid_rets = columns
        self.trades_sums = _IntSums(trades)
        self.rush_sums = _IntSums(rush)
        self.buy_order_sums = _IntSums(buy_orders)
        self.rush_max_sums = _IntSums(rush_max)
        self.volume_sums = _ExactSums()
        self.level_sums = _ExactSums()
        self.mirror_sums = _ExactSums()
        for x in volume:
            self.volume_sums.add(x)
        for level in levels:
            if level is not None:
                self.level_sums.add(level)
        for x in mirror:
            self.mirror_sums.add(x)
        self.cancel_sums = _ExactSums()
        self.level_max_sums = _ExactSums()
        for x in cancels:
            self.cancel_sums.add(x)
        for x in level_maxes:
            self.level_max_sums.add(x)
        self.ret_sums = _ExactSums()
        for x in rets:
            self.ret_sums.add(x)
        self.mid_ret_sums = _ExactSums()
        for x in mid_rets:
            self.mid_ret_sums.add(x)

    def _baseline_add(self, entry: BaselineEntry) -> None:
        self.ret_sums.add(entry.ret_bps)
        self.mid_ret_sums.add(entry.mid_ret_bps)
        self.trades_sums.add(entry.trades)
        self.volume_sums.add(entry.volume)
        self.rush_sums.add(entry.rush_orders)
        if entry.level_mean is not None:
            self.level_sums.add(entry.level_mean)
        self.buy_order_sums.add(entry.buy_orders)
        self.rush_max_sums.add(entry.rush_max)
        self.mirror_sums.add(entry.mirror_volume)
        self.cancel_sums.add(entry.cancel_l25)
        self.level_max_sums.add(entry.level_max)

    def _baseline_remove(self, entry: BaselineEntry) -> None:
        self.ret_sums.remove(entry.ret_bps)
        self.mid_ret_sums.remove(entry.mid_ret_bps)
        self.trades_sums.remove(entry.trades)
        self.volume_sums.remove(entry.volume)
        self.rush_sums.remove(entry.rush_orders)
        if entry.level_mean is not None:
            self.level_sums.remove(entry.level_mean)
        self.buy_order_sums.remove(entry.buy_orders)
        self.rush_max_sums.remove(entry.rush_max)
        self.mirror_sums.remove(entry.mirror_volume)
        self.cancel_sums.remove(entry.cancel_l25)
        self.level_max_sums.remove(entry.level_max)

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
        self._lists.pop(n, None)  # about to change
        chunk = self.open.get(n)
        if chunk is None:
            chunk = self.open[n] = _Chunk(n)
            heapq.heappush(self._heap, n)
        return chunk

    def update_quote(self, quote: Quote) -> list[FlowChunk]:
        """Apply one quote (trade or snapshot); return the chunks that closed, oldest first."""
        return self.update_quote_values(quote.ts, quote.price, quote.size, quote.side, quote.bid, quote.ask)

    def update_quote_values(
        self,
        ts: int,
        price: float | None,
        size: float = 0.0,
        side: str | None = None,
        bid: float | None = None,
        ask: float | None = None,
    ) -> list[FlowChunk]:
        """:meth:`update_quote` on plain values (``side`` ``"B"``, ``"S"`` or ``None``)."""
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

    def update_book(self, book: Book) -> list[FlowChunk]:
        """Apply one book snapshot; return the chunks that closed, oldest first."""
        # a validated Book's levels are (float, float) tuples already: no per-level conversion on the hot path
        return self._apply_book(book.ts, tuple(book.bids), tuple(book.asks))

    def update_book_values(self, ts: int, bids: Levels, asks: Levels) -> list[FlowChunk]:
        """:meth:`update_book` on plain values: ``(price, size)`` levels, best first."""
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
        c.layers_gone.extend(self.layer_tracker.on_book(ts, bids, asks))
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
        if self._heap and self._heap[0] < self.closed_below:
            return self._close_ready()
        return []

    def _close_ready(self) -> list[FlowChunk]:
        out: list[FlowChunk] = []
        heap = self._heap
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
        span = self._slide_baseline(n)
        volume_p95 = self._slide_long_volumes(n)
        level_typical = self.level_sums.mean() if self.level_sums.count else None
        window = self._long_window(c)

        v: dict[str, float | None] = dict.fromkeys(FLOW_FEATURE_NAMES)
        trades, volume = _chunk_trade_values(v, c)
        _chunk_book_values(v, c, level_typical, layer)
        trades_l, volume_l = _long_size_values(v, window, cfg.long_chunks, volume_p95)
        rush_l, rush_max_l, buy_orders_l, mirror_l = _long_order_values(v, window, volume_l)
        level_max_l = _long_book_values(v, window, volume_l, level_typical)
        if span >= cfg.baseline_min_chunks:
            self._sum_z_scores(v, span, (trades, trades_l), (volume, volume_l), (c.rush_orders, rush_l))
            self._order_z_scores(v, span, buy_orders_l, mirror_l)
            self._own_scale_values(v, c, span, rush_max_l, level_max_l)
        self._join_windows(c, trades, volume, v)
        return self._emit(n, v)

    def _settle(self, c: _Chunk) -> tuple[float | None, float | None, float | None, float | None]:
        """Derive the closing chunk's rush orders, cancellation proxy and largest vanished layer, then drop the
        per-ms and per-price detail they came from (not needed any more, and not worth keeping in the state);
        carry the last trade price and mid on. Returns the layer's size in typical levels, move, snapshots, level."""
        self._lists.pop(c.index, None)
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

    def _slide_baseline(self, n: int) -> int:
        """Move the baseline window (previous chunks only) to chunk ``n``: a new session origin after a long
        gap, eviction of what fell out; returns its span."""
        big_b = self.config.baseline_chunks
        if self.last_closed is None or n - self.last_closed > big_b:
            self.origin = n
        baseline = self.baseline
        while baseline and baseline[0].chunk < n - big_b:
            self._baseline_remove(baseline.popleft())
        return min(big_b, n - self.origin)

    def _long_window(self, c: _Chunk) -> list[_Chunk]:
        """The long chunk of ``c``: the closed chunks of the last ``long_chunks`` indices plus ``c`` itself."""
        recent = self.recent
        while recent and recent[0].index <= c.index - self.config.long_chunks:
            recent.popleft()
        return [*recent, c]

    def _sum_z_scores(
        self,
        v: dict[str, float | None],
        span: int,
        trades: tuple[int, int],
        volume: tuple[float, float],
        rush: tuple[int, int],
    ) -> None:
        """z-scores of the chunk's and the long chunk's (``(chunk, long)`` pairs) trades, volume and rush orders
        against the baseline (empty chunks are zeros)."""
        big_l = self.config.long_chunks
        root_l = math.sqrt(big_l)
        for name, sums, (x, x_long) in (
            ("trades", self.trades_sums, trades),
            ("volume", self.volume_sums, volume),
            ("rush", self.rush_sums, rush),
        ):
            mean, var = _mean_var(sums, span)
            if var > 0:
                std = math.sqrt(var)
                v[f"{name}_z"] = (x - mean) / std
                v[f"{name}_z_long"] = (x_long - big_l * mean) / (root_l * std)

    def _order_z_scores(self, v: dict[str, float | None], span: int, buy_orders_l: int, mirror_l: float) -> None:
        """The long chunk's buy orders and mirror volume against the baseline, and its mirror share above the
        symbol's own."""
        big_l = self.config.long_chunks
        root_l = math.sqrt(big_l)
        for name, sums, sum_long in (
            ("buy_orders_z_long", self.buy_order_sums, buy_orders_l),
            ("mirror_z_long", self.mirror_sums, mirror_l),
        ):
            mean, var = _mean_var(sums, span)
            if var > 0:
                v[name] = (sum_long - big_l * mean) / (root_l * math.sqrt(var))
        # equal prints on alternating sides meet by chance, the more the busier the tape: the window's
        # mirror share above the symbol's own (a surge of two-sided volume surges its chance mirrors too)
        share = v["mirror_vol_share_long"]
        if share is not None and self.volume_sums.s1 > 0:
            v["mirror_excess_share_long"] = share - self.mirror_sums.mean() / self.volume_sums.mean()

    def _own_scale_values(
        self, v: dict[str, float | None], c: _Chunk, span: int, rush_max_l: int, level_max_l: float | None
    ) -> None:
        """Maxima, the book's churn and the volatility units, each against the symbol's own baseline."""
        # a maximum, not a sum: against the baseline chunks' own maxima, not √L-scaled
        mean, var = _mean_var(self.rush_max_sums, span)
        if var > 0:
            v["rush_max_z_long"] = (rush_max_l - mean) / math.sqrt(var)
        # the book against its own churn: how unusual this chunk's cancellation and the window's largest
        # level are for this symbol (a book whose sizes move every snapshot cancels a lot all the time)
        mean, var = _mean_var(self.cancel_sums, span)
        if var > 0 and c.books:
            v["cancel_l25_z"] = (c.cancel_l25 - mean) / math.sqrt(var)
        mean, var = _mean_var(self.level_max_sums, span)
        if var > 0 and level_max_l is not None:
            v["level_max_z_long"] = (level_max_l - mean) / math.sqrt(var)
        # the symbol's own volatility unit: a drift is unusual against it, whatever the stock's tick or pace
        _, var = _mean_var(self.ret_sums, span)
        if var > 0:
            v["ret_sigma_bps"] = math.sqrt(var)
        _, var = _mean_var(self.mid_ret_sums, span)  # the mid does not bounce between bid and ask
        if var > 0:
            v["mid_sigma_bps"] = math.sqrt(var)

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
        self.baseline.append(entry)
        self._baseline_add(entry)
        self.last_closed = c.index

    def _emit(self, n: int, v: Mapping[str, float | None]) -> FlowChunk:
        """The chunk's record: non-finite values as ``None``, print-level features null unless every trade prints."""
        isfinite = math.isfinite
        values = {name: x if x is None or isfinite(x) else None for name, x in v.items()}
        if self.prints != "trades":  # snapshots, or not known yet
            values.update(dict.fromkeys(PRINT_LEVEL_FEATURE_NAMES))
        cfg = self.config
        return FlowChunk(self.symbol, n * cfg.chunk_ms, (n + 1) * cfg.chunk_ms, values)

    def _slide_long_volumes(self, n: int) -> float | None:
        """Slide the robust baseline to chunk ``n`` (the baseline holds chunks ``n - baseline_chunks .. n - 1``);
        the 95th percentile of its long-window volumes, ``None`` with too few windows.

        O(1) per chunk in the steady state (one window leaves, one enters: a bisect and a move of at most
        ``baseline_chunks`` pointers); after a gap or a restore it fills the missing windows from the
        baseline, which gives exactly the windows an uninterrupted run holds.
        """
        cfg = self.config
        big_l = cfg.long_chunks
        lo, hi = max(n - cfg.baseline_chunks, self.origin) + big_l - 1, n - big_l
        ends, values = self.long_volume_ends, self.long_volumes
        while ends and ends[0][0] < lo:
            del values[bisect_left(values, ends.popleft()[1])]
        start = ends[-1][0] + 1 if ends else lo
        if start <= hi:
            volumes: dict[int, float] = {}
            for entry in reversed(self.baseline):  # the newest chunks: the entering windows are the latest
                if entry.chunk <= start - big_l:
                    break
                volumes[entry.chunk] = entry.volume
            for m in range(start, hi + 1):
                x = math.fsum(volumes.get(k, 0.0) for k in range(m - big_l + 1, m + 1))
                ends.append((m, x))
                insort(values, x)
        if len(values) < cfg.baseline_min_chunks:
            return None
        return values[math.ceil(0.95 * len(values)) - 1]

    # -- state -------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """JSON-safe snapshot (lists, floats, ints, strings; floats round-trip exactly through JSON)."""
        prev_book = self.prev_book
        # columnar, indices as deltas: the baseline is most of the state (transposed in C, not per column)
        indices, *columns = list(zip(*self.baseline, strict=True)) or [()] * _BASELINE_COLUMNS
        return {
            "v": FLOW_STATE_VERSION,
            "features": FLOW_FEATURE_SET_VERSION,
            "cfg": self.config.fingerprint(),
            "symbol": self.symbol,
            "wm": [self.qwm, self.bwm, self.first_quote, self.first_book, self.closed_below],
            "last": [
                self.last_closed,
                self.origin,
                self.last_price,
                self.last_side,
                self.last_trade_ts,
                self.last_size,
                *self.aggressor.to_state(),
                self.last_mid,
                self.layer_tracker.to_state(),
            ],
            "book": None
            if prev_book is None
            else [prev_book[0], [list(level) for level in prev_book[1]], [list(level) for level in prev_book[2]]],
            "open": [self._listed(self.open[n]) for n in sorted(self.open)],
            "recent": [self._listed(c) for c in self.recent],
            "base": [
                [b - a for a, b in zip((0, *indices), indices, strict=False)],
                *map(list, columns),
            ],
            # what the symbol's records said of the feed's prints, where its profile does not say
            "prints": None if self.prints_learner is None else self.prints_learner.to_state(),
        }

    def _listed(self, chunk: _Chunk) -> list[Any]:
        lists = self._lists
        if len(lists) > 2 * (len(self.open) + len(self.recent)) + 16:  # forget chunks that are gone
            alive = {*self.open, *(c.index for c in self.recent)}
            self._lists = lists = {n: v for n, v in lists.items() if n in alive}
        listed = lists.get(chunk.index)
        if listed is None:
            listed = lists[chunk.index] = chunk.to_list()
        return listed

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        config: FlowConfig | None = None,
        *,
        books: bool = True,
        prints: Prints | None = "trades",
    ) -> FlowState:
        """Restore a :meth:`to_state` snapshot; ``config`` may change ``grace_ms``/``idle_ms`` only.

        An older state loads too, so an upgraded worker resumes where it stopped. From ``flow-v3`` on everything
        carries over but the layer tracker, which starts afresh (it judged levels by another yardstick).
        From ``flow-v1``/``flow-v2`` watermarks, open chunks and the long window carry over (the new per-chunk
        counts start at zero), but the baseline restarts empty — it lacks the new columns, and zeros there would
        make every new z-score huge — so all z-scores warm up again (``baseline_min_chunks``) from the next chunk
        on.
        """
        cfg = config if config is not None else FlowConfig()
        version = _state_version(state, cfg)
        fs = cls(str(state["symbol"]), cfg, books=books, prints=prints)
        learnt = state.get("prints")
        if prints is None and learnt is not None:  # a profile that says wins over what was learnt
            fs.prints_learner = PrintsLearner.from_state(learnt)
            fs.prints = fs.prints_learner.decided
        fs.qwm, fs.bwm, fs.first_quote, fs.first_book, fs.closed_below = state["wm"]
        fs._load_last(state["last"], v1=version == _V1, tracker=version[0] == FLOW_STATE_VERSION)
        fs._load_book(state["book"], version)
        chunk_version = int(version[0])
        for data in state["open"]:
            chunk = _Chunk.from_list(data, chunk_version)
            fs.open[chunk.index] = chunk
        fs.recent.extend(_Chunk.from_list(data, chunk_version) for data in state["recent"])
        if version not in {_V1, _V2}:  # an older baseline lacks columns: it warms up again
            fs.baseline.extend(_baseline_entries(state["base"]))
        fs._derive()
        return fs

    def _load_last(self, last: list[Any], *, v1: bool, tracker: bool) -> None:
        """The symbol's last closed chunk, session origin, previous trade, side inference, mid and layers (an
        older version's layer tracker judged by another yardstick: this one starts afresh)."""
        if v1:
            self.last_closed, self.origin, self.last_price, self.last_side = last
            self.origin = 0 if self.last_closed is None else self.last_closed + 1
            return
        self.last_closed, self.origin, self.last_price, self.last_side, self.last_trade_ts, self.last_size = last[:6]
        if len(last) > 6:
            self.aggressor.load(last[6:8])
            self.last_mid = None if last[8] is None else float(last[8])
            if tracker:
                self.layer_tracker.load(last[9])

    def _load_book(self, book: Sequence[Any] | None, version: tuple[Any, Any]) -> None:
        """The previous book (the next book's depth changes compare with it)."""
        if book is None:
            return
        self.prev_book = (
            int(book[0]),
            tuple((float(p), float(q)) for p, q in book[1]),
            tuple((float(p), float(q)) for p, q in book[2]),
        )

    def __repr__(self) -> str:
        return f"FlowState({self.symbol!r}, open={sorted(self.open)}, closed_below={self.closed_below})"


def _state_version(state: Mapping[str, Any], cfg: FlowConfig) -> tuple[Any, Any]:
    """The (version, feature set) of a :meth:`FlowState.to_state` snapshot; ValueError for one this code does
    not load or one made with other settings."""
    version = (state.get("v"), state.get("features"))
    if version not in {(FLOW_STATE_VERSION, FLOW_FEATURE_SET_VERSION), _V9, _V8, _V7, _V6, _V5, _V4, _V3, _V2, _V1}:
        raise ValueError(
            f"flow state {state.get('v')!r}/{state.get('features')!r} is not supported "
            f"(expected {FLOW_STATE_VERSION}/{FLOW_FEATURE_SET_VERSION})"
        )
    fingerprint = cfg.fingerprint()[:5] if version == _V1 else cfg.fingerprint()  # v1 had no mirror_ms
    if list(state["cfg"]) != fingerprint:
        raise ValueError(f"flow state was made with config {state['cfg']}, not {fingerprint}")
    return version


def _baseline_entries(base: Sequence[Any]) -> Iterator[BaselineEntry]:
    """The baseline of a flow-v3+ state: columns, indices as deltas (see :meth:`FlowState.to_state`)."""
    deltas, *columns = base
    trades, volumes, rushes, levels, buy_orders, rush_max, mirror, cancels, level_maxes, rets, mid_rets = columns
    return starmap(
        BaselineEntry,
        zip(
            accumulate(map(int, deltas)),
            map(int, trades),
            map(float, volumes),
            map(int, rushes),
            [None if level is None else float(level) for level in levels],
            map(int, buy_orders),
            map(int, rush_max),
            map(float, mirror),
            map(float, cancels),
            map(float, level_maxes),
            map(float, rets),
            map(float, mid_rets),
            strict=True,
        ),
    )


def _level_maps(bids: BookSide, asks: BookSide) -> tuple[LevelMap, LevelMap]:
    """Price → (size, level index) per side (a repeated price: its last level, as a dict keeps it)."""
    return {p: (q, i) for i, (p, q) in enumerate(bids)}, {p: (q, i) for i, (p, q) in enumerate(asks)}


def _depth_changes(c: _Chunk, before: Levels, after: Levels, old: LevelMap, new: LevelMap, *, bid_side: bool) -> None:
    """Size added/removed between two books on one side (``old``/``new``: their :func:`_level_maps`), over the
    prices visible in both: a full side hides what lies beyond its fifth price."""
    if bid_side:
        edge = max(
            before[-1][0] if len(before) >= BOOK_DEPTH else -math.inf,
            after[-1][0] if len(after) >= BOOK_DEPTH else -math.inf,
        )
        sign = 1.0
    else:
        edge = min(
            before[-1][0] if len(before) >= BOOK_DEPTH else math.inf,
            after[-1][0] if len(after) >= BOOK_DEPTH else math.inf,
        )
        sign = -1.0
    edge *= sign  # a price p is visible in both when sign * p >= edge
    for p, (q, i) in new.items():
        if sign * p < edge:
            continue
        grown = q - old[p][0] if p in old else q
        if grown > 0:
            if i == 0:
                c.added_l1 += grown
            else:
                c.added_l25 += grown
    for p, (q0, i) in old.items():
        if sign * p < edge:
            continue
        shrunk = q0 - new[p][0] if p in new else q0
        if shrunk > 0:
            if i == 0:
                c.removed_l1 += shrunk
                c.gone_l1[p] = c.gone_l1.get(p, 0.0) + shrunk
            else:
                c.removed_l25 += shrunk
                c.gone_l25[p] = c.gone_l25.get(p, 0.0) + shrunk


# -- batch: the fold ---------------------------------------------------------------------------------------
def _none_if_nan(values: Iterable[Any]) -> list[Any]:
    return [None if x is None or (isinstance(x, float) and math.isnan(x)) else x for x in values]


def _quote_rows(quotes: pd.DataFrame) -> list[tuple[int, float | None, float, str | None, float | None, float | None]]:
    n = len(quotes)
    ts = quotes["ts"].to_numpy(dtype="int64").tolist()
    price = _none_if_nan(quotes["price"].to_numpy(dtype="float64").tolist())
    size = np.nan_to_num(quotes["size"].to_numpy(dtype="float64"), nan=0.0).tolist() if "size" in quotes else [0.0] * n
    side: list[str | None] = (
        [s if s == "B" or s == "S" else None for s in quotes["side"].tolist()]  # noqa: PLR1714
        if "side" in quotes
        else [None] * n
    )
    bid = _none_if_nan(quotes["bid"].to_numpy(dtype="float64").tolist()) if "bid" in quotes else [None] * n
    ask = _none_if_nan(quotes["ask"].to_numpy(dtype="float64").tolist()) if "ask" in quotes else [None] * n
    return list(zip(ts, price, size, side, bid, ask, strict=True))


def _book_rows(books: pd.DataFrame) -> list[tuple[int, Levels, Levels]]:
    ts = books["ts"].to_numpy(dtype="int64").tolist()
    sides: list[list[Levels]] = []
    for side in ("bid", "ask"):
        prices = books[[f"{side}{i}" for i in range(1, BOOK_DEPTH + 1)]].to_numpy(dtype="float64").tolist()
        sizes = books[[f"{side}sz{i}" for i in range(1, BOOK_DEPTH + 1)]].to_numpy(dtype="float64").tolist()
        sides.append(
            [
                tuple((p, q) for p, q in zip(ps, qs, strict=True) if not (math.isnan(p) or math.isnan(q)))
                for ps, qs in zip(prices, sizes, strict=True)
            ]
        )
    return list(zip(ts, sides[0], sides[1], strict=True))


def iter_flow(
    symbol: str,
    quotes: pd.DataFrame,
    books: pd.DataFrame,
    config: FlowConfig | None = None,
    *,
    late: list[LateRecordError] | None = None,
    state: FlowState | None = None,
    flush: bool = True,
    with_books: bool | None = None,
    prints: Prints | None = "trades",
) -> Iterator[FlowChunk]:
    """Fold :class:`FlowState` over one symbol's quotes and books, each in its own row order (its stream order).

    Merge order: the two streams are merged by ``ts``, a quote before a book at equal ``ts`` (the simulator's
    emission order); each stream keeps its own row order (a stream that is not sorted stays unsorted). Late
    records are dropped, and collected in ``late`` if given. ``flush`` closes the open chunks at the end.
    ``with_books``: whether the feed sends books (:attr:`FlowState.books`; default: whether ``books`` has rows);
    ``prints``: the feed's prints (:attr:`FlowState.prints`).
    """
    if with_books is None:
        with_books = len(books) > 0
    fs = state if state is not None else FlowState(symbol, config, books=with_books, prints=prints)
    qrows = _quote_rows(quotes)
    brows = _book_rows(books)
    i = j = 0
    nq, nb = len(qrows), len(brows)
    update_quote, update_book = fs.update_quote_values, fs.update_book_values
    while i < nq or j < nb:
        try:
            if j >= nb or (i < nq and qrows[i][0] <= brows[j][0]):
                i += 1
                yield from update_quote(*qrows[i - 1])
            else:
                j += 1
                yield from update_book(*brows[j - 1])
        except LateRecordError as exc:
            if late is not None:
                late.append(exc)
    if flush:
        yield from fs.flush()


def chunks_to_frame(chunks: Iterable[FlowChunk]) -> pd.DataFrame:
    """Columns ``symbol``, ``ts`` (chunk end) and :data:`FLOW_FEATURE_NAMES` (float64, None → NaN)."""
    chunk_list = list(chunks)
    data = np.array(
        [[np.nan if x is None else x for x in c.values.values()] for c in chunk_list], dtype="float64"
    ).reshape(len(chunk_list), len(FLOW_FEATURE_NAMES))
    frame = pd.DataFrame(data, columns=list(FLOW_FEATURE_NAMES))
    frame.insert(0, "ts", np.array([c.end for c in chunk_list], dtype="int64"))
    frame.insert(0, "symbol", np.array([c.symbol for c in chunk_list], dtype=object))
    return frame


def compute_flow_frame(
    quotes: pd.DataFrame,
    books: pd.DataFrame,
    config: FlowConfig | None = None,
    *,
    late: list[LateRecordError] | None = None,
    with_books: Callable[[str], bool] | None = None,
    prints: Callable[[str], Prints | None] | None = None,
    learnt: dict[str, Prints | None] | None = None,
) -> pd.DataFrame:
    """Flow features of many symbols: per symbol (sorted), the fold :func:`iter_flow` over its rows.
    ``with_books`` says per symbol whether its feed sends books (default: whether ``books`` has its rows),
    ``prints`` what its feed prints (default: every trade; ``None``: learnt from the symbol's records, and
    then ``learnt`` receives symbol → what was learnt, ``None`` for a symbol with too few records).

    ``quotes`` has :data:`QUOTE_COLUMNS` (``simulator.quotes_frame()``), ``books`` the :data:`BOOK_COLUMNS`
    (``simulator.books_frame()``); either may be empty. Within a symbol each frame's row order is its stream
    order. Returns :func:`chunks_to_frame` rows ordered by symbol, then ``ts``.
    """
    q_groups = dict(iter(quotes.groupby("symbol", sort=False))) if len(quotes) else {}
    b_groups = dict(iter(books.groupby("symbol", sort=False))) if len(books) else {}
    empty_q = quotes.iloc[:0]
    empty_b = books.iloc[:0]
    chunks: list[FlowChunk] = []
    for symbol in sorted({str(s) for s in (*q_groups, *b_groups)}):
        symbol_books = b_groups.get(symbol, empty_b)
        sends_books = len(symbol_books) > 0 if with_books is None else with_books(symbol)
        fs = FlowState(symbol, config, books=sends_books, prints="trades" if prints is None else prints(symbol))
        chunks.extend(iter_flow(symbol, q_groups.get(symbol, empty_q), symbol_books, config, late=late, state=fs))
        if learnt is not None and fs.prints_learner is not None:
            learnt[symbol] = fs.prints
    return chunks_to_frame(chunks)
