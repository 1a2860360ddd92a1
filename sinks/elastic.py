"""Elasticsearch sink: alerts (and scores, actions) as ECS documents in monthly indices, idempotently.

Each record becomes one document whose ``_id`` is its natural key (``alert_id`` for alerts), so a replay
overwrites instead of duplicating; the index comes from the record's own ``@timestamp``
(``<prefix>-alerts-YYYY.MM``). Index templates use core mapping types only (the integ-test distribution
this machine runs has no mapper-extras, ingest or ILM); an ILM delete policy is attached only when the
server has ILM. The bulk API answers 200 even when items fail, so every item is checked: 429 and 5xx items
are retried with back-off, other refusals (a mapping conflict, say) go to ``dlq.sinks``, and a connection
failure is an outage (:class:`~tapewatch.sinks.consumer.SinkUnavailableError`).

Alerts are indexed with external versioning, version = the alert's emission order (its ``ts``, then the news about
its onset it knew: :attr:`~tapewatch.records.Alert.emission`): an alert re-emitted under the same id when it
escalates, or when news about its onset arrived after it, replaces the stored one only when newer, so the index
keeps the newest emission whatever the order of arrival (a replay of an old one answers 409, which is success), as
PostgreSQL does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import orjson
from elasticsearch import ApiError, Elasticsearch, TransportError

from tapewatch.backoff import Backoff
from tapewatch.errors import TapewatchError
from tapewatch.records import (
    Action,
    Alert,
    ExecutionReport,
    Forecast,
    NewsSignal,
    Record,
    Score,
    Severity,
    VenueIndicator,
)
from tapewatch.settings import Settings
from tapewatch.sinks.consumer import Item, Rejected, SinkUnavailableError
from tapewatch.sinks.search import es_client, index_name
from tapewatch.topics import Topic

log = logging.getLogger(__name__)

#: ECS event.severity is a number; ours are ordered words
SEVERITY_NUMBER = {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 4}
#: evidence numbers promoted to mapped fields under tapewatch.* (FEEDS.md), by evidence key
PROMOTED_EVIDENCE = {
    "price": "price",
    "change_pct": "change_pct",
    "price_change_pct": "change_pct",
    "volume": "volume",
    "spread_bps": "spread_bps",
}
ALERT_RETENTION_DAYS = 400
ITEM_ATTEMPTS = 5


# Dates go to Elasticsearch as epoch milliseconds (DATE accepts both): formatting three ISO strings per
# document cost a tenth of the sink's time.


def alert_document(alert: Alert) -> dict[str, Any]:
    product: dict[str, Any] = {
        "alert_id": alert.alert_id,
        "symbol": alert.symbol,
        "venue": alert.venue,
        "tenant": alert.tenant,
        "kind": alert.kind.value,
        "severity": alert.severity.value,
        "score": alert.score,
        "model_version": alert.model_version,
        "evidence": alert.evidence,
        "news": alert.news,
        "news_at_onset": bool(alert.news),
    }
    for key, target in PROMOTED_EVIDENCE.items():
        value = alert.evidence.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            product[target] = float(value)
    reason = alert.message or f"{alert.kind.value} on {alert.symbol}"
    return {
        "@timestamp": alert.ts,
        "message": reason,
        "event": {
            "kind": "alert",
            "id": alert.alert_id,
            "dataset": "tapewatch.alerts",
            "severity": SEVERITY_NUMBER[alert.severity],
            "risk_score": round(alert.score * 100, 3),
            "reason": reason,
            "start": alert.window_start,
            "end": alert.window_end,
        },
        "rule": {"id": alert.kind.value, "name": alert.kind.value.replace("_", " "), "version": alert.model_version},
        "tapewatch": product,
    }


def execution_document(report: ExecutionReport) -> dict[str, Any]:
    """A firm's execution report, whole, in the ECS event layout (the analysts' searches share its field names)."""
    return {
        "@timestamp": report.ts,
        "message": f"{report.exec_type.value} {report.side.value} {report.symbol} ({report.account})",
        "event": {"kind": "event", "id": report.exec_id, "dataset": "tapewatch.executions"},
        "tapewatch": {**report.__dict__, "exec_type": report.exec_type.value, "side": report.side.value,
                      "order_kind": report.order_kind.value},
    }  # fmt: skip


def news_document(signal: NewsSignal) -> dict[str, Any]:
    return {
        "@timestamp": signal.ts,
        "message": signal.title,
        "event": {"kind": "event", "id": signal.item_id, "dataset": "tapewatch.news"},
        "url": {"original": signal.url},
        "tapewatch": {
            "symbol": signal.symbol,
            "venue": signal.venue,
            "item_id": signal.item_id,
            "source": signal.source,
            "language": signal.language,
            "sentiment": signal.sentiment,
            "indicator": signal.indicator,
            "count_1h": signal.count_1h,
            "model_version": signal.model_version,
        },
    }


def indicator_document(indicator: VenueIndicator) -> dict[str, Any]:
    """The wash tests over one window of a symbol's trades: an ECS metric, its day in ``event.start``/``event.end``."""
    verdict = {True: "consistent", False: "inconsistent", None: "undetermined"}[indicator.consistent]
    return {
        "@timestamp": indicator.ts,
        "message": f"{indicator.venue} {indicator.symbol}: Benford {indicator.benford.value}, "
        f"round sizes {indicator.rounding.value}",
        "event": {"kind": "metric", "dataset": "tapewatch.venue_indicators", "start": indicator.window_start,
                  "end": indicator.window_end},
        "tapewatch": {**indicator.__dict__, "benford": indicator.benford.value, "rounding": indicator.rounding.value,
                      "verdict": verdict},
    }  # fmt: skip


