"""The symbol detector's state versions, as Alembic keeps a schema: :data:`DETECTOR_STATE` lists the step from each
version of :meth:`~tapewatch.detectors.patterns.SymbolDetector.to_state` to the next, and
:meth:`~tapewatch.state_versions.StateVersions.upgrade` runs them from a stored state's version up to the current
one, so that :meth:`~tapewatch.detectors.patterns.SymbolDetector.from_state` and the parts it restores read the
current format only.

The steps change the pattern detectors' part of the state (``patterns``: every detector's keys and the tape's, in
one dict); the alert policy's (``policy``) has kept its one version. A part a version adds starts as that part of a
fresh detector does; a state that holds it already keeps it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from tapewatch.state_versions import StateVersions


def _no_run() -> list[Any]:
    """A ring of flagged chunks (:class:`~tapewatch.detectors.patterns.base.Run`) with none flagged."""
    return [[], None]


def _patterns(state: Mapping[str, Any], **added: Any) -> dict[str, Any]:
    """``state`` with the ``added`` pattern parts where its ``patterns`` lack them."""
    return {**state, "patterns": {**added, **state["patterns"]}}


def _v2(state: Mapping[str, Any]) -> dict[str, Any]:
    """Version 2: the tape's price drift (``drift``) and the sweeps (``sweeps``), empty."""
    return _patterns(state, drift=[], sweeps=[])


def _v3(state: Mapping[str, Any]) -> dict[str, Any]:
    """Version 3: the pump onset's ring (``onset``), empty."""
    return _patterns(state, onset=_no_run())


def _v4(state: Mapping[str, Any]) -> dict[str, Any]:
    """Version 4: the pump ramp's and spoofing's rings (``ramp``, ``spoof``) and the drifts in the symbol's own
    volatility (``ramp_drift``, ``mid_drift``, ``mid_ramp_drift``), empty."""
    return _patterns(state, ramp=_no_run(), spoof=_no_run(), ramp_drift=[], mid_drift=[], mid_ramp_drift=[])


def _v5(state: Mapping[str, Any]) -> dict[str, Any]:
    """Version 5: marking the close's ring of late drifts (``close_late``), empty."""
    return _patterns(state, close_late=_no_run())


def _v6(state: Mapping[str, Any]) -> dict[str, Any]:
    """Version 6: wash trading's ring of pinned-quote surges (``wash_pinned``), empty."""
    return _patterns(state, wash_pinned=_no_run())


def _v7(state: Mapping[str, Any]) -> dict[str, Any]:
    """Version 7: the materiality gate's per-symbol time-of-day baselines (``materiality``), whether they came from a
    calibration (``calibrated``), the hits held as immaterial (``immaterial``) and the session records
    (``records``): all empty (no layout: the baselines and records learn afresh).

    A version-6 state may lack parts added while the version stayed 6; each starts empty: wash trading's history
    gate (``wash_pinned_history``), the slow drifts (``slow_drift``, ``mid_slow_drift``), the pending ignition
    (``ignition``), marking the close's price path and pump mark (``close_levels``, ``close_pump_seen``; its
    late-drift ring ``close_late`` is dropped), the pump's crowd and surge (``pump_crowd``, ``pump_surge``), the
    drifts' scales (``drift_scales``) and spoofing's vanished layers (``spoof_layers``: its pressed cycles, which
    are vanished layers too, the best such a state can say). A pending ignition whose followers were not watched
    (four entries) waits for its reversal alone, as it did (followed, with no imbalance or activity summed).
    """
    patterns = {key: value for key, value in state["patterns"].items() if key != "close_late"}
    pending = patterns.get("ignition")
    if pending is not None and len(pending) == 4:
        patterns["ignition"] = [*pending, 0.0, 0.0, True]
    six = {
        "wash_pinned_history": _no_run(),
        "slow_drift": [],
        "mid_slow_drift": [],
        "ignition": None,
        "close_levels": [],
        "close_pump_seen": None,
        "pump_crowd": _no_run(),
        "pump_surge": _no_run(),
        "drift_scales": [[0.0, 0.0] for _ in range(3)],
        "spoof_layers": copy.deepcopy(patterns.get("spoof", _no_run())),
    }
    seven = {"materiality": {}, "calibrated": False, "immaterial": {}, "records": {}}
    return _patterns({**state, "patterns": patterns}, **six, **seven)


def _v8(state: Mapping[str, Any]) -> dict[str, Any]:
    """Version 8: the K-means records (``kmeans_records``, beside ``patterns`` and ``policy``), empty; and the session
    records (``records``) empty where a version-7 state written before them holds none."""
    return {"kmeans_records": {}, **_patterns(state, records={})}


#: the symbol detector's state versions: ``DETECTOR_STATE.current`` is
#: :data:`~tapewatch.detectors.patterns.STATE_VERSION`
DETECTOR_STATE: Final = StateVersions("detector state", (_v2, _v3, _v4, _v5, _v6, _v7, _v8))
