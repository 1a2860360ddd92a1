"""`tapewatch bench peers`: the same bars-only workload through tapewatch, Quix Streams and faust-streaming.

Everything runs on the real broker, in one run, on private topics (a fresh ``bench-peers-<hex>.`` prefix; every
topic whose name holds it — the frameworks' changelogs too — is deleted afterwards):

1. **Backlog**: the quotes (trades and no-trade snapshots) of `bench stream`'s simulated session (seed 3), JSON in
   tapewatch's ``Quote`` contract keyed by symbol, produced up front to ``<prefix>md.quotes``. The bars that input
   closes — per symbol, the minutes with a trade whose end plus the grace its newest record reaches
   (:func:`expected_bars`) — are the count every framework must produce; each symbol's last minute(s) stay open
   (no framework flushes at the end of a backlog).
2. **Raw reference**: a bare confluent-kafka consumer reads the backlog (bytes only, :func:`raw_consume`), timed
   from its first records as the frameworks are.
3. **Each framework in turn**, a fresh process and a fresh consumer group from the earliest offset, building
   one-minute event-time OHLCV bars per symbol with state and a changelog, the closed bars to its own output topic:
   tapewatch (:mod:`tapewatch.bench.peers_tapewatch`), Quix (:mod:`tapewatch.bench.peer_scripts.quix_bars`), faust
   (:mod:`tapewatch.bench.peer_scripts.faust_bars`); the peers on their own venv (:mod:`tapewatch.bench.peers_env`).
   Each is timed from its first consumed record to its last record processed (its bars handed to its producer);
   its start-up, and its final flush and commit after that, are reported apart.
4. **Check**: every output topic is read back; its bars are counted against the expected number and compared with
   tapewatch's, field by field — a framework that drops or double-counts a record shows there.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from tapewatch.detectors.bars import MultiBarBuilder
from tapewatch.records import Quote
from tapewatch.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

#: the frameworks, in the order they run and print
FRAMEWORKS: Final = ("tapewatch", "quix", "faust")
#: how each is started: a module of the main venv (tapewatch) or of the peers' venv run from ``bench/``
PEER_MODULES: Final = {"quix": "peer_scripts.quix_bars", "faust": "peer_scripts.faust_bars"}
BENCH_DIR: Final = Path(__file__).resolve().parent
#: the fields of a bar compared across frameworks (tapewatch's ``Bar``)
BAR_FIELDS: Final = (
    "symbol",
    "venue",
    "start",
    "end",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "vwap",
    "trades",
    "price_change_pct",
    "volume_change_pct",
)


def expected_bars(quotes: Iterable[Quote], grace_ms: int) -> tuple[int, int]:
    """(bars closed, minutes left open) by ``quotes`` in arrival order: tapewatch's own bar builder's count, the
    closing rule every framework must follow (a minute with a trade closes once its symbol's newest ``ts`` reaches
    its end plus ``grace_ms``)."""
    builder = MultiBarBuilder(grace_ms)
    closed = sum(len(builder.on_quote(quote)) for quote in quotes)
    return closed, len(builder.flush())


@dataclass
class PeerRun:
    """One framework's run: what it reported, what its output topic holds, and how that compares."""

    framework: str
    records: int = 0
    seconds: float = 0.0
    #: its own count of bars sent, and the bars its output topic holds
    bars_reported: int = 0
    bars_in_topic: int = 0
    late: int = 0
    invalid: int = 0
    #: start of its process → first record consumed; last record processed → its final flush/commit done
    startup_s: float = 0.0
    drain_s: float = 0.0
    #: bars of its topic not among tapewatch's (or differing in a field), and tapewatch's missing from its topic
    differ_from_tapewatch: int | None = None
    missing_from_tapewatch: int | None = None
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    error: str | None = None

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


