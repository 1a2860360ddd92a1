"""The short tapes the stored states under ``tests/data/states/`` were made on, and go on from.

Plain Python, importing nothing of tapewatch: ``tests/data/states/make.py`` runs these tapes through an older
commit's code to write that version's state, and ``tests/unit/test_state_versions.py`` feeds what follows the cut
to the state loaded by today's code.
"""

from __future__ import annotations

from typing import Any, Final

#: 2026-11-26 05:13:20 UTC (13:13:20 Taipei: the pattern tape ends at the TWSE close, 13:30)
T0: Final = 1_795_670_000_000
#: the order-flow settings every flow state was made with (``mirror_ms`` from flow-v2 on)
FLOW_CONFIG: Final = {
    "chunk_ms": 1_000,
    "long_chunks": 2,
    "baseline_chunks": 20,
    "baseline_min_chunks": 4,
    "grace_ms": 0,
    "rush_min_trades": 3,
    "mirror_ms": 5_000,
}
#: the flow tape: a record every 200 ms; the stored state is the one after the first FLOW_CUT records
FLOW_RECORDS: Final = 300
FLOW_CUT: Final = 199
#: the pattern tape: a flow chunk every 5 s; the stored state is the one after the first PATTERN_CUT chunks
PATTERN_CHUNKS: Final = 200
PATTERN_CUT: Final = 120

Levels = list[tuple[float, float]]
#: ("quote", ts, price, size, side, bid, ask) or ("book", ts, bids, asks)
FlowRecord = tuple[Any, ...]


