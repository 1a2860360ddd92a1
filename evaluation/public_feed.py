"""The public market-by-order feed's own detectors alone (``mbo``) — spoofing (:class:`PublicSpoofing`) or wash
trading (:class:`PublicWash`), one kind at a time — judged on a generator's session (the order-book market, ``lob``,
or the labelled simulator, ``sim``) as the firm path is (:func:`tapewatch.evaluation.order_level.judge`: episodes,
legitimate look-alikes, clean symbol-days), and the real Bitstamp capture turned into market-by-order events for the
false-alarm check on a real tape.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from tapewatch.detectors.alerting import AlertPolicy, Hit
from tapewatch.detectors.orders.public_spoofing import PublicSpoofing
from tapewatch.detectors.orders.public_wash import PublicWash
from tapewatch.evaluation.order_level import (
    OrderKindResult,
    OrderSession,
    clean_symbols,
    collapse_alerts,
    judge,
    order_session,
)
from tapewatch.records import Alert, AlertKind, OrderBookEvent


class PublicDetector(Protocol):
    def on_order(self, event: OrderBookEvent) -> list[Hit]: ...

    def flush(self) -> list[Hit]: ...


#: each kind's detector on the public feed alone (on a book of its own)
DETECTORS: Final[dict[AlertKind, Callable[[], PublicDetector]]] = {
    AlertKind.SPOOFING: PublicSpoofing,
    AlertKind.WASH_TRADING: PublicWash,
}


def symbol_alerts(
    symbol: str, venue: str, events: Iterable[OrderBookEvent], kind: AlertKind = AlertKind.SPOOFING
) -> list[Alert]:
    """One symbol's feed through the kind's detector and the alert policy, in the feed's order."""
    detector = DETECTORS[kind]()
    policy = AlertPolicy(symbol, venue)
    alerts: list[Alert] = []
    for event in events:
        for hit in detector.on_order(event):
            alerts += policy.on_hit(hit)
    for hit in detector.flush():
        alerts += policy.on_hit(hit)
    return alerts


def public_alerts(session: OrderSession, kind: AlertKind = AlertKind.SPOOFING) -> list[Alert]:
    """The kind's alerts the public feed alone raises, symbol by symbol."""
    alerts: list[Alert] = []
    for symbol in session.symbols:
        alerts += symbol_alerts(symbol, session.venue, session.order_events(symbol), kind)
    return alerts


@dataclass(frozen=True, slots=True)
class PublicReport:
    """The public path over several sessions: the kind's result, the look-alikes' windows, the clean symbol-days."""

    seeds: tuple[int, ...]
    result: OrderKindResult
    clean_symbol_days: int
    clean_alerts: int
    lookalikes: int
    #: alerts by severity, over all symbols
    severities: dict[str, int]

    @property
    def f1(self) -> float:
        return self.result.f1(self.result.recall)

    @property
    def clean_per_day(self) -> float:
        return self.clean_alerts / self.clean_symbol_days if self.clean_symbol_days else math.nan

    @property
    def lookalike_share(self) -> float:
        """Share of the labelled look-alikes with an alert of the kind on their window."""
        return self.result.lookalike_alerts / self.lookalikes if self.lookalikes else math.nan


def judge_session(
    session: OrderSession, alerts: Sequence[Alert], kind: AlertKind = AlertKind.SPOOFING
) -> tuple[OrderKindResult, int, int, int]:
    """The kind's result, the clean symbols and the alerts on them, and the labelled look-alikes."""
    episodes = session.episodes_frame()
    lookalikes = session.lookalikes_frame()
    result = next(r for r in judge(alerts, episodes, lookalikes) if r.kind == str(kind))
    clean = clean_symbols(session)
    clean_alerts = sum(alert.symbol in clean for alert in collapse_alerts(alerts))
    return result, len(clean), clean_alerts, len(lookalikes)


def evaluate(sessions: Iterable[tuple[int, OrderSession]], kind: AlertKind = AlertKind.SPOOFING) -> PublicReport:
    """Each session's public alerts of the kind judged and added up."""
    seeds: list[int] = []
    total = OrderKindResult.none(str(kind))
    clean_days = clean_alerts = lookalikes = 0
    severities: dict[str, int] = {}
    for seed, session in sessions:
        seeds.append(seed)
        alerts = public_alerts(session, kind)
        result, clean, on_clean, labelled = judge_session(session, alerts, kind)
        total = total.plus(result)
        clean_days, clean_alerts, lookalikes = clean_days + clean, clean_alerts + on_clean, lookalikes + labelled
        for alert in collapse_alerts(alerts):
            severities[str(alert.severity)] = severities.get(str(alert.severity), 0) + 1
    return PublicReport(tuple(seeds), total, clean_days, clean_alerts, lookalikes, severities)


def sessions_of(
    seeds: Sequence[int], symbols: int = 8, minutes: float = 210.0, generator: str = "lob"
) -> Iterator[tuple[int, OrderSession]]:
    """The sessions of ``tapewatch eval orders`` (half the manipulators through the firm: the public feed sees all)."""
    for seed in seeds:
        yield seed, order_session(generator, seed, symbols, minutes)


# --- a real tape ------------------------------------------------------------------------------------------------
def real_tape_alerts(
    events: Iterable[OrderBookEvent], symbol: str, venue: str, kind: AlertKind = AlertKind.SPOOFING
) -> list[Alert]:
    """The kind's detector on a real tape's market-by-order events (the Bitstamp capture's:
    :func:`tapewatch.producers.bitstamp_capture.order_events`): every alert there is taken as false."""
    return symbol_alerts(symbol, venue, events, kind)
