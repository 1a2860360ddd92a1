"""The LSTM forecaster's configuration and default features (recorded in the model's manifest).

The seed fed 50-day windows of 8 price-level columns (prices, MA7, MA21, daily return …) to an LSTM of 128
units. Price levels are not comparable across assets, so one network for every symbol needs scale-free
stand-ins from the shared feature library (:mod:`tapewatch.detectors.features`, one definition of each feature):

======================  =====================================================================================
seed                    this model
======================  =====================================================================================
daily return            ``ret_1`` (log return over one bar)
close (its recent path) ``ret_5`` (log return over five bars)
MA7                     ``bias_6`` — close vs its 6-bar simple moving average
MA21                    ``bias_25`` — close vs its 25-bar simple moving average
high / low (range)      ``rvol_30`` (realised volatility) and ``boll_pctb_20`` (place within the Bollinger band)
volume                  ``volume_z_30`` (volume surprise against the previous 30 bars)
open / typical price    ``vwap_dev`` (close vs the bar's volume-weighted / typical price)
======================  =====================================================================================

>>> config = LstmConfig(units=16, max_epochs=3)
>>> config.to_manifest()["features"] == list(DEFAULT_FEATURES), LstmConfig.from_manifest(config.to_manifest()) == config
(True, True)
>>> LstmConfig(dropout=1.0)
Traceback (most recent call last):
...
ValueError: dropout must be within [0, 1)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

__all__ = ["DEFAULT_FEATURES", "LstmConfig"]

#: the seed's 8 inputs as scale-free features of the shared library (see the table above)
DEFAULT_FEATURES: Final[tuple[str, ...]] = (
    "ret_1",
    "ret_5",
    "bias_6",
    "bias_25",
    "rvol_30",
    "volume_z_30",
    "vwap_dev",
    "boll_pctb_20",
)


@dataclass(frozen=True)
class LstmConfig:
    """The network (``LSTM(features, units)`` → dropout on the last hidden state → ``Linear(units, 1)``) and
    its training: Adam on the MSE of the scaled next-bar return, early-stopped on the validation loss after
    ``patience`` epochs without improvement; ``seed`` fixes the initial weights, batch order and dropout masks."""

    window: int = 50
    units: int = 128
    dropout: float = 0.2
    learning_rate: float = 1e-3
    batch_size: int = 64
    max_epochs: int = 60
    patience: int = 8
    grad_clip: float = 1.0
    seed: int = 0
    horizon: int = 1
    features: tuple[str, ...] = DEFAULT_FEATURES

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be within [0, 1)")
        if min(self.window, self.units, self.batch_size, self.max_epochs, self.patience, self.horizon) < 1:
            raise ValueError("window, units, batch_size, max_epochs, patience and horizon must be ≥ 1")
        if self.learning_rate <= 0 or self.grad_clip <= 0:
            raise ValueError("learning_rate and grad_clip must be > 0")
        if not self.features:
            raise ValueError("select at least one feature")

    def to_manifest(self) -> dict[str, Any]:
        data = asdict(self)
        data["features"] = list(self.features)
        return data

    @classmethod
    def from_manifest(cls, data: Mapping[str, Any]) -> LstmConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["features"] = tuple(str(n) for n in known.get("features", DEFAULT_FEATURES))
        return cls(**known)