def score_document(score: Score) -> dict[str, Any]:
    return {
        "@timestamp": score.ts,
        "event": {"kind": "metric", "dataset": "tapewatch.scores", "risk_score": round(score.score * 100, 3)},
        "tapewatch": {
            "symbol": score.symbol,
            "venue": score.venue,
            "score": score.score,
            "cluster": score.cluster,
            "distance": score.distance,
            "model_version": score.model_version,
            "top_features": [list(pair) for pair in score.top_features],
        },
    }


def action_document(action: Action) -> dict[str, Any]:
    return {
        "@timestamp": action.ts,
        "event": {"kind": "event", "dataset": "tapewatch.actions"},
        "tapewatch": {
            "symbol": action.symbol,
            "venue": action.venue,
            "action": action.action,
            "position": action.position,
            "q_values": action.q_values,
            "model_version": action.model_version,
        },
    }


def forecast_document(forecast: Forecast) -> dict[str, Any]:
    return {
        "@timestamp": forecast.ts,
        "event": {"kind": "event", "dataset": "tapewatch.forecasts"},
        "tapewatch": {
            "symbol": forecast.symbol,
            "venue": forecast.venue,
            "model": forecast.model,
            "model_version": forecast.model_version,
            "horizon": forecast.horizon,
            "target": forecast.target,
            "prediction": forecast.prediction,
            "confidence": forecast.confidence,
            "probabilities": forecast.probabilities,
        },
    }


@dataclass(frozen=True, slots=True)
class Family:
    """One kind of document: its index family, its id, its body and, when one id is re-emitted with newer
    content, the external version that orders the emissions."""

    name: str
    doc_id: Callable[[Any], str]
    document: Callable[[Any], dict[str, Any]]
    version: Callable[[Any], int] | None = None
    #: the tenant whose confidential data the record is, if any: it goes to that tenant's own index
    #: (:func:`tenant_index_name`), never the shared one
    tenant_of: Callable[[Any], str | None] | None = None


