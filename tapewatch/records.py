"""Record contracts: what every topic carries, as plain JSON (UTF-8), key = symbol.

One definition per record, used by producers, streams, detectors, sinks and the exported JSON Schemas.
Decoding is strict (a number sent as a string is an error, not a guess) and tolerant of extra fields,
so a newer producer never breaks an older consumer; but a quote carrying a book's levels, or a book carrying a
quote's fields, is refused: it is on the wrong topic. Any problem raises :class:`RecordError`, which names
the offending field; the dead-letter path puts that reason next to the original bytes.
"""

from __future__ import annotations

import hashlib
import math
import re
from enum import StrEnum
from functools import cache
from typing import Annotated, Any, ClassVar, Final, Literal, Self

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator
from typing_extensions import TypedDict  # pydantic needs this one below Python 3.12

from tapewatch.errors import TapewatchError, first_problem

#: 2100-01-01T00:00:00Z: a later time stamp is garbage (and 2**70 would not even fit the state's JSON)
MAX_EPOCH_MS = 4_102_444_800_000
#: Bounds no instrument reaches (BTC in KRW is ~1.5e8, a whole day's volume of the busiest stock ~1e10 shares):
#: they keep every sum, square and ratio the features compute finite, far inside float range.
MAX_PRICE = 1e10
MAX_SIZE = 1e13
#: ... and floors (no token trades below a billionth; no lot is smaller): with them every ratio of two prices
#: or two sizes stays inside float range (5e-324 / 1e10 underflows to 0, 1e13 / 5e-324 overflows)
MIN_PRICE = 1e-9
MIN_SIZE = 1e-9
#: An instrument code: letters and digits with the usual separators (2330, 00631L, BRK.B, ES=F, ^TWII, EUR/USD),
#: at most 32 characters; no space, control character or invisible mark (a symbol is a Kafka key and an id).
SYMBOL_PATTERN = r"^[A-Za-z0-9^][A-Za-z0-9._:/^=+&-]{0,31}$"
VENUE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"
#: A console tenant, which may own confidential data (a firm's drop copy, its alerts): lower-case letters, digits and
#: ``_``, since it names the tenant's own Elasticsearch indices (``<prefix>-tenant-alerts-<tenant>-<month>``), and
#: with no ``-`` one tenant's index pattern (``…-<tenant>-*``) never matches another's.
TENANT_PATTERN: Final = r"^[a-z0-9][a-z0-9_]{0,47}$"


def tenant_problem(name: str) -> str | None:
    """Why ``name`` cannot be a tenant's, or None when it can."""
    if re.fullmatch(TENANT_PATTERN, name):
        return None
    return f"tenant {name!r}: lower-case letters, digits and '_', at most 48, starting with a letter or digit"


EpochMs = Annotated[int, Field(ge=0, lt=MAX_EPOCH_MS, description="Event time, epoch milliseconds UTC")]


def _size_floor(size: float) -> float:
    if 0 < size < MIN_SIZE:
        raise ValueError(f"a size is 0 or at least {MIN_SIZE:g}")
    return size


Price = Annotated[float, Field(ge=MIN_PRICE, le=MAX_PRICE)]
NonNegative = Annotated[float, Field(ge=0)]
Size = Annotated[float, Field(ge=0, le=MAX_SIZE), AfterValidator(_size_floor)]
# JSON has no tuples: a level arrives as a 2-element array, so the tuple itself is lax and its items strict.
Level = Annotated[
    tuple[
        Annotated[float, Strict(), Field(ge=MIN_PRICE, le=MAX_PRICE)],
        Annotated[float, Strict(), Field(ge=0, le=MAX_SIZE), AfterValidator(_size_floor)],
    ],
    Strict(False),
]
Contribution = Annotated[tuple[Annotated[str, Strict()], Annotated[float, Strict()]], Strict(False)]

BOOK_DEPTH = 5
#: what only a book carries, and what only a quote carries: a payload holding the other's fields is on the
#: wrong topic (a book on md.quotes would otherwise decode as a quote without a trade, its levels ignored)
BOOK_ONLY_FIELDS: Final = frozenset({"bids", "asks"})
QUOTE_ONLY_FIELDS: Final = frozenset(
    {"price", "size", "volume", "open", "high", "low", "prev_close", "bid", "ask", "side", "seq"}
)


