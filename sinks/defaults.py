"""The topics each sink reads unless told otherwise: a module of their own, so that the command line names them in
its help without loading a database or search client."""

from __future__ import annotations

from typing import Final

from tapewatch.topics import (
    ACTIONS,
    ALERTS,
    BARS,
    BOOKS,
    DLQ_PRODUCERS,
    DLQ_SINKS,
    DLQ_STREAMS,
    FEATURES,
    FILLS,
    FORECASTS,
    NEWS_ITEMS,
    NEWS_SIGNALS,
    ORDERS,
    PORTFOLIO,
    SCORES,
)

#: the PostgreSQL sink: every record topic it has a table for, plus the dead-letter topics
POSTGRES_TOPICS: Final[tuple[str, ...]] = tuple(
    topic.name
    for topic in (
        BARS,
        FEATURES,
        SCORES,
        ALERTS,
        ACTIONS,
        FORECASTS,
        NEWS_ITEMS,
        NEWS_SIGNALS,
        BOOKS,
        ORDERS,
        FILLS,
        PORTFOLIO,
        DLQ_PRODUCERS,
        DLQ_STREAMS,
        DLQ_SINKS,
    )
)
#: the Elasticsearch sink: what analysts search and chart in Kibana
ELASTICSEARCH_TOPICS: Final[tuple[str, ...]] = (ALERTS.name, SCORES.name, FORECASTS.name, NEWS_SIGNALS.name)
