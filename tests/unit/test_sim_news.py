"""News items from both labelled generators: one per news repricing, background news and touting at their documented
rates, the same items for the same seed, and a market the news never changes."""

from __future__ import annotations

import hashlib
from datetime import date

import numpy as np
import pandas as pd
import pytest

from tapewatch.generators import lob_market as lob
from tapewatch.generators import news as sn
from tapewatch.generators.simulator import Simulation, SimulationConfig, generate
from tapewatch.records import AlertKind, NewsItem

#: the simulator's session the market digest is taken of, and the digest main computed before the news existed
SIM_CONFIG = SimulationConfig(symbols=6, seed=11, minutes=120.0, lookalikes=True, variants=True, feed="snapshot-1s")
SIM_DIGEST = "88caa6c08bd0b0c9"
LOB_CONFIG = lob.LobConfig(symbols=4, seed=11, minutes=60, quiet_open_s=300, episode_gap_s=60)
LOB_DIGEST = "e475d65db2205bac"
PARAMS = sn.NewsParams()


def sim_digest(sim: Simulation) -> str:
    """Every published market record's bytes, the episodes and the look-alikes."""
    digest = hashlib.sha256()
    for _, _, payloads in sim.encoded():
        for payload in payloads:
            digest.update(payload)
    digest.update(sim.episodes_frame().to_csv().encode())
    digest.update(sim.lookalikes_frame().to_csv().encode())
    return digest.hexdigest()[:16]


def lob_digest(session: lob.LobSession) -> str:
    digest = hashlib.sha256()
    for frame in (session.ticks_frame(), session.episodes_frame(), session.lookalikes_frame()):
        digest.update(frame.to_csv().encode())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return generate(SIM_CONFIG)


@pytest.fixture(scope="module")
def lob_session() -> lob.LobSession:
    return lob.generate(LOB_CONFIG)


def repricing_items(news: pd.DataFrame, lookalikes: pd.DataFrame) -> pd.DataFrame:
    """Each news look-alike beside the repricing item on its symbol nearest its start."""
    repricings = news[news["label"] == "repricing"]
    pairs = lookalikes[lookalikes["kind"] == "news"].merge(repricings, on="symbol")
    pairs["lag_s"] = (pairs["ts"] - pairs["start"]) / 1000
    return pairs.loc[pairs.groupby(["symbol", "start"])["lag_s"].apply(lambda s: s.abs().idxmin())]


def test_the_simulator_writes_one_item_per_news_repricing(sim: Simulation) -> None:
    news, lookalikes = sim.news_frame(), sim.lookalikes_frame()
    assert (lookalikes["kind"] == "news").sum() > 0
    assert (news["label"] == "repricing").sum() == (lookalikes["kind"] == "news").sum()
    nearest = repricing_items(news, lookalikes)
    low, high = PARAMS.repricing_lag_s
    assert nearest["lag_s"].between(low, high).all()
    assert all(item.language == "zh-TW" and item.venue == SIM_CONFIG.venue for item in sim.news)


def test_the_order_book_market_writes_one_item_per_news_repricing(lob_session: lob.LobSession) -> None:
    news, lookalikes = lob_session.news_frame(), lob_session.lookalikes_frame()
    assert (lookalikes["kind"] == "news").sum() > 0
    assert (news["label"] == "repricing").sum() == (lookalikes["kind"] == "news").sum()
    nearest = repricing_items(news, lookalikes)
    assert nearest["lag_s"].between(*PARAMS.repricing_lag_s).all()
    assert all(item.language == "en" for item in lob_session.news)


def test_items_are_records_numbered_in_publication_order(sim: Simulation, lob_session: lob.LobSession) -> None:
    for items, labels, prefix in (
        (sim.news, sim.news_labels, "sim:simulator-20240102-11-"),
        (lob_session.news, lob_session.news_labels, "sim:lob-20240102-11-"),
    ):
        assert len(items) == len(labels) and set(labels) <= set(sn.NEWS_LABELS)
        assert [item.item_id for item in items] == [f"{prefix}{n}" for n in range(1, len(items) + 1)]
        assert [item.ts for item in items] == sorted(item.ts for item in items)
        for item in items:
            assert NewsItem.from_json(item.to_json()) == item
            assert item.source == "sim" and item.symbols == [item.symbol] and item.symbol in item.title


def test_the_market_of_a_seed_is_unchanged_by_the_news(sim: Simulation, lob_session: lob.LobSession) -> None:
    # the digests were computed by main before the generators wrote news
    assert sim_digest(sim) == SIM_DIGEST
    assert lob_digest(lob_session) == LOB_DIGEST
    quiet = generate(SimulationConfig(**{**SIM_CONFIG.__dict__, "news": False}))
    assert sim_digest(quiet) == SIM_DIGEST and quiet.news == () and quiet.news_frame().empty


