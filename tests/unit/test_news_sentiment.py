"""The news sentiment model (:mod:`tapewatch.detectors.news`): a score in [−1, 1] for any text, Chinese and English
reading with negation, the plain lexicon without an artifact, the artifact's round trip and refusals, and ``tapewatch
train news`` (:mod:`tapewatch.training.news_sentiment`)."""

from __future__ import annotations

import importlib.metadata
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import opencc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opencc import OpenCC
from typer.testing import CliRunner

from tapewatch.artifacts import WEIGHTS_FILE, ArtifactError, ArtifactStore
from tapewatch.detectors.news.lexicon import LEXICON_FILES, LEXICONS_DIR, builtin_lexicon
from tapewatch.detectors.news.reading import TraditionalFold
from tapewatch.detectors.news.sentiment import ARTIFACT_NAME, SentimentModel, plain_lexicon
from tapewatch.settings import get_settings
from tapewatch.training import news_sentiment as ns

LANGUAGES = st.one_of(st.sampled_from(["zh-TW", "zh-CN", "zh", "en", "en-US", "fr", "", "ZH-tw"]), st.text(max_size=8))


@pytest.fixture(scope="module")
def plain() -> SentimentModel:
    return SentimentModel.plain()


@pytest.fixture(scope="module")
def trained() -> SentimentModel:
    items = ns.load_headlines()
    return ns.fit([h for h in items if ns.split_of(h.title) == "train"], builtin_lexicon(), buckets=512)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=st.text(max_size=200), summary=st.text(max_size=400), language=LANGUAGES)
def test_any_text_in_any_language_scores_in_range_the_same_every_time(
    plain: SentimentModel, trained: SentimentModel, title: str, summary: str, language: str
) -> None:
    for model in (plain, trained):
        first = model.score(title, summary, language)
        assert isinstance(first, float)
        assert -1.0 <= first <= 1.0
        assert model.score(title, summary, language) == first


def test_chinese_traditional_and_simplified_read_alike(plain: SentimentModel) -> None:
    assert plain.score("營收成長強勁", "", "zh-TW") > 0
    assert plain.score("營收成長強勁", "", "zh-TW") == plain.score("营收成长强劲", "", "zh-CN")
    assert plain.score("台新材第三季由盈轉虧，每股虧損0.8元", "", "zh-TW") < 0
    assert plain.score("今天天氣晴", "", "zh-TW") == 0.0  # no financial word: no opinion


def test_english_reads_the_loughran_mcdonald_words(plain: SentimentModel) -> None:
    assert plain.score("Profit gains", "", "en") > 0
    assert plain.score("The company reports a loss", "", "en") < 0
    assert plain.score("The company holds its meeting on Tuesday", "", "en") == 0.0


def test_a_negator_before_a_word_in_its_clause_flips_it(plain: SentimentModel) -> None:
    assert plain.score("Margins will improve", "", "en") > 0
    assert plain.score("Margins will not improve", "", "en") < 0
    assert plain.score("Margins won't improve", "", "en") < 0
    assert plain.score("Sales did not decline", "", "en") > 0
    assert plain.score("Not now, margins will improve", "", "en") > 0  # the comma ends the negator's clause
    assert plain.score("營收成長", "", "zh-TW") > 0
    assert plain.score("營收未成長", "", "zh-TW") < 0
    assert plain.score("業績不佳", "", "zh-TW") < 0  # 不 + a listed word inside one token


def test_the_title_weighs_more_than_the_summary(plain: SentimentModel) -> None:
    assert plain.score("Margins will improve", "The company reports a loss", "en") > 0
    assert plain.score("The company reports a loss", "Margins will improve", "en") < 0


def test_an_unknown_language_is_read_by_its_script(plain: SentimentModel) -> None:
    assert plain.score("營收成長強勁", "", "fr") == plain.score("營收成長強勁", "", "zh-TW")
    assert plain.score("Margins will improve", "", "fr") == plain.score("Margins will improve", "", "en")


def test_the_plain_lexicon_needs_no_artifact_and_is_versioned_by_its_words(tmp_path: Path) -> None:
    model = SentimentModel.newest(ArtifactStore(tmp_path / "models"))
    assert model.classifier is None
    assert model.version == f"lexicon-{builtin_lexicon().digest[:12]}" == SentimentModel.plain().version
    assert len(model.lexicon.zh_positive) > 1000 and len(model.lexicon.en_negative) > 1000


def test_the_artifact_round_trip_gives_the_same_scores(tmp_path: Path, trained: SentimentModel) -> None:
    store = ArtifactStore(tmp_path / "models")
    artifact = trained.save(store)
    loaded = SentimentModel.newest(store)
    assert loaded.version == artifact.version == store.latest_version(ARTIFACT_NAME)
    assert loaded.classifier is not None and loaded.lexicon == trained.lexicon
    for h in ns.load_headlines()[:40]:
        assert loaded.score(h.title, h.summary, h.language) == trained.score(h.title, h.summary, h.language)
    with pytest.raises(ValueError, match="nothing to publish"):
        SentimentModel.plain().save(store)


