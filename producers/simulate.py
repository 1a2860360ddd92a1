"""The labelled market simulator as a source: into md.quotes / md.books / truth / news.items, or into files.

Kafka mode publishes every record of a simulated session (see :mod:`tapewatch.generators.simulator`) in event-time
order, as fast as the broker takes them (``--speed 0``) or paced to the session's own clock times
``--speed``, and appends each ground-truth episode to a CSV as it is published, so the CSV always equals
what the truth topic holds (also after ``--duration`` or Ctrl-C). The session's news items go to news.items, each
once the market records up to its publication time have gone (:attr:`Simulation.news`). File mode (``--out-dir``)
writes the replay layout instead (``ticks.parquet`` or ``ticks.csv``: symbol, ts, price, size, side, bid1..bid5,
bidsz1..bidsz5, ask1..ask5, asksz1..asksz5) and ``episodes.csv``, for offline work and for
``tapewatch produce replay``; with look-alikes configured, also ``lookalikes.csv`` (symbol, kind, start, end), the
labelled legitimate look-alikes, which no record carries; with news (the default), ``news.jsonl`` (the
``NewsItem`` records, one a line, as news.items carries them) and ``news_labels.csv`` (item_id, symbol, ts, label,
title: what each item is there for, which no record says).

The hot loop hands pre-encoded payloads (byte-identical to ``record.to_json()``) straight to the publisher:
the per-record Python work is one dict and one orjson call for a quote and a slice of one orjson call for a
book, plus librdkafka's enqueue.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import pandas as pd

from tapewatch.errors import TapewatchError
from tapewatch.generators.simulator import (
    BOOK_EVENT,
    EPISODE_COLUMNS,
    QUOTE_EVENT,
    Simulation,
    SimulationConfig,
    generate,
    iso_ms,
)
from tapewatch.producers.framework import Emitter, SourceRun, sleep_or_stop
from tapewatch.records import Episode, NewsItem
from tapewatch.topics import BOOKS, NEWS_ITEMS, QUOTES, TRUTH

STAGE = "producer:simulate"
#: later than any event time
_NEVER = 2**63 - 1
#: file mode's labels of the legitimate look-alikes, beside the ticks
LOOKALIKES_CSV = "lookalikes.csv"
#: file mode's news items (``NewsItem`` JSON lines) and their labels, beside the ticks
NEWS_JSONL = "news.jsonl"
NEWS_LABELS_CSV = "news_labels.csv"
FORMATS = ("parquet", "csv")
#: where each kind of simulated event goes, by its kind code (QUOTE_EVENT, BOOK_EVENT, episode)
TOPICS = (QUOTES, BOOKS, TRUTH)


def episode_row(episode: Episode) -> list[str | int]:
    return [
        episode.symbol,
        episode.venue,
        str(episode.kind),
        episode.start,
        episode.end,
        iso_ms(episode.start),
        iso_ms(episode.end),
    ]


class TruthWriter:
    """The ground-truth CSV, one row per episode as it is published, flushed each time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO = path.open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file, lineterminator="\n")
        self._csv.writerow(EPISODE_COLUMNS)
        self._file.flush()
        self.rows = 0

    def write(self, episode: Episode) -> None:
        self._csv.writerow(episode_row(episode))
        self._file.flush()
        self.rows += 1

    def close(self) -> None:
        self._file.close()


def write_truth_csv(path: Path, episodes: Sequence[Episode]) -> Path:
    writer = TruthWriter(path)
    try:
        for episode in episodes:
            writer.write(episode)
    finally:
        writer.close()
    return path


def read_truth_csv(path: Path) -> list[Episode]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            Episode.from_dict(
                {
                    "symbol": r["symbol"],
                    "venue": r["venue"],
                    "kind": r["kind"],
                    "start": int(r["start"]),
                    "end": int(r["end"]),
                }
            )
            for r in csv.DictReader(handle)
        ]


