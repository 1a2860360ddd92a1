"""The Inception CNN over images of technical indicators (issue 15): move classes over the next 14 bars.

* :mod:`tapewatch.signals.cnn.images` — the indicator images (last 56 bars × 15 standardised indicators) and the move
  classes down / flat / up at thresholds fitted on the training range.
* :mod:`tapewatch.signals.cnn.config` — :class:`~tapewatch.signals.cnn.config.CnnConfig` (recorded in the manifest).
* :mod:`tapewatch.signals.cnn.model` — the network: a stem, Inception modules, global average pooling (torch).
* :mod:`tapewatch.signals.cnn.training` — :func:`~tapewatch.signals.cnn.training.train_cnn`, early-stopped on validation
  balanced accuracy.
* :mod:`tapewatch.signals.cnn.forecaster` — :class:`~tapewatch.signals.cnn.forecaster.CnnModel`, the trained model as
  the signals lab uses it (forecast of a series, trading rule, class scores against the majority class).
* :mod:`tapewatch.signals.cnn.serving` — artifacts and :class:`~tapewatch.signals.cnn.serving.CnnForecaster`, the live
  batched forecaster the stream worker serves.

Pure computation (and loading/saving a model artifact). Importing this package does not import torch.
"""

__all__: list[str] = []