@dataclass
class PeersResult:
    symbols: int
    minutes: float
    records: int
    trades: int
    grace_ms: int
    expected_bars: int
    open_at_end: int
    raw_consume_per_s: float
    #: the load average (1, 5, 15 min) before the run (before the backlog was produced)
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    runs: list[PeerRun] = field(default_factory=list)

    def run_of(self, framework: str) -> PeerRun | None:
        return next((r for r in self.runs if r.framework == framework and r.error is None), None)

    def ratio_to_raw(self, run: PeerRun) -> float | None:
        return run.rate / self.raw_consume_per_s if run.error is None and self.raw_consume_per_s else None

    def tapewatch_over(self, run: PeerRun) -> float | None:
        """tapewatch's records/s ÷ ``run``'s (None when either failed)."""
        tapewatch = self.run_of("tapewatch")
        if tapewatch is None or run.error is not None or not run.rate:
            return None
        return tapewatch.rate / run.rate

    def to_json(self) -> bytes:
        runs = [
            {
                **asdict(run),
                "records_per_s": run.rate if run.error is None else None,
                "ratio_to_raw": self.ratio_to_raw(run),
                "tapewatch_over_it": self.tapewatch_over(run),
            }
            for run in self.runs
        ]
        body = {"benchmark": "peers", **asdict(self), "runs": runs}
        return orjson.dumps(body, option=orjson.OPT_INDENT_2)


# -- topics ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PeerTopics:
    prefix: str
    quotes: str
    outputs: dict[str, str]
    groups: dict[str, str]

    @classmethod
    def named(cls, prefix: str) -> PeerTopics:
        """The topic and group names of one run behind ``prefix``.

        >>> t = PeerTopics.named("bench-peers-abc.")
        >>> t.quotes, t.outputs["quix"], t.groups["faust"]
        ('bench-peers-abc.md.quotes', 'bench-peers-abc.bars.quix', 'bench-peers-abc.faust')
        """
        return cls(
            prefix,
            f"{prefix}md.quotes",
            {name: f"{prefix}bars.{name}" for name in FRAMEWORKS},
            {name: f"{prefix}{name}" for name in FRAMEWORKS},
        )

    @property
    def tapewatch_changelog(self) -> str:
        return f"{self.groups['tapewatch']}-changelog"


@contextlib.contextmanager
def peer_topics(settings: Settings) -> Iterator[PeerTopics]:
    """Fresh input, output and tapewatch changelog topics; on exit every topic whose name holds the prefix (the
    frameworks' own changelogs and internal topics too) is deleted."""
    from tapewatch.kafka import admin_client, create_missing_topics, new_topic

    topics = PeerTopics.named(f"bench-peers-{uuid.uuid4().hex[:6]}.")
    compacted = {"cleanup.policy": "compact"}
    wanted = [
        new_topic(settings, topics.quotes, {}),
        *(new_topic(settings, name, {}) for name in topics.outputs.values()),
        new_topic(settings, topics.tapewatch_changelog, compacted),
    ]
    create_missing_topics(settings, wanted)
    try:
        yield topics
    finally:
        admin = admin_client(settings)
        ours = [t for t in admin.list_topics(timeout=30).topics if topics.prefix in t]
        if ours:
            for future in admin.delete_topics(ours, operation_timeout=60).values():
                with contextlib.suppress(KafkaException):
                    future.result()


def produce_backlog(settings: Settings, topic: str, symbols: int, minutes: float) -> list[Quote]:
    """`bench stream`'s session's quotes (seed 3) into ``topic``, keyed by symbol; each as its ``Quote``."""
    from tapewatch.generators.simulator import QUOTE_EVENT, SimulationConfig, generate
    from tapewatch.kafka_producer import KafkaProducer
    from tapewatch.topics import DLQ_PRODUCERS

    simulation = generate(SimulationConfig(symbols=symbols, minutes=minutes, seed=3))
    sent: list[Quote] = []
    with KafkaProducer(settings, DLQ_PRODUCERS) as producer:
        for kind, _, fields in simulation.rows():
            if kind != QUOTE_EVENT:
                continue
            quote = Quote.from_dict(fields)
            producer.produce(topic, quote.symbol.encode(), orjson.dumps(fields))
            sent.append(quote)
    return sent


def raw_consume(settings: Settings, topic: str, records: int, timeout_s: float = 600.0) -> float:
    """Records/s of a bare confluent-kafka consumer over the backlog (bytes only), timed as the frameworks are: from
    its first records (the first batch of 1,000, not counted) to its last — the join and the first fetch are not in
    it."""
    from tapewatch.kafka import consumer_config

    consumer = Consumer(
        consumer_config(settings, **{"group.id": f"bench-peers-raw-{uuid.uuid4()}", "enable.auto.commit": False})
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(settings.kafka.topic_partitions)])
    seen = first = 0
    started = deadline = time.monotonic() + timeout_s
    try:
        while seen < records and time.monotonic() < deadline:
            seen += sum(1 for m in consumer.consume(num_messages=1_000, timeout=1.0) if m.error() is None)
            if seen and not first:
                first, started = seen, time.monotonic()
        elapsed = time.monotonic() - started
        return (seen - first) / elapsed if elapsed > 0 else 0.0
    finally:
        consumer.close()


