"""Spoofing from the public market-by-order feed alone: small hand-built feeds, each a case the detector must tell."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Iterator

import pytest
from pydantic import ValidationError

from tapewatch.detectors.alerting import Hit, severity_of
from tapewatch.detectors.orders.params import PublicSpoofingParams
from tapewatch.detectors.orders.public_spoofing import PublicSpoofing, poisson_tail
from tapewatch.records import BookAction, OrderBookEvent, OrderSide, Severity
from tests.order_feed import Feed

PARAMS = PublicSpoofingParams(warmup_orders=20)
HOUR = 3_600_000


def run(detector: PublicSpoofing, events: Iterable[OrderBookEvent]) -> list[Hit]:
    hits: list[Hit] = []
    for event in events:
        hits += detector.on_order(event)
    return hits


def spoof_cycle(feed: Feed, t: int, order_id: str) -> Iterator[OrderBookEvent]:
    """A bid 10 × the usual order at the touch; a small offer placed at the other touch and a sell that trades; the
    bid pulled 4 s after it was placed."""
    yield feed.add(t, OrderSide.BUY, 99.0, 150.0, order_id=order_id)
    yield feed.add(t + 1_000, OrderSide.SELL, 101.0, 10.0)
    yield feed.trade(t + 2_000, OrderSide.SELL, 99.0, 5.0)
    yield feed.cancel(t + 4_000, order_id)


def spoof_cycles(feed: Feed, start: int, cycles: int = 3) -> Iterator[OrderBookEvent]:
    """:func:`spoof_cycle` every 40 s."""
    for n in range(cycles):
        yield from spoof_cycle(feed, start + n * 40_000, f"spoof{n}")


def test_repeated_pulls_of_a_large_bid_are_a_hit_naming_its_orders() -> None:
    feed = Feed()
    detector = PublicSpoofing(PARAMS)
    hits = run(detector, [*feed.book(0), *spoof_cycles(feed, 2 * HOUR + 60_000)])
    hits += detector.flush()
    assert hits, "three pulled large bids in two minutes"
    first = hits[0]
    assert first.evidence["side"] == "bid"
    assert set(str(first.evidence["order_ids"]).split(";")) <= {"spoof0", "spoof1", "spoof2"}
    assert int(str(first.evidence["cycles"])) >= PARAMS.min_cycles
    assert float(str(first.evidence["size_multiple"])) >= PARAMS.size_multiple
    assert first.window_start == 2 * HOUR + 60_000
    assert set(first.evidence) == set(PublicSpoofing.EVIDENCE)


def test_naming_no_one_a_hit_is_at_most_medium() -> None:
    """Ten cycles in a few minutes, far beyond the symbol's rate: still a lead, not high — the public feed cannot say
    that one trader made them."""
    feed = Feed()
    detector = PublicSpoofing(PARAMS)
    hits = run(detector, [*feed.book(0), *spoof_cycles(feed, 2 * HOUR + 60_000, cycles=10)]) + detector.flush()
    assert max(int(str(h.evidence["cycles"])) for h in hits) >= 8, "the feed makes strong evidence"
    assert all(severity_of(h.score) is Severity.MEDIUM for h in hits)


def test_a_single_large_cancel_is_not_a_hit() -> None:
    feed = Feed()
    detector = PublicSpoofing(PARAMS)
    assert run(detector, [*feed.book(0), *spoof_cycles(feed, 2 * HOUR + 60_000, cycles=1)]) + detector.flush() == []


def test_large_orders_that_fill_are_not_a_hit() -> None:
    feed = Feed()
    events = list(feed.book(0))
    for n in range(4):
        t = 2 * HOUR + 60_000 + n * 40_000
        events.append(feed.add(t, OrderSide.BUY, 99.0, 150.0, order_id=f"big{n}"))
        events.append(feed.trade(t + 2_000, OrderSide.SELL, 99.0, 140.0))
        events.append(feed.fill(t + 2_000, f"big{n}", 140.0))
        events.append(feed.cancel(t + 4_000, f"big{n}"))  # the rest is cancelled: 93 % filled
    detector = PublicSpoofing(PARAMS)
    assert run(detector, events) + detector.flush() == []


def test_a_market_maker_pulling_both_sides_is_not_a_hit() -> None:
    feed = Feed()
    events = list(feed.book(0))
    for n in range(5):
        t = 2 * HOUR + 60_000 + n * 30_000
        events.append(feed.add(t, OrderSide.BUY, 98.0, 150.0, order_id=f"bid{n}"))
        events.append(feed.add(t, OrderSide.SELL, 102.0, 150.0, order_id=f"ask{n}"))
        events.append(feed.trade(t + 1_000, OrderSide.SELL, 99.0, 5.0))
        events.append(feed.trade(t + 1_500, OrderSide.BUY, 101.0, 5.0))
        events.append(feed.cancel(t + 3_000, f"bid{n}"))
        events.append(feed.cancel(t + 3_000, f"ask{n}"))
    detector = PublicSpoofing(PARAMS)
    assert run(detector, events) + detector.flush() == []


def test_a_quote_moved_with_the_touch_is_not_pulled() -> None:
    """Pulled and placed again on its side at once (a quote following the touch): the pressure never went away."""
    feed = Feed()
    events = list(feed.book(0))
    t = 2 * HOUR + 60_000
    events.append(feed.add(t, OrderSide.BUY, 99.0, 150.0, order_id="q0"))
    for n in range(1, 6):
        t += 5_000
        events.append(feed.trade(t - 1_000, OrderSide.SELL, 99.0, 5.0))
        events.append(feed.cancel(t, f"q{n - 1}"))
        events.append(feed.add(t, OrderSide.BUY, 99.0 + n % 2, 150.0, order_id=f"q{n}"))
    detector = PublicSpoofing(PARAMS)
    assert run(detector, events) + detector.flush() == []


def test_a_meta_order_trading_through_the_book_is_not_a_hit() -> None:
    """An institution buys with marketable orders for an hour: it executes, it rests nothing large."""
    feed = Feed()
    events = list(feed.book(0))
    for n in range(600):
        t = 2 * HOUR + n * 6_000
        events.append(feed.add(t, OrderSide.SELL, 101.0, 10.0, order_id=f"ask{n}"))
        events.append(feed.trade(t + 100, OrderSide.BUY, 101.0, 10.0))
        events.append(feed.fill(t + 100, f"ask{n}", 10.0))
    detector = PublicSpoofing(PARAMS)
    assert run(detector, events) + detector.flush() == []


def cycles_as_the_offer_comes_down(
    feed: Feed, start: int, after_ms: int, cycles: int = 3, name: str = "spoof"
) -> Iterator[OrderBookEvent]:
    """:func:`spoof_cycles` whose offer steps down towards the large bid ``after_ms`` after each pull (a small offer
    placed inside the spread, taken away a second later): at 0, in the pull's own millisecond."""
    for n in range(cycles):
        t = start + n * 40_000
        yield from spoof_cycle(feed, t, f"{name}{n}")
        yield feed.add(t + 4_000 + after_ms, OrderSide.SELL, 100.0, 10.0, order_id=f"inside{n}")
        yield feed.cancel(t + 5_000 + after_ms, f"inside{n}")


