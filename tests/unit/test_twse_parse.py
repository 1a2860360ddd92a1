"""TWSE MIS and STOCK_DAY parsing on payloads in the exact shapes of FEEDS.md (no I/O)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapewatch.errors import TapewatchError
from tapewatch.producers.twse import (
    MarketHours,
    TwsePoller,
    TwseState,
    load_channels,
    parse_body,
    parse_channels,
)
from tapewatch.producers.twse_daily import (
    COLUMNS,
    StockDayError,
    combine,
    month_range,
    output_path,
    parse_change,
    parse_stock_day,
    parse_symbols,
    roc_date,
    write_parquet,
)
from tapewatch.settings import Settings, SourceSettings

#: The example element of FEEDS.md, verbatim (intraday, nothing traded in this disclosure).
FEEDS_EXAMPLE: dict[str, str] = {
    "c": "1215",
    "n": "卜蜂",
    "ex": "tse",
    "d": "20210830",
    "t": "11:29:31",
    "tlong": "1630294171000",
    "z": "-",
    "tv": "-",
    "v": "227",
    "o": "79.5000",
    "h": "79.5000",
    "l": "79.2000",
    "y": "79.1000",
    "u": "87.0000",
    "w": "71.2000",
    "b": "79.3000_79.2000_79.1000_79.0000_78.9000_",
    "g": "13_39_41_31_12_",
    "a": "79.4000_79.5000_79.6000_79.7000_79.8000_",
    "f": "47_33_49_26_37_",
    "ts": "0",
}
PLACEHOLDER: dict[str, str] = {"tv": "-", "s": "-", "c": "", "z": "-"}
T0 = 1630294171000  # 2021-08-30 11:29:31 Asia/Taipei


def envelope(*elements: Any) -> bytes:
    return orjson.dumps(
        {
            "msgArray": list(elements),
            "referer": "",
            "userDelay": 5000,
            "rtcode": "0000",
            "rtmessage": "OK",
            "queryTime": {"sysDate": "20210830", "sysTime": "11:29:33"},
        }
    )


def element(**changes: str) -> dict[str, str]:
    """The FEEDS example with some keys replaced; a value of ``"<del>"`` removes the key."""
    out = dict(FEEDS_EXAMPLE)
    for key, value in changes.items():
        if value == "<del>":
            out.pop(key, None)
        else:
            out[key] = value
    return out


def trade(v: int, z: str = "79.4000", tv: int = 1, tick: int = 0, **changes: str) -> dict[str, str]:
    """A snapshot showing a trade, ``tick`` disclosures (5 s each) after the example's time."""
    return element(**({"z": z, "tv": str(tv), "v": str(v), "tlong": str(T0 + 5000 * tick)} | changes))


def quiet(v: int, tick: int = 0, **changes: str) -> dict[str, str]:
    """A snapshot with no trade in its disclosure."""
    return element(**({"z": "-", "tv": "-", "v": str(v), "tlong": str(T0 + 5000 * tick)} | changes))


# --- the example and the "-" cases -----------------------------------------------------------------------------
def test_feeds_example_element() -> None:
    batch = parse_body(envelope(FEEDS_EXAMPLE), TwseState())
    assert batch.error is None and not batch.rejected and batch.skipped == 0
    [quote] = batch.quotes
    [book] = batch.books
    assert quote.symbol == "1215" and quote.venue == "twse" and quote.ts == T0
    assert quote.price is None and quote.size == 0.0  # "-": nothing traded in this disclosure, no price invented
    assert quote.volume == 227_000.0  # 227 lots
    assert (quote.open, quote.high, quote.low, quote.prev_close) == (79.5, 79.5, 79.2, 79.1)
    assert (quote.bid, quote.ask) == (79.3, 79.4)
    assert quote.seq == 1
    assert book.symbol == "1215" and book.ts == T0 and book.venue == "twse"
    assert book.bids == [(79.3, 13_000.0), (79.2, 39_000.0), (79.1, 41_000.0), (79.0, 31_000.0), (78.9, 12_000.0)]
    assert book.asks == [(79.4, 47_000.0), (79.5, 33_000.0), (79.6, 49_000.0), (79.7, 26_000.0), (79.8, 37_000.0)]


