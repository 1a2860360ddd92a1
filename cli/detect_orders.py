"""``tapewatch detect file --orders``: market-by-order files (or the shipped Bitstamp capture) and a firm's drop copy
read into records, what could not be read named by its place, and the market-by-order path run over them
(:mod:`tapewatch.evaluation.order_lookback`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Final

from tapewatch.errors import TapewatchError
from tapewatch.records import Alert, ExecutionReport, OrderBookEvent

if TYPE_CHECKING:
    from tapewatch.producers.orders.replay import OrderReplay

#: the captures ``--sample`` runs, shipped in packages
SAMPLES: Final = ("bitstamp",)


@dataclass
class OrderFiles:
    """What the files held: the public feed's events, the drop copy's reports, and each line that is not a record
    (``file:line``, why)."""

    events: list[OrderBookEvent] = field(default_factory=list)
    reports: list[ExecutionReport] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def read_order_files(
    inputs: Sequence[Path],
    venue: str,
    file_format: str | None,
    symbol: str | None,
    day: date | None,
    drop_copies: Sequence[Path],
    tenant: str | None,
) -> OrderFiles:
    """Market-by-order files (Databento MBO, LOBSTER; the format from each name unless given) and FIX drop copies of
    ``tenant``, read by the replay's readers (``tapewatch produce orders``)."""
    from tapewatch.producers.orders.replay import FORMATS, OrderReplay, guess_format

    if file_format is not None and file_format not in FORMATS:
        raise TapewatchError(f"--format {file_format!r}: one of {', '.join(FORMATS)}")
    if tenant is not None and not drop_copies:
        raise TapewatchError("--tenant names whose drop copy --drop-copy is: give the drop copy")
    copies = [str(path) for path in inputs if (file_format or guess_format(path)) == "fix"]
    if copies:
        raise TapewatchError(f"{', '.join(copies)}: a drop copy, not a market-by-order feed (give it with --drop-copy)")
    feed = OrderReplay(inputs, venue, file_format, symbol, day)
    out = OrderFiles()
    _read(feed, out)
    if drop_copies:
        _read(OrderReplay(drop_copies, venue, "fix", tenant=tenant), out)
    return out


def _read(replay: OrderReplay, out: OrderFiles) -> None:
    from tapewatch.producers.orders.unreadable import Unreadable

    for path, kind in replay.files:
        for parsed in replay.records(path, kind):
            if isinstance(parsed, Unreadable):
                out.unreadable.append((f"{path}:{parsed.line}", parsed.reason))
            elif isinstance(parsed, OrderBookEvent):
                out.events.append(parsed)
            else:
                out.reports.append(parsed)


def read_sample(name: str) -> OrderFiles:
    """A shipped capture as market-by-order events (``bitstamp``: ob-analytics' 30 minutes of BTC/USD)."""
    if name not in SAMPLES:
        raise TapewatchError(f"--sample {name!r}: one of {', '.join(SAMPLES)}")
    from tapewatch.producers.bitstamp_orders import sample_order_events

    return OrderFiles(events=list(sample_order_events()))


def by_kind_and_severity(alerts: Sequence[Alert]) -> str:
    """``spoofing medium 2, wash_trading high 1`` over the alerts' latest emissions (an escalation is one alert)."""
    latest = {alert.alert_id: alert for alert in alerts}.values()
    counts = Counter((str(alert.kind), str(alert.severity)) for alert in latest)
    return ", ".join(f"{kind} {severity} {n}" for (kind, severity), n in sorted(counts.items())) or "none"
