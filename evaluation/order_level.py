"""The order-level detectors judged on a generator's drop copy (``mbo+firm``): spoofing, wash trading and quote
stuffing by account, against the labelled episodes, with the share of true alerts that name the episode's account.
Two generators publish orders: the order-book market (``lob``, :mod:`tapewatch.generators.lob_market`) and the
labelled simulator (``sim``, :mod:`tapewatch.generators.sim_orders`); the detectors were tuned on the first only.

An episode whose manipulator traded through another firm is not in the drop copy: the tables count the episodes
through the firm apart (``firm``) from all of them. Matching is :mod:`tapewatch.evaluation.judge`'s (same symbol and
kind, windows overlapping within the tolerance). A quote-stuffing alert on a symbol with a market maker (who cancels
and re-quotes all day) that is no episode's counts as one on a look-alike.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Final, Protocol

import pandas as pd

from tapewatch.detectors.orders.book import OrderBook
from tapewatch.detectors.orders.firm_desk import AccountReference, FirmDesk, ReferenceOf, fixed_reference
from tapewatch.detectors.orders.firm_detector import FirmDetectorParams
from tapewatch.detectors.orders.firm_ramp import FirmRampParams
from tapewatch.detectors.orders.firm_spoofing import FirmSpoofingParams
from tapewatch.detectors.orders.firm_wash import FirmWashParams
from tapewatch.evaluation.judge import DEFAULT_TOLERANCE_MS, alerts_frame, collapse
from tapewatch.feeds import FeedProfiles
from tapewatch.records import Alert, AlertKind, ExecutionReport, OrderBookEvent

KINDS = (
    AlertKind.SPOOFING,
    AlertKind.WASH_TRADING,
    AlertKind.PUMP_AND_DUMP,
    AlertKind.MARKING_THE_CLOSE,
    AlertKind.QUOTE_STUFFING,
)
#: the generators that publish orders one by one
GENERATORS: Final = ("lob", "sim")


class OrderSession(Protocol):
    """A generated session with its market-by-order feed, the firm's drop copy and their labels (the order-book
    market's :class:`~tapewatch.generators.lob_market.LobSession`, the simulator's
    :class:`~tapewatch.generators.sim_orders.SimOrderSession`)."""

    @property
    def symbols(self) -> tuple[str, ...]: ...
    @property
    def venue(self) -> str: ...
    @property
    def tenant(self) -> str: ...
    def episodes_frame(self) -> pd.DataFrame: ...
    def lookalikes_frame(self) -> pd.DataFrame: ...
    def accounts_frame(self) -> pd.DataFrame: ...
    def order_events(self, symbol: str) -> Iterator[OrderBookEvent]: ...
    def execution_reports(self, symbol: str) -> Iterator[ExecutionReport]: ...


def order_session(
    generator: str,
    seed: int,
    symbols: int = 8,
    minutes: float = 210.0,
    firm_agents: float = 0.5,
    quote_stuffing: bool = False,
) -> OrderSession:
    """One seed's session of ``generator`` with its orders, as the evaluations make it: no news items, the
    look-alikes on, a ``firm_agents`` share of the manipulators and look-alikes through the firm, ending at 13:30
    Taipei; ``quote_stuffing``: the generator's quote stuffers too. The simulator's
    is ``tapewatch eval matrix``'s trades feed (episode variants, its book churn)."""
    if generator == "lob":
        from tapewatch.generators.lob_market import LobConfig, generate

        lob = LobConfig(
            symbols=symbols,
            minutes=minutes,
            seed=seed,
            news=False,
            orders=True,
            firm_agents=firm_agents,
            quote_stuffing=quote_stuffing,
        )
        return generate(lob)
    if generator == "sim":
        from tapewatch.evaluation.matrix import DEFAULT_CHURN
        from tapewatch.generators.sim_orders import SimOrdersConfig, generate_orders
        from tapewatch.generators.simulator import SimulationConfig

        open_at = (datetime.combine(datetime(2024, 1, 2), time(13, 30)) - timedelta(minutes=minutes)).time()
        config = SimulationConfig(
            symbols=symbols,
            seed=seed,
            minutes=minutes,
            open_time=open_at,
            news=False,
            lookalikes=True,
            variants=True,
            book_churn=DEFAULT_CHURN["trades"],
        )
        return generate_orders(config, SimOrdersConfig(firm_agents=firm_agents, quote_stuffing=quote_stuffing))
    raise ValueError(f"generator must be one of {', '.join(GENERATORS)}, not {generator!r}")


def session_reference(session: OrderSession) -> ReferenceOf:
    """The firm's reference data of the session: each account's beneficial owner and linked-account group, as the
    firm's tenant keeps them (what ``ref.accounts`` carries to the stream)."""
    accounts = session.accounts_frame()
    owners = {str(a): str(o) for a, o in zip(accounts["account"], accounts["owner"], strict=True)}
    groups = {str(a): g for a, g in zip(accounts["account"], accounts["group"], strict=True) if isinstance(g, str)}
    return fixed_reference({session.tenant: AccountReference(owners, groups)})