def test_locked_limit_up_has_no_ask_side() -> None:
    locked = trade(v=5000, z="87.0000", tv=12, a="-", f="-", b="87.0000_86.9000_86.8000_", g="900_40_12_")
    [quote], [book] = (batch := parse_body(envelope(locked), TwseState())).quotes, batch.books
    assert book.asks == [] and quote.ask is None
    assert book.bids[0] == (87.0, 900_000.0) and quote.bid == 87.0
    assert quote.price == 87.0 and quote.size == 12_000.0


def test_locked_limit_down_has_no_bid_side() -> None:
    locked = trade(v=5000, z="71.2000", tv=3, b="-", g="-", a="71.2000_71.3000_", f="2000_5_")
    batch = parse_body(envelope(locked), TwseState())
    assert batch.books[0].bids == [] and batch.quotes[0].bid is None
    assert batch.books[0].asks == [(71.2, 2_000_000.0), (71.3, 5_000.0)]


def test_empty_book_and_no_open_before_the_first_trade() -> None:
    pre_open = quiet(v=0, o="-", h="-", l="-", b="-", g="-", a="-", f="-")
    batch = parse_body(envelope(pre_open), TwseState())
    [quote] = batch.quotes
    assert (quote.open, quote.high, quote.low) == (None, None, None) and quote.prev_close == 79.1
    assert (quote.bid, quote.ask, quote.price, quote.size) == (None, None, None, 0.0)
    assert batch.books[0].bids == [] and batch.books[0].asks == []


def test_dash_volume_before_any_trade_is_zero() -> None:
    batch = parse_body(envelope(quiet(v=0) | {"v": "-"}), TwseState())
    assert batch.quotes[0].volume == 0.0 and batch.quotes[0].price is None


def test_missing_book_keys_are_an_empty_book() -> None:
    batch = parse_body(envelope(quiet(v=227, b="<del>", g="<del>", a="<del>", f="<del>")), TwseState())
    assert batch.books[0].bids == [] and batch.books[0].asks == []


def test_two_and_four_decimal_prices() -> None:
    old = trade(v=10, z="79.30", o="79.50", h="79.50", l="79.20", y="79.10", b="79.30_79.20_", g="1_2_")
    old |= {"a": "79.40_79.50_", "f": "3_4_"}
    new = trade(v=10, z="1530.0000", o="1525.0000", h="1535.0000", l="1520.0000", y="1520.0000")
    new |= {"c": "2330", "b": "1530.0000_1525.0000_", "g": "100_200_", "a": "1535.0000_", "f": "50_"}
    batch = parse_body(envelope(old, new), TwseState())
    by_symbol = {q.symbol: q for q in batch.quotes}
    assert by_symbol["1215"].price == 79.3 and by_symbol["1215"].open == 79.5 and by_symbol["1215"].ask == 79.4
    assert by_symbol["2330"].price == 1530.0 and by_symbol["2330"].bid == 1530.0 and by_symbol["2330"].ask == 1535.0


def test_otc_is_tpex() -> None:
    otc = trade(v=3, ex="otc", c="6547", n="高端疫苗")
    assert parse_body(envelope(otc), TwseState()).quotes[0].venue == "tpex"


def test_zero_price_level_is_left_out() -> None:
    auction = quiet(v=0, b="0.0000_79.3000_", g="50_13_")
    assert parse_body(envelope(auction), TwseState()).books[0].bids == [(79.3, 13_000.0)]


# --- volume from the cumulative counter ------------------------------------------------------------------------
def sizes(*snapshots: dict[str, str]) -> list[tuple[float | None, float]]:
    state = TwseState()
    out: list[tuple[float | None, float]] = []
    for snapshot in snapshots:
        batch = parse_body(envelope(snapshot), state)
        assert not batch.rejected and batch.error is None
        out.extend((q.price, q.size) for q in batch.quotes)
    return out


def test_first_snapshot_of_the_day_takes_its_size_from_tv() -> None:
    assert sizes(trade(v=100, tv=5)) == [(79.4, 5_000.0)]
    assert sizes(quiet(v=100)) == [(None, 0.0)]


