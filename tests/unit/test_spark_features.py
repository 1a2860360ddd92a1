"""The feature library on Spark (applyInPandas) gives exactly the pandas results on a small simulated session."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from tapewatch.detectors.bars import bars_from_quotes
from tapewatch.detectors.features import FEATURE_NAMES, compute_frame
from tapewatch.detectors.flow import FLOW_FEATURE_NAMES, FlowConfig, compute_flow_frame
from tapewatch.generators.simulator import SimulationConfig, generate
from tapewatch.training.spark_features import (
    BAR_FEATURES_SCHEMA,
    FLOW_FEATURES_SCHEMA,
    bar_features_group,
    spark_bar_features,
    spark_flow_features,
)

CONFIG = FlowConfig(baseline_min_chunks=6)


@pytest.fixture(scope="module")
def session() -> tuple[pd.DataFrame, pd.DataFrame]:
    sim = generate(SimulationConfig(symbols=3, minutes=8, seed=4))
    return sim.quotes_frame(), sim.books_frame()


def assert_same(spark_out: pd.DataFrame, pandas_out: pd.DataFrame, keys: list[str]) -> None:
    a = spark_out.sort_values(keys).reset_index(drop=True)
    b = pandas_out.sort_values(keys).reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b) > 0
    for key in keys:
        assert a[key].tolist() == b[key].tolist()
    values_a = a.drop(columns=keys).to_numpy(dtype="float64")
    values_b = b.drop(columns=keys).to_numpy(dtype="float64")
    assert np.array_equal(values_a, values_b, equal_nan=True)  # bit for bit: the same fold runs in both


def test_schemas_follow_the_feature_names() -> None:
    assert BAR_FEATURES_SCHEMA.split(", ")[2:] == [f"{name} double" for name in FEATURE_NAMES]
    assert FLOW_FEATURES_SCHEMA.split(", ")[2:] == [f"{name} double" for name in FLOW_FEATURE_NAMES]


def test_flow_features_on_spark_equal_pandas(spark: Any, session: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    quotes, books = session
    expected = compute_flow_frame(quotes, books, CONFIG)
    # shuffle the rows: Spark must restore each stream's order by itself
    shuffled_q = quotes.sample(frac=1.0, random_state=1)
    shuffled_b = books.sample(frac=1.0, random_state=2)
    out = spark_flow_features(spark.createDataFrame(shuffled_q), spark.createDataFrame(shuffled_b), CONFIG)
    assert_same(out.toPandas(), expected, ["symbol", "ts"])


def test_flow_features_with_an_explicit_order_column(spark: Any, session: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    quotes, books = session
    quotes = quotes.assign(offset=np.arange(len(quotes)))
    books = books.assign(offset=np.arange(len(books)))
    expected = compute_flow_frame(quotes, books, CONFIG)
    out = spark_flow_features(
        spark.createDataFrame(quotes), spark.createDataFrame(books), CONFIG, order_column="offset"
    )
    assert_same(out.toPandas(), expected, ["symbol", "ts"])


def test_bar_features_on_spark_equal_pandas(spark: Any, session: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    quotes, _ = session
    bars = bars_from_quotes(quotes.assign(venue="sim"))
    expected = pd.concat(
        [bar_features_group(group) for _, group in bars.groupby("symbol", sort=True)], ignore_index=True
    )
    first = bars[bars["symbol"] == bars["symbol"].iloc[0]]
    direct = compute_frame(first.sort_values("start"))
    assert np.array_equal(
        expected[expected["symbol"] == first["symbol"].iloc[0]][list(FEATURE_NAMES)].to_numpy(),
        direct.to_numpy(),
        equal_nan=True,
    )
    out = spark_bar_features(spark.createDataFrame(bars.sample(frac=1.0, random_state=3)))
    assert_same(out.toPandas(), expected, ["symbol", "start"])
