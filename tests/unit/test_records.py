from __future__ import annotations

import math
import re
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapewatch.records import (
    MAX_EPOCH_MS,
    MAX_PRICE,
    MAX_SIZE,
    SYMBOL_PATTERN,
    Action,
    Alert,
    AlertKind,
    Bar,
    Book,
    Episode,
    Features,
    Quote,
    RecordError,
    Score,
    Severity,
    VenueIndicator,
    WashTest,
    alert_id,
)

QUOTE: dict[str, Any] = {
    "symbol": "2330",
    "venue": "twse",
    "ts": 1_700_000_000_000,
    "price": 580.0,
    "size": 2000.0,
    "volume": 123_000.0,
    "open": 575.0,
    "high": 582.0,
    "low": 574.0,
    "prev_close": 576.0,
    "bid": 579.0,
    "ask": 580.0,
    "side": "B",
    "seq": 7,
}

EXAMPLES = [
    Quote(**QUOTE),
    Quote(symbol="BTCUSDT", venue="binance", ts=1, price=None, size=0.0),
    Book(symbol="2330", venue="twse", ts=5, bids=[(579.0, 10.0), (578.0, 3.0)], asks=[(580.0, 4.0)]),
    Book(symbol="2330", venue="twse", ts=5, bids=[], asks=[]),
    Bar(
        symbol="2330",
        venue="twse",
        start=0,
        end=60_000,
        open=1.0,
        high=2.0,
        low=0.5,
        close=1.5,
        volume=10.0,
        vwap=1.2,
        trades=3,
        price_change_pct=None,
        volume_change_pct=12.5,
    ),
    Features(symbol="X", venue="sim", ts=1, values={"ret_1m": 0.1, "rsi_14": None}, version="1", cadence="fast"),
    Score(
        symbol="X",
        venue="sim",
        ts=1,
        model_version="km-1",
        cluster=2,
        distance=3.5,
        score=0.9,
        top_features=[("volume_z", 2.5), ("ret_1m", 1.0)],
    ),
    Alert(
        alert_id=alert_id("X", "spoofing", 0),
        symbol="X",
        venue="sim",
        ts=10,
        kind=AlertKind.SPOOFING,
        severity=Severity.HIGH,
        score=0.97,
        window_start=0,
        window_end=10,
        evidence={"cancel_ratio": 0.9, "side": "bid"},
        model_version="rules-1",
        message="layering on the bid",
    ),
    Action(
        symbol="X",
        venue="sim",
        ts=1,
        action="BUY",
        q_values={"HOLD": 0.1, "BUY": 0.3, "SELL": -0.2},
        position=1,
        model_version="dqn-1",
    ),
    Episode(symbol="X", venue="sim", kind=AlertKind.PUMP_AND_DUMP, start=0, end=600_000),
    VenueIndicator(
        symbol="BTCUSD",
        venue="bitstamp",
        ts=86_400_000,
        window_start=0,
        window_end=86_400_000,
        complete=True,
        trades=14_142,
        lot=1e-8,
        benford=WashTest.CONFORMS,
        benford_n=14_140,
        benford_chi2=12.5,
        benford_p=0.13,
        benford_mad=0.004,
        benford_band="close",
        decades=3,
        rounding=WashTest.NOT_ENOUGH_TRADES,
        round_at=20,
        round_near=3,
        version="venue-wash-1",
    ),
]


@pytest.mark.parametrize("record", EXAMPLES, ids=lambda r: type(r).__name__)
def test_round_trip(record: Any) -> None:
    raw = record.to_json()
    again = type(record).from_json(raw)
    assert again == record
    assert again.to_json() == raw
    assert record.key() == record.symbol.encode()


def test_wire_names_are_the_documented_ones() -> None:
    alert = orjson.loads(EXAMPLES[7].to_json())
    assert alert["kind"] == "spoofing" and alert["severity"] == "high"
    quote = orjson.loads(EXAMPLES[0].to_json())
    assert quote["side"] == "B"
    book = orjson.loads(EXAMPLES[2].to_json())
    assert book["bids"] == [[579.0, 10.0], [578.0, 3.0]]


