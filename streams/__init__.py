"""The stream worker: consumer-group members that turn market data into bars, features, scores, alerts and
actions, with per-symbol state in compacted changelog topics (``tapewatch stream worker``).

* :mod:`streams.app` — the worker, built from the settings;
* :mod:`streams.market`, :mod:`streams.detect` — its two stages (market data → bars and features; features →
  scores, alerts and actions), on :mod:`streams.stage`'s shared bookkeeping;
* :mod:`streams.state`, :mod:`streams.output` — state tables and the one producer whose acks a commit waits for;
* :mod:`streams.admin`, :mod:`streams.limits`, :mod:`streams.metrics` — topics, batching defaults, Prometheus.

The computation itself is :mod:`detectors`'. The package re-exports nothing: import the module you need.
"""

__all__: list[str] = []
