"""Effective configuration: environment variables with the ``TAPEWATCH_`` prefix, or a ``.env`` file.

Nothing else in the project reads the environment for hosts, ports or secrets. The settings come in groups, one
per concern: ``settings.kafka.bootstrap`` is ``TAPEWATCH_KAFKA_BOOTSTRAP``, ``settings.flow.chunk_ms`` is
``TAPEWATCH_FLOW_CHUNK_MS``. A group's variable is its ``env_prefix`` and the field's name, or the field's
``validation_alias`` where the two differ (``settings.kafka.topic_prefix`` is ``TAPEWATCH_TOPIC_PREFIX``); a
setting's name in ``tapewatch config show`` and in errors is its variable without ``TAPEWATCH_``, lower-case.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, cast
from urllib.parse import urlsplit

import orjson
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources import DotenvType

if TYPE_CHECKING:
    from tapewatch.feeds import FeedProfiles

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX: Final = "TAPEWATCH_"

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


def parse_extra_venues(text: str) -> dict[str, tuple[str, ...]]:
    """``TAPEWATCH_KMEANS_EXTRA_VENUES``: JSON ``{"model name": ["venue", …]}`` (empty: none)."""
    if not text.strip():
        return {}
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"kmeans extra venues: not JSON ({exc})") from None
    if not isinstance(parsed, dict) or not all(
        isinstance(v, list) and all(isinstance(x, str) and x for x in v) for v in parsed.values()
    ):
        raise ValueError('kmeans extra venues must be a JSON object of lists: {"kmeans": ["tpex"]}')
    return {str(name): tuple(venues) for name, venues in parsed.items()}


def setting_name(variable: str) -> str:
    """A setting's name in ``config show`` and in errors: ``TAPEWATCH_KAFKA_BOOTSTRAP`` → ``kafka_bootstrap``."""
    return variable.removeprefix(ENV_PREFIX).lower()


