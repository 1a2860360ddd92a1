"""Double-DQN trading signals: environment, agent, data, walk-forward backtests and live inference.

* :mod:`detectors.dqn.env` — the gymnasium trading environment (HOLD/BUY/SELL, long or flat, cost presets,
  intraday flat-at-close) and the position rule shared with live inference.
* :mod:`detectors.dqn.data` — daily OHLCV shipped inside PyPI wheels, TWSE daily Parquet, simulated intraday
  bars; all turned into bars and fed to :mod:`detectors.features` (one definition of each feature).
* :mod:`detectors.dqn.agent` — Double DQN in torch and its training loop (early stopping on validation Sharpe).
* :mod:`detectors.dqn.backtest` — metrics, baselines (buy-and-hold, momentum, random) and walk-forward runs.
* :mod:`detectors.dqn.report` — markdown report and PNG equity curves.
* :mod:`detectors.dqn.inference` — :class:`~detectors.dqn.inference.DqnPolicy` for the stream worker.

Pure computation and artifact file I/O: no Kafka, no database.
"""
