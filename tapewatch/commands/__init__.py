"""The ``tapewatch`` sub-commands, one module per group; :mod:`tapewatch.cli` wires them into one app (``config``,
``schema``, ``infra``, ``topics`` and ``db`` live in :mod:`tapewatch.cli` itself).

* :mod:`~tapewatch.commands.produce` — ``produce …``, ``fetch …``;
* :mod:`~tapewatch.commands.news_sources` — ``produce news-cnyes``, ``produce news-feed``, ``produce news-replay``;
* :mod:`~tapewatch.commands.stream` — ``stream …``;
* :mod:`~tapewatch.commands.sink` — ``sink …``, ``alerts …``, ``kibana …``;
* :mod:`~tapewatch.commands.detect` — ``train kmeans``, ``detect …``, ``eval detect``, ``eval simulate``,
  ``eval matrix``, ``eval real-tapes``;
* :mod:`~tapewatch.commands.calibrate` — ``calibrate``;
* :mod:`~tapewatch.commands.scorecard` — ``eval scorecard``;
* :mod:`~tapewatch.commands.hit_model` — ``eval hit-model``;
* :mod:`~tapewatch.commands.dqn` — ``train dqn``, ``backtest dqn``;
* :mod:`~tapewatch.commands.lstm` — ``train lstm``;
* :mod:`~tapewatch.commands.cnn` — ``train cnn``;
* :mod:`~tapewatch.commands.news` — ``train news``;
* :mod:`~tapewatch.commands.signals` — ``backtest signals``, ``forecast``;
* :mod:`~tapewatch.commands.trade` — ``trade paper``, ``trade report``;
* :mod:`~tapewatch.commands.console` — ``console …``;
* :mod:`~tapewatch.commands.bench` — ``bench …``.

``tests/unit/test_package_indexes.py`` holds this list to the package's modules.
"""

__all__: list[str] = []
