"""The venue's symbols with their company names, which news is matched against.

A symbols file is CSV, one symbol a row: ``code,name[,alias…]`` (UTF-8; a first row ``code,name,…`` is a header;
``#`` starts a comment line). A code alone is matched as a whole token only; names and aliases anywhere in the
text. Without a file the codes of ``TAPEWATCH_TWSE_SYMBOLS`` are used, by code alone.

>>> names = parse_symbols(["code,name,aliases", "2330,台積電,TSMC", "# OTC", "6547,高端疫苗", "2317"], "desk.csv")
>>> names
{'2330': ['台積電', 'TSMC'], '6547': ['高端疫苗'], '2317': []}
>>> parse_symbols(["23 30,台積電"], "desk.csv")
Traceback (most recent call last):
tapewatch.errors.TapewatchError: desk.csv:1: '23 30' is not a symbol code
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from tapewatch.errors import TapewatchError
from tapewatch.producers.news.text import SymbolMatcher
from tapewatch.producers.twse import channel_code, parse_channels
from tapewatch.records import SYMBOL_PATTERN
from tapewatch.settings import Settings

#: rows a symbols file may hold (every listed and OTC stock of a venue is a few thousand)
MAX_ROWS: Final = 50_000
#: the longest company name or alias kept
MAX_NAME_CHARS: Final = 100
_SYMBOL: Final = re.compile(SYMBOL_PATTERN)


def parse_symbols(lines: Iterable[str], origin: str) -> dict[str, list[str]]:
    """code → names of the rows in ``lines`` (see the module's note); :class:`TapewatchError` naming the row."""
    names: dict[str, list[str]] = {}
    for number, row in enumerate(csv.reader(lines), start=1):
        if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
            continue
        code, *aliases = (cell.strip() for cell in row)
        if number == 1 and code.lower() in ("code", "symbol"):
            continue
        if not _SYMBOL.match(code):
            raise TapewatchError(f"{origin}:{number}: {code[:40]!r} is not a symbol code")
        if len(names) >= MAX_ROWS:
            raise TapewatchError(f"{origin}: more than {MAX_ROWS:,} symbols")
        known = names.setdefault(code, [])
        known += [alias[:MAX_NAME_CHARS] for alias in aliases if alias and alias not in known]
    return names


def load_matcher(settings: Settings, path: Path | None) -> SymbolMatcher:
    """The matcher of ``path``, else of ``TAPEWATCH_NEWS_SYMBOLS_FILE``, else of the codes of
    ``TAPEWATCH_TWSE_SYMBOLS``."""
    path = path or settings.sources.news_symbols_file
    if path is None:
        try:
            codes = [channel_code(channel) for channel in parse_channels(settings.sources.twse_symbols)]
        except ValueError as exc:
            raise TapewatchError(f"TAPEWATCH_TWSE_SYMBOLS: {exc}") from None
        return SymbolMatcher(dict.fromkeys(codes, ()))
    try:
        with path.open(encoding="utf-8-sig", newline="") as lines:
            names = parse_symbols(lines, str(path))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TapewatchError(f"{path}: {exc}") from None
    if not names:
        raise TapewatchError(f"{path}: no symbols (expected rows like 2330,台積電)")
    return SymbolMatcher(names)
