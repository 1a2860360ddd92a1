"""Benchmarks: scripts that print numbers, one module per thing measured, all run by ``tapewatch bench …``.

* :mod:`bench.producer` — producers → Kafka (and raw produce as the reference);
* :mod:`bench.stream` — the stream worker on a backlog and live (raw consume as the reference);
* :mod:`bench.sink` — PostgreSQL and Elasticsearch sinks;
* :mod:`bench.pipeline` — simulator → stream → sinks end to end;
* :mod:`bench.flow`, :mod:`bench.features` — the per-event computation alone, no servers;
* :mod:`bench.news` — the stream worker's news stage on a backlog of news items, pinned to one core;
* :mod:`bench.sentiment` — news sentiment scoring alone, items per second on one core;
* :mod:`bench.dqn` — batched DQN inference;
* :mod:`bench.topics` — private topics for a run (created fresh, deleted afterwards).
"""

__all__: list[str] = []
