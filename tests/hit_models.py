"""Hand-made hit models for tests: one split, so what a test expects of the score is plain."""

from __future__ import annotations

import numpy as np

from tapewatch.detectors.hit_model import HitModel, Trees


def stump(feature: str, split: float, kinds: frozenset[str], version: str = "test") -> HitModel:
    """A one-split model: log-odds −2 at or below ``split`` of ``feature``, +2 above; calibrated to 0.1 and 0.9."""
    trees = Trees(
        feature=np.array([0, -1, -1]),
        threshold=np.array([split, 0.0, 0.0]),
        left=np.array([1, -1, -1]),
        right=np.array([2, -1, -1]),
        value=np.array([0.0, -2.0, 2.0]),
        roots=np.array([0]),
        bias=0.0,
    )
    return HitModel((feature,), trees, np.array([-2.0, 2.0]), np.array([0.1, 0.9]), kinds, version=version)
