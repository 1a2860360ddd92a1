"""K-means training on Spark MLlib: the same artifact as :func:`tapewatch.detectors.kmeans.train`, for long histories.

Pipeline (``local[*]`` here, a cluster URL elsewhere):

1. **Bars** from Parquet (:func:`read_bars_parquet`), PostgreSQL over JDBC (:func:`read_bars_jdbc`, the
   ``org.postgresql:postgresql`` driver from Maven Central) or the Kafka bars topic itself
   (:func:`read_bars_kafka`, ``spark-sql-kafka``), all to the columns of :class:`tapewatch.records.Bar`.
2. **Features** through the shared bar-feature library, one symbol per group (``applyInPandas`` over
   :func:`tapewatch.detectors.features.compute_frame_vectorised`, which tests hold equal to the incremental definition).
3. **Robust scaling** with ``approxQuantile`` (median, IQR; relative error 1e-3), NaN imputed at the median,
   clipped to ±``fit_clip`` for fitting, as in the scikit-learn engine.
4. **k by silhouette** (``ClusteringEvaluator``) over ``k_min..k_max`` with MLlib ``KMeans`` (k-means||).
5. **Labelling and calibration** by :func:`tapewatch.detectors.kmeans.finish_model` on a sample of at most
   ``sample_rows`` scaled rows collected to the driver, with the cluster masses from the full data.

Spark itself is imported lazily: :mod:`detectors` stays importable without a JVM. The data hash of a Spark
training run is the order-independent sum of ``xxhash64`` over the feature rows (a full SHA-256 would need
the rows in one place).
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from tapewatch.detectors.features import FEATURE_NAMES, compute_frame_vectorised
from tapewatch.detectors.kmeans import (
    KMEANS_FEATURES,
    FeatureError,
    FloatArray,
    KMeansModel,
    KMeansParams,
    finish_model,
    params_info,
)
from tapewatch.detectors.model_venues import TrainedOn

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession

POSTGRES_PACKAGE: Final = "org.postgresql:postgresql:42.7.4"
BAR_FIELDS: Final = (
    *("symbol", "venue", "start", "end", "open", "high", "low", "close", "volume", "vwap", "trades"),
    *("price_change_pct", "volume_change_pct"),
)
FEATURE_COLUMNS: Final = ("symbol", "ts", *FEATURE_NAMES)


def kafka_package(spark_version: str) -> str:
    """The spark-sql-kafka artifact matching the running Spark (Scala 2.13 builds since Spark 4)."""
    return f"org.apache.spark:spark-sql-kafka-0-10_2.13:{spark_version}"


@dataclass(frozen=True, slots=True)
class SparkTrainingReport:
    rows: int
    seconds: float
    k: int
    silhouette: float


def session(
    master: str = "local[*]",
    packages: Sequence[str] = (),
    app_name: str = "tapewatch-kmeans",
    driver_memory: str = "4g",
) -> SparkSession:
    from pyspark.sql import SparkSession

    # Python workers must run this interpreter (the venv with numpy/pandas), not whatever `python3` is on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.sql.shuffle.partitions", "8")
        # local[*] runs everything in the driver: its default 1 GiB heap runs out before 10 million bars do
        .config("spark.driver.memory", driver_memory)
    )
    if packages:
        builder = builder.config("spark.jars.packages", ",".join(packages))
    return builder.getOrCreate()


# --- sources ----------------------------------------------------------------------------------------------
def _select_bars(frame: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F  # noqa: N812

    optional = ("venue", "trades", "vwap", "end", "price_change_pct", "volume_change_pct")
    missing = [c for c in BAR_FIELDS if c not in frame.columns and c not in optional]
    missing += [c for c in ("start", "close") if c not in frame.columns and c not in missing]
    if missing:
        raise FeatureError(f"bars lack column(s) {', '.join(sorted(set(missing)))}")
    if "vwap" not in frame.columns:
        frame = frame.withColumn("vwap", F.col("close"))
    # a bar file (symbol, start, OHLCV) has no change percentages: derive them as tapewatch.detectors.bars does, against
    # the symbol's previous bar (null for its first bar, and for the volume change after a zero volume)
    from pyspark.sql import Window

    previous = Window.partitionBy("symbol").orderBy("start")
    for name, column in (("price_change_pct", "close"), ("volume_change_pct", "volume")):
        if name not in frame.columns:
            before = F.lag(column).over(previous)
            change = F.when(before != 0, (F.col(column) - before) / before * 100.0)
            frame = frame.withColumn(name, change.cast("double"))
    # the venue names what the model is trained on (tapewatch.detectors.model_venues); a file without one is "file", as
    # tapewatch.evaluation.lookback.read_input names it
    venue = F.coalesce(F.col("venue").cast("string"), F.lit("file")) if "venue" in frame.columns else F.lit("file")
    return frame.select(
        F.col("symbol").cast("string"),
        venue.alias("venue"),
        F.col("start").cast("long"),
        *(F.col(c).cast("double") for c in ("high", "low", "close", "volume", "vwap")),
        *(F.col(c).cast("double") for c in ("price_change_pct", "volume_change_pct")),
    )


def read_bars_parquet(spark: SparkSession, paths: Sequence[Path]) -> DataFrame:
    return _select_bars(spark.read.parquet(*(str(p) for p in paths)))


def read_bars_jdbc(spark: SparkSession, url: str, table: str, user: str | None, password: str | None) -> DataFrame:
    reader = (
        spark.read.format("jdbc").option("url", url).option("dbtable", table).option("driver", "org.postgresql.Driver")
    )
    if user:
        reader = reader.option("user", user)
    if password:
        reader = reader.option("password", password)
    return _select_bars(reader.load())


def read_bars_kafka(spark: SparkSession, bootstrap: str, topic: str) -> DataFrame:
    """The whole bars topic (earliest → latest offsets) as a batch, JSON values decoded to Bar columns."""
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql import types as T  # noqa: N812

    schema = T.StructType(
        [
            T.StructField("symbol", T.StringType()),
            T.StructField("venue", T.StringType()),
            T.StructField("start", T.LongType()),
            *(T.StructField(c, T.DoubleType()) for c in ("high", "low", "close", "volume", "vwap")),
            T.StructField("price_change_pct", T.DoubleType()),
            T.StructField("volume_change_pct", T.DoubleType()),
        ]
    )
    raw = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .load()
    )
    parsed = raw.select(F.from_json(F.col("value").cast("string"), schema).alias("bar")).select("bar.*")
    return _select_bars(parsed.where(F.col("symbol").isNotNull() & F.col("start").isNotNull()))


# --- features ---------------------------------------------------------------------------------------------
def _symbol_features(bars: pd.DataFrame) -> pd.DataFrame:
    """One symbol's bars → the feature library's columns (``ts`` = bar end, as the stream emits them)."""
    bars = bars.sort_values("start", kind="stable").drop_duplicates("start", keep="last").reset_index(drop=True)
    features = compute_frame_vectorised(bars)
    features.insert(0, "ts", bars["start"].to_numpy(dtype=np.int64) + 60_000)
    features.insert(0, "symbol", bars["symbol"].to_numpy())
    return features


def features(bars: DataFrame) -> DataFrame:
    from pyspark.sql import types as T  # noqa: N812

    schema = T.StructType(
        [
            T.StructField("symbol", T.StringType()),
            T.StructField("ts", T.LongType()),
            *(T.StructField(name, T.DoubleType()) for name in FEATURE_NAMES),
        ]
    )
    return bars.groupBy("symbol").applyInPandas(_symbol_features, schema)


# --- training ---------------------------------------------------------------------------------------------
def _feature_rows(bars: DataFrame, names: list[str]) -> DataFrame:
    """The bars' feature rows (cached) that have at least one of ``names``."""
    unknown = [n for n in names if n not in FEATURE_NAMES]
    if unknown:
        raise FeatureError(f"unknown feature(s) {', '.join(unknown)}")
    # like the scikit-learn engine: drop only rows with no feature at all (NaN from pandas counts as missing)
    return features(bars).where(" OR ".join(f"(`{n}` IS NOT NULL AND NOT isnan(`{n}`))" for n in names)).cache()


