"""Spark MLlib K-means from Parquet bars writes the same artifact format as scikit-learn, with comparable scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tapewatch.artifacts import ArtifactStore
from tapewatch.detectors.kmeans import KMeansModel, KMeansParams, train
from tapewatch.evaluation.lookback import bar_features

pytestmark = pytest.mark.integration


def _bars(n: int = 400, symbols: int = 3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for s in range(symbols):
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
        volume = rng.lognormal(8, 0.3, n)
        spikes = rng.choice(n, 8, replace=False)
        volume[spikes] *= 30
        close[spikes] *= 1.01
        prev = np.concatenate([[np.nan], close[:-1]])
        prev_v = np.concatenate([[np.nan], volume[:-1]])
        parts.append(
            pd.DataFrame(
                {
                    "symbol": f"S{s}",
                    "venue": "sim",
                    "start": np.arange(n, dtype=np.int64) * 60_000,
                    "end": np.arange(1, n + 1, dtype=np.int64) * 60_000,
                    "open": close,
                    "high": close * 1.002,
                    "low": close * 0.998,
                    "close": close,
                    "volume": volume,
                    "vwap": close,
                    "trades": 10,
                    "price_change_pct": (close / prev - 1) * 100,
                    "volume_change_pct": (volume / prev_v - 1) * 100,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def test_spark_and_sklearn_agree(tmp_path: Path) -> None:
    from tapewatch.training import spark_kmeans

    bars = _bars()
    bars.to_parquet(tmp_path / "bars.parquet", index=False)
    params = KMeansParams(k_min=2, k_max=3, seed=1)
    spark = spark_kmeans.session("local[1]")
    try:
        model, report = spark_kmeans.train(
            spark_kmeans.read_bars_parquet(spark, [tmp_path / "bars.parquet"]), params=params
        )
    finally:
        spark.stop()
    feats = bar_features(bars)
    assert report.rows == len(feats.dropna(how="all", subset=list(model.feature_names)))
    store = ArtifactStore(tmp_path / "models")
    version = model.save(store, "kmeans")
    loaded = KMeansModel.load(store)
    assert loaded.version == version
    assert store.load("kmeans").manifest["engine"] == "spark"
    assert loaded.trained_on is not None and loaded.trained_on.venues == ("sim",), "the bars' venue is recorded"
    reference = train(feats, params=params)
    ours = loaded.score_frame(feats).score
    theirs = reference.score_frame(feats).score
    rank_corr = pd.Series(ours).rank().corr(pd.Series(theirs).rank())
    assert rank_corr > 0.8
    # the spiked minutes are the top of both rankings
    top = set(np.argsort(-ours)[:20].tolist()) & set(np.argsort(-theirs)[:20].tolist())
    assert len(top) >= 10
