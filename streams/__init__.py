"""The stream worker: consumer-group members that turn market data into bars, features, scores, alerts and
actions, with per-symbol state in compacted changelog topics (``tapewatch stream worker``).

* :mod:`tapewatch.streams.app` — the worker, built from the settings;
* :mod:`tapewatch.streams.market`, :mod:`tapewatch.streams.detect` — its two stages (market data → bars and features;
  features → scores, alerts and actions), on :mod:`tapewatch.streams.stage`'s shared bookkeeping;
* :mod:`tapewatch.streams.state`, :mod:`streams.output` — state tables and the one producer whose acks a commit waits
  for;
* :mod:`tapewatch.streams.admin`, :mod:`tapewatch.streams.limits`, :mod:`tapewatch.streams.metrics` — topics, batching
  defaults, Prometheus.

The computation itself is :mod:`detectors`'. The package re-exports nothing: import the module you need.
"""

__all__: list[str] = []
