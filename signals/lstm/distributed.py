"""Data-parallel training with ``torch.distributed``: N worker processes, one model, the same model for any N.

Every worker holds the whole training set and a replica of the network (the same initial weights: each seeds
torch with the config's seed). Each step takes one **global batch** and every worker computes the gradient of
its own contiguous shard of the batch's rows; the gradients are summed with one ``all_reduce`` (the shard's
squared errors are divided by the *global* batch size, so the sum is the global batch's MSE gradient), clipped
and applied by every worker's own Adam — the replicas stay identical without broadcasting weights.

Two workers give the same model as one because nothing depends on the worker count:

* the batch order is a permutation drawn from ``(seed, epoch)``;
* the dropout mask of a global batch is drawn from ``(seed, step)`` (:func:`tapewatch.signals.lstm.model.dropout_keep`)
  and each worker multiplies its own rows of it;
* the validation loss is a sum of squared errors over the workers' shards, all-reduced and then broadcast
  from rank 0, so every worker takes the same early-stopping decision.

What differs is only floating-point summation order (a batch's gradient summed in one matmul or as two shards'
sums), so the weights agree to float32 rounding, not bit for bit.

The backend is gloo (CPU; on a GPU cluster the same code runs with ``nccl`` and tensors moved to the device).
Workers are spawned on this host with :func:`torch.multiprocessing.spawn` and meet through a file in a
temporary directory (no port to pick); ``workers=1`` runs the same worker function in this process.

>>> from tapewatch.signals.lstm.samples import Samples
>>> rng = np.random.default_rng(0)
>>> def samples(n: int) -> Samples:
...     return Samples(rng.normal(size=(n + 4, 2)).astype(np.float32), np.arange(n), rng.normal(0, 0.01, n),
...                    np.ones(n), window=5)
>>> data = TrainingData(samples(24), samples(8), target_scale=0.01)
>>> outcome = train_data_parallel(data, LstmConfig(units=4, batch_size=8, max_epochs=2, features=("a", "b")))
>>> outcome.epochs, sorted(outcome.weights)[:2], [sorted(h) for h in outcome.history][0]
(2, ['head.bias', 'head.weight'], ['epoch', 'seconds', 'train_loss', 'val_loss'])
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import torch
import torch.distributed as dist
from torch import nn
from torch.multiprocessing.spawn import spawn

from tapewatch.signals.lstm.config import LstmConfig
from tapewatch.signals.lstm.model import LstmNet, Weights, dropout_keep, network_weights, predict_windows
from tapewatch.signals.lstm.samples import Samples

__all__ = ["Outcome", "TrainingData", "train_data_parallel"]

#: validation windows per forward pass (bounds the memory of one copy of windows)
VALIDATION_CHUNK = 4096


@dataclass(frozen=True)
class TrainingData:
    """Training and validation examples; the network learns ``return / target_scale``."""

    train: Samples
    val: Samples
    target_scale: float


@dataclass
class Outcome:
    """The weights of the epoch with the lowest validation loss, and how training went."""

    weights: Weights
    epochs: int
    best_epoch: int
    best_val_loss: float
    stopped_early: bool
    history: list[dict[str, float]] = field(default_factory=list)


def train_data_parallel(data: TrainingData, config: LstmConfig, workers: int = 1) -> Outcome:
    """Train on ``workers`` processes (gloo on this host); ``workers=1`` runs in this process."""
    if workers < 1:
        raise ValueError("workers must be ≥ 1")
    if len(data.train) == 0 or len(data.val) == 0:
        raise ValueError("training needs at least one training and one validation window")
    with tempfile.TemporaryDirectory(prefix="tapewatch-lstm-") as tmp:
        args = (workers, f"file://{tmp}/rendezvous", data, config, tmp)
        if workers == 1:
            if dist.is_initialized():
                raise RuntimeError("a torch.distributed process group is already running in this process")
            threads = torch.get_num_threads()
            try:
                with torch.random.fork_rng():
                    worker(0, *args)
            finally:
                torch.set_num_threads(threads)
        else:
            spawn(_spawned_worker, args=args, nprocs=workers, join=True)  # type: ignore[no-untyped-call]
        return _read_outcome(Path(tmp))


def worker(rank: int, world: int, init_method: str, data: TrainingData, config: LstmConfig, out_dir: str) -> None:
    """One worker process: join the group, train its shards, and (rank 0) write the outcome to ``out_dir``."""
    torch.set_num_threads(1)  # one core per worker: several workers on one machine must not oversubscribe it
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world)
    try:
        outcome = _fit(rank, world, data, config)
        # No rank tears its connections down while a peer may still use them: a clean-clone run under load
        # once aborted a worker in gloo's teardown ("terminate called without an active exception").
        dist.barrier()
    finally:
        dist.destroy_process_group()
    if rank == 0:
        _write_outcome(Path(out_dir), outcome)


def _spawned_worker(
    rank: int, world: int, init_method: str, data: TrainingData, config: LstmConfig, out_dir: str
) -> None:
    """:func:`worker` in a process of its own, which then ends without the interpreter's teardown. Twice in
    82 runs on a loaded machine a worker aborted with "terminate called without an active exception": the
    message of a C++ thread destroyed while still joinable, as gloo's are when a process exits with them alive
    (where exactly was not caught: 80 runs with faulthandler on did not reproduce it). Its work is done and
    written when this exits; an exception still ends it through ``spawn``'s error path."""
    worker(rank, world, init_method, data, config, out_dir)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _shard(rows: int, rank: int, world: int) -> tuple[int, int]:
    """This worker's contiguous slice ``[lo, hi)`` of ``rows`` rows (sizes differ by at most one)."""
    return rows * rank // world, rows * (rank + 1) // world