class Group(BaseSettings):
    """One concern's settings, read by itself from the environment and the ``.env`` file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
    )

    @classmethod
    def variables(cls) -> dict[str, str]:
        """Field name → its environment variable."""
        prefix = cls.model_config.get("env_prefix", "")
        return {name: _variable(prefix, name, field) for name, field in cls.model_fields.items()}


def _variable(prefix: str, name: str, field: FieldInfo) -> str:
    alias = field.validation_alias
    return (alias if isinstance(alias, str) else f"{prefix}{name}").upper()


class KafkaSettings(Group):
    """The cluster, its security, the topics and the dead letters."""

    model_config = SettingsConfigDict(env_prefix="TAPEWATCH_KAFKA_")

    bootstrap: str = Field("127.0.0.1:19092", description="Kafka bootstrap servers, comma-separated")
    security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    sasl_mechanism: KafkaSaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: Path | None = None
    ssl_certificate_location: Path | None = None
    ssl_key_location: Path | None = None
    ssl_key_password: SecretStr | None = None
    topic_partitions: int = Field(
        4,
        ge=1,
        le=1024,
        validation_alias="TAPEWATCH_TOPIC_PARTITIONS",
        description="Partitions of every tapewatch topic (all co-partitioned)",
    )
    topic_prefix: str = Field(
        "",
        validation_alias="TAPEWATCH_TOPIC_PREFIX",
        description="Prefix for every topic name (isolates environments on one cluster)",
    )
    dlq_max_bytes: int = Field(
        65_536,
        ge=1_024,
        le=900_000,
        validation_alias="TAPEWATCH_DLQ_MAX_BYTES",
        description="A dead letter's payload is cut to this many bytes (length and SHA-256 of the original in headers)",
    )

    def hosts(self) -> list[tuple[str, int]]:
        """Each bootstrap server's (host, port); a listener name before it (``SASL_SSL://``) is not a URL scheme."""
        return [host_port(part.strip().split("://")[-1], 9092) for part in self.bootstrap.split(",") if part.strip()]

    def client_config(self) -> dict[str, Any]:
        """librdkafka properties shared by every confluent-kafka client (security passed through)."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol.lower(),
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            conf["sasl.username"] = self.sasl_username
        if self.sasl_password:
            conf["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_location:
            conf["ssl.ca.location"] = str(self.ssl_ca_location)
        if self.ssl_certificate_location:
            conf["ssl.certificate.location"] = str(self.ssl_certificate_location)
        if self.ssl_key_location:
            conf["ssl.key.location"] = str(self.ssl_key_location)
        if self.ssl_key_password:
            conf["ssl.key.password"] = self.ssl_key_password.get_secret_value()
        return conf


class PostgresSettings(Group):
    """The database: where it is, how long a statement may take, how much of the books it keeps."""

    model_config = SettingsConfigDict(env_prefix="TAPEWATCH_POSTGRES_")

    url: SecretStr = Field(
        SecretStr("postgresql+psycopg2://tapewatch:tapewatch@127.0.0.1:15432/tapewatch"),
        description="SQLAlchemy URL of the PostgreSQL database",
    )
    statement_timeout_s: float = Field(
        15.0,
        gt=0,
        description="A sink's or the console's statement running longer is cancelled by the server; a sink's write "
        "with no answer 5 s after it (a hung or paused server) has its connection cut: both are outages, retried",
    )
    lock_timeout_s: float = Field(
        5.0, gt=0, description="A statement waiting longer than this for a lock is cancelled (an outage, retried)"
    )
    book_retention_hours: int = Field(
        72,
        ge=0,
        description="Hours of order-book snapshots the PostgreSQL sink keeps, counted back from the newest one "
        "stored, not from the clock (0: keep them all)",
    )

    @property
    def url_plain(self) -> str:
        return self.url.get_secret_value()

    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.url_plain)
        return parts.hostname or "127.0.0.1", parts.port or 5432


class ElasticsearchSettings(Group):
    """The search cluster and the tapewatch indices on it."""

    model_config = SettingsConfigDict(env_prefix="TAPEWATCH_ES_")

    url: str = "http://127.0.0.1:19200"
    username: str | None = None
    password: SecretStr | None = None
    api_key: SecretStr | None = None
    ca_certs: Path | None = None
    index_prefix: str = "tapewatch"
    index_replicas: int = Field(0, ge=0, description="Replicas of the tapewatch indices (0 on a single node)")
    refresh_interval: str = Field(
        "200ms", description="Refresh interval of the tapewatch indices: how soon a written alert is searchable"
    )

    def host_port(self) -> tuple[str, int]:
        return host_port(self.url, 9200)


class SinkSettings(Group):
    """How the sinks write: batch size, webhook subscribers."""

    model_config = SettingsConfigDict(env_prefix="TAPEWATCH_SINK_")

    batch_size: int = Field(5000, ge=1, le=100_000, description="Records per sink batch (one write, one commit)")
    webhook_subscribers: Path | None = Field(
        None,
        validation_alias="TAPEWATCH_WEBHOOK_SUBSCRIBERS",
        description="JSON or YAML file listing the webhook subscribers (url, secret, filters)",
    )


class SourceSettings(Group):
    """What the producers read (TWSE, Binance, news sites), how often, and what they refuse from the future."""

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
    max_future_ms: int = Field(
        60_000,
        ge=1_000,
        validation_alias="TAPEWATCH_PRODUCER_MAX_FUTURE_MS",
        description="A live source's record this far ahead of the machine's clock is dead-lettered at the producer",
    )


class StreamSettings(Group):
    """The stream workers: event-time grace and skew, checkpoints, commits, group membership, metrics."""

    model_config = SettingsConfigDict(env_prefix="TAPEWATCH_STREAM_")

    grace_ms: int = Field(
        2_000, ge=0, le=3_600_000, description="Event-time grace: how far out of order a record may arrive and count"
    )
    metrics_port: int = Field(
        9108, ge=0, le=65535, description="Prometheus /metrics port of `tapewatch stream worker` (0: off)"
    )
    session_timeout_ms: int = Field(
        45_000,
        ge=6_000,
        le=300_000,
        description="How long a silent stream worker keeps its partitions before the group gives them away",
    )
    checkpoint_interval_ms: int = Field(
        1_000,
        ge=0,
        le=600_000,
        description="How often a stream worker makes its state durable (0: after every batch); a crash replays since",
    )
    commit_interval_ms: int = Field(
        0, ge=0, description="Least time between offset commits of a stream worker (0: at every checkpoint)"
    )
    max_skew_ms: int = Field(
        14 * 86_400_000,
        ge=60_000,
        description="A quote or book this far ahead of its partition's event time is dead-lettered (never moves it)",
    )


class FlowSettings(Group):
    """The fast order-flow features: chunks, baseline, rush orders, mirror trades."""

    model_config = SettingsConfigDict(env_prefix="TAPEWATCH_FLOW_")

    chunk_ms: int = Field(5_000, ge=100, le=600_000, description="Base chunk of the fast order-flow features")
    long_chunks: int = Field(5, ge=1, le=120, description="Base chunks in a long chunk (5 × 5 s = 25 s)")
    baseline_chunks: int = Field(
        720, ge=2, le=100_000, description="Base chunks in the rolling baseline of the z-scores (720 × 5 s = 1 h)"
    )
    baseline_min_chunks: int = Field(60, ge=1, description="Baseline chunks needed before z-scores are given")
    idle_ms: int = Field(
        60_000, ge=1, description="A book more than this after the previous one starts the depth comparison afresh"
    )
    rush_min_trades: int = Field(3, ge=2, description="Trades in one millisecond that make a rush order")
    mirror_ms: int = Field(
        5_000, ge=0, le=600_000, description="A trade mirrors the previous one (same size, other side) this soon after"
    )


class VenueSettings(Group):
    """What each venue's feed carries, and which venues a K-means model may score besides its own."""

    feed_profiles: str = Field(
        "",
        description='What each venue\'s feed carries, JSON {"venue": {"books": true, "sides": false, '
        '"prints": "snapshots"}} over the built-in table (tapewatch/feeds.py)',
    )
    kmeans_extra_venues: str = Field(
        "",
        description="Venues a K-means model may score besides those it was trained on (the user asserts they are "
        'alike), JSON {"model name": ["venue", ...]}',
    )

    @field_validator("kmeans_extra_venues", mode="after")
    @classmethod
    def _extra_venues_parse(cls, value: str) -> str:
        parse_extra_venues(value)  # a malformed value is one clear error at start-up, not at the first record
        return value

    def feeds(self) -> FeedProfiles:
        """Venue → what its feed carries (:mod:`tapewatch.feeds`)."""
        from tapewatch.feeds import FeedProfiles

        return FeedProfiles.from_json(self.feed_profiles)

    def kmeans_extra(self) -> dict[str, tuple[str, ...]]:
        """Model name → venues it may score besides its training venues (:mod:`tapewatch.detectors.model_venues`)."""
        return parse_extra_venues(self.kmeans_extra_venues)


