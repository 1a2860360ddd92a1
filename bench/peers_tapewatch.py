"""tapewatch's side of `tapewatch bench peers`: the bars-only workload on tapewatch's own code, as a subprocess with
the same options and the same JSON result as the peers' scripts (:mod:`tapewatch.bench.peer_scripts.ohlcv`).

**Which code this is, and why.** The stream worker cannot be configured to build bars alone: ``StreamApp`` always
builds its four stages and subscribes to all their sources, and its market stage (``streams/market.py``) always runs
the bar features and the order-flow state on every record beside the bar builder — there is no setting that turns
them off, and changing ``streams/`` is not this benchmark's business. So this is the smallest honest bars-only loop
over confluent-kafka with the worker's own parts and protocol:

* the worker's consumer (:func:`tapewatch.streams.app.worker_consumer`: its group settings, fetch sizes, commits by
  hand) and producer (:data:`~tapewatch.streams.app.WORKER_PRODUCER_CONFIG`), batches of
  :data:`~tapewatch.streams.limits.BATCH_MAX` within :data:`~tapewatch.streams.limits.BATCH_WITHIN_S`;
* tapewatch's decoding (:func:`tapewatch.streams.stage.decode_keyed`: the ``Quote`` contract, strict, the key must be
  the symbol) and one real :class:`~tapewatch.detectors.bars.BarBuilder` per symbol; closed bars (``Bar.to_json``) to
  the output topic, on the input's partition;
* the worker's checkpoint: every ``checkpoint_interval_ms`` (and at the end), the outputs are flushed (acknowledged),
  then each touched symbol's builder state (``to_state``) is written to a compacted changelog topic through
  :class:`~tapewatch.streams.state.ChangelogTable` and flushed, and only then are the offsets committed.

Left out against the worker: the per-symbol offsets in the state (the replay guard), the dead-letter topic (a record
that does not decode or is late is counted instead: the backlog has none) and recovery on assignment (the group
is fresh and alone; its changelog is empty).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from confluent_kafka import Consumer, Message, TopicPartition

from tapewatch.bench.peer_scripts.ohlcv import RunResult, arguments
from tapewatch.detectors.bars import BarBuilder, LateQuoteError
from tapewatch.kafka_producer import KafkaProducer
from tapewatch.records import Quote, RecordError
from tapewatch.settings import Settings, load_settings
from tapewatch.streams.app import WORKER_PRODUCER_CONFIG, worker_consumer
from tapewatch.streams.limits import BATCH_MAX, BATCH_WITHIN_S
from tapewatch.streams.stage import decode_keyed
from tapewatch.streams.state import ChangelogTable
from tapewatch.topics import DLQ_STREAMS

#: a run that has not read its backlog after this long is stuck
TIMEOUT_S = 1800.0


@dataclass
class BarsLoop:
    """Bars only, with the worker's protocol: decode, build, send; checkpoint = flush, state, flush, commit."""

    settings: Settings
    output: str
    grace_ms: int
    producer: KafkaProducer
    table: ChangelogTable
    result: RunResult = field(default_factory=lambda: RunResult("tapewatch"))
    builders: dict[bytes, BarBuilder] = field(default_factory=dict)
    #: symbol → partition, of the builders changed since the last checkpoint
    touched: dict[bytes, int] = field(default_factory=dict)
    #: (topic, partition) → next offset to commit
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    def apply(self, message: Message) -> None:
        topic, partition, offset, key = message.topic(), message.partition(), message.offset(), message.key()
        assert topic is not None and partition is not None and offset is not None
        self.result.on_record()
        self.offsets[(topic, partition)] = offset + 1
        try:
            quote = decode_keyed(Quote, message.value(), key)
        except RecordError:
            self.result.invalid += 1
            return
        assert key is not None
        builder = self.builders.get(key)
        if builder is None:
            builder = self.builders[key] = BarBuilder(quote.symbol, self.grace_ms)
        try:
            closed = builder.on_quote(quote)
        except LateQuoteError:
            self.result.late += 1
            return
        self.touched[key] = partition
        for bar in closed:
            self.producer.produce(self.output, key, bar.to_json(), partition)
        self.result.bars += len(closed)

    def checkpoint(self, consumer: Consumer) -> None:
        self.producer.flush()
        for key, partition in self.touched.items():
            self.table.write(partition, key, self.builders[key].to_state())
        self.producer.flush()
        if self.offsets:
            consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in self.offsets.items()], asynchronous=False)
        self.touched, self.offsets = {}, {}


def run(settings: Settings, argv: list[str] | None = None) -> RunResult:
    args = arguments("tapewatch bars only (tapewatch bench peers)", argv)
    producer = KafkaProducer(settings, DLQ_STREAMS, **WORKER_PRODUCER_CONFIG)
    loop = BarsLoop(
        settings, args.output, args.grace_ms, producer, ChangelogTable("bars", f"{args.group}-changelog", producer)
    )
    consumer = worker_consumer(settings, args.group)
    consumer.subscribe([args.input])
    interval = settings.stream.checkpoint_interval_ms / 1000.0
    last_checkpoint = started = time.monotonic()
    try:
        while loop.result.records < args.records and time.monotonic() - started < TIMEOUT_S:
            for message in consumer.consume(num_messages=BATCH_MAX, timeout=BATCH_WITHIN_S):
                if message.error() is None:
                    loop.apply(message)
            if loop.result.records >= args.records:
                loop.result.last_processed = time.time()
            elif time.monotonic() - last_checkpoint >= interval:
                loop.checkpoint(consumer)
                last_checkpoint = time.monotonic()
        loop.checkpoint(consumer)
        loop.result.drained = time.time()
    finally:
        consumer.close()
    loop.result.write(args.result)
    return loop.result


def main(argv: list[str] | None = None) -> None:
    run(load_settings(), argv)


if __name__ == "__main__":
    main()