FAMILIES: dict[type[Record], Family] = {
    # An alert escalates under the same alert_id (later ts, higher severity), and is sent again when news about its
    # onset arrives after it: external versioning by its emission order keeps the newest whatever the order of
    # arrival, as PostgreSQL does (tapewatch.sinks.db.NEWEST_BY). An older or equal
    # emission is refused with 409, which means "already have it, or newer" (see ElasticsearchWriter).
    # A news signal is sent again for a re-edit of its item: its edit time orders them.
    Alert: Family(
        "alerts", lambda a: a.alert_id, alert_document, version=lambda a: a.emission, tenant_of=lambda a: a.tenant
    ),
    # a firm's drop copy: always a tenant's; a report replayed overwrites itself (exec_id is unique in a drop copy)
    ExecutionReport: Family("executions", lambda r: r.exec_id, execution_document, tenant_of=lambda r: r.tenant),
    NewsSignal: Family(
        "news",
        lambda n: f"{n.venue}:{n.symbol}:{n.item_id}:{n.model_version}",
        news_document,
        version=lambda n: n.updated_ts if n.updated_ts is not None else n.ts,
    ),
    # Natural keys as ids: the same score or action replayed overwrites itself.
    Score: Family("scores", lambda s: f"{s.venue}:{s.symbol}:{s.ts}:{s.model_version}", score_document),
    Action: Family("actions", lambda a: f"{a.venue}:{a.symbol}:{a.ts}:{a.model_version}", action_document),
    Forecast: Family(
        "forecasts", lambda f: f"{f.venue}:{f.symbol}:{f.ts}:{f.model}:{f.model_version}", forecast_document
    ),
    VenueIndicator: Family(
        "venue-indicators", lambda i: f"{i.venue}:{i.symbol}:{i.window_start}:{i.version}", indicator_document
    ),
}

#: a keyword longer than this is kept in _source but not indexed (Lucene refuses a term over 32,766 bytes,
#: which would refuse the whole document: an alert with a 1 MB message would never reach the analysts)
KEYWORD = {"type": "keyword", "ignore_above": 8191}
DATE = {"type": "date", "format": "strict_date_optional_time||epoch_millis"}
FLOAT = {"type": "float"}
OPAQUE = {"type": "object", "enabled": False}  # kept in _source, not indexed: free-form maps never clash

COMMON_PROPERTIES: dict[str, Any] = {
    "@timestamp": DATE,
    "message": {"type": "text"},
    "event": {
        "properties": {
            "kind": KEYWORD,
            "id": KEYWORD,
            "dataset": KEYWORD,
            "severity": {"type": "long"},
            "risk_score": FLOAT,
            "reason": KEYWORD,
            "start": DATE,
            "end": DATE,
        }
    },
}
#: a firm's execution report: every field (its account, trader and owner are the tenant's to search)
EXECUTION_PROPERTIES: dict[str, Any] = {
    "tapewatch": {
        "properties": {
            **dict.fromkeys(("symbol", "venue", "tenant", "exec_id", "order_id", "client_order_id"), KEYWORD),
            **dict.fromkeys(("account", "trader", "owner", "exec_type", "side", "order_kind"), KEYWORD),
            **{name: {"type": "double"} for name in ("price", "quantity", "last_qty", "last_price")},
            **{name: {"type": "double"} for name in ("cum_qty", "leaves_qty")},
            "displayed": {"type": "boolean"},
            "ts": DATE,
        }
    }
}
FAMILY_PROPERTIES: dict[str, dict[str, Any]] = {
    "alerts": {
        "rule": {"properties": {"id": KEYWORD, "name": KEYWORD, "version": KEYWORD}},
        "tapewatch": {
            "properties": {
                "alert_id": KEYWORD,
                "symbol": KEYWORD,
                "venue": KEYWORD,
                "tenant": KEYWORD,
                "kind": KEYWORD,
                "severity": KEYWORD,
                "score": FLOAT,
                "model_version": KEYWORD,
                "price": {"type": "double"},
                "change_pct": FLOAT,
                "volume": {"type": "double"},
                "spread_bps": FLOAT,
                "evidence": OPAQUE,
                "news_at_onset": {"type": "boolean"},
                "news": {
                    "properties": {
                        "item_id": KEYWORD,
                        "ts": DATE,
                        "source": KEYWORD,
                        "title": {"type": "text"},
                        "url": {"type": "keyword", "index": False},
                        "sentiment": FLOAT,
                    }
                },
            }
        },
    },
    "news": {
        "url": {"properties": {"original": {"type": "keyword", "index": False}}},
        "tapewatch": {
            "properties": {
                "symbol": KEYWORD,
                "venue": KEYWORD,
                "item_id": KEYWORD,
                "source": KEYWORD,
                "language": KEYWORD,
                "sentiment": FLOAT,
                "indicator": FLOAT,
                "count_1h": {"type": "integer"},
                "model_version": KEYWORD,
            }
        },
    },
    "scores": {
        "tapewatch": {
            "properties": {
                "symbol": KEYWORD,
                "venue": KEYWORD,
                "score": FLOAT,
                "cluster": {"type": "integer"},
                "distance": FLOAT,
                "model_version": KEYWORD,
                "top_features": OPAQUE,
            }
        }
    },
    "forecasts": {
        "tapewatch": {
            "properties": {
                "symbol": KEYWORD,
                "venue": KEYWORD,
                "model": KEYWORD,
                "model_version": KEYWORD,
                "horizon": {"type": "integer"},
                "target": KEYWORD,
                "prediction": FLOAT,
                "confidence": FLOAT,
                "probabilities": OPAQUE,
            }
        }
    },
    "actions": {
        "tapewatch": {
            "properties": {
                "symbol": KEYWORD,
                "venue": KEYWORD,
                "action": KEYWORD,
                "position": {"type": "integer"},
                "model_version": KEYWORD,
                "q_values": OPAQUE,
            }
        }
    },
}
#: the families of the tenants' own indices (one per tenant: :func:`tenant_index_name`): their alerts, mapped as the
#: shared alerts, and their drop copies
TENANT_ALERTS: Final = "tenant-alerts"
FAMILY_PROPERTIES["venue-indicators"] = {
    "tapewatch": {
        "properties": {
            **dict.fromkeys(("symbol", "venue", "benford", "benford_band", "rounding", "verdict", "version"), KEYWORD),
            **dict.fromkeys(("ts", "window_start", "window_end"), DATE),
            "complete": {"type": "boolean"},
            **{
                name: {"type": "long"}
                for name in ("trades", "benford_n", "decades", "round_at", "round_near", "tail_n")
            },
            **{name: {"type": "double"} for name in ("lot", "benford_chi2", "benford_p", "benford_mad")},
            **{name: {"type": "double"} for name in ("round_ratio", "round_share", "round_p", "tail_alpha")},
        }
    }
}
FAMILY_PROPERTIES[TENANT_ALERTS] = FAMILY_PROPERTIES["alerts"]
FAMILY_PROPERTIES["tenant-executions"] = EXECUTION_PROPERTIES