def write_files(
    simulation: Simulation, out_dir: Path, file_format: str = "parquet", truth: Path | None = None
) -> tuple[Path, Path]:
    """The replay layout (ticks, with their venue) and the ground truth, for offline use. Returns (ticks path, truth
    path)."""
    if file_format not in FORMATS:
        raise TapewatchError(f"simulate: --format must be one of {', '.join(FORMATS)}, not {file_format!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    ticks = simulation.ticks_frame()
    # the venue travels with the ticks, so `detect file` and `produce replay` read them as the simulated venue's
    ticks.insert(1, "venue", simulation.config.venue)
    ticks_path = out_dir / f"ticks.{file_format}"
    if file_format == "parquet":
        ticks.to_parquet(ticks_path, index=False)
    else:
        ticks.to_csv(ticks_path, index=False, lineterminator="\n")
    truth_path = write_truth_csv(truth or out_dir / "episodes.csv", simulation.episodes)
    if simulation.config.lookalikes:
        simulation.lookalikes_frame().to_csv(out_dir / LOOKALIKES_CSV, index=False, lineterminator="\n")
    if simulation.config.news:
        write_news(simulation.news, simulation.news_frame(), out_dir)
    return ticks_path, truth_path


def write_news(items: Sequence[NewsItem], labelled: pd.DataFrame, out_dir: Path) -> tuple[Path, Path]:
    """A session's news items as JSON lines and their labels as CSV (:data:`NEWS_JSONL`, :data:`NEWS_LABELS_CSV`)."""
    records = out_dir / NEWS_JSONL
    records.write_bytes(b"".join(item.to_json() + b"\n" for item in items))
    labels = out_dir / NEWS_LABELS_CSV
    labelled.to_csv(labels, index=False, lineterminator="\n")
    return records, labels


class SimulateSource:
    """A source for :func:`tapewatch.producers.framework.run_source`: one simulated session into Kafka.

    ``simulation`` may be generated beforehand (benchmarks); otherwise it is generated in a worker thread at
    the start of :meth:`run`. ``limit`` stops after that many records.
    """

    CHUNK = 4096

    def __init__(
        self,
        config: SimulationConfig,
        *,
        speed: float = 0.0,
        truth_path: Path | None = None,
        simulation: Simulation | None = None,
        limit: int | None = None,
        live: bool = False,
    ) -> None:
        if speed < 0:
            raise TapewatchError("simulate: --speed must be ≥ 0")
        self.config = config
        self.speed = speed
        self.truth_path = truth_path
        self.simulation = simulation
        self.limit = limit
        #: event times are wall-clock times: publish each record at its own ts (not relative to the start)
        self.live = live
        self.published_episodes: list[Episode] = []

    async def run(self, emitter: Emitter, stop: asyncio.Event) -> None:
        simulation = self.simulation
        if simulation is None:
            simulation = self.simulation = await asyncio.to_thread(generate, self.config)
        truth = TruthWriter(self.truth_path) if self.truth_path is not None else None
        try:
            await self._publish(simulation, emitter, stop, truth)
        finally:
            if truth is not None:
                truth.close()

    async def _publish(self, sim: Simulation, emitter: Emitter, stop: asyncio.Event, truth: TruthWriter | None) -> None:
        publication = _Publication(self, sim, emitter, truth)
        remaining = len(sim) if self.limit is None else min(self.limit, len(sim))
        position = 0
        for chunk_kinds, chunk_syms, chunk_payloads in sim.encoded(self.CHUNK):
            if stop.is_set() or remaining <= 0:
                return
            kinds, syms, payloads = chunk_kinds[:remaining], chunk_syms[:remaining], chunk_payloads[:remaining]
            if self.speed > 0:
                stamps = sim.event_ts[position : position + len(kinds)].tolist()
                if await publication.paced(kinds, syms, payloads, stamps, stop):
                    return
            else:
                publication.at_once(kinds, syms, payloads)
                publication.news_until(int(sim.event_ts[position + len(kinds) - 1]))
                # Let the progress line, the publisher's poll and the signal handlers run between chunks.
                await asyncio.sleep(0)
            position += len(kinds)
            remaining -= len(kinds)
        if not stop.is_set() and remaining <= 0 and position == len(sim):
            publication.news_until(None)  # the items published after the last market record


class _Publication:
    """One session on its way to Kafka: the records of each chunk sent (paced or at once) and counted, each
    ground-truth episode written to the truth file as it is published."""

    def __init__(self, source: SimulateSource, sim: Simulation, emitter: Emitter, truth: TruthWriter | None) -> None:
        self.source = source
        self.sim = sim
        self.emitter = emitter
        self.truth = truth
        self.keys = [name.encode() for name in sim.symbols]
        self.started = time.monotonic()
        self.episode_index = 0
        self.news_index = 0
        #: the publication time of the next news item to send (past the last one: never)
        self.next_news_ts = sim.news[0].ts if sim.news else _NEVER

    async def paced(
        self, kinds: list[int], syms: list[int], payloads: list[bytes], stamps: list[int], stop: asyncio.Event
    ) -> bool:
        """Send each record of the chunk when its event time is due; True when asked to stop meanwhile."""
        topics, keys, send, counters = TOPICS, self.keys, self.emitter.publisher.send, self.emitter.counters
        for kind, s, payload, ts in zip(kinds, syms, payloads, stamps, strict=True):
            ahead = self._ahead_s(ts)
            # Sleeping costs more than a millisecond of lead is worth; batch records that are due together.
            if ahead > 0.002 and await sleep_or_stop(stop, ahead):
                return True
            if ts >= self.next_news_ts:
                self.news_until(ts)
            send(topics[kind], keys[s], payload)
            counters.records += 1
            if kind == QUOTE_EVENT:
                counters.quotes += 1
            elif kind == BOOK_EVENT:
                counters.books += 1
            else:
                self.episode()
        return False

    def _ahead_s(self, ts: int) -> float:
        """How long until the record stamped ``ts`` is due (negative: overdue)."""
        if self.source.live:
            return ts / 1000.0 - time.time()
        first_ts = self.sim.config.start_ms
        return (ts - first_ts) / 1000.0 / self.source.speed - (time.monotonic() - self.started)

    def at_once(self, kinds: list[int], syms: list[int], payloads: list[bytes]) -> None:
        """Send every record of the chunk now, then count them."""
        topics, keys, send = TOPICS, self.keys, self.emitter.publisher.send
        for kind, s, payload in zip(kinds, syms, payloads, strict=True):
            send(topics[kind], keys[s], payload)
        nq = kinds.count(QUOTE_EVENT)
        nb = kinds.count(BOOK_EVENT)
        counters = self.emitter.counters
        counters.records += len(kinds)
        counters.quotes += nq
        counters.books += nb
        for _ in range(len(kinds) - nq - nb):
            self.episode()

    def news_until(self, ts: int | None) -> None:
        """Sends the news items published up to ``ts`` (None: all) that have not gone yet."""
        news = self.sim.news
        while self.news_index < len(news) and (ts is None or news[self.news_index].ts <= ts):
            self.emitter.emit(NEWS_ITEMS, news[self.news_index])
            self.news_index += 1
        self.next_news_ts = news[self.news_index].ts if self.news_index < len(news) else _NEVER

    def episode(self) -> None:
        """The next ground-truth episode was just published: count it and write it to the truth file."""
        episode = self.sim.episodes[self.episode_index]
        self.emitter.counters.episodes += 1
        self.source.published_episodes.append(episode)
        if self.truth is not None:
            self.truth.write(episode)
        self.episode_index += 1


def bench_session(records: int) -> SourceRun:
    """For `tapewatch bench produce`: a session of about ``records`` records, generated before the clock starts."""
    symbols = max(20, -(-records // (270 * 180)))
    minutes = min(270.0, max(10.0, records / (symbols * 180) * 1.2))
    simulation = generate(SimulationConfig(symbols=symbols, minutes=minutes, seed=1))
    return SimulateSource(simulation.config, simulation=simulation, limit=records).run


def default_truth_path(var_dir: Path, config: SimulationConfig) -> Path:
    """Named by the session's day, its seed and a digest of the whole configuration: a run with other settings
    (symbols, minutes, feed, …) writes a file of its own instead of replacing another run's truth, and the same
    configuration, which gives the same episodes, rewrites its own."""
    digest = hashlib.sha256(repr(config).encode()).hexdigest()[:8]
    return var_dir / "sim" / f"truth-{config.day:%Y%m%d}-seed{config.seed}-{digest}.csv"
