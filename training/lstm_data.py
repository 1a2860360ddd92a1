"""Daily bars → the shared feature library on Spark → Parquet → series for the LSTM (the seed's Spark path).

For histories too large for one pandas process: every symbol's features are computed on Spark by
:func:`tapewatch.training.spark_features.spark_bar_features` (the same fold of :mod:`tapewatch.detectors.features` as
the pandas path, one symbol per ``applyInPandas`` group), joined with each bar's close and source, and written as
Parquet (``symbol, start, close, source`` and :data:`~tapewatch.detectors.features.FEATURE_NAMES`).
:func:`read_feature_parquet` reads such a file back as :class:`~tapewatch.signals.dqn.data.AssetSeries`, the LSTM's
training input.

:func:`select_assets` picks the requested symbols out of a source's bars before anything is computed.

>>> daily = [DailyBars("AAA", "test", pd.DataFrame()), DailyBars("BBB", "test", pd.DataFrame())]
>>> [d.symbol for d in select_assets(daily, ["bbb"], "data.csv")]
['BBB']
>>> select_assets(daily, ["CCC", "AAA"], "data.csv")
Traceback (most recent call last):
...
tapewatch.signals.dqn.data.DataError: unknown asset(s) CCC in data.csv; it has AAA, BBB
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd

from tapewatch.detectors.features import FEATURE_NAMES, INPUT_COLUMNS
from tapewatch.signals.dqn.data import AssetSeries, DataError
from tapewatch.training.dqn.data import DailyBars
from tapewatch.training.spark_features import spark_bar_features

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["read_feature_parquet", "select_assets", "spark_feature_series", "write_feature_parquet"]

#: columns of the feature Parquet besides the features
KEYS: Final = ("symbol", "start", "close", "source")
#: symbols named in an error before "…"
LISTED: Final = 12


def select_assets(daily: Sequence[DailyBars], symbols: Sequence[str], where: str) -> list[DailyBars]:
    """The bars of ``symbols`` (case-insensitive; all when empty), or :class:`DataError` naming the unknown ones."""
    wanted = [s.upper() for s in symbols]
    if not wanted:
        return list(daily)
    found = {d.symbol.upper(): d for d in daily}
    unknown = [s for s in wanted if s not in found]
    if unknown:
        have = sorted(found)
        listed = ", ".join(have[:LISTED]) + (f", … ({len(have)} in all)" if len(have) > LISTED else "")
        raise DataError(f"unknown asset(s) {', '.join(unknown)} in {where}; it has {listed or 'no asset'}")
    return [found[s] for s in dict.fromkeys(wanted)]


def write_feature_parquet(spark: SparkSession, daily: Sequence[DailyBars], out: Path) -> None:
    """Features of every asset's bars computed on Spark, written to the Parquet directory ``out`` (replaced)."""
    if not daily:
        raise DataError("no bars to compute features of")
    frame = pd.concat([d.bars.assign(symbol=d.symbol, source=d.source) for d in daily], ignore_index=True)
    bars = spark.createDataFrame(frame.loc[:, ["symbol", "source", *INPUT_COLUMNS]])
    features = spark_bar_features(bars.drop("source"))
    features.join(bars.select(*KEYS), ["symbol", "start"]).write.mode("overwrite").parquet(str(out))


def read_feature_parquet(path: Path) -> list[AssetSeries]:
    """One series per symbol (bars by ``start``) from a Parquet file written by :func:`write_feature_parquet`."""
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read feature Parquet ({exc})") from None
    missing = [c for c in (*KEYS, *FEATURE_NAMES) if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: lacks column(s) {', '.join(missing)} (feature set changed? recompute it)")
    out = []
    for symbol, group in frame.groupby("symbol", sort=True):
        rows = group.sort_values("start", kind="stable").reset_index(drop=True)
        out.append(
            AssetSeries(
                symbol=str(symbol),
                source=str(rows["source"].iloc[0]),
                times=rows["start"].to_numpy(dtype="int64").astype("datetime64[ms]"),
                close=rows["close"].to_numpy(dtype=np.float64),
                features=rows.loc[:, list(FEATURE_NAMES)].astype("float64"),
            )
        )
    return out


def spark_feature_series(
    daily: Sequence[DailyBars], out: Path, master: str = "local[2]", driver_memory: str = "2g"
) -> list[AssetSeries]:
    """Start Spark, write the feature Parquet to ``out``, stop Spark, and read the series back from ``out`` in
    the order of ``daily`` (the order fixes the training examples' order: the same model as the pandas path)."""
    from tapewatch.training.spark_kmeans import session

    spark = session(master, app_name="tapewatch-lstm-features", driver_memory=driver_memory)
    try:
        write_feature_parquet(spark, daily, out)
    finally:
        spark.stop()
    position = {d.symbol: i for i, d in enumerate(daily)}
    return sorted(read_feature_parquet(out), key=lambda s: position.get(s.symbol, len(position)))
