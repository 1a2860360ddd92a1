"""Sinks: consumers that write the topics to stores and people, idempotently (``tapewatch sink …``).

* :mod:`sinks.consumer` — the one loop every sink runs: decode, durable write, commit, dead letters;
* :mod:`sinks.postgres` with :mod:`sinks.db` — PostgreSQL (tables, migrations, COPY writes);
* :mod:`sinks.elastic` with :mod:`sinks.search`, :mod:`sinks.kibana` — Elasticsearch documents and Kibana's
  saved objects;
* :mod:`sinks.webhook` — signed alert notifications; :mod:`sinks.tail` — ``tapewatch alerts tail``.

The package re-exports nothing: import the sink you need.
"""

__all__: list[str] = []
