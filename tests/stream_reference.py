"""What the stream worker must emit, computed in batch, and its ``features.1m`` output as frames to compare."""

from __future__ import annotations

import pandas as pd

from tapewatch.detectors.features import FEATURE_NAMES, FEATURE_SET_VERSION
from tapewatch.detectors.flow import (
    FLOW_FEATURE_NAMES,
    FLOW_FEATURE_SET_VERSION,
    FlowChunk,
    FlowConfig,
    chunks_to_frame,
    iter_flow,
)
from tapewatch.feeds import Prints
from tapewatch.records import Cadence, Features
from tests.kafka_reader import Received


def flow_reference(
    quotes: pd.DataFrame, books: pd.DataFrame, config: FlowConfig | None = None, *, prints: Prints | None = "trades"
) -> pd.DataFrame:
    """The chunks a worker closes after reading all of ``quotes``/``books`` (no flush: open chunks stay open).
    Rows in stream order per symbol (arrival order of each frame). ``prints``: the venue's profile's (``None``
    for a venue no profile names: learnt from the records, as the worker does)."""
    chunks: list[FlowChunk] = []
    symbols = sorted({*quotes["symbol"].astype(str), *books["symbol"].astype(str)}) if len(books) else None
    for symbol in symbols or sorted(quotes["symbol"].astype(str).unique()):
        chunks.extend(
            iter_flow(
                symbol,
                quotes[quotes["symbol"] == symbol],
                books[books["symbol"] == symbol] if len(books) else books,
                config,
                flush=False,
                prints=prints,
            )
        )
    return chunks_to_frame(chunks)


def features_frames(messages: list[Received]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``features.1m`` messages as (bar features, flow features) frames, sorted by symbol and ts, exact
    duplicates (a replay after a crash may repeat an output) removed. Checks key = symbol and the versions."""
    bar_rows, flow_rows = [], []
    for message in messages:
        record = Features.from_json(message.value)
        assert message.key == record.symbol.encode()
        if record.cadence is Cadence.BAR_1M:
            assert record.version == FEATURE_SET_VERSION
            bar_rows.append({"symbol": record.symbol, "venue": record.venue, "ts": record.ts, **record.values})
        else:
            assert record.version == FLOW_FEATURE_SET_VERSION
            flow_rows.append({"symbol": record.symbol, "ts": record.ts, **record.values})
    bars = pd.DataFrame(bar_rows, columns=["symbol", "venue", "ts", *FEATURE_NAMES]).astype(
        dict.fromkeys(FEATURE_NAMES, "float64")
    )
    flow = pd.DataFrame(flow_rows, columns=["symbol", "ts", *FLOW_FEATURE_NAMES]).astype(
        {"ts": "int64", **dict.fromkeys(FLOW_FEATURE_NAMES, "float64")}
    )
    return tuple(  # type: ignore[return-value]
        frame.drop_duplicates().sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)
        for frame in (bars, flow)
    )
