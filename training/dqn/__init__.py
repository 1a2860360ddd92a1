"""The Double DQN offline: data sources (:mod:`tapewatch.training.dqn.data`), walk-forward runs over years against the
baselines of :mod:`tapewatch.signals.dqn.backtest` (:mod:`tapewatch.training.dqn.walkforward`) and the markdown/PNG
report (:mod:`tapewatch.training.dqn.report`). The agent, environment and live inference are
:mod:`tapewatch.signals.dqn`."""

__all__: list[str] = []
