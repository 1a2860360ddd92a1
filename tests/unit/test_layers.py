"""The layer tracker: what counts as a large level, and the ways a large level leaves that are not a cancellation."""

from __future__ import annotations

import json
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.detectors.layers import LayerTracker, Levels, Vanished

ORDINARY = 100.0
BIDS: Levels = ((10.0, ORDINARY), (9.9, ORDINARY), (9.8, ORDINARY), (9.7, ORDINARY), (9.6, ORDINARY))
ASKS: Levels = ((10.1, ORDINARY), (10.2, ORDINARY), (10.3, ORDINARY), (10.4, ORDINARY), (10.5, ORDINARY))


def _with(levels: Levels, index: int, size: float) -> Levels:
    return tuple((price, size if i == index else q) for i, (price, q) in enumerate(levels))


def _feed(tracker: LayerTracker, books: Sequence[tuple[Levels, Levels]], start: int = 0) -> list[list[Vanished]]:
    return [tracker.on_book(start + i * 1_000, bids, asks) for i, (bids, asks) in enumerate(books)]


def test_a_layer_that_vanishes_is_reported_with_its_level_and_the_touch_is_not_watched() -> None:
    """Market makers cancel and re-post large quotes at the touch all day: level 1 is not a layer's place."""
    for index, reported in ((0, False), (2, True)):
        tracker = LayerTracker()
        layered = (_with(BIDS, index, 20 * ORDINARY), ASKS)
        gone = _feed(tracker, [(BIDS, ASKS)] * 5 + [layered] * 3 + [(BIDS, ASKS)])
        assert not any(gone[:-1])
        assert bool(gone[-1]) is reported
    (layer,) = gone[-1]
    assert (layer.side, layer.price, layer.level) == (1, 9.8, 3)


def test_a_wall_that_moves_with_the_price_has_not_vanished() -> None:
    """A market maker re-quotes its wall one tick up when the price ticks up: the side gained it elsewhere."""
    wall = (_with(BIDS, 1, 40 * ORDINARY), ASKS)
    up_bids = ((10.1, ORDINARY), (10.0, 40 * ORDINARY), (9.9, ORDINARY), (9.8, ORDINARY), (9.7, ORDINARY))
    up_asks = ((10.2, ORDINARY), (10.3, ORDINARY), (10.4, ORDINARY), (10.5, ORDINARY), (10.6, ORDINARY))
    gone = _feed(LayerTracker(), [wall] * 10 + [(up_bids, up_asks)])
    assert not any(gone)


def test_layers_leaving_both_sides_at_once_are_a_pulled_book_not_a_cancellation() -> None:
    walls = (_with(BIDS, 2, 30 * ORDINARY), _with(ASKS, 2, 30 * ORDINARY))
    one_side = (_with(BIDS, 2, 30 * ORDINARY), ASKS)
    assert not any(_feed(LayerTracker(), [walls] * 10 + [(BIDS, ASKS)]))  # both walls pulled together
    assert _feed(LayerTracker(), [walls] * 10 + [one_side])[-1]  # one side's cancelled: reported


sizes = st.floats(min_value=0.0, max_value=5_000.0, allow_nan=False)


@given(
    books=st.lists(
        st.tuples(st.lists(sizes, min_size=5, max_size=5), st.lists(sizes, min_size=5, max_size=5)), max_size=40
    ),
    cut=st.integers(0, 40),
)
@settings(max_examples=50, deadline=None)
def test_restoring_the_state_anywhere_resumes_exactly(books: list[tuple[list[float], list[float]]], cut: int) -> None:
    shaped = [
        (tuple(zip((p for p, _ in BIDS), bids, strict=True)), tuple(zip((p for p, _ in ASKS), asks, strict=True)))
        for bids, asks in books
    ]
    whole, first = LayerTracker(), LayerTracker()
    expected = _feed(whole, shaped)
    _feed(first, shaped[:cut])
    resumed = LayerTracker.from_state(json.loads(json.dumps(first.to_state())))
    got = _feed(resumed, shaped[cut:], start=min(cut, len(shaped)) * 1_000)
    assert expected[cut:] == got