def read_topic(settings: Settings, topic: str, timeout_s: float = 120.0) -> list[bytes]:
    """Every value in ``topic`` now, all partitions, from the beginning to the high watermark."""
    from tapewatch.kafka import consumer_config

    consumer = Consumer(consumer_config(settings, **{"group.id": f"bench-peers-read-{uuid.uuid4()}"}))
    try:
        ends = {}
        for p in range(settings.kafka.topic_partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        values: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while ends and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=10_000, timeout=1.0):
                partition = message.partition()
                offset = message.offset()
                if message.error() is not None or partition is None or offset is None:
                    continue
                values.append(message.value() or b"")
                if offset + 1 >= ends.get(partition, 0):
                    ends.pop(partition, None)
        return values
    finally:
        consumer.close()


def bar_keys(values: Iterable[bytes]) -> list[tuple[Any, ...]]:
    """Each bar's compared fields, as a tuple (floats as decoded from its JSON).

    >>> bar_keys([b'{"symbol":"A","venue":"v","start":0,"end":60000,"open":1.0,"high":2.0,"low":1.0,"close":2.0,'
    ...           b'"volume":3.0,"vwap":1.5,"trades":2,"price_change_pct":null,"volume_change_pct":null,"x":1}'])
    [('A', 'v', 0, 60000, 1.0, 2.0, 1.0, 2.0, 3.0, 1.5, 2, None, None)]
    """
    keys = []
    for value in values:
        bar = orjson.loads(value)
        keys.append(tuple(bar.get(name) for name in BAR_FIELDS))
    return keys


def compare(reference: list[tuple[Any, ...]], bars: list[tuple[Any, ...]]) -> tuple[int, int]:
    """(bars not in ``reference`` — extra, duplicated or differing in a field —, reference bars missing from ``bars``).

    >>> compare([("A", 0), ("A", 1)], [("A", 0), ("A", 0), ("B", 2)])
    (2, 1)
    """
    from collections import Counter

    ours, theirs = Counter(reference), Counter(bars)
    return sum((theirs - ours).values()), sum((ours - theirs).values())


# -- runs -------------------------------------------------------------------------------------------------------------
def _argv(
    settings: Settings, topics: PeerTopics, framework: str, records: int, workdir: Path, state: Path
) -> list[str]:
    return [
        *("--bootstrap", settings.kafka.bootstrap, "--input", topics.quotes),
        *("--output", topics.outputs[framework], "--group", topics.groups[framework]),
        *("--records", str(records), "--partitions", str(settings.kafka.topic_partitions)),
        *("--grace-ms", str(settings.stream.grace_ms), "--state-dir", str(state)),
        *("--result", str(workdir / f"peers-{framework}.json")),
    ]


