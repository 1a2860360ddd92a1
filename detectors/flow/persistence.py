"""A :class:`~tapewatch.detectors.flow.FlowState` as JSON-safe state and back
(:meth:`~tapewatch.detectors.flow.FlowState.to_state`, :meth:`~tapewatch.detectors.flow.FlowState.from_state`).

The state, version :data:`FLOW_STATE_VERSION` (a stored state of an older version is brought up to it first, by
the steps of :mod:`~tapewatch.detectors.flow.versions`):

* ``v``, ``features`` — the state's version and its feature set (:data:`FLOW_FEATURE_SET_VERSION`);
* ``cfg`` — the settings it depends on (:meth:`FlowConfig.fingerprint`; null where it goes with any value);
* ``symbol``; ``wm`` — the newest quote and book, the first quote and book, and the chunk below which every chunk
  is closed;
* ``last`` — the last closed chunk, the baseline's session origin, the previous trade's price, side, ts and size,
  the side inference (two entries), the last mid of the closed chunks and the layer tracker;
* ``book`` — the previous book (ts, bids, asks), null before the first;
* ``open``, ``recent`` — the open chunks and the closed ones the long window holds, each a list of its fields in
  ``CHUNK_FIELDS`` order;
* ``base`` — the baseline, columnar (:func:`_baseline_columns`);
* ``prints`` — what the symbol's records said of the feed's prints, null where its profile says.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import accumulate, starmap
from typing import TYPE_CHECKING, Any, Final

from tapewatch.detectors.aggressor import AggressorInference
from tapewatch.detectors.feed_learning import PrintsLearner
from tapewatch.detectors.flow.baseline import _BASELINE_COLUMNS, Baseline, BaselineEntry
from tapewatch.detectors.flow.catalogue import FLOW_FEATURE_SET_VERSION, FlowConfig
from tapewatch.detectors.flow.chunk import BookSide, _Chunk
from tapewatch.detectors.flow.versions import FLOW_STATE, upgraded
from tapewatch.detectors.layers import LayerTracker
from tapewatch.feeds import Prints

if TYPE_CHECKING:
    from tapewatch.detectors.flow.state import FlowState

FLOW_STATE_VERSION: Final = FLOW_STATE.current


class ChunkLists:
    """Chunk index → its serialised form while unchanged: a catch-up keeps many chunks open, and the state is
    written once per batch, so re-serialising only the chunks touched since keeps that cost O(touched)."""

    __slots__ = ("_lists",)

    def __init__(self) -> None:
        self._lists: dict[int, list[Any]] = {}

    def forget(self, index: int) -> None:
        """Chunk ``index`` is about to change."""
        self._lists.pop(index, None)

    def listed(self, chunk: _Chunk, open_chunks: Mapping[int, _Chunk], recent: Sequence[_Chunk]) -> list[Any]:
        """``chunk``'s serialised form; ``open_chunks`` and ``recent`` are every chunk still in the state."""
        lists = self._lists
        if len(lists) > 2 * (len(open_chunks) + len(recent)) + 16:  # forget chunks that are gone
            alive = {*open_chunks, *(c.index for c in recent)}
            self._lists = lists = {n: v for n, v in lists.items() if n in alive}
        listed = lists.get(chunk.index)
        if listed is None:
            listed = lists[chunk.index] = chunk.to_list()
        return listed


def state_of(fs: FlowState) -> dict[str, Any]:
    """:meth:`FlowState.to_state`."""
    prev_book = fs.prev_book
    listed = fs.chunk_lists.listed
    return {
        "v": FLOW_STATE_VERSION,
        "features": FLOW_FEATURE_SET_VERSION,
        "cfg": fs.config.fingerprint(),
        "symbol": fs.symbol,
        "wm": [fs.qwm, fs.bwm, fs.first_quote, fs.first_book, fs.closed_below],
        "last": [
            fs.last_closed,
            fs.baseline.origin,
            fs.last_price,
            fs.last_side,
            fs.last_trade_ts,
            fs.last_size,
            *fs.aggressor.to_state(),
            fs.last_mid,
            fs.layer_tracker.to_state(),
        ],
        "book": None
        if prev_book is None
        else [prev_book[0], [list(level) for level in prev_book[1]], [list(level) for level in prev_book[2]]],
        "open": [listed(fs.open[n], fs.open, fs.recent) for n in sorted(fs.open)],
        "recent": [listed(c, fs.open, fs.recent) for c in fs.recent],
        "base": _baseline_columns(fs.baseline.entries),
        # what the symbol's records said of the feed's prints, where its profile does not say
        "prints": None if fs.prints_learner is None else fs.prints_learner.to_state(),
    }


