"""The stream slice end to end on the real broker: md.quotes → `tapewatch stream worker` → md.bars.1m,
features.1m / dlq.streams.

The worker runs as a subprocess on topics with a fresh prefix. Quotes are produced in two phases with a
graceful worker restart in between, while a minute is still open, so the bar state must come back from the
table's changelog. The bars read back must equal the pandas batch twin on the same input; the malformed,
mis-keyed and late payloads must be in the DLQ, unchanged, with a reason.
"""

from __future__ import annotations

import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pandas as pd
import pytest
from confluent_kafka import KafkaError, Message, Producer

from tapewatch import deadletter
from tapewatch.detectors.bars import MINUTE_MS, bars_from_quotes, bars_to_frame, quotes_to_frame
from tapewatch.detectors.features import features_frame
from tapewatch.detectors.flow import BOOK_COLUMNS
from tapewatch.feeds import FeedProfiles
from tapewatch.kafka import client_config
from tapewatch.records import Bar, Quote
from tapewatch.settings import Settings
from tapewatch.topics import BARS, DLQ_STREAMS, FEATURES, QUOTES
from tests.kafka_reader import read_distinct, read_topic
from tests.stream_reference import features_frames, flow_reference
from tests.stream_worker import Worker

pytestmark = pytest.mark.integration

# Three symbols on three different partitions of 4, with librdkafka's default partitioner (CRC32) as with
# Kafka's (murmur2), so the worker meets several partitions and co-partitioning is checked for real.
SYMBOLS = ("2317.TW", "AAPL", "BTCUSDT")
T0 = 1_763_700_000_000 - 1_763_700_000_000 % MINUTE_MS
PHASE_1_END = T0 + 2 * MINUTE_MS + 30_000  # the restart happens in the middle of minute 2
END = T0 + 6 * MINUTE_MS  # minutes 0-4 close; minute 5 stays open
WAIT_S = 60.0  # per wait; a 2-core machine shared with Kafka, Elasticsearch and PostgreSQL


@dataclass
class Produced:
    quotes: list[Quote] = field(default_factory=list)  # valid quotes, in production (= per-key arrival) order
    bad: dict[bytes, str] = field(default_factory=dict)  # payload → what its dead letter's reason must say
    partition_of: dict[str, int] = field(default_factory=dict)  # symbol → md.quotes partition


def quotes_between(rng: random.Random, start: int, end: int, venue: str = "test") -> list[Quote]:
    """Quotes of every symbol in [start, end), interleaved by time; about a third without a trade."""
    out: list[Quote] = []
    for symbol in SYMBOLS:
        price = rng.uniform(20, 900)
        ts = start + rng.randrange(0, 3_000)
        while ts < end:
            if rng.random() < 0.35:
                out.append(Quote(symbol=symbol, venue=venue, ts=ts, bid=price * 0.999, ask=price * 1.001))
            else:
                price *= 1 + rng.gauss(0, 0.002)
                size = rng.choice([0.0, rng.uniform(0.001, 5.0), float(rng.randrange(1, 2_000))])
                out.append(Quote(symbol=symbol, venue=venue, ts=ts, price=price, size=size))
            # some bursts in the same millisecond, some pauses of more than a minute (empty minutes)
            roll = rng.random()
            ts += 0 if roll < 0.1 else rng.randrange(60_000, 80_000) if roll > 0.985 else rng.randrange(1, 3_000)
    out.sort(key=lambda q: q.ts)
    return out


