"""`tapewatch calibrate`: a venue's time-of-day baselines learnt over its own history, published as a versioned
artifact that the stream worker and `detect file` start new symbols from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tapewatch.commands.detect import Inputs, user_errors
from tapewatch.errors import TapewatchError
from tapewatch.settings import load_settings

console = Console()


def calibrate(
    inputs: Inputs,
    venue: Annotated[str, typer.Option(help="The venue calibrated: rows without one are this venue's")],
) -> None:
    """Replays the detectors over a venue's ticks (CSV or Parquet, at least two venue-local days) and publishes
    what each symbol's tape usually does at each time of day as ``calibration-<venue>`` in the model directory."""
    from detectors.calibration import calibrate
    from detectors.patterns import PatternParams
    from offline.lookback import detect_frames, read_input
    from tapewatch.artifacts import ArtifactStore

    settings = load_settings()
    profile = settings.feeds()(venue)
    with user_errors():
        with console.status("reading history…"):
            data = read_input(inputs, venue)
        other = sorted(set(data.frame["venue"].astype(str)) - {venue})
        if other:
            raise TapewatchError(f"calibrate: the input holds other venues too ({', '.join(other)}): one venue a run")
        offset = profile.utc_offset_min * 60_000
        sessions = int(((data.frame["ts"] + offset) // 86_400_000).nunique())
        with console.status(f"replaying {data.frame['symbol'].nunique()} symbol(s)…"):
            result = detect_frames(
                data,
                None,
                flow_config=settings.flow_config(),
                grace_ms=settings.stream_grace_ms,
                feeds=settings.feeds(),
            )
        calibration = calibrate(result.detectors, venue, profile.prints, sessions=sessions)
    params = PatternParams().for_feed(settings.flow_config(), profile).materiality
    materiality = {"floor_bps": params.floor_bps, "typical_multiple": params.typical_multiple}
    artifact = calibration.save(ArtifactStore(settings.models_path), {"materiality": materiality})
    learnt = sum(len(rows) for rows in calibration.symbols.values())
    console.print(
        f"calibration of {venue!r}: {len(calibration.symbols)} symbol(s) over {sessions} session(s), "
        f"{learnt} time-of-day baselines → {Path(artifact.path)}"
    )
