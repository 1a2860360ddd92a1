"""The trader's report on paper trading (`tapewatch trade report`): ``report.md`` and its PNG charts.

Pure: three DataFrames in — the order events, fills and portfolio snapshots, columns named as the fields of
:class:`~tapewatch.records.Order`, :class:`~tapewatch.records.Fill` and :class:`~tapewatch.records.Portfolio`
(as :func:`tapewatch.sinks.trade_history.load_trade_history` reads them, or built from the records) — and files out.
What it measures, per account, per symbol and per signal model (``signal_model``):

* **P&L**: each account's equity over time (chart) and its change from the first snapshot to the last; the
  realised P&L of the fills (after their fees and taxes);
* **win rate**: the fraction of closing fills (those that reduce the position held or realise P&L,
  :func:`closing_fills`) with ``realized_pnl > 0``;
* **trades per hour**: fills ÷ the report's period, from its first event to its last, at least one hour;
* **fees and taxes** paid (sums over the fills);
* **slippage** against the decision price in basis points, positive = worse: a BUY's
  (price − decision) / decision, a SELL's the opposite (:func:`slippage_bps`);
* **orders**: how many, and how each ended (its last event) — filled, partially filled, cancelled, rejected,
  still open — with the reasons given for rejections and cancellations.

Nothing to report (no rows) gives a report saying so, never an error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from tapewatch.evaluation.reporting import MISSING, markdown_table, pct, save_chart
from tapewatch.records import MIN_SIZE, Fill, Order, OrderEvent, Portfolio, Record

HOUR_MS: Final = 3_600_000
#: the groupings every table is given for: column → heading
GROUPS: Final = {"account": "account", "symbol": "symbol", "signal_model": "signal model"}
#: the chart files a report may write, by name
CHARTS: Final = {"equity": "equity.png", "trades_per_hour": "trades_per_hour.png", "slippage": "slippage.png"}
#: an order's last event that leaves it working on the book
OPEN_EVENTS: Final = (OrderEvent.PLACED.value, OrderEvent.PARTIALLY_FILLED.value)


def conformed(frame: pd.DataFrame | None, record: type[Record]) -> pd.DataFrame:
    """``frame`` as the report reads it: an empty (or absent) one becomes an empty frame with every field of
    ``record``; a non-empty one must have them all (ValueError naming the missing)."""
    fields = list(record.model_fields)
    if frame is None or frame.empty:
        return pd.DataFrame({name: pd.Series(dtype="object") for name in fields})
    missing = [name for name in fields if name not in frame.columns]
    if missing:
        raise ValueError(f"{record.record_name} frame lacks column(s) {', '.join(missing)}")
    return frame.reset_index(drop=True)


def _sides(fills: pd.DataFrame) -> pd.Series:
    """+1 for a BUY, −1 for a SELL (the side as its string or its enum)."""
    return pd.Series(np.where(fills["side"].astype(str) == "BUY", 1.0, -1.0), index=fills.index)


def slippage_bps(fills: pd.DataFrame) -> pd.Series:
    """Each fill's price against its decision price in basis points, positive = worse than decided: a BUY's
    (price − decision) / decision × 10⁴, a SELL's (decision − price) / decision × 10⁴; NaN without a decision
    price."""
    decision = fills["decision_price"].astype("float64")
    return _sides(fills) * (fills["price"].astype("float64") - decision) / decision * 10_000


def _held_before(portfolio: pd.DataFrame, account: str, symbol: str, ts: int) -> float:
    """The quantity of ``symbol`` the account's newest snapshot before ``ts`` holds (0 without one)."""
    earlier = portfolio[(portfolio["account"] == account) & (portfolio["ts"] < ts)]
    if earlier.empty:
        return 0.0
    positions = earlier.sort_values(["ts", "seq"]).iloc[-1]["positions"]
    return float(positions.get(symbol, 0.0)) if isinstance(positions, dict) else 0.0


def closing_fills(fills: pd.DataFrame, portfolio: pd.DataFrame) -> pd.Series:
    """Whether each fill reduces (closes all or part of) its account's position in its symbol: its side is against
    the position held just before it, or it realised P&L (only a closing fill does: an opening one books its fee
    into the position's cost, :meth:`tapewatch.execution.portfolio.Ledger.fill`). Fills are replayed in time order from
    the position of the account's newest snapshot before its first fill in the symbol (flat without one); the realised
    P&L still tells a fill that closes a position opened before the data began."""
    closing = fills["realized_pnl"].astype("float64") != 0
    if fills.empty:
        return closing
    signed = _sides(fills) * fills["quantity"].astype("float64")
    ordered = fills.sort_values(["ts", "fill_id"], kind="stable")
    for (account, symbol), part in ordered.groupby(["account", "symbol"], sort=False):
        held = _held_before(portfolio, str(account), str(symbol), int(part["ts"].iloc[0]))
        for index in part.index:
            reduces = bool(held * signed[index] < 0)
            if reduces or not closing[index]:  # else it closed a position the data never saw open: held unchanged
                held += signed[index]
                held = 0.0 if abs(held) < MIN_SIZE else held  # a position closed in parts ends flat, not at 1e-17
            closing[index] = closing[index] or reduces
    return closing