def produce(settings: Settings, produced: Produced, items: list[tuple[bytes | None, bytes, Quote | None]]) -> None:
    """Produce (key, payload, quote-or-None) in order; record the valid quotes and each symbol's partition."""
    producer = Producer(client_config(settings, **{"enable.idempotence": True, "linger.ms": 5}))
    topic = settings.topic(QUOTES.name)
    failures: list[str] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        key, partition = msg.key(), msg.partition()
        if err is not None:
            failures.append(str(err))
        elif key is not None and partition is not None:
            produced.partition_of.setdefault(key.decode(), partition)

    for key, payload, _ in items:
        producer.produce(topic, key=key, value=payload, on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(30) == 0, "quotes not delivered within 30 s"
    assert not failures, failures
    produced.quotes.extend(quote for _, _, quote in items if quote is not None)


def valid(quotes: list[Quote]) -> list[tuple[bytes | None, bytes, Quote | None]]:
    return [(q.key(), q.to_json(), q) for q in quotes]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("restart", ["graceful", "kill"])
def test_quotes_to_bars_and_dead_letters(stream_settings: Settings, tmp_path: Path, restart: str) -> None:
    """Phase 1, a worker restart while minute 2 is open, phase 2 produced while the new worker recovers.

    ``graceful``: SIGTERM; every output exactly once. ``kill``: SIGKILL with nothing committed (commit interval
    longer than the test), so the new worker replays phase 1 against the state restored from the changelog:
    bars and dead letters may repeat (identical), but no trade may be lost or counted twice.
    """
    settings = stream_settings
    bars_topic, dlq_topic = settings.topic(BARS.name), settings.topic(DLQ_STREAMS.name)
    rng = random.Random(20251121)
    produced = Produced()
    phase_1 = quotes_between(rng, T0, PHASE_1_END)
    phase_2 = quotes_between(rng, PHASE_1_END, END)
    assert 250 <= len(phase_1) + len(phase_2) <= 1_000

    sym = SYMBOLS[0]
    not_json = b'{"symbol": "2317.TW", "venue": "test", "ts": '
    string_price = orjson.dumps({"symbol": sym, "venue": "test", "ts": T0 + 5, "price": "612.0", "size": 1.0})
    no_ts = orjson.dumps({"symbol": sym, "venue": "test", "price": 612.0})
    wrong_key = Quote(symbol=SYMBOLS[1], venue="test", ts=PHASE_1_END + 1, price=10.0, size=1.0).to_json()
    late = Quote(symbol=sym, venue="test", ts=T0 + 10_000, price=600.0, size=5.0)  # minute 0 closed long ago
    produced.bad = {
        not_json: "invalid JSON",
        string_price: "price",
        no_ts: "ts",
        wrong_key: "not the symbol",
        late.to_json(): "late quote",
    }
    # after a kill, nothing committed: the new worker must replay phase 1 and skip it by the stored offsets
    commits = {"TAPEWATCH_STREAM_COMMIT_INTERVAL_MS": "600000"} if restart == "kill" else {}

    first = Worker(settings, tmp_path / "worker-1.log", env=commits)
    second: Worker | None = None
    try:
        # phase 1, with two malformed payloads in the middle
        middle = len(phase_1) // 2
        produce(
            settings,
            produced,
            [
                *valid(phase_1[:middle]),
                (sym.encode(), not_json, None),
                (sym.encode(), string_price, None),
                *valid(phase_1[middle:]),
            ],
        )
        expected_1 = bars_from_quotes(quotes_to_frame(produced.quotes))
        got_1 = read_topic(settings, bars_topic, len(expected_1), timeout_s=WAIT_S, linger_s=0.5)
        assert len(got_1) == len(expected_1), first.tail()
        assert len(read_topic(settings, dlq_topic, 2, timeout_s=WAIT_S, linger_s=0)) == 2, first.tail()
        if restart == "graceful":
            assert first.stop() == 0, first.tail()
        else:
            time.sleep(0.5)  # let the state of the last batch reach the changelog
            assert first.stop(sig=signal.SIGKILL) == -signal.SIGKILL

        # phase 2 on a new worker, which must resume minute 2 (open across the restart) from the changelog;
        # production starts while it recovers, so it meets a backlog
        second = Worker(settings, tmp_path / "worker-2.log")
        produce(
            settings,
            produced,
            [
                (sym.encode(), no_ts, None),
                (SYMBOLS[2].encode(), wrong_key, None),  # keyed by another symbol than its own
                *valid(phase_2[:50]),
                (late.key(), late.to_json(), late),  # the batch twin drops it as the builder does
                *valid(phase_2[50:]),
            ],
        )
        expected = bars_from_quotes(quotes_to_frame(produced.quotes))
        assert expected["start"].max() == T0 + 4 * MINUTE_MS and len(expected) >= 3 * 4
        valid_quotes = pd.DataFrame(
            [(q.symbol, q.ts, q.price, q.size, q.side, q.bid, q.ask) for q in produced.quotes],
            columns=["symbol", "ts", "price", "size", "side", "bid", "ask"],
        ).astype({"price": "float64", "bid": "float64", "ask": "float64"})
        # venue "test" is in no feed profile: the worker learns each symbol's prints from its quotes
        expected_flow = flow_reference(
            valid_quotes, pd.DataFrame(columns=list(BOOK_COLUMNS)), prints=FeedProfiles()("test").prints
        )
        bar_messages = read_distinct(settings, bars_topic, len(expected), wait_s=WAIT_S, linger_s=2.0)
        feature_messages = read_distinct(
            settings, settings.topic(FEATURES.name), len(expected) + len(expected_flow), wait_s=WAIT_S, linger_s=1.0
        )
        dead = read_distinct(settings, dlq_topic, len(produced.bad), wait_s=WAIT_S, linger_s=0.5)
        replayed = "replay: skipped" in second.log.read_text(errors="replace")
        details = second.tail()
    finally:
        first.stop()
        if second is not None:
            second.stop()

    # bars: the batch twin's, keyed by symbol, co-partitioned with the quotes; repeated only after a kill
    bars = [Bar.from_json(msg.value) for msg in bar_messages]
    got = bars_to_frame(bars)
    once = got.drop_duplicates()
    assert not once.duplicated(["symbol", "start"]).any(), f"a bar was emitted twice with different contents\n{details}"
    if restart == "graceful":
        assert len(once) == len(got), f"a bar was emitted twice\n{details}"
    else:
        assert replayed, f"the new worker did not replay phase 1 against the restored state\n{details}"
    pd.testing.assert_frame_equal(once.reset_index(drop=True), expected, check_exact=False, rtol=1e-9, atol=1e-9)
    for msg, bar in zip(bar_messages, bars, strict=True):
        assert msg.key == bar.symbol.encode()
        assert msg.partition == produced.partition_of[bar.symbol]

    # dead letters: the original bytes with the reason and the source in headers; once each after a SIGTERM
    letters = {msg.value: deadletter.DeadLetter.from_headers(msg.headers) for msg in dead}
    assert set(letters) == set(produced.bad)
    if restart == "graceful":
        assert len(dead) == len(produced.bad), f"a dead letter was sent twice\n{details}"
    for payload, why in produced.bad.items():
        letter = letters[payload]
        assert letter.stage == "stream:market"
        assert why in letter.reason or why == letter.field, (why, letter)
        assert letter.topic == settings.topic(QUOTES.name)
        assert letter.partition is not None and letter.offset is not None

    # bar features: one record per bar, equal to the vectorised batch computation over the same bars; fast
    # order-flow features: the chunks the batch fold closes over the same quotes (this feed has no books)
    got_features, got_flow = features_frames(feature_messages)
    if restart == "graceful":
        assert len(feature_messages) == len(got_features) + len(got_flow), f"features emitted twice\n{details}"
    assert not got_features.duplicated(["symbol", "ts"]).any(), "features of one bar emitted twice, differently"
    assert not got_flow.duplicated(["symbol", "ts"]).any(), "features of one chunk emitted twice, differently"
    pd.testing.assert_frame_equal(got_features, features_frame(expected), check_exact=False, rtol=1e-9, atol=1e-12)
    assert len(expected_flow) > 50
    pd.testing.assert_frame_equal(got_flow, expected_flow, check_exact=False, rtol=1e-9, atol=1e-12)
