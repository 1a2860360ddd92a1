"""The simulator producer against the real Kafka: every record it publishes is read back exactly, and the
ground-truth CSV is what the truth topic holds."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from tapewatch.generators.simulator import BOOK_EVENT, EPISODE_EVENT, QUOTE_EVENT, SimulationConfig, generate
from tapewatch.producers.framework import run_source
from tapewatch.producers.simulate import STAGE, SimulateSource, read_truth_csv
from tapewatch.records import AlertKind, Book, Episode, Quote
from tapewatch.settings import Settings
from tapewatch.topics import BOOKS, QUOTES, TRUTH
from tests.kafka_reader import Received, read_topic

pytestmark = pytest.mark.integration

TOPICS = {QUOTE_EVENT: QUOTES, BOOK_EVENT: BOOKS, EPISODE_EVENT: TRUTH}


def test_simulated_session_round_trips_exactly(settings: Settings, tmp_path: Path) -> None:
    config = SimulationConfig(
        symbols=3,
        seed=42,
        minutes=15,
        clean_fraction=0.0,
        quiet_open_s=30,
        episode_gap_s=20,
        rates={
            AlertKind.SPOOFING: 2.0,
            AlertKind.WASH_TRADING: 1.0,
            AlertKind.MOMENTUM_IGNITION: 1.0,
            AlertKind.MARKING_THE_CLOSE: 1.0,
        },
    )
    expected = generate(config)  # what the source will generate for itself (same config, same bytes)
    sent: dict[int, list[tuple[bytes, bytes]]] = {QUOTE_EVENT: [], BOOK_EVENT: [], EPISODE_EVENT: []}
    for kinds, syms, payloads in expected.encoded():
        for kind, s, payload in zip(kinds, syms, payloads, strict=True):
            sent[kind].append((expected.symbols[s].encode(), payload))
    assert sent[EPISODE_EVENT], "the config must inject episodes"

    truth_path = tmp_path / "truth.csv"
    source = SimulateSource(config, truth_path=truth_path)
    counters = asyncio.run(run_source(settings, STAGE, source.run))
    assert (counters.quotes, counters.books, counters.episodes) == tuple(
        len(sent[k]) for k in (QUOTE_EVENT, BOOK_EVENT, EPISODE_EVENT)
    )
    assert counters.records == len(expected) and counters.dead_lettered == 0

    received: dict[int, list[Received]] = {}
    for kind, topic in TOPICS.items():
        received[kind] = read_topic(settings, settings.topic(topic.name), len(sent[kind]))
        # exactly what was produced: nothing lost, nothing duplicated, bytes untouched, keyed by symbol
        assert Counter((r.key or b"", r.value) for r in received[kind]) == Counter(sent[kind]), topic.name

    # one symbol, one partition, in publication order (the per-symbol seq runs 0, 1, 2, ...)
    by_symbol: dict[bytes, list[int]] = {}
    partitions: dict[bytes, set[int]] = {}
    for key, value, _, partition in received[QUOTE_EVENT]:
        by_symbol.setdefault(key or b"", []).append(Quote.from_json(value).seq)
        partitions.setdefault(key or b"", set()).add(partition)
    assert all(seqs == list(range(len(seqs))) for seqs in by_symbol.values())
    assert all(len(p) == 1 for p in partitions.values())

    # a sample compared field by field with the validated records of the same session
    records = list(expected.records())
    quotes = {(r.symbol, r.seq): r for r in records if isinstance(r, Quote)}
    books = {(r.symbol, r.ts): r for r in records if isinstance(r, Book)}
    rng = random.Random(0)
    for _, value, *_ in rng.sample(received[QUOTE_EVENT], 300):
        quote = Quote.from_json(value)
        assert quote.model_dump() == quotes[(quote.symbol, quote.seq)].model_dump()
    for _, value, *_ in rng.sample(received[BOOK_EVENT], 100):
        book = Book.from_json(value)
        assert book.model_dump() == books[(book.symbol, book.ts)].model_dump()

    # the truth topic, the truth CSV and the simulation's labels are the same episodes
    on_topic = sorted((Episode.from_json(v) for _, v, *_ in received[EPISODE_EVENT]), key=lambda e: (e.end, e.symbol))
    assert on_topic == read_truth_csv(truth_path) == list(expected.episodes)
    assert len({e.kind for e in on_topic}) >= 2


def test_paced_run_follows_the_session_clock_and_stops(settings: Settings, tmp_path: Path) -> None:
    config = SimulationConfig(
        symbols=2,
        seed=7,
        minutes=10,
        clean_fraction=0.0,
        quiet_open_s=10,
        episode_gap_s=10,
        rates={AlertKind.SPOOFING: 3.0},
    )
    speed, duration = 100.0, 2.5
    truth_path = tmp_path / "paced-truth.csv"
    source = SimulateSource(config, speed=speed, truth_path=truth_path)
    started = time.monotonic()
    counters = asyncio.run(run_source(settings, STAGE, source.run, duration_s=duration))
    elapsed = time.monotonic() - started
    simulation = source.simulation
    assert simulation is not None
    assert 0 < counters.records < len(simulation), "stopped by --duration before the end of the session"
    # The published records are the session's first ones, and their event time kept pace with the wall clock
    # (allowing for generation time before the first record).
    last_ts = int(simulation.event_ts[counters.records - 1])
    session_s = (last_ts - config.start_ms) / 1000
    assert session_s <= speed * elapsed + 1
    assert session_s >= speed * (duration - 2.0)

    episodes = read_topic(settings, settings.topic(TRUTH.name), counters.episodes, timeout_s=30)
    on_topic = [Episode.from_json(r.value) for r in episodes]
    assert counters.episodes >= 1
    assert sorted(on_topic, key=lambda e: (e.end, e.symbol)) == read_truth_csv(truth_path)
    assert read_truth_csv(truth_path) == list(simulation.episodes[: counters.episodes])
