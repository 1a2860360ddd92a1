"""The CNN's configuration: image layout, labels, network, training and trading rule (recorded in the manifest).

>>> config = CnnConfig(epochs=5, rule_band=None)
>>> CnnConfig.from_manifest(config.to_manifest()) == config, config.to_manifest()["branch_channels"]
(True, [4, 8])
>>> CnnConfig(window=3)
Traceback (most recent call last):
...
ValueError: window must be at least 5 bars (the largest kernel), got 3
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from tapewatch.signals.cnn.images import DEFAULT_HORIZON, DEFAULT_WINDOW, IMAGE_FEATURES


@dataclass(frozen=True)
class CnnConfig:
    """Everything a trained CNN depends on besides its data.

    * image: ``features`` (its rows, in order) over the last ``window`` bars; label: the move over ``horizon``
      bars, classes at the training terciles (or at ``±threshold_sigma · std`` when set);
    * network: a stem ``stem_channels`` wide, one Inception module per entry of ``branch_channels`` (each
      branch that wide, so a module outputs four times it), ``dropout`` before the head;
    * training: Adam (``learning_rate``, ``weight_decay``), ``batch_size``, at most ``epochs``, early stop after
      ``patience`` epochs without a better validation balanced accuracy; ``seed``, ``threads``;
    * trading rule: ``rule_band`` ``None`` — long while the predicted class is *up*, flat once it is *down*,
      unchanged while *flat*; a number — :func:`~tapewatch.signals.forecast.rules.band_targets` on ``P(up) - P(down)``:
      long once it exceeds ``+band``, flat once it falls below ``-band``. The default band 0.2 was chosen on
      validation years only (2007, 2008, 2009 of the windows before the held-out test years, 6 packaged assets,
      0.1 %/side): mean Sharpe 0.59 against 0.17 for the class rule and 0.23 / 0.46 / 0.27 for bands 0 / 0.1 /
      0.3. The wider band trades rarely: a forecast must lean clearly one way to move the position.
    """

    features: tuple[str, ...] = IMAGE_FEATURES
    window: int = DEFAULT_WINDOW
    horizon: int = DEFAULT_HORIZON
    threshold_sigma: float | None = None
    stem_channels: int = 8
    branch_channels: tuple[int, ...] = (4, 8)
    dropout: float = 0.3
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    epochs: int = 30
    patience: int = 6
    rule_band: float | None = 0.2
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        if self.window < 5:
            raise ValueError(f"window must be at least 5 bars (the largest kernel), got {self.window}")
        if self.horizon < 1 or self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ValueError("horizon, epochs, batch_size and patience must be ≥ 1")
        if not self.branch_channels or min(self.branch_channels) < 1 or self.stem_channels < 1:
            raise ValueError("the network needs a stem and at least one Inception module, all ≥ 1 channel wide")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be within [0, 1)")
        if not self.features:
            raise ValueError("select at least one feature")

    def to_manifest(self) -> dict[str, Any]:
        data = asdict(self)
        data["features"] = list(self.features)
        data["branch_channels"] = list(self.branch_channels)
        return data

    @classmethod
    def from_manifest(cls, data: Mapping[str, Any]) -> CnnConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["features"] = tuple(str(n) for n in known.get("features", IMAGE_FEATURES))
        known["branch_channels"] = tuple(int(c) for c in known.get("branch_channels", (4, 8)))
        return cls(**known)
