"""An item's text as tokens, and its positive and negative lexicon hits with negation applied.

* **Chinese** (``zh``, ``zh-TW``, ``zh-CN``, …): the text is folded to Simplified characters (OpenCC's ``t2s``: the
  lexicon and jieba's dictionary are Simplified, cnyes writes Traditional), then segmented by jieba without its
  HMM (new-word guessing would glue a sentiment word to a company name). jieba's dictionary is loaded once per
  process; each lexicon's words are added to a copy of it so a listed phrase comes out as one token.
* **English** (``en``, ``en-US``, …): lower-cased words (``didn't`` stays one word) and clause punctuation.
* **Any other language** is read by its script: Chinese when the text holds a CJK ideograph, else English.

**Negation**: a lexicon word counts for the opposite polarity when a negator (:data:`ZH_NEGATORS`,
:data:`EN_NEGATORS`, or an English word ending in ``n't``) stands at most :data:`NEGATION_WINDOW` tokens before it
in the same clause (punctuation ends a clause): ``未受…衝擊``, ``will not hurt``. A Chinese token that is not
listed but is a negator character followed by a listed word (``不佳``) counts for the opposite polarity of that word.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import jieba
import opencc
from opencc import OpenCC

from tapewatch.detectors.news.lexicon import Language, Lexicon

#: tokens before a lexicon word that a negator may stand in and still negate it
NEGATION_WINDOW: Final = 3
#: Chinese negators, Simplified (the text is folded before it is segmented)
ZH_NEGATORS: Final = frozenset(
    {"不", "未", "没", "没有", "无", "非", "并未", "并非", "未能", "不再", "尚未", "从未", "不会", "不能", "无法", "别"}
)
#: characters that negate the listed word they prefix inside one token (``不佳``)
ZH_NEGATING_PREFIXES: Final = frozenset({"不", "未", "没", "无", "非"})
EN_NEGATORS: Final = frozenset({"not", "no", "never", "without", "nor", "neither", "cannot", "none", "nothing"})
#: what ends a clause for negation
CLAUSE_BREAKS: Final = frozenset(",.;:!?，。；：！？、…")
_EN_TOKEN: Final = re.compile(r"[a-z]+(?:'[a-z]+)?|[,.;:!?]")
_CJK: Final = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

jieba.setLogLevel(logging.WARNING)  # its "Building prefix dict…" lines on stderr say nothing a user needs


def base_language(language: str, text: str) -> Language:
    """``zh`` or ``en`` for a BCP 47 tag; any other tag by the text's script."""
    primary = language.strip().lower().split("-", 1)[0]
    if primary in ("zh", "en"):
        return "zh" if primary == "zh" else "en"
    return "zh" if _CJK.search(text) else "en"


@dataclass(frozen=True, slots=True)
class Hits:
    """Lexicon hits of one text after negation."""

    positive: int = 0
    negative: int = 0


class TraditionalFold:
    """Traditional → Simplified characters exactly as OpenCC's ``t2s`` converts them (the tests hold it to
    ``OpenCC("t2s").convert``), at a small fraction of its cost: the pure-Python converter builds a parse tree per
    clause and tries every substring length at every position, which made folding most of a news item's scoring.

    Per clause (OpenCC's own separators split the text): the longest phrase of ``TSPhrases`` anywhere in it (the
    leftmost of equals) is replaced, and the text on each side is folded the same way; what no phrase covers is
    folded character by character (``TSCharacters``). Where a dictionary lists several candidates, the first."""

    def __init__(self) -> None:
        self._split = OpenCC("t2s").split_chars_re  # the separators OpenCC splits a text at
        folder = Path(opencc.__file__).parent / "dictionary"
        self._phrases = _dictionary(folder / "TSPhrases.txt")
        self._characters = str.maketrans(_dictionary(folder / "TSCharacters.txt"))
        #: a phrase's first character → the lengths of the phrases it starts, longest first
        self._lengths: dict[str, tuple[int, ...]] = {}
        for phrase in self._phrases:
            self._lengths[phrase[0]] = tuple(sorted({*self._lengths.get(phrase[0], ()), len(phrase)}, reverse=True))

    def __call__(self, text: str) -> str:
        parts = self._split.split(text)
        return "".join(part if i % 2 else self._clause(part) for i, part in enumerate(parts))

    def _clause(self, text: str) -> str:
        if not text:
            return text
        found = self._longest_phrase(text)
        if found is None:
            return text.translate(self._characters)
        start, length = found
        replaced = self._phrases[text[start : start + length]]
        return self._clause(text[:start]) + replaced + self._clause(text[start + length :])

    def _longest_phrase(self, text: str) -> tuple[int, int] | None:
        """(position, length) of the longest phrase in ``text``, the leftmost of equals."""
        best: tuple[int, int] | None = None
        for start, char in enumerate(text):
            for length in self._lengths.get(char, ()):
                if best is not None and length <= best[1]:
                    break
                if start + length <= len(text) and text[start : start + length] in self._phrases:
                    best = (start, length)
                    break
        return best


