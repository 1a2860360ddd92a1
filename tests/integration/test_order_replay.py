"""`tapewatch produce orders` on the real Kafka: a LOBSTER file, a Databento CSV and a FIX drop copy, each with bad
lines, land as the readers read them — every good record once on md.orders or orders.firm, every bad line once on
dlq.producers with its reason and its place — and the command says what it did; a 10,000-line drop copy, three in ten
lines broken in one of eight ways, loses no good report and dead-letters each bad line once."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tapewatch.deadletter import DeadLetter
from tapewatch.producers.orders import databento, lobster
from tapewatch.producers.orders.fix_drop_copy import read_drop_copy
from tapewatch.records import ExecutionReport, OrderBookEvent
from tapewatch.settings import Settings
from tapewatch.topics import DLQ_PRODUCERS, FIRM_ORDERS, MARKET_BY_ORDER
from tests.kafka_reader import read_topic
from tests.order_samples import HEADER, MESSAGES, ROWS, report

pytestmark = pytest.mark.integration
TAPEWATCH = str(Path(sys.executable).with_name("tapewatch"))


def test_order_files_replay_onto_their_topics_and_bad_lines_onto_the_dead_letters(
    settings: Settings, tmp_path: Path
) -> None:
    lob = tmp_path / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
    lob.write_text("\n".join([*MESSAGES[:4], "34200.5,9,1,1,1,1", *MESSAGES[4:]]) + "\n")
    mbo = tmp_path / "xnas-mbo.csv"
    mbo.write_text("\n".join([HEADER, *ROWS[:3], ROWS[3].replace(",N,N,", ",Q,N,"), *ROWS[4:]]) + "\n")
    fix = tmp_path / "dropcopy.fix"
    fix.write_bytes(b"\n".join([report(), report(t17="E2").replace(b"ACC-7", b"ACC-9"), report(t17="E3", t150="4")]))
    expected_events = [
        *(r for r in lobster.read_messages(lob, "nasdaq") if isinstance(r, OrderBookEvent)),
        *(r for r in databento.read_csv(mbo, "nasdaq") if isinstance(r, OrderBookEvent)),
    ]
    expected_reports = [
        r for r in read_drop_copy(io.BytesIO(fix.read_bytes()), "nasdaq", "acme") if isinstance(r, ExecutionReport)
    ]
    assert len(expected_events) == 14 and len(expected_reports) == 2

    env = {**os.environ, "TAPEWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix, "TAPEWATCH_VAR_DIR": str(tmp_path)}
    command = [TAPEWATCH, "produce", "orders", str(lob), str(mbo), str(fix), "--venue", "nasdaq", "--no-progress"]
    # a drop copy is a tenant's: without one named, nothing is sent
    unnamed = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env, check=False)
    assert unnamed.returncode == 1 and "name it with --tenant" in unnamed.stderr, unnamed.stderr
    command += ["--tenant", "acme"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert "orders: 16 records" in done.stderr and "3 dead-lettered" in done.stderr, done.stderr

    events = read_topic(settings, settings.topic(MARKET_BY_ORDER.name), len(expected_events), linger_s=2)
    reports = read_topic(settings, settings.topic(FIRM_ORDERS.name), len(expected_reports), linger_s=1)
    dead = read_topic(settings, settings.topic(DLQ_PRODUCERS.name), 3, linger_s=1)
    # one symbol, so one partition: the files' order, each event once
    assert [m.value for m in events] == [e.to_json() for e in expected_events]
    assert {m.key for m in events} == {b"AAPL"}
    assert sorted(ExecutionReport.from_json(m.value).exec_id for m in reports) == ["E1", "E3"]
    assert {ExecutionReport.from_json(m.value).tenant for m in reports} == {"acme"}
    letters = {d.source: d for d in (DeadLetter.from_headers(m.headers) for m in dead)}
    assert len(dead) == 3 and set(letters) == {f"{fix}:2", f"{lob}:5", f"{mbo}:5"}
    assert "CheckSum (10)" in letters[f"{fix}:2"].reason and "message type 9" in letters[f"{lob}:5"].reason
    assert "action 'Q'" in letters[f"{mbo}:5"].reason
    assert all(d.stage == "producer:orders" for d in letters.values())


#: what a drop copy's line can be, and whether the replay must refuse it
FUZZ: dict[str, tuple[bool, Callable[[int], bytes]]] = {
    "good": (False, lambda n: report(t17=f"E{n}", t37=f"V{n}")),
    "checksum": (True, lambda n: report(t17=f"E{n}").replace(b"ACC-7", b"ACC-8")),
    "body length": (True, lambda n: report(t17=f"E{n}").replace(b"\x019=", b"\x019=1")),
    "no account": (True, lambda n: report(t17=f"E{n}", t1="")),
    "absurd size": (True, lambda n: report(t17=f"E{n}", t38="1e14", t151="1e14")),
    "overfilled": (True, lambda n: report(t17=f"E{n}", t14="5000")),
    "trade without a price": (True, lambda n: report(t17=f"E{n}", t31="")),
    "not FIX": (True, lambda n: f"8=FIX.4.4|garbage {n}|".encode()),
    "cut short": (True, lambda n: report(t17=f"E{n}")[:60]),
}


def test_a_10000_line_drop_copy_fuzz_sends_every_good_report_once_and_dead_letters_every_bad_line_once(
    settings: Settings, tmp_path: Path
) -> None:
    rng = random.Random(55)
    kinds = [rng.choice(list(FUZZ)) if rng.random() < 0.3 else "good" for _ in range(10_000)]
    lines = [FUZZ[kind][1](n) for n, kind in enumerate(kinds, start=1)]
    fix = tmp_path / "fuzz.fix"
    fix.write_bytes(b"\n".join(lines) + b"\n")
    bad_lines = {f"{fix}:{n}" for n, kind in enumerate(kinds, start=1) if FUZZ[kind][0]}
    good_ids = {f"E{n}" for n, kind in enumerate(kinds, start=1) if not FUZZ[kind][0]}
    assert len(bad_lines) > 2_000 and set(kinds) == set(FUZZ)

    env = {**os.environ, "TAPEWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix, "TAPEWATCH_VAR_DIR": str(tmp_path)}
    command = [TAPEWATCH, "produce", "orders", str(fix), "--venue", "v", "--tenant", "acme", "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert done.returncode == 0, done.stderr
    reports = read_topic(settings, settings.topic(FIRM_ORDERS.name), len(good_ids), linger_s=2, timeout_s=120)
    dead = read_topic(settings, settings.topic(DLQ_PRODUCERS.name), len(bad_lines), linger_s=2, timeout_s=120)
    got_ids = [ExecutionReport.from_json(m.value).exec_id for m in reports]
    assert len(got_ids) == len(good_ids) and set(got_ids) == good_ids  # each once, none lost
    sources = [DeadLetter.from_headers(m.headers).source for m in dead]
    assert len(sources) == len(bad_lines) and set(sources) == bad_lines  # each bad line once, with its place
