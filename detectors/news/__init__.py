"""News sentiment, pure computation: no Kafka, no database, no files but the built-in word lists and a model's
artifact.

* :mod:`detectors.news.lexicon` — the financial sentiment word lists (Chinese, English) and their digest.
* :mod:`detectors.news.reading` — an item's text as tokens (jieba for Chinese, folded to Simplified characters
  first) and its positive and negative lexicon hits, negation applied.
* :mod:`detectors.news.sentiment` — :class:`~detectors.news.sentiment.SentimentModel`: an item's score in
  [−1, 1], from the plain lexicon or a trained classifier; its versioned artifact.

The package re-exports nothing: import the module you need.
"""

__all__: list[str] = []