@dataclass
class _Best:
    weights: Weights
    loss: float = float("inf")
    epoch: int = 0
    stale: int = 0

    def observe(self, loss: float, epoch: int, network: nn.Module) -> None:
        if loss < self.loss:
            self.loss, self.epoch, self.stale = loss, epoch, 0
            self.weights = network_weights(network)
        else:
            self.stale += 1


def _fit(rank: int, world: int, data: TrainingData, c: LstmConfig) -> Outcome:
    torch.manual_seed(c.seed)  # the same initial weights on every worker
    network = LstmNet(data.train.rows.shape[1], c.units)
    optimizer = torch.optim.Adam(network.parameters(), lr=c.learning_rate)
    y_train = (data.train.returns / data.target_scale).astype(np.float32)
    y_val = data.val.returns / data.target_scale
    best = _Best(network_weights(network))
    history: list[dict[str, float]] = []
    step, epoch, stopped = 0, 0, False
    for epoch in range(1, c.max_epochs + 1):
        started = time.perf_counter()
        train_loss, step = _epoch(network, optimizer, data.train, y_train, c, epoch, step, rank, world)
        val_loss = _validation_loss(network, data.val, y_val, rank, world)
        history.append(
            {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "seconds": time.perf_counter() - started}
        )
        best.observe(val_loss, epoch, network)
        if best.stale >= c.patience:
            stopped = True
            break
    return Outcome(best.weights, epoch, best.epoch, best.loss, stopped, history)


def _epoch(
    network: LstmNet,
    optimizer: torch.optim.Optimizer,
    samples: Samples,
    y: npt.NDArray[np.float32],
    c: LstmConfig,
    epoch: int,
    step: int,
    rank: int,
    world: int,
) -> tuple[float, int]:
    """One pass over the global batches (order from ``(seed, epoch)``); the mean training loss and next step."""
    order = np.random.default_rng([c.seed, epoch]).permutation(len(samples))
    parameters = list(network.parameters())
    total = 0.0
    for first in range(0, len(order), c.batch_size):
        batch = order[first : first + c.batch_size]
        lo, hi = _shard(len(batch), rank, world)
        optimizer.zero_grad(set_to_none=True)
        if hi > lo:
            keep = dropout_keep(c.seed, step, len(batch), c.units, c.dropout)[lo:hi]
            rows = batch[lo:hi]
            predicted = network(torch.from_numpy(samples.windows(rows)), keep)
            loss = ((predicted - torch.from_numpy(y[rows])) ** 2).sum() / len(batch)
            loss.backward()
            total += float(loss.item()) * len(batch)
        _all_reduce_gradients(parameters)
        nn.utils.clip_grad_norm_(parameters, c.grad_clip)
        optimizer.step()
        step += 1
    return _all_reduce_sum(total) / len(order), step


def _all_reduce_gradients(parameters: list[nn.Parameter]) -> None:
    """Sum every worker's gradients in one flat ``all_reduce`` (a worker with an empty shard adds zeros)."""
    flat = torch.cat([torch.zeros(p.numel()) if p.grad is None else p.grad.reshape(-1) for p in parameters])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    first = 0
    for p in parameters:
        p.grad = flat[first : first + p.numel()].view_as(p).clone()
        first += p.numel()


def _all_reduce_sum(value: float) -> float:
    """The sum over the workers, as rank 0 sees it (broadcast, so every worker decides alike)."""
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def _validation_loss(network: LstmNet, samples: Samples, y: npt.NDArray[np.float64], rank: int, world: int) -> float:
    lo, hi = _shard(len(samples), rank, world)
    squared = 0.0
    for first in range(lo, hi, VALIDATION_CHUNK):
        index = np.arange(first, min(first + VALIDATION_CHUNK, hi))
        squared += float(np.sum((predict_windows(network, samples.windows(index)) - y[index]) ** 2))
    return _all_reduce_sum(squared) / len(samples)


def _write_outcome(out_dir: Path, outcome: Outcome) -> None:
    np.savez(out_dir / "weights.npz", allow_pickle=False, **outcome.weights)
    meta: dict[str, Any] = {
        "epochs": outcome.epochs,
        "best_epoch": outcome.best_epoch,
        "best_val_loss": outcome.best_val_loss,
        "stopped_early": outcome.stopped_early,
        "history": outcome.history,
    }
    (out_dir / "outcome.json").write_bytes(orjson.dumps(meta))


def _read_outcome(out_dir: Path) -> Outcome:
    meta = orjson.loads((out_dir / "outcome.json").read_bytes())
    with np.load(out_dir / "weights.npz", allow_pickle=False) as npz:
        weights = {key: npz[key] for key in npz.files}
    return Outcome(
        weights=weights,
        epochs=int(meta["epochs"]),
        best_epoch=int(meta["best_epoch"]),
        best_val_loss=float(meta["best_val_loss"]),
        stopped_early=bool(meta["stopped_early"]),
        history=list(meta["history"]),
    )
