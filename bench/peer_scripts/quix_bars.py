"""Quix Streams: one-minute event-time OHLCV bars per symbol from a backlog of JSON quotes, closed bars to a topic.

Run by `tapewatch bench peers` on the peers' venv (``python -m peer_scripts.quix_bars`` from ``bench/``); it imports
no tapewatch. The pipeline is Quix's own idiom:

* the input topic with a JSON deserializer and the record's ``ts`` as its timestamp (event time);
* ``tumbling_window(60 s, grace)`` with ``reduce`` (the :mod:`ohlcv` accumulator) and ``final()``: the window state in
  RocksDB with its changelog topic, a window closed per key (Quix's default closing strategy) once the key's newest
  timestamp reaches its end plus the grace — tapewatch's per-symbol watermark. Every record enters the window (a
  record without a trade moves the key's clock, as in tapewatch); a window without trades is dropped after it;
* a stateful ``apply`` for the change against the key's previous bar (its state in the same store), then
  ``to_topic``.

The application stops itself after the backlog's last record (``--records``); the consumer group is fresh and
starts at the earliest offset. Quix's defaults otherwise (at-least-once, commit every 5 s); its consumer gets the
``fetch.queue.backoff.ms`` of tapewatch's consumers (100 ms, not librdkafka's 1 s).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from quixstreams import Application

from .ohlcv import Acc, BarDict, RunResult, add, arguments, initial, to_bar


def _timestamp(value: Any, headers: Any, timestamp: float, timestamp_type: Any) -> int:
    return int(value["ts"])


def main(argv: list[str] | None = None) -> None:
    args = arguments("Quix Streams bars (tapewatch bench peers)", argv)
    result = RunResult("quix")
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=str(args.state_dir),
        loglevel="WARNING",
        consumer_extra_config={"fetch.queue.backoff.ms": 100},
    )
    quotes = app.topic(args.input, key_deserializer="str", value_deserializer="json", timestamp_extractor=_timestamp)
    bars = app.topic(args.output, key_serializer="str", value_serializer="json")

    def counted(value: Any) -> None:
        if result.on_record() == args.records:
            result.last_processed = time.time()  # its window work follows within the same call chain
            app.stop()

    def emitted(bar: BarDict) -> None:
        result.bars += 1
        result.last_processed = time.time()

    def bar_of(window: dict[str, Any], state: Any) -> BarDict:
        acc: Acc = window["value"]
        previous: dict[str, Any] = state.get("previous") or {}
        bar = to_bar(str(window["symbol"]), int(window["start"]), acc, previous)
        state.set("previous", previous)
        return bar

    def late(*_: Any) -> bool:  # (value, key, timestamp, late by, start, end, name, topic, partition, offset)
        result.late += 1
        return False  # counted here, not logged per record

    sdf = app.dataframe(quotes)
    sdf = sdf.update(counted)
    sdf = (
        sdf.tumbling_window(60_000, grace_ms=args.grace_ms, name="bars", on_late=late)
        .reduce(reducer=add, initializer=initial)
        .final()
    )
    sdf = sdf.filter(lambda window: window["value"]["trades"] > 0)
    sdf = sdf.apply(lambda window, key, timestamp, headers: {**window, "symbol": key}, metadata=True)
    sdf = sdf.apply(bar_of, stateful=True)
    sdf = sdf.to_topic(bars)
    sdf = sdf.update(emitted)
    app.run()
    result.drained = time.time()
    result.write(args.result)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
