"""Forecasting signals beside the Double DQN: the contract every forecaster serves, windows, rules, metrics.

* :mod:`detectors.forecast.contract` — :class:`~detectors.forecast.contract.ForecastRequest` (a symbol's last
  raw feature rows), :class:`~detectors.forecast.contract.Forecast` (model, version, horizon, prediction,
  confidence), :class:`~detectors.forecast.contract.Rejected` and the :class:`~detectors.forecast.contract.Forecaster`
  protocol the stream worker serves; :func:`~detectors.forecast.contract.stack_requests` validates a batch.
* :mod:`detectors.forecast.windows` — sliding windows over feature rows and forward returns (the targets).
* :mod:`detectors.forecast.rules` — forecasts → desired positions → the environment's HOLD/BUY/SELL.
* :mod:`detectors.forecast.metrics` — forecast errors against the naive forecast, classification scores
  against the majority class.

The models themselves are :mod:`detectors.lstm` and :mod:`detectors.cnn`. Pure computation.
"""

__all__: list[str] = []