def test_sizes_come_from_v_deltas_not_tv() -> None:
    result = sizes(
        trade(v=100, tv=5, tick=0),
        # tv repeats the disclosure's volume; the v delta is what traded since the last poll
        trade(v=103, tv=3, tick=1, z="79.5000"),
        trade(v=110, tv=2, tick=2, z="79.6000"),  # 7 lots since: a disclosure in between was not polled
    )
    assert result == [(79.4, 5_000.0), (79.5, 3_000.0), (79.6, 7_000.0)]


def test_a_re_served_disclosure_is_not_counted_twice() -> None:
    # Same trade and cumulative volume, new snapshot time: the trade was already counted.
    result = sizes(trade(v=100, tv=5, tick=0), trade(v=100, tv=5, tick=1))
    assert result == [(79.4, 5_000.0), (None, 0.0)]


def test_volume_without_a_shown_trade_waits_for_the_next_price() -> None:
    result = sizes(
        trade(v=100, tv=5, tick=0),
        quiet(v=104, tick=1),  # 4 lots traded in a disclosure we missed; no price to give them
        trade(v=106, tv=2, tick=2, z="79.5000"),
    )
    assert result == [(79.4, 5_000.0), (None, 0.0), (79.5, 6_000.0)]
    assert sum(size for _, size in result) == (106 - 100 + 5) * 1000


def test_a_new_day_resets_the_counter() -> None:
    result = sizes(
        trade(v=30_000, tv=5, tick=0),
        trade(v=30_100, tv=7, tick=1, z="79.5000", d="20210831", tlong=str(T0 + 86_400_000)),
    )
    # Not 100 lots: a new day starts a new baseline, and only the shown trade is sized.
    assert result == [(79.4, 5_000.0), (79.5, 7_000.0)]


def test_a_falling_counter_is_a_new_session() -> None:
    result = sizes(trade(v=500, tv=5, tick=0), trade(v=12, tv=4, tick=1, z="79.5000"), trade(v=20, tick=2))
    assert result == [(79.4, 5_000.0), (79.5, 4_000.0), (79.4, 8_000.0)]


@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=50), st.booleans(), st.integers(min_value=1, max_value=9)),
        min_size=1,
        max_size=40,
    )
)
def test_sizes_never_double_count(steps: list[tuple[int, bool, int]]) -> None:
    """Whatever the mix of trades, quiet snapshots and repeats: sizes add up to the volume seen with a price."""
    state = TwseState()
    v = 1000
    total = 0.0
    first_size: float | None = None
    attributed_v = v
    for tick, (growth, traded, tv) in enumerate(steps):
        v += growth
        snapshot = trade(v=v, tv=tv, tick=tick) if traded else quiet(v=v, tick=tick)
        [quote] = parse_body(envelope(snapshot), state).quotes
        assert quote.volume == v * 1000
        if quote.price is None:
            assert quote.size == 0.0
        total += quote.size
        if first_size is None:
            first_size = quote.size
            attributed_v = v
        elif quote.price is not None:
            attributed_v = v
    assert first_size is not None
    assert total == first_size + (attributed_v - (1000 + steps[0][0])) * 1000


# --- duplicates ------------------------------------------------------------------------------------------------
def test_identical_snapshots_are_skipped() -> None:
    state = TwseState()
    first = parse_body(envelope(FEEDS_EXAMPLE), state)
    again = parse_body(envelope(FEEDS_EXAMPLE), state)
    assert len(first.quotes) == 1
    assert again.quotes == [] and again.books == [] and again.skipped == 1


def test_keys_outside_the_market_data_do_not_defeat_duplicate_detection() -> None:
    state = TwseState()
    parse_body(envelope(element(**{"%": "11:29:33"})), state)
    assert parse_body(envelope(element(**{"%": "11:29:38"})), state).skipped == 1


def test_a_changed_book_is_not_a_duplicate() -> None:
    state = TwseState()
    parse_body(envelope(FEEDS_EXAMPLE), state)
    batch = parse_body(envelope(element(g="14_39_41_31_12_")), state)
    assert batch.skipped == 0 and batch.books[0].bids[0] == (79.3, 14_000.0)
    assert batch.quotes[0].seq == 2


