"""Sinks: consumers that write the topics to stores and people, idempotently (``tapewatch sink …``).

* :mod:`tapewatch.sinks.consumer` — the one loop every sink runs: decode, durable write, commit, dead letters;
* :mod:`tapewatch.sinks.postgres` with :mod:`tapewatch.sinks.db` — PostgreSQL (tables, migrations, COPY writes);
* :mod:`tapewatch.sinks.elastic` with :mod:`tapewatch.sinks.search`, :mod:`tapewatch.sinks.kibana` — Elasticsearch
  documents and Kibana's saved objects;
* :mod:`tapewatch.sinks.webhook` — signed alert notifications; :mod:`tapewatch.sinks.tail` — ``tapewatch alerts tail``.

The package re-exports nothing: import the sink you need.
"""

__all__: list[str] = []
