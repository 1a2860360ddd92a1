"""What a paper account follows and the limits it trades under (``TAPEWATCH_TRADE_ACCOUNTS``, a JSON list).

An account follows one signal: ``dqn`` (the Double DQN's ``signals.actions``) or a forecaster's model name
(``lstm``, ``cnn``: ``signals.forecasts``, long above ``+band``, flat below ``-band``). A position unit is
``unit_value`` of money (the DQN's ``position`` is in units; a forecaster's long is ``max_units`` units).
Amounts are in the quote currency of the account's venues: an account should not mix currencies (``venues``).

>>> account = AccountConfig(name="paper-dqn", signal="dqn")
>>> account.pricing, account.max_units, account.intraday
('join', 1, True)
>>> parse_accounts('[{"name": "a", "signal": "lstm", "band": 0.001}]')[0].band
0.001
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from tapewatch.errors import first_problem
from tapewatch.records import ACCOUNT_PATTERN

DQN_SIGNAL: Final = "dqn"
Pricing = Literal["join", "cross", "mid"]


class AccountConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=ACCOUNT_PATTERN)
    signal: str = Field(min_length=1, description="dqn, or the forecaster model whose forecasts it follows")
    band: float = Field(0.0, ge=0.0, description="Forecast band: long above +band, flat below -band")
    venues: tuple[str, ...] = Field((), description="Venues it trades (all when empty)")
    capital: float = Field(10_000_000.0, gt=0, description="Starting cash")
    unit_value: float = Field(1_000_000.0, gt=0, description="Money per position unit")
    max_units: int = Field(1, ge=1, le=1000, description="Largest position per symbol, in units")
    max_gross: float = Field(5_000_000.0, gt=0, description="Largest value of all positions and open buys")
    max_daily_loss: float = Field(200_000.0, gt=0, description="Day loss that trips the kill switch")
    intraday: bool = Field(True, description="Flat at each session's close")
    flat_before_close_ms: int = Field(300_000, ge=0, description="How long before the close it goes flat")
    pricing: Pricing = Field("join", description="join the best, cross the spread, or the mid on the grid")
    ttl_ms: int = Field(60_000, ge=1000, description="A resting order is cancelled after this long")
    latency_ms: int = Field(1_000, ge=0, description="Decision to order: the order rests from signal ts + this")
    day_utc_offset_min: int = Field(480, ge=-720, le=840, description="Where the trading day starts (UTC offset)")

    def follows(self, signal: str, venue: str) -> bool:
        return self.signal == signal and (not self.venues or venue in self.venues)


_ACCOUNTS: Final = TypeAdapter(list[AccountConfig])


def parse_accounts(text: str) -> tuple[AccountConfig, ...]:
    """The accounts of a JSON list; ValueError naming the account and field when one is wrong."""
    try:
        accounts = tuple(_ACCOUNTS.validate_json(text))
    except ValidationError as exc:
        where, message = first_problem(exc)
        raise ValueError(f"trade accounts: {where}: {message}") from None
    names = [a.name for a in accounts]
    if len(set(names)) != len(names):
        raise ValueError("trade accounts: account names must be unique")
    return accounts
