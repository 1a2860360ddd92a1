"""Augmentation of training data (TDQN): shapes, originals untouched, validation never augmented; the causal
low-pass filter has no look-ahead; reward clipping."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.signals.dqn.agent import AgentConfig, _scaled, network_from_weights, train, validation_sharpe
from tapewatch.signals.dqn.augment import augment, lowpass, stretched, subsampled
from tapewatch.signals.dqn.costs import cost_preset
from tapewatch.signals.dqn.data import CLIP, Segment
from tests.unit.test_dqn_agent import TINY, _segments

torch.set_num_threads(1)


def _segment(n: int, k: int, seed: int) -> Segment:
    rng = np.random.default_rng(seed)
    close = 20.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
    features = np.clip(rng.normal(0.0, 1.0, (n, k)), -CLIP, CLIP)
    return Segment("S", np.arange(n).astype("datetime64[D]"), close, features, None, None)


def _frozen(segment: Segment) -> tuple[bytes, bytes, bytes]:
    return segment.times.tobytes(), segment.close.tobytes(), segment.features.tobytes()


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 80),
    k=st.integers(1, 6),
    subsample=st.integers(1, 4),
    stretch=st.lists(st.floats(0.2, 3.0), max_size=3),
    noise=st.sampled_from([0.0, 0.05, 0.5]),
    seed=st.integers(0, 1_000),
)
def test_augmentation_keeps_shapes_and_leaves_the_originals_untouched(
    n: int, k: int, subsample: int, stretch: list[float], noise: float, seed: int
) -> None:
    segments = [_segment(n, k, seed), _segment(n + 3, k, seed + 1)]
    before = [_frozen(s) for s in segments]
    pool = augment(segments, subsample=subsample, stretch=stretch, noise=noise, rng=np.random.default_rng(seed))
    assert all(a is b for a, b in zip(pool, segments, strict=False))  # the originals first, the very same objects …
    assert [_frozen(s) for s in segments] == before  # … and not modified in place
    expected = 2 * (subsample if subsample > 1 else 0) + 2 * len(stretch)
    assert len(pool) <= (2 + expected) * (2 if noise > 0 else 1)
    for s in pool:
        assert s.features.shape == (len(s), k) and s.times.shape == (len(s),) and len(s) >= 2
        assert np.all(np.isfinite(s.features)) and np.all(np.abs(s.features) <= CLIP)
        assert np.all(np.isfinite(s.close)) and np.all(s.close > 0)


def test_subsampled_copies_partition_the_bars_and_stretch_scales_log_returns() -> None:
    segment = _segment(23, 3, 0)
    copies = [subsampled(segment, 4, offset) for offset in range(4)]
    rows = np.sort(np.concatenate([c.times for c in copies]))
    assert np.array_equal(rows, segment.times)  # every bar in exactly one copy
    assert np.array_equal(copies[1].features, segment.features[1::4])
    wild = stretched(segment, 1.5)
    assert np.allclose(np.diff(np.log(wild.close)), 1.5 * np.diff(np.log(segment.close)))
    assert wild.close[0] == segment.close[0]
    with pytest.raises(ValueError, match="subsample"):
        augment([segment], subsample=0, rng=np.random.default_rng(0))


def test_intraday_segments_are_not_subsampled() -> None:
    day = replace(_segment(10, 2, 0), session_end=np.arange(10) % 5 == 4, time_to_close=np.linspace(1, 0, 10))
    pool = augment([day], subsample=3, rng=np.random.default_rng(0))
    assert len(pool) == 1 and pool[0] is day


def test_training_augments_only_the_training_segments() -> None:
    train_segments, val_segments = _segments()
    before = [_frozen(s) for s in train_segments + val_segments]
    config = replace(TINY, augment_subsample=2, augment_stretch=(0.5, 2.0), augment_noise=0.2)
    costs = cost_preset("crypto")
    result = train(train_segments, val_segments, costs, config)
    assert [_frozen(s) for s in train_segments + val_segments] == before
    # the best validation Sharpe was measured on the untouched validation segments
    network = network_from_weights(result.obs_dim, config, result.weights)
    assert validation_sharpe(network, val_segments, costs, 1, 252) == pytest.approx(result.best_val_sharpe)
    # augmentation changes what is learnt (same seed, same steps)
    plain = train(train_segments, val_segments, costs, TINY)
    assert not all(np.array_equal(plain.weights[k], result.weights[k]) for k in plain.weights)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), cut=st.integers(0, 39), span=st.integers(1, 20), seed=st.integers(0, 1_000))
def test_lowpass_has_no_look_ahead(n: int, cut: int, span: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    future = x.copy()
    t = min(cut, n - 1)
    future[t + 1 :] = rng.normal(size=future[t + 1 :].shape) * 100  # rewrite everything after row t
    assert np.array_equal(lowpass(x, span)[: t + 1], lowpass(future, span)[: t + 1])
    assert np.array_equal(lowpass(x, 1), x)


def test_reward_clipping() -> None:
    clipped = AgentConfig(reward_clip=1.0)
    assert _scaled(0.004, clipped) == pytest.approx(0.4)  # 0.4 % kept
    assert _scaled(0.05, clipped) == 1.0 and _scaled(-0.05, clipped) == -1.0
    assert _scaled(0.05, AgentConfig()) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="reward_clip"):
        AgentConfig(reward_clip=0.0)
