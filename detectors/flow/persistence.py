"""A :class:`~tapewatch.detectors.flow.FlowState` as JSON-safe state and back
(:meth:`~tapewatch.detectors.flow.FlowState.to_state`,
:meth:`~tapewatch.detectors.flow.FlowState.from_state`), the state's version, and how the older versions still load.
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
from tapewatch.detectors.layers import LayerTracker
from tapewatch.feeds import Prints

if TYPE_CHECKING:
    from tapewatch.detectors.flow.state import FlowState

FLOW_STATE_VERSION: Final = 10
#: a version-1 … -8 (flow-v1 … flow-v8) state still loads: see :meth:`FlowState.from_state`. flow-v5's layer
#: tracker weighs its mean level size in event time (it keeps the last book's ts), flow-v4's per book; flow-v6
#: keeps flow-v5's state and leaves the print-level features null on a snapshot feed; flow-v7 keeps flow-v6's
#: state and adds ``volume_rel_p95_long``, whose window it rebuilds from the baseline; flow-v8 keeps flow-v7's
#: state and adds ``mirror_trades_long`` and ``mirror_excess_share_long`` (from sums the state already keeps);
#: flow-v9's layer tracker learns the gap between books (a flow-v8 state learns it again from its next books);
#: flow-v10's layer tracker keeps each layer's level and the previous book's sizes (it watches levels 2–5 against
#: the mean level, :mod:`tapewatch.detectors.layers`): an older state's tracker starts afresh
_V9: Final = (9, "flow-v9")
_V8: Final = (8, "flow-v8")
_V7: Final = (7, "flow-v7")
_V6: Final = (6, "flow-v6")
_V5: Final = (5, "flow-v5")
_V4: Final = (4, "flow-v4")
_V1: Final = (1, "flow-v1")
_V2: Final = (2, "flow-v2")
_V3: Final = (3, "flow-v3")


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
    version = _state_version(state, cfg)
    fs = cls(str(state["symbol"]), cfg, books=books, prints=prints)
    learnt = state.get("prints")
    if prints is None and learnt is not None:  # a profile that says wins over what was learnt
        fs.prints_learner = PrintsLearner.from_state(learnt)
        fs.prints = fs.prints_learner.decided
    fs.qwm, fs.bwm, fs.first_quote, fs.first_book, fs.closed_below = state["wm"]
    origin = _load_last(fs, state["last"], v1=version == _V1, tracker=version[0] == FLOW_STATE_VERSION)
    fs.prev_book = _book(state["book"])
    chunk_version = int(version[0])
    for data in state["open"]:
        chunk = _Chunk.from_list(data, chunk_version)
        fs.open[chunk.index] = chunk
    fs.heap = sorted(fs.open)
    fs.recent.extend(_Chunk.from_list(data, chunk_version) for data in state["recent"])
    # an older baseline lacks columns, and zeros there would make every new z-score huge: it warms up again
    entries = () if version in {_V1, _V2} else _baseline_entries(state["base"])
    fs.baseline = Baseline(cfg, entries, origin)
    return fs


def _state_version(state: Mapping[str, Any], cfg: FlowConfig) -> tuple[Any, Any]:
    """The (version, feature set) of a :meth:`FlowState.to_state` snapshot; ValueError for one this code does
    not load or one made with other settings."""
    version = (state.get("v"), state.get("features"))
    if version not in {(FLOW_STATE_VERSION, FLOW_FEATURE_SET_VERSION), _V9, _V8, _V7, _V6, _V5, _V4, _V3, _V2, _V1}:
        raise ValueError(
            f"flow state {state.get('v')!r}/{state.get('features')!r} is not supported "
            f"(expected {FLOW_STATE_VERSION}/{FLOW_FEATURE_SET_VERSION})"
        )
    fingerprint = cfg.fingerprint()[:5] if version == _V1 else cfg.fingerprint()  # v1 had no mirror_ms
    if list(state["cfg"]) != fingerprint:
        raise ValueError(f"flow state was made with config {state['cfg']}, not {fingerprint}")
    return version


def _load_last(fs: FlowState, last: list[Any], *, v1: bool, tracker: bool) -> int:
    """The symbol's last closed chunk, previous trade, side inference, mid and layers (an older version's layer
    tracker judged by another yardstick: this one starts afresh); returns the baseline's session origin."""
    if v1:
        fs.last_closed, _, fs.last_price, fs.last_side = last
        return 0 if fs.last_closed is None else fs.last_closed + 1
    fs.last_closed, origin, fs.last_price, fs.last_side, fs.last_trade_ts, fs.last_size = last[:6]
    if len(last) > 6:
        fs.aggressor = AggressorInference.from_state(last[6:8])
        fs.last_mid = None if last[8] is None else float(last[8])
        if tracker:
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
    """The baseline of a flow-v3+ state (:func:`_baseline_columns`)."""
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
