"""Live inference for the stream worker: load a versioned model, decide for a batch of symbols, hot-reload.

Typical use in a worker (pure computation; the worker owns Kafka and the state table)::

    policy = DqnPolicy.load(settings.local.models_path)                # "latest"; ModelError if unusable
    out = policy.decide([DecisionRequest("2330", features.values, state.position, bar_end_ms=bar.end)])
    for item in out:
        if isinstance(item, Rejected): dead-letter(item.reason)  # missing/NaN feature, bad position …
        else: state = state.after(item); emit(item.to_action(ts=bar.end, venue=bar.venue))
    if policy.newer_version(): policy = DqnPolicy.load(settings.local.models_path)   # cheap directory listing

Artifacts live in ``<models_path>/dqn/<version>/`` (:mod:`tapewatch.artifacts`): ``weights.npz`` (the torch
state dict as numpy arrays, loaded without pickle) and ``manifest.json`` (features, feature-set version,
normalisation, network config, mode, costs, training range, data hash, metrics). An ensemble model
(``"ensemble": k`` in the manifest, ``k > 1``) stores its ``k`` networks' weights under ``members.<i>.`` in the
one ``weights.npz``, and ``decide`` acts on the mean of their Q-values; a manifest without the key is one network
(artifacts from before ensembles load unchanged).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import torch

from tapewatch.artifacts import LATEST, Artifact, ArtifactStore
from tapewatch.detectors.features import FEATURE_SET_VERSION
from tapewatch.signals.dqn.agent import AgentConfig, EnsembleQNetwork, QNetwork, TrainResult, network_from_weights
from tapewatch.signals.dqn.costs import CostModel
from tapewatch.signals.dqn.data import Normaliser
from tapewatch.signals.dqn.decisions import MODEL_NAME, Decision, DecisionRequest, PositionState
from tapewatch.signals.dqn.env import ACTION_NAMES, executed, next_position, observation_width, observations
from tapewatch.signals.fixed_shape import fixed_shape_forward, serving_rows
from tapewatch.signals.forecast.contract import ModelError, Rejected
from tapewatch.signals.manifest import (
    check_feature_list,
    check_features,
    fitting_weights,
    load_artifact,
    manifest_fields,
)

__all__ = [
    "MODEL_NAME",
    "Decision",
    "DecisionRequest",
    "DqnPolicy",
    "ModelError",
    "PositionState",
    "Rejected",
    "SessionClock",
]

MODEL_KIND: Final = "dqn"


@dataclass(frozen=True, slots=True)
class SessionClock:
    """An exchange session (default: TWSE 09:00–13:30 Asia/Taipei) for the intraday time-to-close feature.

    >>> def taipei(hour: int, minute: int) -> int:
    ...     return int(datetime(2024, 1, 2, hour, minute, tzinfo=ZoneInfo("Asia/Taipei")).timestamp() * 1000)
    >>> clock = SessionClock()
    >>> clock.time_to_close(taipei(11, 15)), clock.at_close(taipei(13, 29)), clock.at_close(taipei(13, 30))
    (0.5, False, True)
    """

    open: time = time(9, 0)
    minutes: float = 270.0
    tz: str = "Asia/Taipei"

    def _bounds(self, ts_ms: int) -> tuple[float, float]:
        local = datetime.fromtimestamp(ts_ms / 1000, tz=UTC).astimezone(ZoneInfo(self.tz))
        start = datetime.combine(local.date(), self.open, tzinfo=ZoneInfo(self.tz)).timestamp() * 1000
        return start, start + self.minutes * 60_000

    def time_to_close(self, bar_end_ms: int) -> float:
        """Remaining fraction of the session after a bar ending at ``bar_end_ms`` (as in training)."""
        start, end = self._bounds(bar_end_ms)
        return min(1.0, max(0.0, (end - bar_end_ms) / (end - start)))

    def at_close(self, bar_end_ms: int) -> bool:
        """Is this the session's last bar (it ends at or after the close)? Intraday models must go flat."""
        return bar_end_ms >= self._bounds(bar_end_ms)[1]