def run_framework(
    settings: Settings, topics: PeerTopics, framework: str, records: int, workdir: Path, peers_python: Path | None
) -> PeerRun:
    """One framework over the backlog in its own process; its result, or its error (never a made-up number)."""
    run = PeerRun(framework, load_before=os.getloadavg())
    if framework == "tapewatch":
        command, cwd = [sys.executable, "-m", "tapewatch.bench.peers_tapewatch"], Path.cwd()
    elif peers_python is not None:
        command, cwd = [str(peers_python), "-m", PEER_MODULES[framework]], BENCH_DIR
    else:
        run.error = "no peers' venv"
        return run
    result_file = workdir / f"peers-{framework}.json"
    result_file.unlink(missing_ok=True)
    log = workdir / f"peers-{framework}.log"
    env = {**os.environ, "TAPEWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix}
    started = time.time()
    with log.open("wb") as out, tempfile.TemporaryDirectory(prefix=f"peers-{framework}-state-") as state:
        try:
            done = subprocess.run(
                [*command, *_argv(settings, topics, framework, records, workdir, Path(state))],
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=max(600.0, records / 200.0),
                check=False,
            )
            code: int | None = done.returncode
        except subprocess.TimeoutExpired:
            code = None
    if not result_file.exists():
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        run.error = f"exit {code}, no result; {log}: " + " | ".join(tail)
        return run
    reported = orjson.loads(result_file.read_bytes())
    run.records, run.bars_reported = reported["records"], reported["bars"]
    run.late, run.invalid = reported["late"], reported["invalid"]
    run.seconds = reported["last_processed"] - reported["first_consumed"]
    run.startup_s = reported["first_consumed"] - started
    run.drain_s = max(0.0, reported["drained"] - reported["last_processed"])
    if run.records != records or run.seconds <= 0:
        run.error = f"read {run.records:,} of {records:,} records (exit {code}; see {log})"
    return run


def run_peers_bench(
    settings: Settings, *, symbols: int, minutes: float, workdir: Path, frameworks: Iterable[str] = FRAMEWORKS
) -> PeersResult:
    from tapewatch.bench.peers_env import ensure_peers_venv

    load = os.getloadavg()
    wanted = [f for f in FRAMEWORKS if f in set(frameworks)]
    peers_python = ensure_peers_venv() if set(wanted) - {"tapewatch"} else None
    workdir.mkdir(parents=True, exist_ok=True)
    grace = settings.stream.grace_ms
    with peer_topics(settings) as topics:
        sent = produce_backlog(settings, topics.quotes, symbols, minutes)
        closed, still_open = expected_bars(sent, grace)
        result = PeersResult(
            symbols=symbols,
            minutes=minutes,
            records=len(sent),
            trades=sum(1 for quote in sent if quote.price is not None),
            grace_ms=grace,
            expected_bars=closed,
            open_at_end=still_open,
            raw_consume_per_s=raw_consume(settings, topics.quotes, len(sent)),
            load_before=load,
        )
        reference: list[tuple[Any, ...]] | None = None
        for framework in wanted:
            run = run_framework(settings, topics, framework, len(sent), workdir, peers_python)
            bars = bar_keys(read_topic(settings, topics.outputs[framework]))
            run.bars_in_topic = len(bars)
            if framework == "tapewatch":
                reference = bars if run.error is None else None
            elif reference is not None:
                run.differ_from_tapewatch, run.missing_from_tapewatch = compare(reference, bars)
            result.runs.append(run)
    return result


# -- report -----------------------------------------------------------------------------------------------------------
def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_peers_bench(console: Console, result: PeersResult) -> None:
    """The table (records/s, × raw Kafka, tapewatch ÷ each, bars against the expected count), the backlog, errors."""
    from rich.table import Table

    table = Table(
        *("framework", "records/s", "× raw Kafka", "tapewatch ÷ it", "seconds"),
        *("bars in topic / expected", "vs tapewatch's (+extra −missing)", "start-up s", "drain s", "load before"),
        title="bars only: one backlog through each framework",
    )
    table.add_row("raw confluent-kafka consume", f"{result.raw_consume_per_s:,.0f}", "1.00", *[""] * 7)
    for run in result.runs:
        versus = (
            "" if run.differ_from_tapewatch is None else f"+{run.differ_from_tapewatch} −{run.missing_from_tapewatch}"
        )
        table.add_row(
            run.framework,
            "failed" if run.error else f"{run.rate:,.0f}",
            _number(result.ratio_to_raw(run)),
            _number(result.tapewatch_over(run)),
            "-" if run.error else f"{run.seconds:.2f}",
            f"{run.bars_in_topic:,} / {result.expected_bars:,}",
            versus,
            f"{run.startup_s:.1f}",
            f"{run.drain_s:.2f}",
            " ".join(f"{x:.2f}" for x in run.load_before),
        )
    console.print(table)
    console.print(
        f"backlog: {result.records:,} quotes ({result.trades:,} trades) of {result.symbols} symbols × "
        f"{result.minutes:g} min; expected {result.expected_bars:,} closed bars, {result.open_at_end} minutes left "
        f"open at the end (grace {result.grace_ms} ms); load before the run "
        + " ".join(f"{x:.2f}" for x in result.load_before)
    )
    for run in result.runs:
        if run.late or run.invalid:
            console.print(f"{run.framework}: {run.late:,} late records, {run.invalid:,} that did not decode")
        if run.bars_reported != run.bars_in_topic:
            console.print(
                f"{run.framework} reported {run.bars_reported:,} bars sent, its topic holds {run.bars_in_topic:,}"
            )
        if run.error is not None:
            console.print(f"[red]{run.framework} failed:[/red] {run.error}")