def _feature_stats(feats: DataFrame, names: list[str]) -> Row:
    """Rows, time range, symbols and the order-independent data hash of the feature rows."""
    from pyspark.sql import functions as F  # noqa: N812

    return feats.agg(
        F.count(F.lit(1)).alias("rows"),
        F.min("ts").alias("start"),
        F.max("ts").alias("end"),
        F.countDistinct("symbol").alias("symbols"),
        F.sum(F.xxhash64(*names) % (1 << 40)).alias("hash"),
        *(F.sum(F.isnan(n).cast("int")).alias(f"nan_{i}") for i, n in enumerate(names)),
    ).collect()[0]


def _robust_scale(feats: DataFrame, names: list[str]) -> tuple[FloatArray, FloatArray]:
    """Per feature the median and the IQR (the standard deviation where the IQR is 0, else 1)."""
    from pyspark.sql import functions as F  # noqa: N812

    quantiles = feats.approxQuantile(names, [0.25, 0.5, 0.75], 1e-3)
    stds = feats.agg(*(F.stddev_pop(n).alias(n) for n in names)).collect()[0]
    center = np.array([q[1] if q else 0.0 for q in quantiles], dtype=np.float64)
    iqr = np.array([(q[2] - q[0]) if q else 0.0 for q in quantiles], dtype=np.float64)
    std = np.array([float(stds[n] or 0.0) for n in names], dtype=np.float64)
    scale = np.where(iqr > 0, iqr, np.where(std > 0, std, 1.0))
    return center, scale


