"""The Double DQN offline: data sources (:mod:`offline.dqn.data`), walk-forward runs over years against the
baselines of :mod:`signals.dqn.backtest` (:mod:`offline.dqn.walkforward`) and the markdown/PNG report
(:mod:`offline.dqn.report`). The agent, environment and live inference are :mod:`signals.dqn`."""

__all__: list[str] = []
