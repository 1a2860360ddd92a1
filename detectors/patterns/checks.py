"""The range checks every parameter record runs on construction, each failure one line naming the parameter by its
qualified name (``spoofing.window_ms``: the record's :attr:`~Checked.GROUP` and the field).

A record checks its fields in ``__post_init__``, so a bad value is refused where it is written (a settings file, a
test's ``with_values``), not minutes later as a detector that never fires or a division by zero.

>>> from dataclasses import dataclass
>>> from typing import ClassVar
>>> @dataclass(frozen=True)
... class Demo:
...     GROUP: ClassVar[str] = "demo"
...     min_ms: int = 10
...     window_ms: int = 20
...     share: float = 0.5
...     def __post_init__(self) -> None:
...         positive(self, "min_ms", "window_ms")
...         shares(self, "share")
...         not_longer(self, "min_ms", "window_ms")
>>> Demo(share=1.5)
Traceback (most recent call last):
ValueError: demo.share must be within [0, 1], got 1.5
>>> Demo(min_ms=30)
Traceback (most recent call last):
ValueError: demo.min_ms (30) must not exceed demo.window_ms (20)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar, Protocol

__all__ = ["Checked", "at_most_one", "finite", "non_negative", "not_longer", "positive", "shares"]


class Checked(Protocol):
    """A parameter record: its group is the qualifier of its parameters' names."""

    GROUP: ClassVar[str]


def _number(record: Checked, name: str) -> float:
    value = getattr(record, name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{record.GROUP}.{name} must be a finite number, got {value!r}")
    return float(value)


def _each(record: Checked, names: tuple[str, ...], holds: Callable[[float], bool], what: str) -> None:
    for name in names:
        if not holds(_number(record, name)):
            raise ValueError(f"{record.GROUP}.{name} must be {what}, got {getattr(record, name)!r}")


def finite(record: Checked, *names: str) -> None:
    """Any finite number (a z-score bar may sit below zero)."""
    _each(record, names, lambda _: True, "a finite number")


def positive(record: Checked, *names: str) -> None:
    """Windows and durations a detector divides by or counts chunks over."""
    _each(record, names, lambda x: x > 0, "> 0")


def non_negative(record: Checked, *names: str) -> None:
    """Bars a value must reach where the value is never negative (sizes, counts, moves, an imbalance towards a side, a
    share): below 0 every value, the other side's too, would pass; above what the value can reach the path never
    fires, which is how a path is turned off."""
    _each(record, names, lambda x: x >= 0, "≥ 0")


def shares(record: Checked, *names: str) -> None:
    """Shares that are not a bar's edge: outside [0, 1] they mean nothing."""
    _each(record, names, lambda x: 0 <= x <= 1, "within [0, 1]")


def at_most_one(record: Checked, *names: str) -> None:
    """Bars an imbalance or a share must stay under (``|x| ≤ bar``): above 1 every value passes; below 0 none does,
    which turns the path off."""
    _each(record, names, lambda x: x <= 1, "≤ 1")


def not_longer(record: Checked, shorter: str, longer: str) -> None:
    """A minimum that must fit its window (or a horizon that must not outlast the next one)."""
    low, high = _number(record, shorter), _number(record, longer)
    if low > high:
        raise ValueError(
            f"{record.GROUP}.{shorter} ({getattr(record, shorter)!r}) must not exceed "
            f"{record.GROUP}.{longer} ({getattr(record, longer)!r})"
        )
