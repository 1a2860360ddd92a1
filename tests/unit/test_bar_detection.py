"""The pattern detectors on 1-minute bars alone (tapewatch.evaluation.lookback over a bar input): a blatant pump is
found, a news repricing and a quiet day are not alerted, and what could not run is said."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tapewatch.evaluation.lookback import Input, coverage, detect_frames
from tapewatch.records import Alert, AlertKind, Severity
from tapewatch.settings import get_settings

MINUTE = 60_000
#: 09:00 Taipei on 2024-01-02 (the simulator's venue: a session to 13:30)
OPEN = 1_704_157_200_000
SESSION = 270


def _session(seed: int, sigma_bps: float = 15.0) -> pd.DataFrame:
    """One symbol's 1-minute bars over a session: a random walk, a U-shaped volume."""
    rng = np.random.default_rng(seed)
    rets = rng.normal(0.0, sigma_bps / 1e4, SESSION)
    close = 50.0 * np.exp(np.cumsum(rets))
    minutes = np.arange(SESSION)
    volume = 2_000.0 * (1.0 + 2.0 * ((minutes - SESSION / 2) / (SESSION / 2)) ** 2) * rng.lognormal(0.0, 0.3, SESSION)
    return pd.DataFrame({"start": OPEN + minutes * MINUTE, "close": close, "volume": volume.round()})


def _bars(frames: dict[str, pd.DataFrame]) -> Input:
    """Bars with an open at the previous close and a high and low a little beyond both."""
    rows = []
    for symbol, frame in frames.items():
        opened = frame["close"].shift(1).fillna(frame["close"].iloc[0])
        wick = 1.0005
        rows.append(
            frame.assign(
                symbol=symbol,
                venue="sim",
                open=opened,
                high=np.maximum(opened, frame["close"]) * wick,
                low=np.minimum(opened, frame["close"]) / wick,
            )
        )
    return Input("bars", pd.concat(rows, ignore_index=True))


def _pumped(frame: pd.DataFrame, at: int, rise: float, ramp: int, dump: int, volume_x: float) -> pd.DataFrame:
    """``rise`` (a share) walked up over ``ramp`` minutes on ``volume_x`` the volume, then sold back over ``dump``."""
    out = frame.copy()
    path = np.zeros(SESSION)
    up = np.linspace(0.0, np.log1p(rise), ramp + 1)[1:]
    path[at : at + ramp] = up
    path[at + ramp : at + ramp + dump] = np.linspace(np.log1p(rise), 0.0, dump + 1)[1:]
    out["close"] = out["close"] * np.exp(path)
    out.loc[at : at + ramp + dump - 1, "volume"] *= volume_x
    return out


@pytest.fixture(scope="module")
def quiet() -> dict[str, pd.DataFrame]:
    return {f"Q{i}": _session(i) for i in range(6)}


def test_a_blatant_pump_in_minute_bars_is_found(quiet: dict[str, pd.DataFrame]) -> None:
    """+15 % over 30 minutes on 10× the volume, then the dump: a high alert on that symbol, nothing elsewhere."""
    at = 120
    frames = {**quiet, "Q0": _pumped(quiet["Q0"], at, 0.15, 30, 10, 10.0)}
    out = detect_frames(_bars(frames))
    pumps = [a for a in out.alerts if a.kind is AlertKind.PUMP_AND_DUMP]
    assert {a.symbol for a in pumps} == {"Q0"}
    _only_low_closes(a for a in out.alerts if a.symbol != "Q0")
    assert {a.severity for a in pumps} & {Severity.HIGH, Severity.CRITICAL}  # the dump escalates the run-up
    first = min(a.ts for a in pumps)
    # every alert says what could not run on bars: its silence on those kinds is blindness, not a clean bill
    assert {a.evidence["not_run"] for a in out.alerts} == {
        "ignition, pump_crowd, pump_onset, pump_surge, spoofing, wash"
    }
    assert OPEN + at * MINUTE < first <= OPEN + (at + 30) * MINUTE  # on the ramp, before the dump


