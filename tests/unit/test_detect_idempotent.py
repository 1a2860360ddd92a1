"""The detect stage applies each features record once by its event identity (symbol, cadence, event time).

The market stage sends features again after its own crash or a rebalance, at new offsets; a producer's retry
duplicates one. Whatever copies arrive, in whatever order among the other symbols' and cadences' records,
however the batches fall and whether the detect stage itself is killed and restarted from its changelog,
every output — alerts (every emission), actions, forecasts — is the one an uninterrupted run over the clean
stream sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import hypothesis.strategies as st
import orjson
from hypothesis import given, settings

from tapewatch.detectors.features import FEATURE_SET_VERSION
from tapewatch.detectors.flow import FLOW_FEATURE_SET_VERSION
from tapewatch.detectors.news.context import NewsContextParams
from tapewatch.records import Cadence, Features
from tapewatch.streams.detect import STATE_FORMAT, DetectState
from tests.detect_harness import CHANGELOG, DetectRun, FakeMessage, messages

SYMBOLS = ("AAA", "BBB")  # on two partitions (tests.detect_harness.partition_of)
#: order-flow chunks that drive the patterns: quiet, wash-trading mirrors, a pump's onset
CHUNKS = (
    {"trades": 3.0, "trades_z": 0.0, "ret_bps": 0.0},
    {
        "mirror_z_long": 9.0,
        "mirror_vol_share_long": 0.6,
        "order_imbalance_long": 0.0,
        "mirror_trades_long": 6.0,
        "mirror_excess_share_long": 0.5,
    },
    {"buy_orders_z_long": 7.0, "order_imbalance_z_long": 3.5, "rush_max_z_long": 8.0, "ret_bps": 1.0},
)


def fast(symbol: str, k: int, values: Mapping[str, float]) -> Features:
    return Features(
        symbol=symbol, venue="sim", ts=5_000 * (k + 1), values=dict(values), version=FLOW_FEATURE_SET_VERSION,
        cadence=Cadence.FAST,
    )  # fmt: skip


def bar(symbol: str, m: int, ret: float | None) -> Features:
    return Features(symbol=symbol, venue="sim", ts=60_000 * (m + 1), values={"ret_1": ret}, version=FEATURE_SET_VERSION)


@st.composite
def streams(draw: st.DrawFn) -> list[list[Features]]:
    """Per symbol and cadence, its records in event-time order (what the market stage writes)."""
    out = []
    for symbol in SYMBOLS:
        chunks = draw(st.lists(st.sampled_from(range(len(CHUNKS))), min_size=1, max_size=16))
        out.append([fast(symbol, k, CHUNKS[c]) for k, c in enumerate(chunks)])
        rets = draw(st.lists(st.none() | st.floats(-0.05, 0.05, allow_nan=False), min_size=1, max_size=8))
        out.append([bar(symbol, m, ret) for m, ret in enumerate(rets)])
    return out


def interleaved(data: st.DataObject, streams: list[list[Features]]) -> list[Features]:
    """One delivery order: each stream's own order kept, the streams interleaved as ``data`` draws."""
    queues = [list(s) for s in streams if s]
    out: list[Features] = []
    while queues:
        i = data.draw(st.integers(0, len(queues) - 1))
        out.append(queues[i].pop(0))
        if not queues[i]:
            queues.pop(i)
    return out


def resent(data: st.DataObject, records: list[Features]) -> list[Features]:
    """``records`` with copies of some of them sent again later (in any order among themselves)."""
    keyed = [((i, 0), r) for i, r in enumerate(records)]
    copies = data.draw(st.lists(st.tuples(st.integers(0, len(records) - 1), st.integers(0, len(records))), max_size=12))
    for n, (source, after) in enumerate(copies):
        keyed.append(((max(source, after), n + 1), records[source]))
    return [r for _, r in sorted(keyed, key=lambda pair: pair[0])]


def run_through(
    tmp: Path, delivered: list[FakeMessage], data: st.DataObject | None = None, news: NewsContextParams | None = None
) -> DetectRun:
    """The messages through one worker: one at a time, or in batches drawn from ``data`` with up to two
    ``kill -9`` restarts."""
    run = DetectRun(tmp, news)
    position, crashes = 0, 0
    while position < len(delivered):
        size = data.draw(st.integers(1, 8)) if data else 1
        batch = delivered[position : position + size]
        run.process(batch)
        position += len(batch)
        if data is None or data.draw(st.booleans()):
            run.checkpoint(position)
        if data is not None and crashes < 2 and data.draw(st.integers(0, 5)) == 0:
            crashes += 1
            run.restart()
            position = run.committed  # the records since the last commit are read again
    return run


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_records_sent_again_change_no_output(tmp_path_factory: object, data: st.DataObject) -> None:
    tmp = Path(str(tmp_path_factory.mktemp("detect")))  # type: ignore[attr-defined]
    per_stream = data.draw(streams())
    clean = interleaved(data, per_stream)
    reference = run_through(tmp, messages(clean))

    delivered = messages(resent(data, interleaved(data, per_stream)))
    got = run_through(tmp, delivered, data)

    assert got.outputs() == reference.outputs()
    assert any(topic == "actions" for topic, _ in reference.outputs())


def test_a_record_sent_again_at_a_new_offset_is_skipped(tmp_path: Path) -> None:
    """The issue's case: the market stage wrote one bar's and one chunk's features twice."""
    records = [fast("AAA", k, CHUNKS[2]) for k in range(4)] + [bar("AAA", m, 0.01 * (m + 1)) for m in range(4)]
    reference = run_through(tmp_path, messages(records))
    twice = run_through(tmp_path, messages([*records[:6], records[3], records[5], *records[6:]]))
    assert twice.outputs() == reference.outputs()
    assert twice.sent_count() == reference.sent_count()  # nothing sent twice either
    assert twice.stage.counters.replayed == 2


def test_the_newest_applied_times_survive_the_changelog(tmp_path: Path) -> None:
    records = [bar("AAA", m, 0.01) for m in range(3)]
    run = run_through(tmp_path, messages(records))
    (entry,) = (v for p in run.changelog.values() for v in p.values())
    assert entry["format"] == STATE_FORMAT and entry["newest"] == {"1m": 180_000}
    run.restart()
    again = messages([records[1]])[0]  # the same bar, at a new offset, to a restarted worker
    run.process([FakeMessage(again.topic(), again.partition(), 99, again.key(), again.value())])
    assert run.stage.counters.replayed == 1


def test_a_state_without_newest_applied_times_still_loads(tmp_path: Path) -> None:
    """A checkpoint of format 1 (before event identities): its symbol goes on, duplicates skipped from there."""
    records = [bar("AAA", m, 0.01) for m in range(3)]
    run = run_through(tmp_path, messages(records[:2]))
    for entries in run.changelog.values():
        for key, entry in entries.items():
            old = {k: v for k, v in entry.items() if k != "newest"}
            entries[key] = orjson.loads(orjson.dumps({**old, "format": 1}))
    run.restart()
    later = messages(records)[2]
    run.process([later, FakeMessage(later.topic(), later.partition(), 7, later.key(), later.value())])
    state = run.stage._touched[b"AAA"]
    assert isinstance(state, DetectState) and state.newest == {"1m": 180_000}
    assert run.stage.counters.replayed == 1
    assert not [t for t, _, _ in run.producer.sent if t == "dlq"]
    assert any(t == CHANGELOG for t, _, _ in run.producer.sent)