def test_extra_fields_are_tolerated() -> None:
    quote = Quote.from_json(orjson.dumps({**QUOTE, "exchange_extra": {"x": 1}, "future_field": 3}))
    assert quote.price == 580.0


def test_a_book_is_not_a_quote_nor_a_quote_a_book() -> None:
    """A payload on the wrong topic is refused, not read as a quote without a trade (or a book without levels)."""
    book = {"symbol": "2330", "venue": "twse", "ts": 1, "bids": [[600.0, 5.0]], "asks": [[601.0, 2.0]]}
    with pytest.raises(RecordError, match=re.escape("a book's field(s) asks, bids: wrong topic")):
        Quote.from_json(orjson.dumps(book))
    with pytest.raises(RecordError, match=r"a quote's field.*price"):
        Book.from_json(orjson.dumps(QUOTE))
    with pytest.raises(RecordError, match="asks"):
        Quote.from_json(orjson.dumps({**QUOTE, "asks": []}))


def test_extra_fields_are_kept_out_of_the_wire_form() -> None:
    raw = orjson.dumps({**QUOTE, "future_field": 3})
    assert Quote.from_json(raw).to_json() == Quote.from_json(orjson.dumps(QUOTE)).to_json()


def test_integers_are_accepted_for_floats() -> None:
    assert Quote.from_json(orjson.dumps({**QUOTE, "price": 580})).price == 580.0


def field_of(raw: bytes | str, record: type[Any] = Quote) -> RecordError:
    with pytest.raises(RecordError) as info:
        record.from_json(raw)
    return info.value


@pytest.mark.parametrize(
    ("mutation", "field"),
    [
        ({"symbol": None}, "symbol"),
        ({"symbol": ""}, "symbol"),
        ({"ts": "1700000000000"}, "ts"),  # numbers as strings are not guessed at
        ({"ts": -1}, "ts"),
        ({"ts": 1.5}, "ts"),
        ({"price": "580.0"}, "price"),
        ({"price": 0}, "price"),
        ({"price": -3.0}, "price"),
        ({"size": -1.0}, "size"),
        ({"side": "X"}, "side"),
        ({"seq": -1}, "seq"),
        ({"bid": True}, "bid"),
    ],
)
def test_mistyped_field_is_named(mutation: dict[str, Any], field: str) -> None:
    error = field_of(orjson.dumps({**QUOTE, **mutation}))
    assert error.field == field
    assert error.record == "quote"
    assert field in str(error)


@pytest.mark.parametrize("missing", ["symbol", "venue", "ts"])
def test_missing_required_field_is_named(missing: str) -> None:
    payload = {k: v for k, v in QUOTE.items() if k != missing}
    error = field_of(orjson.dumps(payload))
    assert error.field == missing
    assert "required" in error.reason.lower()


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"not json", b"\xff\xfe"],
)
def test_invalid_json(raw: bytes) -> None:
    error = field_of(raw)
    assert error.field is None
    assert "invalid JSON" in error.reason


def test_nan_token_is_refused_by_the_field_it_fills() -> None:
    # pydantic's parser reads the NaN extension; the strict, finite-only fields then refuse it
    assert field_of(b'{"symbol": NaN}').field == "symbol"
    price = b'{"symbol": "A", "venue": "v", "ts": 1, "price": NaN, "size": 1.0}'
    assert field_of(price).field == "price"


@pytest.mark.parametrize("raw", [b"[]", b"1", b'"x"', b"null"])
def test_non_object(raw: bytes) -> None:
    assert "expected a JSON object" in field_of(raw).reason


def test_trade_without_price_is_rejected() -> None:
    error = field_of(orjson.dumps({**QUOTE, "price": None, "size": 5.0}))
    assert "price" in error.reason


