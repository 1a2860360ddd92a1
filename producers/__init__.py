"""Market-data sources into Kafka (``md.quotes``, ``md.books``, ``truth``), each run by ``tapewatch produce …``.

* :mod:`producers.twse`, :mod:`producers.binance` — live venues (TWSE MIS snapshots, Binance websocket);
* :mod:`producers.replay`, :mod:`producers.simulate` — recorded ticks, and the labelled simulator;
* :mod:`producers.twse_daily`, :mod:`producers.bitstamp_capture` — files, not topics: TWSE daily history,
  a Bitstamp level-3 capture turned into a tick file;
* :mod:`producers.framework`, :mod:`producers.publisher` — what every source shares: emission, dead letters,
  pacing, back-off, and the one Kafka producer.

The package re-exports nothing: import the source you need.
"""

__all__: list[str] = []
