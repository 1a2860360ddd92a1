"""The flow state's versions, as Alembic keeps a schema: :data:`FLOW_STATE` lists the step from each version of
:meth:`~tapewatch.detectors.flow.FlowState.to_state` to the next, and :func:`upgraded` runs them from a stored
state's version up to the current one, so that :func:`~tapewatch.detectors.flow.persistence.restore` reads the
current format only (described in :mod:`~tapewatch.detectors.flow.persistence`).

Each version's state names its feature set too, ``flow-v<version>``: a step moves it with the version.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from tapewatch.state_versions import StateVersionError, StateVersions

#: a chunk's fields as its list holds them, from version 3 on (``_Chunk.__slots__`` then, and still)
_V3_CHUNK: Final = tuple(
    "added_l1 added_l25 books buy buy_orders cancel_l1 cancel_l25 first_price first_ts gone_l1 gone_l25 high imb1_n "  # noqa: SIM905
    "imb1_sum imb5_n imb5_sum index inferred last_mid last_price last_ts layer_side layer_size layers_gone level_max "
    "level_n level_sum low mirror_trades mirror_volume ms pairs prev_mid prev_price qspread_n qspread_sum quotes "
    "removed_l1 removed_l25 rush_max rush_orders rush_trades sell sell_orders sizes spread_n spread_sum switches "
    "traded trades".split()
)
#: the chunk fields version 2 added, each with the value a chunk that had none starts at
_V2_CHUNK_FIELDS: Final[dict[str, Any]] = {
    "buy_orders": 0,
    "mirror_trades": 0,
    "mirror_volume": 0.0,
    "rush_max": 0,
    "sell_orders": 0,
}
#: the chunk fields version 3 added, each with the value a chunk that had none starts at
_V3_CHUNK_FIELDS: Final[dict[str, Any]] = {
    "inferred": 0,
    "last_mid": None,
    "layer_side": 0,
    "layer_size": 0.0,
    "layers_gone": [],
    "prev_mid": None,
}
_V2_CHUNK: Final = tuple(name for name in _V3_CHUNK if name not in _V3_CHUNK_FIELDS)
_V1_CHUNK: Final = tuple(name for name in _V2_CHUNK if name not in _V2_CHUNK_FIELDS)
_LAYERS_GONE: Final = _V3_CHUNK.index("layers_gone")
#: ``last``'s entry of the layer tracker, from version 3 on
_TRACKER: Final = 9


def _v2(state: Mapping[str, Any]) -> dict[str, Any]:
    """Version 2 (flow-v2: aggressive orders, rushes, mirror trades):

    * the settings (``cfg``) gain ``mirror_ms``: null, as a version-1 state counted no mirror trades (it goes with
      any);
    * ``last`` gains the previous trade's ts and size (0: none yet), and its session origin is the chunk after
      the last closed one;
    * each chunk gains its order, rush and mirror counts, at zero;
    * the baseline starts empty: it lacks the new columns, and zeros there would make every new z-score huge, so
      all z-scores warm up again.
    """
    last_closed, _, last_price, last_side = state["last"]
    origin = 0 if last_closed is None else last_closed + 1
    return {
        **state,
        "features": "flow-v2",
        "cfg": [*state["cfg"], None],
        "last": [last_closed, origin, last_price, last_side, 0, 0.0],
        **_grown(state, _V1_CHUNK, _V2_CHUNK, _V2_CHUNK_FIELDS),
        "base": [[] for _ in range(8)],
    }


def _v3(state: Mapping[str, Any]) -> dict[str, Any]:
    """Version 3 (flow-v3: sides inferred, layers, mid returns):

    * ``last`` gains the side inference (no price seen yet), the last mid (unknown) and the layer tracker
      (nothing learnt);
    * each chunk gains its inferred-side count, its mids and its vanished layers, empty;
    * the baseline starts empty again (it gains four columns).
    """
    return {
        **state,
        "features": "flow-v3",
        "last": [*state["last"], None, 0, None, [None, []]],
        **_grown(state, _V2_CHUNK, _V3_CHUNK, _V3_CHUNK_FIELDS),
        "base": [[] for _ in range(12)],
    }


def _v4(state: Mapping[str, Any]) -> dict[str, Any]:
    """Version 4 (flow-v4: a layer's life): a layer the tracker follows gains the mid when it first showed, a
    vanished layer in a chunk the mid's move over its life — both unknown (null)."""
    tracker = state["last"][_TRACKER]
    followed = [[*layer[:4], None] for layer in tracker[1]]
    return {
        **state,
        "features": "flow-v4",
        "last": _with_tracker(state, [tracker[0], followed, *tracker[2:]]),
        **_each_layers_gone(state, lambda gone: [[*layer[:4], None] for layer in gone]),
    }


def _v5(state: Mapping[str, Any]) -> dict[str, Any]:
    """Version 5 (flow-v5): the layer tracker weighs its mean level in event time, and keeps the last book's ts
    for it (null: the next book starts the clock)."""
    tracker = state["last"][_TRACKER]
    return {**state, "features": "flow-v5", "last": _with_tracker(state, [*tracker[:2], None])}


def _v6(state: Mapping[str, Any]) -> dict[str, Any]:
    """Version 6 (flow-v6) leaves the print-level features null on a snapshot feed: the state is unchanged."""
    return {**state, "features": "flow-v6"}


def _v7(state: Mapping[str, Any]) -> dict[str, Any]:
    """Version 7 (flow-v7) adds ``volume_rel_p95_long``, whose window of long volumes is rebuilt from the baseline
    on load: the state is unchanged."""
    return {**state, "features": "flow-v7"}


def _v8(state: Mapping[str, Any]) -> dict[str, Any]:
    """Version 8 (flow-v8) adds ``mirror_trades_long`` and ``mirror_excess_share_long``, from sums the state keeps
    already. A state may lack what the symbol's records said of the feed's prints (``prints``, kept from a later
    version-7 state on): null, nothing learnt (a feed whose profile does not say learns it from its next
    records)."""
    return {"prints": None, **state, "features": "flow-v8"}


def _v9(state: Mapping[str, Any]) -> dict[str, Any]:
    """Version 9 (flow-v9): the layer tracker learns the gap between books (null: learnt again from the next
    books)."""
    tracker = state["last"][_TRACKER]
    return {**state, "features": "flow-v9", "last": _with_tracker(state, [*tracker[:3], None])}


def _v10(state: Mapping[str, Any]) -> dict[str, Any]:
    """Version 10 (flow-v10): the layer tracker keeps each layer's level and the previous book's sizes (a level
    re-quoted at another price, or a book pulled on both sides, is not a vanished layer), and a vanished layer
    carries its level and the typical level it was judged against. An older tracker starts afresh (nothing
    learnt), and the vanished layers it left in the chunks, which lack both, are dropped."""
    return {
        **state,
        "features": "flow-v10",
        "last": _with_tracker(state, [None, [], None, None, []]),
        **_each_layers_gone(state, lambda gone: []),
    }


#: the flow state's versions: ``FLOW_STATE.current`` is :data:`~tapewatch.detectors.flow.FLOW_STATE_VERSION`
FLOW_STATE: Final = StateVersions("flow state", (_v2, _v3, _v4, _v5, _v6, _v7, _v8, _v9, _v10))


def upgraded(state: Mapping[str, Any]) -> Mapping[str, Any]:
    """``state`` in the current format; :class:`~tapewatch.state_versions.StateVersionError` (a ``ValueError``)
    for a version this code does not load, or a feature set that is not its version's."""
    version, features = state.get("v"), state.get("features")
    if features != f"flow-v{version}":
        raise StateVersionError(
            f"flow state {version!r}/{features!r} is not supported (expected {FLOW_STATE.current}/"
            f"flow-v{FLOW_STATE.current})"
        )
    return FLOW_STATE.upgrade(state)


def _grown(
    state: Mapping[str, Any], before: Sequence[str], after: Sequence[str], added: Mapping[str, Any]
) -> dict[str, list[Any]]:
    """``open`` and ``recent`` with each chunk's list laid out as ``after``, the ``added`` fields at their start."""

    def grown(chunk: Sequence[Any]) -> list[Any]:
        fields = dict(zip(before, chunk, strict=True))
        return [fields[name] if name in fields else copy.deepcopy(added[name]) for name in after]

    return {key: [grown(chunk) for chunk in state[key]] for key in ("open", "recent")}


def _each_layers_gone(state: Mapping[str, Any], change: Callable[[list[Any]], list[Any]]) -> dict[str, list[Any]]:
    """``open`` and ``recent`` with each chunk's vanished layers (a list of lists) changed by ``change``."""

    def changed(chunk: Sequence[Any]) -> list[Any]:
        return [change(value) if i == _LAYERS_GONE else value for i, value in enumerate(chunk)]

    return {key: [changed(chunk) for chunk in state[key]] for key in ("open", "recent")}


def _with_tracker(state: Mapping[str, Any], tracker: list[Any]) -> list[Any]:
    """``last`` with the layer tracker's state replaced."""
    return [tracker if i == _TRACKER else value for i, value in enumerate(state["last"])]
