"""The network: ``LSTM(features, units)`` → dropout on the last hidden state → ``Linear(units, 1)``.

Dropout is applied with an explicit mask (inverted dropout: kept units scaled by ``1 / (1 - p)``) rather than
``nn.Dropout``, and the mask of a global batch is drawn from a generator seeded by ``(seed, step)``
(:func:`dropout_keep`): every data-parallel worker draws the same mask and uses its own rows of it, so the
masks do not depend on how many workers share the batch. Without a mask (evaluation) there is no dropout.

>>> _ = torch.manual_seed(0)
>>> network = LstmNet(features=3, units=8)
>>> x = torch.randn(5, 10, 3)
>>> tuple(network(x).shape)
(5,)
>>> keep = dropout_keep(seed=0, step=7, rows=5, units=8, rate=0.5)
>>> sorted(set(keep.flatten().tolist())), torch.equal(keep, dropout_keep(0, 7, 5, 8, 0.5))
([0.0, 2.0], True)
>>> bool(torch.allclose(network(x[:2], keep[:2]), network(x, keep)[:2]))  # a shard's rows: the same outputs
True
>>> predict_windows(network, x.numpy(), chunk=2).shape  # batched, no gradients, float64 out
(5,)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from tapewatch.signals.fixed_shape import fixed_shape_forward

__all__ = ["LstmNet", "dropout_keep", "network_from_weights", "network_weights", "predict_windows", "serve_windows"]

Weights = dict[str, npt.NDArray[Any]]
#: windows per forward pass when predicting: the LSTM's per-step matrices stay in cache (faster than one pass)
PREDICT_CHUNK: Final = 256


class LstmNet(nn.Module):
    """One LSTM layer over the window (oldest bar first); the last hidden state → the scaled next-bar return."""

    def __init__(self, features: int, units: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(features, units, batch_first=True)
        self.head = nn.Linear(units, 1)

    def forward(self, windows: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        _, (hidden, _) = self.lstm(windows)
        last = hidden[-1]
        if keep is not None:
            last = last * keep
        out: torch.Tensor = self.head(last).squeeze(-1)
        return out


def dropout_keep(seed: int, step: int, rows: int, units: int, rate: float) -> torch.Tensor:
    """The ``(rows, units)`` inverted-dropout mask of the global batch of training step ``step``."""
    rng = np.random.default_rng([seed, step])
    kept = rng.random((rows, units)) >= rate
    return torch.from_numpy(kept.astype(np.float32) / np.float32(1.0 - rate))


def network_weights(network: nn.Module) -> Weights:
    """The state dict as numpy arrays (what an artifact stores)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in network.state_dict().items()}


def network_from_weights(features: int, units: int, weights: Mapping[str, npt.ArrayLike]) -> LstmNet:
    """The network of these weights, in evaluation mode (``RuntimeError`` when they do not fit it)."""
    network = LstmNet(features, units)
    state = {k: torch.as_tensor(np.asarray(v)) for k, v in weights.items()}
    network.load_state_dict(state, strict=True)
    network.eval()
    return network


def predict_windows(network: LstmNet, windows: npt.ArrayLike, chunk: int = PREDICT_CHUNK) -> npt.NDArray[np.float64]:
    """The network's outputs for ``(k, window, features)`` windows, in chunks, without gradients."""
    x = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
    out = np.empty(len(x), dtype=np.float64)
    with torch.no_grad():
        for first in range(0, len(x), chunk):
            out[first : first + chunk] = network(x[first : first + chunk]).numpy()
    return out


def serve_windows(network: LstmNet, windows: npt.ArrayLike, rows: int) -> npt.NDArray[np.float64]:
    """The network's outputs for ``(k, window, features)`` windows in passes of ``rows`` rows each: each window's
    output is its own, whatever else is served with it (:mod:`tapewatch.signals.fixed_shape`)."""
    x = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
    return fixed_shape_forward(network, x, rows).numpy().astype(np.float64)
