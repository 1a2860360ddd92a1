"""The small framework every source runs in: emit, dead-letter, pace, back off, count, stop cleanly.

A source is an async callable ``run(emitter, stop)`` that loops until ``stop`` is set (Ctrl-C, SIGTERM,
``--duration``) or its input is exhausted. It never talks to Kafka directly: it hands records to the
:class:`Emitter`, which publishes them (confluent-kafka, idempotent), dead-letters bad payloads with their
raw bytes and reason, and keeps the counters a progress report gets (the command's live progress line).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tapewatch.backoff import Backoff
from tapewatch.deadletter import DeadLetter
from tapewatch.kafka import require_topics
from tapewatch.producers.publisher import Publisher
from tapewatch.records import Book, Contract, Episode, Quote
from tapewatch.settings import Settings
from tapewatch.topics import BOOKS, DLQ_PRODUCERS, FIRM_ORDERS, MARKET_BY_ORDER, NEWS_ITEMS, QUOTES, TRUTH, Topic

log = logging.getLogger(__name__)

#: every topic a source may write; all of them are checked before one runs
PRODUCED_TOPICS: tuple[Topic, ...] = (QUOTES, BOOKS, MARKET_BY_ORDER, FIRM_ORDERS, TRUTH, NEWS_ITEMS, DLQ_PRODUCERS)

T = TypeVar("T")


@dataclass(slots=True)
class SourceCounters:
    records: int = 0
    quotes: int = 0
    books: int = 0
    episodes: int = 0
    dead_lettered: int = 0
    skipped: int = 0  # duplicates and other deliberate drops (e.g. an unchanged TWSE snapshot)
    errors: int = 0  # transport errors: resets, timeouts, HTTP errors
    backoffs: int = 0
    backoff_seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)


class Emitter:
    """Where a source puts its output. Synchronous and cheap: publishing only enqueues."""

    def __init__(self, publisher: Publisher, stage: str) -> None:
        self.publisher = publisher
        self.stage = stage
        self.counters = SourceCounters()

    def emit(self, topic: Topic, record: Contract) -> None:
        self.publisher.publish(topic, record)
        self.counters.records += 1

    # quote() and book() are the hot path (one call per record): they skip emit()'s extra call on purpose.
    def quote(self, quote: Quote) -> None:
        self.publisher.publish(QUOTES, quote)
        self.counters.records += 1
        self.counters.quotes += 1

    def book(self, book: Book) -> None:
        self.publisher.publish(BOOKS, book)
        self.counters.records += 1
        self.counters.books += 1

    def episode(self, episode: Episode) -> None:
        self.emit(TRUTH, episode)
        self.counters.episodes += 1

    def dead_letter(
        self, raw: bytes, reason: str, field: str | None = None, source: str | None = None, key: bytes | None = None
    ) -> None:
        """Count and dead-letter a payload we could not use; the source keeps going."""
        self.publisher.dead_letter(raw, DeadLetter(stage=self.stage, reason=reason, field=field, source=source), key)
        self.counters.dead_lettered += 1
        bucket = reason.split(":", 1)[0][:60]
        self.counters.reasons[bucket] = self.counters.reasons.get(bucket, 0) + 1

    def skip(self) -> None:
        self.counters.skipped += 1

    def error(self, reason: str) -> None:
        self.counters.errors += 1
        bucket = reason[:60]
        self.counters.reasons[bucket] = self.counters.reasons.get(bucket, 0) + 1


class LiveEmitter(Emitter):
    """An :class:`Emitter` for a live feed: a record time-stamped more than ``max_future_ms`` ahead of this
    machine's clock is dead-lettered here, at the edge, before it can move any event time downstream (the
    stream worker only compares records with each other, never with wall time)."""

    def __init__(self, publisher: Publisher, stage: str, max_future_ms: int) -> None:
        super().__init__(publisher, stage)
        self.max_future_ms = max_future_ms

    def _in_future(self, record: Quote | Book) -> bool:
        ahead = record.ts - int(time.time() * 1000)
        if ahead <= self.max_future_ms:
            return False
        self.dead_letter(
            record.to_json(),
            f"implausible: ts {record.ts} is {ahead} ms ahead of this machine's clock "
            f"(more than TAPEWATCH_PRODUCER_MAX_FUTURE_MS={self.max_future_ms})",
            "ts",
            key=record.key(),
        )
        return True

    def quote(self, quote: Quote) -> None:
        if not self._in_future(quote):
            super().quote(quote)

    def book(self, book: Book) -> None:
        if not self._in_future(book):
            super().book(book)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``; True when asked to stop meanwhile."""
    if seconds <= 0:
        return stop.is_set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


