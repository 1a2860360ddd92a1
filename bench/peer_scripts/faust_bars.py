"""faust-streaming: one-minute event-time OHLCV bars per symbol from a backlog of JSON quotes, closed bars to a topic.

Run by `tapewatch bench peers` on the peers' venv (``python -m peer_scripts.faust_bars`` from ``bench/``); it imports
no tapewatch. One agent over the input topic keeps, per symbol, its open minutes, event-time clock and previous bar in
a faust ``Table`` (in memory, every update written to the table's changelog topic, co-partitioned with the input) and
sends each closed bar to the output topic.

Why a plain table and not faust's windowed table (``Table(...).tumbling(60)``): a windowed table closes windows by
the *partition's* newest timestamp, from a timer (``table_cleanup_interval``, 30 s by default), in
``on_window_close`` — a synchronous callback that cannot await a send. Its bars would come out when the timer
fires, not when the data closes them, and timing "to the last bar" would time the timer. The table here holds the
same per-key watermark as tapewatch and Quix's default (a minute closes when the symbol's newest ``ts`` reaches its
end plus the grace), so the three produce the same bars; the work per record is the table's: a read, an update and
a changelog record.

The fresh application id starts at the earliest offset; the worker stops itself after the backlog's last record
(``--records``), its producer flushed. Faust's defaults otherwise (memory store, commit every 2.8 s or 10,000 acks),
but its producer lingers 5 ms as librdkafka's (tapewatch's worker and Quix) do, not aiokafka's 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import faust

from .ohlcv import RunResult, arguments, new_key_state, on_record


def main(argv: list[str] | None = None) -> None:
    args = arguments("faust-streaming bars (tapewatch bench peers)", argv)
    result = RunResult("faust")
    app = faust.App(
        args.group,
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        datadir=str(args.state_dir),
        web_enabled=False,
        topic_partitions=args.partitions,
        consumer_auto_offset_reset="earliest",
        producer_linger=0.005,
    )
    quotes = app.topic(args.input, key_serializer="raw", value_serializer="raw")
    bars = app.topic(args.output, key_serializer="raw", value_serializer="raw")
    # keys raw, values JSON: the app's default serializers, which the changelog topic takes
    table = app.Table("bars", default=None, partitions=args.partitions)
    worker = faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False)
    finishing: list[asyncio.Future[None]] = []

    async def finish() -> None:
        await app.producer.flush()
        result.drained = time.time()
        result.write(args.result)
        await worker.stop()

    async def build(stream: Any) -> None:  # a faust Stream
        try:
            async for key, raw in stream.items():
                count = result.on_record()
                value: dict[str, Any] = json.loads(raw)
                state = table.get(key) or new_key_state()
                closed, late = on_record(state, key.decode(), value, args.grace_ms)
                result.late += late
                table[key] = state
                for bar in closed:
                    await bars.send(key=key, value=json.dumps(bar).encode())
                result.bars += len(closed)
                if count == args.records:
                    result.last_processed = time.time()
                    finishing.append(asyncio.ensure_future(finish()))
        except Exception:
            # faust would restart the agent and run on: stop instead, with no result (the benchmark reports the log)
            logging.exception("the bars agent failed")
            finishing.append(asyncio.ensure_future(worker.stop()))
            raise

    app.agent(quotes, name="bars")(build)
    with contextlib.suppress(SystemExit):  # the worker exits by raising it once stopped
        worker.execute_from_commandline()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
