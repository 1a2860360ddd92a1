"""Forecasting signals beside the Double DQN: the contract every forecaster serves, windows, rules, metrics.

* :mod:`signals.forecast.contract` — :class:`~signals.forecast.contract.ForecastRequest` (a symbol's last
  raw feature rows), :class:`~signals.forecast.contract.Forecast` (model, version, horizon, prediction,
  confidence), :class:`~signals.forecast.contract.Rejected` and the :class:`~signals.forecast.contract.Forecaster`
  protocol the stream worker serves; :func:`~signals.forecast.contract.stack_requests` validates a batch.
* :mod:`signals.forecast.windows` — sliding windows over feature rows and forward returns (the targets).
* :mod:`signals.forecast.rules` — forecasts → desired positions → the environment's HOLD/BUY/SELL.
* :mod:`signals.forecast.metrics` — forecast errors against the naive forecast, classification scores
  against the majority class.

The models themselves are :mod:`signals.lstm` and :mod:`signals.cnn`. Pure computation.
"""

__all__: list[str] = []
