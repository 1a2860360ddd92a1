"""The paper-trading report (tapewatch.evaluation.paper_report) on small hand-made frames whose numbers are worked out
by hand: win rate, slippage sign, fees and taxes, trades per hour, order outcomes, and an empty input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tapewatch.evaluation.paper_report import (
    account_equity,
    closing_fills,
    fill_stats,
    order_reasons,
    order_stats,
    period_hours,
    slippage_bps,
    trade_report,
    write_trade_report,
)
from tapewatch.records import Fill, Order, Portfolio, Record

T0 = 1_764_000_000_000  # 2025-11-24 16:00 UTC
MINUTE = 60_000


def frame(records: list[Record]) -> pd.DataFrame:
    """As the loader gives them: one column per field, the records' own values."""
    return pd.DataFrame([r.__dict__ for r in records])


def fill(n: str, account: str, symbol: str, minute: int, side: str, quantity: float, price: float, **kw: Any) -> Fill:
    fields: dict[str, Any] = {
        "fee": 0.0, "tax": 0.0, "liquidity": "maker", "decision_price": None, "realized_pnl": 0.0,
        "signal_model": "dqn" if account == "a" else "lstm",
    } | kw  # fmt: skip
    return Fill(symbol=symbol, venue="sim", ts=T0 + minute * MINUTE, account=account, fill_id=f"{account}-{n}",
                client_order_id=f"{account}-o{n}", side=side, price=price, quantity=quantity, tape_price=price,
                signal_ts=T0, **fields)  # fmt: skip


def order(oid: str, account: str, revision: int, event: str, filled: float = 0.0, reason: str = "") -> Order:
    return Order(symbol="X" if account == "a" else "Y", venue="sim", ts=T0 + revision * MINUTE, account=account,
                 client_order_id=f"{account}-{oid}", revision=revision, event=event, side="BUY", price=100.0,
                 quantity=10.0, filled=filled, reason=reason, signal_model="dqn" if account == "a" else "lstm",
                 signal_version="v1", signal_ts=T0)  # fmt: skip


def snapshot(account: str, seq: int, minute: int, equity: float, positions: dict[str, float]) -> Portfolio:
    return Portfolio(symbol="X" if account == "a" else "Y", venue="sim", ts=T0 + minute * MINUTE, account=account,
                     seq=seq, reason="fill", cash=equity, equity=equity, gross_exposure=0.0, realized_pnl=0.0,
                     unrealized_pnl=0.0, day_pnl=0.0, fees=0.0, taxes=0.0, halted=False,
                     positions=positions)  # fmt: skip


def fills_frame() -> pd.DataFrame:
    return frame([
        # a round trip won, then one lost (the second SELL has no decision price)
        fill("1", "a", "X", 0, "BUY", 10, 100.0, decision_price=99.9, fee=1.0),  # opening: its fee is in the cost
        fill("2", "a", "X", 30, "SELL", 10, 101.0, decision_price=101.2, fee=1.0, tax=0.3, realized_pnl=8.7),
        fill("3", "a", "X", 60, "BUY", 5, 100.0, decision_price=100.0, fee=0.5),
        fill("4", "a", "X", 120, "SELL", 5, 99.0, fee=0.5, tax=0.15, realized_pnl=-5.65),
        # b sells the 2 Y its snapshot before holds, above the decision price (better: negative slippage)
        fill("1", "b", "Y", 60, "SELL", 2, 50.0, decision_price=49.0, fee=0.1, tax=0.05, realized_pnl=1.0),
    ])  # fmt: skip


def portfolio_frame() -> pd.DataFrame:
    return frame([
        snapshot("a", 0, 0, 1000.0, {"X": 10.0}),
        snapshot("a", 1, 30, 1007.7, {}),
        snapshot("a", 2, 120, 1002.05, {}),
        snapshot("b", 0, 0, 500.0, {"Y": 2.0}),
        snapshot("b", 1, 60, 450.0, {}),
        snapshot("b", 2, 90, 501.0, {}),
    ])  # fmt: skip


def orders_frame() -> pd.DataFrame:
    return frame([
        order("o1", "a", 0, "placed"), order("o1", "a", 1, "filled", 10.0),
        order("o2", "a", 0, "placed"), order("o2", "a", 1, "partially_filled", 3.0),
        order("o2", "a", 2, "cancelled", 3.0, "timeout"),
        order("o3", "a", 0, "rejected", reason="kill switch"),
        order("o4", "b", 0, "placed"),
    ])  # fmt: skip


def test_slippage_is_positive_when_worse_than_the_decision_price() -> None:
    got = slippage_bps(fills_frame())
    assert got[0] == pytest.approx((100.0 - 99.9) / 99.9 * 1e4)  # bought above: worse
    assert got[1] == pytest.approx((101.2 - 101.0) / 101.2 * 1e4)  # sold below: worse
    assert got[2] == 0.0
    assert pd.isna(got[3])  # no decision price
    assert got[4] == pytest.approx(-(50.0 - 49.0) / 49.0 * 1e4)  # sold above: better, negative
    assert got[0] > 0 and got[1] > 0 and got[4] < 0