def test_a_corrupt_or_foreign_artifact_is_refused(tmp_path: Path, trained: SentimentModel) -> None:
    store = ArtifactStore(tmp_path / "models")
    artifact = trained.save(store)
    weights = artifact.path / WEIGHTS_FILE
    blob = bytearray(weights.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(ArtifactError, match="checksum"):
        SentimentModel.newest(store)
    shutil.rmtree(artifact.path)
    store.save(ARTIFACT_NAME, {"kind": "kmeans"}, {"w": np.zeros(3)}, hash_hex="1" * 64)
    with pytest.raises(ArtifactError, match="expected 'news-sentiment'"):
        SentimentModel.newest(store)


def test_an_artifact_whose_parts_do_not_fit_is_refused(tmp_path: Path, trained: SentimentModel) -> None:
    store = ArtifactStore(tmp_path / "models")
    lied = trained.save(store, extra={"lexicon_digest": "0" * 64}, created=datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ArtifactError, match="do not match their recorded digest"):
        SentimentModel.load(store, lied.version)
    wrong = trained.save(store, extra={"buckets": 1024}, created=datetime(2026, 1, 2, tzinfo=UTC))
    with pytest.raises(ArtifactError, match="weights for"):
        SentimentModel.load(store, wrong.version)


def test_the_split_is_by_title_alone_and_holds_out_about_thirty_percent() -> None:
    items = ns.load_headlines()
    test = [h for h in items if ns.split_of(h.title) == "test"]
    assert 0.2 < len(test) / len(items) < 0.4
    assert {h.language for h in test} == {"zh-TW", "en"} and {h.label for h in test} == {1, -1}


def test_train_news_publishes_a_version_and_prints_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tapewatch.cli.app import cli

    monkeypatch.setenv("TAPEWATCH_MODEL_DIR", str(tmp_path / "models"))
    get_settings.cache_clear()  # the command reads this test's model directory, not an earlier test's settings
    try:
        result = CliRunner().invoke(cli(), ["train", "news", "--buckets", "512"], env={"COLUMNS": "160"})
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    versions = ArtifactStore(tmp_path / "models").versions(ARTIFACT_NAME)
    assert len(versions) == 1
    assert f"published news-sentiment {versions[0]}" in result.output
    for model in ("majority", "plain lexicon", "trained"):
        assert sum(line.count(f" {model} ") for line in result.output.splitlines()) == 3  # en, zh-TW, all
    manifest = SentimentModel.load(ArtifactStore(tmp_path / "models"))
    assert manifest.classifier is not None and manifest.classifier.buckets == 512


def test_a_bad_labelled_set_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tapewatch.cli.app import cli

    monkeypatch.setenv("TAPEWATCH_MODEL_DIR", str(tmp_path / "models"))
    bad = tmp_path / "bad.csv"
    bad.write_text("language,label,title,summary\nen,great,Profit gains,\n", encoding="utf-8")
    result = CliRunner().invoke(cli(), ["train", "news", "--data", str(bad)])
    assert result.exit_code != 0
    assert f"{bad}:2: needs language, a title and a label positive or negative" in str(result.exception)
    assert ArtifactStore(tmp_path / "models").versions(ARTIFACT_NAME) == []


def test_the_shipped_lexicons_are_what_the_cntext_package_gives() -> None:
    try:
        importlib.metadata.distribution("cntext")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("cntext is a data package `make deps` installs (pip install --no-deps cntext==2.2.1)")
    from tapewatch.training.news_lexicon import rendered

    shipped = {name: (LEXICONS_DIR / name).read_text(encoding="utf-8") for name in LEXICON_FILES.values()}
    assert rendered() == shipped


def test_the_news_stage_slot_scores_with_the_lexicon_until_a_model_is_published(
    tmp_path: Path, trained: SentimentModel
) -> None:
    from tapewatch.streams.sentiment import SentimentModelSlot

    store = ArtifactStore(tmp_path / "models")
    slot = SentimentModelSlot(store)
    assert slot.scorer.version == plain_lexicon().version and not slot.refresh()
    published = trained.save(store, created=datetime(2026, 1, 1, tzinfo=UTC))
    assert slot.refresh() and slot.scorer.version == published.version
    broken = trained.save(store, extra={"lexicon_digest": "0" * 64}, created=datetime(2026, 1, 2, tzinfo=UTC))
    assert store.latest_version(ARTIFACT_NAME) == broken.version
    assert not slot.refresh() and slot.scorer.version == published.version


_OPENCC = Path(opencc.__file__).parent / "dictionary"
_PHRASES = [line.split("\t")[0] for line in (_OPENCC / "TSPhrases.txt").read_text(encoding="utf-8").splitlines()]
_CHARACTERS = [line.split("\t")[0] for line in (_OPENCC / "TSCharacters.txt").read_text(encoding="utf-8").splitlines()]
_PIECES = st.sampled_from(_PHRASES) | st.sampled_from(_CHARACTERS) | st.sampled_from(list("，。 -ab的了台積電（）"))


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=30).map("".join), st.sampled_from(_PHRASES), st.sampled_from(_PHRASES))
def test_the_traditional_fold_is_opencc_t2s(text: str, first: str, second: str) -> None:
    fold, reference = TraditionalFold(), OpenCC("t2s")
    overlapping = first[:-1] + second + first[1:]  # phrases overlapping one another: the longest must win
    for sample in (text, overlapping, text + overlapping):
        assert fold(sample) == reference.convert(sample)
