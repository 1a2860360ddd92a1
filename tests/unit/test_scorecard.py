"""`tapewatch eval scorecard`: a small scorecard (both generators, two feed shapes, one seed, one real tape) whose
numbers may not fall below what this code scores: a regression fails here, an improvement raises a floor."""

from __future__ import annotations

import math
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from tapewatch.evaluation import real_tapes
from tapewatch.evaluation.judge import KindMetrics
from tapewatch.evaluation.news_effect import NewsEffect
from tapewatch.evaluation.scorecard import SEEN, FeedLine, KindLine, NewsLine, Scorecard, ScorecardSpec, f1_bar

#: (generator, feed, kind) → the F1 the small scorecard must reach (0: known not detected on this sample yet)
F1_FLOORS = {
    ("sim", "trades", "spoofing"): 1.0,
    ("sim", "trades", "marking_the_close"): 1.0,
    ("sim", "trades", "momentum_ignition"): 1.0,
    ("sim", "twse-mis", "spoofing"): 1.0,
    ("sim", "twse-mis", "marking_the_close"): 0.0,
    ("sim", "twse-mis", "momentum_ignition"): 0.5,
    ("lob", "trades", "pump_and_dump"): 0.0,
    ("lob", "trades", "spoofing"): 0.0,
    ("lob", "trades", "wash_trading"): 0.0,
    ("lob", "trades", "marking_the_close"): 1.0,
    ("lob", "twse-mis", "pump_and_dump"): 1.0,
    ("lob", "twse-mis", "spoofing"): 0.0,
    ("lob", "twse-mis", "wash_trading"): 0.0,
    ("lob", "twse-mis", "marking_the_close"): 1.0,
}
#: (generator, feed) → (false alerts of the manipulation kinds per clean symbol-day, of every kind, look-alikes
#: alerted): ceilings
FEED_CEILINGS = {
    ("sim", "trades"): (0.0, 0.0, 0),
    ("sim", "twse-mis"): (0.0, 0.0, 0),
    ("lob", "trades"): (0.0, 0.0, 1),
    ("lob", "twse-mis"): (0.0, 0.0, 0),
}