# --- dead letters ----------------------------------------------------------------------------------------------
def test_placeholder_and_malformed_elements_are_rejected_and_the_rest_passes() -> None:
    state = TwseState()
    good = trade(v=100, c="2330", tv=5)
    bad_elements: list[Any] = [
        PLACEHOLDER,
        trade(v=1, c="2317") | {"v": "1,234"},
        trade(v=1, c="2454", tlong="<del>"),
        trade(v=1, c="2308", z="abc"),
        trade(v=1, c="2303", ex="xyz"),
        trade(v=1, c="2412", g="13_39_"),
        trade(v=1, c="2882", b="79.2000_79.3000_", g="1_2_"),  # best bid must come first
        trade(v=1, c="1101") | {"tv": 5},  # a number where MIS always sends a string
        ["not", "an", "object"],
    ]
    batch = parse_body(envelope(good, *bad_elements, quiet(v=227)), state, ["tse_2330.tw", "tse_9999.tw"])
    assert batch.error is None
    assert [q.symbol for q in batch.quotes] == ["2330", "1215"]
    assert len(batch.books) == 2
    by_field = {r.field: r for r in batch.rejected}
    assert len(batch.rejected) == len(bad_elements)
    placeholder = by_field["c"]
    assert placeholder.reason.startswith("placeholder element") and "tse_9999.tw" in placeholder.reason
    assert orjson.loads(placeholder.raw) == PLACEHOLDER and placeholder.key is None
    assert by_field["v"].reason.startswith("v: not a number") and by_field["v"].key == b"2317"
    assert by_field["tlong"].reason == "tlong: missing"
    assert by_field["z"].reason.startswith("z: not a number")
    assert by_field["ex"].reason.startswith("ex: unknown market")
    assert by_field["g"].reason.startswith("g: 2 volumes for 5 prices")
    assert "ordered best first" in by_field["b"].reason
    assert by_field["tv"].reason == "tv: expected a string, got int"
    assert by_field[None].reason.startswith("element is not a JSON object")
    # The raw bytes are the element itself, so a fixed parser can replay it.
    assert orjson.loads(by_field["v"].raw)["v"] == "1,234"


def test_values_too_large_for_a_record_are_rejected_not_crashes() -> None:
    batch = parse_body(
        envelope(
            trade(v=1, c="2330", tlong="9" * 30),
            trade(v=1, c="2317") | {"v": "9" * 400},  # parses to inf
            trade(v=1, c="2454", z="9" * 400),
            trade(v=100, tv=5),
        ),
        TwseState(),
    )
    assert [q.symbol for q in batch.quotes] == ["1215"]
    by_key = {r.key: r for r in batch.rejected}
    assert by_key[b"2330"].field == "tlong"
    assert by_key[b"2317"].field == "v" and by_key[b"2317"].reason.startswith("v: quote.")
    assert by_key[b"2454"].field == "z"


def test_a_rejected_snapshot_leaves_the_volume_baseline_alone() -> None:
    state = TwseState()
    parse_body(envelope(trade(v=100, tv=5, tick=0)), state)
    bad = parse_body(envelope(trade(v=150, tick=1, o="oops")), state)
    assert bad.rejected[0].field == "o" and not bad.quotes
    [quote] = parse_body(envelope(trade(v=103, tick=2, z="79.5000")), state).quotes
    assert quote.size == 3_000.0 and quote.seq == 2


def test_an_unchanged_placeholder_is_dead_lettered_once() -> None:
    state = TwseState()
    first = parse_body(envelope(FEEDS_EXAMPLE, PLACEHOLDER), state, ["tse_1215.tw", "tse_9999.tw"])
    second = parse_body(envelope(quiet(v=228, tick=1), PLACEHOLDER), state, ["tse_1215.tw", "tse_9999.tw"])
    assert len(first.rejected) == 1
    assert second.rejected == [] and second.skipped == 1 and len(second.quotes) == 1