def tenant_index_name(settings: Settings, family: str, tenant: str, ts_ms: int) -> str:
    """A tenant's own index of ``family`` (its accounts are in the documents): ``<prefix>-tenant-<family>-<tenant>-
    <month>``. The shared ``<prefix>-<family>-*`` pattern never matches it, and ``<prefix>-tenant-<family>-<tenant>-*``
    matches that tenant's alone (a tenant name has no ``-``), so an Elasticsearch role can be given exactly its own."""
    return index_name(settings, f"tenant-{family}-{tenant}", ts_ms)


def template_name(settings: Settings, family: str) -> str:
    return f"{settings.es.index_prefix}-{family}"


def index_pattern(settings: Settings, family: str) -> str:
    return f"{settings.es.index_prefix}-{family}-*"


def ilm_supported(es: Elasticsearch) -> bool:
    """True when the node has the ILM module (the integ-test distribution has not). Asking the node list
    rather than the ILM API: a 405 from an absent endpoint makes the client put the node on a timeout."""
    answer = es.nodes.info(node_id="_local", metric="plugins", filter_path="nodes.*.modules.name")
    nodes = answer.body.get("nodes", {}) if isinstance(answer.body, dict) else {}
    return any(module.get("name") == "x-pack-ilm" for node in nodes.values() for module in node.get("modules", []))


def ensure_templates(es: Elasticsearch, settings: Settings, families: Sequence[str] = tuple(FAMILY_PROPERTIES)) -> bool:
    """Put the index templates (and the ILM policy when supported); idempotent. Returns whether ILM is used."""
    use_ilm = ilm_supported(es)
    policy = f"{settings.es.index_prefix}-retention"
    if use_ilm:
        es.ilm.put_lifecycle(
            name=policy,
            policy={
                "phases": {
                    "hot": {"actions": {}},
                    "delete": {"min_age": f"{ALERT_RETENTION_DAYS}d", "actions": {"delete": {}}},
                }
            },
        )
    for family in families:
        index_settings: dict[str, Any] = {
            "number_of_shards": 1,
            "number_of_replicas": settings.es.index_replicas,
            "refresh_interval": settings.es.refresh_interval,
        }
        if use_ilm:
            index_settings["index.lifecycle.name"] = policy
        es.indices.put_index_template(
            name=template_name(settings, family),
            index_patterns=[index_pattern(settings, family)],
            priority=200,
            template={
                "settings": index_settings,
                # dynamic false: fields we did not map are kept in _source but never change the mapping.
                "mappings": {"dynamic": False, "properties": {**COMMON_PROPERTIES, **FAMILY_PROPERTIES[family]}},
            },
            meta={"managed_by": "tapewatch"},
        )
    return use_ilm


