"""The paper trader through the real Kafka, as the command runs it: a simulated session with decisions, run
once uninterrupted and once killed with SIGKILL mid-run and restarted — the same orders, fills and portfolio
snapshots (none different, the restart's re-sent ones identical), and bad inputs dead-lettered with reasons."""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from tapewatch.bench.trade import paper_session
from tapewatch.deadletter import DeadLetter
from tapewatch.feeds import ORDER_BOOK_MARKET_VENUE
from tapewatch.generators.lob_market import LobConfig, generate
from tapewatch.kafka import admin_client, consumer_config
from tapewatch.producers.publisher import Publisher
from tapewatch.records import Action, Book, Quote, Record
from tapewatch.settings import Settings
from tapewatch.streams.trade import state_topic
from tapewatch.topics import ACTIONS, BOOKS, DLQ_PRODUCERS, DLQ_STREAMS, FILLS, ORDERS, PORTFOLIO, QUOTES
from tests.kafka_reader import read_topic

pytestmark = pytest.mark.integration

TAPEWATCH = Path(sys.executable).with_name("tapewatch")
#: the natural key of each output: a record re-sent after a restart has the same key and must be identical
KEYS = {ORDERS.name: ("client_order_id", "revision"), FILLS.name: ("fill_id",), PORTFOLIO.name: ("account", "seq")}
MINUTE_MS = 60_000
SIDES = ("bid", "ask")


def _accounts(run: str) -> str:
    return orjson.dumps(
        [{"name": f"{run}-join", "signal": "dqn"}, {"name": f"{run}-cross", "signal": "dqn", "pricing": "cross"}]
    ).decode()


def _start(settings: Settings, run: str, log: Path, *options: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TAPEWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "TAPEWATCH_TRADE_ACCOUNTS": _accounts(run),
        "TAPEWATCH_STREAM_CHECKPOINT_INTERVAL_MS": "100",
    }
    argv = [str(TAPEWATCH), "trade", "paper", "--name", run, "--until-idle", "2", *options]
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)


def _publish(settings: Settings) -> bytes:
    """The session, an unreadable quote and two bad decisions; the unreadable quote's bytes."""
    records = paper_session(6, 60, seed=9)
    symbol, venue = records[0].symbol, records[0].venue
    late_ts = records[-1].ts  # type: ignore[attr-defined]
    topics = {Book: BOOKS, Quote: QUOTES, Action: ACTIONS}
    with Publisher(settings, DLQ_PRODUCERS) as publisher:
        for record in records:
            publisher.publish(topics[type(record)], record)
        poison = b'{"symbol": "' + symbol.encode() + b'", "ts": "soon"'
        publisher.send(QUOTES, symbol.encode(), poison)
        for bad in (
            Action(symbol="9999", venue=venue, ts=late_ts, action="BUY", q_values={}, position=1, model_version="t"),
            Action(
                symbol=symbol, venue=venue, ts=late_ts, action="BUY", q_values={}, position=10**6, model_version="t"
            ),
        ):
            publisher.publish(ACTIONS, bad)
    return poison


def _outputs(settings: Settings, run: str) -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
    """Each output topic's records of ``run``, by natural key, with the run's name taken out of them."""
    out: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
    for topic, key in KEYS.items():
        got = read_topic(settings, settings.topic(topic), 1, timeout_s=20, linger_s=1)
        table: dict[tuple[Any, ...], dict[str, Any]] = {}
        for message in got:
            if not message.value.startswith(b"{") or f'"{run}-'.encode() not in message.value:
                continue
            record = orjson.loads(message.value.replace(f"{run}-".encode(), b"run-"))
            ident = tuple(record[k] for k in key)
            assert table.setdefault(ident, record) == record, f"{topic} {ident} sent twice, differently"
            table[ident] = record
        out[topic] = table
    return out


class Written:
    """How many records topics hold so far (the sum of their partitions' high watermarks), cheaply and often."""

    def __init__(self, settings: Settings) -> None:
        self.consumer = Consumer(consumer_config(settings, **{"group.id": "probe"}))

    def __call__(self, topic: str, partitions: int = 1) -> int:
        try:
            return sum(
                int(self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=1)[1])
                for p in range(partitions)
            )
        except KafkaException:
            return 0

    def close(self) -> None:
        self.consumer.close()


def _dead_letters(settings: Settings) -> list[tuple[str, bytes]]:
    """(reason, value) of the paper trader's dead letters."""
    got = read_topic(settings, settings.topic(DLQ_STREAMS.name), 3, timeout_s=20, linger_s=1)
    letters = [(DeadLetter.from_headers(m.headers), m.value) for m in got]
    return sorted((letter.reason, value) for letter, value in letters if letter.stage == "trade:paper")


