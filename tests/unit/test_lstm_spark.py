"""The LSTM's Spark path: features computed on Spark, written as Parquet and read back are the pandas path's series."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tapewatch.signals.dqn.data import bars_from_daily
from tapewatch.training.dqn.data import DailyBars, series_of
from tapewatch.training.lstm_data import read_feature_parquet, write_feature_parquet
from tests.unit.test_dqn_env import synthetic_daily


def test_spark_parquet_series_equal_the_pandas_series(spark: Any, tmp_path: Path) -> None:
    daily = [
        DailyBars(symbol, f"source-{symbol}", bars_from_daily(synthetic_daily(90, seed, "2015-01-01")))
        for seed, symbol in ((1, "BB"), (2, "AA"))
    ]
    write_feature_parquet(spark, daily, tmp_path / "features.parquet")
    from_spark = read_feature_parquet(tmp_path / "features.parquet")
    from_pandas = sorted(series_of(daily), key=lambda s: s.symbol)
    assert [s.symbol for s in from_spark] == ["AA", "BB"]
    for a, b in zip(from_spark, from_pandas, strict=True):
        assert a.source == b.source
        np.testing.assert_array_equal(a.times, b.times)
        np.testing.assert_array_equal(a.close, b.close)
        assert list(a.features.columns) == list(b.features.columns)
        # bit for bit: the same fold of the feature library runs in both
        assert np.array_equal(a.features.to_numpy(), b.features.to_numpy(), equal_nan=True)