class NewsSettings(Group):
    """What news does to the indicator and to the alerts beside it."""

    model_config = SettingsConfigDict(env_prefix="TAPEWATCH_NEWS_")

    half_life_ms: int = Field(
        4 * 3_600_000, ge=60_000, description="A news item's weight in the news indicator halves every this long"
    )
    before_ms: int = Field(
        30 * 60_000, ge=0, le=86_400_000, description="News published this long before an alert's onset is beside it"
    )
    after_ms: int = Field(
        2 * 60_000, ge=0, le=3_600_000, description="…and this long after the onset (an onset leads the wire)"
    )
    discount: float = Field(
        0.5, ge=0.0, le=1.0, description="The share of a pump run-up's score it loses when there is news at its onset"
    )


class TradeSettings(Group):
    """The paper trader: its accounts, the venues' grids, how far a partition may lag."""

    model_config = SettingsConfigDict(env_prefix="TAPEWATCH_TRADE_")

    accounts: str = Field(
        '[{"name": "paper-dqn", "signal": "dqn"}, {"name": "paper-lstm", "signal": "lstm", "band": 0.0005},'
        ' {"name": "paper-cnn", "signal": "cnn", "band": 0.2}]',
        description="Paper accounts (JSON list; fields in execution/accounts.py): the signal each follows, limits",
    )
    exchange_info: Path | None = Field(
        None, description='Tick and lot per symbol: {"binance": {"BTCUSDT": {"tick": "0.01", "step": "0.00001"}}}'
    )
    max_skew_ms: int = Field(
        60_000, ge=1000, description="How far a caught-up partition may lag the newest event time in the paper trader"
    )


