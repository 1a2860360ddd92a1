"""The batch twin of :class:`~tapewatch.detectors.flow.FlowState`: the fold of the same state machine over frames of
quotes and books (:func:`iter_flow` for one symbol, :func:`compute_flow_frame` for many), and the chunks as a frame
(:func:`chunks_to_frame`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

import numpy as np
import pandas as pd

from tapewatch.detectors.flow.catalogue import FLOW_FEATURE_NAMES, FlowChunk, FlowConfig
from tapewatch.detectors.flow.chunk import Levels
from tapewatch.detectors.flow.state import FlowState, LateRecordError
from tapewatch.feeds import Prints
from tapewatch.records import BOOK_DEPTH

#: quote columns :func:`compute_flow_frame` reads (``side``, ``bid``, ``ask`` optional); the simulator's layout
QUOTE_COLUMNS: Final = ("symbol", "ts", "price", "size", "side", "bid", "ask")
#: book columns: ``symbol``, ``ts`` and the replay level columns (missing levels NaN)
BOOK_COLUMNS: Final = (
    "symbol",
    "ts",
    *(f"{side}{kind}{i}" for side in ("bid", "ask") for kind in ("", "sz") for i in range(1, BOOK_DEPTH + 1)),
)


def _none_if_nan(values: Iterable[Any]) -> list[Any]:
    return [None if x is None or (isinstance(x, float) and math.isnan(x)) else x for x in values]


def _quote_rows(quotes: pd.DataFrame) -> list[tuple[int, float | None, float, str | None, float | None, float | None]]:
    n = len(quotes)
    ts = quotes["ts"].to_numpy(dtype="int64").tolist()
    price = _none_if_nan(quotes["price"].to_numpy(dtype="float64").tolist())
    size = np.nan_to_num(quotes["size"].to_numpy(dtype="float64"), nan=0.0).tolist() if "size" in quotes else [0.0] * n
    side: list[str | None] = (
        [s if s == "B" or s == "S" else None for s in quotes["side"].tolist()]  # noqa: PLR1714
        if "side" in quotes
        else [None] * n
    )
    bid = _none_if_nan(quotes["bid"].to_numpy(dtype="float64").tolist()) if "bid" in quotes else [None] * n
    ask = _none_if_nan(quotes["ask"].to_numpy(dtype="float64").tolist()) if "ask" in quotes else [None] * n
    return list(zip(ts, price, size, side, bid, ask, strict=True))


def _book_rows(books: pd.DataFrame) -> list[tuple[int, Levels, Levels]]:
    ts = books["ts"].to_numpy(dtype="int64").tolist()
    sides: list[list[Levels]] = []
    for side in ("bid", "ask"):
        prices = books[[f"{side}{i}" for i in range(1, BOOK_DEPTH + 1)]].to_numpy(dtype="float64").tolist()
        sizes = books[[f"{side}sz{i}" for i in range(1, BOOK_DEPTH + 1)]].to_numpy(dtype="float64").tolist()
        sides.append(
            [
                tuple((p, q) for p, q in zip(ps, qs, strict=True) if not (math.isnan(p) or math.isnan(q)))
                for ps, qs in zip(prices, sizes, strict=True)
            ]
        )
    return list(zip(ts, sides[0], sides[1], strict=True))


def iter_flow(
    symbol: str,
    quotes: pd.DataFrame,
    books: pd.DataFrame,
    config: FlowConfig | None = None,
    *,
    late: list[LateRecordError] | None = None,
    state: FlowState | None = None,
    flush: bool = True,
    with_books: bool | None = None,
    prints: Prints | None = "trades",
) -> Iterator[FlowChunk]:
    """Fold :class:`FlowState` over one symbol's quotes and books, each in its own row order (its stream order).

    Merge order: the two streams are merged by ``ts``, a quote before a book at equal ``ts`` (the simulator's
    emission order); each stream keeps its own row order (a stream that is not sorted stays unsorted). Late
    records are dropped, and collected in ``late`` if given. ``flush`` closes the open chunks at the end.
    ``with_books``: whether the feed sends books (:attr:`FlowState.books`; default: whether ``books`` has rows);
    ``prints``: the feed's prints (:attr:`FlowState.prints`).
    """
    if with_books is None:
        with_books = len(books) > 0
    fs = state if state is not None else FlowState(symbol, config, books=with_books, prints=prints)
    qrows = _quote_rows(quotes)
    brows = _book_rows(books)
    i = j = 0
    nq, nb = len(qrows), len(brows)
    on_quote, on_book = fs.on_quote_values, fs.on_book_values
    while i < nq or j < nb:
        try:
            if j >= nb or (i < nq and qrows[i][0] <= brows[j][0]):
                i += 1
                yield from on_quote(*qrows[i - 1])
            else:
                j += 1
                yield from on_book(*brows[j - 1])
        except LateRecordError as exc:
            if late is not None:
                late.append(exc)
    if flush:
        yield from fs.flush()


def chunks_to_frame(chunks: Iterable[FlowChunk]) -> pd.DataFrame:
    """Columns ``symbol``, ``ts`` (chunk end) and :data:`FLOW_FEATURE_NAMES` (float64, None → NaN)."""
    chunk_list = list(chunks)
    data = np.array(
        [[np.nan if x is None else x for x in c.values.values()] for c in chunk_list], dtype="float64"
    ).reshape(len(chunk_list), len(FLOW_FEATURE_NAMES))
    frame = pd.DataFrame(data, columns=list(FLOW_FEATURE_NAMES))
    frame.insert(0, "ts", np.array([c.end for c in chunk_list], dtype="int64"))
    frame.insert(0, "symbol", np.array([c.symbol for c in chunk_list], dtype=object))
    return frame


def compute_flow_frame(
    quotes: pd.DataFrame,
    books: pd.DataFrame,
    config: FlowConfig | None = None,
    *,
    late: list[LateRecordError] | None = None,
    with_books: Callable[[str], bool] | None = None,
    prints: Callable[[str], Prints | None] | None = None,
    learnt: dict[str, Prints | None] | None = None,
) -> pd.DataFrame:
    """Flow features of many symbols: per symbol (sorted), the fold :func:`iter_flow` over its rows.
    ``with_books`` says per symbol whether its feed sends books (default: whether ``books`` has its rows),
    ``prints`` what its feed prints (default: every trade; ``None``: learnt from the symbol's records, and
    then ``learnt`` receives symbol → what was learnt, ``None`` for a symbol with too few records).

    ``quotes`` has :data:`QUOTE_COLUMNS` (``simulator.quotes_frame()``), ``books`` the :data:`BOOK_COLUMNS`
    (``simulator.books_frame()``); either may be empty. Within a symbol each frame's row order is its stream
    order. Returns :func:`chunks_to_frame` rows ordered by symbol, then ``ts``.
    """
    q_groups = dict(iter(quotes.groupby("symbol", sort=False))) if len(quotes) else {}
    b_groups = dict(iter(books.groupby("symbol", sort=False))) if len(books) else {}
    empty_q = quotes.iloc[:0]
    empty_b = books.iloc[:0]
    chunks: list[FlowChunk] = []
    for symbol in sorted({str(s) for s in (*q_groups, *b_groups)}):
        symbol_books = b_groups.get(symbol, empty_b)
        sends_books = len(symbol_books) > 0 if with_books is None else with_books(symbol)
        fs = FlowState(symbol, config, books=sends_books, prints="trades" if prints is None else prints(symbol))
        chunks.extend(iter_flow(symbol, q_groups.get(symbol, empty_q), symbol_books, config, late=late, state=fs))
        if learnt is not None and fs.prints_learner is not None:
            learnt[symbol] = fs.prints
    return chunks_to_frame(chunks)
