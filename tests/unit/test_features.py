"""Bar features: hand-checked values, warm-up, state round trips, and the fold against the vectorised twin."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapewatch.detectors.bars import MINUTE_MS, pct_change
from tapewatch.detectors.features import (
    FEATURE_NAMES,
    FEATURE_SET_VERSION,
    FeatureState,
    compute_frame,
    compute_frame_vectorised,
    iter_features,
    to_values,
)
from tapewatch.records import Bar, Features

T0 = 1_763_700_000_000 - 1_763_700_000_000 % MINUTE_MS
REL, ABS = 1e-9, 1e-12


def frame(
    closes: Sequence[float],
    volumes: Sequence[float] | None = None,
    *,
    highs: Sequence[float] | None = None,
    lows: Sequence[float] | None = None,
    gaps: Sequence[int] | None = None,
) -> pd.DataFrame:
    """A one-symbol bars frame; high/low default to the close, vwap to the close, gaps to 1 minute."""
    n = len(closes)
    vols = list(volumes) if volumes is not None else [1.0] * n
    steps = list(gaps) if gaps is not None else [1] * n
    starts = [T0 + MINUTE_MS * s for s in np.cumsum(steps).tolist()]
    pcp = [pct_change(c, closes[i - 1] if i else None) for i, c in enumerate(closes)]
    vcp = [pct_change(v, vols[i - 1] if i else None) for i, v in enumerate(vols)]
    return pd.DataFrame(
        {
            "symbol": "AAA",
            "start": starts,
            "open": list(closes),
            "high": list(highs) if highs is not None else list(closes),
            "low": list(lows) if lows is not None else list(closes),
            "close": list(closes),
            "volume": vols,
            "vwap": list(closes),
            "trades": 1,
            "price_change_pct": [np.nan if p is None else p for p in pcp],
            "volume_change_pct": [np.nan if p is None else p for p in vcp],
        }
    )


def _none(value: float) -> float | None:
    return None if math.isnan(value) else value


def run(closes: Sequence[float], **kwargs: object) -> list[dict[str, float | None]]:
    return list(iter_features(frame(closes, **kwargs)))  # type: ignore[arg-type]


def assert_frames_close(fold: pd.DataFrame, vec: pd.DataFrame) -> None:
    assert list(fold.columns) == list(vec.columns) == list(FEATURE_NAMES)
    for name in FEATURE_NAMES:
        a, b = fold[name].to_numpy(), vec[name].to_numpy()
        assert np.array_equal(np.isnan(a), np.isnan(b)), f"{name}: warm-up/None differs\n{a}\n{b}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if not math.isnan(x):
                assert math.isclose(x, y, rel_tol=REL, abs_tol=ABS), f"{name}[{i}]: fold {x!r} != vectorised {y!r}"


# -- hand-checked values ------------------------------------------------------------------------------------
def test_names_are_unique_and_versioned() -> None:
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert FEATURE_SET_VERSION


def test_rsi_wilder_on_a_known_series() -> None:
    closes = [10.0]
    for i in range(14):  # 7 rises of 1, 7 falls of 1
        closes.append(closes[-1] + (1.0 if i % 2 == 0 else -1.0))
    closes.append(closes[-1] + 2.0)
    out = run(closes)
    assert all(row["rsi_14"] is None for row in out[:14])
    assert out[14]["rsi_14"] == pytest.approx(50.0)  # avg gain 0.5, avg loss 0.5
    gain, loss = (0.5 * 13 + 2.0) / 14, (0.5 * 13) / 14
    assert out[15]["rsi_14"] == pytest.approx(100 * gain / (gain + loss))  # 56.67


def test_rsi_flat_is_50_and_only_rises_is_100() -> None:
    assert run([5.0] * 20)[-1]["rsi_14"] == 50.0
    assert run([float(i) for i in range(1, 21)])[-1]["rsi_14"] == 100.0


def test_kd_starts_at_50() -> None:
    closes = [10.0, 11.0, 12.0, 11.0, 10.0, 9.0, 10.0, 11.0, 13.0, 12.0]
    out = run(closes, highs=[c + 0.5 for c in closes], lows=[c - 0.5 for c in closes])
    assert all(row["kd_k"] is None and row["kd_d"] is None for row in out[:8])
    rsv = 100 * (13.0 - 8.5) / (13.5 - 8.5)  # 90
    k = 2 / 3 * 50 + rsv / 3
    d = 2 / 3 * 50 + k / 3
    assert out[8]["kd_k"] == pytest.approx(k)
    assert out[8]["kd_d"] == pytest.approx(d)
    rsv2 = 100 * (12.0 - 8.5) / (13.5 - 8.5)
    k2 = 2 / 3 * k + rsv2 / 3
    assert out[9]["kd_k"] == pytest.approx(k2)
    assert out[9]["kd_d"] == pytest.approx(2 / 3 * d + k2 / 3)


def test_kd_flat_window_is_rsv_50() -> None:
    out = run([7.0] * 12)
    assert out[8]["kd_k"] == pytest.approx(50.0)
    assert out[-1]["kd_d"] == pytest.approx(50.0)


def test_ema_recursion() -> None:
    closes = [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]
    ema = closes[0]
    expected: list[float] = []
    for c in closes:
        ema = ema + (2 / 6) * (c - ema) if expected else c
        expected.append(c / ema - 1)
    out = run(closes)
    assert [row["ema_5"] for row in out[:4]] == [None] * 4
    assert out[4]["ema_5"] == pytest.approx(expected[4], rel=1e-12)
    assert out[5]["ema_5"] == pytest.approx(expected[5], rel=1e-12)
    assert out[4]["ema_5"] == pytest.approx(14 / 12.395061728395062 - 1, rel=1e-12)


def test_bias_and_returns() -> None:
    out = run([10.0, 10.0, 13.0, 13.0])
    assert out[1]["bias_3"] is None
    assert out[2]["bias_3"] == pytest.approx((13 - 11) / 11)
    assert out[3]["bias_3"] == pytest.approx((13 - 12) / 12)
    assert out[2]["ret_1"] == pytest.approx(math.log(1.3))
    assert out[3]["ret_3"] == pytest.approx(math.log(1.3))
    assert out[0]["ret_1"] is None and out[2]["ret_3"] is None


def test_volume_zscore_against_previous_bars() -> None:
    volumes = [1.0, 3.0] * 15 + [5.0]
    out = run([10.0] * 31, volumes=volumes)
    assert all(row["volume_z_30"] is None for row in out[:30])
    assert out[30]["volume_z_30"] == pytest.approx(3.0)  # mean 2, std 1


def test_flat_series_gives_no_nan() -> None:
    out = run([10.0] * 70, volumes=[0.0] * 70)
    last = out[-1]
    assert last["volume_z_30"] is None  # flat baseline: z undefined
    assert last["boll_pctb_20"] is None
    assert last["boll_width_20"] == 0.0
    assert last["rvol_30"] == 0.0
    assert last["bias_25"] == 0.0
    assert last["close_rank_10"] == 0.5
    assert last["up_ratio_10"] == 0.0
    assert last["macd_hist"] == pytest.approx(0.0, abs=1e-15)
    for row in out:
        assert all(v is None or math.isfinite(v) for v in row.values())


def test_warm_up_nones_then_everything_present() -> None:
    closes = [100.0 + math.sin(i) for i in range(80)]
    out = run(closes, volumes=[float(1 + i % 7) for i in range(80)])
    assert out[0]["ret_1"] is None and out[0]["vwap_dev"] == 0.0
    first_full = next(i for i, row in enumerate(out) if all(v is not None for v in row.values()))
    assert first_full == 60  # ret_60 is the last to warm up
    assert out[32]["macd_dea"] is None and out[33]["macd_dea"] is not None
    assert out[24]["macd_dif"] is None and out[25]["macd_dif"] is not None


def test_bar_record_path_equals_frame_fold_and_fits_features_record() -> None:
    df = frame([100.0 + (i % 5) - (i % 3) for i in range(40)], [float(i % 4) for i in range(40)])
    fs = FeatureState()
    streamed = []
    for row in df.to_dict("records"):
        fields: dict[str, Any] = {str(k): v for k, v in row.items()}
        fields.update(
            venue="test",
            end=fields["start"] + MINUTE_MS,
            price_change_pct=_none(fields["price_change_pct"]),
            volume_change_pct=_none(fields["volume_change_pct"]),
        )
        bar = Bar.model_validate(fields)
        streamed.append(fs.on_bar(bar))
    assert streamed == list(iter_features(df))
    batch = compute_frame(df)
    assert [to_values(cast(dict[str, float], r)) for r in batch.to_dict("records")] == streamed
    record = Features(symbol="AAA", venue="test", ts=T0, values=streamed[-1], version=FEATURE_SET_VERSION)
    assert json.loads(record.model_dump_json())["values"]["rsi_14"] == streamed[-1]["rsi_14"]


def test_frame_checks() -> None:
    df = frame([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="sorted"):
        compute_frame(df.iloc[::-1])
    with pytest.raises(ValueError, match="lacks"):
        compute_frame(df.drop(columns=["vwap"]))
    assert compute_frame(df.iloc[:0]).shape == (0, len(FEATURE_NAMES))
    assert compute_frame_vectorised(df.iloc[:0]).shape == (0, len(FEATURE_NAMES))


def test_state_version_is_checked() -> None:
    state = FeatureState().to_state()
    with pytest.raises(ValueError, match="not supported"):
        FeatureState.from_state({**state, "features": "other"})


# -- state round trip ---------------------------------------------------------------------------------------
def _continue_after_round_trip(df: pd.DataFrame, split: int) -> None:
    full = list(iter_features(df))
    fs = FeatureState()
    head = list(iter_features(df.iloc[:split], fs))
    restored = FeatureState.from_state(json.loads(json.dumps(fs.to_state(), allow_nan=False)))
    assert restored.to_state() == fs.to_state()
    tail = list(iter_features(df.iloc[split:], restored))
    assert head + tail == full  # bit-identical continuation


@pytest.mark.parametrize("split", [0, 1, 9, 30, 61, 150, 299])
def test_state_round_trip_mid_series(split: int) -> None:
    rng = np.random.default_rng(7)
    closes = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300))), 2).tolist()
    _continue_after_round_trip(frame(closes, rng.integers(0, 1000, 300).astype(float).tolist()), split)


# -- the fold equals the vectorised twin --------------------------------------------------------------------
@st.composite
def bar_frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(0, 140))
    tick = draw(st.sampled_from([0.01, 0.5, 1e-4]))
    step = st.one_of(st.just(0), st.integers(-3, 3), st.integers(-500, 500))
    ticks = [draw(st.integers(1, 200_000))][:n]
    for _ in range(n - 1):
        ticks.append(max(1, ticks[-1] + draw(step)))
    closes = [t * tick for t in ticks]
    spread = st.one_of(st.just(0), st.integers(0, 20))
    highs = [c + draw(spread) * tick for c in closes]
    lows = [max(tick, c - draw(spread) * tick) for c in closes]
    volume = st.one_of(
        st.just(0.0),
        st.integers(0, 10**7).map(float),
        st.integers(0, 10**6).map(lambda k: k * 0.001),
        st.sampled_from([5.0, 5.0, 1e6]),
    )
    volumes = [draw(volume) for _ in range(n)]
    gaps = [draw(st.sampled_from([1, 1, 1, 2, 17])) for _ in range(n)]
    df = frame(closes, volumes, highs=highs, lows=lows, gaps=gaps)
    if n:
        df["vwap"] = [
            lo + (hi - lo) * draw(st.sampled_from([0.0, 0.3, 1.0])) for hi, lo in zip(highs, lows, strict=True)
        ]
    return df


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(bar_frames())
def test_fold_equals_vectorised(df: pd.DataFrame) -> None:
    assert_frames_close(compute_frame(df), compute_frame_vectorised(df))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(bar_frames(), st.data())
def test_round_trip_at_any_split(df: pd.DataFrame, data: st.DataObject) -> None:
    _continue_after_round_trip(df, data.draw(st.integers(0, len(df))))


def test_long_series_does_not_drift() -> None:
    rng = np.random.default_rng(11)
    n = 5000
    closes = np.round(50 * np.exp(np.cumsum(rng.normal(0, 0.004, n))), 2)
    closes[2000:2100] = closes[2000]  # a flat stretch after a long history
    volumes = rng.gamma(0.5, 3000, n).round(3)
    volumes[3000:3100] = 0.0
    assert_frames_close(
        compute_frame(frame(closes.tolist(), volumes.tolist())),
        compute_frame_vectorised(frame(closes.tolist(), volumes.tolist())),
    )
