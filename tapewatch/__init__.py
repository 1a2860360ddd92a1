"""What every part of tapewatch shares, and the command line.

* :mod:`tapewatch.records`, :mod:`tapewatch.topics`, :mod:`tapewatch.deadletter`, :mod:`tapewatch.schemas` —
  the wire contracts: the records each Kafka topic carries, the topic registry, dead letters, JSON Schemas;
* :mod:`tapewatch.settings`, :mod:`tapewatch.feeds`, :mod:`tapewatch.secrets` — configuration, each venue's
  feed profile, credentials kept out of logs;
* :mod:`tapewatch.kafka`, :mod:`tapewatch.logs`, :mod:`tapewatch.collector`, :mod:`tapewatch.errors` — Kafka
  clients, logging, garbage-collector tuning, the one error the CLI reports in a line;
* :mod:`tapewatch.ticks`, :mod:`tapewatch.artifacts` — the tick-file contract and versioned model artifacts;
* :mod:`tapewatch.cli.app` with :mod:`tapewatch.cli` — the ``tapewatch`` command.

The package re-exports nothing (importing it stays cheap): import the module you need. Importing it serves the
hot per-record modules compiled when ``make compiled`` built them from the sources as they are
(:mod:`tapewatch.compiled`).
"""

from tapewatch.compiled import install

__all__: list[str] = []

install()
