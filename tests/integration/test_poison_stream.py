"""Poison on the real broker: 10,000 malformed records (the 51-shape corpus and seeded random mutants) mixed into
a simulated session on md.quotes / md.books. The stream worker must not stop, every poison record must be
accounted for (a dead letter with a reason, or a record the contract and the venue's bounds accept, for a
symbol of its own), and the valid symbols' bars and features must equal a clean batch run of the session."""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from confluent_kafka import KafkaError, Message, Producer

from tapewatch import deadletter
from tapewatch.detectors.bars import bars_from_quotes, bars_to_frame
from tapewatch.detectors.features import features_frame
from tapewatch.feeds import FeedProfiles
from tapewatch.generators.simulator import SimulationConfig, generate
from tapewatch.kafka import client_config
from tapewatch.records import Bar, Book, Quote, RecordError
from tapewatch.settings import Settings
from tapewatch.topics import BARS, BOOKS, DLQ_STREAMS, FEATURES, QUOTES
from tests.kafka_reader import Received, read_distinct, read_topic
from tests.poison import Poison, corpus, mutants
from tests.stream_reference import features_frames, flow_reference
from tests.stream_worker import Worker

pytestmark = pytest.mark.integration

SESSION = SimulationConfig(symbols=8, minutes=8, seed=23)
POISON = 10_000
WAIT_S = 120.0


def accepted_by_contract(poison: Poison) -> bool:
    """Whether the worker may apply this record (then it is for a FUZZ symbol and changes nothing else)."""
    contract = Book if poison.topic == "books" else Quote
    try:
        record = contract.from_json(poison.value)
    except RecordError:
        return False
    return poison.key == record.key() and FeedProfiles()(record.venue).implausible(record) is None


def produce_mixed(settings: Settings, valid: list[Quote | Book], poison: list[Poison], rng: random.Random) -> None:
    """The session in emission order; after its first fifth (every partition has event time by then), the
    poison at random places in between."""
    producer = Producer(
        client_config(
            settings,
            **{
                "enable.idempotence": True,
                "linger.ms": 5,
                "partitioner": "murmur2_random",
                "message.max.bytes": 1_048_000,  # the 1 MB records of the corpus
            },
        )
    )
    topics = {"quotes": settings.topic(QUOTES.name), "books": settings.topic(BOOKS.name)}
    failures: list[str] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failures.append(str(err))

    start = len(valid) // 5
    slots = sorted(rng.randrange(start, len(valid)) for _ in poison)
    queue = iter(poison)
    j = 0
    for i, record in enumerate(valid):
        while j < len(slots) and slots[j] == i:
            bad = next(queue)
            producer.produce(topics[bad.topic], key=bad.key, value=bad.value, on_delivery=delivered)
            producer.poll(0)
            j += 1
        topic = topics["books" if isinstance(record, Book) else "quotes"]
        producer.produce(topic, key=record.key(), value=record.to_json(), on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert not failures, failures[:5]


def dead_letter_ids(settings: Settings, expected: int) -> tuple[Counter[bytes], list[deadletter.DeadLetter]]:
    """SHA-256 of each dead letter's original payload (from its header when it was cut), and the letters."""
    received = read_topic(settings, settings.topic(DLQ_STREAMS.name), expected, timeout_s=WAIT_S, linger_s=3.0)
    ids: Counter[bytes] = Counter()
    letters = []
    for msg in received:
        headers = dict(msg.headers)
        original = headers.get(deadletter.ORIGINAL_SHA256)
        ids[original.decode().encode() if original else hashlib.sha256(msg.value).hexdigest().encode()] += 1
        letters.append(deadletter.DeadLetter.from_headers(msg.headers))
        assert len(msg.value) <= settings.kafka.dlq_max_bytes
    return ids, letters


def not_fuzz(msg: Received) -> bool:
    return not msg.key or not msg.key.startswith(b"FUZZ")


@pytest.mark.timeout(600)
def test_ten_thousand_malformed_records_stop_nothing_and_change_nothing(
    stream_settings: Settings, tmp_path: Path
) -> None:
    settings = stream_settings
    rng = random.Random(1709)
    session = generate(SESSION)
    valid = [r for r in session.records() if isinstance(r, Quote | Book)]
    middle = valid[len(valid) // 2].ts
    shapes = corpus(valid[0].symbol, middle)
    assert len(shapes) == 51
    poison = shapes + mutants(rng, middle, POISON - len(shapes))
    # every corpus shape is refused: by the contract or the venue's bounds, or (valid, months ahead) by the skew
    skewed = [p.name for p in shapes if accepted_by_contract(p)]
    assert skewed == ["ts months ahead", "book ts months ahead"]
    must_fail = shapes + [p for p in poison[len(shapes) :] if not accepted_by_contract(p)]

    worker = Worker(settings, tmp_path / "worker.log")
    try:
        produce_mixed(settings, valid, poison, rng)
        quotes = session.quotes_frame().assign(venue=SESSION.venue)
        expected_bars = bars_from_quotes(quotes)
        expected_features = features_frame(expected_bars)
        expected_flow = flow_reference(quotes, session.books_frame())
        ids, letters = dead_letter_ids(settings, len(must_fail))
        bars = read_distinct(settings, settings.topic(BARS.name), len(expected_bars), wait_s=WAIT_S)
        features = read_distinct(
            settings, settings.topic(FEATURES.name), len(expected_features) + len(expected_flow), wait_s=WAIT_S
        )
        alive = worker.proc.poll() is None
        details = worker.tail(60)
    finally:
        worker.stop()

    assert alive, f"the worker stopped\n{details}"
    assert "stream worker failed" not in details
    # every poison record that the contract refuses is a dead letter, with a reason
    missing = [p.name for p in must_fail if ids[hashlib.sha256(p.value).hexdigest().encode()] == 0]
    assert missing == [], f"{len(missing)} poison record(s) not dead-lettered, e.g. {missing[:10]}"
    assert all(letter.reason and letter.stage == "stream:market" for letter in letters)
    # no valid record of the session was dead-lettered
    session_ids = {hashlib.sha256(r.to_json()).hexdigest().encode() for r in valid}
    assert not session_ids & set(ids), "a valid record of the session was dead-lettered"
    # the valid symbols' outputs equal the clean batch run: the poison changed nothing
    got_bars = bars_to_frame([Bar.from_json(m.value) for m in bars if not_fuzz(m)])
    got_bars = got_bars.drop_duplicates().reset_index(drop=True)
    pd.testing.assert_frame_equal(got_bars, expected_bars, check_exact=False, rtol=1e-9, atol=1e-9)
    got_features, got_flow = features_frames([m for m in features if not_fuzz(m)])
    pd.testing.assert_frame_equal(got_features, expected_features, check_exact=False, rtol=1e-9, atol=1e-12)
    pd.testing.assert_frame_equal(got_flow, expected_flow, check_exact=False, rtol=1e-9, atol=1e-12)
    print(
        f"poison: {len(poison)} records, {len(must_fail)} refused by the contract or bounds, "
        f"{sum(ids.values())} dead letters; reasons: {Counter(letter.reason.split(':')[0] for letter in letters)}"
    )