async def back_off(
    emitter: Emitter, backoff: Backoff, stop: asyncio.Event, reason: str, at_least_s: float = 0.0
) -> bool:
    """Record an error and wait the next back-off delay, or ``at_least_s`` when longer (a server's
    ``Retry-After``). True when asked to stop meanwhile."""
    delay = max(backoff.next_delay(), at_least_s)
    emitter.error(reason)
    emitter.counters.backoffs += 1
    emitter.counters.backoff_seconds += delay
    log.warning("back-off", extra={"fields": {"stage": emitter.stage, "reason": reason, "delay_s": round(delay, 2)}})
    return await sleep_or_stop(stop, delay)


async def unless_stopped(stop: asyncio.Event, work: Awaitable[T]) -> tuple[bool, T | None]:
    """Run ``work`` but give up as soon as ``stop`` is set: (stopped, result)."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        return False, task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    return True, None


class Pacer:
    """At most one call per ``interval_s`` (plus jitter): a rate limit we never trip.

    Measured start to start by default. A caller whose calls cross a network calls :meth:`done` when the
    answer is in: the next call then also waits ``interval_s`` from there, so the *server* sees arrivals at
    least ``interval_s`` apart however much the network or a busy event loop delays one request and not the
    next (start-to-start spacing alone shrinks by exactly that difference at the far end).
    """

    def __init__(self, interval_s: float, jitter_s: float = 0.0, rng: random.Random | None = None) -> None:
        self.interval_s = interval_s
        self.jitter_s = jitter_s
        self.rng = rng or random.Random()
        self._last: float | None = None

    async def wait(self, stop: asyncio.Event) -> bool:
        """Wait for the next slot; True when asked to stop meanwhile."""
        now = time.monotonic()
        if self._last is not None:
            due = self._last + self.interval_s + self.rng.random() * self.jitter_s
            if await sleep_or_stop(stop, due - now):
                return True
        self._last = time.monotonic()
        return stop.is_set()

    def done(self) -> None:
        """The call that took the last slot has finished: the next one is spaced from now."""
        self._last = time.monotonic()


SourceRun = Callable[[Emitter, asyncio.Event], Coroutine[Any, Any, None]]


#: ``progress(counters, elapsed_s, delivered)``: called about four times a second while a source runs, and once
#: more when everything it emitted is delivered
Progress = Callable[[SourceCounters, float, int], None]


async def run_source(
    settings: Settings,
    stage: str,
    source: SourceRun,
    *,
    duration_s: float | None = None,
    progress: Progress | None = None,
    publisher: Publisher | None = None,
    live_feed: bool = False,
) -> SourceCounters:
    """Run ``source`` until it finishes, ``duration_s`` passes or SIGINT/SIGTERM; then flush everything. Without a
    ``publisher``, the producers' topics must exist (one clear error before anything is sent, not a failed
    delivery per record).
    ``progress`` gets the counters as they grow; ``live_feed``: the source reads a venue now, so its records are
    checked against this machine's clock."""
    if publisher is None:
        require_topics(settings, [settings.topic(topic.name) for topic in PRODUCED_TOPICS])
        publisher = Publisher(settings, DLQ_PRODUCERS)
    emitter = LiveEmitter(publisher, stage, settings.sources.max_future_ms) if live_feed else Emitter(publisher, stage)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    started = time.monotonic()
    task: asyncio.Task[None] = asyncio.create_task(source(emitter, stop))
    try:
        while not task.done():
            if duration_s is not None and time.monotonic() - started >= duration_s:
                stop.set()
            publisher.poll()
            if progress is not None:
                progress(emitter.counters, time.monotonic() - started, publisher.delivered)
            await asyncio.wait([task], timeout=0.25)
        task.result()
        # Everything enqueued is acknowledged before we report success.
        await asyncio.to_thread(publisher.flush, 120.0)
        if progress is not None:
            progress(emitter.counters, time.monotonic() - started, publisher.delivered)
    finally:
        stop.set()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sig in installed:
            loop.remove_signal_handler(sig)
    return emitter.counters