@pytest.mark.parametrize(
    ("body", "error", "dead_lettered"),
    [
        (b"<html><body>Too many requests</body></html>", "non-JSON body", True),
        (b"", "non-JSON body", True),
        (orjson.dumps({"msgArray": [], "rtcode": "0000", "rtmessage": "OK"}), "empty msgArray", False),
        (orjson.dumps({"rtcode": "5001", "rtmessage": "Not Found"}), "no msgArray", True),
        (orjson.dumps({"msgArray": {"c": "2330"}}), "msgArray is a dict", True),
        (orjson.dumps([FEEDS_EXAMPLE]), "body is a JSON list", True),
    ],
)
def test_unusable_envelopes_are_errors_not_crashes(body: bytes, error: str, dead_lettered: bool) -> None:
    batch = parse_body(body, TwseState())
    assert batch.error is not None and batch.error.startswith(error)
    assert batch.quotes == [] and batch.books == []
    assert [r.raw for r in batch.rejected] == ([body] if dead_lettered else [])


# --- channels, hours, the poller's guards ----------------------------------------------------------------------
def test_channels_from_settings_and_files(tmp_path: Path) -> None:
    assert parse_channels("tse_2330.tw, otc_6547.tw,tse_2330.tw") == ["tse_2330.tw", "otc_6547.tw"]
    listing = tmp_path / "symbols.txt"
    listing.write_text("# watch list\ntse_2330.tw\n\notc_6547.tw  # biotech\n", encoding="utf-8")
    settings = Settings(sources=SourceSettings(twse_symbols="tse_2317.tw"))
    assert load_channels(settings, listing) == ["tse_2330.tw", "otc_6547.tw"]
    assert load_channels(settings) == ["tse_2317.tw"]
    listing.write_text("2330\n", encoding="utf-8")
    with pytest.raises(TapewatchError, match=r"expected tse_CODE\.tw"):
        load_channels(settings, listing)
    with pytest.raises(TapewatchError, match="no channels"):
        load_channels(Settings(sources=SourceSettings(twse_symbols=" , ")))


def taipei(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=MarketHours().tz)


def test_market_hours() -> None:
    hours = MarketHours()
    assert hours.is_open(taipei(2026, 3, 2, 9, 0))  # a Monday
    assert hours.is_open(taipei(2026, 3, 2, 13, 31))  # lingering for the closing auction's disclosure
    assert not hours.is_open(taipei(2026, 3, 2, 13, 35))
    assert not hours.is_open(taipei(2026, 3, 2, 8, 59))
    assert not hours.is_open(taipei(2026, 3, 7, 10, 0))  # Saturday
    # Friday afternoon → Monday morning; the answer is the same instant whatever zone "now" is given in.
    friday = taipei(2026, 3, 6, 14, 0)
    assert hours.next_open(friday.astimezone(UTC)) == taipei(2026, 3, 9, 9, 0)
    assert hours.seconds_until_open(friday) == timedelta(days=2, hours=19).total_seconds()
    assert hours.seconds_until_open(taipei(2026, 3, 2, 10, 0)) == 0.0
    assert hours.next_open(taipei(2026, 3, 2, 7, 0)) == taipei(2026, 3, 2, 9, 0)
    custom = MarketHours.parse("08:30-13:40")
    assert custom.is_open(taipei(2026, 3, 2, 8, 45)) and not custom.is_open(taipei(2026, 3, 2, 13, 43))
    for bad in ("9-13", "13:30-09:00", "25:00-26:00"):
        with pytest.raises(ValueError, match="hours"):
            MarketHours.parse(bad)


def test_the_poller_keeps_the_5s_floor() -> None:
    # Settings.updated(...) skips validation, so a settings object can claim less than the field allows.
    fast = Settings().updated(sources={"twse_poll_interval_s": 0.5, "twse_mis_url": "http://127.0.0.1:9"})
    assert TwsePoller(fast, ["tse_2330.tw"]).interval_s == 5.0
    assert TwsePoller(fast, ["tse_2330.tw"], test_interval_s=0.5).interval_s == 0.5
    with pytest.raises(ValueError, match="only for local test servers"):
        TwsePoller(Settings(), ["tse_2330.tw"], test_interval_s=0.5)
    with pytest.raises(ValueError, match="not a MIS channel"):
        TwsePoller(fast, ["2330"])


