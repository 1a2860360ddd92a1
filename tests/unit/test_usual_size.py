"""The usual order size's quantiles, read off running sums by bisection, against the plain walk over the buckets."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.detectors.orders.usual_size import RESOLUTION, UsualSize


def walked(usual: UsualSize, q: float) -> float | None:
    """The ``q`` quantile in its plainest form: the buckets in order, their weights added until they reach it."""
    if not usual.buckets:
        return None
    target, acc = q * usual.total, 0.0
    for bucket in sorted(usual.buckets):
        acc += usual.buckets[bucket]
        if acc >= target:
            return float(2.0 ** ((bucket + 0.5) / RESOLUTION))
    return float(2.0 ** ((max(usual.buckets) + 0.5) / RESOLUTION))


QS = st.lists(st.sampled_from([0.0, 0.1, 0.5, 0.9, 0.995, 0.999999, 1.0]) | st.floats(0, 1), max_size=4)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.floats(1e-9, 1e13) | st.sampled_from([1.0, 100.0, 250.0, 0.0]), max_size=400
    ),  # with a half-life of 1, past a rescale
    st.integers(1, 50),
    QS,
)
def test_quantiles_are_those_of_the_plain_walk(sizes: list[float], half_life: int, qs: list[float]) -> None:
    usual = UsualSize(half_life)
    for size in sizes:
        usual.observe(size)
        assert usual.quantiles(*qs) == [walked(usual, q) for q in qs]
        assert usual.quantile(0.5) == walked(usual, 0.5)
        # the buckets kept sorted between quantiles are those of the restored dict too
        assert UsualSize.from_state(usual.to_state(), half_life).quantiles(*qs) == usual.quantiles(*qs)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(1e-9, 1e13) | st.sampled_from([1.0, 100.0, 250.0, 3.0, 0.0]), max_size=300),
    st.lists(st.booleans(), max_size=300),
    st.integers(1, 50),
    QS,
)
def test_quantiles_read_now_and_then_are_those_of_the_plain_walk(
    sizes: list[float], read: list[bool], half_life: int, qs: list[float]
) -> None:
    """The running sums kept between quantiles, with several observations (new buckets, rescales) between reads."""
    usual = UsualSize(half_life)
    for i, size in enumerate(sizes):
        usual.observe(size)
        if i < len(read) and read[i]:
            assert usual.quantiles(*qs) == [walked(usual, q) for q in qs]
    assert usual.quantiles(0.5, 0.995) == [walked(usual, 0.5), walked(usual, 0.995)]
