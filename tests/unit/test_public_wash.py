"""Wash trading from the public market-by-order feed alone: small hand-built feeds, each a case the detector must
tell."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import orjson
import pytest
from pydantic import ValidationError

from tapewatch.detectors.alerting import Hit, severity_of
from tapewatch.detectors.orders.params import PublicWashParams
from tapewatch.detectors.orders.public_wash import PublicWash
from tapewatch.detectors.orders.symbol_orders import PUBLIC_SCOPE, PublicWatch
from tapewatch.records import AlertKind, BookAction, OrderBookEvent, OrderSide, Severity, alert_id
from tests.order_feed import Feed

MINUTE = 60_000
#: the sizes ordinary aggressors trade: spread over several octaves, as a tape's are
ORDINARY_SIZES = (10.0, 20.0, 5.0, 40.0, 15.0, 80.0)
#: what ordinary hidden liquidity executes: as spread
HIDDEN_SIZES = (3.0, 7.0, 12.0, 25.0, 50.0, 90.0, 160.0)


def run(detector: PublicWash, events: Iterable[OrderBookEvent]) -> list[Hit]:
    hits: list[Hit] = []
    for event in events:
        hits += detector.on_order(event)
    return hits + detector.flush()


def ordinary(feed: Feed, start: int, minutes: int, hidden_every_s: int = 30) -> Iterator[OrderBookEvent]:
    """A two-sided book, then ``minutes`` of trading: every 10 s an offer placed and, 5 s later, bought whole (a
    displayed order that rested: exposed), and three bids placed and cancelled away from the touch; every
    ``hidden_every_s`` a print against hidden liquidity, of sizes spread over the octaves."""
    yield from _two_sided(feed, start)
    for n in range(minutes * 6):
        t = start + 1_000 + n * 10_000
        for k in range(3):
            away = feed.add(t + k, OrderSide.BUY, 98.0, 10.0)
            yield away
            yield feed.cancel(t + 3_000 + k, away.order_id or "")
        size = ORDINARY_SIZES[n % len(ORDINARY_SIZES)]
        offer = feed.add(t, OrderSide.SELL, 100.5, size)
        yield offer
        yield feed.trade(t + 5_000, OrderSide.BUY, 100.5, size)
        yield feed.fill(t + 5_000, offer.order_id or "", size)
        if n * 10 % hidden_every_s == 0:
            yield feed.trade(t + 7_000, OrderSide.SELL, 100.0, HIDDEN_SIZES[n % len(HIDDEN_SIZES)])


def _two_sided(feed: Feed, ts: int) -> Iterator[OrderBookEvent]:
    for level in range(5):
        yield feed.add(ts, OrderSide.BUY, 99.5 - level, 50.0)
        yield feed.add(ts, OrderSide.SELL, 101.0 + level, 50.0)


def crosses(
    feed: Feed, start: int, count: int, sizes: Iterable[float] = (30.0,), every_ms: int = 8_000
) -> Iterator[OrderBookEvent]:
    """``count`` prints against no displayed order, sides alternating, of ``sizes`` in turn (a wash pair's)."""
    cycle = list(sizes)
    for n in range(count):
        side = OrderSide.BUY if n % 2 else OrderSide.SELL
        yield feed.trade(start + n * every_ms, side, 100.0, cycle[n % len(cycle)])


def interleaved(*streams: Iterable[OrderBookEvent]) -> list[OrderBookEvent]:
    """The events of several streams in time order (a stable sort: one millisecond's events keep their order)."""
    return sorted((e for stream in streams for e in stream), key=lambda e: e.ts)


def test_repeated_prints_of_one_clip_against_no_displayed_order_are_a_medium_hit() -> None:
    feed = Feed()
    events = interleaved(ordinary(feed, 0, 150), crosses(feed, 100 * MINUTE + 500, 20))
    hits = run(PublicWash(), events)
    assert hits, "twenty crosses of one clip in under three minutes went unseen"
    first = hits[0]
    assert first.window_start >= 100 * MINUTE and first.ts <= 103 * MINUTE
    assert severity_of(max(h.score for h in hits)) is Severity.MEDIUM
    assert first.evidence["clip"] == "30–30" and first.evidence["prints"] >= 6  # type: ignore[operator]
    assert first.evidence["buys"] and first.evidence["sells"]


def test_as_many_hidden_prints_of_sizes_spread_over_the_octaves_are_not() -> None:
    feed = Feed()
    spread = (2.0, 5.0, 11.0, 23.0, 47.0, 95.0, 190.0, 380.0, 760.0, 1_500.0)
    events = interleaved(ordinary(feed, 0, 150), crosses(feed, 100 * MINUTE + 500, 20, sizes=spread))
    assert run(PublicWash(), events) == []


def test_a_symbol_whose_hidden_prints_are_routinely_of_one_clip_learns_them() -> None:
    """Every 5 s a hidden print of 30 all session: the same crosses add a third more, which is its everyday."""
    feed = Feed()
    routine = crosses(feed, 500, 150 * 12, every_ms=5_000)
    events = interleaved(ordinary(feed, 0, 150), routine, crosses(feed, 100 * MINUTE + 700, 20))
    assert run(PublicWash(), events) == []


def test_an_order_taken_whole_as_soon_as_placed_was_never_exposed() -> None:
    """A wash on the book: the passive order placed inside the spread 50 ms before the print that takes it whole,
    one side then the other. The same orders resting 5 s before they are taken were exposed, and are ordinary
    trading."""
    for rest_ms, seen in ((50, True), (5_000, False)):
        feed = Feed()
        own: list[OrderBookEvent] = []
        for n in range(20):
            t = 100 * MINUTE + 500 + n * 8_000
            passive, price = (OrderSide.SELL, 100.25) if n % 2 else (OrderSide.BUY, 99.75)
            placed = feed.add(t, passive, price, 30.0)
            aggressor = OrderSide.BUY if passive is OrderSide.SELL else OrderSide.SELL
            own += [placed, feed.trade(t + rest_ms, aggressor, price, 30.0)]
            own.append(feed.fill(t + rest_ms, placed.order_id or "", 30.0))
        hits = run(PublicWash(), interleaved(ordinary(feed, 0, 150), own))
        assert bool(hits) is seen, rest_ms


def test_a_feed_that_sends_a_milliseconds_fills_before_its_trades_reads_the_same() -> None:
    feed = Feed()
    events = interleaved(ordinary(feed, 0, 150), crosses(feed, 100 * MINUTE + 500, 20))
    fills_first = sorted(events, key=lambda e: (e.ts, e.action is BookAction.TRADE))
    renumbered = [e.model_copy(update={"sequence": n}) for n, e in enumerate(fills_first, start=1)]
    assert [e.action for e in renumbered] != [e.action for e in events]
    hits = run(PublicWash(), events)
    assert hits and run(PublicWash(), renumbered) == hits


def test_one_sided_prints_against_unseen_liquidity_are_a_hidden_order_worked_not_a_wash() -> None:
    feed = Feed()
    one_sided = [e.model_copy(update={"side": OrderSide.BUY}) for e in crosses(feed, 100 * MINUTE + 500, 20)]
    assert run(PublicWash(), interleaved(ordinary(feed, 0, 150), one_sided)) == []


def test_a_clip_that_is_a_small_share_of_the_volume_is_not_a_hit() -> None:
    feed = Feed()
    events = interleaved(ordinary(feed, 0, 150), crosses(feed, 100 * MINUTE + 500, 8, sizes=(1.0,), every_ms=20_000))
    assert run(PublicWash(PublicWashParams(surprise=0.5)), events) == []


def test_a_detector_restored_from_its_state_goes_on_as_the_one_that_kept_running() -> None:
    feed = Feed()
    events = interleaved(ordinary(feed, 0, 130), crosses(feed, 100 * MINUTE + 500, 20))
    whole = run(PublicWash(), events)
    assert whole
    for cut in (len(events) // 3, len(events) - 30, len(events) - 5):
        first = PublicWash()
        hits = [hit for event in events[:cut] for hit in first.on_order(event)]
        restored = PublicWash.from_state(first.to_state())
        assert hits + run(restored, events[cut:]) == whole, cut


@pytest.mark.parametrize(
    "bad", [{"band_bins": 0}, {"min_prints": 1}, {"window_ms": 1_000}, {"surprise": 0.0}, {"min_volume_share": 2.0}]
)
def test_parameters_out_of_range_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        PublicWashParams(**bad)


def test_the_public_watch_raises_them_as_the_public_feeds_alerts_and_keeps_them_through_its_state() -> None:
    """The stream's container: its wash alerts are the detector's, their ids in the public feed's scope, and a watch
    restored from its state (the orders stage's entry) goes on as the one that kept running."""
    feed = Feed()
    events = interleaved(ordinary(feed, 0, 130), crosses(feed, 100 * MINUTE + 500, 20))
    watch = PublicWatch.new("X", "v")
    alerts = [alert for event in events for alert in watch.on_order(event)] + watch.flush()
    wash = [alert for alert in alerts if alert.kind is AlertKind.WASH_TRADING]
    assert wash and wash[0].alert_id == alert_id("X", str(AlertKind.WASH_TRADING), wash[0].window_start, PUBLIC_SCOPE)
    cut = len(events) - 40
    first = PublicWatch.new("X", "v")
    before = [alert for event in events[:cut] for alert in first.on_order(event)]
    restored = PublicWatch.from_state(orjson.loads(orjson.dumps(first.to_state())))
    after = [alert for event in events[cut:] for alert in restored.on_order(event)] + restored.flush()
    assert before + after == alerts
