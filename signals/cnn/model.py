"""The Inception CNN (torch) over indicator images: stem, Inception modules, global pooling, three logits.

An :class:`InceptionModule` (Szegedy et al. 2015) runs four branches side by side over the same input and
concatenates them along the channels: a 1×1 convolution; 1×1 → 3×3; 1×1 → 5×5; and 3×3 max-pooling → 1×1. The
1×1 reductions keep it cheap; the 3×3 and 5×5 branches see a few neighbouring indicators over a few days, the
1×1 branch each cell alone, so the module learns at which scale a pattern matters.

:class:`InceptionCnn` is a 3×3 stem convolution with stride 2 in time and a 2-wide max-pool in time (56 bars →
14 columns), Inception modules (a 2×2 max-pool before each later one), global average pooling, dropout and a
linear layer to the logits of ``down, flat, up``.
Small on purpose: ~6,000 training images on one CPU thread in minutes, and tens of thousands of forecasts a
second served batched.

>>> _ = torch.manual_seed(0)
>>> module = InceptionModule(in_channels=8, branch_channels=4)
>>> tuple(module(torch.zeros(2, 8, 15, 28)).shape)  # four branches of 4 channels, concatenated
(2, 16, 15, 28)
>>> network = InceptionCnn(CnnConfig())
>>> tuple(network(torch.zeros(5, 1, 15, 56)).shape)
(5, 3)
>>> again = network_from_weights(CnnConfig(), network_weights(network))
>>> _ = network.eval()
>>> x = torch.randn(3, 1, 15, 56)
>>> bool(torch.equal(network(x), again(x)))
True
>>> bool(torch.allclose(folded_for_inference(network)(x), network(x), atol=1e-5))  # batch norms folded away
True
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from tapewatch.signals.cnn.config import CnnConfig
from tapewatch.signals.dqn.agent import Weights, network_weights
from tapewatch.signals.forecast.contract import CLASS_NAMES

__all__ = ["InceptionCnn", "InceptionModule", "folded_for_inference", "network_from_weights", "network_weights"]


def _conv(in_channels: int, out_channels: int, kernel: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2)


def max_pool_3x3(x: torch.Tensor) -> torch.Tensor:
    """3×3 max-pooling, stride 1, same size: ``nn.MaxPool2d(3, 1, padding=1)`` as two separable maxima of
    shifted views (torch's CPU max-pool kernel took half the forward pass). Replicated edges change no maximum.

    >>> x = torch.randn(2, 3, 5, 7)
    >>> bool(torch.equal(max_pool_3x3(x), nn.MaxPool2d(3, stride=1, padding=1)(x)))
    True
    """
    p = nn.functional.pad(x, (1, 1, 1, 1), mode="replicate")
    rows = torch.maximum(torch.maximum(p[:, :, :-2], p[:, :, 1:-1]), p[:, :, 2:])
    return torch.maximum(torch.maximum(rows[..., :-2], rows[..., 1:-1]), rows[..., 2:])


def halve(x: torch.Tensor, rows: bool) -> torch.Tensor:
    """2-wide max-pooling, stride 2, of the time axis (and of the indicator axis when ``rows``); an odd axis
    keeps its last cell (``ceil_mode``). A reshape and a maximum: no pooling kernel.

    >>> x = torch.randn(2, 3, 5, 7)
    >>> bool(torch.equal(halve(x, rows=True), nn.MaxPool2d(2, ceil_mode=True)(x)))
    True
    >>> bool(torch.equal(halve(x, rows=False), nn.MaxPool2d((1, 2), ceil_mode=True)(x)))
    True
    """
    if x.shape[-1] % 2:
        x = nn.functional.pad(x, (0, 1, 0, 0), mode="replicate")
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, w // 2, 2).amax(dim=-1)
    if not rows:
        return x
    if h % 2:
        x = nn.functional.pad(x, (0, 0, 0, 1), mode="replicate")
    return x.reshape(n, c, (h + 1) // 2, 2, w // 2).amax(dim=3)


class InceptionModule(nn.Module):
    """Four parallel branches, each ``branch_channels`` wide, concatenated; then batch norm and ReLU."""

    def __init__(self, in_channels: int, branch_channels: int) -> None:
        super().__init__()
        c = branch_channels
        self.one = _conv(in_channels, c, 1)
        self.three = nn.Sequential(_conv(in_channels, c, 1), nn.ReLU(), _conv(c, c, 3))
        self.five = nn.Sequential(_conv(in_channels, c, 1), nn.ReLU(), _conv(c, c, 5))
        self.pool = _conv(in_channels, c, 1)  # after a 3×3 max-pool of the input
        self.norm: nn.Module = nn.BatchNorm2d(4 * c)

    def branch_outputs(self) -> list[nn.Conv2d]:
        """The last convolution of each branch, in the order their outputs are concatenated."""
        return [self.one, self.three[2], self.five[2], self.pool]  # type: ignore[list-item]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = torch.cat([self.one(x), self.three(x), self.five(x), self.pool(max_pool_3x3(x))], dim=1)
        out: torch.Tensor = torch.relu(self.norm(branches))
        return out


class InceptionCnn(nn.Module):
    """Images ``(batch, 1, indicators, window)`` → logits ``(batch, 3)``.

    Global average pooling makes the weights independent of the image's size: the manifest's feature list and
    window say which images the weights were trained on, and loading checks them.
    """

    def __init__(self, config: CnnConfig) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, config.stem_channels, 3, stride=(1, 2), padding=1),
            nn.BatchNorm2d(config.stem_channels),
            nn.ReLU(),
        )
        modules: list[InceptionModule] = []
        width = config.stem_channels
        for branch in config.branch_channels:
            modules.append(InceptionModule(width, branch))
            width = 4 * branch
        self.inception = nn.ModuleList(modules)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(width, len(CLASS_NAMES))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        z = halve(self.stem(images), rows=False)  # 56 bars → 28 (stem stride) → 14
        for i, module in enumerate(self.inception):
            if i > 0:  # later modules see wider patterns: halve both axes first
                z = halve(z, rows=True)
            z = module(z)
        z = z.mean(dim=(2, 3))  # global average pooling
        logits: torch.Tensor = self.head(self.dropout(z))
        return logits


def network_from_weights(config: CnnConfig, weights: Mapping[str, npt.ArrayLike] | Weights) -> InceptionCnn:
    """The network of ``config`` with stored weights, in eval mode (raises when they do not fit)."""
    network = InceptionCnn(config)
    network.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in weights.items()}, strict=True)
    network.eval()
    return network


def folded_for_inference(network: InceptionCnn) -> InceptionCnn:
    """An eval-mode copy whose batch norms are folded into the convolutions before them: the same function with
    the running statistics (equal to float32 rounding), three fewer passes over the activations. A module's norm
    follows the concatenation of its branches, so each branch's last convolution takes its slice of the norm."""
    folded = copy.deepcopy(network).eval()
    stem_conv, stem_norm = folded.stem[0], folded.stem[1]
    assert isinstance(stem_conv, nn.Conv2d) and isinstance(stem_norm, nn.BatchNorm2d)
    _fold(stem_conv, stem_norm, slice(None))
    folded.stem[1] = nn.Identity()
    for module in folded.inception:
        assert isinstance(module, InceptionModule) and isinstance(module.norm, nn.BatchNorm2d)
        start = 0
        for conv in module.branch_outputs():
            _fold(conv, module.norm, slice(start, start + conv.out_channels))
            start += conv.out_channels
        module.norm = nn.Identity()
    return folded


def _fold(conv: nn.Conv2d, norm: nn.BatchNorm2d, part: slice) -> None:
    assert norm.running_mean is not None and norm.running_var is not None
    conv.weight, conv.bias = fuse_conv_bn_weights(
        conv.weight,
        conv.bias,
        norm.running_mean[part],
        norm.running_var[part],
        norm.eps,
        norm.weight[part],
        norm.bias[part],
    )