def firm_alerts(
    session: OrderSession,
    spoofing: FirmSpoofingParams | None = None,
    wash: FirmWashParams | None = None,
    ramp: FirmRampParams | None = None,
) -> list[Alert]:
    """The alerts the firm's drop copy raises, symbol by symbol (:class:`FirmDesk`: the public feed and the reports
    in time order, a report after the public events of its millisecond)."""
    params = FirmDetectorParams(
        spoofing=spoofing or FirmSpoofingParams(), wash=wash or FirmWashParams(), ramp=ramp or FirmRampParams()
    )
    reference = session_reference(session)
    calendar = FeedProfiles()(session.venue).ms_to_close
    alerts: list[Alert] = []
    for symbol in session.symbols:
        detector = FirmDesk(symbol, session.venue, params, reference, ms_to_close=calendar)
        book = OrderBook()
        public: Iterator[tuple[int, int, OrderBookEvent | ExecutionReport]] = (
            (event.ts, 0, event) for event in session.order_events(symbol)
        )
        reports: Iterator[tuple[int, int, OrderBookEvent | ExecutionReport]] = (
            (report.ts, 1, report) for report in session.execution_reports(symbol)
        )
        for _, _, item in heapq.merge(public, reports, key=lambda entry: entry[:2]):
            if isinstance(item, OrderBookEvent):
                alerts += detector.on_order(item, book.visible_depth(item.side))
                book.on_order(item)
            else:
                alerts += detector.on_execution(item)
        alerts += detector.flush()
    return alerts


@dataclass(frozen=True, slots=True)
class OrderKindResult:
    kind: str
    episodes: int
    firm_episodes: int
    detected: int
    firm_detected: int
    alerts: int
    true_alerts: int
    named_right: int
    #: false alerts on a legitimate look-alike's window
    lookalike_alerts: int
    #: per episode through the firm that an alert naming its account found: from the episode's first order to the
    #: first such alert's first emission (ms)
    delays_ms: tuple[int, ...] = ()

    @classmethod
    def none(cls, kind: str) -> OrderKindResult:
        """Nothing counted yet."""
        return cls(kind, 0, 0, 0, 0, 0, 0, 0, 0)

    def plus(self, other: OrderKindResult) -> OrderKindResult:
        """Both counts added up (one kind, two sessions)."""
        return OrderKindResult(
            self.kind,
            self.episodes + other.episodes,
            self.firm_episodes + other.firm_episodes,
            self.detected + other.detected,
            self.firm_detected + other.firm_detected,
            self.alerts + other.alerts,
            self.true_alerts + other.true_alerts,
            self.named_right + other.named_right,
            self.lookalike_alerts + other.lookalike_alerts,
            self.delays_ms + other.delays_ms,
        )

    @property
    def median_delay_s(self) -> float:
        return float(pd.Series(self.delays_ms).median()) / 1e3 if self.delays_ms else math.nan

    @property
    def precision(self) -> float:
        return self.true_alerts / self.alerts if self.alerts else math.nan

    @property
    def recall(self) -> float:
        return self.detected / self.episodes if self.episodes else math.nan

    @property
    def firm_recall(self) -> float:
        return self.firm_detected / self.firm_episodes if self.firm_episodes else math.nan

    def f1(self, recall: float) -> float:
        p = self.precision
        return 2 * p * recall / (p + recall) if p + recall > 0 and not math.isnan(p + recall) else math.nan