def _scaled_vectors(
    feats: DataFrame, names: list[str], center: FloatArray, scale: FloatArray, fit_clip: float
) -> DataFrame:
    """Cached ``features`` (scaled, clipped to ±``fit_clip``: what k-means fits) and ``u0..`` (scaled, unclipped:
    what the model is labelled and calibrated on); missing values at the median."""
    from pyspark.ml.feature import VectorAssembler
    from pyspark.sql import functions as F  # noqa: N812

    scaled_cols = []
    for i, n in enumerate(names):
        z = (F.col(n) - F.lit(float(center[i]))) / F.lit(float(scale[i]))
        z = F.when(F.col(n).isNull() | F.isnan(n), F.lit(0.0)).otherwise(z)
        scaled_cols.append(F.greatest(F.lit(-fit_clip), F.least(F.lit(fit_clip), z)).alias(f"z{i}"))
        scaled_cols.append(F.when(F.col(n).isNull() | F.isnan(n), F.lit(0.0)).otherwise(z).alias(f"u{i}"))
    zframe = feats.select(*scaled_cols)
    return (
        VectorAssembler(inputCols=[f"z{i}" for i in range(len(names))], outputCol="features")
        .transform(zframe)
        .select("features", *(f"u{i}" for i in range(len(names))))
        .cache()
    )


def _best_k(vectors: DataFrame, rows: int, params: KMeansParams) -> tuple[float, Any, dict[str, float]]:
    """The best silhouette over ``k_min..k_max`` (on a sample of the rows), its fitted k-means, and the
    silhouette per k."""
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.evaluation import ClusteringEvaluator

    evaluator = ClusteringEvaluator(featuresCol="features", metricName="silhouette")
    best: tuple[float, Any] | None = None
    sil_by_k: dict[str, float] = {}
    sample_fraction = min(1.0, params.silhouette_sample * 4 / rows)
    sil_data = vectors.sample(fraction=sample_fraction, seed=params.seed) if sample_fraction < 1 else vectors
    for k in range(params.k_min, params.k_max + 1):
        fitted = KMeans(k=k, seed=params.seed, maxIter=50, featuresCol="features").fit(vectors)
        sil = float(evaluator.evaluate(fitted.transform(sil_data)))
        sil_by_k[str(k)] = round(sil, 6)
        if best is None or sil > best[0] + 1e-12:
            best = (sil, fitted)
    assert best is not None
    return best[0], best[1], sil_by_k


def _driver_sample(vectors: DataFrame, rows: int, sample_rows: int, n_features: int, seed: int) -> FloatArray:
    """At most about ``sample_rows`` unclipped scaled rows, collected to the driver."""
    sample_fraction = min(1.0, sample_rows / rows)
    sample = (vectors.sample(fraction=sample_fraction, seed=seed) if sample_fraction < 1 else vectors).select(
        *(f"u{i}" for i in range(n_features))
    )
    return sample.toPandas().to_numpy(dtype=np.float64)


def train(
    bars: DataFrame,
    feature_names: Sequence[str] = KMEANS_FEATURES,
    params: KMeansParams | None = None,
    sample_rows: int = 100_000,
) -> tuple[KMeansModel, SparkTrainingReport]:
    params = params or KMeansParams()
    started = time.perf_counter()
    names = list(feature_names)
    feats = _feature_rows(bars, names)
    stats = _feature_stats(feats, names)
    rows = int(stats["rows"])
    if rows < max(10 * params.k_max, 20):
        raise FeatureError(f"too few feature vectors to train K-means: {rows}")
    center, scale = _robust_scale(feats, names)
    vectors = _scaled_vectors(feats, names, center, scale, params.fit_clip)
    silhouette, fitted, sil_by_k = _best_k(vectors, rows, params)
    centroids = np.array([np.asarray(c, dtype=np.float64) for c in fitted.clusterCenters()])
    sizes = np.array(fitted.summary.clusterSizes, dtype=np.float64)
    sample_z = _driver_sample(vectors, rows, sample_rows, len(names), params.seed)
    model = finish_model(names, center, scale, centroids, sizes / sizes.sum(), sample_z, silhouette, params)
    model.trained_on = TrainedOn.from_venues(row[0] for row in bars.select("venue").distinct().collect())
    vectors.unpersist()
    feats.unpersist()
    seconds = time.perf_counter() - started
    model.info = {
        "engine": "spark",
        "training_range": {
            "start": int(stats["start"]),
            "end": int(stats["end"]),
            "rows": rows,
            "symbols": int(stats["symbols"]),
        },
        "metrics": {"silhouette_by_k": sil_by_k, "rows": rows, "seconds": round(seconds, 3)},
        "params": params_info(params),
        "data_hash_full": hashlib.sha256(f"{rows}|{stats['hash']}|{names}".encode()).hexdigest(),
    }
    report = SparkTrainingReport(rows, seconds, model.k, silhouette if math.isfinite(silhouette) else math.nan)
    return model, report
