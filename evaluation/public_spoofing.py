"""Spoofing from the public market-by-order feed alone (``mbo``), judged on the order-book market as the firm path is
(:func:`tapewatch.evaluation.order_level.judge`: episodes, legitimate look-alikes, clean symbol-days), and the real
Bitstamp capture turned into market-by-order events for the false-alarm check on a real tape.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pandas as pd

from tapewatch.detectors.alerting import AlertPolicy
from tapewatch.detectors.orders.public_spoofing import PublicSpoofing, PublicSpoofingParams
from tapewatch.evaluation.order_level import OrderKindResult, collapse_alerts, judge
from tapewatch.generators.lob_market import LobConfig, LobSession, generate
from tapewatch.records import Alert, AlertKind, BookAction, OrderBookEvent, OrderSide


def symbol_alerts(
    symbol: str, venue: str, events: Iterable[OrderBookEvent], params: PublicSpoofingParams | None = None
) -> list[Alert]:
    """One symbol's feed through the detector and the alert policy, in the feed's order."""
    detector = PublicSpoofing(params)
    policy = AlertPolicy(symbol, venue)
    alerts: list[Alert] = []
    for event in events:
        for hit in detector.on_order(event):
            alerts += policy.on_hit(hit)
    for hit in detector.flush():
        alerts += policy.on_hit(hit)
    return alerts


def public_alerts(session: LobSession, params: PublicSpoofingParams | None = None) -> list[Alert]:
    """The alerts the public feed alone raises, symbol by symbol."""
    alerts: list[Alert] = []
    for symbol in session.tapes:
        alerts += symbol_alerts(symbol, session.config.venue, session.order_events(symbol), params)
    return alerts


@dataclass(frozen=True, slots=True)
class PublicReport:
    """The public path over several sessions: spoofing, the look-alikes' windows, the clean symbol-days."""

    seeds: tuple[int, ...]
    spoofing: OrderKindResult
    clean_symbol_days: int
    clean_alerts: int
    lookalikes: int
    #: alerts by severity, over all symbols
    severities: dict[str, int]

    @property
    def f1(self) -> float:
        return self.spoofing.f1(self.spoofing.recall)

    @property
    def clean_per_day(self) -> float:
        return self.clean_alerts / self.clean_symbol_days if self.clean_symbol_days else math.nan

    @property
    def lookalike_share(self) -> float:
        """Share of the labelled look-alikes with a spoofing alert on their window."""
        return self.spoofing.lookalike_alerts / self.lookalikes if self.lookalikes else math.nan


def judge_session(session: LobSession, alerts: Sequence[Alert]) -> tuple[OrderKindResult, int, int, int]:
    """Spoofing's result, the clean symbols and the alerts on them, and the labelled look-alikes."""
    episodes = session.episodes_frame()
    lookalikes = session.lookalikes_frame()
    spoofing = next(r for r in judge(alerts, episodes, lookalikes) if r.kind == str(AlertKind.SPOOFING))
    clean = set(session.tapes) - set(episodes["symbol"])
    clean_alerts = sum(alert.symbol in clean for alert in collapse_alerts(alerts))
    return spoofing, len(clean), clean_alerts, len(lookalikes)


def evaluate(sessions: Iterable[tuple[int, LobSession]], params: PublicSpoofingParams | None = None) -> PublicReport:
    """Each session's public alerts judged and added up."""
    seeds: list[int] = []
    totals = [0] * 8
    clean_days = clean_alerts = lookalikes = 0
    severities: dict[str, int] = {}
    for seed, session in sessions:
        seeds.append(seed)
        alerts = public_alerts(session, params)
        result, clean, on_clean, labelled = judge_session(session, alerts)
        for i, value in enumerate(_counts(result)):
            totals[i] += value
        clean_days, clean_alerts, lookalikes = clean_days + clean, clean_alerts + on_clean, lookalikes + labelled
        for alert in collapse_alerts(alerts):
            severities[str(alert.severity)] = severities.get(str(alert.severity), 0) + 1
    result = OrderKindResult(str(AlertKind.SPOOFING), *totals)
    return PublicReport(tuple(seeds), result, clean_days, clean_alerts, lookalikes, severities)


def _counts(result: OrderKindResult) -> tuple[int, ...]:
    return (
        result.episodes,
        result.firm_episodes,
        result.detected,
        result.firm_detected,
        result.alerts,
        result.true_alerts,
        result.named_right,
        result.lookalike_alerts,
    )


def sessions_of(seeds: Sequence[int], symbols: int = 8, minutes: float = 210.0) -> Iterator[tuple[int, LobSession]]:
    """The sessions of ``tapewatch eval orders`` (half the manipulators through the firm: the public feed sees all)."""
    for seed in seeds:
        config = LobConfig(symbols=symbols, minutes=minutes, seed=seed, news=False, orders=True, firm_agents=0.5)
        yield seed, generate(config)


