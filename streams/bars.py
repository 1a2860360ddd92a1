"""The ``stream:bars`` stage: md.quotes → per-symbol bar state (faust table) → md.bars.1m, bad input → dlq.streams.

One batch of events is processed at a time (see :func:`run_bar_stage`):

1. each payload is decoded with :meth:`Quote.from_json`; a payload that does not decode, whose key is not its
   symbol, or that is late for its minute goes to the DLQ with its original bytes and the reason in headers;
2. valid quotes update the symbol's :class:`~detectors.bars.BarBuilder`; closed bars are sent to the bars
   topic, keyed by symbol, on the partition the quote came from (so bars stay co-partitioned with quotes
   whatever partitioner the quote producer used);
3. every send of the batch is awaited until Kafka acknowledged it;
4. only then is the new state of each touched symbol written to the table (its changelog), together with
   the source offset of the last quote applied to it;
5. only then are the events acknowledged, so faust may commit their offsets.

A crash anywhere before 5 replays the batch (at least once). Quotes at or below a symbol's stored source
offset were already applied before the crash and are skipped, so a replay never counts a trade twice; it
may re-send bars and dead letters that were delivered just before the crash (same key and content). Events
redelivered to the same process (faust does that after a table recovery, see :mod:`streams.faust_compat`)
are skipped by source offset as well, dead letters included.

Both skips rely on Kafka's order within a partition: every offset below one that was processed has been
processed. Any failure other than bad input (Kafka refusing a write, a bug) stops the worker with the batch
unacknowledged, rather than letting faust restart the agent past it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

from faust import Stream
from faust.types import EventT, StreamT, TableT, TopicT

from detectors.bars import BarBuilder, LateQuoteError
from tapewatch.deadletter import DeadLetter
from tapewatch.records import Quote, RecordError

STAGE: Final = "stream:bars"
STATE_FORMAT: Final = 1

log = logging.getLogger(__name__)


@dataclass(slots=True)
class StageCounters:
    events_in: int = 0
    bars_out: int = 0
    dead_letters: int = 0
    late: int = 0
    replayed: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class _SymbolState:
    builder: BarBuilder
    partition: int | None  # source partition of the last quote applied
    offset: int  # its offset (-1: none yet)
    dirty: bool = False


@dataclass
class BarStage:
    """Turns batches of md.quotes events into bars, dead letters and table updates."""

    bars: TopicT
    dlq: TopicT
    table: TableT[bytes, dict[str, Any]]
    counters: StageCounters = field(default_factory=StageCounters)
    #: (topic, partition) → highest offset whose effects this process made durable
    _done: dict[tuple[str, int], int] = field(default_factory=dict, init=False, repr=False)

    async def process(self, events: Sequence[EventT[Any]]) -> None:
        """Process one batch; return once its output is durable and its state is written (not acked)."""
        states: dict[bytes, _SymbolState] = {}  # by key: the UTF-8 symbol
        pending: list[Awaitable[Any]] = []
        done: dict[tuple[str, int], int] = {}
        redelivered = already_applied = 0
        for event in events:
            message = event.message
            raw: bytes | None = message.value
            key: bytes | None = message.key
            partition, offset = message.partition, message.offset
            source = (message.topic, partition)
            if offset <= self._done.get(source, -1):
                # Redelivered to this process (faust 0.15.3 resumes partitions before seeking them back to
                # the committed offset after a table recovery): its output is already in Kafka.
                redelivered += 1
                continue
            done[source] = max(offset, done.get(source, -1))
            self.counters.events_in += 1
            try:
                if not raw:
                    raise RecordError("quote", "empty payload")
                quote = Quote.from_json(raw)
                if key is None:
                    raise RecordError("quote", "message without a key: the key must be the symbol", "symbol")
                if key != quote.key():
                    raise RecordError("quote", f"message key {key!r} is not the symbol", "symbol")
            except RecordError as exc:
                pending.append(await self._dead_letter(event, str(exc), exc.field))
                continue

            state = states.get(key)
            if state is None:
                state = states[key] = self._load(quote.symbol, key)
            if state.partition == partition and offset <= state.offset:
                already_applied += 1  # applied before a crash: do not count it twice
                continue
            try:
                closed = state.builder.update(quote)
            except LateQuoteError as exc:
                self.counters.late += 1
                pending.append(await self._dead_letter(event, str(exc), "ts"))
                closed = []
            for bar in closed:
                pending.append(await self.bars.send(key=bar.key(), value=bar.to_json(), partition=partition))
                self.counters.bars_out += 1
            state.partition, state.offset, state.dirty = partition, offset, True

        if pending:
            # Delivery reports: the bars and dead letters are in Kafka before the state says "applied".
            await asyncio.gather(*pending)
        for key, state in states.items():
            if state.dirty and state.partition is not None:
                self._store(key, state)
        self._done.update(done)
        self.counters.batches += 1
        if redelivered or already_applied:
            self.counters.replayed += redelivered + already_applied
            log.info(
                "replay: skipped %d quote(s) already applied to the bar state and %d event(s) already processed "
                "by this worker",
                already_applied,
                redelivered,
            )

    async def _dead_letter(self, event: EventT[Any], reason: str, field: str | None) -> Awaitable[Any]:
        message = event.message
        letter = DeadLetter(
            stage=STAGE,
            reason=reason,
            field=field,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        )
        self.counters.dead_letters += 1
        log.debug("dead letter %s[%d]@%d: %s", message.topic, message.partition, message.offset, reason)
        return await self.dlq.send(key=message.key, value=message.value, headers=letter.headers())

    def _load(self, symbol: str, key: bytes) -> _SymbolState:
        stored = self.table.get(key)
        if stored is None:
            return _SymbolState(BarBuilder(symbol), None, -1)
        if stored.get("format") != STATE_FORMAT:
            raise ValueError(f"bar table entry of {symbol!r} has unknown format {stored.get('format')!r}")
        return _SymbolState(BarBuilder.from_state(stored["builder"]), stored["partition"], stored["offset"])

    def _store(self, key: bytes, state: _SymbolState) -> None:
        assert state.partition is not None
        entry = {
            "format": STATE_FORMAT,
            "builder": state.builder.to_state(),
            "partition": state.partition,
            "offset": state.offset,
        }
        # ``table[key] = entry`` would take the changelog partition from the task's current event, which a
        # batch has none of; write the changelog on the source partition explicitly, then the local store.
        self.table.send_changelog(state.partition, key, entry)
        self.table.data[key] = entry


async def run_bar_stage(
    stage: BarStage,
    stream: StreamT[Any],
    *,
    batch_max: int,
    batch_within_s: float,
    crash: Callable[[BaseException], Awaitable[None]],
) -> None:
    """The agent body: batches without automatic acks; ack each batch only after it is processed."""
    # noack_take is on faust's Stream, not on its StreamT interface
    async for batch in cast(Stream[Any], stream).noack_take(batch_max, within=batch_within_s):
        events: list[EventT[Any]] = list(batch)  # noack_take yields the events themselves
        try:
            await stage.process(events)
        except Exception as exc:
            # Not a data problem (those go to the DLQ): Kafka refused a write, or a bug. Stop the worker with
            # this batch unacknowledged, so its offsets are never committed and a restart replays it.
            log.critical("stage %s failed; stopping the worker without acknowledging the batch: %r", STAGE, exc)
            await crash(exc)
            raise
        for event in events:
            await stream.ack(event)
