"""What the stream worker keeps and sends for a Double-DQN decision, without torch: the request of one symbol at one
bar close, the decision, and the position kept in the worker's table (:class:`PositionState`, JSON, versioned).

The policy that decides is :class:`tapewatch.signals.dqn.inference.DqnPolicy` (torch, the ``signals`` extra); the
worker's state and its records need only this module, so a worker without the extra still restores and writes its table.

>>> state = PositionState.from_state(PositionState(1, "v1", 60_000).to_state())
>>> state.position, state.after(Decision("2330", "SELL", "SELL", {}, 0, "v2"), ts=120_000)
(1, PositionState(position=0, model_version='v2', last_ts=120000))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from tapewatch.state_versions import StateVersions

#: the DQN's name in the artifact store
MODEL_NAME: Final = "dqn"
#: the position's state versions (one so far: no steps)
POSITION_STATE: Final = StateVersions("position state")
POSITION_STATE_VERSION: Final = POSITION_STATE.current


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """One symbol at one bar close: its feature values (by name), its position, and (intraday) the bar end."""

    symbol: str
    features: Mapping[str, float | None]
    position: int
    bar_end_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    symbol: str
    action: str  # what is done: a forced flat at the close shows as SELL
    chosen: str  # the greedy action of the network
    q_values: dict[str, float]
    position: int  # after the action
    model_version: str

    def to_action(self, ts: int, venue: str) -> Any:
        """The ``signals.actions`` record (:class:`tapewatch.records.Action`)."""
        from tapewatch.records import Action

        return Action(
            symbol=self.symbol,
            venue=venue,
            ts=ts,
            action=self.action,  # type: ignore[arg-type]
            q_values=self.q_values,
            position=self.position,
            model_version=self.model_version,
        )


@dataclass(frozen=True, slots=True)
class PositionState:
    """Per-symbol position kept in the worker's table (JSON-safe, versioned)."""

    position: int = 0
    model_version: str | None = None
    last_ts: int | None = None

    def after(self, decision: Decision, ts: int | None = None) -> PositionState:
        return PositionState(decision.position, decision.model_version, ts)

    def to_state(self) -> dict[str, Any]:
        return {
            "v": POSITION_STATE_VERSION,
            "position": self.position,
            "model_version": self.model_version,
            "last_ts": self.last_ts,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> PositionState:
        state = POSITION_STATE.upgrade(state)
        position = state.get("position")
        if not isinstance(position, int) or position < 0:
            raise ValueError(f"position state: bad position {position!r}")
        return cls(position, state.get("model_version"), state.get("last_ts"))