def period_hours(*frames: pd.DataFrame) -> float:
    """Hours from the first event of the frames to the last, at least one (the denominator of trades per hour)."""
    times = [int(t) for frame in frames if not frame.empty for t in (frame["ts"].min(), frame["ts"].max())]
    return max(1.0, (max(times) - min(times)) / HOUR_MS) if times else 1.0


def fill_stats(fills: pd.DataFrame, closing: pd.Series, by: str, hours: float) -> pd.DataFrame:
    """Per value of column ``by``: fills, closing fills, wins, win rate, trades per hour, realised P&L, fees, taxes,
    notional and mean slippage (bps, over the fills with a decision price)."""
    frame = fills.assign(
        closing=closing.astype(bool),
        win=closing.astype(bool) & (fills["realized_pnl"].astype("float64") > 0),
        slippage=slippage_bps(fills),
        notional=fills["price"].astype("float64") * fills["quantity"].astype("float64"),
    )
    grouped = frame.groupby(by, sort=True)
    table = pd.DataFrame(
        {
            "fills": grouped.size(),
            "closing": grouped["closing"].sum(),
            "wins": grouped["win"].sum(),
            "realized_pnl": grouped["realized_pnl"].sum(),
            "fees": grouped["fee"].sum(),
            "taxes": grouped["tax"].sum(),
            "notional": grouped["notional"].sum(),
            "slippage_bps": grouped["slippage"].mean(),
        }
    )
    table["win_rate"] = (table["wins"] / table["closing"].where(table["closing"] > 0)).astype("float64")
    table["trades_per_hour"] = table["fills"] / hours
    return table


def order_stats(orders: pd.DataFrame, by: str) -> pd.DataFrame:
    """Per value of column ``by``: orders, and how many ended (their last event) filled, cancelled, rejected or
    still open; partially filled = ended with some but not all of the quantity filled (cancelled or open)."""
    last = orders.sort_values("revision").groupby(["account", "client_order_id"]).tail(1)
    event = last["event"].astype(str)
    filled = last["filled"].astype("float64")
    frame = last.assign(
        is_filled=event == OrderEvent.FILLED.value,
        is_partial=(filled > 0) & (filled < last["quantity"].astype("float64")) & (event != OrderEvent.FILLED.value),
        is_cancelled=event == OrderEvent.CANCELLED.value,
        is_rejected=event == OrderEvent.REJECTED.value,
        is_open=event.isin(OPEN_EVENTS),
    )
    grouped = frame.groupby(by, sort=True)
    return pd.DataFrame(
        {
            "orders": grouped.size(),
            "filled": grouped["is_filled"].sum(),
            "partially_filled": grouped["is_partial"].sum(),
            "cancelled": grouped["is_cancelled"].sum(),
            "rejected": grouped["is_rejected"].sum(),
            "open": grouped["is_open"].sum(),
        }
    )


def order_reasons(orders: pd.DataFrame) -> pd.DataFrame:
    """Orders that ended rejected or cancelled, counted per (event, reason), most frequent first."""
    last = orders.sort_values("revision").groupby(["account", "client_order_id"]).tail(1)
    ended = last[last["event"].astype(str).isin([OrderEvent.REJECTED.value, OrderEvent.CANCELLED.value])]
    reasons = ended["reason"].astype(str).replace("", "(none given)")
    counts = ended.assign(event=ended["event"].astype(str), reason=reasons).groupby(["event", "reason"]).size()
    table = counts.rename("orders").reset_index()
    return table.sort_values(["orders", "event", "reason"], ascending=[False, True, True], ignore_index=True)


def account_equity(portfolio: pd.DataFrame) -> pd.DataFrame:
    """Per account, from its snapshots in order: first and last equity, their difference (P&L over the period),
    the largest fall from a previous high (max drawdown, as a fraction of that high) and whether it ever halted."""
    rows = []
    for account, part in portfolio.sort_values(["ts", "seq"]).groupby("account", sort=True):
        equity = part["equity"].astype("float64").to_numpy()
        peaks = np.maximum.accumulate(equity)
        falls = np.where(peaks > 0, (peaks - equity) / np.where(peaks > 0, peaks, 1.0), 0.0)
        rows.append(
            {
                "account": account,
                "snapshots": len(part),
                "first_equity": float(equity[0]),
                "last_equity": float(equity[-1]),
                "pnl": float(equity[-1] - equity[0]),
                "max_drawdown": float(falls.max()),
                "halted": bool(part["halted"].astype(bool).any()),
            }
        )
    return pd.DataFrame(rows).set_index("account") if rows else pd.DataFrame()