def test_the_small_scorecard_does_not_regress(tmp_path: Path) -> None:
    from tapewatch.cli.app import cli

    args = ["eval", "scorecard", "--seeds", "300", "--symbols", "6", "--minutes", "120", "--feeds", "trades,twse-mis"]
    result = CliRunner().invoke(cli(), [*args, "--tapes", "es-futures", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "scorecard.png").stat().st_size > 10_000
    card = orjson.loads((tmp_path / "scorecard.json").read_bytes())
    assert card["spec"]["generators"] == ["sim", "lob"] and card["versions"]["patterns"]
    f1 = {(k["generator"], k["feed"], k["kind"]): k["f1"] for k in card["kinds"]}
    assert set(f1) == set(F1_FLOORS), "the sample's episodes changed: review the floors"
    fallen = {key: (f1[key], floor) for key, floor in F1_FLOORS.items() if not f1[key] >= floor}
    assert not fallen, f"F1 below its floor (now, floor): {fallen}"
    for f in card["feeds"]:
        false_alerts, all_kinds, lookalikes = FEED_CEILINGS[(f["generator"], f["feed"])]
        assert f["false_alerts"] <= false_alerts and f["false_alerts_all"] <= all_kinds, f
        assert f["lookalikes_alerted"] <= lookalikes, f
    # beside the bars, what the news context does to every generator × feed's alerts
    news = {(n["generator"], n["feed"]): n["effect"] for n in card["news_context"]}
    assert set(news) == set(FEED_CEILINGS)
    for effect in news.values():
        assert effect["lookalike_medium_news"] <= effect["lookalike_medium"] <= effect["lookalike_alerts"]
        assert effect["pumps_demoted_below_medium"] <= effect["pumps_demoted"] <= effect["pump_episodes"]
        assert sum(effect["news_items"].values()) > 0
    assert "With the news context" in result.output
    [tape] = card["tapes"]
    assert tape["name"] == "es-futures" and tape["met"], tape
    assert card["met"]["judged"] == len(F1_FLOORS) + len(FEED_CEILINGS) + 1


def test_the_bars_are_the_desks() -> None:
    """F1 ≥ 0.85 on a trade feed (market-by-order included), ≥ 0.80 on snapshots, spoofing and wash ≥ 0.90 with a
    drop copy; ≤ 0.5 false alerts per clean symbol-day; ≤ 10 % of the look-alikes; a real tape at most one alert a
    session, none high or critical."""
    assert f1_bar("trades", "spoofing") == 0.85 and f1_bar("mbo", "spoofing") == 0.85
    assert f1_bar("twse-mis", "wash_trading") == 0.80 and f1_bar("snapshot-1s", "spoofing") == 0.80
    assert f1_bar("mbo+firm", "spoofing") == f1_bar("mbo+firm", "wash_trading") == 0.90
    assert f1_bar("mbo+firm", "pump_and_dump") == 0.85
    # 1-minute bars: pumps and closes at 0.80; the kinds bars cannot show are not judged there (and said so)
    assert f1_bar("bars-1m", "pump_and_dump") == f1_bar("bars-1m", "marking_the_close") == 0.80
    assert SEEN["bars-1m"] == {"pump_and_dump", "marking_the_close"} and "trades" not in SEEN
    kind = KindLine("lob", "twse-mis", "spoofing", 4, 1.0, 0.5, 0.667, 0.0, 0.8, False)
    clean = FeedLine("lob", "trades", 0.5, 2.0, 20, 2)
    noisy = FeedLine("lob", "trades", 0.5, 2.0, 20, 3)
    unlabelled = FeedLine("sim", "trades", 0.4, 1.0, 0, 0)
    assert clean.met and not noisy.met and unlabelled.met and math.isnan(unlabelled.lookalike_share)
    assert not FeedLine("sim", "trades", 0.51, 0.51, 0, 0).met
    tape = real_tapes.TapeResult("t", 10, 2, 2, {"price_burst": 2}, {"medium": 2})
    card = Scorecard([kind], [clean, noisy], [tape])
    assert card.bars == (2, 4)
    payload = orjson.loads(card.to_json())
    assert payload["met"] == {"met": 2, "judged": 4} and payload["feeds"][1]["met"] is False
    assert payload["news_context"] == []


def test_the_news_context_is_reported_beside_the_bars_and_judged_by_none() -> None:
    from tapewatch.cli.scorecard import news_table

    pumps = KindMetrics("pump_and_dump", 10, 9, 10, 9, 0.9, 0.9, 0.9, 60.0, 90.0)
    delays: list[tuple[float, float | None]] = [(60.0, 60.0), (60.0, 360.0), (120.0, None)]
    effect = NewsEffect(4, 3, 1, 2, 0, 2, 10, 2, 1, pumps, pumps, {"touting": 1, "background": 1}, delays)
    card = Scorecard([], [], [], news=[NewsLine("sim", "trades", effect)])
    assert card.bars == (0, 0)
    assert orjson.loads(card.to_json())["news_context"][0]["effect"]["lookalike_removed"] == 2
    table = news_table(card)
    assert table.row_count == 1
    cells = [next(iter(column.cells)) for column in table.columns]
    assert cells[3:9] == ["3 → 1", "2 → 0", "2 of 3", "2 of 10", "1 of 10", "1 (+300 s)"]


def test_an_unknown_generator_or_tape_is_refused_before_any_work() -> None:
    from tapewatch.cli.app import cli

    with pytest.raises(ValueError, match="unknown generator"):
        ScorecardSpec(generators=("gbm",))
    result = CliRunner().invoke(cli(), ["eval", "scorecard", "--tapes", "nasdaq-itch"])
    assert result.exit_code != 0 and "no tape nasdaq-itch" in str(result.output) + str(result.exception)
