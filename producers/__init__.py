"""Market-data and news sources into Kafka (``md.quotes``, ``md.books``, ``truth``, ``news.items``), each run by
``tapewatch produce …``.

* :mod:`tapewatch.producers.twse`, :mod:`tapewatch.producers.binance` — live venues (TWSE MIS snapshots, Binance
  websocket);
* :mod:`tapewatch.producers.replay`, :mod:`tapewatch.producers.simulate` — recorded ticks, and the labelled simulator;
* :mod:`tapewatch.producers.news` — news: cnyes' list and RSS/Atom feeds polled, and recorded items replayed;
* :mod:`tapewatch.producers.twse_daily`, :mod:`tapewatch.producers.bitstamp_capture`,
  :mod:`tapewatch.producers.es_tape`,
  :mod:`tapewatch.producers.bitstamp_2013`, :mod:`tapewatch.producers.real_tapes` — files, not topics: TWSE daily
  history, a Bitstamp level-3 capture, an E-mini S&P 500 futures tape and a week of 2013 Bitstamp trades turned into
  tick files, and the real tapes by name;
* :mod:`tapewatch.producers.framework`, :mod:`tapewatch.producers.publisher` — what every source shares: emission, dead
  letters, pacing, back-off, and the one Kafka producer.

The package re-exports nothing: import the source you need.
"""

__all__: list[str] = []