def save_model(
    models_path: Path,
    result: TrainResult,
    *,
    config: AgentConfig,
    normaliser: Normaliser,
    costs: CostModel,
    max_units: int,
    intraday: bool,
    training: Mapping[str, Any],
    data_hash: str,
    session: SessionClock | None = None,
) -> Artifact:
    """Publish a trained agent as a new version under ``<models_path>/dqn/``.

    Raises ``ValueError`` when the weights are not those of ``config``'s network (e.g. one network's weights
    under a config that says ``ensemble = 5``): an artifact that cannot load is never published.
    """
    try:
        network_from_weights(result.obs_dim, config, result.weights)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"the weights do not fit the configured network ({str(exc).splitlines()[0]})") from None
    manifest = {
        "kind": MODEL_KIND,
        "feature_names": list(normaliser.feature_names),
        "feature_set_version": FEATURE_SET_VERSION,
        "normalisation": normaliser.to_manifest(),
        "agent": config.to_manifest(),
        "ensemble": config.ensemble,
        "obs_dim": result.obs_dim,
        "actions": list(ACTION_NAMES),
        "mode": "intraday" if intraday else "daily",
        "session": None
        if not intraday
        else {
            "open": (session or SessionClock()).open.isoformat(),
            "minutes": (session or SessionClock()).minutes,
            "tz": (session or SessionClock()).tz,
        },
        "max_units": max_units,
        "costs": {"preset": costs.name, "buy_rate": costs.buy_rate, "sell_rate": costs.sell_rate},
        "training": dict(training),
        "metrics": {
            "best_val_sharpe": result.best_val_sharpe,
            "best_step": result.best_step,
            "steps": result.steps,
            "episodes": result.episodes,
            "train_seconds": round(result.seconds, 2),
            "stopped_early": result.stopped_early,
        },
    }
    return ArtifactStore(models_path).save(MODEL_NAME, manifest, result.weights, hash_hex=data_hash)