class ConsoleSettings(Group):
    """The analyst console (console/): where it listens, sessions, lockouts, its database role, proxies."""

    model_config = SettingsConfigDict(env_prefix="TAPEWATCH_CONSOLE_")

    host: str = Field("127.0.0.1", description="Address `tapewatch console serve` listens on")
    port: int = Field(8765, ge=1, le=65535)
    session_idle_minutes: int = Field(30, ge=1, description="A session ends after this long unused")
    session_max_hours: int = Field(12, ge=1, description="… and this long after the login, used or not")
    cookie_secure: bool = Field(
        True, description="Session cookies only over HTTPS (browsers treat http://127.0.0.1 and localhost as secure)"
    )
    login_max_failures: int = Field(5, ge=1, description="Wrong passwords in a row that lock a user")
    lockout_s: int = Field(900, ge=1, description="How long a locked user waits")
    client_max_failures: int = Field(
        20, ge=1, description="Failed logins from one client address per lockout period before it is refused"
    )
    max_body_bytes: int = Field(65_536, ge=1024, description="Largest request body the console accepts")
    db_user: str = Field(
        "tapewatch_console",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL role the console serves with: it may read cases and insert audit lines, never alter "
        "or delete the audit (the schema's owner is the role of TAPEWATCH_POSTGRES_URL)",
    )
    db_password: SecretStr = Field(SecretStr("tapewatch_console"), description="Password of TAPEWATCH_CONSOLE_DB_USER")
    trusted_proxies: str = Field(
        "",
        description="Comma-separated addresses or networks of reverse proxies whose X-Forwarded-For is believed; "
        "from anyone else the header is ignored",
    )


