"""A venue's order-flow chunks as the stream stored them (``features`` rows of cadence ``fast``), read back for a
calibration over its history (``tapewatch calibrate --from-db``).

One SELECT through the primary key's (symbol, venue, ts) order; times as epoch milliseconds (int64), the values as
the records carried them (``None`` where a feature warmed up), and each row's feature-set version so the caller can
refuse chunks another version of the flow stage computed.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import BigInteger, Engine, func, select

from tapewatch.records import Cadence
from tapewatch.sinks import db

COLUMNS = ("symbol", "ts", "version", "values")


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def read_flow_chunks(
    engine: Engine, venue: str, since_ms: int | None = None, until_ms: int | None = None
) -> pd.DataFrame:
    """The venue's stored chunks with ``since_ms ≤ ts < until_ms`` (either bound optional), by symbol then time."""
    c = db.features.c
    ts_ms = func.round(func.extract("epoch", c.ts) * 1000).cast(BigInteger).label("ts")
    query = select(c.symbol, ts_ms, c.version, c["values"]).where(c.venue == venue, c.cadence == Cadence.FAST.value)
    if since_ms is not None:
        query = query.where(c.ts >= _at(since_ms))
    if until_ms is not None:
        query = query.where(c.ts < _at(until_ms))
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(c.symbol, c.ts)).all()
    frame = pd.DataFrame([tuple(row) for row in rows], columns=list(COLUMNS))
    return frame.astype({"ts": "int64"}) if len(frame) else frame
