"""Offline work: what runs on history or on generated data, never in the live path.

* :mod:`offline.simulator`, :mod:`offline.lob_market` — the two labelled market generators;
  :mod:`offline.feed_shapes` shapes their prints into the snapshot feeds (TWSE MIS 5 s, 1 s);
* :mod:`offline.lookback` — the stream's detection run over a file (``tapewatch detect file``);
* :mod:`offline.evaluation`, :mod:`offline.eval_matrix` — alerts scored against labelled episodes;
* :mod:`offline.spark_features`, :mod:`offline.spark_kmeans` — the Spark jobs (features, K-means training);
* :mod:`offline.dqn` — the DQN's data sources, walk-forward backtests and reports;
* :mod:`offline.news_sentiment`, :mod:`offline.news_lexicon` — the news sentiment classifier's training and
  held-out table (``tapewatch train news``), and the built-in lexicons' extraction from the ``cntext`` package.

The computation itself (bars, features, flow, detectors, models) is :mod:`detectors`'; this package reads and
writes files, starts Spark and drives :mod:`detectors` over whole sessions.
"""

__all__: list[str] = []