def test_large_orders_pulled_as_the_price_comes_at_them_are_not_cycles() -> None:
    """The offer comes down towards each large bid as it is pulled, in the same millisecond: a participant keeping his
    order from a move against it (a market maker, a genuine buyer), not pressure withdrawn after it did its work."""
    feed = Feed()
    detector = PublicSpoofing(PARAMS)
    events = [*feed.book(0), *cycles_as_the_offer_comes_down(feed, 2 * HOUR + 60_000, after_ms=0, cycles=5)]
    assert run(detector, events) + detector.flush() == []
    assert not detector.cycles[1], "no pull counted"


def test_the_price_after_the_pulls_millisecond_does_not_unmake_it() -> None:
    """The same offer one millisecond after each pull: the pull did not flee it (the price falling back once the
    pressure is gone is what a spoof leaves behind); the cycles are a hit."""
    feed = Feed()
    detector = PublicSpoofing(PARAMS)
    events = [*feed.book(0), *cycles_as_the_offer_comes_down(feed, 2 * HOUR + 60_000, after_ms=1)]
    hits = run(detector, events) + detector.flush()
    assert hits and hits[0].evidence["side"] == "bid"


def test_an_offer_that_came_down_before_the_large_bid_was_placed_is_not_fleeing() -> None:
    """The price is judged from where it was once the large order rested: an offer already nearer does not count."""
    feed = Feed()
    events = list(feed.book(0))
    events.append(feed.add(2 * HOUR, OrderSide.SELL, 100.0, 10.0, order_id="inside"))
    detector = PublicSpoofing(PARAMS)
    hits = run(detector, [*events, *spoof_cycles(feed, 2 * HOUR + 60_000)]) + detector.flush()
    assert hits and hits[0].evidence["side"] == "bid"


