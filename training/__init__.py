"""The training jobs: models fitted on history or generated sessions, written as versioned artifacts.

* :mod:`tapewatch.training.spark_features`, :mod:`tapewatch.training.spark_kmeans` — the Spark jobs (features,
  K-means training);
* :mod:`tapewatch.training.hit_model` — the calibrated hit model's training and leave-one-generator-out report;
* :mod:`tapewatch.training.dqn` — the DQN's data sources, walk-forward backtests and reports;
* :mod:`tapewatch.training.lab` — the signals lab: every trading policy walked forward over the same years;
* :mod:`tapewatch.training.lstm_data` — the LSTM's features on Spark, as Parquet;
* :mod:`tapewatch.training.news_sentiment`, :mod:`tapewatch.training.news_lexicon` — the news sentiment
  classifier's training, and the built-in lexicons' extraction from the ``cntext`` package.
"""

__all__: list[str] = []
