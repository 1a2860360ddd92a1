"""An item's text made safe to store and show, and the symbols it names.

A source's title or summary may hold HTML (tags, entities, scripts), control characters, or run to megabytes;
what is kept is plain text, whitespace collapsed, cut at a bound with an ellipsis.

>>> clean_text("<p>台積電&amp;鴻海 <b>大漲</b></p><script>alert(1)</script>", 100)
'台積電&鴻海 大漲'
>>> clean_text("&lt;b&gt;展望&lt;/b&gt; &amp;amp;", 100)  # escaped once more by the source
'展望 &'
>>> clean_text("a" * 10, 5)
'aaaa…'

Symbols are found by their codes (a whole token: ``2330``, not the ``2330`` inside ``23301``) and by the company
names the venue's symbol list gives, the longest name first, so ``台積電`` is not read as a shorter name inside it.

>>> matcher = SymbolMatcher({"2330": ["台積電"], "2317": ["鴻海"], "3008": ["大立光"]})
>>> matcher.find("台積電與鴻海同步走高，23301 不是代號")
['2330', '2317']
>>> matcher.find("3008 大立光")
['3008']
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from html import unescape
from html.parser import HTMLParser
from typing import Final

#: at most this many symbols are read from one item (a market wrap naming every stock says nothing of any)
MAX_SYMBOLS: Final = 50
_SPACE: Final = re.compile(r"\s+")
#: what a code must not touch on either side to be one (ASCII letters and digits)
_TOKEN: Final = frozenset(string.ascii_letters + string.digits)


class _Text(HTMLParser):
    """The text of an HTML fragment, without what scripts and styles hold."""

    _HIDDEN: Final = frozenset({"script", "style", "noscript", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hidden += tag in self._HIDDEN
        if tag in ("br", "p", "div", "li"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        self.hidden -= tag in self._HIDDEN and self.hidden > 0

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def _html_text(raw: str) -> str:
    parser = _Text()
    try:
        parser.feed(raw)
        parser.close()
    except AssertionError:
        # html.parser gives up on some broken declarations (``<![ x``): those are read as the text they are
        return _html_text(raw.replace("<!", "&lt;!")) if "<!" in raw else "".join(parser.parts)
    return unescape("".join(parser.parts))


def clean_text(raw: str, limit: int) -> str:
    """Plain text of ``raw`` (tags and entities resolved, scripts dropped, control characters removed, whitespace
    collapsed, NFC), at most ``limit`` characters: a longer one is cut and ends with an ellipsis."""
    raw = raw[: limit * 20]  # bounded work: what lies beyond twenty times the bound is never shown
    for _ in range(2):  # twice: sources escape their HTML once more (``&lt;b&gt;``), and that is markup too
        if "<" not in raw and "&" not in raw:
            break
        raw = _html_text(raw)
    text = "".join(ch for ch in unicodedata.normalize("NFC", raw) if ch.isprintable() or ch.isspace())
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class SymbolMatcher:
    """Finds a venue's symbols in text, by code and by name, as one scan: each place in the text costs a lookup per
    distinct length of a name or code, however many names the venue has — linear in the text, whether the venue
    lists 5 symbols or 5,000."""

    __slots__ = ("_by_text", "_code_lengths", "_name_lengths", "_starts", "symbols")

    def __init__(self, names: Mapping[str, Sequence[str]]) -> None:
        self.symbols = frozenset(names)
        by_text: dict[str, str] = {}
        for symbol, aliases in names.items():
            for name in aliases:
                if name := name.strip():
                    by_text.setdefault(name, symbol)
        self._by_text = by_text
        self._name_lengths = sorted({len(n) for n in by_text}, reverse=True)
        self._code_lengths = sorted({len(s) for s in self.symbols}, reverse=True)
        self._starts = frozenset(n[0] for n in by_text) | frozenset(s[0] for s in self.symbols if s)

    def find(self, *texts: str) -> list[str]:
        """The symbols the texts name, in order of first mention, at most :data:`MAX_SYMBOLS`."""
        found: dict[str, None] = {}
        for text in texts:
            for symbol in self._mentions(text):
                found.setdefault(symbol, None)
                if len(found) >= MAX_SYMBOLS:
                    return list(found)
        return list(found)

    def _mentions(self, text: str) -> Iterator[str]:
        """The symbol of every mention in ``text``, left to right, none overlapping another."""
        at, end = 0, len(text)
        while at < end:
            hit = self._at(text, at) if text[at] in self._starts else None
            if hit is None:
                at += 1
                continue
            symbol, length = hit
            yield symbol
            at += length

    def _at(self, text: str, at: int) -> tuple[str, int] | None:
        """(symbol, length) of the mention starting at ``at``: the longest name there, else a code that is a whole
        token (not the ``2330`` inside ``23301``)."""
        for length in self._name_lengths:
            symbol = self._by_text.get(text[at : at + length])
            if symbol is not None:
                return symbol, length
        if at > 0 and text[at - 1] in _TOKEN:
            return None
        for length in self._code_lengths:
            code = text[at : at + length]
            if code in self.symbols and text[at + length : at + length + 1] not in _TOKEN:
                return code, length
        return None

    def known(self, codes: Iterable[str]) -> list[str]:
        """The codes of ``codes`` that are this venue's symbols, in order, without repeats."""
        return list(dict.fromkeys(c for c in codes if c in self.symbols))[:MAX_SYMBOLS]
