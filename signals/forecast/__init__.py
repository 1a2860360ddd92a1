"""Forecasting signals beside the Double DQN: the contract every forecaster serves, windows, rules, metrics.

* :mod:`tapewatch.signals.forecast.contract` — :class:`~tapewatch.signals.forecast.contract.ForecastRequest` (a symbol's
  last raw feature rows), :class:`~tapewatch.signals.forecast.contract.ForecastResult` (model, version, horizon,
  prediction, confidence), :class:`~tapewatch.signals.forecast.contract.Rejected` and the
  :class:`~tapewatch.signals.forecast.contract.Forecaster` protocol the stream worker serves;
  :func:`~tapewatch.signals.forecast.contract.stack_requests` validates a batch.
* :mod:`tapewatch.signals.forecast.windows` — sliding windows over feature rows and forward returns (the targets).
* :mod:`tapewatch.signals.forecast.rules` — forecasts → desired positions → the environment's HOLD/BUY/SELL.
* :mod:`tapewatch.signals.forecast.metrics` — forecast errors against the naive forecast, classification scores
  against the majority class.

The models themselves are :mod:`tapewatch.signals.lstm` and :mod:`tapewatch.signals.cnn`. Pure computation.
"""

__all__: list[str] = []
