"""The evaluation matrix: cells pool per feed without clashes, the training seed is never evaluated, the
quality bars judge only kinds that have episodes, and the outputs carry every feed."""

from __future__ import annotations

import math
from pathlib import Path

import orjson
import pytest

from tapewatch.detectors.flow import FLOW_FEATURE_SET_VERSION
from tapewatch.detectors.patterns import PATTERNS_VERSION
from tapewatch.evaluation import matrix as em


def small(**changes: object) -> em.MatrixSpec:
    base: dict[str, object] = {"feeds": ("trades", "twse-mis"), "seeds": (7, 8), "symbols": 4, "minutes": 40.0}
    return em.MatrixSpec(**{**base, **changes})  # type: ignore[arg-type]


def test_the_training_seed_is_never_evaluated() -> None:
    with pytest.raises(ValueError, match="training seed"):
        small(seeds=(1, 2), train_seed=1)
    with pytest.raises(ValueError, match="unknown feed"):
        small(feeds=("trades", "level3"))


def test_a_snapshot_feed_is_published_under_a_venue_without_sides() -> None:
    spec = small()
    assert spec.simulation("twse-mis", 7).venue == "sim-snapshots"
    profile = spec.profiles("sim-snapshots")
    assert profile.books and not profile.sides and profile.prints == "snapshots"
    assert spec.simulation("trades", 7).book_churn == em.DEFAULT_CHURN["trades"]
    assert small(book_churn=0.0).simulation("twse-mis", 7).book_churn == 0.0


def test_the_sessions_carry_labelled_lookalikes_unless_told_not_to() -> None:
    spec = small(minutes=270.0)
    assert spec.simulation("trades", 7).lookalikes and spec.lob("trades", 7).lookalikes
    _, episodes, events = em.session(spec, "trades", 7)
    assert len(events) > 0 and tuple(events.columns) == ("symbol", "kind", "start", "end")
    off = small(minutes=270.0, lookalikes=False)
    assert not off.simulation("trades", 7).lookalikes and not off.lob("trades", 7).lookalikes
    _, same_episodes, none = em.session(off, "trades", 7)
    assert none.empty and tuple(none.columns) == tuple(events.columns)
    assert len(same_episodes) >= len(episodes) - 1  # see the simulator: marking the close may be given up


@pytest.fixture(scope="module")
def matrix() -> list[em.FeedResult]:
    return em.run_matrix(small())


def test_cells_pool_per_feed_with_every_seed_kept_apart(matrix: list[em.FeedResult]) -> None:
    assert [f.feed for f in matrix] == ["trades", "twse-mis"]
    for feed in matrix:
        assert len(feed.seconds) == 2
        episodes = sum(m.episodes for m in feed.result.kinds)
        assert episodes > 0
        assert feed.result.clean_symbols >= 1
        assert all(len(f1s) == 2 for f1s in feed.per_seed_f1.values())
        assert "kmeans" in feed.result.score_auc and "seed baseline k=2" in feed.result.score_auc
    # the same seed and symbols on both feeds: the same episodes, whatever the feed shape
    assert [m.episodes for m in matrix[0].result.kinds] == [m.episodes for m in matrix[1].result.kinds]


def test_quality_bars_judge_only_kinds_with_episodes(matrix: list[em.FeedResult]) -> None:
    assert [feed.feed for feed in matrix] == ["trades", "twse-mis"]
    for feed in matrix:
        bars = em.meets_bars(feed)
        with_episodes = {m.kind for m in feed.result.kinds if m.episodes > 0 and m.kind in em.QUALITY_F1}
        assert set(bars) == with_episodes | {"false_alerts"}
        for m in feed.result.kinds:
            if m.kind in bars:
                assert bars[m.kind] == (not math.isnan(m.f1) and m.f1 >= em.QUALITY_F1[m.kind])


def test_json_and_chart_carry_every_feed(matrix: list[em.FeedResult], tmp_path: Path) -> None:
    payload = orjson.loads(em.to_json(small(), matrix))
    assert [f["feed"] for f in payload["feeds"]] == ["trades", "twse-mis"]
    assert payload["spec"]["seeds"] == [7, 8]
    assert set(payload["venues"]) == {"sim", "sim-snapshots"}
    assert payload["versions"] == {"flow": FLOW_FEATURE_SET_VERSION, "patterns": PATTERNS_VERSION}
    png = em.plot_matrix(tmp_path / "f1.png", matrix)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cells_in_parallel_give_the_same_matrix(matrix: list[em.FeedResult]) -> None:
    """Spawned workers (``--jobs``) score exactly what one process does."""
    parallel = em.run_matrix(small(), jobs=2)
    assert len(matrix) == 2
    for one, two in zip(matrix, parallel, strict=True):
        assert [m.f1 for m in one.result.kinds] == pytest.approx([m.f1 for m in two.result.kinds], nan_ok=True)
        assert one.result.score_auc == two.result.score_auc
        assert one.variant_recall == two.variant_recall
