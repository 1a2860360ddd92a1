"""Forward passes of one fixed shape, for serving: an output depends on its own input alone, at batch speed.

A batched forward pass sums each row's products in an order chosen for the whole batch's shape (BLAS blocking,
vector width, where the vectorised body ends and the scalar tail begins), so a row's output would change in the
last bits with how many rows shared its pass. Every serving pass here has :data:`SERVING_ROWS` rows, the last one
padded with zeros: the shape, and with it the order of every sum, never changes, and a row's output is the same
wherever it sits and whatever shares its pass (``tests/unit/test_batch_invariance.py`` holds it for the three
served networks, whatever the batch and the thread count). No property of BLAS promises that a row's place in
the pass never matters (an edge tile may take another kernel), so a loaded model checks it on the machine it
runs on (:func:`serving_rows`) and serves one window per pass where it fails. A worker catching up serves its
backlog at batch speed; a crash, a restart or another spread of partitions over workers still changes no output.

>>> import torch
>>> double = lambda x: x * 2.0
>>> fixed_shape_forward(double, torch.ones(3, 2), rows=2).tolist()
[[2.0, 2.0], [2.0, 2.0], [2.0, 2.0]]
>>> fixed_shape_forward(double, torch.ones(0, 2), rows=2).shape
torch.Size([0, 2])
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

import torch

log = logging.getLogger(__name__)

#: rows of every serving pass: 32 keeps a live pass of a few bar closes cheap (the CNN's pass of 32 images takes a
#: few milliseconds) and a backlog near the speed of larger batches (``tapewatch bench dqn``, ``lstm``, ``cnn``)
SERVING_ROWS: Final = 32


def fixed_shape_forward(
    network: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, rows: int = SERVING_ROWS
) -> torch.Tensor:
    """``network`` over the rows of ``x`` in passes of exactly ``rows`` rows (the last padded with zeros), without
    gradients; the outputs of the real rows, in order."""
    count = len(x)
    padding = -count % rows
    if padding or not count:
        x = torch.cat([x, x.new_zeros((padding or rows, *x.shape[1:]))])
    with torch.no_grad():
        out = torch.cat([network(x[first : first + rows]) for first in range(0, len(x), rows)])
    return out[:count]


def serving_rows(network: Callable[[torch.Tensor], torch.Tensor], row_shape: tuple[int, ...], name: str) -> int:
    """:data:`SERVING_ROWS` when ``network``'s output for a row does not depend on the row's place in a pass on
    this machine (a pass of random rows, served again rolled by a few places), else 1 (logged)."""
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn((SERVING_ROWS, *row_shape), generator=generator)
    with torch.no_grad():
        reference = network(probe)
        for shift in (1, 5, 13):
            if not torch.equal(network(probe.roll(shift, 0)), reference.roll(shift, 0)):
                log.warning("%s: a row's output depends on its place in a pass here: one window per pass", name)
                return 1
    return SERVING_ROWS