def test_request_url_batches_every_channel() -> None:
    poller = TwsePoller(Settings(), ["tse_2330.tw", "otc_6547.tw"])
    url = poller.request_url()
    assert url.path == "/stock/api/getStockInfo.jsp"
    assert url.query["ex_ch"] == "tse_2330.tw|otc_6547.tw"
    assert "ex_ch=tse_2330.tw%7Cotc_6547.tw" in url.raw_query_string
    assert url.query["json"] == "1" and url.query["delay"] == "0" and url.query["_"].isdigit()


# --- STOCK_DAY -------------------------------------------------------------------------------------------------
FIELDS_10 = ["日期", "成交股數", "成交金額", "開盤價", "最高價", "最低價", "收盤價", "漲跌價差", "成交筆數", "註記"]
FIELDS_9 = ["日期", "成交股數", "成交金額", "開盤價", "最高價", "最低價", "收盤價", "漲跌價差", "成交筆數"]


def stock_day(fields: list[str], rows: list[list[str]], stat: str = "OK") -> bytes:
    return orjson.dumps(
        {
            "stat": stat,
            "date": "20260201",
            "title": "115年02月 2330 台積電           各日成交資訊",
            "fields": fields,
            "data": rows,
            "notes": [
                "符號說明:+/-/X表示漲/跌/不比價",
                "當日統計資訊含一般、零股、盤後定價、鉅額交易，不含拍賣、標購。",
            ],
            "total": len(rows),
        }
    )


def test_stock_day_ten_fields() -> None:
    rows = [
        ["115/02/02", "33,342,359", "58,467,099,660", "1,750.00", "1,765.00", "1,745.00", "1,765.00", "-10.00",
         "227,693", ""],
        ["115/02/03", "40,001,000", "71,218,000,000", "1,770.00", "1,800.00", "1,765.00", "1,800.00", "+35.00",
         "301,220", ""],
        ["115/02/04", "20,000,000", "36,000,000,000", "1,800.00", "1,800.00", "1,800.00", "1,800.00", " 0.00",
         "150,000", ""],
        ["115/02/05", "25,000,000", "44,250,000,000", "1,770.00", "1,775.00", "1,765.00", "1,770.00", "X0.00",
         "180,000", "除息"],
    ]  # fmt: skip
    month = parse_stock_day(stock_day(FIELDS_10, rows), "2330", date(2026, 2, 1))
    frame = month.frame
    assert list(frame.columns) == list(COLUMNS) and not month.no_data and month.skipped == []
    assert list(frame["date"]) == [pd.Timestamp(f"2026-02-0{d}") for d in (2, 3, 4, 5)]
    first = frame.iloc[0]
    assert first["symbol"] == "2330"
    assert (first["open"], first["high"], first["low"], first["close"]) == (1750.0, 1765.0, 1745.0, 1765.0)
    assert first["volume"] == 33_342_359 and first["turnover"] == 58_467_099_660 and first["trades"] == 227_693
    assert list(frame["change"])[:3] == [-10.0, 35.0, 0.0]
    assert math.isnan(frame["change"].iloc[3])  # X: not comparable with the previous close
    assert str(frame["volume"].dtype) == "int64" and str(frame["date"].dtype) == "datetime64[ns]"


def test_stock_day_nine_fields_in_another_order_parse_by_name() -> None:
    fields = ["日期", "開盤價", "最高價", "最低價", "收盤價", "漲跌價差", "成交股數", "成交金額", "成交筆數"]
    assert sorted(fields) == sorted(FIELDS_9)
    rows = [["108/01/02", "226.50", "226.50", "219.00", "219.50", "-6.00", "32,900,482", "7,276,419,180", "11,006"]]
    frame = parse_stock_day(stock_day(fields, rows), "2330", date(2019, 1, 1)).frame
    [row] = frame.to_dict("records")
    assert row["date"] == pd.Timestamp("2019-01-02")
    assert (row["open"], row["close"], row["change"]) == (226.5, 219.5, -6.0)
    assert (row["volume"], row["turnover"], row["trades"]) == (32_900_482, 7_276_419_180, 11_006)


