"""News for surveillance: what the symbol's news says and when, beside the alerts. Pure computation: no Kafka, no
database, no files but the built-in word lists and a model's artifact.

* :mod:`~tapewatch.detectors.news.indicator` — a symbol's news indicator: sentiment decayed in time, in [−100 %, +100
  %], and its news count over the last hour;
* :mod:`~tapewatch.detectors.news.context` — the news around an alert's onset, and a run-up's score lowered when there
  is some;
* :mod:`~tapewatch.detectors.news.sentiment` — :class:`~tapewatch.detectors.news.sentiment.SentimentModel`: an item's
  sentiment in [−1, 1], from the plain lexicon or a trained classifier; its versioned artifact;
* :mod:`~tapewatch.detectors.news.lexicon` — the financial sentiment word lists (Chinese, English) and their digest;
* :mod:`~tapewatch.detectors.news.reading` — an item's text as tokens (jieba for Chinese, folded to Simplified
  characters first) and its positive and negative lexicon hits, negation applied.

The package re-exports nothing: import the module you need.
"""

__all__: list[str] = []
