"""The one retry back-off: what a source waits before reconnecting and a sink before writing again."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Exponential back-off with jitter: retry ``n`` (1, 2, …) waits a uniform draw from ``[c/2, c]``, where
    ``c = min(cap_s, base_s × factor^(n-1))``.

    Never less than half the ceiling: jitter spreads clients out without collapsing to a tight loop.
    :meth:`delay` is pure, so one instance can serve concurrent retries (a sink's writers); :meth:`next_delay`
    and :meth:`reset` count the attempts for a caller with a single retry loop (a source's connection).
    """

    base_s: float = 0.5
    cap_s: float = 10.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)
    #: retries since the last :meth:`reset` (for :meth:`next_delay`)
    attempt: int = 0

    def delay(self, attempt: int) -> float:
        ceiling: float = min(self.cap_s, self.base_s * self.factor ** max(0, attempt - 1))
        return ceiling / 2 + self.rng.random() * ceiling / 2

    def next_delay(self) -> float:
        self.attempt += 1
        return self.delay(self.attempt)

    def reset(self) -> None:
        self.attempt = 0