def _foreign(extra: dict[str, Any] | None, fields: frozenset[str], shape: str) -> None:
    """Refuse a record whose extra fields are another record's own (``shape`` names it)."""
    if extra and not fields.isdisjoint(extra):
        raise ValueError(f"{shape}'s field(s) {', '.join(sorted(fields.intersection(extra)))}: wrong topic?")


class RecordError(TapewatchError, ValueError):
    """A record that cannot be decoded or validated. ``field`` is the dotted path of the culprit, if any."""

    def __init__(self, record: str, reason: str, field: str | None = None) -> None:
        self.record = record
        self.reason = reason
        self.field = field
        where = f" field '{field}'" if field else ""
        super().__init__(f"{record}{where}: {reason}")


class Contract(BaseModel):
    """A message's contract on a topic: strict JSON in and out, and the Kafka key it goes under."""

    # Strict: the wire is JSON we produce, so "1.5" for a number is a bug upstream, not something to guess at.
    # Enum fields opt out (Field(strict=False)) so their JSON string values validate into the enum.
    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False, frozen=True)

    #: short name used in topic registry, DLQ reasons and schema file names
    record_name: ClassVar[str] = "record"

    def to_json(self) -> bytes:
        # Records are flat (lists, tuples and dicts of scalars), so orjson serialises __dict__ directly,
        # several times faster than model_dump().
        return orjson.dumps(self.__dict__)

    def key(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def from_json(cls, raw: bytes | str) -> Self:
        # pydantic-core parses and validates in one pass: a quarter faster than orjson.loads + model_validate
        try:
            # the validator model_validate_json calls, without its wrapper (decoding runs per record)
            return cls.__pydantic_validator__.validate_json(raw)  # type: ignore[no-any-return]
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            if first["type"] == "json_invalid":
                raise RecordError(cls.record_name, f"invalid JSON: {first['ctx'].get('error', first['msg'])}") from None
            if first["type"] == "model_type":
                got = type(first["input"]).__name__
                raise RecordError(cls.record_name, f"expected a JSON object, got {got}") from None
            field, message = first_problem(exc)
            raise RecordError(cls.record_name, message, field) from None

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        if not isinstance(data, dict):
            raise RecordError(cls.record_name, f"expected a JSON object, got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            field, message = first_problem(exc)
            raise RecordError(cls.record_name, message, field) from None

    @classmethod
    def trusted(cls, **values: Any) -> Self:
        """The record of ``values`` that already meet the contract, built as validation builds it (every field in
        its order, the defaults filled in) but not validated again: for records derived from validated ones on a hot
        path, whose caller vouches for them (with the contract's own types: tuples for levels, enums for sides)."""
        record = cls.__new__(cls)
        defaults, required, extra = _shape(cls)
        fields = {**defaults, **values}
        if len(fields) != len(defaults) or not values.keys() >= required:
            raise TypeError(f"{cls.__name__}.trusted: {sorted(values)} are not its fields, or miss a required one")
        _set_attribute(record, "__dict__", fields)
        _set_attribute(record, "__pydantic_fields_set__", set(values))
        _set_attribute(record, "__pydantic_extra__", {} if extra else None)
        _set_attribute(record, "__pydantic_private__", None)
        return record


#: a field :meth:`Contract.trusted` must be given
_REQUIRED: Final = object()
_set_attribute: Final = object.__setattr__  # a frozen model's attributes, set as pydantic itself sets them


@cache
def _defaults(contract: type[Contract]) -> dict[str, Any]:
    """Each field of ``contract`` in order → its default (:data:`_REQUIRED` when it has none, or a factory)."""
    return {
        name: _REQUIRED if info.is_required() or info.default_factory is not None else info.default
        for name, info in contract.model_fields.items()
    }


@cache
def _shape(contract: type[Contract]) -> tuple[dict[str, Any], frozenset[str], bool]:
    """What :meth:`Contract.trusted` builds a record of ``contract`` from, read once (it runs per derived record):
    its defaults, the fields it must be given, and whether it keeps extra fields."""
    defaults = _defaults(contract)
    required = frozenset(name for name, default in defaults.items() if default is _REQUIRED)
    return defaults, required, contract.model_config.get("extra") == "allow"


class Record(Contract):
    """A market or surveillance record of one symbol at one venue, keyed by its symbol (so every topic of records is
    co-partitioned)."""

    symbol: str = Field(pattern=SYMBOL_PATTERN, description="Instrument code; also the Kafka key")
    venue: str = Field(pattern=VENUE_PATTERN, description="Where it trades: twse, tpex, binance, sim, ...")

    def key(self) -> bytes:
        return self.symbol.encode()


class Side(StrEnum):
    """Aggressor side of a trade: who crossed the spread."""

    BUY = "B"
    SELL = "S"


class Quote(Record):
    """One market-data snapshot or trade. ``price`` is null when nothing traded since the previous quote."""

    record_name: ClassVar[str] = "quote"
    # extra fields are kept aside (never re-serialised: to_json writes the declared ones) to refuse a book's
    model_config = ConfigDict(extra="allow")
    ts: EpochMs
    price: Price | None = Field(None, description="Last trade price in this update; null when nothing traded")
    size: Size = Field(0.0, description="Shares (units) traded in this update, not cumulative")
    volume: NonNegative | None = Field(None, description="Cumulative volume of the session, when the venue gives it")
    open: Price | None = None
    high: Price | None = None
    low: Price | None = None
    prev_close: Price | None = None
    bid: Price | None = None
    ask: Price | None = None
    side: Side | None = Field(None, strict=False, description="Aggressor side when the venue tells it")
    seq: int = Field(0, ge=0, description="Per-symbol sequence number from the producer")

    @model_validator(mode="after")
    def _trade_consistency(self) -> Self:
        if self.price is None and self.size > 0:
            raise ValueError("size > 0 without a price: a trade needs a price")
        _foreign(self.__pydantic_extra__, BOOK_ONLY_FIELDS, "a book")
        return self


class Book(Record):
    """Top of the order book, best level first: bids high→low, asks low→high."""

    record_name: ClassVar[str] = "book"
    # extra fields are kept aside (never re-serialised) to refuse a quote's
    model_config = ConfigDict(extra="allow")
    ts: EpochMs
    bids: list[Level] = Field(default_factory=list, max_length=BOOK_DEPTH)
    asks: list[Level] = Field(default_factory=list, max_length=BOOK_DEPTH)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        bid_prices = [p for p, _ in self.bids]
        ask_prices = [p for p, _ in self.asks]
        if bid_prices != sorted(bid_prices, reverse=True):
            raise ValueError("bids must be ordered best (highest) first")
        if ask_prices != sorted(ask_prices):
            raise ValueError("asks must be ordered best (lowest) first")
        _foreign(self.__pydantic_extra__, QUOTE_ONLY_FIELDS, "a quote")
        return self


class Bar(Record):
    """A one-minute OHLCV bar on event time: ``start`` inclusive, ``end`` exclusive."""

    record_name: ClassVar[str] = "bar"
    start: EpochMs
    end: EpochMs
    open: Price
    high: Price
    low: Price
    close: Price
    volume: NonNegative
    vwap: Price
    trades: int = Field(ge=0)
    price_change_pct: float | None = Field(None, description="close vs previous bar's close, percent")
    volume_change_pct: float | None = Field(None, description="volume vs previous bar's volume, percent")

    @model_validator(mode="after")
    def _ohlc(self) -> Self:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if not (self.low <= min(self.open, self.close) and max(self.open, self.close) <= self.high):
            raise ValueError("open/close must lie within low..high")
        return self


class Cadence(StrEnum):
    BAR_1M = "1m"
    FAST = "fast"
    #: the symbol's news indicator after each scored news item (``news_sentiment`` in %, ``news_count_1h``)
    NEWS = "news"


class Features(Record):
    record_name: ClassVar[str] = "features"
    ts: EpochMs
    values: dict[str, float | None] = Field(description="name → value; null while a feature warms up")
    version: str = Field(min_length=1, description="Feature-set version")
    cadence: Cadence = Field(Cadence.BAR_1M, strict=False)


class Score(Record):
    record_name: ClassVar[str] = "score"
    ts: EpochMs
    model_version: str = Field(min_length=1)
    cluster: int = Field(ge=0)
    distance: NonNegative
    score: Annotated[float, Field(ge=0.0, le=1.0)]
    top_features: list[Contribution] = Field(
        default_factory=list, description="(feature, contribution) pairs, largest first"
    )


class AlertKind(StrEnum):
    PUMP_AND_DUMP = "pump_and_dump"
    SPOOFING = "spoofing"
    WASH_TRADING = "wash_trading"
    MARKING_THE_CLOSE = "marking_the_close"
    MOMENTUM_IGNITION = "momentum_ignition"
    VOLUME_BURST = "volume_burst"
    PRICE_BURST = "price_burst"
    KMEANS_OUTLIER = "kmeans_outlier"
    QUOTE_STUFFING = "quote_stuffing"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


#: identifiers (alert ids): no control characters (JSON decoding already refuses lone surrogates)
IDENTIFIER_PATTERN: Final = r"^[^\x00-\x1f\x7f]+$"


def alert_id(symbol: str, kind: str, window_start: int, scope: str | None = None) -> str:
    """Deterministic id: a replay of the same episode yields the same id, so sinks overwrite, never duplicate.
    ``scope``: whose alerts, besides the symbol's, have ids of their own — a tenant's (from its own confidential data:
    two firms' alerts of one episode, and a firm's beside the public feed's, are different alerts), or a detector
    path's that runs beside the others (``feed:orders``, never a tenant's name, which has no ``:``)."""
    key = f"{symbol}|{kind}|{window_start}" if scope is None else f"{scope}|{symbol}|{kind}|{window_start}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


#: at most this many news items ride along with an alert (the newest before its onset)
ALERT_NEWS_MAX: Final = 5


class NewsRef(TypedDict):
    """A news item as an alert cites it: enough to show it beside the alert and to find it in ``signals.news``."""

    item_id: str
    ts: int
    source: str
    title: str
    url: str
    #: the item's sentiment in [-1, 1]; ``None`` when no sentiment model scored it
    sentiment: float | None


class Alert(Record):
    record_name: ClassVar[str] = "alert"
    #: an identifier, never free text: no control characters (an id PostgreSQL would have to rewrite is not
    #: the id downstream services look up)
    alert_id: str = Field(min_length=1, max_length=200, pattern=IDENTIFIER_PATTERN)
    ts: EpochMs
    kind: AlertKind = Field(strict=False, description="What was detected")
    severity: Severity = Field(strict=False)
    score: Annotated[float, Field(ge=0.0, le=1.0)]
    window_start: EpochMs
    window_end: EpochMs
    evidence: dict[str, float | int | str | bool | None] = Field(default_factory=dict)
    model_version: str = Field(min_length=1)
    message: str = ""
    tenant: str | None = Field(
        None,
        pattern=TENANT_PATTERN,
        description="The tenant whose confidential data raised it (a firm's drop copy): only that tenant sees it; "
        "null for an alert from public market data",
    )
    news: list[NewsRef] = Field(
        default_factory=list,
        max_length=ALERT_NEWS_MAX,
        description="The symbol's news published in the window before the onset, newest first",
    )

    @property
    def emission(self) -> int:
        """Orders the emissions of one alert: the later one, and of two at one time the one that knows more news
        about its onset (the stream sends an alert again when such news arrives after it). The stores keep the
        highest."""
        known = self.evidence.get("news_count")
        count = known if isinstance(known, int) and not isinstance(known, bool) else 0
        return self.ts * 1000 + min(max(count, 0), 999)


class Action(Record):
    record_name: ClassVar[str] = "action"
    ts: EpochMs
    action: Literal["HOLD", "BUY", "SELL"]
    q_values: dict[str, float] = Field(
        description="HOLD/BUY/SELL → Q-value; empty while the features warm up (the action is then HOLD)"
    )
    position: int = Field(ge=0, description="Position after the action, in units of the position limit")
    model_version: str = Field(min_length=1)


class Forecast(Record):
    """One model's forecast for one symbol at a bar close (``signals.forecasts``)."""

    record_name: ClassVar[str] = "forecast"
    ts: EpochMs
    model: str = Field(min_length=1, description="Model family, e.g. lstm or cnn")
    model_version: str = Field(min_length=1)
    horizon: int = Field(ge=1, description="Bars ahead the forecast is for")
    target: Literal["return", "class"] = Field(
        description="return: prediction is the expected return over the horizon; "
        "class: prediction is P(up) - P(down) over the horizon"
    )
    prediction: float = Field(allow_inf_nan=False)
    confidence: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    probabilities: dict[str, float] = Field(
        default_factory=dict, description="Class → probability (class forecasts only)"
    )


#: an account name: what a paper (or later a real) trading account is called in settings, topics and tables
ACCOUNT_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: a client order id: ``<account>-<symbol>-<signal time>-<n>``, made from the input alone (:mod:`execution.ids`)
ORDER_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:/^=+&-]{0,159}$"


class OrderEvent(StrEnum):
    """What happened to an order: each is one record on ``orders``, with the order's state after it."""

    PLACED = "placed"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


class OrderSide(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class Order(Record):
    """One event of one limit order of a paper account (``orders``); ``revision`` counts the order's events."""

    record_name: ClassVar[str] = "order"
    ts: EpochMs
    account: str = Field(pattern=ACCOUNT_PATTERN)
    client_order_id: str = Field(pattern=ORDER_ID_PATTERN)
    revision: int = Field(ge=0, description="0 when placed, +1 per later event of the order")
    event: OrderEvent = Field(strict=False)
    side: OrderSide = Field(strict=False)
    price: Price = Field(description="Limit price, on the venue's tick grid")
    quantity: Annotated[float, Field(gt=0, le=MAX_SIZE)]
    filled: NonNegative = Field(description="Quantity filled so far")
    average_price: Price | None = Field(None, description="Average fill price so far")
    queue_ahead: NonNegative = Field(0.0, description="Estimated quantity ahead of the order at its price")
    reason: str = Field("", max_length=500, description="Why it was cancelled or rejected")
    signal_model: str = Field(min_length=1, description="The signal it follows: dqn, or a forecaster's model")
    signal_version: str = Field(min_length=1)
    signal_ts: EpochMs
    decision_price: Price | None = Field(None, description="Mid (else last) price when the decision was taken")


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class Fill(Record):
    """One (partial) execution of a paper order against the tape (``fills``)."""

    record_name: ClassVar[str] = "fill"
    ts: EpochMs
    account: str = Field(pattern=ACCOUNT_PATTERN)
    fill_id: str = Field(pattern=ORDER_ID_PATTERN)
    client_order_id: str = Field(pattern=ORDER_ID_PATTERN)
    side: OrderSide = Field(strict=False)
    price: Price
    quantity: Annotated[float, Field(gt=0, le=MAX_SIZE)]
    fee: NonNegative
    tax: NonNegative
    liquidity: Liquidity = Field(strict=False)
    tape_price: Price = Field(description="The print that filled it")
    signal_model: str = Field(min_length=1)
    signal_ts: EpochMs
    decision_price: Price | None = None
    realized_pnl: float = Field(allow_inf_nan=False, description="P&L this fill realised, after its fee and tax")


class Portfolio(Record):
    """A paper account after a change (a fill, a mark at a minute's end, the kill switch, the close)
    (``portfolio``). ``symbol``/``venue`` are those of the event that caused it; ``seq`` counts the account's
    snapshots."""

    record_name: ClassVar[str] = "portfolio"
    ts: EpochMs
    account: str = Field(pattern=ACCOUNT_PATTERN)
    seq: int = Field(ge=0)
    reason: Literal["fill", "mark", "halt", "close"]
    cash: float = Field(allow_inf_nan=False)
    equity: float = Field(allow_inf_nan=False)
    gross_exposure: NonNegative
    realized_pnl: float = Field(allow_inf_nan=False)
    unrealized_pnl: float = Field(allow_inf_nan=False)
    day_pnl: float = Field(allow_inf_nan=False)
    fees: NonNegative
    taxes: NonNegative
    halted: bool = Field(description="The kill switch: the day's loss limit was hit, no new positions today")
    positions: dict[str, float] = Field(default_factory=dict, description="symbol → quantity held (non-zero)")


#: a venue's or a broker's own order or execution id: printable ASCII without spaces (Databento's and Bitstamp's
#: ids are integers, written in decimal; a FIX OrderID or ExecID is any string)
VENUE_ID_PATTERN: Final = r"^[!-~]{1,64}$"


class BookAction(StrEnum):
    """What one market-by-order event did to the venue's book (Databento's MBO actions, LOBSTER's event types and
    ITCH's messages all map onto these)."""

    ADD = "add"
    MODIFY = "modify"
    CANCEL = "cancel"
    TRADE = "trade"
    FILL = "fill"
    CLEAR = "clear"


#: the actions, and an order's sides, as module constants: on Python 3.11 a member read off its enum class
#: (``BookAction.ADD``) is a slow attribute lookup (the enum's metaclass defines ``__getattr__``), several times a
#: module constant's, and the market-by-order path compares each event's action and side against them
ADD: Final = BookAction.ADD
MODIFY: Final = BookAction.MODIFY
CANCEL: Final = BookAction.CANCEL
TRADE: Final = BookAction.TRADE
FILL: Final = BookAction.FILL
CLEAR: Final = BookAction.CLEAR
BUY_SIDE: Final = OrderSide.BUY
SELL_SIDE: Final = OrderSide.SELL

#: which actions name a resting order, carry a price, carry a positive size, and name the order's side
ACTIONS_WITH_ORDER: Final = frozenset({ADD, MODIFY, CANCEL, FILL})
ACTIONS_WITH_PRICE: Final = frozenset({ADD, MODIFY, TRADE})
ACTIONS_WITH_SIZE: Final = frozenset({ADD, MODIFY, TRADE, FILL})
ACTIONS_WITH_SIDE: Final = frozenset({ADD, MODIFY})


class OrderBookEvent(Record):
    """One market-by-order event of a venue's public feed (``md.orders``).

    ``side`` is the resting order's for ``add``, ``modify``, ``cancel`` and ``fill``, and the aggressor's for a
    ``trade`` (null when the venue does not say). A ``trade``'s fills, one per displayed order it executed against,
    come in its millisecond — most venues send them right after it, some send a millisecond's trades first
    (Bitstamp); a trade whose millisecond fills no displayed order at its price executed non-displayed liquidity.
    ``modify`` gives the order's new price and size; ``cancel`` takes ``size`` off the order (all of it when
    ``size`` is 0 or at least what rests). ``sequence`` is the venue's, in the order the venue sent the events;
    ``snapshot`` marks the adds that rebuild the book after a ``clear`` (a subscription's first image or a resync),
    which are resting orders, not new ones.
    """

    record_name: ClassVar[str] = "order_book_event"
    ts: EpochMs
    sequence: int = Field(ge=0, description="The venue's sequence number of the event")
    action: BookAction = Field(strict=False)
    order_id: str | None = Field(None, pattern=VENUE_ID_PATTERN, description="The venue's id of the resting order")
    side: OrderSide | None = Field(None, strict=False)
    price: Price | None = None
    size: Size = 0.0
    snapshot: bool = Field(False, description="Part of a book image after a clear, not a new order")

    @model_validator(mode="after")
    def _complete(self) -> Self:
        action = self.action
        if action in ACTIONS_WITH_ORDER and self.order_id is None:
            raise ValueError(f"a {action} names its order_id")
        if action in ACTIONS_WITH_PRICE and self.price is None:
            raise ValueError(f"a {action} carries a price")
        if action in ACTIONS_WITH_SIZE and self.size <= 0:
            raise ValueError(f"a {action} carries a positive size")
        if action in ACTIONS_WITH_SIDE and self.side is None:
            raise ValueError(f"a {action} carries the order's side")
        return self


class ExecType(StrEnum):
    """What an execution report tells (FIX 4.4 tag 150)."""

    NEW = "new"
    REPLACED = "replaced"
    CANCELED = "canceled"
    TRADE = "trade"
    REJECTED = "rejected"
    EXPIRED = "expired"


class OrderKind(StrEnum):
    """An order's type (FIX 4.4 tag 40): a pegged order rests where the venue pegs it, often not displayed."""

    LIMIT = "limit"
    MARKET = "market"
    PEGGED = "pegged"


class ExecutionReport(Record):
    """One execution report of a firm's own order, as its drop copy delivers it (``orders.firm``): the account,
    and where the firm knows them the trader and the beneficial owner. ``order_id`` is the venue's id, the one the
    public market-by-order feed carries when the venue publishes it. ``exec_id`` is unique per report."""

    record_name: ClassVar[str] = "execution_report"
    ts: EpochMs = Field(description="TransactTime")
    exec_id: str = Field(pattern=VENUE_ID_PATTERN)
    order_id: str = Field(pattern=VENUE_ID_PATTERN)
    client_order_id: str | None = Field(None, pattern=VENUE_ID_PATTERN)
    tenant: str = Field(
        pattern=TENANT_PATTERN, description="The firm (console tenant) whose drop copy this is: only it sees its alerts"
    )
    account: str = Field(pattern=ACCOUNT_PATTERN)
    trader: str | None = Field(None, pattern=ACCOUNT_PATTERN)
    owner: str | None = Field(None, pattern=ACCOUNT_PATTERN, description="The beneficial owner")
    exec_type: ExecType = Field(strict=False)
    side: OrderSide = Field(strict=False)
    order_kind: OrderKind = Field(OrderKind.LIMIT, strict=False)
    displayed: bool = Field(True, description="False for hidden and midpoint orders")
    price: Price | None = Field(None, description="The limit price; null for a market order")
    quantity: Annotated[float, Field(gt=0, le=MAX_SIZE)] = Field(description="OrderQty")
    last_qty: Size = Field(0.0, description="What this report executed")
    last_price: Price | None = None
    cum_qty: Size = 0.0
    leaves_qty: Size = 0.0

    @model_validator(mode="after")
    def _execution(self) -> Self:
        if self.exec_type is ExecType.TRADE and (self.last_qty <= 0 or self.last_price is None):
            raise ValueError("a trade report carries last_qty > 0 and last_price")
        if self.cum_qty > self.quantity * (1 + 1e-9):
            raise ValueError("cum_qty exceeds the order's quantity")
        return self


class AccountRef(Contract):
    """One account of a tenant's reference data (``ref.accounts``, compacted: the newest per tenant and account, a
    tombstone removes it): the account's beneficial owner and its linked-account group, which the firm's detectors
    match wash trades by. Keyed ``<tenant>/<account>``."""

    record_name: ClassVar[str] = "account_ref"
    tenant: str = Field(pattern=TENANT_PATTERN)
    account: str = Field(pattern=ACCOUNT_PATTERN)
    owner: str | None = Field(None, pattern=ACCOUNT_PATTERN, description="The beneficial owner")
    group: str | None = Field(None, pattern=ACCOUNT_PATTERN, description="A group of linked accounts it belongs to")
    ts: EpochMs = Field(description="When this version was set")

    def key(self) -> bytes:
        return account_key(self.tenant, self.account)


def account_key(tenant: str, account: str) -> bytes:
    """The key of a tenant's account in ``ref.accounts`` (a tenant name has no ``/``)."""
    return f"{tenant}/{account}".encode()


#: bounds of a news item's text: a headline, a summary (not the article), a link
NEWS_TITLE_MAX: Final = 300
NEWS_SUMMARY_MAX: Final = 2_000
NEWS_URL_MAX: Final = 2_048


class NewsItem(Record):
    """One news item, for one symbol it concerns (an item about three stocks is three records, each keyed by its
    symbol, so news joins every per-symbol stream). ``item_id`` is the source's own id, stable across re-edits:
    a re-edit is the same item with a later ``updated_ts``."""

    record_name: ClassVar[str] = "news"
    item_id: str = Field(min_length=1, max_length=200, description="<source>:<the source's id of the item>")
    source: str = Field(pattern=VENUE_PATTERN, description="cnyes, or the name a desk gave an RSS/Atom feed")
    ts: EpochMs = Field(description="When the source published it, epoch milliseconds UTC")
    updated_ts: EpochMs | None = Field(None, description="Its latest edit, when the source says")
    title: str = Field(min_length=1, max_length=NEWS_TITLE_MAX)
    summary: str = Field("", max_length=NEWS_SUMMARY_MAX)
    url: str = Field("", max_length=NEWS_URL_MAX)
    language: str = Field(pattern=r"^[a-z]{2}(-[A-Za-z]{2,4})?$", description="BCP 47: zh-TW, en, …")
    symbols: list[str] = Field(min_length=1, max_length=50, description="Every symbol the item concerns")


class NewsSignal(Record):
    """One scored news item for one symbol (``signals.news``), with the symbol's news indicator right after it."""

    record_name: ClassVar[str] = "news_signal"
    ts: EpochMs = Field(description="When the source published the item")
    updated_ts: EpochMs | None = Field(None, description="The item's edit this signal is of, when the source says")
    item_id: str = Field(min_length=1, max_length=200)
    source: str = Field(pattern=VENUE_PATTERN)
    title: str = Field(min_length=1, max_length=NEWS_TITLE_MAX)
    url: str = Field("", max_length=NEWS_URL_MAX)
    language: str = Field(pattern=r"^[a-z]{2}(-[A-Za-z]{2,4})?$")
    sentiment: Annotated[float, Field(ge=-1.0, le=1.0, description="The item's sentiment")]
    indicator: Annotated[
        float, Field(ge=-100.0, le=100.0, description="The symbol's time-decayed news sentiment, in %")
    ]
    count_1h: int = Field(ge=0, description="The symbol's news items published in the hour up to ts")
    model_version: str = Field(min_length=1, description="The sentiment model's version")


class WashTest(StrEnum):
    """A statistical wash test's verdict over a window of a symbol's trades."""

    CONFORMS = "conforms"
    DOES_NOT_CONFORM = "does_not_conform"
    #: fewer trades than the test's minimum sample: no verdict
    NOT_ENOUGH_TRADES = "not_enough_trades"
    #: the sizes cannot show what the test looks for (they span too few decades, or sit below 100 lots)
    NOT_APPLICABLE = "not_applicable"


class VenueIndicator(Record):
    """The statistical wash tests over one window of a symbol's trade sizes (``venue.indicators``): a venue-level
    indicator beside the alerts, never an alert. Benford's first significant digit (chi-square, and the mean absolute
    deviation against Nigrini's conformity bands, which decide) and round-size clustering (trades at sizes of one
    significant digit against those just beside them, one-sided: genuine traders favour round sizes), with the
    sizes' tail exponent beside them."""

    record_name: ClassVar[str] = "venue_indicator"
    ts: EpochMs = Field(description="The window's end (exclusive), or its last trade's time when it is not complete")
    window_start: EpochMs
    window_end: EpochMs
    complete: bool = Field(description="False for a window cut short (the end of a file, a flush)")
    trades: int = Field(ge=0, description="Trades counted in the window (sizes of 0 included)")
    lot: Annotated[float, Field(gt=0)] | None = Field(
        None, description="The size step the round-size test used (configured, or learnt: a power of ten)"
    )
    benford: WashTest = Field(strict=False)
    benford_n: int = Field(ge=0, description="Trades with a first significant digit (size > 0)")
    benford_chi2: NonNegative | None = None
    benford_p: Annotated[float, Field(ge=0, le=1)] | None = None
    benford_mad: NonNegative | None = Field(None, description="Mean absolute deviation of the digits' shares")
    benford_band: str | None = Field(None, description="Nigrini's band: close, acceptable, marginal, nonconformity")
    decades: int = Field(ge=0, description="Decades between the sizes' 10th and 90th percentiles")
    rounding: WashTest = Field(strict=False)
    round_at: int = Field(ge=0, description="Trades exactly at a round size of at least 100 lots")
    round_near: int = Field(ge=0, description="Trades on the same grid just beside one")
    round_ratio: NonNegative | None = Field(None, description="Trades per round size over trades per size beside it")
    round_share: Annotated[float, Field(ge=0, le=1)] | None = Field(
        None,
        description="Trades at round sizes over all trades of at least 100 lots: falls as fabricated sizes dilute "
        "genuine ones (compare a venue with its own history; no verdict)",
    )
    round_p: Annotated[float, Field(ge=0, le=1)] | None = None
    tail_alpha: Annotated[float, Field(gt=0)] | None = Field(
        None, description="Hill's estimate of the sizes' power-law tail exponent over the largest trades (no verdict)"
    )
    tail_n: int = Field(0, ge=0, description="The largest trades the tail exponent is estimated on")
    version: str = Field(min_length=1, description="The tests' version")

    @property
    def consistent(self) -> bool | None:
        """False when a test does not conform, True when every test gave a verdict and conformed, else None."""
        verdicts = (self.benford, self.rounding)
        if WashTest.DOES_NOT_CONFORM in verdicts:
            return False
        return True if all(v is WashTest.CONFORMS for v in verdicts) else None


class Episode(Record):
    """Ground truth of an injected manipulation episode (simulator output)."""

    record_name: ClassVar[str] = "episode"
    kind: AlertKind = Field(strict=False)
    start: EpochMs
    end: EpochMs


WIRE_RECORDS: tuple[type[Record], ...] = (
    Quote,
    Book,
    Bar,
    Features,
    Score,
    Alert,
    Action,
    Forecast,
    Order,
    Fill,
    Portfolio,
    Episode,
    NewsItem,
    NewsSignal,
    OrderBookEvent,
    ExecutionReport,
    VenueIndicator,
)


def finite_or_none(value: float | None) -> float | None:
    """None for NaN/inf: such values never go on the wire."""
    return value if value is not None and math.isfinite(value) else None
