"""Effective configuration: environment variables with the ``TAPEWATCH_`` prefix, or a ``.env`` file.

Nothing else in the project reads the environment for hosts, ports or secrets.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from tapewatch.detectors.flow import FlowConfig
    from tapewatch.detectors.news.context import NewsContextParams
    from tapewatch.detectors.news.indicator import NewsIndicatorParams
    from tapewatch.feeds import FeedProfiles

PROJECT_ROOT = Path(__file__).resolve().parent.parent

KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_port(address: str, default_port: int) -> tuple[str, int]:
    """Split ``host:port`` or a URL into its host and port."""
    netloc = urlsplit(address if "//" in address else f"//{address}")
    return netloc.hostname or "127.0.0.1", netloc.port or default_port


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TAPEWATCH_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    # --- Kafka -----------------------------------------------------------------
    kafka_bootstrap: str = Field("127.0.0.1:19092", description="Kafka bootstrap servers, comma-separated")
    kafka_security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: KafkaSaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: Path | None = None
    kafka_ssl_certificate_location: Path | None = None
    kafka_ssl_key_location: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    topic_partitions: int = Field(
        4, ge=1, le=1024, description="Partitions of every tapewatch topic (all co-partitioned)"
    )
    topic_prefix: str = Field("", description="Prefix for every topic name (isolates environments on one cluster)")

    # --- PostgreSQL ------------------------------------------------------------
    postgres_url: SecretStr = Field(
        SecretStr("postgresql+psycopg2://tapewatch:tapewatch@127.0.0.1:15432/tapewatch"),
        description="SQLAlchemy URL of the PostgreSQL database",
    )

    # --- Elasticsearch ---------------------------------------------------------
    es_url: str = "http://127.0.0.1:19200"
    es_username: str | None = None
    es_password: SecretStr | None = None
    es_api_key: SecretStr | None = None
    es_ca_certs: Path | None = None
    es_index_prefix: str = "tapewatch"
    es_index_replicas: int = Field(0, ge=0, description="Replicas of the tapewatch indices (0 on a single node)")
    es_refresh_interval: str = Field(
        "500ms", description="Refresh interval of the tapewatch indices: how soon a written alert is searchable"
    )

    # --- Sinks -----------------------------------------------------------------
    sink_batch_size: int = Field(5000, ge=1, le=100_000, description="Records per sink batch (one write, one commit)")
    postgres_statement_timeout_s: float = Field(
        15.0,
        gt=0,
        description="A sink's or the console's statement running longer is cancelled by the server; a sink's write "
        "with no answer 5 s after it (a hung or paused server) has its connection cut: both are outages, retried",
    )
    postgres_lock_timeout_s: float = Field(
        5.0, gt=0, description="A statement waiting longer than this for a lock is cancelled (an outage, retried)"
    )
    postgres_book_retention_hours: int = Field(
        72,
        ge=0,
        description="Hours of order-book snapshots the PostgreSQL sink keeps, counted back from the newest one "
        "stored, not from the clock (0: keep them all)",
    )
    webhook_subscribers: Path | None = Field(
        None, description="JSON or YAML file listing the webhook subscribers (url, secret, filters)"
    )

    external_services: str = Field(
        "",
        description="Comma-separated services not to start here (kafka, postgres, elasticsearch); "
        "any service whose address is not loopback is external anyway",
    )

    # --- Sources ---------------------------------------------------------------
    twse_mis_url: str = Field("https://mis.twse.com.tw", description="TWSE MIS real-time quote service")
    twse_www_url: str = Field("https://www.twse.com.tw", description="TWSE site serving STOCK_DAY daily history")
    twse_symbols: str = Field(
        "tse_2330.tw,tse_2317.tw,tse_2454.tw,tse_2308.tw,tse_2303.tw,otc_6547.tw",
        description="Comma-separated MIS channels (tse_CODE.tw / otc_CODE.tw) to poll",
    )
    twse_poll_interval_s: float = Field(5.0, ge=5.0, description="Seconds between MIS requests (never below 5)")
    twse_proxies: str = Field("", description="Comma-separated HTTP proxies to rotate over (optional)")
    binance_ws_url: str = Field("wss://stream.binance.com:9443", description="Binance spot websocket base URL")
    binance_rest_url: str = Field("https://api.binance.com", description="Binance spot REST base URL")
    binance_symbols: str = Field("btcusdt,ethusdt,bnbusdt", description="Comma-separated Binance symbols")
    news_cnyes_url: str = Field(
        "https://api.cnyes.com/media/api/v1/newslist/category/tw_stock",
        description="cnyes' (鉅亨網) news list read by `produce news-cnyes` (another category has the same shape)",
    )
    news_poll_interval_s: float = Field(
        60.0, ge=60.0, description="Seconds between two requests to a news source (never below 60: public sites)"
    )
    news_symbols_file: Path | None = Field(
        None,
        description="CSV of the venue's symbols and company names (code,name[,alias…]) news is matched against "
        "(default: the codes of TAPEWATCH_TWSE_SYMBOLS)",
    )

    # --- Stream workers --------------------------------------------------------
    stream_grace_ms: int = Field(
        2_000, ge=0, le=3_600_000, description="Event-time grace: how far out of order a record may arrive and count"
    )
    flow_chunk_ms: int = Field(5_000, ge=100, le=600_000, description="Base chunk of the fast order-flow features")
    flow_long_chunks: int = Field(5, ge=1, le=120, description="Base chunks in a long chunk (5 × 5 s = 25 s)")
    flow_baseline_chunks: int = Field(
        720, ge=2, le=100_000, description="Base chunks in the rolling baseline of the z-scores (720 × 5 s = 1 h)"
    )
    flow_baseline_min_chunks: int = Field(60, ge=1, description="Baseline chunks needed before z-scores are given")
    flow_idle_ms: int = Field(
        60_000, ge=1, description="A book more than this after the previous one starts the depth comparison afresh"
    )
    feed_profiles: str = Field(
        "",
        description='What each venue\'s feed carries, JSON {"venue": {"books": true, "sides": false, '
        '"prints": "snapshots"}} over the built-in table (tapewatch/feeds.py)',
    )
    flow_rush_min_trades: int = Field(3, ge=2, description="Trades in one millisecond that make a rush order")
    flow_mirror_ms: int = Field(
        5_000, ge=0, le=600_000, description="A trade mirrors the previous one (same size, other side) this soon after"
    )
    stream_metrics_port: int = Field(
        9108, ge=0, le=65535, description="Prometheus /metrics port of `tapewatch stream worker` (0: off)"
    )
    stream_session_timeout_ms: int = Field(
        45_000,
        ge=6_000,
        le=300_000,
        description="How long a silent stream worker keeps its partitions before the group gives them away",
    )
    stream_checkpoint_interval_ms: int = Field(
        1_000,
        ge=0,
        le=600_000,
        description="How often a stream worker makes its state durable (0: after every batch); a crash replays since",
    )
    stream_commit_interval_ms: int = Field(
        0, ge=0, description="Least time between offset commits of a stream worker (0: at every checkpoint)"
    )

    stream_max_skew_ms: int = Field(
        14 * 86_400_000,
        ge=60_000,
        description="A quote or book this far ahead of its partition's event time is dead-lettered (never moves it)",
    )
    news_half_life_ms: int = Field(
        4 * 3_600_000, ge=60_000, description="A news item's weight in the news indicator halves every this long"
    )
    news_before_ms: int = Field(
        30 * 60_000, ge=0, le=86_400_000, description="News published this long before an alert's onset is beside it"
    )
    news_after_ms: int = Field(
        2 * 60_000, ge=0, le=3_600_000, description="…and this long after the onset (an onset leads the wire)"
    )
    news_discount: float = Field(
        0.5, ge=0.0, le=1.0, description="The share of a pump run-up's score it loses when there is news at its onset"
    )
    trade_accounts: str = Field(
        '[{"name": "paper-dqn", "signal": "dqn"}, {"name": "paper-lstm", "signal": "lstm", "band": 0.0005},'
        ' {"name": "paper-cnn", "signal": "cnn", "band": 0.2}]',
        description="Paper accounts (JSON list; fields in execution/accounts.py): the signal each follows, limits",
    )
    trade_exchange_info: Path | None = Field(
        None, description='Tick and lot per symbol: {"binance": {"BTCUSDT": {"tick": "0.01", "step": "0.00001"}}}'
    )
    trade_max_skew_ms: int = Field(
        60_000, ge=1000, description="How far a caught-up partition may lag the newest event time in the paper trader"
    )
    producer_max_future_ms: int = Field(
        60_000,
        ge=1_000,
        description="A live source's record this far ahead of the machine's clock is dead-lettered at the producer",
    )
    dlq_max_bytes: int = Field(
        65_536,
        ge=1_024,
        le=900_000,
        description="A dead letter's payload is cut to this many bytes (length and SHA-256 of the original in headers)",
    )

    spark_driver_memory: str = Field("4g", description="Heap of the Spark driver (`train kmeans --engine spark`)")
    kmeans_extra_venues: str = Field(
        "",
        description="Venues a K-means model may score besides those it was trained on (the user asserts they are "
        'alike), JSON {"model name": ["venue", ...]}',
    )

    # --- Analyst console (console/) ----------------------------------------------
    console_host: str = Field("127.0.0.1", description="Address `tapewatch console serve` listens on")
    console_port: int = Field(8765, ge=1, le=65535)
    console_session_idle_minutes: int = Field(30, ge=1, description="A session ends after this long unused")
    console_session_max_hours: int = Field(12, ge=1, description="… and this long after the login, used or not")
    console_cookie_secure: bool = Field(
        True, description="Session cookies only over HTTPS (browsers treat http://127.0.0.1 and localhost as secure)"
    )
    console_login_max_failures: int = Field(5, ge=1, description="Wrong passwords in a row that lock a user")
    console_lockout_s: int = Field(900, ge=1, description="How long a locked user waits")
    console_client_max_failures: int = Field(
        20, ge=1, description="Failed logins from one client address per lockout period before it is refused"
    )
    console_max_body_bytes: int = Field(65_536, ge=1024, description="Largest request body the console accepts")
    console_db_user: str = Field(
        "tapewatch_console",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL role the console serves with: it may read cases and insert audit lines, never alter "
        "or delete the audit (the schema's owner is the role of TAPEWATCH_POSTGRES_URL)",
    )
    console_db_password: SecretStr = Field(
        SecretStr("tapewatch_console"), description="Password of TAPEWATCH_CONSOLE_DB_USER"
    )
    console_trusted_proxies: str = Field(
        "",
        description="Comma-separated addresses or networks of reverse proxies whose X-Forwarded-For is believed; "
        "from anyone else the header is ignored",
    )

    # --- Local state -----------------------------------------------------------
    var_dir: Path = Field(PROJECT_ROOT / "var", description="Data, logs and pids of the services infra/ runs")
    model_dir: Path | None = Field(None, description="Versioned model artifacts (default: <var_dir>/models)")
    kafka_heap_mb: int = Field(512, ge=256, le=8192)
    es_heap_mb: int = Field(512, ge=256, le=8192)
    service_timeout_s: float = Field(5.0, gt=0, description="Connect timeout when probing a service")

    # --- Observability ---------------------------------------------------------
    log_json: bool = False
    log_level: str = "INFO"

    @field_validator("kmeans_extra_venues", mode="after")
    @classmethod
    def _extra_venues_parse(cls, value: str) -> str:
        from tapewatch.detectors.model_venues import parse_extra_venues

        parse_extra_venues(value)  # a malformed value is one clear error at start-up, not at the first record
        return value

    @field_validator("var_dir", "model_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    # --- Derived ---------------------------------------------------------------
    @property
    def models_path(self) -> Path:
        return self.model_dir or self.var_dir / "models"

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    @property
    def postgres_url_plain(self) -> str:
        return self.postgres_url.get_secret_value()

    @property
    def console_postgres_url_plain(self) -> str:
        """The database of :attr:`postgres_url` (host, options, schema) as the console's serving role."""
        from sqlalchemy.engine import make_url

        url = make_url(self.postgres_url_plain).set(
            username=self.console_db_user, password=self.console_db_password.get_secret_value()
        )
        return url.render_as_string(hide_password=False)

    def is_external(self, service: str, host: str) -> bool:
        named = {part.strip().lower() for part in self.external_services.split(",") if part.strip()}
        return service in named or not is_loopback(host)

    def kafka_hosts(self) -> list[tuple[str, int]]:
        return [host_port(part.strip(), 9092) for part in self.kafka_bootstrap.split(",") if part.strip()]

    def postgres_host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.postgres_url_plain)
        return parts.hostname or "127.0.0.1", parts.port or 5432

    def es_host_port(self) -> tuple[str, int]:
        return host_port(self.es_url, 9200)

    def kafka_client_config(self) -> dict[str, Any]:
        """librdkafka properties shared by every confluent-kafka client (security passed through)."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.kafka_bootstrap,
            "security.protocol": self.kafka_security_protocol.lower(),
        }
        if self.kafka_sasl_mechanism:
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
        if self.kafka_sasl_username:
            conf["sasl.username"] = self.kafka_sasl_username
        if self.kafka_sasl_password:
            conf["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_ca_location:
            conf["ssl.ca.location"] = str(self.kafka_ssl_ca_location)
        if self.kafka_ssl_certificate_location:
            conf["ssl.certificate.location"] = str(self.kafka_ssl_certificate_location)
        if self.kafka_ssl_key_location:
            conf["ssl.key.location"] = str(self.kafka_ssl_key_location)
        if self.kafka_ssl_key_password:
            conf["ssl.key.password"] = self.kafka_ssl_key_password.get_secret_value()
        return conf

    def flow_config(self) -> FlowConfig:
        """The fast order-flow chunking and windows (the grace is the bars'): one mapping for the stream worker
        and its offline twin ``tapewatch detect file``, so both compute the same features."""
        from tapewatch.detectors.flow import FlowConfig

        return FlowConfig(
            chunk_ms=self.flow_chunk_ms,
            long_chunks=self.flow_long_chunks,
            baseline_chunks=self.flow_baseline_chunks,
            baseline_min_chunks=self.flow_baseline_min_chunks,
            grace_ms=self.stream_grace_ms,
            idle_ms=self.flow_idle_ms,
            rush_min_trades=self.flow_rush_min_trades,
            mirror_ms=self.flow_mirror_ms,
        )

    def news_indicator(self) -> NewsIndicatorParams:
        """How fast news fades in the news indicator (:mod:`tapewatch.detectors.news.indicator`)."""
        from tapewatch.detectors.news.indicator import NewsIndicatorParams

        return NewsIndicatorParams(half_life_ms=self.news_half_life_ms)

    def news_context(self) -> NewsContextParams:
        """Which news stands beside an alert and what it does to a run-up's score
        (:mod:`tapewatch.detectors.news.context`)."""
        from tapewatch.detectors.news.context import NewsContextParams

        return NewsContextParams(
            before_ms=self.news_before_ms, after_ms=self.news_after_ms, discount=self.news_discount
        )

    def feeds(self) -> FeedProfiles:
        """Venue → what its feed carries (:mod:`tapewatch.feeds`)."""
        from tapewatch.feeds import FeedProfiles

        return FeedProfiles.from_json(self.feed_profiles)

    def kmeans_venues(self) -> dict[str, tuple[str, ...]]:
        """Model name → venues it may score besides its training venues (:mod:`tapewatch.detectors.model_venues`)."""
        from tapewatch.detectors.model_venues import parse_extra_venues

        return parse_extra_venues(self.kmeans_extra_venues)

    def masked(self) -> dict[str, str]:
        """Every effective setting as text: secrets masked, and credentials inside any URL of any setting (user-info,
        ``?password=``, tokens, lists of URLs: :func:`tapewatch.secrets.redact`)."""
        from tapewatch.secrets import MASK, redact

        shown: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                text = redact(value.get_secret_value()) if name.endswith("_url") else MASK
            elif value is None:
                text = ""
            else:
                text = redact(str(value))
            shown[name] = text
        return shown


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def load_settings() -> Settings:
    """The settings for a command: a bad value is one clear error, and logging is configured from them."""
    from tapewatch.errors import TapewatchError
    from tapewatch.logs import configure

    try:
        loaded = get_settings()
    except ValueError as exc:  # pydantic's ValidationError
        raise TapewatchError(f"invalid settings: {' '.join(str(exc).split())}") from None
    configure(loaded)
    return loaded
