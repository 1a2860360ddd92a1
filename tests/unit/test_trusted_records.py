"""Records built without validating again (:meth:`Contract.trusted`, the level-2 feed's trades and books) against the
contract: the same record, field for field and byte for byte, as validation builds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.detectors.orders.level2 import Level2Feed
from tapewatch.records import MAX_SIZE, Book, Contract, Quote, Side
from tests.unit.test_order_book import ACTIONS, to_event


def built(record: Contract) -> tuple[Any, ...]:
    return (
        type(record),
        list(vars(record).items()),
        record.__pydantic_fields_set__,
        record.__pydantic_extra__,
        record.__pydantic_private__,
        record.to_json(),
    )


PRICES = st.floats(1e-9, 1e10)
SIZES = st.floats(1e-9, 1e13) | st.just(0.0)
QUOTES = st.fixed_dictionaries(
    {"symbol": st.just("X"), "venue": st.just("v"), "ts": st.integers(0, 4_102_444_799_999)},
    optional={
        "price": PRICES,
        "size": SIZES,
        "bid": PRICES | st.none(),
        "ask": PRICES | st.none(),
        "side": st.sampled_from([Side.BUY, Side.SELL, None]),
        "seq": st.integers(0, 2**40),
    },
).filter(lambda q: "price" in q or not q.get("size"))
LEVELS = st.lists(st.tuples(PRICES, SIZES), max_size=5, unique_by=lambda level: level[0])


@settings(max_examples=300)
@given(QUOTES)
def test_a_trusted_quote_is_the_validated_one(values: dict[str, Any]) -> None:
    assert built(Quote.trusted(**values)) == built(Quote(**values))


@settings(max_examples=300)
@given(LEVELS, LEVELS, st.integers(0, 10**12))
def test_a_trusted_book_is_the_validated_one(
    bids: list[tuple[float, float]], asks: list[tuple[float, float]], ts: int
) -> None:
    values: dict[str, Any] = {
        "symbol": "X",
        "venue": "v",
        "ts": ts,
        "bids": sorted(bids, reverse=True),
        "asks": sorted(asks),
    }
    assert built(Book.trusted(**values)) == built(Book(**values))


def test_trusted_wants_every_required_field_and_no_other() -> None:
    with pytest.raises(TypeError):
        Quote.trusted(symbol="X", venue="v")
    with pytest.raises(TypeError):
        Quote.trusted(symbol="X", venue="v", ts=1, colour="red")


@settings(max_examples=200, deadline=None)
@given(st.lists(ACTIONS, max_size=120))
def test_the_level2_feed_releases_what_the_contract_takes_as_it_is(
    specs: list[tuple[str, str | None, str | None, float | None, float]],
) -> None:
    feed = Level2Feed("X", "v")
    released = [r for seq, spec in enumerate(specs, start=1) for r in feed.on_order(to_event(seq, spec)).records]
    for record in [*released, *feed.flush()]:
        validated = type(record).model_validate(dict(vars(record)))
        assert record == validated and record.to_json() == validated.to_json()
        assert list(vars(record).items()) == list(vars(validated).items())


def test_a_level_past_the_contracts_bound_is_refused_by_it() -> None:
    feed = Level2Feed("X", "v")
    for seq, oid in enumerate(["a", "b"], start=1):
        feed.on_order(to_event(seq, ("add", oid, "BUY", 10.0, MAX_SIZE)))
    with pytest.raises(ValueError, match="less than or equal"):
        feed.flush()
