"""The market-by-order feed shapes of the evaluation matrix: ``mbo``, the public feed alone, and ``mbo+firm``, the
same with a firm's drop copy.

A cell of either is one seed's order session of the matrix's generator (:func:`~tapewatch.evaluation.order_level.
order_session`: the order-book market or the simulator with its orders, a share of the manipulators and look-alikes
trading through the firm, the generator's own look-alikes, no news) through the stream's orders stage offline
(:func:`~tapewatch.evaluation.order_lookback.run_orders`): each symbol's book from its orders, the trades and
five-level books it implies through every trade-and-book detector (:func:`~tapewatch.evaluation.lookback.detect_frames`,
the stream's twin), and the public feed's spoofing and wash alerts. ``mbo+firm`` adds what the drop copy raises by
account (spoofing, wash, quote stuffing, pumps and closes), reading the firm's reference data of its accounts (their
owners and linked-account groups), as the stream reads ``ref.accounts``. Both feeds are judged against *every*
episode: one whose manipulator traded through another firm is in the public feed only, and must be found there.

The K-means model of these cells is trained on the training seed's derived trades and books (the matrix's honesty
rule: never on an evaluated seed), once for both feeds: they share the derived input. A cell also counts, for the
alerts the drop copy raised that were true, how many name an account of their episode
(:attr:`tapewatch.evaluation.matrix.Cell.named`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import pandas as pd

from tapewatch.detectors.kmeans import KMEANS_FEATURES, KMeansModel, KMeansParams
from tapewatch.evaluation.lookback import DetectionOutput, bar_features, detect_frames
from tapewatch.evaluation.order_level import OrderSession, judge, order_session, session_reference
from tapewatch.evaluation.order_lookback import derived_ticks, order_feeds, run_orders
from tapewatch.feeds import FeedProfiles
from tapewatch.records import Alert, ExecutionReport, OrderBookEvent

if TYPE_CHECKING:
    from tapewatch.evaluation.matrix import MatrixSpec

#: the public market-by-order feed alone, and with a firm's drop copy
MBO: Final = "mbo"
MBO_FIRM: Final = "mbo+firm"
ORDER_FEEDS: Final[tuple[str, ...]] = (MBO, MBO_FIRM)


@dataclass(frozen=True, slots=True)
class OrderRun:
    """One seed's order session through the market-by-order path."""

    session: OrderSession
    #: the trade-and-book detectors over the derived trades and books
    detected: DetectionOutput
    #: the public feed's spoofing alerts, and the drop copy's (each naming its tenant)
    public: list[Alert]
    firm: list[Alert]

    def alerts(self, feed: str) -> list[Alert]:
        """The alerts a desk with ``feed`` sees."""
        if feed not in ORDER_FEEDS:
            raise ValueError(f"feed must be one of {', '.join(ORDER_FEEDS)}, not {feed!r}")
        return [*self.detected.alerts, *self.public, *(self.firm if feed == MBO_FIRM else ())]

    def named(self) -> dict[str, tuple[int, int]]:
        """kind → (the drop copy's true alerts, those naming an account of their episode)."""
        session = self.session
        results = judge(self.firm, session.episodes_frame(), session.lookalikes_frame())
        return {r.kind: (r.true_alerts, r.named_right) for r in results if r.true_alerts}


def run_orders_of(
    spec: MatrixSpec, seed: int, model: KMeansModel | None, profiles: FeedProfiles | None = None
) -> OrderRun:
    """``seed``'s order session of the spec's generator (its symbols and minutes) through the market-by-order path,
    the trade-and-book detectors scoring with ``model``."""
    session = order_session(spec.generator, seed, spec.symbols, spec.minutes)
    feeds = order_feeds(profiles or spec.profiles)
    events: list[OrderBookEvent] = [e for symbol in session.symbols for e in session.order_events(symbol)]
    reports: list[ExecutionReport] = [r for symbol in session.symbols for r in session.execution_reports(symbol)]
    path = run_orders(events, reports, feeds, reference=session_reference(session))
    ticks, _ = derived_ticks(path.derived, feeds)
    detected = detect_frames(ticks, model, flow_config=spec.flow, feeds=feeds)
    public = [a for a in path.alerts if a.tenant is None]
    firm = [a for a in path.alerts if a.tenant is not None]
    return OrderRun(session, detected, public, firm)


def train_order_model(spec: MatrixSpec) -> KMeansModel:
    """The K-means model of the market-by-order cells, fitted on the training seed's derived trades and books."""
    from tapewatch.detectors.kmeans import train

    run = run_orders_of(spec, spec.train_seed, None)
    return train(bar_features(run.detected.bars), KMEANS_FEATURES, KMeansParams())


def empty_news() -> pd.DataFrame:
    from tapewatch.generators.news import NEWS_COLUMNS

    return pd.DataFrame(columns=list(NEWS_COLUMNS))
