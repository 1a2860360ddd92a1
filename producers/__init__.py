"""Market-data and news sources into Kafka (``md.quotes``, ``md.books``, ``truth``, ``news.items``), each run by
``tapewatch produce …``.

* :mod:`producers.twse`, :mod:`producers.binance` — live venues (TWSE MIS snapshots, Binance websocket);
* :mod:`producers.replay`, :mod:`producers.simulate` — recorded ticks, and the labelled simulator;
* :mod:`producers.news` — news: cnyes' list and RSS/Atom feeds polled, and recorded items replayed;
* :mod:`producers.twse_daily`, :mod:`producers.bitstamp_capture`, :mod:`producers.es_tape`,
  :mod:`producers.bitstamp_2013`, :mod:`producers.real_tapes` — files, not topics: TWSE daily history, a Bitstamp
  level-3 capture, an E-mini S&P 500 futures tape and a week of 2013 Bitstamp trades turned into tick files, and
  the real tapes by name;
* :mod:`producers.framework`, :mod:`producers.publisher` — what every source shares: emission, dead letters,
  pacing, back-off, and the one Kafka producer.

The package re-exports nothing: import the source you need.
"""

__all__: list[str] = []
