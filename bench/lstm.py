"""Batched CPU inference throughput of :meth:`LstmForecaster.forecast`: forecasts per second.

Run: ``tapewatch bench lstm [--batch 1000] [--seconds 5] [--threads 1]``. Publishes an untrained network of the
default architecture (50-bar windows of 8 features, 128 units; throughput does not depend on the weights) in a
temporary model directory, then times ``forecast`` end to end: each request's last 50 raw feature rows in (the
window array of its feature history, as the stream worker hands it over), validated and stacked, normalised,
batched forward passes, forecasts out.
Also times the forward passes alone. Prints numbers; not a test.
"""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import torch

from tapewatch.bench.timing import batched_arguments, items_per_second, stream_requests
from tapewatch.signals.dqn.costs import cost_preset
from tapewatch.signals.dqn.data import Normaliser
from tapewatch.signals.lstm.config import LstmConfig
from tapewatch.signals.lstm.model import LstmNet, network_weights, predict_windows
from tapewatch.signals.lstm.serving import LstmForecaster, publish


def main(argv: list[str] | None = None) -> None:
    args = batched_arguments(__doc__, argv)
    torch.set_num_threads(args.threads)
    config = LstmConfig()
    k = len(config.features)
    torch.manual_seed(0)
    weights = network_weights(LstmNet(k, config.units))
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        publish(
            Path(tmp),
            weights,
            config=config,
            normaliser=Normaliser(config.features, np.zeros(k), np.ones(k)),
            target_scale=0.01,
            residual_rmse=0.01,
            band=0.0,
            costs=cost_preset("crypto"),
            training={},
            metrics={},
            data_hash="0" * 64,
        )
        forecaster = LstmForecaster.load(Path(tmp))
        print(f"threads {args.threads}, window {config.window} × {k} features, LSTM {config.units} units")
        print(f"{'batch':>8} {'forecasts/s':>12} {'ms/batch':>10} {'forward only/s':>15}")
        for batch in args.batch:
            requests = stream_requests(batch, config.features, config.window, rng)
            windows = rng.normal(size=(batch, config.window, k)).astype(np.float32)
            rate, ms = items_per_second(partial(forecaster.forecast, requests), batch, args.seconds)
            forward, _ = items_per_second(partial(predict_windows, forecaster.network, windows), batch, args.seconds)
            print(f"{batch:>8} {rate:>12,.0f} {ms:>10.2f} {forward:>15,.0f}")


if __name__ == "__main__":
    main()