class DqnPolicy:
    """A loaded model: CPU inference (``torch.no_grad``) for many symbols, one forward pass per row.

    A model whose network always prefers BUY, published and loaded back; one batch decides three symbols: one
    flat (it buys), one already at the limit (BUY is done as HOLD), one whose feature is missing (rejected,
    to be dead-lettered, without holding up the others):

    >>> import tempfile
    >>> from tapewatch.signals.dqn.agent import network_weights
    >>> from tapewatch.signals.dqn.costs import cost_preset
    >>> config = AgentConfig(hidden=(4,), ensemble=1)
    >>> network = QNetwork(obs_dim=2, hidden=config.hidden, dueling=True)
    >>> with torch.no_grad():
    ...     for parameter in network.parameters():
    ...         _ = parameter.zero_()
    ...     _ = network.advantage.bias.copy_(torch.tensor([0.0, 1.0, -1.0]))  # HOLD, BUY, SELL
    >>> result = TrainResult(network_weights(network), obs_dim=2, best_val_sharpe=1.0, best_step=10, steps=10,
    ...                      episodes=1, seconds=0.0, stopped_early=False)
    >>> models = tempfile.TemporaryDirectory()
    >>> artifact = save_model(Path(models.name), result, config=config,
    ...                       normaliser=Normaliser(("ret_1",), np.zeros(1), np.ones(1)), costs=cost_preset("taiwan"),
    ...                       max_units=1, intraday=False, training={}, data_hash="0" * 64)
    >>> policy = DqnPolicy.load(Path(models.name))
    >>> policy.version == artifact.version, policy.newer_version()
    (True, None)
    >>> bought, held, rejected = policy.decide([
    ...     DecisionRequest("2330", {"ret_1": 0.01}, position=0),
    ...     DecisionRequest("2317", {"ret_1": -0.02}, position=1),
    ...     DecisionRequest("2454", {"ret_1": None}, position=0),
    ... ])
    >>> bought.action, bought.position, bought.q_values
    ('BUY', 1, {'HOLD': 0.0, 'BUY': 1.0, 'SELL': -1.0})
    >>> held.action, held.chosen, held.position
    ('HOLD', 'BUY', 1)
    >>> rejected
    Rejected(symbol='2454', reason='missing feature ret_1')
    >>> state = PositionState().after(bought, ts=60_000)
    >>> state.position, state.model_version == policy.version
    (1, True)
    >>> models.cleanup()
    """

    def __init__(self, artifact: Artifact, store: ArtifactStore) -> None:
        m = artifact.manifest
        self.store = store
        self.version = artifact.version
        self.manifest = m
        with manifest_fields(MODEL_NAME, self.version):
            self.feature_names: tuple[str, ...] = tuple(str(n) for n in m["feature_names"])
            self.normaliser = Normaliser.from_manifest(m["normalisation"])
            self.config = AgentConfig.from_manifest({**m["agent"], "ensemble": int(m.get("ensemble", 1))})
            self.max_units = int(m["max_units"])
            self.intraday = m["mode"] == "intraday"
            obs_dim = int(m["obs_dim"])
        check_feature_list(MODEL_NAME, self.version, self.feature_names, self.normaliser.feature_names)
        if obs_dim != observation_width(len(self.feature_names), self.intraday):
            raise ModelError(f"dqn {self.version}: obs_dim {obs_dim} does not match the features and mode")
        session = m.get("session") or {}
        self.session = SessionClock(
            time.fromisoformat(session.get("open", "09:00:00")),
            float(session.get("minutes", 270.0)),
            str(session.get("tz", "Asia/Taipei")),
        )
        with fitting_weights(MODEL_NAME, self.version):
            self.network: QNetwork | EnsembleQNetwork = network_from_weights(obs_dim, self.config, artifact.weights)
        self.serving_rows = serving_rows(self.network, (obs_dim,), f"dqn {self.version}")

    @classmethod
    def load(cls, models_path: Path, version: str = LATEST) -> DqnPolicy:
        """Load ``version`` (default the newest) and validate it against this code's feature set."""
        return cls(*load_artifact(models_path, MODEL_NAME, MODEL_KIND, version))

    def newer_version(self) -> str | None:
        """The newest published version when it is not the loaded one (a directory listing: poll freely)."""
        return self.store.has_newer(MODEL_NAME, self.version)

    def check_features(self, feature_set_version: str, names: Sequence[str]) -> None:
        """Raise :class:`ModelError` unless a feature stream of this version and these names can feed the model."""
        check_features(MODEL_NAME, self.version, self.manifest, feature_set_version, names)

    def _row(self, request: DecisionRequest) -> tuple[list[float], float | None] | str:
        values: list[float] = []
        for name in self.feature_names:
            value = request.features.get(name)
            if value is None:
                return f"missing feature {name}"
            if not isinstance(value, int | float) or not math.isfinite(value):
                return f"feature {name} is not a finite number ({value!r})"
            values.append(float(value))
        if not isinstance(request.position, int) or not 0 <= request.position <= self.max_units:
            return f"position {request.position!r} outside 0..{self.max_units}"
        ttc: float | None = None
        if self.intraday:
            if request.bar_end_ms is None:
                return "an intraday model needs bar_end_ms (time to close)"
            ttc = self.session.time_to_close(request.bar_end_ms)
        return values, ttc

    def _fast_rows(self, requests: Sequence[DecisionRequest]) -> npt.NDArray[np.float64] | None:
        """All feature rows at once (missing/None → NaN); ``None`` when some value is not a number at all."""
        names = self.feature_names
        try:
            return np.array([[r.features.get(n) for n in names] for r in requests], dtype=np.float64).reshape(
                len(requests), len(names)
            )
        except (TypeError, ValueError):
            return None

    def _q_values(self, obs: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Q-values of each observation row, in passes of one fixed shape: a row's values do not depend on the
        other rows of the batch (:mod:`tapewatch.signals.fixed_shape`)."""
        return fixed_shape_forward(self.network, torch.from_numpy(obs), self.serving_rows).numpy()

    def decide(self, requests: Sequence[DecisionRequest]) -> list[Decision | Rejected]:
        """One decision (or rejection) per request, in order; each as if decided alone (:meth:`_q_values`).

        The common case (every row complete) is validated vectorised; rows that fail get the per-row check,
        which names the culprit for the dead letter.
        """
        out: list[Decision | Rejected | None] = [None] * len(requests)
        raw = self._fast_rows(requests)
        positions = np.fromiter(
            (r.position if isinstance(r.position, int) else -1 for r in requests), dtype=np.int64, count=len(requests)
        )
        ok = (positions >= 0) & (positions <= self.max_units)
        if raw is not None:
            ok &= np.isfinite(raw).all(axis=1)
        else:
            ok[:] = False
        if self.intraday:
            ok &= np.fromiter((r.bar_end_ms is not None for r in requests), dtype=bool, count=len(requests))
        good = np.flatnonzero(ok).tolist()
        for i in np.flatnonzero(~ok).tolist():
            parsed = self._row(requests[i])
            if isinstance(parsed, str):
                out[i] = Rejected(requests[i].symbol, parsed)
            else:  # not a number for numpy, yet fine one by one (e.g. a Decimal): decide it too
                good.append(i)
        if good:
            good.sort()
            if raw is None:
                raw = np.zeros((len(requests), len(self.feature_names)))
                for i in good:
                    raw[i] = [float(requests[i].features[n]) for n in self.feature_names]  # type: ignore[arg-type]
            ttc = None
            ends: list[int] = []
            if self.intraday:
                ends = [int(requests[i].bar_end_ms) for i in good]  # type: ignore[arg-type]
                ttc = [self.session.time_to_close(e) for e in ends]
            obs = observations(self.normaliser.transform(raw[good]), positions[good], self.max_units, ttc)
            q = self._q_values(obs)
            chosen = q.argmax(axis=1).tolist()
            q_rows = q.tolist()
            version = self.version
            for j, i in enumerate(good):
                request = requests[i]
                at_close = self.intraday and self.session.at_close(ends[j])
                after = next_position(request.position, chosen[j], self.max_units, at_close=at_close)
                out[i] = Decision(
                    symbol=request.symbol,
                    action=ACTION_NAMES[executed(request.position, after)],
                    chosen=ACTION_NAMES[chosen[j]],
                    q_values=dict(zip(ACTION_NAMES, q_rows[j], strict=True)),
                    position=after,
                    model_version=version,
                )
        return [item for item in out if item is not None]


def training_range(windows: Mapping[str, tuple[date | str | None, date | str | None]]) -> dict[str, Any]:
    """Manifest form of the training/validation date ranges."""
    return {name: [None if a is None else str(a), None if b is None else str(b)] for name, (a, b) in windows.items()}