def _dictionary(path: Path) -> dict[str, str]:
    """An OpenCC dictionary file: key → its first candidate."""
    entries: dict[str, str] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            key, value = line.strip().split("\t")
            entries[key] = value.split(" ")[0]
    return entries


class Reader:
    """Tokens and lexicon hits for one lexicon (build it with :func:`reader_for`: one per lexicon per process)."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        self._fold = TraditionalFold()
        self._jieba = _segmenter(lexicon)

    def tokens(self, text: str, language: Language) -> list[str]:
        if language == "zh":
            folded = self._fold(text)
            return [t for t in self._jieba.cut(folded, HMM=False) if t.strip()]
        return _EN_TOKEN.findall(text.lower())

    def hits(self, tokens: Sequence[str], language: Language) -> Hits:
        positive_words = self.lexicon.words(language, "positive")
        negative_words = self.lexicon.words(language, "negative")
        counts = [0, 0]  # positive, negative
        last_negator = -NEGATION_WINDOW - 1
        for i, token in enumerate(tokens):
            if token in CLAUSE_BREAKS:
                last_negator = -NEGATION_WINDOW - 1
                continue
            polarity = _polarity(token, positive_words, negative_words)
            flipped = False
            if polarity is None and language == "zh" and token[:1] in ZH_NEGATING_PREFIXES:
                polarity, flipped = _polarity(token[1:], positive_words, negative_words), True
            if polarity is not None:
                flipped ^= i - last_negator <= NEGATION_WINDOW
                counts[polarity ^ flipped] += 1
            elif _is_negator(token, language):
                last_negator = i
        return Hits(counts[0], counts[1])


def _polarity(token: str, positive: frozenset[str], negative: frozenset[str]) -> int | None:
    """0 for a positive word, 1 for a negative one, None for neither."""
    if token in positive:
        return 0
    if token in negative:
        return 1
    return None


def _is_negator(token: str, language: Language) -> bool:
    if language == "zh":
        return token in ZH_NEGATORS
    return token in EN_NEGATORS or token.endswith("n't")


_base: jieba.Tokenizer | None = None
_readers: dict[str, Reader] = {}
_lock = threading.Lock()


def _segmenter(lexicon: Lexicon) -> jieba.Tokenizer:
    """A jieba tokenizer on a copy of the one loaded dictionary, with the lexicon's Chinese words added (in sorted
    order, each at the frequency jieba suggests for keeping it whole: the same lexicon segments the same way)."""
    global _base  # noqa: PLW0603 - jieba's dictionary is loaded once per process
    if _base is None:
        _base = jieba.Tokenizer()
        _base.initialize()
    tokenizer = jieba.Tokenizer()
    tokenizer.FREQ, tokenizer.total, tokenizer.initialized = dict(_base.FREQ), _base.total, True
    for word in sorted(lexicon.zh_positive | lexicon.zh_negative):
        tokenizer.add_word(word)
    return tokenizer


def reader_for(lexicon: Lexicon) -> Reader:
    """The process's reader of ``lexicon`` (built on first use: about 2 s for jieba's dictionary)."""
    with _lock:
        reader = _readers.get(lexicon.digest)
        if reader is None:
            reader = _readers[lexicon.digest] = Reader(lexicon)
        return reader
