"""Batched CPU inference throughput: symbol-decisions per second of :meth:`DqnPolicy.decide`.

Run: ``tapewatch bench dqn [--batch 1000] [--seconds 5] [--threads 1] [--ensemble 1 5]``. Publishes an
untrained model of the default architecture (one network, and an ensemble of ``k`` averaged) in a temporary
model directory (throughput does not depend on the weights), then times ``decide`` end to end: feature dicts
in, validated, normalised, one forward pass, decisions out. Prints numbers; not a test.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from tapewatch.signals.dqn.agent import AgentConfig, EnsembleQNetwork, QNetwork, TrainResult, network_weights
from tapewatch.signals.dqn.costs import cost_preset
from tapewatch.signals.dqn.data import DEFAULT_FEATURES, Normaliser
from tapewatch.signals.dqn.env import observation_width
from tapewatch.signals.dqn.inference import DecisionRequest, DqnPolicy, save_model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, nargs="*", default=[1, 100, 1000, 10_000])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ensemble", type=int, nargs="*", default=[1, 5], help="networks in the model")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for members in args.ensemble:
        _bench(replace(AgentConfig(), ensemble=members), args.batch, args.seconds, args.threads)


def _model(config: AgentConfig, obs_dim: int) -> TrainResult:
    """An untrained model of ``config``'s architecture (``config.ensemble`` networks)."""
    networks = [QNetwork(obs_dim, config.hidden, config.dueling) for _ in range(config.ensemble)]
    network = networks[0] if config.ensemble == 1 else EnsembleQNetwork(networks)
    return TrainResult(network_weights(network), obs_dim, 0.0, 0, 0, 0, 0.0, False)


def _bench(config: AgentConfig, batches: list[int], seconds: float, threads: int) -> None:
    obs_dim = observation_width(len(DEFAULT_FEATURES), intraday=False)
    k = len(DEFAULT_FEATURES)
    normaliser = Normaliser(DEFAULT_FEATURES, np.zeros(k), np.ones(k))
    result = _model(config, obs_dim)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        save_model(
            Path(tmp),
            result,
            config=config,
            normaliser=normaliser,
            costs=cost_preset("crypto"),
            max_units=1,
            intraday=False,
            training={},
            data_hash="0" * 64,
        )
        policy = DqnPolicy.load(Path(tmp))
        print(
            f"threads {threads}, network {config.hidden} dueling={config.dueling} × {config.ensemble} "
            f"(ensemble), {k} features"
        )
        print(f"{'batch':>8} {'decisions/s':>14} {'µs/decision':>12} {'ms/batch':>10}")
        for batch in batches:
            requests = [
                DecisionRequest(f"S{i}", dict(zip(DEFAULT_FEATURES, rng.normal(size=k).tolist(), strict=True)), i % 2)
                for i in range(batch)
            ]
            policy.decide(requests)  # warm-up
            done, calls, started = 0, 0, time.perf_counter()
            while time.perf_counter() - started < seconds:
                done += len(policy.decide(requests))
                calls += 1
            elapsed = time.perf_counter() - started
            print(f"{batch:>8} {done / elapsed:>14,.0f} {elapsed / done * 1e6:>12.2f} {elapsed / calls * 1e3:>10.2f}")


if __name__ == "__main__":
    main()
