"""The signals lab: every trading policy walked forward over the same held-out years, assets, seeds and costs.

* :mod:`offline.signals.lab` — the walk-forward: per window, the Double DQN, every forecaster family's trading
  rule (LSTM, CNN), their majority-vote ensemble, buy-and-hold, momentum and random, all through the same
  environment; the forecasters' own scores on the test years.
* :mod:`offline.signals.stats` — the paired block-bootstrap confidence interval on a policy's Sharpe difference
  to buy-and-hold.
* :mod:`offline.signals.report` — ``report.md`` (one table, the quality bars) and the PNG charts.
"""

__all__: list[str] = []
