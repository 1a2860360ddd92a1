"""News sources → ``NewsItem`` records: what a source's payload says, cleaned, bounded and tied to the symbols it
concerns.

* :mod:`tapewatch.producers.news.text` — cleaning an item's text (HTML, entities, control characters, length) and
  matching the venue's symbols and company names in it;
* :mod:`tapewatch.producers.news.cnyes` — cnyes' (鉅亨網) Taiwan-stock news list;
* :mod:`tapewatch.producers.news.rss` — any RSS or Atom feed a desk names (an exchange's announcements, …);
* :mod:`tapewatch.producers.news.dedup` — one record per item and edit, however often a source repeats it;
* :mod:`tapewatch.producers.news.symbols` — the venue's symbols and company names, from a CSV file;
* :mod:`tapewatch.producers.news.http`, :mod:`tapewatch.producers.news.lists`, :mod:`tapewatch.producers.news.poller` —
  one polite read of a list or feed, what a source's pages are, and the poller that reads them into ``news.items``;
* :mod:`tapewatch.producers.news.replay` — recorded ``news.items`` records replayed from JSON Lines files.
"""

__all__: list[str] = []
