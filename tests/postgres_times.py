"""Reading rows back from PostgreSQL in tests: the tables store ``timestamptz``, the records epoch milliseconds."""

from __future__ import annotations

from datetime import datetime


def datetime_to_ms(value: datetime) -> int:
    return round(value.timestamp() * 1000)
