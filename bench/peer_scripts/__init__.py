"""The peers of `tapewatch bench peers`: the same bars-only workload on Quix Streams and on faust-streaming.

Each is a standalone script run by the peers' venv (:mod:`tapewatch.bench.peers_env`) as
``python -m peer_scripts.<name>`` from ``bench/``; none imports tapewatch (their pins conflict with the main venv's).
They share :mod:`~tapewatch.bench.peer_scripts.ohlcv` (the bar arithmetic, plain Python) and hand their results back
as a JSON file.

* :mod:`~tapewatch.bench.peer_scripts.quix_bars` — a ``StreamingDataFrame`` tumbling window (RocksDB state and its
  changelog topic);
* :mod:`~tapewatch.bench.peer_scripts.faust_bars` — a faust agent over a table with a changelog topic;
* :mod:`~tapewatch.bench.peer_scripts.ohlcv` — the OHLCV accumulator, the per-key watermark and the run's result.
"""

__all__: list[str] = []
