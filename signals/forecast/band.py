"""The band rule's one step, apart from the lab's backtest (no torch): the paper trader imports it live."""

from __future__ import annotations


def band_step(position: int, prediction: float, band: float) -> int:
    """One step of the band rule: the position (1 long, 0 flat) after a forecast; NaN keeps it.

    >>> band_step(0, 0.002, 0.001), band_step(1, 0.0, 0.001), band_step(1, -0.002, 0.001)
    (1, 1, 0)
    """
    if prediction > band:
        return 1
    if prediction < -band:
        return 0
    return position