def delete_everything(es: Elasticsearch, settings: Settings) -> None:
    """Remove the indices and templates of ``settings.es.index_prefix`` (tests and benchmarks clean up)."""
    quiet = es.options(ignore_status=404)
    for family in FAMILY_PROPERTIES:
        quiet.indices.delete(index=index_pattern(settings, family), allow_no_indices=True, expand_wildcards="all")
        quiet.indices.delete_index_template(name=template_name(settings, family))


def bulk_action(settings: Settings, record: Record) -> tuple[dict[str, Any], dict[str, Any]]:
    """``record``'s bulk ``index`` metadata (index from its own month, natural id, external version where the
    family has one) and its document."""
    if not isinstance(record, Alert | Score | Action | Forecast | NewsSignal | ExecutionReport | VenueIndicator):
        raise TypeError(f"no Elasticsearch index for {type(record).__name__}")
    family = FAMILIES[type(record)]
    meta: dict[str, Any] = {"_index": index_name(settings, family.name, record.ts), "_id": family.doc_id(record)}
    tenant = None if family.tenant_of is None else family.tenant_of(record)
    if tenant is not None:
        meta["_index"] = tenant_index_name(settings, family.name, tenant, record.ts)
    if family.version is not None:
        meta["version"] = family.version(record)
        meta["version_type"] = "external"
    return meta, family.document(record)


def bulk_lines(settings: Settings, record: Record) -> bytes:
    """``record`` as its two NDJSON lines of a bulk request body, serialised once (retries resend the bytes).
    Raises ``orjson.JSONEncodeError`` for a value JSON cannot carry (an integer over 64 bits)."""
    meta, document = bulk_action(settings, record)
    return b"%b\n%b\n" % (orjson.dumps({"index": meta}), orjson.dumps(document))


def check_topics(topics: Sequence[Topic]) -> None:
    unsupported = [t.name for t in topics if t.record not in FAMILIES]
    if unsupported:
        raise TapewatchError(f"sink elasticsearch: no index for topic(s) {', '.join(unsupported)}")


def _retryable(status: object) -> bool:
    return not isinstance(status, int) or status == 429 or status >= 500


def _describe_error(error: Any) -> str:
    if isinstance(error, dict):
        if isinstance(error.get("error"), dict):  # a whole request's answer: {"error": {...}, "status": …}
            error = error["error"]
        return f"{error.get('type', 'error')}: {error.get('reason', '')}"
    return str(error)


#: the bulk answer trimmed to what is checked: each item's status and error, in order
BULK_FILTER = "items.*.status,items.*.error"


@dataclass(slots=True)
class _Pending:
    item: Item
    lines: bytes
    versioned: bool


