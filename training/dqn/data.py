"""The DQN's market data sources: daily OHLCV shipped inside PyPI wheels, daily files, simulated sessions.

Read at run time from the installed packages (no data is copied into this repository); turned into
:class:`tapewatch.signals.dqn.data.AssetSeries` by the pure functions there.
"""

from __future__ import annotations

import gzip
import importlib.resources
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Final

import pandas as pd

from tapewatch.signals.dqn.data import AssetSeries, DataError, bars_from_daily, series_from_bars


@dataclass(frozen=True, slots=True)
class PackagedAsset:
    symbol: str
    package: str
    resource: tuple[str, ...]
    ticker: str | None
    licence: str


PACKAGED_ASSETS: Final[dict[str, PackagedAsset]] = {
    **{
        sym: PackagedAsset(
            sym,
            "bokeh_sampledata",
            ("_data", "stocks.csv.gz"),
            sym,
            "public domain (Quandl WIKI), shipped in bokeh-sampledata (BSD-3-Clause)",
        )
        for sym in ("AAPL", "GOOG", "IBM", "MSFT")
    },
    "SP500": PackagedAsset("SP500", "arch", ("data", "sp500", "sp500.csv.gz"), None, "shipped in arch (NCSA)"),
    "NASDAQ": PackagedAsset("NASDAQ", "arch", ("data", "nasdaq", "nasdaq.csv.gz"), None, "shipped in arch (NCSA)"),
}
DEFAULT_ASSETS: Final[tuple[str, ...]] = tuple(PACKAGED_ASSETS)


# -- sources -----------------------------------------------------------------------------------------------------
def _read_packaged(asset: PackagedAsset) -> pd.DataFrame:
    try:
        resource = importlib.resources.files(asset.package).joinpath(*asset.resource)
        with resource.open("rb") as raw, gzip.open(raw, "rt") as text:
            frame = pd.read_csv(text)
    except ModuleNotFoundError:
        raise DataError(f"{asset.symbol}: the package {asset.package!r} that ships its data is not installed") from None
    frame.columns = [c.strip().lower().replace(" ", "_") for c in frame.columns]
    frame = frame.rename(columns={"ticker": "ticker"})
    if asset.ticker is not None:
        frame = frame[frame["ticker"] == asset.ticker]
    frame["date"] = pd.to_datetime(frame["date"], format="mixed")
    # split/dividend adjustment: scale prices by adj_close / close, shares inversely
    factor = frame["adj_close"] / frame["close"]
    for column in ("open", "high", "low", "close"):
        frame[column] = frame[column] * factor
    frame["volume"] = frame["volume"] / factor
    return frame[["date", "open", "high", "low", "close", "volume"]]


@dataclass(frozen=True, slots=True)
class DailyBars:
    """One asset's daily bars (:func:`tapewatch.signals.dqn.data.bars_from_daily`), before any feature is computed."""

    symbol: str
    source: str
    bars: pd.DataFrame


def packaged_bars(symbols: Iterable[str] = DEFAULT_ASSETS) -> list[DailyBars]:
    """Daily bars of the packaged assets (see :data:`PACKAGED_ASSETS`)."""
    out = []
    for symbol in symbols:
        asset = PACKAGED_ASSETS.get(symbol.upper())
        if asset is None:
            raise DataError(f"unknown packaged asset {symbol!r}; choose from {', '.join(PACKAGED_ASSETS)}")
        out.append(DailyBars(asset.symbol, asset.licence, bars_from_daily(_read_packaged(asset))))
    return out


def daily_file_bars(path: Path) -> list[DailyBars]:
    """Daily bars from a Parquet or CSV file (e.g. ``tapewatch fetch twse-daily``): columns symbol, date,
    open, high, low, close, volume; one entry per symbol."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    if "symbol" not in frame.columns:
        raise DataError(f"{path}: needs a 'symbol' column")
    frame = frame.dropna(subset=["open", "high", "low", "close"])
    return [
        DailyBars(str(symbol), str(path), bars_from_daily(group.drop(columns="symbol")))
        for symbol, group in frame.groupby("symbol", sort=True)
    ]


def series_of(daily: Iterable[DailyBars]) -> list[AssetSeries]:
    """Features computed (pandas, :func:`tapewatch.detectors.features.compute_frame`) for each asset's bars."""
    return [series_from_bars(d.symbol, d.source, d.bars) for d in daily]


def load_packaged(symbols: Iterable[str] = DEFAULT_ASSETS) -> list[AssetSeries]:
    """Daily series of the packaged assets (see :data:`PACKAGED_ASSETS`), features computed."""
    return series_of(packaged_bars(symbols))


def load_daily_file(path: Path) -> list[AssetSeries]:
    """Daily series of every symbol in a Parquet or CSV file (:func:`daily_file_bars`), features computed."""
    return series_of(daily_file_bars(path))


def load_simulated_intraday(
    days: int = 20, symbols: int = 4, seed: int = 0, minutes: float = 270.0
) -> list[AssetSeries]:
    """Simulated 1-minute sessions (clean symbols, no manipulation) for the intraday mode."""
    from tapewatch.detectors.bars import bars_from_quotes
    from tapewatch.generators.simulator import SimulationConfig, generate

    per_symbol: dict[str, list[pd.DataFrame]] = {}
    day = date(2024, 1, 2)
    for d in range(days):
        while day.weekday() >= 5:
            day += timedelta(days=1)
        config = SimulationConfig(symbols=symbols, seed=seed * 10_000 + d, day=day, minutes=minutes, clean_fraction=1.0)
        quotes = generate(config).quotes_frame().assign(venue=config.venue)
        bars = bars_from_quotes(quotes, include_open=True)
        session_ms = config.end_ms - config.start_ms
        bars = bars.assign(
            session_end=bars["start"] == bars.groupby("symbol")["start"].transform("max"),
            time_to_close=(config.end_ms - bars["end"]).clip(lower=0) / session_ms,
        )
        for symbol, group in bars.groupby("symbol", sort=True):
            per_symbol.setdefault(str(symbol), []).append(group)
        day += timedelta(days=1)
    out = []
    for symbol, parts in per_symbol.items():
        bars = pd.concat(parts, ignore_index=True)
        out.append(
            series_from_bars(
                symbol,
                "simulator",
                bars,
                session_end=bars["session_end"].to_numpy(),
                time_to_close=bars["time_to_close"].to_numpy(),
            )
        )
    return out
