"""Batching defaults of the stream workers, importable without Kafka clients (the CLI's options use them)."""

from __future__ import annotations

from typing import Final

#: batched consumption: at most this many events per batch, or what arrived within the interval. Per-symbol
#: state is written once per batch, so larger batches amortise it during a catch-up; the interval bounds the
#: latency when traffic is light (it is most of the event-to-feature latency at a few thousand records/s).
BATCH_MAX: Final = 5000
BATCH_WITHIN_S: Final = 0.05