# --- the real Bitstamp capture as market-by-order events -------------------------------------------------------
def bitstamp_events(orders: pd.DataFrame, trades: pd.DataFrame, symbol: str = "BTCUSD") -> Iterator[OrderBookEvent]:
    """The capture's order messages and trades as market-by-order events, in exchange time: ``created`` an add (those
    of the REST snapshot that opens the capture, all at its first millisecond, marked ``snapshot``); ``changed`` a
    fill of the volume it lost when a trade names the order at that millisecond, else a cancel of it; ``deleted``
    the rest cancelled, or filled when a trade named it (the synthetic deletes that close the capture, all at its
    last millisecond, are left out: they are its edge, not cancels); trades carry the taker's side. Volumes are BTC."""
    first, last = int(orders["exchange_timestamp"].min()), int(orders["exchange_timestamp"].max())
    closing = (orders["exchange_timestamp"] == last) & (orders["action"] == "deleted")
    traded = _traded_orders(trades)
    resting: dict[str, float] = {}
    for sequence, row in enumerate(_merged(orders[~closing], trades), start=1):
        yield from _event(row, sequence, symbol, resting, traded, snapshot=row[0] == first)


def real_tape_alerts(params: PublicSpoofingParams | None = None) -> list[Alert]:
    """The detector on the real Bitstamp BTC/USD capture (30 minutes, ``ob-analytics``' package data, the capture
    ``tapewatch.producers.bitstamp_capture`` reads): every spoofing alert there is taken as false."""
    base = Path(str(metadata.distribution("ob-analytics").locate_file("ob_analytics/_sample_data")))
    events = bitstamp_events(pd.read_csv(base / "orders.csv.gz"), pd.read_csv(base / "trades.csv"))
    return symbol_alerts("BTCUSD", "bitstamp", events, params)


def _traded_orders(trades: pd.DataFrame) -> set[tuple[str, int]]:
    """(order id, ms) of every order a trade named: its volume change then is a fill, not a cancel."""
    named = set()
    columns = (trades["exchange_timestamp"], trades["buy_order_id"], trades["sell_order_id"])
    for ts, buy, sell in zip(*columns, strict=True):
        named.add((str(int(buy)), int(ts)))
        named.add((str(int(sell)), int(ts)))
    return named


Row = tuple[int, int, str, str, float, float, str]


def _merged(orders: pd.DataFrame, trades: pd.DataFrame) -> list[Row]:
    """(ts, 0 for a trade and 1 for an order message, action, id, price, volume, side), trades first in their ms."""
    rows: list[Row] = []
    columns = (trades["exchange_timestamp"], trades["price"], trades["amount"], trades["side"])
    for ts, price, amount, side in zip(*columns, strict=True):
        rows.append((int(ts), 0, "trade", "", float(price), float(amount), str(side)))
    names = ("id", "exchange_timestamp", "price", "volume", "action", "direction")
    for oid, ts, price, volume, action, direction in zip(*(orders[n] for n in names), strict=True):
        rows.append((int(ts), 1, str(action), str(int(oid)), float(price), float(volume), str(direction)))
    rows.sort(key=lambda r: (r[0], r[1]))
    return rows


def _event(
    row: Row, sequence: int, symbol: str, resting: dict[str, float], traded: set[tuple[str, int]], snapshot: bool
) -> Iterator[OrderBookEvent]:
    ts, _, action, oid, price, volume, side = row

    def make(kind: BookAction, side: OrderSide | None, size: float, order_id: str | None = None) -> OrderBookEvent:
        priced = price if kind in (BookAction.ADD, BookAction.TRADE) else None
        return OrderBookEvent(
            symbol=symbol, venue="bitstamp", ts=ts, sequence=sequence, action=kind, order_id=order_id, side=side,
            price=priced, size=size, snapshot=snapshot and kind is BookAction.ADD,
        )  # fmt: skip

    if action == "trade":
        yield make(BookAction.TRADE, OrderSide.BUY if side == "buy" else OrderSide.SELL, volume)
        return
    book_side = OrderSide.BUY if side == "bid" else OrderSide.SELL
    if action == "created":
        # a market order is created at price 0: it never rests, its trades tell what it did
        if oid not in resting and volume > 0 and price > 0:
            resting[oid] = volume
            yield make(BookAction.ADD, book_side, volume, oid)
        return
    before = resting.get(oid)
    if before is None:
        return
    left = 0.0 if action == "deleted" else volume
    lost = round(before - left, 8)
    if left <= 0:
        del resting[oid]
    else:
        resting[oid] = left
    if lost > 0:
        yield make(BookAction.FILL if (oid, ts) in traded else BookAction.CANCEL, book_side, lost, oid)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m tapewatch.evaluation.public_spoofing 201-206``: the seeds' sessions judged, and the real tape."""
    import sys

    spec = (list(argv) if argv is not None else sys.argv[1:]) or ["201-206"]
    first, _, last = spec[0].partition("-")
    seeds = list(range(int(first), int(last or first) + 1))
    report = evaluate(sessions_of(seeds))
    s = report.spoofing
    print(f"seeds {seeds[0]}-{seeds[-1]}: episodes {s.episodes}, found {s.detected}", end=", ")
    print(f"alerts {s.alerts}, true {s.true_alerts}")
    print(f"precision {s.precision:.2f} recall {s.recall:.2f} F1 {report.f1:.2f}")
    print(f"look-alikes alerted {s.lookalike_alerts} of {report.lookalikes} ({report.lookalike_share:.3f})")
    print(f"clean symbol-days {report.clean_symbol_days}, alerts on them {report.clean_alerts}", end=" ")
    print(f"({report.clean_per_day:.2f} a symbol-day)")
    print(f"severities {report.severities}")
    real = collapse_alerts(real_tape_alerts())
    print(f"real Bitstamp capture: {len(real)} alerts, severities {[str(a.severity) for a in real]}")


if __name__ == "__main__":
    main()
