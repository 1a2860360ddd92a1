"""The Double DQN offline: data sources (:mod:`offline.dqn.data`), walk-forward runs over years against the
baselines of :mod:`detectors.dqn.backtest` (:mod:`offline.dqn.walkforward`) and the markdown/PNG report
(:mod:`offline.dqn.report`). The agent, environment and live inference are :mod:`detectors.dqn`."""

__all__: list[str] = []
