"""One-minute OHLCV bars on event time with a watermark and a grace period: an incremental per-symbol builder
and its pandas batch twin.

Definitions (shared by :class:`BarBuilder` and :func:`bars_from_quotes`, which must agree):

* A quote belongs to the minute ``start = ts - ts % 60000``; the bar covers ``[start, start + 60000)``.
* A quote with ``price`` set is a trade: it sets ``open`` (the minute's earliest trade by ``ts``, the first to
  arrive among equal ``ts``), ``close`` (the latest by ``ts``, the last to arrive among equal ``ts``), ``high``,
  ``low``, adds ``size`` to ``volume`` and ``price * size`` to the VWAP numerator, and counts one in ``trades``.
  A quote without a price (no trade) changes no bar.
* **Watermark**: every quote, trade or not, advances the symbol's ``clock`` (the newest ``ts`` seen). The
  watermark is ``clock - grace``; a minute closes, and its bar is emitted, once the watermark reaches its end
  (``clock >= start + 60000 + grace``). Several minutes may be open at once while the grace lasts, so a quote
  that arrives out of order by less than ``grace`` still counts. Bars are emitted oldest first. Minutes without
  trades emit no bar. The watermark is per symbol: a symbol's output never depends on other symbols' traffic
  (so it is the same however symbols are spread over partitions and workers).
* A quote of a closed minute is *late*: it changes nothing and is reported (:class:`LateQuoteError`) so the
  caller can count it and dead-letter it — never silently dropped.
* ``vwap = sum(price * size) / sum(size)``; when every trade of the minute has ``size == 0`` (a venue that
  reports prices without sizes) it is the plain mean of the trade prices.
* ``price_change_pct`` compares ``close`` with the previous *emitted* bar of the symbol (across minute gaps),
  ``volume_change_pct`` compares ``volume`` likewise; both are ``None`` for the first bar, and
  ``volume_change_pct`` is ``None`` when the previous volume is 0.
* ``venue`` is the venue of the minute's open trade.

This module is pure computation (no Kafka): the stream worker keeps one builder per symbol in a changelog-backed
table through :meth:`BarBuilder.to_state` / :meth:`BarBuilder.from_state`.

The batch twin over a frame of quotes in arrival order gives the builders' bars, late quotes dropped alike (the
2330 trade at 30 s arrives after one at 70 s: beyond the grace):

>>> from tapewatch.records import Quote
>>> quotes = [
...     Quote(symbol="2330", venue="twse", ts=1_000, price=600.0, size=2.0),
...     Quote(symbol="2317", venue="twse", ts=1_500, price=100.0, size=5.0),
...     Quote(symbol="2330", venue="twse", ts=70_000, price=601.0, size=1.0),
...     Quote(symbol="2330", venue="twse", ts=30_000, price=599.0, size=1.0),
... ]
>>> frame = bars_from_quotes(quotes_to_frame(quotes), include_open=True)
>>> frame[["symbol", "start", "close", "volume"]].to_numpy().tolist()
[['2317', 0, 100.0, 5.0], ['2330', 0, 600.0, 2.0], ['2330', 60000, 601.0, 1.0]]
>>> frame.equals(bars_to_frame(build_bars(quotes, include_open=True)))
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from tapewatch.records import Bar, Quote, finite_or_none
from tapewatch.state_versions import StateVersions

MINUTE_MS: Final = 60_000
#: the bar state's versions (it is read at its current one only: no steps)
BAR_STATE: Final = StateVersions("bar state", first=2)
STATE_VERSION: Final = BAR_STATE.current
DEFAULT_GRACE_MS: Final = 2_000

#: columns of the frames returned by :func:`bars_from_quotes` and :func:`bars_to_frame`, in this order
BAR_COLUMNS: Final[tuple[str, ...]] = tuple(Bar.model_fields)
_QUOTE_COLUMNS: Final = ("symbol", "venue", "ts", "price", "size")
_OPEN_FIELDS: Final = (
    "venue",
    "start",
    "open",
    "open_ts",
    "high",
    "low",
    "close",
    "close_ts",
    "volume",
    "notional",
    "price_sum",
    "trades",
)


def minute_start(ts: int) -> int:
    """Start (epoch ms) of the minute that contains ``ts``."""
    return ts - ts % MINUTE_MS


def pct_change(value: float, previous: float | None) -> float | None:
    """``(value - previous) / previous`` in percent; ``None`` without a (non-zero) previous value."""
    if previous is None or previous == 0:
        return None
    return finite_or_none((value - previous) / previous * 100.0)


class LateQuoteError(ValueError):
    """A quote for a minute the builder has already closed. The state is unchanged."""

    def __init__(self, symbol: str, ts: int, clock: int, grace_ms: int) -> None:
        self.symbol = symbol
        self.ts = ts
        self.clock = clock
        self.grace_ms = grace_ms
        super().__init__(
            f"late quote: {symbol} ts={ts} belongs to minute {minute_start(ts)}, closed since the watermark "
            f"passed its end (newest ts {clock}, grace {grace_ms} ms)"
        )


@dataclass(slots=True)
class _OpenBar:
    """An accumulating (not yet closed) minute of one symbol."""

    venue: str
    start: int
    open: float
    open_ts: int
    high: float
    low: float
    close: float
    close_ts: int
    volume: float
    notional: float  # sum(price * size): the VWAP numerator
    price_sum: float  # sum(price): the VWAP fallback when volume == 0
    trades: int

    @classmethod
    def first(cls, venue: str, start: int, ts: int, price: float, size: float) -> _OpenBar:
        return cls(venue, start, price, ts, price, price, price, ts, size, price * size, price, 1)

    def add(self, venue: str, ts: int, price: float, size: float) -> None:
        if ts < self.open_ts:  # out of order within the grace: an earlier trade is the open
            self.open, self.open_ts, self.venue = price, ts, venue
        if ts >= self.close_ts:
            self.close, self.close_ts = price, ts
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.volume += size
        self.notional += price * size
        self.price_sum += price
        self.trades += 1

    @property
    def vwap(self) -> float:
        # within [low, high] by definition; the clamp only corrects rounding and underflow (tiny prices times
        # tiny sizes), which could otherwise give 0 or a hair outside the bar
        raw = self.notional / self.volume if self.volume > 0 else self.price_sum / self.trades
        return min(max(raw, self.low), self.high)


class BarBuilder:
    """Incremental one-minute bars of one symbol; every quote is O(1) (a handful of open minutes at most).

    >>> from tapewatch.records import Quote
    >>> def trade(ts: int, price: float, size: float) -> Quote:
    ...     return Quote(symbol="2330", venue="twse", ts=ts, price=price, size=size)
    >>> builder = BarBuilder("2330", grace_ms=2_000)
    >>> builder.on_quote(trade(1_000, 600.0, 2.0)), builder.on_quote(trade(30_000, 604.0, 1.0))
    ([], [])
    >>> builder.on_quote(trade(61_000, 602.0, 1.0))  # minute 0 stays open for the grace: until 62 s
    []
    >>> builder.on_quote(trade(59_500, 601.0, 1.0))  # 1.5 s out of order, within the grace: it counts
    []
    >>> [bar] = builder.on_quote(Quote(symbol="2330", venue="twse", ts=62_000))  # no trade, but the clock moves
    >>> bar.start, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.vwap, bar.trades
    (0, 600.0, 604.0, 600.0, 601.0, 4.0, 601.25, 3)
    >>> builder.on_quote(trade(59_900, 605.0, 1.0))
    Traceback (most recent call last):
    ...
    tapewatch.detectors.bars.LateQuoteError: late quote: 2330 ts=59900 belongs to minute 0, closed since the watermark
    ...
    >>> [last] = builder.flush()  # end of input: the open minute closes
    >>> last.start, last.close, round(last.price_change_pct, 4)  # 602 against the previous bar's 601
    (60000, 602.0, 0.1664)
    """

    __slots__ = ("_open", "clock", "grace_ms", "prev_close", "prev_volume", "symbol")

    def __init__(self, symbol: str, grace_ms: int = DEFAULT_GRACE_MS) -> None:
        if grace_ms < 0:
            raise ValueError("grace_ms must be ≥ 0")
        self.symbol = symbol
        self.grace_ms = grace_ms
        #: newest event time seen (``None`` before the first quote); the watermark is ``clock - grace_ms``
        self.clock: int | None = None
        self.prev_close: float | None = None
        self.prev_volume: float | None = None
        self._open: dict[int, _OpenBar] = {}  # by minute start, insertion = ascending start

    # -- input -------------------------------------------------------------------------------------
    def is_closed(self, minute: int) -> bool:
        """Whether the minute starting at ``minute`` is closed (its quotes would be late)."""
        return self.clock is not None and minute + MINUTE_MS + self.grace_ms <= self.clock

    def on_quote(self, quote: Quote) -> list[Bar]:
        """Apply one quote; return the bars the advancing watermark closed (oldest first).

        Raises :class:`LateQuoteError` (state unchanged) for a quote of an already closed minute, and
        :class:`ValueError` for a quote of another symbol.
        """
        if quote.symbol != self.symbol:
            raise ValueError(f"quote for {quote.symbol!r} given to the bar builder of {self.symbol!r}")
        ts = quote.ts
        minute = ts - ts % MINUTE_MS
        if self.is_closed(minute):
            assert self.clock is not None
            raise LateQuoteError(self.symbol, ts, self.clock, self.grace_ms)
        price = quote.price
        if price is not None:
            acc = self._open.get(minute)
            if acc is None:
                self._open[minute] = _OpenBar.first(quote.venue, minute, ts, price, quote.size)
                if len(self._open) > 1 and minute < max(self._open):
                    self._open = dict(sorted(self._open.items()))
            else:
                acc.add(quote.venue, ts, price, quote.size)
        if self.clock is None or ts > self.clock:
            self.clock = ts
            return self._close_until(ts - self.grace_ms)
        return []

    def flush(self) -> list[Bar]:
        """End of input: close every open minute now. Their quotes are late from here on."""
        if not self._open:
            return []
        last = max(self._open)
        assert self.clock is not None
        self.clock = max(self.clock, last + MINUTE_MS + self.grace_ms)
        return self._close_until(self.clock - self.grace_ms)

    @property
    def open_bar_start(self) -> int | None:
        """Start of the oldest minute that has trades but is not closed yet."""
        return next(iter(self._open), None)

    def _close_until(self, watermark: int) -> list[Bar]:
        closed: list[Bar] = []
        while self._open:
            start = next(iter(self._open))
            if start + MINUTE_MS > watermark:
                break
            closed.append(self._emit(self._open.pop(start)))
        return closed

    def _emit(self, acc: _OpenBar) -> Bar:
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
        return bar

    # -- state -------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot (floats round-trip exactly through JSON). The grace is configuration,
        not state: a restart with another grace applies it from there on."""
        return {
            "v": STATE_VERSION,
            "symbol": self.symbol,
            "clock": self.clock,
            "prev_close": self.prev_close,
            "prev_volume": self.prev_volume,
            "open": [[getattr(acc, name) for name in _OPEN_FIELDS] for acc in self._open.values()],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], grace_ms: int = DEFAULT_GRACE_MS) -> BarBuilder:
        state = BAR_STATE.upgrade(state)
        builder = cls(str(state["symbol"]), grace_ms)
        builder.clock = _opt_int(state["clock"])
        builder.prev_close = _opt_float(state["prev_close"])
        builder.prev_volume = _opt_float(state["prev_volume"])
        for row in state["open"]:
            venue, start, open_, open_ts, high, low, close, close_ts, volume, notional, price_sum, trades = row
            builder._open[int(start)] = _OpenBar(
                str(venue),
                int(start),
                float(open_),
                int(open_ts),
                float(high),
                float(low),
                float(close),
                int(close_ts),
                float(volume),
                float(notional),
                float(price_sum),
                int(trades),
            )
        return builder

    def __repr__(self) -> str:
        return f"BarBuilder({self.symbol!r}, clock={self.clock}, open={list(self._open)})"


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


