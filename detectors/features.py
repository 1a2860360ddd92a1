"""Bar features, defined once: an O(1) incremental state machine per symbol and its batch twins.

The definition is :class:`FeatureState`. :meth:`FeatureState.on_bar` takes one closed bar and returns every
feature in :data:`FEATURE_NAMES` with O(1) (amortised) work. The batch path :func:`compute_frame` *is* the
fold of that state machine over a frame's rows, so stream and training cannot diverge. A faster, vectorised
pandas/numpy implementation :func:`compute_frame_vectorised` exists for training over long histories; it is
a second implementation and is property-tested against the fold (1e-9 relative) rather than trusted.

Conventions (all windows count *bars*, not minutes: a minute without trades emits no bar, see
:mod:`tapewatch.detectors.bars`, so a gap simply joins the bars on either side):

* ``ret_k`` — log return over ``k`` bars, ``ln(close_t / close_{t-k})``, ``k`` in 1, 3, 5, 10, 30, 60.
* ``price_change_pct``, ``volume_change_pct`` — copied from the bar (percent; ``None`` as on the bar).
* ``volume_z_30`` — ``(volume_t - mean) / std`` of the *previous* 30 bars' volumes (population std);
  ``None`` while the baseline is flat (std 0).
* ``rvol_30`` — population std of the last 30 one-bar log returns.
* ``vwap_dev`` — ``(close - vwap) / vwap``.
* ``ema_n`` — ``close / EMA_n - 1``; EMA seeded with the first close, ``alpha = 2 / (n + 1)``; from bar ``n``.
* ``bias_n`` — ``(close - SMA_n) / SMA_n``.
* ``rsi_14`` — Wilder: the first average gain/loss is the mean of the first 14 changes, then
  ``avg = (13 avg + x) / 14``; ``RSI = 100 avg_gain / (avg_gain + avg_loss)``, 50 when both are 0.
* ``kd_k``, ``kd_d`` — Taiwanese KD(9,3,3): ``RSV = 100 (close - L9) / (H9 - L9)`` over the last 9 bars'
  highs/lows (50 when ``H9 == L9``); ``K = 2/3 K + 1/3 RSV``, ``D = 2/3 D + 1/3 K``, both starting at 50
  before the first RSV (bar 9).
* ``macd_dif``, ``macd_dea``, ``macd_hist`` — ``DIF = EMA12 - EMA26``, ``DEA = EMA9(DIF)`` (seeded with the
  first DIF), ``hist = DIF - DEA``; all divided by ``close``. DIF from bar 26, DEA/hist from bar 34.
* ``boll_pctb_20``, ``boll_width_20`` — ``mid = SMA20``, ``σ`` population std, bands ``mid ± 2σ``;
  ``%b = (close - lower) / (4σ)`` (``None`` when σ = 0), ``width = 4σ / mid``.
* ``mom_n`` — ``(close_t - close_{t-n}) / close_t``, ``n`` in 10, 20.
* ``close_rank_10`` — ``(#{closes < close_t} + #{other closes == close_t} / 2) / 9`` over the last 10 bars
  (the current one included), in [0, 1].
* ``up_ratio_10`` — fraction of the last 10 one-bar changes that are rises (``close_t > close_{t-1}``).

A feature that is not warmed up is ``None``; a non-finite value is ``None`` too (never NaN/inf on the wire).

Rolling sums (SMA, variances) are kept *exactly*: every float is a dyadic rational, so the window's sums of
``x`` and ``x²`` are held as Python integers over a common power of two. Adding and evicting are exact, so
there is no drift however long the stream runs, a flat window has variance exactly 0, and mean/variance
are the correctly rounded values of the exact ones. Rolling max/min use monotonic deques (O(1) amortised).

Pure computation: the stream worker keeps one :class:`FeatureState` per symbol in a changelog-backed table through
:meth:`FeatureState.to_state` / :meth:`FeatureState.from_state` (JSON-safe, versioned).

Forty minutes of a random walk: each feature is defined from its warm-up on (one bar for ``ret_1``, 30 for
``ret_30``, 14 changes for ``rsi_14``, 26 and 34 bars for MACD's DIF and DEA), and a flat volume leaves the
volume surprise undefined. The vectorised twin agrees with the fold:

>>> import numpy as np, pandas as pd
>>> closes = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, 40)))
>>> bars = pd.DataFrame({"start": np.arange(40) * 60_000, "high": closes * 1.001, "low": closes * 0.999,
...                      "close": closes, "volume": 1_000.0, "vwap": closes})
>>> frame = compute_frame(bars)
>>> frame[["ret_1", "ret_30", "rsi_14", "macd_dif", "macd_dea", "volume_z_30"]].notna().sum().tolist()
[39, 10, 26, 15, 7, 0]
>>> bool(np.allclose(compute_frame_vectorised(bars), frame, rtol=1e-9, atol=0, equal_nan=True))
True
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, Final, Protocol

import numpy as np
import pandas as pd

from tapewatch.state_versions import StateVersions

FEATURE_SET_VERSION: Final = "bar1m-v1"
#: the feature state's versions (one so far: no steps)
FEATURE_STATE: Final = StateVersions("feature state")
STATE_VERSION: Final = FEATURE_STATE.current

RETURN_LAGS: Final = (1, 3, 5, 10, 30, 60)
EMA_SPANS: Final = (5, 10, 20)
BIAS_SPANS: Final = (3, 6, 10, 25)
MOMENTUM_LAGS: Final = (10, 20)
VOLUME_BASELINE: Final = 30
RVOL_WINDOW: Final = 30
RSI_PERIOD: Final = 14
KD_PERIOD: Final = 9
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
BOLL_PERIOD: Final = 20
BOLL_K: Final = 2.0
RANK_WINDOW: Final = 10
UP_WINDOW: Final = 10

FEATURE_NAMES: Final[tuple[str, ...]] = (
    *(f"ret_{k}" for k in RETURN_LAGS),
    "price_change_pct",
    "volume_change_pct",
    f"volume_z_{VOLUME_BASELINE}",
    f"rvol_{RVOL_WINDOW}",
    "vwap_dev",
    *(f"ema_{n}" for n in EMA_SPANS),
    *(f"bias_{n}" for n in BIAS_SPANS),
    f"rsi_{RSI_PERIOD}",
    "kd_k",
    "kd_d",
    "macd_dif",
    "macd_dea",
    "macd_hist",
    f"boll_pctb_{BOLL_PERIOD}",
    f"boll_width_{BOLL_PERIOD}",
    *(f"mom_{n}" for n in MOMENTUM_LAGS),
    f"close_rank_{RANK_WINDOW}",
    f"up_ratio_{UP_WINDOW}",
)

#: columns :func:`compute_frame` reads (``start`` only to check the order)
INPUT_COLUMNS: Final = ("start", "high", "low", "close", "volume", "vwap", "price_change_pct", "volume_change_pct")

_CLOSE_HISTORY: Final = max(*RETURN_LAGS, *MOMENTUM_LAGS, BOLL_PERIOD, *BIAS_SPANS, RANK_WINDOW, UP_WINDOW) + 1


_RET_KEYS: Final = tuple((k, f"ret_{k}") for k in RETURN_LAGS)
_MOM_KEYS: Final = tuple((n, f"mom_{n}") for n in MOMENTUM_LAGS)
_EMA_KEYS: Final = tuple((n, f"ema_{n}") for n in EMA_SPANS)
_BIAS_KEYS: Final = tuple((n, f"bias_{n}") for n in BIAS_SPANS)


class BarLike(Protocol):
    """What :meth:`FeatureState.on_bar` reads from a bar (:class:`tapewatch.records.Bar` fits)."""

    @property
    def high(self) -> float: ...
    @property
    def low(self) -> float: ...
    @property
    def close(self) -> float: ...
    @property
    def volume(self) -> float: ...
    @property
    def vwap(self) -> float: ...
    @property
    def price_change_pct(self) -> float | None: ...
    @property
    def volume_change_pct(self) -> float | None: ...


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _opt(value: Any) -> float | None:
    """A pass-through column value: NaN/None → None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# -- exact rolling sums ------------------------------------------------------------------------------------
