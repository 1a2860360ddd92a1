"""The market stage runs the wash tests: one indicator per symbol and closed day, the same after a crash."""

from __future__ import annotations

import random

import pandas as pd

from tapewatch.detectors.venue_wash import DAY_MS
from tapewatch.evaluation.venue_wash import indicators
from tapewatch.records import Quote, Side, VenueIndicator
from tests.stage_harness import INDICATORS, QUOTES, as_messages, market_stage_run

START = 1_700_006_400_000  # a UTC midnight


def _trades(days: int = 3, per_day: int = 400) -> list[Quote]:
    rng = random.Random(9)
    out = []
    for day in range(days):
        for i in range(per_day):
            ts = START + day * DAY_MS + i * (DAY_MS // per_day)
            for symbol in ("BTCUSDT", "ETHUSDT"):
                size = round(10 ** rng.uniform(-4, 1), 8)
                side = Side.BUY if rng.random() < 0.5 else Side.SELL
                out.append(Quote(symbol=symbol, venue="binance", ts=ts, price=100.0 + i % 7, size=size, side=side))
    return out


def _sent(kills: tuple[int, ...] = ()) -> list[VenueIndicator]:
    run = market_stage_run(indicators=True)
    run.run(as_messages(QUOTES, _trades()), kills=kills, batch=97)
    return [VenueIndicator.from_json(value) for value in run.sent(INDICATORS)]


def test_each_closed_day_gives_one_indicator_per_symbol() -> None:
    sent = _sent()
    assert sorted((i.symbol, i.window_start) for i in sent) == [
        (symbol, START + day * DAY_MS) for symbol in ("BTCUSDT", "ETHUSDT") for day in (0, 1)
    ]
    assert all(i.complete and i.trades == 400 and i.ts == i.window_end for i in sent)


def test_the_stream_gives_what_detect_file_gives() -> None:
    trades = _trades()
    frame = pd.DataFrame([t.model_dump(mode="json") for t in trades])
    batch = [i for i in indicators(frame) if i.complete]
    assert sorted(_sent(), key=lambda i: (i.symbol, i.ts)) == sorted(batch, key=lambda i: (i.symbol, i.ts))


def test_a_crash_and_restart_send_the_same_indicators() -> None:
    straight = {i.to_json() for i in _sent()}
    assert {i.to_json() for i in _sent(kills=(150, 801, 1_203, 2_000))} == straight


def test_without_a_topic_the_tests_do_not_run() -> None:
    run = market_stage_run()
    run.run(as_messages(QUOTES, _trades(days=2, per_day=50)))
    assert run.sent(INDICATORS) == []
    assert all(entry.get("wash", None) is None for p in run.changelog.values() for entry in p.values())