def test_a_restart_after_kill_9_gives_the_uninterrupted_run(settings: Settings, tmp_path: Path) -> None:
    poison = _publish(settings)
    whole = _start(settings, "whole", tmp_path / "whole.log")
    assert whole.wait(timeout=240) == 0, (tmp_path / "whole.log").read_text()
    expected = _outputs(settings, "whole")
    assert len(expected[FILLS.name]) > 50 and len(expected[ORDERS.name]) > 100, {k: len(v) for k, v in expected.items()}
    letters = _dead_letters(settings)
    reasons = [why for why, _ in letters]
    assert [why.split(":")[0] for why in reasons] == ["absurd position", "quote", "unknown symbol '9999'"], reasons
    assert "invalid JSON" in reasons[1], reasons
    assert letters[1][1] == poison  # the original bytes, as sent
    assert b'"symbol":"9999"' in letters[2][1]

    orders, written = settings.topic(ORDERS.name), Written(settings)
    before = written(orders, settings.kafka.topic_partitions)
    crashed = _start(settings, "crash", tmp_path / "crash.log")
    deadline = time.monotonic() + 120
    # killed after a tenth of the orders are out and a checkpoint followed them: the state it resumes holds orders
    while time.monotonic() < deadline and (
        written(orders, settings.kafka.topic_partitions) - before < len(expected[ORDERS.name]) // 10
    ):
        time.sleep(0.005)
    checkpoints = written(state_topic(settings, "crash"))
    while time.monotonic() < deadline and written(state_topic(settings, "crash")) <= checkpoints:
        time.sleep(0.005)
    written.close()
    assert crashed.poll() is None, "the run ended before it could be killed: the session is too short"
    crashed.send_signal(signal.SIGKILL)
    crashed.wait(timeout=30)
    resumed = _start(settings, "crash", tmp_path / "crash.log")
    assert resumed.wait(timeout=240) == 0, (tmp_path / "crash.log").read_text()
    log = (tmp_path / "crash.log").read_text()
    resumed_at = re.search(r"resuming from the checkpoint at event time (\d+)", log)
    assert resumed_at and int(resumed_at.group(1)) > 0, "the restart must resume a mid-session state, not the start"
    # the restart had work left: it made orders of its own, not only re-sent what the killed run had made
    made = re.search(r"paper trader crash: [\d,]+ records read, ([\d,]+) applied, ([\d,]+) order events", log)
    assert made and int(made.group(1)) > 0 and int(made.group(2)) > 0, log[-2000:]

    assert _outputs(settings, "crash") == expected
    with contextlib.suppress(KafkaException):
        admin = admin_client(settings)
        for future in admin.delete_topics([state_topic(settings, r) for r in ("whole", "crash")]).values():
            future.result()


def _market_tape(config: LobConfig) -> list[Record]:
    """The order-book market's trades and books, as the stream worker derives them from its orders, and a decision
    per symbol at every minute's end (long, flat, long, …), in event-time order."""
    frame = generate(config).ticks_frame()
    venue, tape = config.venue, list[Record]()
    for row in frame.to_dict("records"):
        at = {"symbol": row["symbol"], "venue": venue, "ts": row["ts"]}
        if not math.isnan(row["price"]):  # a print, else a book
            tape.append(Quote(**at, price=row["price"], size=row["size"], side=row["side"]))
            continue
        bids, asks = ([(row[f"{side}{i}"], row[f"{side}sz{i}"]) for i in range(1, 6)] for side in SIDES)
        tape.append(Book(**at, bids=_shown(bids), asks=_shown(asks)))
    for n, end in enumerate(range(config.start_ms + MINUTE_MS, config.end_ms, MINUTE_MS)):
        tape += [Action(symbol=symbol, venue=venue, ts=end, action="HOLD", q_values={}, position=(n + 1) % 2,
                        model_version="t") for symbol in sorted(set(frame["symbol"]))]  # fmt: skip
    return sorted(tape, key=lambda record: record.ts)  # type: ignore[attr-defined]


def _shown(levels: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """A side's levels without the empty ones (NaN)."""
    return [level for level in levels if not math.isnan(level[0])]


def test_the_order_book_markets_decisions_trade_on_its_instruments_grids(settings: Settings, tmp_path: Path) -> None:
    config = LobConfig(symbols=2, seed=5, minutes=10, venue=ORDER_BOOK_MARKET_VENUE, news=False)
    topics = {Book: BOOKS, Quote: QUOTES, Action: ACTIONS}
    with Publisher(settings, DLQ_PRODUCERS) as publisher:
        for record in _market_tape(config):
            publisher.publish(topics[type(record)], record)
    grids = ("--market-seed", "5", "--market-symbols", "2")
    run = _start(settings, "lob", tmp_path / "lob.log", *grids)
    assert run.wait(timeout=240) == 0, (tmp_path / "lob.log").read_text()
    orders = list(_outputs(settings, "lob")[ORDERS.name].values())
    placed = {(o["symbol"], o["side"]) for o in orders if o["event"] == "placed"}
    assert placed == {(symbol, side) for symbol in ("L001", "L002") for side in ("BUY", "SELL")}, placed
    assert "rejected" not in {o["event"] for o in orders} and "filled" in {o["event"] for o in orders}
    assert not _dead_letters(settings)
