"""The topics each sink reads unless told otherwise: a module of their own, so that the command line names them in
its help without loading a database or search client."""

from __future__ import annotations

from typing import Final

from tapewatch.topics import (
    ACCOUNTS,
    ALERTS,
    ALL_TOPICS,
    FIRM_ORDERS,
    FORECASTS,
    MARKET_BY_ORDER,
    NEWS_SIGNALS,
    QUOTES,
    SCORES,
    TRUTH,
    VENUE_INDICATORS,
)

#: the PostgreSQL sink: every topic it has a table for, and the dead-letter topics; not the raw quotes (the bars and
#: the order-flow features summarise them), the simulator's ground truth, the public market-by-order feed (no table
#: yet) nor the reference data (read by the workers)
POSTGRES_TOPICS: Final[tuple[str, ...]] = tuple(
    topic.name for topic in ALL_TOPICS if topic not in (QUOTES, TRUTH, MARKET_BY_ORDER, ACCOUNTS)
)
#: the Elasticsearch sink: what analysts search and chart in Kibana (a firm's drop copy in the tenant's own indices)
ELASTICSEARCH_TOPICS: Final[tuple[str, ...]] = (
    ALERTS.name,
    SCORES.name,
    FORECASTS.name,
    NEWS_SIGNALS.name,
    FIRM_ORDERS.name,
    VENUE_INDICATORS.name,
)
