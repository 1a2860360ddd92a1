"""Evaluation: matching rule, per-kind metrics, delays, false alerts on clean symbols, AUC, report, charts."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tapewatch.evaluation.judge import (
    alerts_frame,
    collapse,
    evaluate,
    kind_metrics,
    markdown_report,
    plot_f1,
    plot_symbol,
    read_alerts,
    read_truth,
    score_auc,
)
from tapewatch.records import Alert, AlertKind, Severity, alert_id

TRUTH = pd.DataFrame(
    {
        "symbol": ["A", "A", "B"],
        "kind": ["spoofing", "pump_and_dump", "spoofing"],
        "start": [100_000, 1_000_000, 200_000],
        "end": [160_000, 1_600_000, 260_000],
    }
)


def _alert(symbol: str, kind: AlertKind, start: int, end: int, ts: int, severity: Severity = Severity.LOW) -> Alert:
    return Alert(
        alert_id=alert_id(symbol, str(kind), start),
        symbol=symbol,
        venue="sim",
        ts=ts,
        kind=kind,
        severity=severity,
        score=0.6,
        window_start=start,
        window_end=end,
        model_version="t",
    )


def test_matching_precision_recall_delay() -> None:
    alerts = alerts_frame(
        [
            _alert("A", AlertKind.SPOOFING, 110_000, 115_000, 115_000),  # hit, delay 15 s
            _alert("A", AlertKind.SPOOFING, 110_000, 150_000, 150_000, Severity.HIGH),  # same id, later: ignored
            _alert("A", AlertKind.SPOOFING, 185_000, 190_000, 190_000),  # within the 30 s tolerance: hit
            _alert("B", AlertKind.SPOOFING, 900_000, 905_000, 905_000),  # false
            _alert("C", AlertKind.SPOOFING, 10_000, 15_000, 15_000),  # false, clean symbol
        ]
    )
    collapsed = collapse(alerts)
    assert len(collapsed) == 4
    spoof = kind_metrics(TRUTH, collapsed[collapsed["kind"] == "spoofing"].reset_index(drop=True), "spoofing")
    assert (spoof.episodes, spoof.detected, spoof.alerts, spoof.true_alerts) == (2, 1, 4, 2)
    assert spoof.precision == pytest.approx(0.5)
    assert spoof.recall == pytest.approx(0.5)
    assert spoof.f1 == pytest.approx(0.5)
    assert spoof.delay_median_s == pytest.approx(15.0)
    result = evaluate(TRUTH, alerts, universe=["A", "B", "C", "D"], sessions=2)
    assert result.clean_symbols == 2
    assert result.false_alerts_per_symbol_day == pytest.approx(1 / 4)
    pump = next(m for m in result.kinds if m.kind == "pump_and_dump")
    assert pump.recall == 0.0
    assert pump.precision == 0.0
    wash = next(m for m in result.kinds if m.kind == "wash_trading")
    assert math.isnan(wash.recall)


def test_baseline_alerts_count_for_every_kind() -> None:
    base = alerts_frame([_alert("A", AlertKind.KMEANS_OUTLIER, 1_200_000, 1_260_000, 1_260_000)])
    result = evaluate(TRUTH, base.iloc[:0], universe=["A", "B"], baseline_alerts=base)
    by_kind = {m.kind: m for m in result.baseline}
    assert by_kind["pump_and_dump"].recall == 1.0
    assert by_kind["spoofing"].recall == 0.0


def test_score_auc_orders_positive_bars() -> None:
    starts = np.arange(0, 3_000_000, 60_000)
    bars = pd.DataFrame({"symbol": "A", "start": starts, "end": starts + 60_000})
    inside = ((starts + 60_000 > 1_000_000) & (starts <= 1_600_000)) | (
        (starts + 60_000 > 100_000) & (starts <= 160_000)
    )
    bars["score"] = np.where(inside, 0.9, 0.1)
    auc = score_auc(bars, TRUTH)
    assert auc["roc_auc"] == pytest.approx(1.0)
    bars["score"] = 1.0 - bars["score"]
    assert score_auc(bars, TRUTH)["roc_auc"] == pytest.approx(0.0)


def test_files_report_and_charts(tmp_path: Path) -> None:
    alerts = [_alert("A", AlertKind.SPOOFING, 110_000, 115_000, 115_000)]
    path = tmp_path / "alerts.jsonl"
    path.write_bytes(b"\n".join(a.to_json() for a in alerts) + b"\n")
    frame = read_alerts(path)
    assert frame["alert_id"].tolist() == [alerts[0].alert_id]
    TRUTH.to_csv(tmp_path / "episodes.csv", index=False)
    truth = read_truth(tmp_path / "episodes.csv")
    result = evaluate(truth, frame, universe=["A", "B", "C"])
    report = markdown_report(result, charts=["f1.png"])
    assert "| spoofing | 2 | 1 | 1 | 1.000 | 0.500 | 0.667 |" in report
    prices = pd.DataFrame({"ts": np.arange(0, 2_000_000, 1000), "price": 10.0})
    assert plot_symbol(tmp_path / "A.png", "A", prices, truth, frame).stat().st_size > 1000
    assert plot_f1(tmp_path / "f1.png", result).stat().st_size > 1000
    (tmp_path / "bad.jsonl").write_text('{"alert_id": 1}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1"):
        read_alerts(tmp_path / "bad.jsonl")
    (tmp_path / "bad.csv").write_text("symbol,kind\nA,spoofing\n")
    with pytest.raises(ValueError, match="lacks column"):
        read_truth(tmp_path / "bad.csv")
