"""Double-DQN trading signals: environment, agent, data preparation and live inference.

* :mod:`signals.dqn.env` — the gymnasium trading environment (HOLD/BUY/SELL, long or flat, cost presets,
  intraday flat-at-close) and the position rule shared with live inference.
* :mod:`signals.dqn.data` — bars fed to :mod:`detectors.features` (one definition of each feature), the
  normalisation and prepared segments; the sources themselves are read by :mod:`offline.dqn.data`.
* :mod:`signals.dqn.agent` — Double DQN in torch and its training loop (early stopping on validation Sharpe).
* :mod:`signals.dqn.backtest` — policy runs through the environment, their metrics, and the baselines
  (buy-and-hold, momentum, random).
* :mod:`signals.dqn.inference` — :class:`~signals.dqn.inference.DqnPolicy` for the stream worker.

Walk-forward runs over years and their reports are :mod:`offline.dqn`. Pure computation (and loading a model artifact):
no Kafka, no database.
"""

__all__: list[str] = []
