"""One-minute OHLCV bars on event time: an incremental per-symbol builder and its pandas batch twin.

Definitions (shared by :class:`BarBuilder` and :func:`bars_from_quotes`, which must agree):

* A quote belongs to the minute ``start = ts - ts % 60000``; the bar covers ``[start, start + 60000)``.
* A quote with ``price`` set is a trade: it sets ``open`` (first trade of the minute, in arrival order),
  ``high``, ``low``, ``close`` (last trade), adds ``size`` to ``volume`` and ``price * size`` to the VWAP
  numerator, and counts one in ``trades``. A quote without a price (no trade) changes no bar.
* Every quote, trade or not, advances the symbol's clock (the newest minute seen). A bar closes, and is
  emitted, when a quote of a later minute arrives for its symbol. Minutes without trades emit no bar.
* A quote of a minute before the clock is *late*: it belongs to a closed minute, changes nothing and is
  reported (:class:`LateQuoteError`) so the caller can count it and dead-letter it.
* ``vwap = sum(price * size) / sum(size)``; when every trade of the minute has ``size == 0`` (a venue that
  reports prices without sizes) it is the plain mean of the trade prices.
* ``price_change_pct`` compares ``close`` with the previous *emitted* bar of the symbol (across minute gaps),
  ``volume_change_pct`` compares ``volume`` likewise; both are ``None`` for the first bar, and
  ``volume_change_pct`` is ``None`` when the previous volume is 0.
* ``venue`` is the venue of the minute's first trade.

This module is pure computation (no Kafka): the stream worker keeps one builder per symbol in a faust
table through :meth:`BarBuilder.to_state` / :meth:`BarBuilder.from_state`. A watermark-with-grace variant
(several open minutes per symbol) can evolve the state under a new ``STATE_VERSION``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from tapewatch.records import Bar, Quote, finite

MINUTE_MS: Final = 60_000
STATE_VERSION: Final = 1

#: columns of the frames returned by :func:`bars_from_quotes` and :func:`bars_to_frame`, in this order
BAR_COLUMNS: Final[tuple[str, ...]] = tuple(Bar.model_fields)
_QUOTE_COLUMNS: Final = ("symbol", "venue", "ts", "price", "size")


def minute_start(ts: int) -> int:
    """Start (epoch ms) of the minute that contains ``ts``."""
    return ts - ts % MINUTE_MS


def pct_change(value: float, previous: float | None) -> float | None:
    """``(value - previous) / previous`` in percent; ``None`` without a (non-zero) previous value."""
    if previous is None or previous == 0:
        return None
    return finite((value - previous) / previous * 100.0)


class LateQuoteError(ValueError):
    """A quote for a minute the builder has already closed. The state is unchanged."""

    def __init__(self, symbol: str, ts: int, clock: int) -> None:
        self.symbol = symbol
        self.ts = ts
        self.clock = clock
        super().__init__(
            f"late quote: {symbol} ts={ts} is in minute {minute_start(ts)}, minutes before {clock} are closed"
        )


@dataclass(slots=True)
class _OpenBar:
    """The accumulating (not yet closed) minute of one symbol."""

    venue: str
    start: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    notional: float  # sum(price * size): the VWAP numerator
    price_sum: float  # sum(price): the VWAP fallback when volume == 0
    trades: int

    @classmethod
    def first(cls, venue: str, start: int, price: float, size: float) -> _OpenBar:
        return cls(venue, start, price, price, price, price, size, price * size, price, 1)

    def add(self, price: float, size: float) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.volume += size
        self.notional += price * size
        self.price_sum += price
        self.trades += 1

    @property
    def vwap(self) -> float:
        return self.notional / self.volume if self.volume > 0 else self.price_sum / self.trades


class BarBuilder:
    """Incremental one-minute bars of one symbol; every update is O(1)."""

    __slots__ = ("_open", "clock", "prev_close", "prev_volume", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        #: start of the newest minute seen; minutes before it are closed (``None`` before the first quote)
        self.clock: int | None = None
        self.prev_close: float | None = None
        self.prev_volume: float | None = None
        self._open: _OpenBar | None = None

    # -- updates -----------------------------------------------------------------------------------
    def update(self, quote: Quote) -> list[Bar]:
        """Apply one quote; return the bars it closed (oldest first, at most one with this policy).

        Raises :class:`LateQuoteError` (state unchanged) for a quote of an already closed minute, and
        :class:`ValueError` for a quote of another symbol.
        """
        if quote.symbol != self.symbol:
            raise ValueError(f"quote for {quote.symbol!r} given to the bar builder of {self.symbol!r}")
        minute = quote.ts - quote.ts % MINUTE_MS
        closed: list[Bar] = []
        if self.clock is not None and minute != self.clock:
            if minute < self.clock:
                raise LateQuoteError(self.symbol, quote.ts, self.clock)
            closed = self._close()
        self.clock = minute
        price = quote.price
        if price is not None:
            if self._open is None:
                self._open = _OpenBar.first(quote.venue, minute, price, quote.size)
            else:
                self._open.add(price, quote.size)
        return closed

    def flush(self) -> list[Bar]:
        """End of input: close the open minute now. Quotes of that minute are late from here on."""
        if self.clock is None:
            return []
        closed = self._close()
        self.clock += MINUTE_MS
        return closed

    @property
    def open_bar_start(self) -> int | None:
        """Start of the minute that has trades but is not closed yet."""
        return self._open.start if self._open is not None else None

    def _close(self) -> list[Bar]:
        acc = self._open
        if acc is None:
            return []
        self._open = None
        bar = Bar(
            symbol=self.symbol,
            venue=acc.venue,
            start=acc.start,
            end=acc.start + MINUTE_MS,
            open=acc.open,
            high=acc.high,
            low=acc.low,
            close=acc.close,
            volume=acc.volume,
            vwap=acc.vwap,
            trades=acc.trades,
            price_change_pct=pct_change(acc.close, self.prev_close),
            volume_change_pct=pct_change(acc.volume, self.prev_volume),
        )
        self.prev_close = acc.close
        self.prev_volume = acc.volume
        return [bar]

    # -- state -------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot (floats round-trip exactly through JSON)."""
        acc = self._open
        return {
            "v": STATE_VERSION,
            "symbol": self.symbol,
            "clock": self.clock,
            "prev_close": self.prev_close,
            "prev_volume": self.prev_volume,
            "open": None
            if acc is None
            else {
                "venue": acc.venue,
                "start": acc.start,
                "open": acc.open,
                "high": acc.high,
                "low": acc.low,
                "close": acc.close,
                "volume": acc.volume,
                "notional": acc.notional,
                "price_sum": acc.price_sum,
                "trades": acc.trades,
            },
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> BarBuilder:
        version = state.get("v")
        if version != STATE_VERSION:
            raise ValueError(f"bar state version {version!r} is not supported (expected {STATE_VERSION})")
        builder = cls(str(state["symbol"]))
        builder.clock = _opt_int(state["clock"])
        builder.prev_close = _opt_float(state["prev_close"])
        builder.prev_volume = _opt_float(state["prev_volume"])
        acc = state["open"]
        if acc is not None:
            builder._open = _OpenBar(
                venue=str(acc["venue"]),
                start=int(acc["start"]),
                open=float(acc["open"]),
                high=float(acc["high"]),
                low=float(acc["low"]),
                close=float(acc["close"]),
                volume=float(acc["volume"]),
                notional=float(acc["notional"]),
                price_sum=float(acc["price_sum"]),
                trades=int(acc["trades"]),
            )
        return builder

    def __repr__(self) -> str:
        return f"BarBuilder({self.symbol!r}, clock={self.clock}, open={self.open_bar_start})"


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


class MultiBarBuilder:
    """One :class:`BarBuilder` per symbol, for in-process use (replays, tests)."""

    def __init__(self) -> None:
        self.builders: dict[str, BarBuilder] = {}
        self.late: list[Quote] = []

    def update(self, quote: Quote) -> list[Bar]:
        """Apply one quote; late quotes are kept in :attr:`late` instead of raising."""
        builder = self.builders.get(quote.symbol)
        if builder is None:
            builder = self.builders[quote.symbol] = BarBuilder(quote.symbol)
        try:
            return builder.update(quote)
        except LateQuoteError:
            self.late.append(quote)
            return []

    def flush(self) -> list[Bar]:
        return [bar for builder in self.builders.values() for bar in builder.flush()]


def build_bars(quotes: Iterable[Quote], *, include_open: bool = False) -> list[Bar]:
    """Run the incremental builder over ``quotes`` (arrival order); closed bars in emission order."""
    multi = MultiBarBuilder()
    bars = [bar for quote in quotes for bar in multi.update(quote)]
    if include_open:
        bars.extend(multi.flush())
    return bars


# -- batch twin -----------------------------------------------------------------------------------
def quotes_to_frame(quotes: Iterable[Quote]) -> pd.DataFrame:
    """The columns :func:`bars_from_quotes` reads, one row per quote, in the given (arrival) order."""
    rows = [(q.symbol, q.venue, q.ts, q.price, q.size) for q in quotes]
    frame = pd.DataFrame.from_records(rows, columns=list(_QUOTE_COLUMNS))
    return frame.astype({"ts": "int64", "price": "float64", "size": "float64"})


def bars_to_frame(bars: Iterable[Bar]) -> pd.DataFrame:
    """Bars as a frame shaped like :func:`bars_from_quotes`' output (sorted by symbol, start)."""
    rows = [tuple(getattr(bar, name) for name in BAR_COLUMNS) for bar in bars]
    frame = pd.DataFrame.from_records(rows, columns=list(BAR_COLUMNS))
    return _normalise(frame)


def bars_from_quotes(quotes: pd.DataFrame, *, include_open: bool = False) -> pd.DataFrame:
    """The bars :class:`BarBuilder` emits for ``quotes``, computed in one batch.

    ``quotes`` has one row per quote in arrival order with columns ``symbol``, ``venue``, ``ts`` (epoch ms),
    ``price`` (NaN/None when nothing traded) and optionally ``size`` (0 when missing). Late quotes are
    dropped exactly as the builder rejects them. Only closed bars are returned unless ``include_open``
    (the builder's :meth:`BarBuilder.flush` at the end). One row per bar, columns :data:`BAR_COLUMNS`,
    sorted by ``symbol`` then ``start``; missing change percentages are NaN.
    """
    missing = {"symbol", "venue", "ts", "price"} - set(quotes.columns)
    if missing:
        raise ValueError(f"quotes frame lacks column(s) {', '.join(sorted(missing))}")
    df = pd.DataFrame(
        {
            "symbol": quotes["symbol"].to_numpy(),
            "venue": quotes["venue"].to_numpy(),
            "ts": quotes["ts"].to_numpy(dtype="int64"),
            "price": pd.to_numeric(quotes["price"]).to_numpy(dtype="float64"),
            "size": quotes["size"].fillna(0.0).to_numpy(dtype="float64")
            if "size" in quotes.columns
            else np.zeros(len(quotes)),
        }
    )
    df["minute"] = df["ts"] - df["ts"] % MINUTE_MS

    # The clock a quote meets is the newest minute among the symbol's earlier quotes; before it is late.
    by_symbol = df.groupby("symbol", sort=False)["minute"]
    clock = by_symbol.cummax().groupby(df["symbol"], sort=False).shift(1)
    df = df[~(df["minute"] < clock)]
    if not include_open:
        newest = df.groupby("symbol", sort=False)["minute"].transform("max")
        df = df[df["minute"] < newest]

    trades = df[df["price"].notna()].assign(notional=lambda t: t["price"] * t["size"])
    if trades.empty:
        return _normalise(pd.DataFrame(columns=list(BAR_COLUMNS)))
    agg = trades.groupby(["symbol", "minute"], sort=True).agg(
        venue=("venue", "first"),
        open=("price", "first"),
        high=("price", "max"),
        low=("price", "min"),
        close=("price", "last"),
        volume=("size", "sum"),
        notional=("notional", "sum"),
        price_sum=("price", "sum"),
        trades=("price", "count"),
    )
    agg = agg.reset_index()
    volume = agg["volume"]
    agg["vwap"] = np.where(volume > 0, agg["notional"] / volume.where(volume > 0), agg["price_sum"] / agg["trades"])
    previous = agg.groupby("symbol", sort=False)[["close", "volume"]].shift(1)
    prev_volume = previous["volume"].where(previous["volume"] != 0)
    with np.errstate(over="ignore"):  # as pct_change: a non-finite change is no change (None/NaN)
        price_change = (agg["close"] - previous["close"]) / previous["close"] * 100.0
        volume_change = (agg["volume"] - prev_volume) / prev_volume * 100.0
    agg["price_change_pct"] = price_change.where(np.isfinite(price_change))
    agg["volume_change_pct"] = volume_change.where(np.isfinite(volume_change))
    agg["start"] = agg["minute"]
    agg["end"] = agg["minute"] + MINUTE_MS
    return _normalise(agg)


def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.loc[:, list(BAR_COLUMNS)].astype(
        {
            "symbol": "object",
            "venue": "object",
            "start": "int64",
            "end": "int64",
            "open": "float64",
            "high": "float64",
            "low": "float64",
            "close": "float64",
            "volume": "float64",
            "vwap": "float64",
            "trades": "int64",
            "price_change_pct": "float64",
            "volume_change_pct": "float64",
        }
    )
    return out.sort_values(["symbol", "start"], kind="stable").reset_index(drop=True)