def test_book_levels_are_validated() -> None:
    base = {"symbol": "A", "venue": "v", "ts": 1}
    assert field_of(orjson.dumps({**base, "bids": [[1.0, 1.0]] * 6}), Book).field == "bids"
    assert field_of(orjson.dumps({**base, "bids": [[1.0]]}), Book).field == "bids.0.1"  # the quantity is missing
    assert field_of(orjson.dumps({**base, "asks": [[1.0, -2.0]]}), Book).field == "asks.0.1"
    assert "ordered" in field_of(orjson.dumps({**base, "bids": [[1.0, 1.0], [2.0, 1.0]]}), Book).reason
    assert "ordered" in field_of(orjson.dumps({**base, "asks": [[2.0, 1.0], [1.0, 1.0]]}), Book).reason


def test_bar_consistency() -> None:
    bar = orjson.loads(EXAMPLES[4].to_json())
    assert "low..high" in field_of(orjson.dumps({**bar, "high": 1.0}), Bar).reason
    assert "after start" in field_of(orjson.dumps({**bar, "end": 0}), Bar).reason


def test_non_finite_values_never_validate() -> None:
    with pytest.raises(ValueError, match="finite"):
        Quote(**{**QUOTE, "price": math.inf})
    with pytest.raises(ValueError, match="finite"):
        Features(symbol="X", venue="v", ts=1, values={"a": math.nan}, version="1")


def test_alert_and_action_enums() -> None:
    alert = orjson.loads(EXAMPLES[7].to_json())
    assert field_of(orjson.dumps({**alert, "kind": "insider"}), Alert).field == "kind"
    assert field_of(orjson.dumps({**alert, "score": 1.5}), Alert).field == "score"
    action = orjson.loads(EXAMPLES[8].to_json())
    assert field_of(orjson.dumps({**action, "action": "SHORT"}), Action).field == "action"


def test_alert_id_is_deterministic_and_distinct() -> None:
    assert alert_id("A", "spoofing", 1) == alert_id("A", "spoofing", 1)
    assert (
        len(
            {
                alert_id("A", "spoofing", 1),
                alert_id("A", "spoofing", 2),
                alert_id("B", "spoofing", 1),
                alert_id("A", "wash_trading", 1),
            }
        )
        == 4
    )


finite = st.floats(min_value=0.01, max_value=1e7, allow_nan=False, allow_infinity=False)


@given(
    symbol=st.from_regex(SYMBOL_PATTERN, fullmatch=True),
    ts=st.integers(min_value=0, max_value=MAX_EPOCH_MS - 1),
    price=st.none() | finite,
    volume=st.none() | finite,
    seq=st.integers(min_value=0, max_value=2**31),
)
def test_quote_round_trip_property(symbol: str, ts: int, price: float | None, volume: float | None, seq: int) -> None:
    quote = Quote(symbol=symbol, venue="sim", ts=ts, price=price, size=1.0 if price else 0.0, volume=volume, seq=seq)
    assert Quote.from_json(quote.to_json()) == quote


@given(
    symbol=st.text(min_size=1, max_size=40),
    ts=st.integers(min_value=-(2**70), max_value=2**70),
    price=st.floats(),
    size=st.floats(),
)
def test_a_quote_is_plausible_or_refused_with_a_field(symbol: str, ts: int, price: float, size: float) -> None:
    """Whatever arrives, the contract either accepts a quote whose values every computation can take (a symbol
    fit for a key, a time stamp before 2100, finite bounded numbers) or names the field it refuses."""
    # built by hand: orjson refuses integers beyond 64 bits and writes NaN/inf as null, a producer may not
    raw = b'{"symbol":%s,"venue":"sim","ts":%d,"price":%s,"size":%s}' % (
        orjson.dumps(symbol),
        ts,
        repr(price).encode(),
        repr(size).encode(),
    )
    try:
        quote = Quote.from_json(raw)
    except RecordError as exc:
        assert exc.field or exc.reason
        return
    assert re.fullmatch(SYMBOL_PATTERN, quote.symbol)
    assert 0 <= quote.ts < MAX_EPOCH_MS
    assert quote.price is None or 0 < quote.price <= MAX_PRICE
    assert 0 <= quote.size <= MAX_SIZE
