"""The paper trader applies a decision once per signal, symbol and event time: an action or forecast the stream
worker sends again after a crash reaches neither the executor nor the dead letters (as a late decision)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from tapewatch.records import Action, Forecast, Quote, Record
from tapewatch.streams.trade import Received, TradeCounters, TradeWorker


@dataclass
class Executor:
    applied: list[Record] = field(default_factory=list)

    def apply(self, record: Record) -> list[Record]:
        self.applied.append(record)
        return []


class Producer:
    def poll(self) -> None:
        pass


def trader() -> TradeWorker:
    """A trader without Kafka: its ``_apply`` over a recording executor."""
    worker = TradeWorker.__new__(TradeWorker)
    worker.executor, worker.producer = Executor(), Producer()  # type: ignore[assignment]
    worker.counters, worker.decided = TradeCounters(out=Counter()), {}
    return worker


def action(ts: int, symbol: str = "AAA") -> Action:
    return Action(symbol=symbol, venue="sim", ts=ts, action="BUY", q_values={}, position=1, model_version="v1")


def forecast(ts: int) -> Forecast:
    return Forecast(
        symbol="AAA", venue="sim", ts=ts, model="lstm", model_version="v1", horizon=1, target="return",
        prediction=0.01, confidence=0.5,
    )  # fmt: skip


def released(records: list[Record]) -> Iterator[tuple[str, int, int, Received]]:
    return (("t", 0, offset, Received(r, r.to_json(), r.key())) for offset, r in enumerate(records))


def test_a_decision_sent_again_is_applied_once() -> None:
    worker = trader()
    quote = Quote(symbol="AAA", venue="sim", ts=60_000, price=1.0, size=1.0)
    inputs: list[Record] = [action(60_000), forecast(60_000), quote, action(60_000), forecast(60_000)]
    inputs += [action(120_000), action(60_000), action(120_000, "BBB")]
    worker._apply(released(inputs))
    assert worker.executor.applied == [  # type: ignore[attr-defined]
        action(60_000),
        forecast(60_000),
        quote,
        action(120_000),
        action(120_000, "BBB"),
    ]
    assert worker.counters.repeated == 3 and worker.counters.dead_letters == 0
    assert worker.decided == {"dqn|AAA": 120_000, "lstm|AAA": 60_000, "dqn|BBB": 120_000}
