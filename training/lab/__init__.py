"""The signals lab: every trading policy walked forward over the same held-out years, assets, seeds and costs.

* :mod:`tapewatch.training.lab.lab` — the walk-forward: per window, the Double DQN, every forecaster family's trading
  rule (LSTM, CNN), their majority-vote ensemble, buy-and-hold, momentum and random, all through the same
  environment; the forecasters' own scores on the test years.
* :mod:`tapewatch.training.lab.stats` — the paired block-bootstrap confidence interval on a policy's Sharpe difference
  to buy-and-hold.
* :mod:`tapewatch.training.lab.report` — ``report.md`` (one table, the quality bars) and the PNG charts.
"""

__all__: list[str] = []
