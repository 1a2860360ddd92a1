"""The one retry back-off: delays grow, are capped, never fall below half their ceiling, and start over."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from tapewatch.backoff import Backoff


@given(st.integers(1, 40))
def test_backoff_grows_and_is_capped(attempt: int) -> None:
    backoff = Backoff(base_s=0.5, cap_s=10.0)
    ceiling = min(10.0, 0.5 * 2 ** (attempt - 1))
    assert ceiling * 0.5 <= backoff.delay(attempt) <= ceiling


def test_next_delay_counts_attempts_until_reset() -> None:
    backoff = Backoff(base_s=1.0, cap_s=60.0, rng=random.Random(1))
    ceilings = [1.0, 2.0, 4.0, 8.0]
    delays = [backoff.next_delay() for _ in ceilings]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    backoff.reset()
    assert 0.5 <= backoff.next_delay() <= 1.0
