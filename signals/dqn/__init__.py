"""Double-DQN trading signals: environment, agent, data preparation and live inference.

* :mod:`tapewatch.signals.dqn.env` — the gymnasium trading environment (HOLD/BUY/SELL, long or flat, intraday
  flat-at-close) and the position rule shared with live inference.
* :mod:`tapewatch.signals.dqn.costs` — the trading costs and their presets (no torch, no gymnasium: the paper executor's
  too).
* :mod:`tapewatch.signals.dqn.data` — bars fed to :mod:`tapewatch.detectors.features` (one definition of each feature),
  the normalisation and prepared segments; the sources themselves are read by :mod:`tapewatch.training.dqn.data`.
* :mod:`tapewatch.signals.dqn.agent` — Double DQN in torch and its training loop (early stopping on validation Sharpe).
* :mod:`tapewatch.signals.dqn.augment` — the training data's augmentations (tried one at a time as agent options).
* :mod:`tapewatch.signals.dqn.backtest` — policy runs through the environment, their metrics, and the baselines
  (buy-and-hold, momentum, random).
* :mod:`tapewatch.signals.dqn.inference` — :class:`~tapewatch.signals.dqn.inference.DqnPolicy` for the stream worker.
* :mod:`tapewatch.signals.dqn.decisions` — what the worker keeps and sends for a decision (requests, decisions, the
  position state), without torch.

Walk-forward runs over years and their reports are :mod:`tapewatch.training.dqn`. Pure computation (and loading a model
artifact): no Kafka, no database.
"""

__all__: list[str] = []
