"""Data augmentation of the training segments, after TDQN (Théate & Ernst 2021), and a causal low-pass filter.

Augmentation only ever adds *copies* of **training** segments to the pool the agent draws its episodes from;
the originals, the validation and the test segments are never touched (the agent calls :func:`augment` on its
training segments only). Each copy is a plausible other market:

* **shifting** — TDQN shifts the price level, which changes nothing here (features are scale-free and costs
  proportional), so the shift is in *time*: ``subsample = k`` adds the ``k`` copies of each segment that keep
  every ``k``-th bar, at offsets ``0 … k-1``. A step of such a copy earns the ``k``-bar return and the features
  are the real ones of the bars kept, so the agent sees slower markets with the same per-bar information.
* **stretching** — each factor ``s`` of ``stretch`` adds a copy whose log returns are scaled by ``s`` (a calmer or
  a wilder market) and whose normalised features are scaled by ``s`` too (they measure returns and their
  deviations from the training mean, so they move with them; clipped at ``±CLIP``).
* **noise** — ``noise = σ`` adds one copy of every segment of the pool so far with Gaussian noise of ``σ``
  (in normalised units) on the features; prices are unchanged.

Intraday segments are not sub-sampled (a copy would skip sessions' last bars, where the position must go flat).

:func:`lowpass` is a causal exponential filter of features (each row from rows up to it only). It is offered
for experiments on prepared segments; a model trained on filtered inputs would need the filter's state across
bars live, which :class:`~tapewatch.signals.dqn.inference.DqnPolicy` (stateless per request) does not keep.

>>> close = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
>>> segment = Segment("X", np.arange(5).astype("datetime64[D]"), close, np.ones((5, 1)), None, None)
>>> pool = augment([segment], subsample=2, stretch=(0.5,), noise=0.1, rng=np.random.default_rng(0))
>>> [len(s) for s in pool], pool[0] is segment  # original, 2 sub-sampled, 1 stretched; then a noisy copy of each
([5, 3, 2, 5, 5, 3, 2, 5], True)
>>> pool[1].close.tolist(), pool[3].close.round(6).tolist()  # every 2nd bar; doubling per bar became ×√2
([1.0, 4.0, 16.0], [1.0, 1.414214, 2.0, 2.828427, 4.0])
>>> lowpass(np.array([[0.0], [4.0], [4.0]]), span=3).ravel().tolist()  # α = 2 / (span + 1) = 0.5
[0.0, 2.0, 3.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from tapewatch.signals.dqn.data import CLIP, Segment

__all__ = ["augment", "lowpass", "noisy", "stretched", "subsampled"]

FloatArray = npt.NDArray[np.float64]


def subsampled(segment: Segment, every: int, offset: int) -> Segment:
    """Every ``every``-th bar of a daily segment, from ``offset``."""
    keep = slice(offset, None, every)
    return replace(segment, times=segment.times[keep], close=segment.close[keep], features=segment.features[keep])


def stretched(segment: Segment, factor: float) -> Segment:
    """Log returns and normalised features scaled by ``factor`` (features clipped at ``±CLIP``)."""
    log_close = np.log(segment.close)
    close = segment.close[0] * np.exp(factor * (log_close - log_close[0]))
    return replace(segment, close=close, features=np.clip(segment.features * factor, -CLIP, CLIP))


def noisy(segment: Segment, sigma: float, rng: np.random.Generator) -> Segment:
    """Gaussian noise of ``sigma`` on the normalised features (clipped at ``±CLIP``)."""
    noise = rng.normal(0.0, sigma, segment.features.shape)
    return replace(segment, features=np.clip(segment.features + noise, -CLIP, CLIP))


def augment(
    segments: Sequence[Segment],
    *,
    subsample: int = 1,
    stretch: Sequence[float] = (),
    noise: float = 0.0,
    rng: np.random.Generator,
) -> list[Segment]:
    """The training pool: the segments themselves (first, unchanged) and their augmented copies.

    Copies shorter than 2 bars are dropped. With the defaults the pool is the segments.
    """
    if subsample < 1 or noise < 0 or any(s <= 0 for s in stretch):
        raise ValueError("subsample must be ≥ 1, stretch factors > 0 and noise ≥ 0")
    pool = list(segments)
    copies: list[Segment] = []
    for segment in segments:
        if subsample > 1 and segment.session_end is None:
            copies += [subsampled(segment, subsample, offset) for offset in range(subsample)]
        copies += [stretched(segment, factor) for factor in stretch]
    pool += copies
    if noise > 0:
        pool += [noisy(segment, noise, rng) for segment in pool]
    return [s for s in pool if len(s) >= 2]


def lowpass(features: npt.ArrayLike, span: int) -> FloatArray:
    """Causal exponential moving average down the rows, ``α = 2 / (span + 1)``; ``span = 1`` is the identity.

    Row ``t`` of the result depends on rows ``0 … t`` only (no look-ahead).
    """
    x = np.asarray(features, dtype=np.float64)
    if span < 1:
        raise ValueError("span must be ≥ 1")
    out = x.copy()
    alpha = 2.0 / (span + 1.0)
    for t in range(1, len(x)):
        out[t] = alpha * x[t] + (1.0 - alpha) * out[t - 1]
    return out
