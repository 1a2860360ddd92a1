"""The shared feature library on Spark: one symbol per group through ``groupBy("symbol").applyInPandas``.

* :func:`spark_bar_features` — bar features (:func:`tapewatch.detectors.features.compute_frame`, the fold of the
  incremental definition) of each symbol's bars sorted by ``start``; output ``symbol``, ``start`` and
  :data:`~tapewatch.detectors.features.FEATURE_NAMES` (:data:`BAR_FEATURES_SCHEMA`).
* :func:`spark_flow_features` — order-flow features (:func:`tapewatch.detectors.flow.compute_flow_frame`) of each symbol
  over its quotes and books, unioned into one frame with a ``stream`` column; output ``symbol``, ``ts`` (chunk
  end) and :data:`~tapewatch.detectors.flow.FLOW_FEATURE_NAMES` (:data:`FLOW_FEATURES_SCHEMA`).

Spark does not keep row order, while flow features depend on each stream's order (the order a consumer would
read it in). So each stream is re-ordered inside its group: by an explicit ``order_column`` (e.g. the
Kafka offset, or a row number written with the data), or by default quotes by ``(ts, seq)`` (``seq`` when the
frame has it) and books by ``ts``, which is the producers' order whenever a stream is in event-time order.

The per-group functions (:func:`bar_features_group`, :func:`flow_features_group`) are plain pandas and are
what the tests compare with the pandas path. Spark itself is imported lazily: :mod:`detectors` stays
importable without a JVM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import pandas as pd

from tapewatch.detectors.features import FEATURE_NAMES, INPUT_COLUMNS, compute_frame
from tapewatch.detectors.flow import BOOK_COLUMNS, FLOW_FEATURE_NAMES, QUOTE_COLUMNS, FlowConfig, compute_flow_frame

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

QUOTE_STREAM: Final = 0
BOOK_STREAM: Final = 1
#: the per-stream order column of the unioned flow input
ORDER: Final = "order"


def _schema(keys: str, names: tuple[str, ...]) -> str:
    return ", ".join([keys, *(f"{name} double" for name in names)])


#: DDL of :func:`spark_bar_features`' output
BAR_FEATURES_SCHEMA: Final = _schema("symbol string, start long", FEATURE_NAMES)
#: DDL of :func:`spark_flow_features`' output
FLOW_FEATURES_SCHEMA: Final = _schema("symbol string, ts long", FLOW_FEATURE_NAMES)
#: columns of the unioned flow input (quote columns are null on book rows and vice versa)
FLOW_INPUT_COLUMNS: Final = ("symbol", "stream", ORDER, "ts", *QUOTE_COLUMNS[2:], *BOOK_COLUMNS[2:])
_INPUT_TYPES: Final = {"symbol": "string", "stream": "int", ORDER: "long", "ts": "long", "side": "string"}


# -- per group (pandas) -------------------------------------------------------------------------------------
def bar_features_group(bars: pd.DataFrame) -> pd.DataFrame:
    """One symbol's bars (any row order) → ``symbol``, ``start`` and the bar features, by ``start``."""
    ordered = bars.sort_values("start", kind="stable").reset_index(drop=True)
    out = compute_frame(ordered)
    out.insert(0, "start", ordered["start"].to_numpy(dtype="int64"))
    out.insert(0, "symbol", ordered["symbol"].to_numpy(dtype=object))
    return out


def flow_features_group(frame: pd.DataFrame, config: FlowConfig | None = None, by_ts: bool = True) -> pd.DataFrame:
    """One symbol's unioned quotes and books → its flow features; each stream ordered by (``ts``,) ``order``."""
    keys = ["ts", ORDER] if by_ts else [ORDER]
    quotes = frame[frame["stream"] == QUOTE_STREAM].sort_values(keys, kind="stable")
    books = frame[frame["stream"] == BOOK_STREAM].sort_values(keys, kind="stable")
    return compute_flow_frame(quotes, books, config)


# -- Spark ----------------------------------------------------------------------------------------------------
def spark_bar_features(bars: DataFrame) -> DataFrame:
    """Bar features of every symbol: ``bars`` has ``symbol`` and :data:`tapewatch.detectors.features.INPUT_COLUMNS`
    (the change percentages may be missing)."""
    from pyspark.sql import functions as sf

    columns = [sf.col("symbol")]
    for name in INPUT_COLUMNS:
        if name in bars.columns:
            columns.append(sf.col(name).cast("long" if name == "start" else "double"))
        elif name in ("price_change_pct", "volume_change_pct"):
            columns.append(sf.lit(None).cast("double").alias(name))
        else:
            raise ValueError(f"bars lack column {name!r}")
    return bars.select(*columns).groupBy("symbol").applyInPandas(bar_features_group, schema=BAR_FEATURES_SCHEMA)


def flow_input(quotes: DataFrame, books: DataFrame, order_column: str | None = None) -> DataFrame:
    """The union of the two streams in :data:`FLOW_INPUT_COLUMNS` (missing optional columns become null)."""
    from pyspark.sql import functions as sf

    def shaped(frame: DataFrame, stream: int, own: tuple[str, ...]) -> DataFrame:
        if order_column is not None:
            order = sf.col(order_column)
        elif stream == QUOTE_STREAM and "seq" in frame.columns:
            order = sf.col("seq")
        else:
            order = sf.lit(0)
        columns = []
        for name in FLOW_INPUT_COLUMNS:
            kind = _INPUT_TYPES.get(name, "double")
            if name == "stream":
                value = sf.lit(stream)
            elif name == ORDER:
                value = order
            elif name in own and name in frame.columns:
                value = sf.col(name)
            elif name in ("symbol", "ts"):
                raise ValueError(f"{'quotes' if stream == QUOTE_STREAM else 'books'} lack column {name!r}")
            else:
                value = sf.lit(None)
            columns.append(value.cast(kind).alias(name))
        return frame.select(*columns)

    return shaped(quotes, QUOTE_STREAM, QUOTE_COLUMNS).unionByName(shaped(books, BOOK_STREAM, BOOK_COLUMNS))


def spark_flow_features(
    quotes: DataFrame, books: DataFrame, config: FlowConfig | None = None, *, order_column: str | None = None
) -> DataFrame:
    """Flow features of every symbol. ``quotes`` has :data:`tapewatch.detectors.flow.QUOTE_COLUMNS` (``side``/``bid``/
    ``ask`` optional), ``books`` :data:`tapewatch.detectors.flow.BOOK_COLUMNS`; ``order_column`` (on both) gives each
    stream's order within a symbol, else quotes are taken by ``(ts, seq)`` and books by ``ts``."""
    by_ts = order_column is None

    def group(frame: pd.DataFrame) -> pd.DataFrame:
        return flow_features_group(frame, config, by_ts)

    return flow_input(quotes, books, order_column).groupBy("symbol").applyInPandas(group, schema=FLOW_FEATURES_SCHEMA)
