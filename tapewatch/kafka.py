"""confluent-kafka client construction: one place for security settings, logging and timeouts."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata

from tapewatch.errors import TapewatchError
from tapewatch.logs import LIBRDKAFKA
from tapewatch.settings import Settings


def client_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    return {
        **settings.kafka_client_config(),
        "logger": LIBRDKAFKA,
        "reconnect.backoff.ms": 250,
        "reconnect.backoff.max.ms": 5000,
        "socket.connection.setup.timeout.ms": 5000,
        **overrides,
    }


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient(client_config(settings))


def cluster_metadata(settings: Settings, admin: AdminClient | None = None) -> ClusterMetadata:
    """Broker metadata, or one clear error within the service timeout."""
    try:
        return (admin or admin_client(settings)).list_topics(timeout=settings.service_timeout_s)
    except KafkaException as exc:
        raise TapewatchError(f"kafka: unreachable at {settings.kafka_bootstrap}: {exc.args[0].str()}") from None