class MultiBarBuilder:
    """One :class:`BarBuilder` per symbol, for in-process use (replays, tests).

    Each symbol has its own watermark: another symbol's traffic never closes its minutes.

    >>> from tapewatch.records import Quote
    >>> bars = MultiBarBuilder()
    >>> bars.on_quote(Quote(symbol="2317", venue="twse", ts=1_500, price=100.0, size=5.0))
    []
    >>> [bar.symbol for bar in bars.on_quote(Quote(symbol="2330", venue="twse", ts=1_000, price=600.0, size=2.0))]
    []
    >>> [(bar.symbol, bar.start) for bar in bars.on_quote(Quote(symbol="2330", venue="twse", ts=70_000))]
    [('2330', 0)]
    >>> bars.on_quote(Quote(symbol="2330", venue="twse", ts=30_000, price=599.0, size=1.0))  # late: kept aside
    []
    >>> [(q.symbol, q.ts) for q in bars.late], [(bar.symbol, bar.start) for bar in bars.flush()]
    ([('2330', 30000)], [('2317', 0)])
    """

    def __init__(self, grace_ms: int = DEFAULT_GRACE_MS) -> None:
        self.grace_ms = grace_ms
        self.builders: dict[str, BarBuilder] = {}
        self.late: list[Quote] = []

    def on_quote(self, quote: Quote) -> list[Bar]:
        """Apply one quote; late quotes are kept in :attr:`late` instead of raising."""
        builder = self.builders.get(quote.symbol)
        if builder is None:
            builder = self.builders[quote.symbol] = BarBuilder(quote.symbol, self.grace_ms)
        try:
            return builder.on_quote(quote)
        except LateQuoteError:
            self.late.append(quote)
            return []

    def flush(self) -> list[Bar]:
        return [bar for builder in self.builders.values() for bar in builder.flush()]