def test_a_news_repricing_is_no_pump(quiet: dict[str, pd.DataFrame]) -> None:
    """One minute carries +8 % on heavy volume and the price holds there: a jump, not a walk; nothing high."""
    news = quiet["Q1"].copy()
    news.loc[150:, "close"] *= 1.08
    news.loc[150:160, "volume"] *= 8.0
    out = detect_frames(_bars({**quiet, "Q1": news}))
    assert not [a for a in out.alerts if a.severity in (Severity.HIGH, Severity.CRITICAL)]
    assert not [a for a in out.alerts if a.kind is AlertKind.PUMP_AND_DUMP]


def _only_low_closes(alerts: Iterable[Alert]) -> None:
    """A random walk moves 2.5 σ into some closes (either way, the closing move's bar on every feed): at most a low
    marking-the-close alert there, never a pump nor anything above low."""
    for alert in alerts:
        assert alert.kind is AlertKind.MARKING_THE_CLOSE and alert.severity is Severity.LOW, alert


def test_quiet_bars_raise_nothing_above_low_and_say_what_could_not_run(quiet: dict[str, pd.DataFrame]) -> None:
    out = detect_frames(_bars(quiet))
    _only_low_closes(out.alerts)
    ran, missing = coverage(out)
    assert {"pump_ramp", "pump_dump", "closing", "bursts"} <= set(ran)
    assert missing["spoofing"] == {"books"} and missing["wash"] == {"prints"} and missing["pump_onset"] == {"prints"}


def test_detect_file_on_bars_says_what_did_not_run(
    quiet: dict[str, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tapewatch.cli.app import cli

    monkeypatch.setenv("TAPEWATCH_MODEL_DIR", str(tmp_path / "models"))
    get_settings.cache_clear()
    path = tmp_path / "bars.csv"
    frames = {**quiet, "Q0": _pumped(quiet["Q0"], 120, 0.15, 30, 10, 10.0)}
    _bars(frames).frame.drop(columns=["venue"]).to_csv(path, index=False)
    result = CliRunner().invoke(cli(), ["detect", "file", str(path), "--venue", "sim", "--out", str(tmp_path / "a")])
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # the console wraps at its width
    assert "not run: spoofing (needs books, which the input does not carry)" in said
    assert "not run: wash (needs prints, which the input does not carry)" in said
    assert "ran: bursts, closing, pump_dump, pump_ramp; no K-means (no model, or it refused the venue)" in said
    assert "pump_and_dump" in said.rsplit("alert(s)", 1)[1]


def test_a_pump_written_into_real_bars_is_found_and_the_real_days_stay_calm() -> None:
    """Four real US large caps over 19 sessions, with IBM pumped +15 % over 30 minutes on 10× its volume and dumped
    over 10 on one day: that pump is high or critical; nothing else on the tape is."""
    from tapewatch.producers.us_stock_bars import read_bars

    bars = read_bars().bars
    local = pd.to_datetime(bars["start"], unit="ms", utc=True).dt.tz_convert("America/New_York")
    day = bars["symbol"].eq("IBM") & (local.dt.date.astype(str) == "2023-01-17")
    at = bars.index[day & (local.dt.strftime("%H:%M") == "11:00")][0]
    path = np.zeros(len(bars))
    path[at : at + 30] = np.linspace(0.0, np.log(1.15), 31)[1:]
    path[at + 30 : at + 40] = np.linspace(np.log(1.15), 0.0, 11)[1:]
    pumped = bars.copy()
    for column in ("open", "high", "low", "close"):
        pumped[column] = pumped[column] * np.exp(path)
    pumped.loc[at : at + 39, "volume"] *= 10.0
    out = detect_frames(Input("bars", pumped))
    serious = [a for a in out.alerts if a.severity in (Severity.HIGH, Severity.CRITICAL)]
    begins, ends = int(bars.loc[at, "start"]), int(bars.loc[at + 40, "start"])
    assert serious and all(a.symbol == "IBM" and a.kind is AlertKind.PUMP_AND_DUMP for a in serious)
    assert all(begins - 10 * MINUTE <= a.window_start and a.ts <= ends + 10 * MINUTE for a in serious)
