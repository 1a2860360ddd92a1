"""The compiled order-flow core (:mod:`tapewatch.compiled`) against its pure-Python source, the reference: on random
tapes of quotes and books, both give the same chunks, the same late records and the same state, byte for byte
(``tests/flow_tapes.py`` runs a tape; a second process with ``TAPEWATCH_PURE=1`` runs the reference)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapewatch import compiled
from tapewatch.records import MAX_PRICE, MAX_SIZE, MIN_PRICE, MIN_SIZE
from tests.flow_tapes import run_tape

ROOT = Path(__file__).resolve().parents[2]
FLOW_CORE = "tapewatch.detectors.flow.state"


class Reference:
    """The pure-Python process: a tape in, its bytes out."""

    def __init__(self) -> None:
        env = {**os.environ, compiled.PURE_ENV: "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.flow_tapes"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin, self.stdout = self.process.stdin, self.process.stdout
        self.modules = orjson.loads(self.stdout.readline())

    def run(self, tape: dict[str, Any]) -> bytes:
        self.stdin.write(orjson.dumps(tape).decode() + "\n")
        self.stdin.flush()
        return bytes.fromhex(self.stdout.readline().strip())

    def close(self) -> None:
        self.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def reference() -> Iterator[Reference]:
    if FLOW_CORE not in compiled.active():
        pytest.skip("the flow core is not compiled from these sources here (`make compiled` compiles it)")
    process = Reference()
    assert process.modules == []  # the reference is pure Python
    yield process
    process.close()


# anything the record contract lets through (tapewatch.records): a grid around 100 and every float in bounds
PRICES = st.one_of(st.integers(9_900, 10_100).map(lambda k: k / 100), st.floats(MIN_PRICE, MAX_PRICE))
SIZES = st.one_of(st.sampled_from([0.0, 1.0, 100.0, 500.0]), st.floats(MIN_SIZE, MAX_SIZE))


@st.composite
def quotes(draw: st.DrawFn, ts: int) -> list[Any]:
    price = draw(st.none() | PRICES)
    bid = draw(st.none() | PRICES)
    ask = None if bid is None else draw(st.none() | st.floats(bid, min(bid * 1.01, MAX_PRICE)))
    return ["q", ts, price, draw(SIZES), draw(st.sampled_from(["B", "S", None])), bid, ask]


@st.composite
def books(draw: st.DrawFn, ts: int) -> list[Any]:
    best = draw(st.integers(9_900, 10_100))
    side = st.lists(st.tuples(st.integers(0, 6), SIZES), max_size=5)
    bids = [[(best - step) / 100, size] for step, size in draw(side)]
    asks = [[(best + 1 + step) / 100, size] for step, size in draw(side)]
    return ["b", ts, bids, asks]


@st.composite
def tapes(draw: st.DrawFn) -> dict[str, Any]:
    chunk_ms = draw(st.sampled_from([200, 500, 1_000]))
    baseline = draw(st.integers(2, 12))
    config = {
        "chunk_ms": chunk_ms,
        "long_chunks": draw(st.integers(1, 4)),
        "baseline_chunks": baseline,
        "baseline_min_chunks": draw(st.integers(1, baseline)),
        "grace_ms": draw(st.integers(0, 2 * chunk_ms)),
        "idle_ms": draw(st.integers(1, 5 * chunk_ms)),
        "rush_min_trades": draw(st.integers(2, 4)),
        "mirror_ms": draw(st.integers(0, 3 * chunk_ms)),
    }
    ts, records = 0, []
    for _ in range(draw(st.integers(1, 250))):
        ts = max(0, ts + draw(st.sampled_from([0, 0, 1, 7, 60, 250, 900, -150, -1_200])))
        records.append(draw(quotes(ts) if draw(st.booleans()) else books(ts)))
    return {
        "config": config,
        "books": draw(st.booleans()),
        "prints": draw(st.sampled_from(["trades", "snapshots", None])),
        "records": records,
        "restore_at": draw(st.integers(0, len(records))),
    }


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(tape=tapes())
def test_the_compiled_flow_core_gives_the_reference_bytes(reference: Reference, tape: dict[str, Any]) -> None:
    assert run_tape(tape) == reference.run(tape)


def test_the_tapes_reach_every_outcome(reference: Reference) -> None:
    """The comparison means something only if the tapes close chunks with z-scores, reject late records and carry
    layers: one fixed tape shows the runner reports all of them."""
    records: list[Any] = []
    for second in range(40):
        ts = second * 1_000
        bids = [[100.0, 50.0], [99.99, 5_000.0 if second % 7 else 0.0]]
        trade = ["q", ts + 10, 100.01, float(1 + second % 3), None, 100.0, 100.01]  # unsided: inferred
        records += [["b", ts, bids, [[100.01, 60.0]]], trade]
    records.append(["q", 0, 100.0, 1.0, "S", None, None])  # late
    tape = {
        "config": {"chunk_ms": 1_000, "long_chunks": 2, "baseline_chunks": 10, "baseline_min_chunks": 3, "grace_ms": 0},
        "books": True,
        "prints": "trades",
        "records": records,
        "restore_at": 41,
    }
    out = orjson.loads(run_tape(tape))
    assert out[-2] and any(o and o[0] == "late" for o in out)
    values = [chunk[3] for o in out if o and isinstance(o[0], list) for chunk in o]
    assert any(v["cancel_l25"] for v in values) and any(v["volume_z"] is not None for v in values)
    assert run_tape(tape) == reference.run(tape)
