"""Feed profiles: what each venue's feed carries, its bounds and its calendar, and how they reach detection."""

from __future__ import annotations

from dataclasses import replace
from datetime import time

import pytest

from tapewatch.detectors.flow import FlowConfig
from tapewatch.detectors.patterns import FlowPatterns, PatternParams
from tapewatch.feeds import UNKNOWN, FeedProfiles
from tapewatch.records import AlertKind, Book, Quote

SPOOF = {
    "level_typical": 100.0,
    "cancel_l25": 1_000.0,
    "cancel_l25_z": 6.0,
    "layer_cancel_rel": 10.0,
    "layer_side": -1.0,
    "mid_ret_bps_long": -10.0,
    "mid_sigma_bps": 1.0,
}


def test_built_in_venues_and_unknown_ones() -> None:
    feeds = FeedProfiles()
    assert feeds("twse").books and not feeds("twse").sides and feeds("twse").prints == "snapshots"
    assert feeds("binance").sides and feeds("binance").close_time is None
    assert feeds("twse").close_time == time(13, 30) and feeds("twse").utc_offset_min == 480
    assert feeds("somewhere") == UNKNOWN and not UNKNOWN.books


def test_overrides_extend_and_are_checked() -> None:
    feeds = FeedProfiles.from_json('{"xnys": {"books": true, "close": "16:00", "utc_offset_min": -300}}')
    assert feeds("xnys").books and feeds("xnys").close_time == time(16, 0)
    assert feeds("twse").books  # the built-in table stays
    for bad in (
        '{"x": {"boks": true}}',
        '{"x": {"books": "yes"}}',
        '{"x": {"prints": "ticks"}}',
        '{"x": {"close": "25:00"}}',
        '{"x": {"max_price": -1}}',
        '{"x": {"symbol_pattern": "("}}',
        '{"x": {"touch": "overlap"}}',
        '["x"]',
    ):
        with pytest.raises(ValueError, match="feed profile"):
            FeedProfiles.from_json(bad)


def test_plausibility_per_venue() -> None:
    twse = FeedProfiles()("twse")
    assert twse.implausible(Quote(symbol="2330", venue="twse", ts=1, price=600.0, size=1000.0)) is None
    assert twse.implausible(Quote(symbol="2330", venue="twse", ts=1, price=2e5, size=1.0))[0] == "price"  # type: ignore[index]
    assert twse.implausible(Quote(symbol="AAPL", venue="twse", ts=1, price=1.0, size=1.0))[0] == "symbol"  # type: ignore[index]
    book = Book(symbol="2330", venue="twse", ts=1, bids=[(600.0, 1e12)], asks=[])
    assert twse.implausible(book)[0] == "bids"  # type: ignore[index]


def test_detector_windows_follow_the_flow_chunking() -> None:
    ts = 1_700_000_000_000
    with_books = replace(UNKNOWN, books=True)  # spoofing reads the book: a venue without one does not run it
    assert FlowPatterns(PatternParams().for_feed(FlowConfig(), UNKNOWN)).ran()["spoofing"] == {"books"}
    for chunk_ms, long_chunks in ((5_000, 5), (2_000, 3), (10_000, 6)):
        params = PatternParams().for_feed(FlowConfig(chunk_ms=chunk_ms, long_chunks=long_chunks), with_books)
        patterns = FlowPatterns(params)
        assert not patterns.on_chunk(ts, SPOOF)
        (hit,) = [h for h in patterns.on_chunk(ts + chunk_ms, SPOOF) if h.kind is AlertKind.SPOOFING]
        assert hit.window_start == ts + chunk_ms - chunk_ms * long_chunks


def test_no_marking_the_close_where_the_venue_never_closes() -> None:
    feeds = FeedProfiles()
    crypto = FlowPatterns(PatternParams().for_feed(FlowConfig(), feeds("binance")))
    taipei = FlowPatterns(PatternParams().for_feed(FlowConfig(), feeds("twse")))
    close_ts = 1_704_173_400_000  # 2024-01-02 13:30 Asia/Taipei
    assert crypto.ms_to_close(close_ts - 60_000) is None
    assert taipei.ms_to_close(close_ts - 60_000) == 60_000


def _book(venue: str, bid: float, ask: float) -> Book:
    symbol = "2330" if venue == "twse" else "BTCUSD"
    return Book(symbol=symbol, venue=venue, ts=1, bids=[(bid, 1.0)], asks=[(ask, 1.0)])


@pytest.mark.parametrize(
    ("venue", "locked", "crossed"),
    [
        ("sim", "locked", "crossed"),  # one engine (the generator): never locked or crossed
        ("binance", "locked", "crossed"),  # the engine's own snapshot: it would have matched
        ("bitstamp", None, "crossed"),  # rebuilt from order events: a maker one event from matching
        ("twse", None, None),  # call auctions' trial-match books, snapshots assembled at several moments
        ("elsewhere", "locked", "crossed"),  # a venue no profile names
    ],
)
def test_locked_and_crossed_books_per_venue(venue: str, locked: str | None, crossed: str | None) -> None:
    profile = FeedProfiles()(venue)
    assert profile.implausible(_book(venue, 100.0, 100.5)) is None
    for (bid, ask), expected in (((100.0, 100.0), locked), ((100.2, 100.0), crossed)):
        problem = profile.implausible(_book(venue, bid, ask))
        assert (problem is None) == (expected is None), (venue, bid, ask, problem)
        if problem is not None:
            assert problem[0] == "bids" and f"{expected} book" in problem[1]
    one_sided = _book(venue, 100.0, 101.0).model_copy(update={"asks": []})
    assert profile.implausible(one_sided) is None


def test_the_touch_rule_can_be_set_per_venue() -> None:
    feeds = FeedProfiles.from_json('{"binance": {"touch": "locked"}}')
    assert feeds("binance").implausible(_book("binance", 100.0, 100.0)) is None
    assert feeds("binance").implausible(_book("binance", 100.1, 100.0)) is not None
