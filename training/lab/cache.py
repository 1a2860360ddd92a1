"""The signals lab's finished (window, seed) tasks on disk, so a long walk-forward survives a stop and resumes.

A task is every policy of one seed on one window: its metric rows, the forecasters' scores, the bar returns and
equity curves, training times, and the DQN's weights (the window's seed ensemble is rebuilt from them). It is
stored under a fingerprint of everything else that decides its outcome — the data, the costs, the DQN's
configuration and features, the forecaster families — and named by its window's dates and its seed, so changing
any of them starts afresh while a run over other years or more seeds reuses what it shares; changing the
*code* of a model does not change the fingerprint: delete the cache (or pass another ``--out``) after that.
Files: ``task.json`` and ``arrays.npz`` (numpy, loaded without pickle), written to a temporary folder and
renamed, so a task is either all there or not at all.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from tapewatch.signals.dqn.data import AssetSeries, data_fingerprint
from tapewatch.training.dqn.walkforward import Window

FORMAT: Final = 1
FloatArray = npt.NDArray[np.float64]
Key = tuple[str, int, int, str]  # (policy, window, seed, symbol)


@dataclass
class TaskOutput:
    """What one (window, seed) task adds to the lab's result."""

    rows: list[dict[str, object]]
    diagnostics: list[dict[str, object]]
    returns: dict[Key, FloatArray]
    equity: dict[Key, FloatArray]
    train_seconds: dict[str, list[float]]
    dqn_obs_dim: int
    dqn_weights: dict[str, npt.NDArray[Any]]
    machine: dict[str, str] = field(default_factory=dict)  # where it ran (:func:`tapewatch.machine.machine_info`)


def fingerprint(series: Sequence[AssetSeries], parts: Mapping[str, object]) -> str:
    """SHA-256 (16 hex digits) over the data and a JSON of ``parts`` (dataclasses as dicts, others by ``str``)."""

    def plain(value: object) -> object:
        return asdict(value) if is_dataclass(value) and not isinstance(value, type) else str(value)

    text = json.dumps({k: plain(v) for k, v in parts.items()}, sort_keys=True, default=str)
    return hashlib.sha256(f"{FORMAT}|{data_fingerprint(series)}|{text}".encode()).hexdigest()[:16]


def _array_key(kind: str, key: Key) -> str:
    return "|".join((kind, key[0], str(key[1]), str(key[2]), key[3]))


class TaskCache:
    """Finished tasks under ``root / fingerprint``."""

    def __init__(self, root: Path, print_: str) -> None:
        self.folder = Path(root) / print_

    def _path(self, window: Window, seed: int) -> Path:
        """Named by the window's dates, not its place in a run: a run over other years reuses what it shares."""
        return self.folder / f"{window.train_start}_{window.val_start}_{window.test_start}_{window.test_end}-s{seed}"

    def load(self, index: int, window: Window, seed: int) -> TaskOutput | None:
        """The stored task, its rows and arrays numbered as window ``index`` of this run."""
        path = self._path(window, seed)
        if not (path / "task.json").is_file():
            return None
        meta = json.loads((path / "task.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            return None
        returns: dict[Key, FloatArray] = {}
        equity: dict[Key, FloatArray] = {}
        weights: dict[str, npt.NDArray[Any]] = {}
        with np.load(io.BytesIO((path / "arrays.npz").read_bytes()), allow_pickle=False) as arrays:
            for name in arrays.files:
                kind, rest = name.split("|", 1)
                if kind == "dqn":
                    weights[rest] = arrays[name]
                    continue
                policy, _, s, symbol = rest.split("|")
                (returns if kind == "returns" else equity)[(policy, index, int(s), symbol)] = arrays[name]
        rows = [{**row, "window": index} for row in meta["rows"]]
        diagnostics = [{**row, "window": index} for row in meta["diagnostics"]]
        return TaskOutput(rows, diagnostics, returns, equity, meta["train_seconds"], int(meta["dqn_obs_dim"]),
                          weights, dict(meta.get("machine", {})))  # fmt: skip

    def save(self, window: Window, seed: int, task: TaskOutput) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, npt.NDArray[Any]] = {f"dqn|{k}": v for k, v in task.dqn_weights.items()}
        arrays.update({_array_key("returns", k): v for k, v in task.returns.items()})
        arrays.update({_array_key("equity", k): v for k, v in task.equity.items()})
        meta = {"format": FORMAT, "rows": task.rows, "diagnostics": task.diagnostics,
                "train_seconds": task.train_seconds, "dqn_obs_dim": task.dqn_obs_dim,
                "machine": task.machine}  # fmt: skip
        tmp = Path(tempfile.mkdtemp(prefix=".task.", dir=self.folder))
        try:
            (tmp / "task.json").write_text(json.dumps(meta, default=float), encoding="utf-8")
            buffer = io.BytesIO()
            savez: Any = np.savez  # numpy's stub types **kwds as its keyword options
            savez(buffer, **arrays)
            (tmp / "arrays.npz").write_bytes(buffer.getvalue())
            final = self._path(window, seed)
            if final.exists():
                shutil.rmtree(final)
            tmp.replace(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
