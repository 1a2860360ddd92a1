"""A signal record as a decision: which signal it is and the position (in units) it asks an account for.

The DQN's action carries its position in units; a forecaster's forecast becomes long (``max_units``) above
``+band`` and flat below ``-band`` — the signals lab's band rule, one step at a time
(:func:`tapewatch.signals.forecast.rules.band_step`), so the paper account trades what the lab backtested.

>>> from tapewatch.execution.accounts import AccountConfig
>>> account = AccountConfig(name="a", signal="lstm", band=0.001, max_units=2)
>>> d = Decision("lstm", "v1", 0, None, 0.004)
>>> d.target(account, 0), Decision("lstm", "v1", 0, None, 0.0).target(account, 2)
(2, 2)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tapewatch.execution.accounts import DQN_SIGNAL, AccountConfig
from tapewatch.records import Action, Forecast
from tapewatch.signals.forecast.band import band_step

#: a position in units beyond any account's limit (AccountConfig.max_units ≤ 1000): garbage, not a decision
ABSURD_UNITS: Final = 1000


@dataclass(frozen=True, slots=True)
class Decision:
    signal: str
    version: str
    ts: int
    #: the position asked, in units (the DQN's), or None for a forecast
    units: int | None
    prediction: float | None

    def target(self, account: AccountConfig, previous: int) -> int:
        """The account's target position in units after this decision (its previous one was ``previous``)."""
        if self.units is not None:
            return min(self.units, account.max_units)
        assert self.prediction is not None
        long = band_step(1 if previous > 0 else 0, self.prediction, account.band)
        return account.max_units if long else 0


def decision_of(record: Action | Forecast) -> Decision:
    """The decision a signal record stands for (ValueError for an absurd position)."""
    if isinstance(record, Action):
        if record.position > ABSURD_UNITS:
            raise ValueError(f"absurd position: {record.position} units (no account holds more than {ABSURD_UNITS})")
        return Decision(DQN_SIGNAL, record.model_version, record.ts, record.position, None)
    return Decision(record.model, record.model_version, record.ts, None, record.prediction)
