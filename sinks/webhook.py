"""Webhook notifier: every alert a subscriber's filters accept is POSTed to its URL, signed, with retries.

Each request carries the alert exactly as on the ``alerts`` topic (JSON) and these headers:

- ``X-Tapewatch-Signature: sha256=<hex>`` — HMAC-SHA256 of the raw body with the subscriber's secret;
- ``Idempotency-Key: <alert_id>:<ts>`` — one emission of an alert, the same on every retry and replay:
  receivers deduplicate by it, because delivery is at-least-once (a crash between a delivery and the offset
  commit re-sends the batch);
- ``X-Tapewatch-Alert-Id: <alert_id>`` and ``X-Tapewatch-Alert-Version: <ts>`` — an alert that escalates is
  re-emitted under the same alert_id with a later ``ts`` (higher severity or score, a wider window). That is
  news a compliance analyst must get, so each emission has its own idempotency key rather than the alert_id
  (which would make a deduplicating receiver drop the escalation). A receiver that keeps one record per alert
  upserts by the alert id and keeps the highest version, as the PostgreSQL and Elasticsearch sinks do (a
  replay can deliver an older emission after a newer one);
- ``X-Tapewatch-Attempt: <n>``.

A 2xx answer acknowledges. 408, 429, 5xx, timeouts and connection errors are retried with exponential
back-off and jitter (``Retry-After`` is honoured, capped); other 4xx are final. The offsets of a batch are
committed only when every accepted (alert, subscriber) pair was acknowledged **or**, after ``max_attempts``,
went to ``dlq.sinks`` (reason ``webhook <name>: …``): one dead subscriber never blocks the others.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from tapewatch.backoff import Backoff
from tapewatch.errors import TapewatchError, first_problem
from tapewatch.records import TENANT_PATTERN, Alert, AlertKind, Severity
from tapewatch.settings import Settings
from tapewatch.sinks.consumer import Item, Rejected

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Tapewatch-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
ALERT_ID_HEADER = "X-Tapewatch-Alert-Id"
ALERT_VERSION_HEADER = "X-Tapewatch-Alert-Version"
ATTEMPT_HEADER = "X-Tapewatch-Attempt"
RETRY_STATUSES = frozenset({408, 429})
MAX_RETRY_AFTER_S = 30.0


class AlertFilter(BaseModel):
    """Which alerts to pass: an empty set means any. Shared by webhook subscribers and ``alerts tail``.

    A tenant's own alert (``Alert.tenant``: raised from its drop copy, naming its accounts) passes only a filter of
    that tenant; the public alerts pass every filter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kinds: frozenset[AlertKind] = frozenset()
    severities: frozenset[Severity] = frozenset()
    symbols: frozenset[str] = frozenset()
    min_score: float = Field(0.0, ge=0.0, le=1.0)
    tenant: str | None = Field(None, pattern=TENANT_PATTERN, description="Also pass this tenant's own alerts")

    def accepts(self, alert: Alert) -> bool:
        return (
            (alert.tenant is None or alert.tenant == self.tenant)
            and (not self.kinds or alert.kind in self.kinds)
            and (not self.severities or alert.severity in self.severities)
            and (not self.symbols or alert.symbol in self.symbols)
            and alert.score >= self.min_score
        )


class Subscriber(AlertFilter):
    name: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://")
    secret: SecretStr | None = None
    secret_env: str | None = Field(None, description="Environment variable holding the secret (keeps it off disk)")
    timeout_s: float = Field(10.0, gt=0)
    max_attempts: int = Field(8, ge=1)

    def secret_bytes(self) -> bytes:
        if self.secret is not None:
            return self.secret.get_secret_value().encode()
        if self.secret_env:
            value = os.environ.get(self.secret_env)
            if not value:
                raise TapewatchError(f"webhook {self.name}: environment variable {self.secret_env} is not set")
            return value.encode()
        raise TapewatchError(f"webhook {self.name}: needs a secret or secret_env")


class SubscriberFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subscribers: list[Subscriber]


