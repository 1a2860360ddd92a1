"""The LSTM next-bar forecaster (issue 15, seed 001): windows of scale-free features → expected next-bar return.

* :mod:`tapewatch.signals.lstm.config` — :class:`~tapewatch.signals.lstm.config.LstmConfig` (the seed's architecture by
  default: 50-bar windows of 8 features, 128 units, dropout 0.2, Adam, MSE) and the default features.
* :mod:`tapewatch.signals.lstm.samples` — feature rows → normalised windows and next-bar return targets (no torch).
* :mod:`tapewatch.signals.lstm.model` — the network, its weights, the shared dropout masks and batched prediction.
* :mod:`tapewatch.signals.lstm.distributed` — data-parallel training with ``torch.distributed`` (gloo), one worker or
  many, the same model either way.
* :mod:`tapewatch.signals.lstm.training` — :func:`~tapewatch.signals.lstm.training.train_lstm` and its result.
* :mod:`tapewatch.signals.lstm.forecaster` — the fitted model for the signals lab (``TrainedForecaster``): forecasts at
  every bar, the band trading rule, forecast scores beside the naive forecast.
* :mod:`tapewatch.signals.lstm.serving` — the artifact (save, load with validation) and the live ``Forecaster``.

Pure computation (and a model artifact); torch is imported by the model modules only, not by this package.
"""

__all__: list[str] = []