def judge(
    alerts: Sequence[Alert],
    episodes: pd.DataFrame,
    lookalikes: pd.DataFrame,
    tolerance_ms: int = DEFAULT_TOLERANCE_MS,
    lookalikes_of: Mapping[str, pd.DataFrame] | None = None,
) -> list[OrderKindResult]:
    """Per kind: the episodes (and those through the firm) found, the alerts true, and those naming the episode's
    account; ``lookalikes`` (symbol, kind, start, end) counts the alerts on legitimate activity (``lookalikes_of``:
    a kind's own instead)."""
    frame = collapse(alerts_frame(alerts))
    of_kind = lookalikes_of or {}
    named = {a.alert_id: _named_accounts(a) for a in alerts}
    raised: dict[str, int] = {}
    for a in alerts:
        raised[a.alert_id] = min(raised.get(a.alert_id, a.ts), a.ts)
    results = []
    for kind in KINDS:
        truth = episodes[episodes["kind"] == str(kind)]
        mine = frame[frame["kind"] == str(kind)]
        found: set[int] = set()
        firm_found: set[int] = set()
        true_alerts = right = 0
        false_ids: list[str] = []
        first_named: dict[int, int] = {}
        starts = truth["start"].to_dict()
        for alert in mine.itertuples(index=False):
            hits = truth[
                (truth["symbol"] == alert.symbol)
                & (truth["start"] - tolerance_ms <= alert.window_end)
                & (truth["end"] + tolerance_ms >= alert.window_start)
            ]
            if hits.empty:
                false_ids.append(str(alert.alert_id))
                continue
            true_alerts += 1
            found.update(hits.index)
            accounts = {a for cell in hits["accounts"] for a in str(cell).split(";") if a}
            firm_found.update(i for i in hits.index if str(hits.loc[i, "accounts"]))
            named_here = named.get(str(alert.alert_id), set())
            right += bool(named_here & accounts)
            for i in hits.index:
                if named_here & set(str(hits.loc[i, "accounts"]).split(";")):
                    ts = raised[str(alert.alert_id)]
                    first_named[i] = min(first_named.get(i, ts), ts)
        firm = truth[truth["accounts"].astype(str) != ""]
        results.append(
            OrderKindResult(
                str(kind),
                len(truth),
                len(firm),
                len(found),
                len(firm_found),
                len(mine),
                true_alerts,
                right,
                _overlapping(mine[mine["alert_id"].isin(false_ids)], of_kind.get(str(kind), lookalikes), tolerance_ms),
                tuple(max(0, ts - int(starts[i])) for i, ts in sorted(first_named.items())),
            )
        )
    return results


def _named_accounts(alert: Alert) -> set[str]:
    value = alert.evidence.get("account") or alert.evidence.get("accounts") or ""
    return {a for a in str(value).split(";") if a}


def _overlapping(alerts: pd.DataFrame, lookalikes: pd.DataFrame, tolerance_ms: int) -> int:
    count = 0
    for alert in alerts.itertuples(index=False):
        near = lookalikes[
            (lookalikes["symbol"] == alert.symbol)
            & (lookalikes["start"] - tolerance_ms <= alert.window_end)
            & (lookalikes["end"] + tolerance_ms >= alert.window_start)
        ]
        count += not near.empty
    return count


@dataclass(frozen=True, slots=True)
class OrderLevelReport:
    """The firm path over several sessions of a generator."""

    seeds: tuple[int, ...]
    kinds: list[OrderKindResult]
    clean_symbol_days: int
    clean_alerts: int
    #: the alerts on clean symbols by kind
    clean_by_kind: dict[str, int] = field(default_factory=dict)


def evaluate_sessions(
    seeds: Sequence[int], symbols: int = 8, minutes: float = 210.0, firm_agents: float = 0.5, generator: str = "lob"
) -> OrderLevelReport:
    """Generate each seed's session with its orders and its quote stuffers, raise the drop copy's alerts, judge them,
    and add up."""
    totals: dict[str, OrderKindResult] = {}
    clean_days = clean_alerts = 0
    clean_by_kind: dict[str, int] = {str(kind): 0 for kind in KINDS}
    for seed in seeds:
        session = order_session(generator, seed, symbols, minutes, firm_agents, quote_stuffing=True)
        alerts = firm_alerts(session)
        episodes = session.episodes_frame()
        lookalikes = session.lookalikes_frame()
        makers = market_makers(session)
        stuffing_lookalikes = pd.concat([lookalikes, makers], ignore_index=True) if len(makers) else lookalikes
        of_kind = {str(AlertKind.QUOTE_STUFFING): stuffing_lookalikes}
        for result in judge(alerts, episodes, lookalikes, lookalikes_of=of_kind):
            totals[result.kind] = totals.get(result.kind, OrderKindResult.none(result.kind)).plus(result)
        clean = clean_symbols(session)
        clean_days += len(clean)
        for alert in collapse_alerts(alerts):
            if alert.symbol in clean:
                clean_alerts += 1
                clean_by_kind[str(alert.kind)] = clean_by_kind.get(str(alert.kind), 0) + 1
    return OrderLevelReport(tuple(seeds), list(totals.values()), clean_days, clean_alerts, clean_by_kind)


def market_makers(session: OrderSession) -> pd.DataFrame:
    """The session's market makers' sessions (symbol, kind, start, end), for a generator that labels them."""
    events = getattr(session, "events_frame", None)
    if events is None:
        return pd.DataFrame(columns=["symbol", "kind", "start", "end"])
    frame: pd.DataFrame = events()
    return frame[frame["kind"] == "market_maker"].reset_index(drop=True)


def clean_symbols(session: OrderSession) -> set[str]:
    """The session's symbols without a labelled episode (of any kind)."""
    return set(session.symbols) - set(session.episodes_frame()["symbol"])


def collapse_alerts(alerts: Sequence[Alert]) -> list[Alert]:
    """One alert per id (its latest emission)."""
    return list({alert.alert_id: alert for alert in alerts}.values())
