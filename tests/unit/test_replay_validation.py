from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tapewatch.errors import TapewatchError
from tapewatch.producers.framework import Emitter
from tapewatch.producers.replay import emit_rows, load
from tapewatch.records import Quote, Side
from tapewatch.ticks import Validated
from tests.recording_publisher import RecordingPublisher


def frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    data = pd.DataFrame(rows)
    data["_source"] = "test.csv"
    return data


GOOD = {
    "symbol": "2330",
    "ts": 1000,
    "price": 580.0,
    "size": 1000.0,
    "side": "B",
    "bid1": 579.0,
    "bidsz1": 5.0,
    "ask1": 580.0,
    "asksz1": 3.0,
}


@pytest.mark.parametrize(
    ("change", "field", "why"),
    [
        ({"symbol": None}, "symbol", "missing"),
        ({"symbol": "  "}, "symbol", "missing"),
        ({"ts": -5}, "ts", "non-negative integer"),
        ({"ts": 1.5}, "ts", "non-negative integer"),
        ({"ts": "soon"}, "ts", "not a number"),
        ({"price": 0.0}, "price", "within"),
        ({"price": 1e11}, "price", "within"),
        ({"symbol": "A B"}, "symbol", "instrument code"),
        ({"symbol": "A" * 33}, "symbol", "instrument code"),
        ({"ts": 4_102_444_800_000}, "ts", "2100"),
        ({"size": 1e-12}, "size", "at least"),
        ({"price": "abc"}, "price", "not a number"),
        ({"size": -1.0}, "size", "within"),
        ({"price": None, "size": 10.0}, "price", "needs a price"),
        ({"side": "X"}, "side", "B or S"),
        ({"bid1": -1.0}, "bid1", "within"),
        ({"bidsz1": None}, "bidsz1", "needs both"),
        ({"bid2": 579.5, "bidsz2": 1.0}, "bid2", "best first"),
        ({"ask2": 579.5, "asksz2": 1.0}, "ask2", "best first"),
        ({"bid3": 570.0, "bidsz3": 1.0}, "bid3", "bid2 missing"),
    ],
)
def test_bad_rows_are_rejected_with_field_and_reason(change: dict[str, object], field: str, why: str) -> None:
    v = Validated(frame([GOOD, {**GOOD, **change}, GOOD]), venue="replay")
    assert v.good.tolist() == [True, False, True]
    assert v.field[1] == field
    assert why in v.reason[1]


def test_good_rows_are_typed_and_ordered_by_event_time() -> None:
    v = Validated(frame([{**GOOD, "ts": 3000}, {**GOOD, "ts": 1000, "side": "sell"}, {**GOOD, "ts": 1000}]), "x")
    assert v.good.all()
    assert v.order.tolist() == [1, 2, 0]  # stable for equal times
    assert v.side[1] == "S"
    assert v.has_book.all()
    assert np.isnan(v.bid_px[0, 1])


def test_book_only_and_trade_only_rows() -> None:
    book_only = {"symbol": "A", "ts": 1, "bid1": 10.0, "bidsz1": 1.0}
    trade_only = {"symbol": "A", "ts": 2, "price": 10.0, "size": 5.0}
    no_trade = {"symbol": "A", "ts": 3}
    v = Validated(frame([book_only, trade_only, no_trade]), "x")
    assert v.good.all()
    assert v.has_book.tolist() == [True, False, False]
    assert np.isnan(v.price[0]) and v.price[1] == 10.0


def test_missing_columns_and_unknown_format(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("symbol,price\nA,1\n")
    with pytest.raises(TapewatchError, match="missing column"):
        load([tmp_path / "a.csv"])
    (tmp_path / "b.csv").write_text("symbol,ts,volume\nA,1,3\n")
    with pytest.raises(TapewatchError, match="needs trade columns"):
        load([tmp_path / "b.csv"])
    (tmp_path / "c.json").write_text("{}")
    with pytest.raises(TapewatchError, match="unsupported format"):
        load([tmp_path / "c.json"])
    with pytest.raises(TapewatchError, match="no such file"):
        load([tmp_path / "missing.csv"])


def test_a_trade_carries_the_quote_in_force_before_it() -> None:
    """The previous book row of the symbol, not the row's own book (taken after the trade)."""
    rows = [
        {**GOOD, "ts": 1000, "bid1": 579.0, "ask1": 580.0},
        {**GOOD, "symbol": "2317", "ts": 1500, "bid1": 100.0, "ask1": 101.0},
        {**GOOD, "ts": 2000, "bid1": 580.0, "ask1": 581.0},
    ]
    v = Validated(frame(rows), "x")
    assert np.isnan(v.quote_bid[0]) and np.isnan(v.quote_bid[1])
    assert (v.quote_bid[2], v.quote_ask[2]) == (579.0, 580.0)


def test_an_empty_side_is_no_side_and_the_row_replays(tmp_path: Path) -> None:
    """The side is optional: an empty field in a CSV (as `produce simulate --out-dir` writes for book rows and prints
    without a known aggressor) is a trade without a side, not a refused record."""
    path = tmp_path / "ticks.csv"
    path.write_text("symbol,ts,price,size,side\n2330,1000,580.0,10,\n2330,2000,580.5,10,S\n")
    v = Validated(load([path]), "replay")
    emitter = Emitter(RecordingPublisher(), "replay")  # type: ignore[arg-type]
    emit_rows(v.order, v, emitter, {})
    quotes = [record for _, record in emitter.publisher.published]  # type: ignore[attr-defined]
    assert [(q.price, q.side) for q in quotes if isinstance(q, Quote)] == [(580.0, None), (580.5, Side.SELL)]
