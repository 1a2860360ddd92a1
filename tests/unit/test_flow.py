"""Order-flow features: hand-checked values, watermark and lateness, and the properties that make stream ==
batch (fold equality, interleaving independence, state round trips, late records change nothing)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapewatch.detectors.flow import (
    FLOW_FEATURE_NAMES,
    FLOW_FEATURE_SET_VERSION,
    PRINT_LEVEL_FEATURE_NAMES,
    FlowChunk,
    FlowConfig,
    FlowState,
    LateRecordError,
    compute_flow_frame,
    iter_flow,
)
from tapewatch.detectors.layers import LayerTracker
from tapewatch.generators.simulator import SimulationConfig, generate
from tapewatch.records import BOOK_DEPTH, AlertKind, Book, Cadence, Quote

SYMBOL = "AAA"
T0 = 1_700_000_000_000  # a multiple of every chunk length used here

QuoteRow = tuple[int, float | None, float, str | None, float | None, float | None]
BookRow = tuple[int, tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]


@dataclass
class Tape:
    """One symbol's quote stream and book stream, each in its own (stream) order."""

    quotes: list[QuoteRow]
    books: list[BookRow]

    def quote(self, i: int) -> Quote:
        ts, price, size, side, bid, ask = self.quotes[i]
        return Quote(symbol=SYMBOL, venue="sim", ts=ts, price=price, size=size, side=side, bid=bid, ask=ask)

    def book(self, j: int) -> Book:
        ts, bids, asks = self.books[j]
        return Book(symbol=SYMBOL, venue="sim", ts=ts, bids=list(bids), asks=list(asks))

    def quotes_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.quotes or None, columns=["ts", "price", "size", "side", "bid", "ask"]).assign(
            symbol=SYMBOL
        )

    def books_frame(self) -> pd.DataFrame:
        rows = []
        for ts, bids, asks in self.books:
            row: dict[str, object] = {"symbol": SYMBOL, "ts": ts}
            for name, levels in (("bid", bids), ("ask", asks)):
                for i in range(BOOK_DEPTH):
                    row[f"{name}{i + 1}"] = levels[i][0] if i < len(levels) else np.nan
                    row[f"{name}sz{i + 1}"] = levels[i][1] if i < len(levels) else np.nan
            rows.append(row)
        columns = ["symbol", "ts"] + [
            f"{side}{kind}{i}" for side in ("bid", "ask") for kind in ("", "sz") for i in range(1, BOOK_DEPTH + 1)
        ]
        return pd.DataFrame(rows, columns=columns)

    def merged(self) -> list[tuple[str, int]]:
        """The batch merge order: by ts, a quote first at equal ts, each stream in its own order."""
        order: list[tuple[str, int]] = []
        i = j = 0
        while i < len(self.quotes) or j < len(self.books):
            if j >= len(self.books) or (i < len(self.quotes) and self.quotes[i][0] <= self.books[j][0]):
                order.append(("q", i))
                i += 1
            else:
                order.append(("b", j))
                j += 1
        return order


def apply(fs: FlowState, tape: Tape, step: tuple[str, int]) -> list[FlowChunk]:
    kind, i = step
    return fs.on_quote(tape.quote(i)) if kind == "q" else fs.on_book(tape.book(i))


def run(tape: Tape, order: Sequence[tuple[str, int]], config: FlowConfig) -> list[FlowChunk]:
    fs = FlowState(SYMBOL, config)
    out: list[FlowChunk] = []
    for step in order:
        out.extend(apply(fs, tape, step))
    return out + fs.flush()


def frame_rows(frame: pd.DataFrame) -> list[tuple[int, dict[str, float | None]]]:
    return [
        (int(row["ts"]), {name: None if math.isnan(row[name]) else float(row[name]) for name in FLOW_FEATURE_NAMES})
        for _, row in frame.iterrows()
    ]


# -- strategies -------------------------------------------------------------------------------------------
CHUNK = 100
SMALL = FlowConfig(
    chunk_ms=CHUNK, long_chunks=3, baseline_chunks=8, baseline_min_chunks=2, grace_ms=40, idle_ms=10**9,
    rush_min_trades=2, mirror_ms=60,
)  # fmt: skip
PRICES = [10.0 + 0.5 * k for k in range(8)]