def test_win_rate_fees_taxes_and_trades_per_hour_per_account_symbol_and_model() -> None:
    fills, portfolio = fills_frame(), portfolio_frame()
    closing = closing_fills(fills, portfolio)
    # a: the SELLs close; b: the SELL closes the 2 Y held by the snapshot before it
    assert closing.tolist() == [False, True, False, True, True]
    hours = period_hours(fills, portfolio)
    assert hours == 2.0  # T0 .. T0 + 120 min
    for by, keys in (("account", ["a", "b"]), ("symbol", ["X", "Y"]), ("signal_model", ["dqn", "lstm"])):
        table = fill_stats(fills, closing, by, hours)
        assert table.index.tolist() == keys
        first, second = table.loc[keys[0]], table.loc[keys[1]]
        assert (first["fills"], first["closing"], first["wins"]) == (4, 2, 1)
        assert first["win_rate"] == 0.5 and second["win_rate"] == 1.0
        assert first["trades_per_hour"] == 2.0 and second["trades_per_hour"] == 0.5
        assert first["fees"] == pytest.approx(3.0) and first["taxes"] == pytest.approx(0.45)
        assert second["fees"] == pytest.approx(0.1) and second["taxes"] == pytest.approx(0.05)
        assert first["realized_pnl"] == pytest.approx(3.05)
        slip = [(100.0 - 99.9) / 99.9 * 1e4, (101.2 - 101.0) / 101.2 * 1e4, 0.0]
        assert first["slippage_bps"] == pytest.approx(sum(slip) / 3)  # the fill without a decision price left out
        assert second["slippage_bps"] == pytest.approx(-1e4 / 49.0)


def test_a_short_position_is_closed_by_a_buy_and_a_position_closed_in_parts_ends_flat() -> None:
    fills = frame([
        fill("1", "a", "X", 0, "SELL", 5, 10.0), fill("2", "a", "X", 1, "BUY", 5, 10.0),
        fill("3", "a", "X", 2, "BUY", 0.3, 10.0), fill("4", "a", "X", 3, "SELL", 0.1, 10.0),
        fill("5", "a", "X", 4, "SELL", 0.2, 10.0), fill("6", "a", "X", 5, "BUY", 1, 10.0),
    ])  # fmt: skip
    assert closing_fills(fills, portfolio_frame().iloc[0:0]).tolist() == [False, True, False, True, True, False]


def test_a_fill_that_realised_pnl_closes_a_position_opened_before_the_data() -> None:
    # no snapshot before it: the replay starts flat, but a SELL that realised P&L closed something
    fills = frame([fill("1", "a", "X", 0, "SELL", 5, 10.0, realized_pnl=2.0), fill("2", "a", "X", 1, "BUY", 1, 10.0)])
    assert closing_fills(fills, portfolio_frame().iloc[0:0]).tolist() == [True, False]


def test_orders_end_filled_partially_filled_cancelled_rejected_or_open() -> None:
    orders = orders_frame()
    table = order_stats(orders, "account")
    assert list(table.loc["a"]) == [3, 1, 1, 1, 1, 0]  # orders, filled, partially, cancelled, rejected, open
    assert list(table.loc["b"]) == [1, 0, 0, 0, 0, 1]
    assert table.columns.tolist() == ["orders", "filled", "partially_filled", "cancelled", "rejected", "open"]
    reasons = order_reasons(orders)
    assert sorted(zip(reasons["event"], reasons["reason"], reasons["orders"], strict=True)) == [
        ("cancelled", "timeout", 1),
        ("rejected", "kill switch", 1),
    ]


def test_account_equity_change_and_drawdown() -> None:
    table = account_equity(portfolio_frame())
    assert table.loc["a", "pnl"] == pytest.approx(2.05)
    assert table.loc["b", "pnl"] == pytest.approx(1.0)
    assert table.loc["b", "max_drawdown"] == pytest.approx(0.1)  # 500 → 450
    assert not table.loc["a", "halted"]


def test_report_and_charts_are_written(tmp_path: Path) -> None:
    paths = write_trade_report(orders_frame(), fills_frame(), portfolio_frame(), tmp_path, scope="every account")
    assert list(paths) == ["report", "equity", "trades_per_hour", "slippage"]
    assert all(p.exists() and p.stat().st_size > 0 for p in paths.values())
    text = paths["report"].read_text()
    assert "Selection: every account." in text and "## Per signal model" in text
    assert "| a | 4 | 2 | 50.0 % | 2.00 | 3.05 | 3.00 | 0.45 |" in text
    assert "| rejected | kill switch | 1 |" in text
    assert "![equity](equity.png)" in text


@pytest.mark.parametrize("empty", [None, pd.DataFrame()])
def test_nothing_yet(tmp_path: Path, empty: pd.DataFrame | None) -> None:
    (tmp_path / "equity.png").write_bytes(b"an earlier report's chart")
    paths = write_trade_report(empty, empty, empty, tmp_path)
    assert list(paths) == ["report"]
    assert "Nothing yet" in paths["report"].read_text()
    assert not (tmp_path / "equity.png").exists()
    assert trade_report(empty, empty, empty).empty


def test_orders_without_fills_or_snapshots_still_report(tmp_path: Path) -> None:
    paths = write_trade_report(orders_frame(), None, None, tmp_path)
    text = paths["report"].read_text()
    assert "No fills yet." in text and "No portfolio snapshots yet." in text and "| b | 1 | 0 |" in text


def test_a_frame_missing_a_field_is_refused() -> None:
    with pytest.raises(ValueError, match="fill frame lacks column"):
        trade_report(None, fills_frame().drop(columns=["fee"]), None)