class ElasticsearchWriter:
    """Writes each batch as NDJSON bulk requests of ``chunk_size`` documents, ``concurrency`` of them in flight.

    Documents are serialised once with orjson into the request body (the client's bulk helpers serialise and
    re-chunk every action in Python, which cost more than Elasticsearch's own indexing here), and answers are
    trimmed with ``filter_path``. Two requests in flight keep both of the node's write threads busy.
    """

    name = "elasticsearch"

    def __init__(
        self,
        settings: Settings,
        backoff: Backoff | None = None,
        chunk_size: int = 2500,
        concurrency: int = 2,
        max_chunk_bytes: int = 10 * 1024 * 1024,
    ) -> None:
        self.settings = settings
        self.es = es_client(settings)
        self.backoff = backoff or Backoff(base_s=0.2, cap_s=5.0)
        self.chunk_size = chunk_size
        self.max_chunk_bytes = max_chunk_bytes
        self.superseded = 0  # alert emissions refused because a newer (or the same) one is stored
        self.ilm = False
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="es-bulk")

    def prepare(self) -> None:
        try:
            self.ilm = ensure_templates(self.es, self.settings)
        except TransportError as exc:
            raise SinkUnavailableError(f"elasticsearch: {exc}") from None
        except ApiError as exc:
            if _retryable(exc.status_code):
                raise SinkUnavailableError(f"elasticsearch: {exc}") from None
            raise TapewatchError(f"elasticsearch: cannot put the index templates: {exc}") from None

    def write(self, items: Sequence[Item]) -> list[Rejected]:
        refused: list[Rejected] = []
        pending: list[_Pending] = []
        for item in items:
            if item.record is None:
                continue
            try:
                lines = bulk_lines(self.settings, item.record)
            except orjson.JSONEncodeError as exc:
                refused.append(Rejected(item.message, f"elasticsearch: cannot serialise the document: {exc}"))
                continue
            pending.append(_Pending(item, lines, FAMILIES[type(item.record)].version is not None))
        for attempt in range(1, ITEM_ATTEMPTS + 1):
            retry: list[_Pending] = []
            for chunk, statuses in self._bulk(pending):
                for entry, (status, error) in zip(chunk, statuses, strict=True):
                    if status < 300:
                        continue
                    if status == 409 and entry.versioned and _is_version_conflict(error):
                        self.superseded += 1  # already stored: this emission, or a newer one
                    elif _retryable(status):
                        retry.append(entry)
                    else:
                        reason = f"elasticsearch refused the document ({status}): {_describe_error(error)}"
                        refused.append(Rejected(entry.item.message, reason[:500]))
            if not retry:
                return refused
            pending = retry
            delay = self.backoff.delay(attempt)
            log.info("elasticsearch: %d item(s) got 429/5xx; retrying in %.1f s", len(retry), delay)
            time.sleep(delay)
        raise SinkUnavailableError(
            f"elasticsearch: {len(pending)} item(s) still 429/5xx after {ITEM_ATTEMPTS} attempts"
        )

    def _chunks(self, pending: Sequence[_Pending]) -> Iterator[list[_Pending]]:
        chunk: list[_Pending] = []
        size = 0
        for entry in pending:
            if chunk and (len(chunk) >= self.chunk_size or size + len(entry.lines) > self.max_chunk_bytes):
                yield chunk
                chunk, size = [], 0
            chunk.append(entry)
            size += len(entry.lines)
        if chunk:
            yield chunk

    def _bulk(self, pending: Sequence[_Pending]) -> Iterator[tuple[list[_Pending], list[tuple[int, Any]]]]:
        """Each chunk with its items' (status, error) in order; requests run ``concurrency`` at a time."""
        sent = [(chunk, self._pool.submit(self._send, chunk)) for chunk in self._chunks(pending)]
        try:
            for chunk, answer in sent:
                yield chunk, answer.result()
        finally:
            for _, answer in sent:
                answer.cancel()  # a failure abandons the chunks not yet sent: the whole batch is retried

    def _send(self, chunk: Sequence[_Pending]) -> list[tuple[int, Any]]:
        body = b"".join(entry.lines for entry in chunk)
        try:
            # The client types operations as a list of dicts; its NDJSON serialiser sends bytes as they are.
            answer = self.es.bulk(operations=body, filter_path=BULK_FILTER)  # type: ignore[arg-type]
        except TransportError as exc:
            raise SinkUnavailableError(f"elasticsearch: {exc}") from None
        except ApiError as exc:
            # The whole request refused (say 429 when the write queue is full): every item shares the answer.
            return [(exc.status_code, exc.body)] * len(chunk)
        # Every item's own status is read (not just the errors flag), and there must be one per document.
        statuses = [_item_status(item) for item in answer.body.get("items", [])]
        if len(statuses) != len(chunk):
            raise SinkUnavailableError(f"elasticsearch: {len(statuses)} bulk answers for {len(chunk)} documents")
        return statuses

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.es.close()


def _item_status(item: dict[str, Any]) -> tuple[int, Any]:
    info: dict[str, Any] = next(iter(item.values()), {})
    status = info.get("status")
    return (status if isinstance(status, int) else 500), info.get("error")


def _is_version_conflict(error: Any) -> bool:
    return isinstance(error, dict) and error.get("type") == "version_conflict_engine_exception"