def build_bars(quotes: Iterable[Quote], *, include_open: bool = False, grace_ms: int = DEFAULT_GRACE_MS) -> list[Bar]:
    """Run the incremental builder over ``quotes`` (arrival order); closed bars in emission order."""
    multi = MultiBarBuilder(grace_ms)
    bars = [bar for quote in quotes for bar in multi.on_quote(quote)]
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


def bars_from_quotes(
    quotes: pd.DataFrame, *, include_open: bool = False, grace_ms: int = DEFAULT_GRACE_MS
) -> pd.DataFrame:
    """The bars :class:`BarBuilder` emits for ``quotes``, computed in one batch.

    ``quotes`` has one row per quote in arrival order with columns ``symbol``, ``venue``, ``ts`` (epoch ms),
    ``price`` (NaN/None when nothing traded) and optionally ``size`` (0 when missing). Late quotes are
    dropped exactly as the builder rejects them. Only closed bars are returned unless ``include_open``
    (the builder's :meth:`BarBuilder.flush` at the end). One row per bar, columns :data:`BAR_COLUMNS`,
    sorted by ``symbol`` then ``start``; missing change percentages are NaN.
    """
    trades = _accepted_trades(quotes, include_open=include_open, grace_ms=grace_ms)
    if trades.empty:
        return _normalise(pd.DataFrame(columns=list(BAR_COLUMNS)))
    agg = _minute_bars(trades)
    _add_changes(agg)
    agg["start"] = agg["minute"]
    agg["end"] = agg["minute"] + MINUTE_MS
    return _normalise(agg)