def test_the_open_is_judged_against_the_prior_not_skipped() -> None:
    """The same cycles ten minutes into the feed: no rate of its own yet, but the prior's few cycles this large make
    four in two minutes unlikely."""
    feed = Feed()
    book = [e for e in feed.book(0) if e.ts == 0]
    detector = PublicSpoofing(PARAMS)
    hits = run(detector, [*book, *spoof_cycles(feed, 600_000, cycles=4)]) + detector.flush()
    assert hits and hits[0].evidence["side"] == "bid"


def ordinary_large_pulls(feed: Feed, start: int, minutes: int) -> Iterator[OrderBookEvent]:
    """A symbol whose flow pulls large orders whole now and then, either side: one 15-lot-usual-sized bid or offer
    at the touch every two minutes, pulled after a trade on the other side."""
    for n in range(minutes // 2):
        t = start + n * 120_000
        side, price, against = (
            (OrderSide.BUY, 99.0, OrderSide.SELL) if n % 2 else (OrderSide.SELL, 101.0, OrderSide.BUY)
        )
        yield feed.add(t, side, price, 150.0, order_id=f"mm{n}")
        for k in range(4):
            yield feed.add(t + 10_000 + k, OrderSide.BUY, 97.0, 10.0)
        yield feed.trade(t + 20_000, against, price, 5.0)
        yield feed.cancel(t + 30_000, f"mm{n}")


def test_a_symbol_whose_large_orders_are_often_pulled_whole_sets_its_own_bar() -> None:
    """After two hours of ordinary large pulls on both sides, three more of the same size are the symbol's habit."""
    feed = Feed()
    events = [*feed.book(0), *ordinary_large_pulls(feed, 60_000, 120), *spoof_cycles(feed, 2 * HOUR + 120_000)]
    detector = PublicSpoofing(PARAMS)
    assert run(detector, events) + detector.flush() == []


def test_layers_pulled_together_are_one_cycle() -> None:
    """Three large bids placed and pulled in the same millisecond, once: one decision, one cycle (sizes added), so
    no repetition and no hit; the same layers in three cycles are a hit whose order ids name all nine."""
    feed = Feed()
    events = list(feed.book(0))

    def layered(t: int, cycle: int) -> Iterator[OrderBookEvent]:
        for level in range(3):
            yield feed.add(t, OrderSide.BUY, 99.0 - level, 150.0, order_id=f"L{cycle}-{level}")
        yield feed.trade(t + 2_000, OrderSide.SELL, 99.0, 5.0)
        for level in range(3):
            yield feed.cancel(t + 4_000, f"L{cycle}-{level}")

    start = 2 * HOUR + 60_000
    once = PublicSpoofing(PARAMS)
    assert run(once, [*events, *layered(start, 0)]) + once.flush() == []
    assert len(once.cycles[1]) == 1 and once.cycles[1][0].order_id.count(";") == 2
    thrice = PublicSpoofing(PARAMS)
    hits = run(thrice, [*events, *(e for n in range(3) for e in layered(start + n * 40_000, n))]) + thrice.flush()
    assert hits
    assert len(set(str(hits[-1].evidence["order_ids"]).split(";"))) == 9


def test_large_two_sided_quotes_do_not_raise_the_bar() -> None:
    """A market maker's quotes of 400 on both sides every minute are the symbol's largest orders; one-sided bids of
    150 pulled again and again are still large against its one-sided orders."""
    feed = Feed()
    events = list(feed.book(0))
    for n in range(100):
        t = 60_000 + n * 60_000 + 30_000
        events.append(feed.add(t, OrderSide.BUY, 96.0, 400.0, order_id=f"qb{n}"))
        events.append(feed.add(t, OrderSide.SELL, 104.0, 400.0, order_id=f"qa{n}"))
        events.append(feed.cancel(t + 20_000, f"qb{n}"))
        events.append(feed.cancel(t + 20_000, f"qa{n}"))
    detector = PublicSpoofing(PARAMS)
    hits = run(detector, [*events, *spoof_cycles(feed, 2 * HOUR + 60_000)]) + detector.flush()
    assert hits and set(str(hits[0].evidence["order_ids"]).split(";")) <= {"spoof0", "spoof1", "spoof2"}


def test_the_rate_is_read_per_order_placed() -> None:
    """The same cycles before the window expect twice as many in it when twice as many orders are placed in it (the
    prior made negligible: it is spread at the symbol's order rate, which the window's orders move too)."""
    detector = PublicSpoofing(PublicSpoofingParams(warmup_orders=20, prior_cycles=1e-9, prior_ms=1))
    detector.first_ts = 0
    history = deque([(HOUR, 20.0), (HOUR + 60_000, 20.0)])
    now = 2 * HOUR

    def expected(placed_in_window: int) -> float:
        minutes = now // 60_000
        detector.activity = deque([m * 60_000, 10] for m in range(minutes - 10))
        detector.activity.extend([m * 60_000, placed_in_window] for m in range(minutes - 10, minutes + 1))
        return detector._expected(history, now, 20.0)

    assert expected(20) == pytest.approx(2 * expected(10), rel=1e-6)
    assert expected(10) < detector._expected(history, now, 10.0)  # (history as large: the smaller bar counts more)


def test_the_state_round_trips_through_json_and_gives_the_same_later_hits() -> None:
    feed = Feed()
    events = [*feed.book(0), *spoof_cycles(feed, 2 * HOUR + 60_000, cycles=4)]
    cut = len(events) - 6  # in the middle of a cycle: a large bid resting, a pull pending or cycles counted
    whole = PublicSpoofing(PARAMS)
    expected = run(whole, events) + whole.flush()
    first = PublicSpoofing(PARAMS)
    before = run(first, events[:cut])
    restored = PublicSpoofing.from_state(json.loads(json.dumps(first.to_state())), PARAMS)
    after = run(restored, events[cut:]) + restored.flush()
    assert expected, "the feed has hits to compare"
    assert before + after == expected


def test_the_state_cut_within_a_pulls_millisecond_gives_the_same_hits() -> None:
    """Cut right after a pull, before the rest of its millisecond: the pull waiting for its end and the touch before
    it are kept, so the offer stepping down in that millisecond unmakes it after the restore as before."""
    feed = Feed()
    fleeing = list(cycles_as_the_offer_comes_down(feed, 2 * HOUR + 60_000, after_ms=0, cycles=2, name="flee"))
    events = [*feed.book(0), *spoof_cycles(feed, 2 * HOUR - 200_000, cycles=3), *fleeing]
    cut = events.index(next(e for e in events if e.action is BookAction.CANCEL and e.order_id == "flee1")) + 1
    whole = PublicSpoofing(PARAMS)
    expected = run(whole, events) + whole.flush()
    first = PublicSpoofing(PARAMS)
    before = run(first, events[:cut])
    assert first.pulling, "a pull waits for the end of its millisecond"
    restored = PublicSpoofing.from_state(json.loads(json.dumps(first.to_state())), PARAMS)
    after = run(restored, events[cut:]) + restored.flush()
    assert before + after == expected
    assert [c.order_id for c in restored.cycles[1]] == [c.order_id for c in whole.cycles[1]]


@pytest.mark.parametrize(
    "field, value",
    [("size_multiple", 1.0), ("depth_share", 1.5), ("max_life_ms", 0), ("min_cycles", 0), ("surprise", 0.0)],
)
def test_params_out_of_range_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValidationError):
        PublicSpoofingParams(**{field: value})


def test_params_are_frozen_and_described() -> None:
    params = PublicSpoofingParams()
    with pytest.raises(ValidationError):
        params.size_multiple = 2.0  # type: ignore[misc]
    assert all(f.description for f in PublicSpoofingParams.model_fields.values())


def test_poisson_tail() -> None:
    assert poisson_tail(0, 3.0) == 1.0
    assert poisson_tail(1, 0.5) == pytest.approx(1 - 0.6065306597, abs=1e-9)
    assert poisson_tail(2, float("inf")) == 1.0
    assert poisson_tail(3, 0.0) == 0.0