def restore(
    cls: type[FlowState], state: Mapping[str, Any], config: FlowConfig | None, *, books: bool, prints: Prints | None
) -> FlowState:
    """:meth:`FlowState.from_state`."""
    cfg = config if config is not None else FlowConfig()
    state = upgraded(state)
    _check_config(state["cfg"], cfg)
    fs = cls(str(state["symbol"]), cfg, books=books, prints=prints)
    learnt = state["prints"]
    if prints is None and learnt is not None:  # a profile that says wins over what was learnt
        fs.prints_learner = PrintsLearner.from_state(learnt)
        fs.prints = fs.prints_learner.decided
    fs.qwm, fs.bwm, fs.first_quote, fs.first_book, fs.closed_below = state["wm"]
    origin = _load_last(fs, state["last"])
    fs.prev_book = _book(state["book"])
    for data in state["open"]:
        chunk = _Chunk.from_list(data)
        fs.open[chunk.index] = chunk
    fs.heap = sorted(fs.open)
    fs.recent.extend(_Chunk.from_list(data) for data in state["recent"])
    fs.baseline = Baseline(cfg, _baseline_entries(state["base"]), origin)
    return fs


def _check_config(made_with: Sequence[Any], cfg: FlowConfig) -> None:
    """ValueError for a state made with other settings than ``cfg``'s (a null one goes with any)."""
    fingerprint = cfg.fingerprint()
    if len(made_with) != len(fingerprint) or any(
        setting is not None and setting != value for setting, value in zip(made_with, fingerprint, strict=True)
    ):
        raise ValueError(f"flow state was made with config {list(made_with)}, not {fingerprint}")


def _load_last(fs: FlowState, last: Sequence[Any]) -> int:
    """The symbol's last closed chunk, previous trade, side inference, mid and layers; returns the baseline's
    session origin."""
    fs.last_closed, origin, fs.last_price, fs.last_side, fs.last_trade_ts, fs.last_size = last[:6]
    fs.aggressor = AggressorInference.from_state(list(last[6:8]))
    fs.last_mid = None if last[8] is None else float(last[8])
    fs.layer_tracker = LayerTracker.from_state(last[9])
    return int(origin)


def _book(book: Sequence[Any] | None) -> tuple[int, BookSide, BookSide] | None:
    """The previous book (the next book's depth changes compare with it)."""
    if book is None:
        return None
    return (
        int(book[0]),
        tuple((float(p), float(q)) for p, q in book[1]),
        tuple((float(p), float(q)) for p, q in book[2]),
    )


def _baseline_columns(entries: Iterable[BaselineEntry]) -> list[list[Any]]:
    """Columnar, indices as deltas: the baseline is most of the state (transposed in C, not per column)."""
    indices, *columns = list(zip(*entries, strict=True)) or [()] * _BASELINE_COLUMNS
    return [[b - a for a, b in zip((0, *indices), indices, strict=False)], *map(list, columns)]


def _baseline_entries(base: Sequence[Any]) -> Iterator[BaselineEntry]:
    """The baseline's entries from its columns (:func:`_baseline_columns`)."""
    deltas, *columns = base
    trades, volumes, rushes, levels, buy_orders, rush_max, mirror, cancels, level_maxes, rets, mid_rets = columns
    return starmap(
        BaselineEntry,
        zip(
            accumulate(map(int, deltas)),
            map(int, trades),
            map(float, volumes),
            map(int, rushes),
            [None if level is None else float(level) for level in levels],
            map(int, buy_orders),
            map(int, rush_max),
            map(float, mirror),
            map(float, cancels),
            map(float, level_maxes),
            map(float, rets),
            map(float, mid_rets),
            strict=True,
        ),
    )