class LocalSettings(Group):
    """This machine: its state and models, the services it runs (or leaves to others) and their heaps."""

    var_dir: Path = Field(PROJECT_ROOT / "var", description="Data, logs and pids of the services infra/ runs")
    model_dir: Path | None = Field(None, description="Versioned model artifacts (default: <var_dir>/models)")
    external_services: str = Field(
        "",
        description="Comma-separated services not to start here (kafka, postgres, elasticsearch); "
        "any service whose address is not loopback is external anyway",
    )
    kafka_heap_mb: int = Field(512, ge=256, le=8192)
    es_heap_mb: int = Field(512, ge=256, le=8192)
    spark_driver_memory: str = Field("4g", description="Heap of the Spark driver (`train kmeans --engine spark`)")
    service_timeout_s: float = Field(5.0, gt=0, description="Connect timeout when probing a service")

    @field_validator("var_dir", "model_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @property
    def models_path(self) -> Path:
        return self.model_dir or self.var_dir / "models"

    def is_external(self, service: str, host: str) -> bool:
        named = {part.strip().lower() for part in self.external_services.split(",") if part.strip()}
        return service in named or not is_loopback(host)


class LogSettings(Group):
    """The log lines: JSON or text, and the level."""

    model_config = SettingsConfigDict(env_prefix="TAPEWATCH_LOG_")

    json_lines: bool = Field(False, validation_alias="TAPEWATCH_LOG_JSON")
    level: str = "INFO"


class _Groups(PydanticBaseSettingsSource):
    """Every group not given to ``Settings(...)``, each read by itself from the environment and from the ``.env``
    file of the whole (``Settings(_env_file=...)`` reaches every group). The bad values of all groups are one
    error naming each setting as ``config show`` does."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        groups: Mapping[str, type[Group]],
        given: Collection[str],
        env_file: DotenvType | None,
    ) -> None:
        super().__init__(settings_cls)
        self.groups = groups
        self.given = given
        self.env_file = env_file

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # the groups are read whole, in __call__

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        errors: list[InitErrorDetails] = []
        for name, group in self.groups.items():
            if name in self.given:
                continue
            try:
                values[name] = group(_env_file=self.env_file)
            except ValidationError as exc:
                errors += _named(group, exc)
        if errors:
            raise ValidationError.from_exception_data(self.settings_cls.__name__, errors)
        return values


def _named(group: type[Group], exc: ValidationError) -> list[InitErrorDetails]:
    """A group's errors, each located at its setting's name (``topic_partitions``, not the group's field)."""
    names: dict[str | int, str] = {}
    for field, variable in group.variables().items():
        names[field] = names[variable] = names[variable.lower()] = setting_name(variable)
    named: list[InitErrorDetails] = []
    for error in exc.errors():
        loc = error["loc"]
        if loc:
            loc = (names.get(loc[0], loc[0]), *loc[1:])
        details = InitErrorDetails(type=error["type"], loc=loc, input=error["input"])
        if "ctx" in error:
            details["ctx"] = error["ctx"]
        named.append(details)
    return named


class Settings(BaseSettings):
    """Every setting, grouped by concern (the module's docstring says how a setting finds its variable)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="forbid")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    es: ElasticsearchSettings = Field(default_factory=ElasticsearchSettings)
    sinks: SinkSettings = Field(default_factory=SinkSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    sources: SourceSettings = Field(default_factory=SourceSettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    flow: FlowSettings = Field(default_factory=FlowSettings)
    venues: VenueSettings = Field(default_factory=VenueSettings)
    news: NewsSettings = Field(default_factory=NewsSettings)
    trade: TradeSettings = Field(default_factory=TradeSettings)
    local: LocalSettings = Field(default_factory=LocalSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        given = cast(InitSettingsSource, init_settings).init_kwargs
        env_file = cast(DotEnvSettingsSource, dotenv_settings).env_file
        return init_settings, _Groups(settings_cls, cls.groups(), given, env_file)

    @classmethod
    def groups(cls) -> dict[str, type[Group]]:
        """Attribute → the group's class, in the order ``config show`` lists them."""
        groups: dict[str, type[Group]] = {}
        for name, field in cls.model_fields.items():
            group = field.annotation
            assert isinstance(group, type) and issubclass(group, Group), name
            groups[name] = group
        return groups

    @classmethod
    def variables(cls) -> dict[str, tuple[str, str]]:
        """Every environment variable → (group, field): ``TAPEWATCH_TOPIC_PREFIX`` → ``("kafka", "topic_prefix")``."""
        return {
            variable: (name, field)
            for name, group in cls.groups().items()
            for field, variable in group.variables().items()
        }

    def updated(self, **changes: Mapping[str, Any]) -> Settings:
        """A copy with some fields of some groups replaced, unvalidated like ``model_copy``:
        ``settings.updated(kafka={"topic_prefix": "t."}, es={"index_prefix": "tw"})``."""
        copies: dict[str, Group] = {}
        for name, fields in changes.items():
            group: Group = getattr(self, name)
            unknown = set(fields) - set(type(group).model_fields)
            if unknown:
                raise TypeError(f"{type(group).__name__} has no {', '.join(sorted(unknown))}")
            copies[name] = group.model_copy(update=dict(fields))
        return self.model_copy(update=copies)

    # --- Derived ---------------------------------------------------------------
    def topic(self, name: str) -> str:
        return f"{self.kafka.topic_prefix}{name}"

    @property
    def console_postgres_url_plain(self) -> str:
        """The database of :attr:`PostgresSettings.url` (host, options, schema) as the console's serving role."""
        from sqlalchemy.engine import make_url

        url = make_url(self.postgres.url_plain).set(
            username=self.console.db_user, password=self.console.db_password.get_secret_value()
        )
        return url.render_as_string(hide_password=False)

    def masked(self) -> dict[str, str]:
        """Every effective setting as text by its name (``kafka_bootstrap``): secrets masked, and credentials inside
        any URL of any setting (user-info, ``?password=``, tokens, lists of URLs: :func:`tapewatch.secrets.redact`)."""
        from tapewatch.secrets import MASK, redact

        shown: dict[str, str] = {}
        for variable, (group, field) in self.variables().items():
            name = setting_name(variable)
            value = getattr(getattr(self, group), field)
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
    except ValidationError as exc:
        raise TapewatchError(f"invalid setting {_setting_named(exc)}") from None
    configure(loaded)
    return loaded


def _setting_named(exc: ValidationError) -> str:
    """The first bad setting by the environment variable that sets it, and what is wrong (never its value: it may
    be a secret)."""
    from tapewatch.errors import first_problem

    location, message = first_problem(exc)
    field_name = (location or "").rsplit(".", 1)[-1]
    variables = [name for name, (_, known) in Settings.variables().items() if known == field_name]
    return f"{' or '.join(variables) or location}: {message}"
