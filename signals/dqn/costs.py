"""Trading costs: proportional commissions and taxes, and the presets every backtest, model and paper account uses.

No torch and no gymnasium: the paper executor (:mod:`tapewatch.execution.portfolio`) charges these on every install.

>>> preset = cost_preset("taiwan")
>>> preset.buy_rate, round(preset.sell_rate, 6)
(0.001425, 0.004425)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class CostModel:
    """Proportional trading costs, as fractions of the traded value."""

    name: str
    buy_commission: float
    sell_commission: float
    sell_tax: float = 0.0

    @property
    def buy_rate(self) -> float:
        return self.buy_commission

    @property
    def sell_rate(self) -> float:
        return self.sell_commission + self.sell_tax


#: Taiwan: 0.1425 % broker commission per side, 0.3 % securities transaction tax on sells (0.15 % for day
#: trades); crypto: a typical 0.1 % taker fee per side; ``none`` for sanity checks.
COST_PRESETS: Final[dict[str, CostModel]] = {
    "taiwan": CostModel("taiwan", 0.001425, 0.001425, 0.003),
    "taiwan-daytrade": CostModel("taiwan-daytrade", 0.001425, 0.001425, 0.0015),
    "crypto": CostModel("crypto", 0.001, 0.001, 0.0),
    "none": CostModel("none", 0.0, 0.0, 0.0),
}


def cost_preset(name: str) -> CostModel:
    try:
        return COST_PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown cost preset {name!r}; choose one of {', '.join(COST_PRESETS)}") from None