def flow_tape() -> list[FlowRecord]:
    """One symbol's quotes and books: trades a cent either side of 10.00 (some unsided, some mirrored at once), and
    the layers of :func:`_book`."""
    records: list[FlowRecord] = []
    for i in range(FLOW_RECORDS):
        ts = T0 + 200 * i
        step = i // 10
        price = round(10.0 + 0.01 * (step % 3 - 1), 2)
        if i % 2 == 0:
            side = None if i % 6 == 0 else "B" if (i // 2) % 2 else "S"
            size = 2.0 if i % 10 in (2, 4) else float(1 + i % 4)
            records.append(("quote", ts, price, size, side, round(price - 0.01, 2), round(price + 0.01, 2)))
        else:
            records.append(("book", ts, *_book(price, i)))
    return records


def market_tape() -> list[tuple[str, dict[str, Any]]]:
    """The flow tape as the fields of md.quotes (``"quote"``) and md.books (``"book"``) records of AAA on ``sim``."""
    out: list[tuple[str, dict[str, Any]]] = []
    for kind, ts, *rest in flow_tape():
        if kind == "quote":
            price, size, side, bid, ask = rest
            fields = {"price": price, "size": size, "side": side, "bid": bid, "ask": ask}
        else:
            fields = {"bids": rest[0], "asks": rest[1]}
        out.append((kind, {"symbol": "AAA", "venue": "sim", "ts": ts, **fields}))
    return out


def _book(price: float, i: int) -> tuple[Levels, Levels]:
    """Record ``i``'s book: five levels a cent apart either side of ``price``, a bid layer at level 3 now and then,
    and an ask layer at level 4 over the last books before the cut (still showing there)."""
    bids = [(round(price - 0.01 * (k + 1), 2), 100.0 + 10 * ((i + k) % 3)) for k in range(5)]
    asks = [(round(price + 0.01 * (k + 1), 2), 100.0 + 10 * ((i + 2 * k) % 3)) for k in range(5)]
    if i % 20 in (11, 13, 15) or (i // 20 in (4, 9) and i % 20 in (1, 3)):
        bids[2] = (bids[2][0], 5_000.0)
    if 191 <= i <= 203:
        asks[3] = (asks[3][0], 6_000.0)
    return bids, asks


def pattern_tape() -> list[tuple[int, dict[str, float]]]:
    """A symbol's flow features every 5 s from 13:20 Taipei into the close: quiet, then a pump's onset and ramp,
    a sweep given back, vanished layers under pressure and a burst of balanced mirror trades, and a push into the
    close. The values name the features of every version (an older one reads the keys it knows)."""
    quiet = {
        "ret_bps": 0.0,
        "ret_bps_long": 0.0,
        "mid_ret_bps": 0.0,
        "mid_ret_bps_long": 0.0,
        "mid_sigma_bps": 2.0,
        "ret_sigma_bps": 2.0,
        "trades": 10.0,
        "volume": 100.0,
        "trades_z": 0.0,
        "trades_z_long": 0.0,
        "volume_z": 0.0,
        "volume_z_long": 0.0,
        "volume_rel_p95_long": 0.5,
        "aggr_imbalance": 0.0,
        "aggr_imbalance_long": 0.0,
        "order_imbalance_long": 0.0,
        "order_imbalance_z_long": 0.0,
        "buy_orders_z_long": 0.0,
        "rush_max_z_long": 0.0,
        "inferred_share_long": 0.0,
        "spread_bps": 2.0,
        "range_bps_long": 5.0,
        "mirror_z_long": 0.0,
        "mirror_vol_share_long": 0.0,
        "mirror_trades_long": 0.0,
        "mirror_excess_share_long": 0.0,
        "cancel_l25_z": 0.0,
        "level_max_z_long": 0.0,
    }
    chunks = [dict(quiet, ret_bps=(-1.0) ** i, mid_ret_bps=(-1.0) ** i) for i in range(PATTERN_CHUNKS)]
    _episodes(chunks)
    return [(T0 + 5_000 * (i + 1), values) for i, values in enumerate(chunks)]


def _episodes(chunks: list[dict[str, float]]) -> None:
    """The episodes of :func:`pattern_tape`, written over its quiet chunks: most of them in the ten minutes before
    the cut, so that the stored state holds them, and again after it."""
    onset = {"ret_bps": 12.0, "ret_bps_long": 40.0, "mid_ret_bps": 12.0, "mid_ret_bps_long": 40.0}
    surge = {"trades_z": 6.0, "trades_z_long": 6.0, "volume_z": 6.0, "volume_z_long": 6.0, "volume_rel_p95_long": 3.0}
    buying = {"aggr_imbalance": 0.8, "aggr_imbalance_long": 0.8, "order_imbalance_long": 0.8}
    crowd = {"buy_orders_z_long": 5.0, "order_imbalance_z_long": 4.0, "rush_max_z_long": 5.0}
    for i in (*range(20, 26), *range(112, 119), *range(130, 137)):
        chunks[i].update(onset, **surge, **buying, **crowd)
    sweep = {"ret_bps": 60.0, "mid_ret_bps": 60.0, "aggr_imbalance": 1.0, "trades_z": 6.0, "spread_bps": 10.0}
    for start in (50, 104):
        chunks[start].update(sweep)
        for i in range(start + 1, start + 4):
            chunks[i].update(aggr_imbalance=0.9, trades_z=4.0, volume_z=4.0)
    chunks[58].update(ret_bps=-30.0, mid_ret_bps=-30.0, aggr_imbalance=-1.0)
    layer = {"layer_cancel_rel": 9.0, "layer_books": 3.0, "layer_side": 1.0, "layer_move_bps": 8.0, "layer_level": 3.0}
    for i in (70, 110, 124):
        chunks[i].update(layer, mid_ret_bps_long=12.0, cancel_l25=120_000.0, cancel_l25_z=8.0, level_typical=10_000.0)
    wash = {"mirror_z_long": 9.0, "mirror_vol_share_long": 0.6, "mirror_trades_long": 6.0}
    for i in (80, 81, 82, 118, 119, 120):
        chunks[i].update(wash, mirror_excess_share_long=0.5, volume_z_long=5.0, volume_rel_p95_long=3.0)
    for i in range(170, 200):
        chunks[i].update(ret_bps=4.0, ret_bps_long=15.0, mid_ret_bps=4.0, trades_z_long=5.0, aggr_imbalance_long=0.6)
