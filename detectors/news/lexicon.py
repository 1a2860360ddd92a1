"""The financial sentiment word lists a news sentiment model reads, per language and polarity.

The built-in lists (``lexicons/*.txt`` beside this module, one word a line under ``#`` comment lines) are extracted
from the ``cntext`` package by :mod:`tapewatch.training.news_lexicon`: the Chinese Financial Sentiment Dictionary
(Simplified Chinese) and the Loughran–McDonald lists (English, lower case). A trained model's artifact carries its own
copy, so a model keeps reading the words it was trained with.

The **digest** is the SHA-256 of every list in a fixed order: the plain lexicon model's version is derived from it,
and an artifact whose lists do not hash to its recorded digest is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final, Literal

Language = Literal["zh", "en"]
Polarity = Literal["positive", "negative"]

LANGUAGES: Final[tuple[Language, ...]] = ("zh", "en")
POLARITIES: Final[tuple[Polarity, ...]] = ("positive", "negative")
LEXICONS_DIR: Final = Path(__file__).resolve().parent / "lexicons"
LEXICON_FILES: Final[dict[tuple[str, str], str]] = {
    ("zh", "positive"): "zh_finance_positive.txt",
    ("zh", "negative"): "zh_finance_negative.txt",
    ("en", "positive"): "en_loughran_mcdonald_positive.txt",
    ("en", "negative"): "en_loughran_mcdonald_negative.txt",
}


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Positive and negative words per language (``zh`` in Simplified characters, ``en`` in lower case)."""

    zh_positive: frozenset[str]
    zh_negative: frozenset[str]
    en_positive: frozenset[str]
    en_negative: frozenset[str]

    def words(self, language: Language, polarity: Polarity) -> frozenset[str]:
        words: frozenset[str] = getattr(self, f"{language}_{polarity}")
        return words

    def lists(self) -> dict[str, list[str]]:
        """``<language>_<polarity>`` → the sorted words, in the digest's order."""
        return {f"{lang}_{pol}": sorted(self.words(lang, pol)) for lang in LANGUAGES for pol in POLARITIES}

    @property
    def digest(self) -> str:
        return _digest(self)

    @classmethod
    def of(cls, lists: dict[str, Iterable[str]]) -> Lexicon:
        """From ``<language>_<polarity>`` → words; every one of the four lists must be there."""
        missing = [f"{lang}_{pol}" for lang in LANGUAGES for pol in POLARITIES if f"{lang}_{pol}" not in lists]
        if missing:
            raise ValueError(f"a lexicon needs every word list: {', '.join(missing)} missing")
        return cls(**{name: frozenset(str(w) for w in lists[name]) for name in cls.__slots__})


@cache
def _digest(lexicon: Lexicon) -> str:
    hasher = hashlib.sha256()
    for name, words in lexicon.lists().items():
        hasher.update(f"{name}:{len(words)}\n".encode())
        hasher.update("\n".join(words).encode("utf-8", "surrogatepass"))
        hasher.update(b"\n")
    return hasher.hexdigest()


def read_list(path: Path) -> list[str]:
    """A word list file: one word a line; ``#`` lines and blank lines skipped."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@cache
def builtin_lexicon() -> Lexicon:
    """The lists shipped with tapewatch (read once)."""
    return Lexicon.of(
        {f"{lang}_{pol}": read_list(LEXICONS_DIR / LEXICON_FILES[lang, pol]) for lang, pol in LEXICON_FILES}
    )
