"""Replay files into the real Kafka: every good row arrives as the record it describes, bad rows are
dead-lettered with their reason, pacing follows the recording."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pandas as pd
import pytest

from tapewatch.deadletter import DeadLetter
from tapewatch.producers.framework import run_source
from tapewatch.producers.replay import Replay
from tapewatch.records import Book, Quote
from tapewatch.settings import Settings
from tapewatch.topics import BOOKS, DLQ_PRODUCERS, QUOTES
from tests.kafka_reader import read_topic

pytestmark = pytest.mark.integration


def test_replay_csv_and_parquet(settings: Settings, tmp_path: Path) -> None:
    rows = []
    for i in range(3000):
        row: dict[str, object] = {
            "symbol": f"R{i % 5}",
            "ts": 1_700_000_000_000 + i * 10,
            "price": 100 + (i % 7) * 0.5,
            "size": 1000.0,
            "side": "B" if i % 2 else "S",
        }
        if i % 3 == 0:
            row.update({"bid1": 99.5, "bidsz1": 10.0, "bid2": 99.0, "bidsz2": 4.0, "ask1": 101.0, "asksz1": 7.0})
        rows.append(row)
    data = pd.DataFrame(rows)
    data.iloc[:1500].to_csv(tmp_path / "ticks.csv", index=False)
    data.iloc[1500:].to_parquet(tmp_path / "ticks.parquet")
    with (tmp_path / "bad.csv").open("w") as fh:
        fh.write("symbol,ts,price,size\nBAD,1700000000005,-3,100\nBAD,later,10,1\n")

    replay = Replay([tmp_path / "ticks.csv", tmp_path / "ticks.parquet", tmp_path / "bad.csv"])
    counters = asyncio.run(run_source(settings, "producer:replay", replay.run))
    assert counters.quotes == 3000 and counters.books == 1000 and counters.dead_lettered == 2

    quotes = [Quote.from_json(v) for _, v, *_ in read_topic(settings, settings.topic(QUOTES.name), 3000)]
    assert len(quotes) == 3000
    by_ts = {q.ts: q for q in quotes}
    for i in (0, 1, 3, 1499, 1500, 2999):
        q = by_ts[1_700_000_000_000 + i * 10]
        assert (q.symbol, q.price, q.size, q.side) == (
            rows[i]["symbol"],
            rows[i]["price"],
            1000.0,
            "B" if i % 2 else "S",
        )
        # the quote in force before the trade: the symbol's previous book row, if any (not the row's own book)
        before = any(j % 5 == i % 5 and j % 3 == 0 for j in range(i))
        assert q.bid == (99.5 if before else None)
    # per symbol, seq follows event time
    for symbol in {q.symbol for q in quotes}:
        mine = sorted((q for q in quotes if q.symbol == symbol), key=lambda q: q.seq)
        assert [q.ts for q in mine] == sorted(q.ts for q in mine)

    books = [Book.from_json(v) for _, v, *_ in read_topic(settings, settings.topic(BOOKS.name), 1000)]
    assert len(books) == 1000
    assert books[0].bids == [(99.5, 10.0), (99.0, 4.0)] and books[0].asks == [(101.0, 7.0)]

    letters = read_topic(settings, settings.topic(DLQ_PRODUCERS.name), 2)
    reasons = sorted(DeadLetter.from_headers(h).reason for _, _, h, _ in letters)
    assert reasons == ["price: must be within 1e-09..1e+10", "ts: not a number"]
    assert {orjson.loads(v)["symbol"] for _, v, *_ in letters} == {"BAD"}
    assert all(DeadLetter.from_headers(h).source == str(tmp_path / "bad.csv") for _, _, h, _ in letters)


def test_replay_keeps_the_recorded_pace(settings: Settings, tmp_path: Path) -> None:
    # 2 s of recording at speed 4 → about 0.5 s.
    pd.DataFrame({"symbol": ["P"] * 5, "ts": [0, 500, 1000, 1500, 2000], "price": [1.0] * 5, "size": [1.0] * 5}).to_csv(
        tmp_path / "p.csv", index=False
    )
    started = time.monotonic()
    counters = asyncio.run(run_source(settings, "producer:replay", Replay([tmp_path / "p.csv"], speed=4).run))
    elapsed = time.monotonic() - started
    assert counters.quotes == 5
    assert 0.45 <= elapsed < 3.0
