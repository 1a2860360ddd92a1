"""The labelled market generators: seeded sessions with injected manipulation and legitimate look-alikes.

A live source as much as an offline one: ``tapewatch produce simulate`` publishes a generator's session to Kafka,
and the evaluation scores the detectors against the same sessions' labels.

* :mod:`tapewatch.generators.simulator` — a TWSE-like trading session (trades, quotes, 5-level books, truth);
* :mod:`tapewatch.generators.lob_market` — an order-book market written apart from the simulator;
* :mod:`tapewatch.generators.news` — the news items around both generators' events;
* :mod:`tapewatch.generators.feed_shapes` — a session of prints shaped as a snapshot feed (TWSE MIS 5 s, 1 s).

Pure computation (numpy, pandas): no Kafka, no database.
"""

__all__: list[str] = []
