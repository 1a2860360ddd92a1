"""Benchmarks: scripts that print numbers, one module per thing measured, all run by ``tapewatch bench …``.

* :mod:`tapewatch.bench.producer` — producers → Kafka (and raw produce as the reference);
* :mod:`tapewatch.bench.stream` — the stream worker on a backlog and live (raw consume as the reference);
* :mod:`tapewatch.bench.sink` — PostgreSQL and Elasticsearch sinks;
* :mod:`tapewatch.bench.pipeline` — simulator → stream → sinks end to end;
* :mod:`tapewatch.bench.flow`, :mod:`tapewatch.bench.features` — the per-event computation alone, no servers;
* :mod:`tapewatch.bench.news` — the stream worker's news stage on a backlog of news items, pinned to one core;
* :mod:`tapewatch.bench.sentiment` — news sentiment scoring alone, items per second on one core;
* :mod:`tapewatch.bench.dqn` — batched DQN inference;
* :mod:`tapewatch.bench.topics` — private topics for a run (created fresh, deleted afterwards).
"""

__all__: list[str] = []
