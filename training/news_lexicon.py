"""The built-in sentiment lexicons (``detectors/news/lexicons/*.txt``) extracted from the ``cntext`` package.

``cntext`` (PyPI, MIT) ships its dictionaries as YAML files; its code pulls gensim, openai, PyMuPDF and a numpy
below 2, so it is installed as a data package (``make deps``: ``pip install --no-deps``), located through its
installed distribution and never imported. Each word list is written one word a line, sorted, under a header that
names the source file, its SHA-256 and its licence; a word found in both polarities of one dictionary is dropped
(it says nothing). ``python -m tapewatch.training.news_lexicon`` rewrites the files; a unit test checks that the shipped
files are what this extraction gives.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml

from tapewatch.detectors.news.lexicon import LEXICON_FILES, LEXICONS_DIR
from tapewatch.errors import TapewatchError

DISTRIBUTION: Final = "cntext"
DISTRIBUTION_VERSION: Final = "2.2.1"


@dataclass(frozen=True, slots=True)
class Source:
    """One dictionary inside cntext and the two categories of it that hold its positive and negative words."""

    path: str
    positive: str
    negative: str
    language: str
    about: str


SOURCES: Final[tuple[Source, ...]] = (
    Source(
        "cntext/io/data/zh_common_FinanceSenti.yaml",
        "pos",
        "neg",
        "zh",
        "Chinese Financial Sentiment Dictionary, as cntext ships it (its YAML cites Jiang, Lee, Martin and Zhou, "
        "'Manager Sentiment and Stock Returns', Journal of Financial Economics 132(1), 2019); Simplified Chinese",
    ),
    Source(
        "cntext/io/data/en_common_LoughranMcDonald.yaml",
        "Positive",
        "Negative",
        "en",
        "Loughran-McDonald financial sentiment word lists, 2018 version (Loughran and McDonald, 'When is a "
        "liability not a liability?', Journal of Finance 66(1), 2011); its authors license it for academic use",
    ),
)


def source_file(path: str) -> Path:
    """A file of the installed cntext distribution (not imported)."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise TapewatchError(
            f"the lexicons are read from the '{DISTRIBUTION}' package: "
            f"pip install --no-deps {DISTRIBUTION}=={DISTRIBUTION_VERSION}"
        ) from None
    located = Path(str(dist.locate_file(path)))
    if not located.is_file():
        raise TapewatchError(f"{DISTRIBUTION} {dist.version} has no {path}")
    return located


def _words(values: object, lower: bool) -> set[str]:
    if not isinstance(values, list):
        return set()
    words = {str(v).strip() for v in values}
    return {w.lower() if lower else w for w in words if w}


def extract(source: Source) -> dict[str, tuple[str, list[str]]]:
    """``file name → (header, sorted words)`` for the source's positive and negative lists."""
    path = source_file(source.path)
    raw = path.read_bytes()
    dictionary = yaml.safe_load(raw.decode("utf-8"))["Dictionary"]
    lower = source.language == "en"
    positive = _words(dictionary[source.positive], lower)
    negative = _words(dictionary[source.negative], lower)
    both = positive & negative
    header = (
        f"# {source.about}\n"
        f"# from {DISTRIBUTION} {importlib.metadata.version(DISTRIBUTION)} (PyPI, MIT licence), {source.path}, "
        f"sha256 {hashlib.sha256(raw).hexdigest()}\n"
        f"# written by python -m tapewatch.training.news_lexicon; "
        f"{len(both)} words listed under both polarities dropped\n"
    )
    return {
        LEXICON_FILES[source.language, "positive"]: (header, sorted(positive - both)),
        LEXICON_FILES[source.language, "negative"]: (header, sorted(negative - both)),
    }


def rendered() -> dict[str, str]:
    """Every lexicon file's text, as :func:`write` writes it."""
    files: dict[str, str] = {}
    for source in SOURCES:
        for name, (header, words) in extract(source).items():
            files[name] = header + "".join(f"{w}\n" for w in words)
    return files


def write(directory: Path = LEXICONS_DIR) -> list[Path]:
    written = []
    for name, text in rendered().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write():
        print(written_path, file=sys.stderr)