class _ExactSums:
    """Exact ``Σx`` and ``Σx²`` of a multiset of floats, as integers over ``2**shift``."""

    __slots__ = ("count", "s1", "s2", "shift")

    def __init__(self) -> None:
        self.count = 0
        self.s1 = 0
        self.s2 = 0
        self.shift = 0

    def _scaled(self, x: float) -> int:
        num, den = x.as_integer_ratio()
        k = den.bit_length() - 1
        if k > self.shift:
            grow = k - self.shift
            self.s1 <<= grow
            self.s2 <<= 2 * grow
            self.shift = k
        return num << (self.shift - k)

    def add(self, x: float) -> None:
        xi = self._scaled(x)
        self.s1 += xi
        self.s2 += xi * xi
        self.count += 1

    def remove(self, x: float) -> None:
        xi = self._scaled(x)
        self.s1 -= xi
        self.s2 -= xi * xi
        self.count -= 1

    def mean(self) -> float:
        return self.s1 / (self.count << self.shift)  # int / int is correctly rounded

    def var(self) -> float:
        """Population variance, correctly rounded (exactly 0 for a flat window)."""
        n = self.count
        return (n * self.s2 - self.s1 * self.s1) / ((n * n) << (2 * self.shift))


class _RollingMax:
    """Max (or min, with ``sign=-1``) of the last ``n`` pushed values; a monotonic deque of (index, value)."""

    __slots__ = ("dq", "i", "n", "sign")

    def __init__(self, n: int, sign: float = 1.0) -> None:
        self.n = n
        self.sign = sign
        self.i = 0
        self.dq: deque[tuple[int, float]] = deque()

    def push(self, x: float) -> None:
        key = self.sign * x
        dq = self.dq
        while dq and self.sign * dq[-1][1] <= key:
            dq.pop()
        dq.append((self.i, x))
        if dq[0][0] <= self.i - self.n:
            dq.popleft()
        self.i += 1

    @property
    def value(self) -> float:
        return self.dq[0][1]