@st.composite
def tapes(draw: st.DrawFn, max_records: int = 40) -> Tape:
    """Two streams over ~40 chunks: steps of 0–1500 ms (gaps longer than the baseline happen), backward
    jitter within the grace, trades on a price grid shared with the books, repeated sizes, bursts."""

    def times(n: int) -> list[int]:
        ts, out = T0, []
        for _ in range(n):
            ts += draw(st.sampled_from([0, 0, 1, 7, 30, 60, 110, 250, 1500]))
            jitter = draw(st.sampled_from([0, 0, 0, 10, SMALL.grace_ms - 1]))
            out.append(max(T0, ts - jitter))
        return out

    quotes: list[QuoteRow] = []
    for ts in times(draw(st.integers(0, max_records))):
        trade = draw(st.booleans())
        price = draw(st.sampled_from(PRICES)) if trade else None
        size = float(draw(st.sampled_from([0, 1, 2, 2, 5, 100]))) if trade else 0.0
        side = draw(st.sampled_from(["B", "S", None])) if trade else None
        bid = draw(st.sampled_from([None, 10.0, 11.0]))
        ask = None if bid is None else bid + draw(st.sampled_from([0.5, 1.0]))
        quotes.append((ts, price, size, side, bid, ask))
    books: list[BookRow] = []
    for ts in times(draw(st.integers(0, max_records // 2))):
        best = draw(st.integers(2, 5))
        n_bids = draw(st.integers(0, BOOK_DEPTH))
        n_asks = draw(st.integers(0, BOOK_DEPTH))
        bids = tuple((PRICES[best] - 0.5 * k, float(draw(st.integers(0, 30)))) for k in range(min(n_bids, best + 1)))
        asks = tuple((PRICES[best] + 0.5 * (k + 1), float(draw(st.integers(0, 30)))) for k in range(n_asks))
        books.append((ts, bids, asks))
    return Tape(quotes, books)


@st.composite
def interleavings(draw: st.DrawFn, tape: Tape) -> list[tuple[str, int]]:
    """Any merge of the two streams that keeps each stream's own order."""
    flags = draw(st.permutations([True] * len(tape.quotes) + [False] * len(tape.books)))
    order: list[tuple[str, int]] = []
    i = j = 0
    for is_quote in flags:
        if is_quote:
            order.append(("q", i))
            i += 1
        else:
            order.append(("b", j))
            j += 1
    return order


PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- properties ---------------------------------------------------------------------------------------------
@PROPERTY
@given(tape=tapes())
def test_incremental_records_equal_the_batch_frame(tape: Tape) -> None:
    stream = run(tape, tape.merged(), SMALL)
    frame = compute_flow_frame(tape.quotes_frame(), tape.books_frame(), SMALL)
    assert list(frame.columns) == ["symbol", "ts", *FLOW_FEATURE_NAMES]
    assert frame_rows(frame) == [(c.ts, c.values) for c in stream]
    assert [c.ts for c in stream] == sorted({c.ts for c in stream})  # one record per chunk, in order
    for chunk in stream:
        assert all(v is None or math.isfinite(v) for v in chunk.values.values())


@PROPERTY
@given(data=st.data(), tape=tapes())
def test_output_does_not_depend_on_how_the_two_streams_interleave(data: st.DataObject, tape: Tape) -> None:
    reference = run(tape, tape.merged(), SMALL)
    order = data.draw(interleavings(tape))
    assert run(tape, order, SMALL) == reference


@PROPERTY
@given(data=st.data(), tape=tapes())
def test_state_round_trip_at_any_point_continues_identically(data: st.DataObject, tape: Tape) -> None:
    order = data.draw(interleavings(tape))
    cut = data.draw(st.integers(0, len(order)))
    reference = run(tape, order, SMALL)
    fs = FlowState(SYMBOL, SMALL)
    out: list[FlowChunk] = []
    for step in order[:cut]:
        out.extend(apply(fs, tape, step))
    state = json.loads(json.dumps(fs.to_state()))
    restored = FlowState.from_state(state, SMALL)
    assert restored.to_state() == state
    for step in order[cut:]:
        out.extend(apply(restored, tape, step))
    assert out + restored.flush() == reference


@PROPERTY
@given(data=st.data(), tape=tapes())
def test_late_records_raise_and_change_nothing(data: st.DataObject, tape: Tape) -> None:
    order = tape.merged()
    cut = data.draw(st.integers(0, len(order)))
    fs = FlowState(SYMBOL, SMALL)
    for step in order[:cut]:
        apply(fs, tape, step)
    if fs.closed_below * CHUNK <= T0:
        return  # nothing closed yet
    late_ts = data.draw(st.integers(T0, fs.closed_below * CHUNK - 1))
    before = fs.to_state()
    with pytest.raises(LateRecordError) as quote_err:
        fs.on_quote_values(late_ts, 10.0, 1.0, "B", 10.0, 10.5)
    with pytest.raises(LateRecordError):
        fs.on_book_values(late_ts, [(10.0, 1.0)], [(10.5, 2.0)])
    assert fs.to_state() == before
    assert quote_err.value.ts == late_ts and quote_err.value.kind == "quote"
    # the error names the closed chunk the record belonged to
    assert quote_err.value.chunk_start <= late_ts < quote_err.value.chunk_start + CHUNK


# -- watermark, idleness, lateness ---------------------------------------------------------------------------
def test_a_chunk_closes_when_both_streams_pass_its_end_plus_grace() -> None:
    cfg = FlowConfig(chunk_ms=1000, grace_ms=200, idle_ms=60_000)
    fs = FlowState(SYMBOL, cfg)
    assert fs.on_quote_values(T0 + 10, 10.0, 1.0) == []
    assert fs.on_quote_values(T0 + 5000, 10.0, 1.0) == []  # books hold the watermark back
    assert fs.on_book_values(T0 + 1100, [(10.0, 5.0)], [(10.5, 5.0)]) == []  # 1100 < 1000 + 200
    closed = fs.on_book_values(T0 + 1200, [(10.0, 5.0)], [(10.5, 5.0)])
    assert [(c.start, c.end, c.ts) for c in closed] == [(T0, T0 + 1000, T0 + 1000)]
    assert closed[0].values["trades"] == 1.0  # the 5000 trade is in its own, still open, chunk
    # lateness is judged against the record's own stream: the quotes are at 5000, so a quote of the open
    # chunk 1000 is more than the grace behind them and late, whatever the books do (the interleaving of the
    # two streams never decides)
    with pytest.raises(LateRecordError) as err:
        fs.on_quote_values(T0 + 1050, 10.0, 1.0)
    assert err.value.kind == "quote"
    fs.on_book_values(T0 + 1150, [(10.0, 5.0)], [(10.5, 5.0)])  # the books' own stream is at 1200
    rest = fs.flush()
    assert [c.start for c in rest] == [T0 + 1000, T0 + 5000]
    assert rest[0].values["trades"] == 0.0 and rest[0].values["book_updates"] == 3.0


def test_every_interleaving_of_the_two_streams_gives_the_same_chunks() -> None:
    """The two-worker promise in miniature: quotes and books merged in any order (each stream keeping its own
    order) give identical chunks, late records included."""
    cfg = FlowConfig(chunk_ms=1000, grace_ms=300, baseline_chunks=4, baseline_min_chunks=2)
    rng = np.random.default_rng(7)
    quotes = [(T0 + int(t), 10.0 + float(rng.normal()), 1.0) for t in np.sort(rng.integers(0, 20_000, 120))]
    quotes[60] = (quotes[60][0] - 2_500, 11.0, 3.0)  # late against its own stream
    books = [(T0 + t, [(9.9, float(rng.integers(1, 9)))], [(10.1, 2.0)]) for t in range(0, 20_000, 700)]
    outputs = set()
    for seed in range(12):
        order = np.random.default_rng(seed).permutation([0] * len(quotes) + [1] * len(books))
        fs = FlowState(SYMBOL, cfg)
        qi = bi = 0
        chunks = []
        for which in order:
            try:
                if which == 0:
                    qi += 1
                    chunks += fs.on_quote_values(*quotes[qi - 1])
                else:
                    bi += 1
                    chunks += fs.on_book_values(*books[bi - 1])
            except LateRecordError:
                pass
        outputs.add(repr([(c.start, sorted(c.values.items())) for c in chunks]))
    assert len(outputs) == 1
    assert "trades" in next(iter(outputs))


def test_bookless_feed_is_driven_by_its_quotes() -> None:
    cfg = FlowConfig(chunk_ms=1000, grace_ms=0)
    fs = FlowState(SYMBOL, cfg, books=False)
    assert fs.on_quote_values(T0, 10.0, 1.0) == []
    closed = fs.on_quote_values(T0 + 1000, 10.0, 1.0)
    assert [c.start for c in closed] == [T0]  # the watermark is the quotes'
    with pytest.raises(LateRecordError) as err:
        fs.on_book_values(T0 + 500, [(10.0, 1.0)], [(10.5, 1.0)])
    assert err.value.kind == "book"
    # a stray book of a chunk still open counts
    fs.on_book_values(T0 + 1500, [(10.0, 1.0)], [(10.5, 1.0)])
    closed = fs.on_quote_values(T0 + 2000, 10.0, 1.0)
    assert closed[0].values["book_updates"] == 1.0
    # the same quotes with a feed that sends books: nothing closes until the books pass too
    waiting = FlowState(SYMBOL, cfg, books=True)
    assert waiting.on_quote_values(T0, 10.0, 1.0) == []
    assert waiting.on_quote_values(T0 + 9000, 10.0, 1.0) == []


def test_a_book_feed_waits_for_its_quotes() -> None:
    fs = FlowState(SYMBOL, FlowConfig(chunk_ms=1000, grace_ms=0))
    fs.on_book_values(T0, [(10.0, 1.0)], [(10.5, 1.0)])
    assert fs.on_book_values(T0 + 60_000, [(10.0, 1.0)], [(10.5, 1.0)]) == []
    assert [c.start for c in fs.on_quote_values(T0 + 60_000, None)] == [T0]


def test_empty_chunks_are_not_emitted_and_late_error_names_the_chunk() -> None:
    fs = FlowState(SYMBOL, FlowConfig(chunk_ms=1000, grace_ms=0), books=False)
    fs.on_quote_values(T0 + 10, 10.0, 1.0)
    closed = fs.on_quote_values(T0 + 9500, 10.0, 1.0)
    assert [c.start for c in closed] == [T0]
    with pytest.raises(LateRecordError, match=r"late quote: AAA ts=1700000004000"):
        fs.on_quote_values(T0 + 4000, None)


def test_config_is_validated() -> None:
    for bad in (
        {"chunk_ms": 0},
        {"long_chunks": 0},
        {"baseline_chunks": 1},
        {"baseline_min_chunks": 0},
        {"baseline_min_chunks": 721},
        {"grace_ms": -1},
        {"idle_ms": 0},
        {"rush_min_trades": 1},
        {"mirror_ms": -1},
        {"chunk_ms": 5000.0},
        {"grace_ms": True},
    ):
        with pytest.raises(ValueError, match="FlowConfig"):
            FlowConfig(**bad)


def test_state_refuses_another_chunking_or_version() -> None:
    fs = FlowState(SYMBOL)
    fs.on_quote_values(T0, 10.0, 1.0)
    state = fs.to_state()
    FlowState.from_state(state, FlowConfig(grace_ms=500, idle_ms=5))  # grace/idle may change
    with pytest.raises(ValueError, match="config"):
        FlowState.from_state(state, FlowConfig(chunk_ms=1000))
    with pytest.raises(ValueError, match="not supported"):
        FlowState.from_state({**state, "v": 0})


def _as_version_1(state: dict[str, Any]) -> dict[str, Any]:
    """What a flow-v1 worker wrote for the same moment: no flow-v2/v3 fields, a 5-column baseline."""
    from tapewatch.detectors.flow.chunk import CHUNK_FIELDS
    from tapewatch.detectors.flow.versions import _V2_CHUNK_FIELDS, _V3_CHUNK_FIELDS

    keep = [i for i, name in enumerate(CHUNK_FIELDS) if name not in _V2_CHUNK_FIELDS | _V3_CHUNK_FIELDS]

    def chunk(data: list[object]) -> list[object]:
        return [data[i] for i in keep]

    old: dict[str, Any] = json.loads(json.dumps(state))
    old.update(v=1, features="flow-v1", cfg=old["cfg"][:5], last=old["last"][:4], base=old["base"][:5])
    old["open"] = [chunk(c) for c in old["open"]]
    old["recent"] = [chunk(c) for c in old["recent"]]
    return old


def _as_version_2(state: dict[str, Any]) -> dict[str, Any]:
    """What a flow-v2 worker wrote for the same moment: no inferred-side counts, no side inference state, an
    8-column baseline."""
    from tapewatch.detectors.flow.chunk import CHUNK_FIELDS
    from tapewatch.detectors.flow.versions import _V3_CHUNK_FIELDS

    keep = [i for i, name in enumerate(CHUNK_FIELDS) if name not in _V3_CHUNK_FIELDS]
    old: dict[str, Any] = json.loads(json.dumps(state))
    old.update(v=2, features="flow-v2", last=old["last"][:6], base=old["base"][:8])
    old["open"] = [[c[i] for i in keep] for c in old["open"]]
    old["recent"] = [[c[i] for i in keep] for c in old["recent"]]
    return old


def test_a_version_2_state_resumes_and_warms_the_baseline_up_again() -> None:
    cfg = FlowConfig(chunk_ms=1000, long_chunks=2, baseline_chunks=20, baseline_min_chunks=4, grace_ms=0)
    ticks = [(T0 + 300 * k, 10.0 + (k % 3) * 0.5, float(1 + k % 4), "BS"[k % 2]) for k in range(200)]
    reference = FlowState(SYMBOL, cfg, books=False)
    for ts, price, size, side in ticks[:100]:
        reference.on_quote_values(ts, price, size, side)
    restored = FlowState.from_state(_as_version_2(reference.to_state()), cfg, books=False)
    expected = [c for t in ticks[100:] for c in reference.on_quote_values(*t)]
    got = [c for t in ticks[100:] for c in restored.on_quote_values(*t)]
    assert [c.ts for c in got] == [c.ts for c in expected] and len(got) > 10
    baseline_derived = ("_z", "level_typical", "level_max_rel", "ret_sigma_bps", "_p95", "_excess")
    plain = [n for n in FLOW_FEATURE_NAMES if not any(part in n for part in baseline_derived)]
    assert [[c.values[n] for n in plain] for c in got] == [[c.values[n] for n in plain] for c in expected]
    assert got[0].values["trades_z"] is None  # the baseline warms up again …
    assert got[-1].values["trades_z"] == expected[-1].values["trades_z"]  # … and then agrees


def test_unsided_trades_get_inferred_sides_marked_as_such() -> None:
    cfg = FlowConfig(chunk_ms=1000, long_chunks=1, grace_ms=0)
    fs = FlowState(SYMBOL, cfg, books=False)
    fs.on_quote_values(T0, 10.1, 5.0, None, 10.0, 10.1)  # at the ask: a buy
    fs.on_quote_values(T0 + 10, 10.0, 3.0, None, 10.0, 10.1)  # at the bid: a sell
    fs.on_quote_values(T0 + 20, 10.0, 2.0, "S")  # sided by the feed
    (chunk,) = fs.on_quote_values(T0 + 1000, 10.0, 1.0, "B")
    assert chunk.values["buy_volume"] == 5.0 and chunk.values["sell_volume"] == 5.0
    assert chunk.values["inferred_share_long"] == 2 / 3


def test_a_snapshot_feed_leaves_what_only_individual_prints_show_null() -> None:
    """One print per snapshot: no rush, no order runs, no alternation — null, not a zero that looks like calm.
    Volume, price and the inferred side still come through, and the same tape read as trades keeps them all."""
    cfg = FlowConfig(chunk_ms=1000, long_chunks=2, grace_ms=0)
    tape = [(0, 10.1, 5.0), (0, 10.1, 5.0), (0, 10.1, 5.0), (400, 10.0, 3.0), (1000, 10.1, 4.0), (2000, 10.0, 1.0)]
    out = {}
    for prints in ("trades", "snapshots"):
        fs = FlowState(SYMBOL, cfg, books=False, prints=prints)
        out[prints] = [
            c.values for dt, price, size in tape for c in fs.on_quote_values(T0 + dt, price, size, None, 10.0, 10.1)
        ]
    trades, snapshots = out["trades"], out["snapshots"]
    assert len(trades) == len(snapshots) == 2
    assert trades[0]["rush_max"] == 3.0 and trades[0]["rush_orders"] == 1.0 and trades[0]["sell_orders"] == 1.0
    assert {"rush_max", "buy_orders", "mirror_z_long", "order_imbalance_z_long"} <= PRINT_LEVEL_FEATURE_NAMES
    assert "trades" not in PRINT_LEVEL_FEATURE_NAMES and "buy_volume" not in PRINT_LEVEL_FEATURE_NAMES
    assert snapshots[0]["rush_max"] is None and snapshots[0]["trades"] == 4.0
    for t, s in zip(trades, snapshots, strict=True):
        assert all(s[name] is None for name in PRINT_LEVEL_FEATURE_NAMES)
        assert {k: x for k, x in s.items() if k not in PRINT_LEVEL_FEATURE_NAMES} == {
            k: x for k, x in t.items() if k not in PRINT_LEVEL_FEATURE_NAMES
        }
    assert snapshots[0]["volume"] == 18.0 and snapshots[0]["buy_volume"] == 15.0


def test_a_version_1_state_resumes_and_warms_the_baseline_up_again() -> None:
    cfg = FlowConfig(chunk_ms=1000, long_chunks=2, baseline_chunks=20, baseline_min_chunks=4, grace_ms=0, idle_ms=1)
    ticks = [(T0 + 300 * k, 10.0 + (k % 3) * 0.5, float(1 + k % 4), "BS"[k % 2]) for k in range(200)]
    reference = FlowState(SYMBOL, cfg, books=False)
    upgraded = FlowState(SYMBOL, cfg, books=False)
    for ts, price, size, side in ticks[:100]:
        reference.on_quote_values(ts, price, size, side)
        upgraded.on_quote_values(ts, price, size, side)
    restored = FlowState.from_state(_as_version_1(upgraded.to_state()), cfg, books=False)
    expected: list[FlowChunk] = []
    got: list[FlowChunk] = []
    for ts, price, size, side in ticks[100:]:
        expected += reference.on_quote_values(ts, price, size, side)
        got += restored.on_quote_values(ts, price, size, side)
    assert [c.ts for c in got] == [c.ts for c in expected] and len(got) > 10
    for before, after in zip(expected, got, strict=True):
        for name in ("trades", "volume", "ret_bps", "range_bps", "alternation", "trades_long"):
            assert after.values[name] == before.values[name], name
    # the baseline restarts: no z-score during the warm-up, then they come back
    assert all(c.values["trades_z"] is None and c.values["buy_orders_z_long"] is None for c in got[:4])
    assert got[-1].values["trades_z"] is not None and got[-1].values["buy_orders_z_long"] is not None
    with pytest.raises(ValueError, match="config"):
        FlowState.from_state(_as_version_1(upgraded.to_state()), FlowConfig())


# -- hand-checked values ------------------------------------------------------------------------------------
def test_hand_checked_chunk() -> None:
    cfg = FlowConfig(chunk_ms=1000, grace_ms=0, idle_ms=60_000, rush_min_trades=3)
    fs = FlowState(SYMBOL, cfg)
    fs.on_book_values(T0, [(10.0, 100.0), (9.9, 50.0)], [(10.1, 80.0), (10.2, 60.0)])
    for _ in range(3):  # one buy order filling three resting orders in one millisecond
        fs.on_quote_values(T0 + 100, 10.1, 10.0, "B", 10.0, 10.1)
    fs.on_quote_values(T0 + 200, 10.0, 20.0, "S", 10.0, 10.1)
    # bid 10.0 lost 40 (20 traded: 20 cancelled); ask 10.1 lost 30 (all traded); 100 joined the ask at 10.2
    fs.on_book_values(T0 + 500, [(10.0, 60.0), (9.9, 50.0)], [(10.1, 50.0), (10.2, 160.0)])
    fs.on_quote_values(T0 + 1000, None)
    (chunk,) = fs.on_book_values(T0 + 1000, [(10.0, 60.0)], [(10.1, 50.0)])
    v = chunk.values
    assert (chunk.start, chunk.end) == (T0, T0 + 1000)
    assert v["trades"] == 4 and v["volume"] == 50.0
    assert v["size_mean"] == 12.5
    assert v["size_std"] == pytest.approx(math.sqrt(18.75))
    assert v["size_repeat"] == 0.75
    assert (v["rush_orders"], v["rush_trades"]) == (1.0, 3.0)
    assert (v["buy_volume"], v["sell_volume"]) == (30.0, 20.0)
    assert v["aggr_imbalance"] == pytest.approx(0.2)
    assert v["alternation"] == pytest.approx(1 / 3)  # B B B S: 3 pairs, 1 switch
    assert v["ret_bps"] == pytest.approx(1e4 * math.log(10.0 / 10.1))  # no earlier trade: vs the first
    assert v["range_bps"] == pytest.approx(1e4 * math.log(10.1 / 10.0))
    assert v["spread_bps"] == pytest.approx(1e4 * 0.1 / 10.05)
    assert v["book_imb_l1"] == pytest.approx(((100 - 80) / 180 + (60 - 50) / 110) / 2)
    assert v["book_imb_l5"] == pytest.approx(((150 - 140) / 290 + (110 - 210) / 320) / 2)
    assert v["book_updates"] == 2.0
    assert (v["depth_added"], v["depth_added_l1"], v["depth_added_l25"]) == (100.0, 0.0, 100.0)
    assert (v["depth_removed"], v["depth_removed_l1"], v["depth_removed_l25"]) == (70.0, 70.0, 0.0)
    assert (v["cancel"], v["cancel_l1"], v["cancel_l25"]) == (20.0, 20.0, 0.0)
    assert v["level_typical"] is None and v["level_max_rel"] is None  # no baseline yet
    assert v["trades_z"] is None
    assert v["trades_long"] == 4.0
    assert v["trades_std_long"] == pytest.approx(math.sqrt((16 / 5) - (4 / 5) ** 2))
    assert v["size_mode_share_long"] == 0.75
    assert v["size_repeat_vol_long"] == pytest.approx(30 / 50)
    assert v["size_mode_vol_share_long"] == pytest.approx(30 / 50)
    assert v["rush_max"] == v["rush_max_long"] == 3.0
    # the three fills are one buy order; the sell (another size) is no mirror
    assert (v["buy_orders"], v["sell_orders"]) == (1.0, 1.0)
    assert v["order_imbalance_long"] == 0.0 and v["order_imbalance_z_long"] == 0.0
    assert (v["mirror_trades"], v["mirror_volume"], v["mirror_vol_share_long"]) == (0.0, 0.0, 0.0)
    assert v["buy_orders_z_long"] is None and v["mirror_z_long"] is None and v["rush_max_z_long"] is None
    record = chunk.to_features("sim")
    assert record.cadence == Cadence.FAST and record.version == FLOW_FEATURE_SET_VERSION
    assert record.ts == T0 + 1000


def test_mirror_trades_are_equal_prints_on_alternating_sides() -> None:
    cfg = FlowConfig(chunk_ms=10_000, grace_ms=0, idle_ms=1, mirror_ms=2000)
    fs = FlowState(SYMBOL, cfg, books=False)
    tape = [
        (0, 50.0, "B"),
        (900, 50.0, "S"),  # mirror
        (1800, 50.0, "B"),  # mirror
        (2700, 50.0, "B"),  # same side: no
        (3600, 50.0, "S"),  # mirror
        (6000, 50.0, "B"),  # 2.4 s later than the previous print: no
        (6500, 7.0, "S"),  # another size: no
        (7000, 7.0, None),  # unknown side: no, and it breaks the chain
        (7500, 7.0, "B"),  # no
        (8000, 7.0, "S"),  # mirror
    ]
    for dt, size, side in tape:
        fs.on_quote_values(T0 + dt, 10.0, size, side)
    (chunk,) = fs.on_quote_values(T0 + 10_000, None)
    v = chunk.values
    assert v["mirror_trades"] == 4.0 and v["mirror_volume"] == 157.0
    assert v["volume"] == 6 * 50.0 + 4 * 7.0
    assert v["mirror_vol_share_long"] == pytest.approx(157.0 / 328.0)
    # orders: every print is its own order (distinct ms); the unknown side is none
    assert (v["buy_orders"], v["sell_orders"]) == (5.0, 4.0)
    assert v["order_imbalance_z_long"] == pytest.approx(1 / 3)


def test_baseline_relative_scores_of_orders_rushes_and_mirrors() -> None:
    cfg = FlowConfig(
        chunk_ms=1000, long_chunks=2, baseline_chunks=4, baseline_min_chunks=2, grace_ms=0, idle_ms=1,
        rush_min_trades=2, mirror_ms=1000,
    )  # fmt: skip
    fs = FlowState(SYMBOL, cfg, books=False)
    out: list[FlowChunk] = []
    # chunk 0: one buy order of 2 fills (rush 2); chunk 1 empty; chunk 2: a sell; chunk 3: 3 buys + a mirror
    out += fs.on_quote_values(T0 + 10, 10.0, 1.0, "B")
    out += fs.on_quote_values(T0 + 10, 10.0, 1.0, "B")
    out += fs.on_quote_values(T0 + 2010, 10.0, 4.0, "S")
    out += fs.on_quote_values(T0 + 3010, 10.0, 4.0, "B")  # mirrors the sell: same size, 1 s later
    out += fs.on_quote_values(T0 + 3020, 10.0, 1.0, "B")
    out += fs.on_quote_values(T0 + 3030, 10.0, 1.0, "B")
    out += fs.on_quote_values(T0 + 3030, 10.0, 1.0, "B")  # same ms, same side: the same order
    out += fs.on_quote_values(T0 + 4000, None)
    assert [c.start - T0 for c in out] == [0, 2000, 3000]
    third = out[-1].values
    # baseline of chunk 3: chunks 0, 1, 2 (empty = 0); long window: chunks 2, 3 (L = 2)
    # buy orders (1, 0, 0): mean 1/3, var 2/9; long = 0 + 3
    assert third["buy_orders"] == 3.0 and third["sell_orders"] == 0.0
    assert third["buy_orders_z_long"] == pytest.approx((3 - 2 / 3) / (math.sqrt(2) * math.sqrt(2 / 9)))
    # rush max (2, 0, 1): mean 1, var 2/3; long max = 2 (chunk 3's two fills at 3030)
    assert third["rush_max_long"] == 2.0
    assert third["rush_max_z_long"] == pytest.approx((2 - 1) / math.sqrt(2 / 3))
    # mirror volume (0, 0, 0): a flat baseline gives no z-score
    assert third["mirror_volume"] == 4.0 and third["mirror_z_long"] is None
    assert third["order_imbalance_long"] == pytest.approx((3 - 1) / 4)
    assert third["order_imbalance_z_long"] == pytest.approx(2 / 2)


def test_mirror_trades_long_and_the_mirror_share_above_the_symbols_own() -> None:
    cfg = FlowConfig(
        chunk_ms=1000, long_chunks=2, baseline_chunks=4, baseline_min_chunks=2, grace_ms=0, idle_ms=1, mirror_ms=1000
    )
    fs = FlowState(SYMBOL, cfg, books=False)
    out: list[FlowChunk] = []
    tape = [
        (10, 4.0, "B"),
        (500, 4.0, "S"),  # chunk 0: a mirror of 4 (volume 8)
        (1010, 2.0, "B"),
        (1500, 2.0, "B"),  # chunk 1: same side, no mirror (volume 4)
        (2010, 3.0, "S"),
        (2500, 3.0, "B"),  # chunk 2: a mirror of 3 (volume 6)
        (3010, 3.0, "S"),
        (3500, 3.0, "B"),  # chunk 3: two mirrors of 3 (volume 6)
    ]
    for dt, size, side in tape:
        out += fs.on_quote_values(T0 + dt, 10.0, size, side)
    out += fs.on_quote_values(T0 + 4000, None)
    last = out[-1].values
    # long window: chunks 2 and 3 (1 + 2 mirror trades, 9 of 12 shares); baseline: chunks 0-2 (7 of 18 shares)
    assert last["mirror_trades_long"] == 3.0
    assert last["mirror_vol_share_long"] == pytest.approx(9 / 12)
    assert last["mirror_excess_share_long"] == pytest.approx(9 / 12 - 7 / 18)
    # too little baseline before chunk 2 (span 1 < 2): no excess, but the count is there
    early = out[1].values
    assert early["mirror_excess_share_long"] is None and early["mirror_trades_long"] == 1.0


def test_visible_depth_only_and_layers_that_vanish_are_level_2_5_cancels() -> None:
    cfg = FlowConfig(chunk_ms=1000, grace_ms=0, idle_ms=60_000)
    fs = FlowState(SYMBOL, cfg)
    bids = [(round(10.0 - 0.1 * k, 2), 10.0) for k in range(5)]
    asks = [(round(10.1 + 0.1 * k, 2), 10.0) for k in range(5)]
    fs.on_book_values(T0, bids, asks)
    # the quote moves up a tick: 10.1 becomes the best bid, 9.6 scrolls out of view (not a removal)
    up_bids = [(10.1, 5.0), *bids[:4]]
    up_asks = [(round(10.2 + 0.1 * k, 2), 10.0) for k in range(5)]
    fs.on_book_values(T0 + 100, up_bids, up_asks)
    # layers of 500 at bid levels 2-3, then they vanish without trading
    layered = [up_bids[0], (10.0, 510.0), (9.9, 510.0), *up_bids[3:]]
    fs.on_book_values(T0 + 200, layered, up_asks)
    fs.on_book_values(T0 + 300, up_bids, up_asks)
    fs.on_quote_values(T0 + 1000, None)
    (chunk,) = fs.on_book_values(T0 + 1000, up_bids, up_asks)
    v = chunk.values
    # 10.1 on the ask (10 at level 1) went away; 10.1 on the bid (5) appeared at level 1; 10.6 was revealed
    assert v["depth_removed_l1"] == 10.0
    assert v["depth_added_l1"] == 5.0
    assert v["depth_added_l25"] == 1000.0
    assert v["depth_removed_l25"] == 1000.0
    assert v["cancel_l25"] == 1000.0 and v["cancel_l1"] == 10.0


def test_zscores_count_empty_chunks_as_zeros() -> None:
    cfg = FlowConfig(chunk_ms=1000, long_chunks=2, baseline_chunks=4, baseline_min_chunks=2, grace_ms=0, idle_ms=1)
    fs = FlowState(SYMBOL, cfg, books=False)
    out: list[FlowChunk] = []
    trades_by_chunk = {0: 2, 2: 1, 3: 5}  # chunk 1 is empty
    for n, k in trades_by_chunk.items():
        for i in range(k):
            out += fs.on_quote_values(T0 + n * 1000 + 10 * i, 10.0, 1.0)
    out += fs.on_quote_values(T0 + 4000, None)
    assert [c.start - T0 for c in out] == [0, 2000, 3000]
    first, second, third = out
    assert first.values["trades_z"] is None  # no baseline
    # chunk 2: baseline chunks 0, 1 = (2, 0): mean 1, std 1
    assert second.values["trades_z"] == pytest.approx(0.0)
    # chunk 3: baseline (2, 0, 1): mean 1, variance 2/3
    assert third.values["trades_z"] == pytest.approx(4 / math.sqrt(2 / 3))
    assert third.values["volume_z"] == pytest.approx(4 / math.sqrt(2 / 3))
    assert third.values["trades_z_long"] == pytest.approx((6 - 2) / (math.sqrt(2) * math.sqrt(2 / 3)))
    assert third.values["trades_std_long"] == pytest.approx(2.0)  # chunks 2, 3: (1, 5)
    assert third.values["ret_bps"] == 0.0
    # a gap longer than the baseline starts a new session: warm-up again
    closed = fs.on_quote_values(T0 + 20_000, 10.0, 1.0)
    assert [c.start for c in closed] == [T0 + 4000]
    rest = fs.on_quote_values(T0 + 30_000, None)
    assert rest[-1].start == T0 + 20_000 and rest[-1].values["trades_z"] is None


def test_features_are_exact_across_a_long_stream() -> None:
    """The baseline's running sums are exact: after a long run they equal a fresh recomputation."""
    cfg = FlowConfig(chunk_ms=1000, baseline_chunks=50, baseline_min_chunks=5, grace_ms=0, idle_ms=1)
    rng = np.random.default_rng(5)
    fs = FlowState(SYMBOL, cfg, books=False)
    for k in range(3000):
        fs.on_quote_values(T0 + 400 * k, 10.0, float(rng.choice([0.1, 0.3, 1e6, 7.7])), str(rng.choice(["B", "S"])))
    fresh = FlowState.from_state(fs.to_state(), cfg, books=False)
    for name in (
        "trades_sums",
        "volume_sums",
        "rush_sums",
        "level_sums",
        "buy_order_sums",
        "rush_max_sums",
        "mirror_sums",
    ):
        a, b = getattr(fs.baseline, name), getattr(fresh.baseline, name)
        assert (a.count, a.s1 * 2**b.shift, a.s2 * 4**b.shift) == (b.count, b.s1 * 2**a.shift, b.s2 * 4**a.shift)


# -- the simulator: the features carry signal -----------------------------------------------------------------
def _inside(frame: pd.DataFrame, episodes: pd.DataFrame) -> np.ndarray:
    inside = np.zeros(len(frame), dtype=bool)
    for e in episodes.itertuples():
        inside |= ((frame["symbol"] == e.symbol) & (frame["ts"] > e.start) & (frame["ts"] - 5000 < e.end)).to_numpy()
    return inside


@pytest.fixture(scope="module")
def pump_session() -> tuple[pd.DataFrame, pd.DataFrame]:
    sim = generate(
        SimulationConfig(symbols=3, minutes=60, seed=7, clean_fraction=0.0, rates={AlertKind.PUMP_AND_DUMP: 1.5})
    )
    frame = compute_flow_frame(sim.quotes_frame(), sim.books_frame(), FlowConfig(baseline_min_chunks=24))
    return frame, sim.episodes_frame()


def test_pump_and_dump_ramps_carry_rush_orders(pump_session: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    frame, episodes = pump_session
    assert set(episodes["kind"]) == {"pump_and_dump"} and len(episodes) >= 3
    inside = _inside(frame, episodes)
    assert 100 < inside.sum() < len(frame) - 500
    for name in ("rush_orders", "rush_orders_long"):
        assert frame[name][inside].mean() > 3 * frame[name][~inside].mean(), name
    assert frame["trades_z"][inside].mean() > 1.0 > frame["trades_z"][~inside].mean()
    assert frame["aggr_imbalance_long"][inside].mean() > 0.3
    # flow-v2: buy orders far above the symbol's own rate, and rushes far bigger than its usual ones
    for name in ("buy_orders_z_long", "rush_max_z_long", "order_imbalance_z_long"):
        assert frame[name][inside].median() > frame[name][~inside].quantile(0.95), name


def test_wash_bursts_show_as_mirror_volume() -> None:
    sim = generate(
        SimulationConfig(symbols=3, minutes=60, seed=7, clean_fraction=0.0, rates={AlertKind.WASH_TRADING: 1.5})
    )
    frame = compute_flow_frame(sim.quotes_frame(), sim.books_frame(), FlowConfig(baseline_min_chunks=24))
    episodes = sim.episodes_frame()
    assert set(episodes["kind"]) == {"wash_trading"}
    inside = _inside(frame, episodes)
    assert inside.sum() > 10
    # every burst is a run of mirror trades: the episodes' best windows stand far above everything else
    best = [frame["mirror_z_long"][_inside(frame, episodes.iloc[[i]])].max() for i in range(len(episodes))]
    assert min(best) > frame["mirror_z_long"][~inside].quantile(0.999)
    assert frame["mirror_vol_share_long"][inside].median() > 5 * frame["mirror_vol_share_long"][~inside].median()


def test_spoofing_layers_show_as_large_levels_that_vanish() -> None:
    sim = generate(SimulationConfig(symbols=2, minutes=40, seed=7, clean_fraction=0.0, rates={AlertKind.SPOOFING: 1.5}))
    frame = compute_flow_frame(sim.quotes_frame(), sim.books_frame(), FlowConfig(baseline_min_chunks=24))
    inside = _inside(frame, sim.episodes_frame())
    assert inside.sum() > 10
    assert frame["level_max_rel_long"][inside].median() > frame["level_max_rel_long"][~inside].quantile(0.99)
    assert frame["cancel_l25_long"][inside].mean() > 5 * frame["cancel_l25_long"][~inside].mean()


def test_simulator_frames_fold_to_the_stream_records() -> None:
    """The canonical frames and the validated records give identical chunks (a small session)."""
    sim = generate(SimulationConfig(symbols=2, minutes=8, seed=2))
    cfg = FlowConfig(baseline_min_chunks=6)
    frame = compute_flow_frame(sim.quotes_frame(), sim.books_frame(), cfg)
    states: dict[str, FlowState] = {}
    chunks: list[FlowChunk] = []
    for record in sim.records():
        if isinstance(record, Quote):
            fs = states.setdefault(record.symbol, FlowState(record.symbol, cfg))
            chunks += fs.on_quote(record)
        elif isinstance(record, Book):
            fs = states.setdefault(record.symbol, FlowState(record.symbol, cfg))
            chunks += fs.on_book(record)
    for fs in states.values():
        chunks += fs.flush()
    chunks.sort(key=lambda c: (c.symbol, c.ts))
    assert len(chunks) == len(frame) > 100
    assert frame_rows(frame) == [(c.ts, c.values) for c in chunks]
    assert list(frame["symbol"]) == [c.symbol for c in chunks]
    late: list[LateRecordError] = []
    quotes, books = sim.quotes_frame(), sim.books_frame()
    mine = (quotes[quotes["symbol"] == "SIM0001"], books[books["symbol"] == "SIM0001"])
    list(iter_flow("SIM0001", mine[0].iloc[::-1], mine[1].iloc[::-1], cfg, late=late))
    assert late  # a reversed stream is mostly late: reported, not silently dropped


def test_names_are_unique_and_versioned() -> None:
    assert len(set(FLOW_FEATURE_NAMES)) == len(FLOW_FEATURE_NAMES)
    assert all(name.isidentifier() for name in FLOW_FEATURE_NAMES)
    from tapewatch.detectors import flow

    doc = flow.__doc__ or ""
    for name in FLOW_FEATURE_NAMES:
        assert f"\n{name} " in doc, f"{name} is not in the module docstring's table"


def _ladder(
    mid: float, layer: tuple[float, float] | None = None
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """A 5-level book around ``mid`` (tick 0.1, 100 a level), with ``layer`` (price, size) on the bid side."""
    bids = [(round(mid - 0.05 - 0.1 * i, 2), 100.0) for i in range(5)]
    asks = [(round(mid + 0.05 + 0.1 * i, 2), 100.0) for i in range(5)]
    if layer is not None:
        bids = [(p, layer[1]) if p == layer[0] else (p, q) for p, q in bids]
    return bids, asks


def test_a_layer_carries_the_mid_move_over_its_whole_life() -> None:
    """A bid layer shown for 40 s while the mid walks up 2 ticks, then gone: the chunk it vanished in says how
    far the mid moved away from it over its life, though the long window saw no move at all."""
    cfg = FlowConfig(chunk_ms=1000, long_chunks=2, baseline_chunks=50, baseline_min_chunks=4, grace_ms=0)
    fs = FlowState(SYMBOL, cfg)
    chunks: list[FlowChunk] = []
    ts = T0
    for _ in range(30):  # a quiet book: the running mean level learns 100
        ts += 500
        chunks += fs.on_book_values(ts, *_ladder(10.0))
        chunks += fs.on_quote_values(ts, None)
    for k in range(80):  # the layer at 9.75 (bid level 3 at first), the mid 10.0 → 10.2 in the first 20 s
        ts += 500
        mid = 10.0 + 0.1 * min(2, k // 20)
        chunks += fs.on_book_values(ts, *_ladder(mid, (9.75, 2_000.0)))
        chunks += fs.on_quote_values(ts, None)
    for _ in range(4):
        ts += 500
        chunks += fs.on_book_values(ts, *_ladder(10.2))
        chunks += fs.on_quote_values(ts, None)
    (gone,) = [c for c in chunks if c.values["layer_cancel_rel"] is not None]
    assert gone.values["layer_side"] == 1.0
    assert gone.values["layer_books"] == 80.0
    assert gone.values["layer_move_bps"] == pytest.approx(1e4 * math.log(10.2 / 10.0))
    assert gone.values["mid_ret_bps_long"] == 0.0  # the long window saw nothing of it


def test_a_vanished_layer_in_an_open_chunk_is_in_a_state_the_changelog_can_write() -> None:
    """The stream writes its state with orjson (which, unlike json, refuses a named tuple): a layer that vanished in
    a chunk still open must be stored as plain values, and resume exactly."""
    cfg = FlowConfig(chunk_ms=1000, long_chunks=2, baseline_chunks=50, baseline_min_chunks=4, grace_ms=0)
    fs = FlowState(SYMBOL, cfg)
    books = [_ladder(10.0)] * 30 + [_ladder(10.0, (9.75, 2_000.0))] * 10 + [_ladder(10.0)]
    for k, book in enumerate(books):  # books only: the quotes' watermark keeps the last chunks open
        fs.on_book_values(T0 + 500 * k, *book)
    assert any(c.layers_gone for c in fs.open.values())
    restored = FlowState.from_state(orjson.loads(orjson.dumps(fs.to_state())), cfg)
    ts = T0 + 500 * len(books) + 5_000
    assert restored.on_quote_values(ts, None) == fs.on_quote_values(ts, None)


@pytest.mark.parametrize(("gap_ms", "reported"), [(5_000, True), (1_000, False)])
def test_one_snapshot_is_a_layer_only_on_coarse_books(gap_ms: int, reported: bool) -> None:
    """A bid of 20× the level size shown in a single snapshot, then gone: on books 5 s apart an order resting a
    few seconds shows only once, so it is a vanished layer; on books 1 s apart one sighting is churn."""
    cfg = FlowConfig(chunk_ms=gap_ms, long_chunks=2, baseline_chunks=50, baseline_min_chunks=4, grace_ms=0)
    fs = FlowState(SYMBOL, cfg)
    chunks: list[FlowChunk] = []
    ts = T0
    for k in range(24):
        ts += gap_ms
        flashed = (9.75, 2_000.0) if k == 20 else None
        chunks += fs.on_book_values(ts, *(_ladder(10.0, flashed) if flashed else _ladder(10.0)))
        chunks += fs.on_quote_values(ts, None)
    gone = [c for c in chunks if c.values["layer_cancel_rel"] is not None]
    if reported:
        assert [c.values["layer_books"] for c in gone] == [1.0]
        assert gone[0].values["layer_cancel_rel"] == pytest.approx(19.0, rel=0.1)  # 1,900 of 2,000 vs ~100
    else:
        assert gone == []


def _as_version_3(state: dict[str, Any]) -> dict[str, Any]:
    """What a flow-v3 worker wrote for the same moment: layers without their first mid, vanished layers
    without their move."""
    from tapewatch.detectors.flow.chunk import CHUNK_FIELDS

    gone = CHUNK_FIELDS.index("layers_gone")
    old: dict[str, Any] = json.loads(json.dumps(state))
    old.update(v=3, features="flow-v3")
    tracker = old["last"][9]
    tracker[1] = [entry[:4] for entry in tracker[1]]
    for chunk in (*old["open"], *old["recent"]):
        chunk[gone] = [entry[:4] for entry in chunk[gone]]
    return old


def test_a_version_3_state_resumes_with_its_baseline() -> None:
    sim = generate(SimulationConfig(symbols=1, minutes=30, seed=7, clean_fraction=0.0, rates={AlertKind.SPOOFING: 3.0}))
    cfg = FlowConfig(baseline_min_chunks=24)
    records = [r for r in sim.records() if isinstance(r, Quote | Book)]
    cut = len(records) // 2
    reference, upgraded = FlowState(records[0].symbol, cfg), FlowState(records[0].symbol, cfg)

    def feed(fs: FlowState, record: Quote | Book) -> list[FlowChunk]:
        return fs.on_quote(record) if isinstance(record, Quote) else fs.on_book(record)

    for record in records[:cut]:
        feed(reference, record)
        feed(upgraded, record)
    state = _as_version_3(upgraded.to_state())
    restored = FlowState.from_state(state, cfg)
    reference.layer_tracker = LayerTracker()  # an older version's tracker starts afresh
    expected = [c for record in records[cut:] for c in feed(reference, record)]
    got = [c for record in records[cut:] for c in feed(restored, record)]
    assert len(got) == len(expected) > 100
    assert got[0].values["trades_z"] is not None  # the baseline carried over: no warm-up
    assert [c.values for c in got] == [c.values for c in expected]


def test_a_version_4_to_9_state_resumes_exactly_but_for_its_layer_tracker() -> None:
    """A flow-v4 … -v9 state resumes as if this version had run all along, except that its layer tracker (which
    judged levels by another yardstick) starts afresh: a flow-v5, -v6 or -v7 state is a flow-v8 state (the robust
    baseline's windows are rebuilt from the baseline, the mirror excess comes from the baseline's sums)."""
    sim = generate(SimulationConfig(symbols=1, minutes=20, seed=7, clean_fraction=0.0, rates={AlertKind.SPOOFING: 3.0}))
    cfg = FlowConfig(baseline_min_chunks=24)
    records = [r for r in sim.records() if isinstance(r, Quote | Book)]
    cut = len(records) // 2
    reference = FlowState(records[0].symbol, cfg)

    def feed(fs: FlowState, record: Quote | Book) -> list[FlowChunk]:
        return fs.on_quote(record) if isinstance(record, Quote) else fs.on_book(record)

    for record in records[:cut]:
        feed(reference, record)
    older = []
    for version in range(4, 10):
        state = {**reference.to_state(), "v": version, "features": f"flow-v{version}"}
        state["last"][9] = [1e9, [], None, None]  # whatever the older tracker held, it is not read
        older.append(FlowState.from_state(json.loads(json.dumps(state)), cfg))
    reference.layer_tracker = LayerTracker()
    expected = [c.values for record in records[cut:] for c in feed(reference, record)]
    for restored in older:
        assert [c.values for record in records[cut:] for c in feed(restored, record)] == expected
    assert any(values["mirror_excess_share_long"] is not None for values in expected)
    assert any(values["volume_rel_p95_long"] is not None for values in expected)  # rebuilt from the baseline
    assert any(values["layer_cancel_rel"] is not None for values in expected)  # the fresh tracker saw layers
    assert len(expected) > 50


def test_volume_relative_to_the_95th_percentile_of_the_baselines_long_windows() -> None:
    # long window 2 chunks, baseline 6 chunks, 3 windows needed; one trade per 1 s chunk of the given size
    cfg = FlowConfig(chunk_ms=1000, long_chunks=2, baseline_chunks=6, baseline_min_chunks=3, grace_ms=0)
    fs = FlowState(SYMBOL, cfg, books=False)
    sizes = [1.0, 2.0, 3.0, 4.0, 0.0, 6.0, 7.0, 100.0]  # 0: an empty chunk, a zero in every window
    chunks = []
    for i, size in enumerate(sizes):
        if size:
            chunks += fs.on_quote_values(T0 + 1000 * i, 10.0, size, "B")
    chunks += fs.flush()
    got = {(c.ts - T0) // 1000 - 1: c.values["volume_rel_p95_long"] for c in chunks}
    # chunk 5: windows ending at chunks 1..3 (wholly inside the session, none overlapping chunks 4-5):
    # 3, 5, 7 → p95 = 7 (nearest rank); the long volume is 0 + 6
    assert got[5] == pytest.approx(6.0 / 7.0)
    # chunk 7: baseline chunks 1..6, windows ending at 2..5: 5, 7, 4, 6 → p95 = 7; long volume 7 + 100
    assert got[7] == pytest.approx(107.0 / 7.0)
    assert got[3] is None  # windows ending at 1 only: too few
