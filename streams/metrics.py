"""Prometheus metrics of the stream workers (one registry per process, served by ``tapewatch stream worker``).

Names follow Prometheus conventions (``_total`` counters, ``_seconds`` histograms). Labels are low-cardinality:
the agent (``market``, ``detect``), the topic kind (``quotes``, ``bars``, ``features``, …) — never a symbol.

* ``tapewatch_stream_records_in_total{agent,topic}`` — records consumed (including the dead-lettered).
* ``tapewatch_stream_records_out_total{agent,topic}`` — records produced (counted once Kafka acknowledged them).
* ``tapewatch_stream_dead_letters_total{agent,reason}`` — records sent to dlq.streams; ``reason`` is ``late``,
  ``invalid`` (failed the record contract) or ``key`` (message key is not the symbol).
* ``tapewatch_stream_late_total{agent,part}`` — records later than the grace for a part (``bars``, ``flow``).
* ``tapewatch_stream_replayed_total{agent}`` — records skipped because their effect was already durable.
* ``tapewatch_stream_kmeans_refused_total{agent,venue}`` — bar features records of a venue the K-means model may
  not score (trained on other venues): patterns only for them. ``venue`` is low-cardinality (a few venues).
* ``tapewatch_stream_event_to_emit_seconds{agent,topic}`` — wall time at emission minus the event time the
  output stands for (a bar's or chunk's end): what a consumer waits for a result, grace included.
* ``tapewatch_stream_batch_seconds{agent}`` — time to apply one batch (decode, state, queue the outputs).
* ``tapewatch_stream_consumer_lag{agent,topic,partition}`` — high watermark minus the next offset to process.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

# Latencies from milliseconds (a fast chunk) to minutes (a replay of old data).
LATENCY_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
BATCH_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class StreamMetrics:
    """The worker's metrics, in their own registry (tests build several in one process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.records_in = Counter("tapewatch_stream_records_in", "Records consumed", ["agent", "topic"], registry=r)
        self.records_out = Counter(
            "tapewatch_stream_records_out", "Records produced and acknowledged", ["agent", "topic"], registry=r
        )
        self.dead_letters = Counter(
            "tapewatch_stream_dead_letters", "Records sent to dlq.streams", ["agent", "reason"], registry=r
        )
        self.late = Counter("tapewatch_stream_late", "Records later than the grace", ["agent", "part"], registry=r)
        self.replayed = Counter(
            "tapewatch_stream_replayed", "Records skipped: their effect was already durable", ["agent"], registry=r
        )
        self.order_anomalies = Counter(
            "tapewatch_stream_order_anomalies",
            "Market-by-order events the book refused or flagged (replayed, gap, unknown_order, duplicate_order, "
            "overfill)",
            ["agent", "anomaly"],
            registry=r,
        )
        self.kmeans_refused = Counter(
            "tapewatch_stream_kmeans_refused",
            "Bar features records of a venue the K-means model may not score (patterns only)",
            ["agent", "venue"],
            registry=r,
        )
        self.event_to_emit = Histogram(
            "tapewatch_stream_event_to_emit_seconds",
            "Emission wall time minus the event time the output stands for",
            ["agent", "topic"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "tapewatch_stream_batch_seconds",
            "Time to apply one batch: decode, state, queue the outputs",
            ["agent"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "tapewatch_stream_consumer_lag",
            "High watermark minus the next offset to process",
            ["agent", "topic", "partition"],
            registry=r,
        )

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        """Serve ``/metrics`` on ``addr:port`` from a daemon thread."""
        start_http_server(port, addr=addr, registry=self.registry)
