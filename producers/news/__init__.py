"""News sources → ``NewsItem`` records: what a source's payload says, cleaned, bounded and tied to the symbols it
concerns.

* :mod:`producers.news.text` — cleaning an item's text (HTML, entities, control characters, length) and matching the
  venue's symbols and company names in it;
* :mod:`producers.news.cnyes` — cnyes' (鉅亨網) Taiwan-stock news list;
* :mod:`producers.news.feeds` — any RSS or Atom feed a desk names (an exchange's announcements, …);
* :mod:`producers.news.dedup` — one record per item and edit, however often a source repeats it;
* :mod:`producers.news.symbols` — the venue's symbols and company names, from a CSV file;
* :mod:`producers.news.http`, :mod:`producers.news.lists`, :mod:`producers.news.poller` — one polite read of a list
  or feed, what a source's pages are, and the poller that reads them into ``news.items``;
* :mod:`producers.news.replay` — recorded ``news.items`` records replayed from JSON Lines files.
"""

__all__: list[str] = []