def _accepted_trades(quotes: pd.DataFrame, *, include_open: bool, grace_ms: int) -> pd.DataFrame:
    """The trades among the quotes the builder accepts (late ones dropped; unless ``include_open``, those of a
    minute still open at the end too), with their ``minute``, ``arrival`` order and ``notional``."""
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
    df["arrival"] = np.arange(len(df))

    # The clock a quote meets is the newest ts among the symbol's earlier quotes; a minute whose end plus the
    # grace is at or before it is closed, and the quote late.
    clock = df.groupby("symbol", sort=False)["ts"].cummax().groupby(df["symbol"], sort=False).shift(1)
    df = df[~(df["minute"] + MINUTE_MS + grace_ms <= clock)]
    if not include_open:
        newest = df.groupby("symbol", sort=False)["ts"].transform("max")
        df = df[df["minute"] + MINUTE_MS + grace_ms <= newest]
    return df[df["price"].notna()].assign(notional=lambda t: t["price"] * t["size"])


def _minute_bars(trades: pd.DataFrame) -> pd.DataFrame:
    """One row per symbol and minute: OHLC, volume, trades and VWAP, as the builder accumulates them."""
    keys = ["symbol", "minute"]
    # sums in arrival order, as the builder adds them; open/close by event time (ties: arrival order)
    agg = trades.groupby(keys, sort=True).agg(
        high=("price", "max"),
        low=("price", "min"),
        volume=("size", "sum"),
        notional=("notional", "sum"),
        price_sum=("price", "sum"),
        trades=("price", "count"),
    )
    by_time = trades.sort_values(["ts", "arrival"], kind="stable").groupby(keys, sort=True)
    agg["venue"] = by_time["venue"].first()
    agg["open"] = by_time["price"].first()
    agg["close"] = by_time["price"].last()
    agg = agg.reset_index()
    volume = agg["volume"]
    raw_vwap = np.where(volume > 0, agg["notional"] / volume.where(volume > 0), agg["price_sum"] / agg["trades"])
    agg["vwap"] = np.minimum(np.maximum(raw_vwap, agg["low"]), agg["high"])  # as _OpenBar.vwap
    return agg


def _add_changes(agg: pd.DataFrame) -> None:
    """Each bar's close and volume change against the symbol's previous bar, in percent."""
    previous = agg.groupby("symbol", sort=False)[["close", "volume"]].shift(1)
    prev_volume = previous["volume"].where(previous["volume"] != 0)
    with np.errstate(over="ignore"):  # as pct_change: a non-finite change is no change (None/NaN)
        price_change = (agg["close"] - previous["close"]) / previous["close"] * 100.0
        volume_change = (agg["volume"] - prev_volume) / prev_volume * 100.0
    agg["price_change_pct"] = price_change.where(np.isfinite(price_change))
    agg["volume_change_pct"] = volume_change.where(np.isfinite(volume_change))


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