def test_stock_day_no_data_is_an_empty_month() -> None:
    month = parse_stock_day(orjson.dumps({"stat": "很抱歉，沒有符合條件的資料!"}), "2330")
    assert month.no_data and month.frame.empty and list(month.frame.columns) == list(COLUMNS)


def test_stock_day_untradeable_days_and_bad_rows() -> None:
    rows = [
        ["115/02/02", "0", "0", "--", "--", "--", "--", " 0.00", "0", ""],  # suspended: no prices
        ["115/02/03", "1,000"],  # truncated row
        ["115/02/04", "abc", "0", "1.00", "1.00", "1.00", "1.00", " 0.00", "1", ""],
        ["115/01/30", "1,000", "1,000", "1.00", "1.00", "1.00", "1.00", " 0.00", "1", ""],  # another month
    ]
    month = parse_stock_day(stock_day(FIELDS_10, rows), "2330", date(2026, 2, 1))
    assert len(month.frame) == 1 and math.isnan(month.frame["close"].iloc[0])
    assert len(month.skipped) == 3


def test_stock_day_unusable_answers() -> None:
    with pytest.raises(StockDayError, match="non-JSON") as non_json:
        parse_stock_day(b"<html>blocked</html>", "2330")
    assert non_json.value.retryable
    with pytest.raises(StockDayError, match="no column for close") as layout:
        parse_stock_day(stock_day([f for f in FIELDS_10 if f != "收盤價"], []), "2330")
    assert not layout.value.retryable
    with pytest.raises(StockDayError, match="stat"):
        parse_stock_day(orjson.dumps({"stat": "系統忙碌中"}), "2330")


def test_roc_dates_and_changes() -> None:
    assert roc_date("115/02/02") == date(2026, 2, 2)
    assert roc_date("99/01/04") == date(2010, 1, 4)
    assert roc_date("2026/02/02") == date(2026, 2, 2)
    assert parse_change("+35.00") == 35.0 and parse_change("-10.00") == -10.0 and parse_change(" 0.00") == 0.0
    assert math.isnan(parse_change("X0.00")) and math.isnan(parse_change("--"))
    assert parse_change("<p style= color:red>+</p>1.50") == 1.5


def test_months_symbols_and_output(tmp_path: Path) -> None:
    assert month_range("2025-11", "2026-02", today=date(2026, 5, 20)) == [
        date(2025, 11, 1),
        date(2025, 12, 1),
        date(2026, 1, 1),
        date(2026, 2, 1),
    ]
    with pytest.raises(ValueError, match="before start"):
        month_range("2026-02", "2026-01", today=date(2026, 5, 20))
    with pytest.raises(ValueError, match="after the current month"):
        month_range("2026-05", "2026-06", today=date(2026, 5, 20))
    with pytest.raises(ValueError, match="2024-01"):
        month_range("2026-13", "2026-13")
    assert parse_symbols(["2330,2317", "tse_2454.tw", "2330"]) == ["2330", "2317", "2454"]
    with pytest.raises(ValueError, match="tse"):
        parse_symbols(["otc_6547.tw"])
    assert output_path(tmp_path / "a.parquet", date(2026, 1, 1), date(2026, 2, 1)) == tmp_path / "a.parquet"
    assert output_path(tmp_path, date(2026, 1, 1), date(2026, 2, 1)).name == "twse_daily_202601_202602.parquet"


def test_combine_and_parquet_round_trip(tmp_path: Path) -> None:
    row = ["115/02/02", "1,000", "2,000", "2.00", "2.00", "2.00", "2.00", "+0.10", "3", ""]
    january = parse_stock_day(stock_day(FIELDS_10, [row]), "2330").frame
    again = parse_stock_day(stock_day(FIELDS_10, [row]), "2330").frame
    other = parse_stock_day(stock_day(FIELDS_10, [row]), "1215").frame
    frame = combine(
        [again, january, other, parse_stock_day(orjson.dumps({"stat": "很抱歉，沒有符合條件的資料!"}), "x").frame]
    )
    assert list(frame["symbol"]) == ["1215", "2330"]
    path = write_parquet(frame, tmp_path / "out" / "daily.parquet")
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, frame)
    assert not list(path.parent.glob(".*partial"))
