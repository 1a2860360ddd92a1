"""The computation, defined once for the stream and its offline twins: pure functions and per-symbol state
machines, no Kafka, no database.

* :mod:`tapewatch.detectors.bars` — one-minute OHLCV bars on event time (watermark, grace);
* :mod:`tapewatch.detectors.features` — bar features (returns, volume surprise, indicators), incremental and batch;
* :mod:`tapewatch.detectors.flow` — fast order-flow features over short event-time chunks, from quotes and books;
* :mod:`tapewatch.detectors.bar_chunks` — 1-minute bars as the flow's 1-minute chunks (the features a bar can give),
  for input that has bars alone;
* :mod:`tapewatch.detectors.aggressor`, :mod:`tapewatch.detectors.layers`, :mod:`tapewatch.detectors.feed_learning` —
  what the flow features infer: trade sides, large book layers that vanish, whether a feed prints trades or snapshots;
* :mod:`tapewatch.detectors.patterns` — the manipulation pattern detectors on the flow features;
* :mod:`tapewatch.detectors.orders` — order-level surveillance: the book from market-by-order events, and spoofing,
  wash trading, quote stuffing, pumps and marking the close by account from a firm's drop copy;
* :mod:`tapewatch.detectors.trade_sizes`, :mod:`tapewatch.detectors.venue_wash` — a tape's trade sizes counted, and the
  statistical wash tests on them (Benford's first digit, round-size clustering) as a venue-level indicator;
* :mod:`tapewatch.detectors.kmeans`, :mod:`tapewatch.detectors.model_venues` — K-means scoring of the bar features and
  the venues a model may score;
* :mod:`tapewatch.detectors.seasonal`, :mod:`tapewatch.detectors.calibration`, :mod:`tapewatch.detectors.alert_budget` —
  what a symbol's tape usually does at each time of day, and a venue's calibration: those baselines and the score
  cut-offs that hold its history to an alert budget;
* :mod:`tapewatch.detectors.session_records` — the largest value a symbol's series reached in each of its last sessions
  (what "rare for this symbol" means, whatever its tails);
* :mod:`tapewatch.detectors.alerting` — detector hits to deduplicated, deterministic alerts;
* :mod:`tapewatch.detectors.news` — news for surveillance: a symbol's news indicator, the news around an alert's onset
  and what it does to a run-up's score, and the news sentiment model;
* :mod:`tapewatch.detectors.hit_model` — a calibrated probability of manipulation for the kinds a published model
  scores;
* :mod:`tapewatch.detectors.evidence` — what an alert's evidence means (labels, units, the rule's bars), declared by
  each detector beside the code that writes it, and read by :mod:`tapewatch.detectors.patterns.explain`;
* :mod:`tapewatch.detectors.contracts` — the kinds of component here and the one verb each takes its input by: a
  stage ``on_<event>`` (``on_quote``, ``on_book``, ``on_bar``, ``on_chunk``, ``on_hit``), an estimator ``observe``, a
  model ``score``.

The trading-signal models built on these features (the Double DQN, the LSTM and CNN forecasters) are the package
:mod:`signals`; nothing here imports it, torch, gymnasium or Spark.

``tests/unit/test_package_indexes.py`` holds this list to the package's modules.

Every state machine round-trips through JSON (``to_state`` / ``from_state``) for the stream's state tables.
The package re-exports nothing: import the module you need.
"""

__all__: list[str] = []