@dataclass(frozen=True)
class TradeReport:
    """Every table of the report, computed once (the markdown and the charts read them)."""

    orders: pd.DataFrame
    fills: pd.DataFrame
    portfolio: pd.DataFrame
    closing: pd.Series
    hours: float

    @property
    def empty(self) -> bool:
        return self.orders.empty and self.fills.empty and self.portfolio.empty


def trade_report(
    orders: pd.DataFrame | None, fills: pd.DataFrame | None, portfolio: pd.DataFrame | None
) -> TradeReport:
    """The inputs conformed (:func:`conformed`), each fill's closing flag and the period in hours."""
    orders, fills, portfolio = conformed(orders, Order), conformed(fills, Fill), conformed(portfolio, Portfolio)
    closing = closing_fills(fills, portfolio)
    return TradeReport(orders, fills, portfolio, closing, period_hours(orders, fills, portfolio))


# -- markdown ------------------------------------------------------------------------------------------------
def _money(value: float) -> str:
    return MISSING if math.isnan(value) else f"{value:,.2f}"


def _bps(value: float) -> str:
    return MISSING if math.isnan(value) else f"{value:+.1f}"


def _time(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M UTC")


def _fills_table(report: TradeReport, by: str) -> list[str]:
    if report.fills.empty:
        return ["No fills yet."]
    table = fill_stats(report.fills, report.closing, by, report.hours)
    header = [GROUPS[by], "fills", "closing", "win rate", "trades /h", "realised P&L", "fees", "taxes", "notional",
              "slippage (bps)"]  # fmt: skip
    rows = [
        [str(key), f"{int(r['fills'])}", f"{int(r['closing'])}", pct(float(r["win_rate"])),
         f"{float(r['trades_per_hour']):.2f}", _money(float(r["realized_pnl"])), _money(float(r["fees"])),
         _money(float(r["taxes"])), _money(float(r["notional"])), _bps(float(r["slippage_bps"]))]
        for key, r in table.iterrows()
    ]  # fmt: skip
    return markdown_table(header, rows)


def _orders_table(report: TradeReport, by: str) -> list[str]:
    if report.orders.empty:
        return ["No orders yet."]
    table = order_stats(report.orders, by)
    header = [GROUPS[by], "orders", "filled", "partially filled", "cancelled", "rejected", "open", "fill rate"]
    rows = [
        [str(key), *(f"{int(r[c])}" for c in table.columns), pct(float(r["filled"]) / float(r["orders"]))]
        for key, r in table.iterrows()
    ]
    return markdown_table(header, rows)


def _accounts_section(report: TradeReport) -> list[str]:
    if report.portfolio.empty:
        return ["No portfolio snapshots yet."]
    table = account_equity(report.portfolio)
    header = ["account", "snapshots", "first equity", "last equity", "P&L", "max drawdown", "halted"]
    rows = [
        [str(key), f"{int(r['snapshots'])}", _money(float(r["first_equity"])), _money(float(r["last_equity"])),
         _money(float(r["pnl"])), pct(float(r["max_drawdown"])), "**yes**" if r["halted"] else "no"]
        for key, r in table.iterrows()
    ]  # fmt: skip
    return markdown_table(header, rows)


def _reasons_section(report: TradeReport) -> list[str]:
    reasons = order_reasons(report.orders) if not report.orders.empty else pd.DataFrame()
    if reasons.empty:
        return ["No order was rejected or cancelled."]
    rows = ([str(r.event), str(r.reason), str(r.orders)] for r in reasons.itertuples())
    return markdown_table(["ended", "reason", "orders"], rows)


def _frames(report: TradeReport) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return report.orders, report.fills, report.portfolio


def _period(report: TradeReport) -> str:
    times = [int(t) for frame in _frames(report) if not frame.empty for t in frame["ts"]]
    return f"{_time(min(times))} – {_time(max(times))}"


def _accounts(report: TradeReport) -> str:
    return ", ".join(sorted({str(a) for frame in _frames(report) for a in frame["account"]}))


def markdown(report: TradeReport, charts: Sequence[Path], scope: str = "") -> str:
    """The report's text; ``charts`` (written beside it) are shown at the end, ``scope`` says what was selected."""
    title = ["# Paper trading report", ""] + ([f"Selection: {scope}.", ""] if scope else [])
    if report.empty:
        return "\n".join([*title, "Nothing yet: no orders, fills or portfolio snapshots to report on.", ""])
    lines = [
        *title,
        f"Period {_period(report)} ({report.hours:.1f} h counted for trades per hour); accounts {_accounts(report)}.",
        "",
        "Win rate: closing fills (those that reduce the position held or realise P&L) with a realised P&L above 0, "
        "after fees and taxes. Trades per hour: fills ÷ the period. Slippage: the fill price against the price when "
        "the signal was decided, in basis points, positive = worse (a BUY above it, a SELL below it), mean over the "
        "fills that have a decision price. An order's outcome is its last event; partially filled = some but not all "
        "filled.",
        "",
        "## Accounts",
        "",
        *_accounts_section(report),
    ]
    for by, heading in GROUPS.items():
        lines += ["", f"## Per {heading}", "", "### Fills", "", *_fills_table(report, by)]
        lines += ["", "### Orders", "", *_orders_table(report, by)]
    lines += ["", "## Rejections and cancellations", "", *_reasons_section(report), ""]
    lines += [item for chart in charts for item in (f"![{chart.stem}]({chart.name})", "")]
    return "\n".join(lines)


# -- charts --------------------------------------------------------------------------------------------------
def _utc(ms: pd.Series) -> pd.Series:
    return pd.to_datetime(ms.astype("int64"), unit="ms", utc=True)


def equity_chart(portfolio: pd.DataFrame, path: Path) -> Path:
    """Each account's equity over time."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for account, part in portfolio.sort_values(["ts", "seq"]).groupby("account", sort=True):
        ax.plot(_utc(part["ts"]), part["equity"].astype("float64"), label=str(account), linewidth=1.2)
    ax.set_ylabel("equity")
    ax.set_xlabel("time (UTC)")
    ax.set_title("Equity per account")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    return save_chart(fig, path)


def trades_chart(fills: pd.DataFrame, path: Path) -> Path:
    """Fills per clock hour, per account."""
    hours = _utc(fills["ts"]).dt.floor("h")
    counts = fills.assign(hour=hours).groupby(["hour", "account"]).size().unstack("account", fill_value=0)
    counts = counts.reindex(pd.date_range(hours.min(), hours.max(), freq="h"), fill_value=0)  # quiet hours too
    slots, width = np.arange(len(counts)), 0.8 / len(counts.columns)
    fig, ax = plt.subplots(figsize=(9, 4))
    for n, account in enumerate(counts.columns):  # side by side within each hour's slot
        ax.bar(slots + n * width, counts[account].to_numpy(), width=width, align="edge", label=str(account))
    step = max(1, len(counts) // 12)  # at most a dozen hour labels
    labels = [hour.strftime("%m-%d %H:00") for hour in counts.index[::step]]
    ax.set_xticks(slots[::step] + 0.4, labels, rotation=30, ha="right")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("fills per hour")
    ax.set_xlabel("hour (UTC)")
    ax.set_title("Trades per hour")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_chart(fig, path)


def slippage_chart(fills: pd.DataFrame, path: Path) -> Path:
    """The distribution of slippage (bps) per signal model."""
    frame = fills.assign(slippage=slippage_bps(fills)).dropna(subset=["slippage"])
    bins = np.histogram_bin_edges(frame["slippage"], bins=30)  # the same for every model (one value: ±0.5)
    fig, ax = plt.subplots(figsize=(8, 4))
    for model, part in frame.groupby("signal_model", sort=True):
        ax.hist(
            part["slippage"], bins=bins.tolist(), alpha=0.55, label=f"{model} (mean {part['slippage'].mean():+.1f})"
        )
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("slippage vs decision price (bps, positive = worse)")
    ax.set_ylabel("fills")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_chart(fig, path)


def write_charts(report: TradeReport, out_dir: Path) -> list[Path]:
    """The charts there is data for."""
    charts = []
    if not report.portfolio.empty:
        charts.append(equity_chart(report.portfolio, out_dir / CHARTS["equity"]))
    if not report.fills.empty:
        charts.append(trades_chart(report.fills, out_dir / CHARTS["trades_per_hour"]))
        if slippage_bps(report.fills).notna().any():
            charts.append(slippage_chart(report.fills, out_dir / CHARTS["slippage"]))
    return charts


def write_trade_report(
    orders: pd.DataFrame | None,
    fills: pd.DataFrame | None,
    portfolio: pd.DataFrame | None,
    out_dir: Path,
    scope: str = "",
) -> dict[str, Path]:
    """Write ``report.md`` and its charts into ``out_dir``; returns their paths by name (``report`` first).
    Charts of an earlier report that this one has no data for are removed, so the folder shows only this one."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report = trade_report(orders, fills, portfolio)
    for stale in CHARTS.values():
        (out_dir / stale).unlink(missing_ok=True)
    charts = write_charts(report, out_dir)
    path = out_dir / "report.md"
    path.write_text(markdown(report, charts, scope), encoding="utf-8")
    return {"report": path, **{chart.stem: chart for chart in charts}}
