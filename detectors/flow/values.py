"""The features of a closing chunk, as pure functions of the chunks alone: the base chunk's own values and the
long chunk's (the window of the last ``long_chunks`` chunks). The baseline's z-scores are
:class:`~tapewatch.detectors.flow.baseline.Baseline`'s. Each function fills its part of the chunk's value dict ``v`` in
place, so closing a chunk allocates nothing beyond the one dict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from tapewatch.detectors.flow.chunk import _Chunk
from tapewatch.detectors.layers import Vanished


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
