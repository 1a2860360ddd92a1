"""The per-chunk accumulator: everything one base chunk of one symbol gathers from its quotes and books until it
closes (:class:`_Chunk`), and how consecutive books feed its depth changes. What it means is defined in the package
docstring (:mod:`tapewatch.detectors.flow`: *Definitions*).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

from tapewatch.records import BOOK_DEPTH

Levels = Sequence[tuple[float, float]]
#: one side of a book as the state keeps it
BookSide = tuple[tuple[float, float], ...]
#: price → (size, level index) of one side
LevelMap = dict[float, tuple[float, int]]

#: the chunk's per-price and per-millisecond slots: dicts, stored as their key and value lists
_DICT_SLOTS: Final = frozenset({"sizes", "ms", "traded", "gone_l1", "gone_l25"})


#: the chunk's fields, in its stored order (:meth:`_Chunk.to_list`)
CHUNK_FIELDS: Final = (
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


class _Chunk:
    """Everything one base chunk accumulates. Quote fields are fed by quotes only, book fields by books only;
    the derived fields are set when the chunk closes (and its per-price/per-ms dicts are then dropped)."""

    __slots__ = CHUNK_FIELDS

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
        self.layers_gone: list[Any] = []  # persistent layers that vanished (tapewatch.detectors.layers.Vanished)
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
        for name in CHUNK_FIELDS:
            value = getattr(self, name)
            out.append([list(value), list(value.values())] if name in _DICT_SLOTS else value)
        return out

    @classmethod
    def from_list(cls, data: Sequence[Any]) -> _Chunk:
        """Restore :meth:`to_list`."""
        chunk = cls(0)
        for name, value in zip(CHUNK_FIELDS, data, strict=True):
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