def test_the_same_seed_gives_the_same_items(sim: Simulation) -> None:
    again = generate(SIM_CONFIG)
    assert again.news == sim.news and again.news_labels == sim.news_labels
    other = generate(SimulationConfig(**{**SIM_CONFIG.__dict__, "seed": 12}))
    assert [i.ts for i in other.news] != [i.ts for i in sim.news]


def test_background_and_touting_from_the_generator_at_their_rates() -> None:
    """Pump-heavy simulator sessions over three seeds: about 30 % of the pumps touted, most of them after the onset;
    background items about their mean rate."""
    pumps, touted, before, background, symbol_sessions = 0, 0, 0, 0, 0.0
    for seed in (41, 42, 43):
        config = SimulationConfig(
            symbols=8, seed=seed, minutes=150.0, clean_fraction=0.0, rates={AlertKind.PUMP_AND_DUMP: 3.0}
        )
        sim = generate(config)
        news, episodes = sim.news_frame(), sim.episodes_frame()
        pairs = news[news["label"] == "touting"].merge(episodes[["symbol", "start", "end"]], on="symbol")
        near = pairs[(pairs["ts"] >= pairs["start"] - 900_000) & (pairs["ts"] <= pairs["end"])]
        inside = near[near["ts"] >= near["start"]]
        pumps += int((episodes["kind"] == "pump_and_dump").sum())
        touted += int((news["label"] == "touting").sum())
        # an item is in its pump's window or up to 15 minutes before it (where it may fall in an earlier window)
        assert near["item_id"].nunique() == (news["label"] == "touting").sum()
        before += near["item_id"].nunique() - inside["item_id"].nunique()
        background += int((news["label"] == "background").sum())
        symbol_sessions += config.symbols * config.minutes / sn.FULL_SESSION_MINUTES
    assert pumps >= 40
    assert 0.15 <= touted / pumps <= 0.45
    assert 0 < before < touted / 2
    expected = PARAMS.mean_background_rate() * symbol_sessions
    assert 0.6 * expected <= background <= 1.5 * expected


def plan(symbol: str, pumps: int, repricings: int = 0) -> sn.SymbolPlan:
    onsets = [1_000_000 + i * 3_600_000 for i in range(pumps)]
    return sn.SymbolPlan(
        symbol,
        repricings=[(1_000_000 + i * 600_000, 1 if i % 2 else -1) for i in range(repricings)],
        runups=[(onset, onset + 600_000) for onset in onsets],
    )


def test_the_documented_rates_over_many_symbols() -> None:
    """Many symbols straight through the drafting: the shares and rates within a few standard errors."""
    session = (0, int(sn.FULL_SESSION_MINUTES * 60_000))
    drafts = [
        d for i in range(400) for d in sn.draft_symbol(PARAMS, plan(f"S{i}", 5, 3), sn.news_streams(7, (3, i)), session)
    ]
    by_label = {label: [d for d in drafts if d.label == label] for label in sn.NEWS_LABELS}
    assert len(by_label["repricing"]) == 400 * 3
    touting = by_label["touting"]
    assert abs(len(touting) / 2000 - PARAMS.touting_share) < 0.03
    onsets = np.array([(d.ts - 1_000_000) % 3_600_000 for d in touting])
    early = (onsets > 600_000).mean()  # before its onset: more than the run-up's length past the previous slot
    assert abs(early - PARAMS.touting_before_share) < 0.06
    assert abs(len(by_label["background"]) / 400 - PARAMS.mean_background_rate()) < 0.2
    assert {d.tone for d in by_label["background"]} == {0} and {d.tone for d in touting} == {1}
    assert {d.tone for d in by_label["repricing"]} == {1, -1}


def test_no_news_without_rates_and_bad_params_are_refused() -> None:
    quiet = sn.NewsParams(background_rate=(0.0, 0.0), touting_share=0.0)
    drafts = sn.draft_symbol(quiet, plan("A", 3), sn.news_streams(1, (0,)), (0, 16_200_000))
    assert drafts == []
    for bad in ({"touting_share": 1.5}, {"repricing_lag_s": (60.0, -60.0)}, {"background_rate": (0.0, 2.0)}):
        with pytest.raises(ValueError):
            sn.NewsParams(**bad)


def test_every_language_has_every_headline() -> None:
    for language, tones in sn.HEADLINES.items():
        assert set(tones) == {1, -1, 0}
        assert all(len(templates) == sn.HEADLINES_PER_TONE for templates in tones.values())
        assert len(sn.TOUTING_HEADLINES[language]) == sn.HEADLINES_PER_TONE
    wire = sn.NewsWire("lob", 1, date(2024, 1, 2), "sim", "zh-TW")
    items, labels = sn.publish(wire, [sn.Draft(5, "B", "touting", 1, 2), sn.Draft(5, "A", "background", 0, 0)], "AB")
    assert [i.symbol for i in items] == ["A", "B"] and labels == ("background", "touting")
    assert items[1].title == sn.TOUTING_HEADLINES["zh-TW"][2][0].format(symbol="B")