class _Ema:
    __slots__ = ("alpha", "value")

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self.value: float | None = None

    def push(self, x: float) -> float:
        prev = self.value
        self.value = x if prev is None else (1.0 - self.alpha) * prev + self.alpha * x
        return self.value


def _span_alpha(n: int) -> float:
    return 2.0 / (n + 1)


# -- the definition ----------------------------------------------------------------------------------------
class FeatureState:
    """Incremental bar features of one symbol; :meth:`on_bar` is O(1) amortised per bar.

    >>> state = FeatureState()
    >>> for close in (10.0, 10.2, 10.1, 10.4):
    ...     values = state.on_bar_values(high=close + 0.1, low=close - 0.1, close=close, volume=1_000.0, vwap=close)
    >>> round(values["ret_1"], 6), round(values["ret_3"], 6), round(values["bias_3"], 6)  # ln(10.4 / 10.1), …
    (0.02927, 0.039221, 0.016287)
    >>> values["ret_5"], values["volume_z_30"]  # not warmed up; a flat volume baseline
    (None, None)

    The state survives a round trip through JSON (the stream's changelog) bit for bit:

    >>> import json
    >>> copy = FeatureState.from_state(json.loads(json.dumps(state.to_state())))
    >>> copy.on_bar_values(10.6, 10.4, 10.5, 2_000.0, 10.5) == state.on_bar_values(10.6, 10.4, 10.5, 2_000.0, 10.5)
    True
    """

    def __init__(self) -> None:
        self.count = 0  # bars seen
        self.closes: deque[float] = deque(maxlen=_CLOSE_HISTORY)
        self.highs: deque[float] = deque(maxlen=KD_PERIOD)
        self.lows: deque[float] = deque(maxlen=KD_PERIOD)
        self.volumes: deque[float] = deque(maxlen=VOLUME_BASELINE)  # the *previous* bars' volumes
        self.rets: deque[float] = deque(maxlen=RVOL_WINDOW)  # one-bar log returns
        self.ups: deque[int] = deque(maxlen=UP_WINDOW)
        self.emas = {n: _Ema(_span_alpha(n)) for n in EMA_SPANS}
        self.macd_fast = _Ema(_span_alpha(MACD_FAST))
        self.macd_slow = _Ema(_span_alpha(MACD_SLOW))
        self.macd_signal = _Ema(_span_alpha(MACD_SIGNAL))
        self.rsi_gain = 0.0  # sum of gains while seeding, then Wilder's average
        self.rsi_loss = 0.0
        self.kd_k = 50.0
        self.kd_d = 50.0
        self._derive()

    def _derive(self) -> None:
        """Rebuild the derived accumulators (exact sums, deques, counters) from the buffers."""
        self.sma = {n: _ExactSums() for n in {*BIAS_SPANS, BOLL_PERIOD}}
        closes = list(self.closes)
        for n, sums in self.sma.items():
            for x in closes[-n:]:
                sums.add(x)
        self.vol_sums = _ExactSums()
        for v in self.volumes:
            self.vol_sums.add(v)
        self.ret_sums = _ExactSums()
        for r in self.rets:
            self.ret_sums.add(r)
        self.up_count = sum(self.ups)
        self.hmax = _RollingMax(KD_PERIOD, 1.0)
        self.lmin = _RollingMax(KD_PERIOD, -1.0)
        for h in self.highs:
            self.hmax.push(h)
        for low in self.lows:
            self.lmin.push(low)

    # -- input -------------------------------------------------------------------------------------------
    def on_bar(self, bar: BarLike) -> dict[str, float | None]:
        """Apply the next closed bar of the symbol; return every feature (``None`` while warming up)."""
        return self.on_bar_values(
            bar.high, bar.low, bar.close, bar.volume, bar.vwap, bar.price_change_pct, bar.volume_change_pct
        )

    def on_bar_values(
        self,
        high: float,
        low: float,
        close: float,
        volume: float,
        vwap: float,
        price_change_pct: float | None = None,
        volume_change_pct: float | None = None,
    ) -> dict[str, float | None]:
        """:meth:`on_bar` on plain values."""
        out: dict[str, float | None] = dict.fromkeys(FEATURE_NAMES)
        closes = self.closes
        prev = closes[-1] if closes else None
        self.count += 1
        t = self.count

        self._push_close(out, close, t)
        out["price_change_pct"] = _opt(price_change_pct)
        out["volume_change_pct"] = _opt(volume_change_pct)
        out["vwap_dev"] = (close - vwap) / vwap
        self._push_volume(out, volume)
        if prev is not None:
            self._push_change(out, close, prev, t)
        if len(self.rets) == RVOL_WINDOW:
            out[f"rvol_{RVOL_WINDOW}"] = math.sqrt(self.ret_sums.var())
        if len(self.ups) == UP_WINDOW:
            out[f"up_ratio_{UP_WINDOW}"] = self.up_count / UP_WINDOW
        self._averages(out, close, t)
        self._kd(out, high, low, close, t)

        # rank of the close within the last bars (n is a constant: O(1))
        if t >= RANK_WINDOW:
            window = list(closes)[-RANK_WINDOW:]
            below = sum(1 for c in window if c < close)
            ties = sum(1 for c in window if c == close) - 1
            out[f"close_rank_{RANK_WINDOW}"] = (below + 0.5 * ties) / (RANK_WINDOW - 1)

        isfinite = math.isfinite
        return {name: v if v is None or isfinite(v) else None for name, v in out.items()}

    # Each step below fills its features into ``out`` and advances only its own accumulators, in the order the
    # update needs (the close sums before the averages read them); plain method calls, so a bar costs a handful
    # of calls more and allocates nothing more.
    def _push_close(self, out: dict[str, float | None], close: float, t: int) -> None:
        """The close joins the close windows; log returns and momenta over them."""
        closes = self.closes
        # exact sums, evicting what falls out of each window (before the deque drops it)
        for n, sums in self.sma.items():
            if len(closes) >= n:
                sums.remove(closes[-n])
            sums.add(close)
        closes.append(close)

        for k, name in _RET_KEYS:
            if t > k:
                out[name] = math.log(close / closes[-1 - k])
        for n, name in _MOM_KEYS:
            if t > n:
                out[name] = (close - closes[-1 - n]) / close

    def _push_volume(self, out: dict[str, float | None], volume: float) -> None:
        """Volume z-score against the previous bars, then the bar joins the baseline."""
        if len(self.volumes) == VOLUME_BASELINE:
            var = self.vol_sums.var()
            if var > 0:
                out[f"volume_z_{VOLUME_BASELINE}"] = (volume - self.vol_sums.mean()) / math.sqrt(var)
            self.vol_sums.remove(self.volumes[0])
        self.volumes.append(volume)
        self.vol_sums.add(volume)

    def _push_change(self, out: dict[str, float | None], close: float, prev: float, t: int) -> None:
        """The one-bar change joins realised volatility, the up-bars and RSI."""
        r = math.log(close / prev)
        if len(self.rets) == RVOL_WINDOW:
            self.ret_sums.remove(self.rets[0])
        self.rets.append(r)
        self.ret_sums.add(r)
        up = 1 if close > prev else 0
        if len(self.ups) == UP_WINDOW:
            self.up_count -= self.ups[0]
        self.ups.append(up)
        self.up_count += up

        change = close - prev
        gain = change if change > 0 else 0.0
        loss = -change if change < 0 else 0.0
        changes = t - 1
        if changes < RSI_PERIOD:
            self.rsi_gain += gain
            self.rsi_loss += loss
        elif changes == RSI_PERIOD:
            self.rsi_gain = (self.rsi_gain + gain) / RSI_PERIOD
            self.rsi_loss = (self.rsi_loss + loss) / RSI_PERIOD
        else:
            self.rsi_gain = (self.rsi_gain * (RSI_PERIOD - 1) + gain) / RSI_PERIOD
            self.rsi_loss = (self.rsi_loss * (RSI_PERIOD - 1) + loss) / RSI_PERIOD
        if changes >= RSI_PERIOD:
            total = self.rsi_gain + self.rsi_loss
            out[f"rsi_{RSI_PERIOD}"] = 100.0 * self.rsi_gain / total if total > 0 else 50.0

    def _averages(self, out: dict[str, float | None], close: float, t: int) -> None:
        """EMAs, SMA biases, MACD and Bollinger bands (after :meth:`_push_close` updated the sums)."""
        for (n, name), ema in zip(_EMA_KEYS, self.emas.values(), strict=True):
            value = ema.push(close)
            if t >= n:
                out[name] = close / value - 1.0
        for n, name in _BIAS_KEYS:
            if t >= n:
                sma = self.sma[n].mean()
                out[name] = (close - sma) / sma
        fast = self.macd_fast.push(close)
        slow = self.macd_slow.push(close)
        if t >= MACD_SLOW:
            dif = fast - slow
            dea = self.macd_signal.push(dif)
            out["macd_dif"] = dif / close
            if t >= MACD_SLOW + MACD_SIGNAL - 1:
                out["macd_dea"] = dea / close
                out["macd_hist"] = (dif - dea) / close

        if t >= BOLL_PERIOD:
            sums = self.sma[BOLL_PERIOD]
            mid = sums.mean()
            sigma = math.sqrt(sums.var())
            if sigma > 0:
                lower = mid - BOLL_K * sigma
                out[f"boll_pctb_{BOLL_PERIOD}"] = (close - lower) / (2 * BOLL_K * sigma)
            out[f"boll_width_{BOLL_PERIOD}"] = 2 * BOLL_K * sigma / mid

    def _kd(self, out: dict[str, float | None], high: float, low: float, close: float, t: int) -> None:
        """KD(9,3,3) over the last bars' highs and lows."""
        self.highs.append(high)
        self.lows.append(low)
        self.hmax.push(high)
        self.lmin.push(low)
        if t >= KD_PERIOD:
            hi, lo = self.hmax.value, self.lmin.value
            rsv = 100.0 * (close - lo) / (hi - lo) if hi > lo else 50.0
            self.kd_k = (2.0 / 3.0) * self.kd_k + (1.0 / 3.0) * rsv
            self.kd_d = (2.0 / 3.0) * self.kd_d + (1.0 / 3.0) * self.kd_k
            out["kd_k"] = self.kd_k
            out["kd_d"] = self.kd_d

    # -- state -------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """JSON-safe snapshot (lists, floats, ints); floats round-trip exactly through JSON."""
        return {
            "v": STATE_VERSION,
            "features": FEATURE_SET_VERSION,
            "count": self.count,
            "closes": list(self.closes),
            "highs": list(self.highs),
            "lows": list(self.lows),
            "volumes": list(self.volumes),
            "rets": list(self.rets),
            "ups": list(self.ups),
            "emas": {str(n): ema.value for n, ema in self.emas.items()},
            "macd": [self.macd_fast.value, self.macd_slow.value, self.macd_signal.value],
            "rsi": [self.rsi_gain, self.rsi_loss],
            "kd": [self.kd_k, self.kd_d],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FeatureState:
        state = FEATURE_STATE.upgrade(state)
        if state.get("features") != FEATURE_SET_VERSION:
            raise ValueError(
                f"feature state {state.get('v')!r}/{state.get('features')!r} is not supported "
                f"(expected {STATE_VERSION}/{FEATURE_SET_VERSION})"
            )
        fs = cls()
        fs.count = int(state["count"])
        fs.closes.extend(float(x) for x in state["closes"])
        fs.highs.extend(float(x) for x in state["highs"])
        fs.lows.extend(float(x) for x in state["lows"])
        fs.volumes.extend(float(x) for x in state["volumes"])
        fs.rets.extend(float(x) for x in state["rets"])
        fs.ups.extend(int(x) for x in state["ups"])
        for n, ema in fs.emas.items():
            ema.value = _opt_float(state["emas"][str(n)])
        fs.macd_fast.value, fs.macd_slow.value, fs.macd_signal.value = (_opt_float(x) for x in state["macd"])
        fs.rsi_gain, fs.rsi_loss = (float(x) for x in state["rsi"])
        fs.kd_k, fs.kd_d = (float(x) for x in state["kd"])
        fs._derive()
        return fs


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


# -- batch: the fold ---------------------------------------------------------------------------------------
def _check_frame(bars: pd.DataFrame) -> None:
    missing = set(INPUT_COLUMNS) - set(bars.columns) - {"price_change_pct", "volume_change_pct"}
    if missing:
        raise ValueError(f"bars frame lacks column(s) {', '.join(sorted(missing))}")
    if "symbol" in bars.columns and bars["symbol"].nunique() > 1:
        raise ValueError("bars frame must hold one symbol (group by symbol first)")
    start = bars["start"].to_numpy()
    if len(start) > 1 and not bool(np.all(start[1:] > start[:-1])):
        raise ValueError("bars frame must be sorted by strictly increasing start")


def _column(bars: pd.DataFrame, name: str) -> list[Any]:
    if name in bars.columns:
        return list(bars[name].to_numpy(dtype="float64").tolist())
    return [None] * len(bars)


def iter_features(bars: pd.DataFrame, state: FeatureState | None = None) -> Iterable[dict[str, float | None]]:
    """Fold :meth:`FeatureState.on_bar` over one symbol's bars (rows in time order)."""
    _check_frame(bars)
    fs = state if state is not None else FeatureState()
    cols = [_column(bars, c) for c in INPUT_COLUMNS[1:]]
    for high, low, close, volume, vwap, pcp, vcp in zip(*cols, strict=True):
        yield fs.on_bar_values(high, low, close, volume, vwap, pcp, vcp)


def compute_frame(bars: pd.DataFrame, state: FeatureState | None = None) -> pd.DataFrame:
    """Features of one symbol's bars: the fold of the incremental definition (``None`` → NaN).

    Columns :data:`FEATURE_NAMES`, float64, same index as ``bars``. Pass ``state`` to continue a stream.
    """
    rows = [[np.nan if v is None else v for v in row.values()] for row in iter_features(bars, state)]
    data = np.array(rows, dtype="float64").reshape(len(rows), len(FEATURE_NAMES))
    return pd.DataFrame(data, index=bars.index, columns=list(FEATURE_NAMES))


# -- batch: the vectorised twin (checked against the fold) -------------------------------------------------
def _windows(x: np.ndarray, n: int) -> np.ndarray:
    """Rows of the trailing ``n``-windows, NaN-padded for the first ``n - 1`` positions."""
    if len(x) == 0:
        return np.empty((0, n))
    padded = np.concatenate([np.full(n - 1, np.nan), x])
    return np.lib.stride_tricks.sliding_window_view(padded, n)


def _rolling_mean_var(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rolling mean and population variance, two-pass on values shifted by each window's first element."""
    w = _windows(x, n)
    shifted = w - w[:, :1]
    mean = w[:, :1][:, 0] + shifted.mean(axis=1)
    var = shifted.var(axis=1)
    flat = w.max(axis=1) == w.min(axis=1)  # NaN-padded windows are never flat
    var = np.where(flat, 0.0, var)
    return mean, var


def _lag(x: np.ndarray, k: int) -> np.ndarray:
    return np.concatenate([np.full(min(k, len(x)), np.nan), x[:-k] if k < len(x) else x[:0]])


def _ewm(x: pd.Series, alpha: float) -> np.ndarray:
    return x.ewm(alpha=alpha, adjust=False).mean().to_numpy()


def compute_frame_vectorised(bars: pd.DataFrame) -> pd.DataFrame:
    """The same features as :func:`compute_frame`, vectorised (tests hold it to the fold at 1e-9)."""
    _check_frame(bars)
    if len(bars) == 0:
        return pd.DataFrame({name: pd.Series(dtype="float64") for name in FEATURE_NAMES}, index=bars.index)
    c = bars["close"].to_numpy(dtype="float64")
    hi = bars["high"].to_numpy(dtype="float64")
    lo = bars["low"].to_numpy(dtype="float64")
    change = np.concatenate([[np.nan], c[1:] - c[:-1]])
    out: dict[str, np.ndarray] = {}
    _vec_returns_and_volume(out, bars, c)
    _vec_averages(out, c)
    out[f"rsi_{RSI_PERIOD}"] = _vec_rsi(change)
    out["kd_k"], out["kd_d"] = _vec_kd(hi, lo, c)
    _vec_position(out, c, change)
    frame = pd.DataFrame({name: out[name] for name in FEATURE_NAMES}, index=bars.index, dtype="float64")
    return frame.where(np.isfinite(frame.to_numpy()))


def _vec_returns_and_volume(out: dict[str, np.ndarray], bars: pd.DataFrame, c: np.ndarray) -> None:
    """Log returns, the bar's own change percentages, the volume z-score, realised volatility, VWAP deviation."""
    vol = bars["volume"].to_numpy(dtype="float64")
    vwap = bars["vwap"].to_numpy(dtype="float64")
    for k in RETURN_LAGS:
        out[f"ret_{k}"] = np.log(c / _lag(c, k))
    for name in ("price_change_pct", "volume_change_pct"):
        out[name] = bars[name].to_numpy(dtype="float64") if name in bars.columns else np.full(len(c), np.nan)
    vmean, vvar = _rolling_mean_var(vol, VOLUME_BASELINE)
    vmean, vvar = _lag(vmean, 1), _lag(vvar, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[f"volume_z_{VOLUME_BASELINE}"] = np.where(vvar > 0, (vol - vmean) / np.sqrt(vvar), np.nan)
    r1 = np.log(c[1:] / c[:-1])
    _, rvar = _rolling_mean_var(r1, RVOL_WINDOW)
    out[f"rvol_{RVOL_WINDOW}"] = np.concatenate([[np.nan], np.sqrt(rvar)])
    out["vwap_dev"] = (c - vwap) / vwap


def _vec_averages(out: dict[str, np.ndarray], c: np.ndarray) -> None:
    """EMAs, SMA biases, MACD and Bollinger bands."""
    n_rows = len(c)
    t = np.arange(1, n_rows + 1)
    cs = pd.Series(c)
    for n in EMA_SPANS:
        out[f"ema_{n}"] = np.where(t >= n, c / _ewm(cs, _span_alpha(n)) - 1.0, np.nan)
    for n in BIAS_SPANS:
        sma, _ = _rolling_mean_var(c, n)
        out[f"bias_{n}"] = (c - sma) / sma

    dif_all = _ewm(cs, _span_alpha(MACD_FAST)) - _ewm(cs, _span_alpha(MACD_SLOW))
    dif, dea = np.full(n_rows, np.nan), np.full(n_rows, np.nan)
    if n_rows >= MACD_SLOW:
        dif[MACD_SLOW - 1 :] = dif_all[MACD_SLOW - 1 :]
        dea[MACD_SLOW - 1 :] = _ewm(pd.Series(dif_all[MACD_SLOW - 1 :]), _span_alpha(MACD_SIGNAL))
        dea[: MACD_SLOW + MACD_SIGNAL - 2] = np.nan
    out["macd_dif"], out["macd_dea"], out["macd_hist"] = dif / c, dea / c, (dif - dea) / c

    mid, bvar = _rolling_mean_var(c, BOLL_PERIOD)
    sigma = np.sqrt(bvar)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[f"boll_pctb_{BOLL_PERIOD}"] = np.where(
            sigma > 0, (c - (mid - BOLL_K * sigma)) / (2 * BOLL_K * sigma), np.nan
        )
    out[f"boll_width_{BOLL_PERIOD}"] = 2 * BOLL_K * sigma / mid


def _vec_rsi(change: np.ndarray) -> np.ndarray:
    """Wilder's RSI from the one-bar changes (NaN first)."""
    n_rows = len(change)
    gains, losses = np.where(change > 0, change, 0.0), np.where(change < 0, -change, 0.0)
    rsi = np.full(n_rows, np.nan)
    if n_rows > RSI_PERIOD:
        avg = []
        for x in (gains, losses):
            seeded = x[RSI_PERIOD:].copy()  # change index RSI_PERIOD .. end; the first is the seed
            seeded[0] = (float(np.sum(x[1:RSI_PERIOD])) + x[RSI_PERIOD]) / RSI_PERIOD
            avg.append(_ewm(pd.Series(seeded), 1.0 / RSI_PERIOD))
        total = avg[0] + avg[1]
        with np.errstate(divide="ignore", invalid="ignore"):
            rsi[RSI_PERIOD:] = np.where(total > 0, 100.0 * avg[0] / total, 50.0)
    return rsi


def _vec_kd(hi: np.ndarray, lo: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The K and D lines of KD(9,3,3)."""
    n_rows = len(c)
    kd_k, kd_d = np.full(n_rows, np.nan), np.full(n_rows, np.nan)
    if n_rows >= KD_PERIOD:
        h9 = pd.Series(hi).rolling(KD_PERIOD).max().to_numpy()[KD_PERIOD - 1 :]
        l9 = pd.Series(lo).rolling(KD_PERIOD).min().to_numpy()[KD_PERIOD - 1 :]
        with np.errstate(divide="ignore", invalid="ignore"):
            rsv = np.where(h9 > l9, 100.0 * (c[KD_PERIOD - 1 :] - l9) / (h9 - l9), 50.0)
        k_line = _ewm(pd.Series(np.concatenate([[50.0], rsv])), 1.0 / 3.0)
        d_line = _ewm(pd.Series(k_line), 1.0 / 3.0)
        kd_k[KD_PERIOD - 1 :], kd_d[KD_PERIOD - 1 :] = k_line[1:], d_line[1:]
    return kd_k, kd_d


def _vec_position(out: dict[str, np.ndarray], c: np.ndarray, change: np.ndarray) -> None:
    """Momenta, the close's rank in the last bars and the share of up-bars."""
    t = np.arange(1, len(c) + 1)
    for n in MOMENTUM_LAGS:
        out[f"mom_{n}"] = (c - _lag(c, n)) / c
    w = _windows(c, RANK_WINDOW)
    below = (w < c[:, None]).sum(axis=1)
    ties = (w == c[:, None]).sum(axis=1) - 1
    out[f"close_rank_{RANK_WINDOW}"] = np.where(t >= RANK_WINDOW, (below + 0.5 * ties) / (RANK_WINDOW - 1), np.nan)
    ups = np.where(np.isnan(change), np.nan, (change > 0).astype("float64"))
    out[f"up_ratio_{UP_WINDOW}"] = pd.Series(ups).rolling(UP_WINDOW).sum().to_numpy() / UP_WINDOW


def to_values(row: Mapping[str, float]) -> dict[str, float | None]:
    """One frame row as the wire's ``Features.values`` (NaN → None)."""
    return {name: _finite(float(row[name])) for name in FEATURE_NAMES}


def features_frame(bars: pd.DataFrame, *, vectorised: bool = True) -> pd.DataFrame:
    """Bar features of many symbols, shaped like the stream's ``features.1m`` records of cadence ``1m``.

    ``bars``: the frame of :func:`tapewatch.detectors.bars.bars_from_quotes` (columns ``symbol``, ``venue``, ``start``,
    ``end`` and :data:`INPUT_COLUMNS`), any order. Returns ``symbol``, ``venue``, ``ts`` (the bar's end, as on
    the wire) and :data:`FEATURE_NAMES` (NaN while warming up), sorted by symbol then ``ts``.
    ``vectorised`` picks :func:`compute_frame_vectorised` (fast) or the fold :func:`compute_frame`.
    """
    compute = compute_frame_vectorised if vectorised else compute_frame
    parts = []
    for _, group in bars.sort_values(["symbol", "start"], kind="stable").groupby("symbol", sort=True):
        values = compute(group.reset_index(drop=True))
        head = group[["symbol", "venue", "end"]].rename(columns={"end": "ts"}).reset_index(drop=True)
        parts.append(pd.concat([head, values], axis=1))
    if not parts:
        return pd.DataFrame(columns=["symbol", "venue", "ts", *FEATURE_NAMES])
    return pd.concat(parts, ignore_index=True)