def load_subscribers(path: Path) -> list[Subscriber]:
    """Subscribers from a JSON or YAML file: ``{"subscribers": [{name, url, secret, kinds, …}, …]}``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TapewatchError(f"webhook: cannot read {path}: {exc.strerror}") from None
    try:
        if path.suffix.lower() in (".yml", ".yaml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = orjson.loads(text)
    except Exception as exc:
        # YAML's message spans lines (the problem, then the text with a caret): its first line and where
        problem = str(getattr(exc, "problem", None) or exc).splitlines()[0]
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise TapewatchError(
            f"webhook: {path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {at}{problem}"
        ) from None
    try:
        subscribers = SubscriberFile.model_validate(data).subscribers
    except ValidationError as exc:
        where, message = first_problem(exc)
        raise TapewatchError(f"webhook: {path}: {where or 'the file'}: {message}") from None
    names = [s.name for s in subscribers]
    if len(set(names)) != len(names):
        raise TapewatchError(f"webhook: {path}: subscriber names must be unique")
    for subscriber in subscribers:
        subscriber.secret_bytes()  # fail at start, not at the first alert
    return subscribers


def emission_headers(alert: Alert) -> dict[str, str]:
    """What identifies one emission of ``alert``: its idempotency key, its alert id and its version (``ts``)."""
    return {
        IDEMPOTENCY_HEADER: f"{alert.alert_id}:{alert.ts}",
        ALERT_ID_HEADER: alert.alert_id,
        ALERT_VERSION_HEADER: str(alert.ts),
    }


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str) -> bool:
    """What a receiver does: constant-time comparison of the signature header."""
    return hmac.compare_digest(sign(secret, body), header)


class WebhookWriter:
    """Delivers each batch's alerts to every subscriber that accepts them, concurrently (bounded)."""

    name = "webhook"

    def __init__(
        self,
        settings: Settings,
        subscribers: Sequence[Subscriber],
        backoff: Backoff | None = None,
        concurrency: int = 32,
    ) -> None:
        if not subscribers:
            raise TapewatchError("webhook: no subscribers (set TAPEWATCH_WEBHOOK_SUBSCRIBERS or --subscribers)")
        self.settings = settings
        self.subscribers = list(subscribers)
        self.backoff = backoff or Backoff(base_s=0.5, cap_s=10.0)
        self.concurrency = concurrency
        self.delivered = 0
        self._secrets = {s.name: s.secret_bytes() for s in self.subscribers}
        self._loop = asyncio.new_event_loop()
        self._session: aiohttp.ClientSession | None = None

    def prepare(self) -> None:
        async def open_session() -> aiohttp.ClientSession:
            return aiohttp.ClientSession(
                headers={"User-Agent": "tapewatch-webhook", "Content-Type": "application/json"}
            )

        if self._session is None:
            self._session = self._loop.run_until_complete(open_session())

    def write(self, items: Sequence[Item]) -> list[Rejected]:
        return self._loop.run_until_complete(self._deliver_batch(items))

    async def _deliver_batch(self, items: Sequence[Item]) -> list[Rejected]:
        gate = asyncio.Semaphore(self.concurrency)
        jobs = [
            (item, subscriber)
            for item in items
            if isinstance(item.record, Alert)
            for subscriber in self.subscribers
            if subscriber.accepts(item.record)
        ]

        async def one(item: Item, subscriber: Subscriber) -> str | None:
            async with gate:
                return await self._deliver(subscriber, item)

        failures = await asyncio.gather(*(one(item, subscriber) for item, subscriber in jobs))
        rejected = []
        for (item, subscriber), failure in zip(jobs, failures, strict=True):
            if failure is None:
                self.delivered += 1
            else:
                rejected.append(Rejected(item.message, f"webhook {subscriber.name}: {failure}"))
        return rejected

    async def _deliver(self, subscriber: Subscriber, item: Item) -> str | None:
        """None once acknowledged; otherwise why it finally failed."""
        assert isinstance(item.record, Alert) and self._session is not None
        body = item.message.value() or item.record.to_json()
        headers = {
            SIGNATURE_HEADER: sign(self._secrets[subscriber.name], body),
            **emission_headers(item.record),
        }
        timeout = aiohttp.ClientTimeout(total=subscriber.timeout_s)
        last = "not attempted"
        for attempt in range(1, subscriber.max_attempts + 1):
            retry_after: float | None = None
            try:
                async with self._session.post(
                    subscriber.url, data=body, headers={**headers, ATTEMPT_HEADER: str(attempt)}, timeout=timeout
                ) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        return None
                    last = f"HTTP {response.status}"
                    if response.status < 500 and response.status not in RETRY_STATUSES:
                        return f"{last} (not retried)"
                    retry_after = _retry_after(response.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = f"{type(exc).__name__}: {exc}".rstrip(": ")
            if attempt < subscriber.max_attempts:
                delay = retry_after if retry_after is not None else self.backoff.delay(attempt)
                log.debug("webhook %s: %s for %s; retry in %.1f s", subscriber.name, last, item.record.alert_id, delay)
                await asyncio.sleep(delay)
        log.warning("webhook %s: giving up on %s after %d attempts: %s", subscriber.name, item.record.alert_id,
                    subscriber.max_attempts, last)  # fmt: skip
        return f"{last} after {subscriber.max_attempts} attempts"

    def close(self) -> None:
        if self._session is not None:
            self._loop.run_until_complete(self._session.close())
            self._session = None
        self._loop.close()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(value)))
    except ValueError:
        return None  # an HTTP date: fall back to our own back-off
