"""The ``tapewatch`` sub-commands, one module per group; :mod:`tapewatch.cli.app` wires them into one app (``config``,
``schema``, ``infra``, ``topics`` and ``db`` live in :mod:`tapewatch.cli.app` itself).

* :mod:`~tapewatch.cli.produce` — ``produce …``, ``fetch …``;
* :mod:`~tapewatch.cli.news_sources` — ``produce news-cnyes``, ``produce news-feed``, ``produce news-replay``;
* :mod:`~tapewatch.cli.stream` — ``stream …``;
* :mod:`~tapewatch.cli.sink` — ``sink …``, ``alerts …``, ``kibana …``;
* :mod:`~tapewatch.cli.detect` — ``train kmeans``, ``detect …``, ``eval detect``, ``eval simulate``,
  ``eval matrix``, ``eval real-tapes``;
* :mod:`~tapewatch.cli.detect_orders` — what ``detect file --orders`` reads: market-by-order files and a drop copy;
* :mod:`~tapewatch.cli.calibrate` — ``calibrate``;
* :mod:`~tapewatch.cli.scorecard` — ``eval scorecard``;
* :mod:`~tapewatch.cli.hit_model` — ``eval hit-model``;
* :mod:`~tapewatch.cli.eval_orders` — ``eval orders``;
* :mod:`~tapewatch.cli.dqn` — ``train dqn``, ``backtest dqn``;
* :mod:`~tapewatch.cli.lstm` — ``train lstm``;
* :mod:`~tapewatch.cli.cnn` — ``train cnn``;
* :mod:`~tapewatch.cli.news` — ``train news``;
* :mod:`~tapewatch.cli.signals` — ``backtest signals``, ``forecast``;
* :mod:`~tapewatch.cli.trade` — ``trade paper``, ``trade report``;
* :mod:`~tapewatch.cli.console` — ``console …``;
* :mod:`~tapewatch.cli.bench` — ``bench …``.

``tests/unit/test_package_indexes.py`` holds this list to the package's modules.
"""

__all__: list[str] = []
