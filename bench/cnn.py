"""Batched CPU inference throughput of the CNN: forecasts per second of :meth:`CnnForecaster.forecast`.

Run: ``tapewatch bench cnn [--batch 1000] [--seconds 5] [--threads 1]``. Publishes an untrained network of the
default architecture in a temporary model directory (throughput does not depend on the weights), then times
``forecast`` end to end: each request's last 56 feature rows in (the window array of its feature history, as
the stream worker hands it over), validated and stacked (:func:`~tapewatch.signals.forecast.contract.stack_requests`),
normalised, forward passes of 256 images, forecasts out. Also times
the forward pass alone on ready images, to show where the time goes. Prints numbers; not a test.
"""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import torch

from tapewatch.bench.timing import batched_arguments, items_per_second, stream_requests
from tapewatch.signals.cnn.config import CnnConfig
from tapewatch.signals.cnn.forecaster import CnnModel
from tapewatch.signals.cnn.images import ClassThresholds
from tapewatch.signals.cnn.model import InceptionCnn, network_weights
from tapewatch.signals.cnn.serving import CnnForecaster, save_cnn
from tapewatch.signals.dqn.data import Normaliser


def main(argv: list[str] | None = None) -> None:
    args = batched_arguments(__doc__, argv)
    torch.set_num_threads(args.threads)
    config = CnnConfig()
    names, k = config.features, len(config.features)
    model = CnnModel(
        InceptionCnn(config), Normaliser(names, np.zeros(k), np.ones(k)), ClassThresholds(-0.02, 0.03), config
    )
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        save_cnn(Path(tmp), model, network_weights(model.network), training={}, data_hash="0" * 64)
        cnn = CnnForecaster.load(Path(tmp))
        print(f"threads {args.threads}, {k} indicators × {config.window} bars, Inception {config.branch_channels}")
        print(f"{'batch':>8} {'forecasts/s':>14} {'ms/batch':>10} {'network only/s':>15}")
        for batch in args.batch:
            requests = stream_requests(batch, names, config.window, rng)
            rate, ms = items_per_second(partial(cnn.forecast, requests), batch, args.seconds)
            images = rng.normal(size=(batch, 1, k, config.window)).astype(np.float32)
            network_rate, _ = items_per_second(partial(cnn.fitted.probabilities, images), batch, args.seconds)
            print(f"{batch:>8} {rate:>14,.0f} {ms:>10.2f} {network_rate:>15,.0f}")


if __name__ == "__main__":
    main()
