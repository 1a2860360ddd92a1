"""Why an alert fired: its evidence as a table, each value beside the bound its rule compared it with.

Each detector declares its evidence next to the code that writes it (``EVIDENCE`` on every detector class of
:class:`~tapewatch.detectors.patterns.flow_patterns.FlowPatterns`, on
:class:`~tapewatch.detectors.patterns.symbol.SymbolDetector` for K-means;
:data:`tapewatch.detectors.alerting.POLICY_EVIDENCE` for what the alert policy adds and
:data:`tapewatch.detectors.patterns.materiality.EVIDENCE` for what the materiality gate adds): this module only
gathers them (:data:`DETECTORS`). :func:`explain` finds the rule an alert's evidence came from (:func:`rule_of`:
its kind and, where the kind has several rules — five pump-and-dump paths, two wash-trading and two
marking-the-close ones — the key only that rule writes) and reads the evidence with it
(:func:`tapewatch.detectors.evidence.lines`): one :class:`~tapewatch.detectors.evidence.EvidenceLine` per evidence key.

The thresholds are this code's (:data:`PATTERNS_VERSION`) on the parameters given: pass the alert's feed's
(:meth:`PatternParams.for_feed`), since durations are compared in whole chunks of the feed's flow and a snapshot
feed reads activity from volume too. An alert raised by another version (:func:`explains` is ``False``) was held to
that version's bounds, which may differ. A key no declaration knows (a newer detector's) is a line labelled by its
key, with no bound; so is every key of an unknown kind, and a kind's keys get labels but no bounds when the evidence
carries none of its rules' markers.

A pump's onset, as the alert policy emits it:

>>> from tapewatch.detectors.patterns.symbol import SymbolDetector
>>> detector = SymbolDetector("2330", "sim", params=PatternParams().with_values({"tape.close_time": None}))
>>> onset = {"buy_orders_z_long": 7.0, "order_imbalance_z_long": 3.5, "rush_max_z_long": 8.0, "ret_bps": 20.0}
>>> [alert] = [a for ts in (5_000, 10_000) for a in detector.on_chunk(ts, onset)]
>>> rule_of(alert.kind, alert.evidence).name, explains(alert.kind, alert.model_version)
('pump onset', True)
>>> for line in explain(alert.kind, alert.evidence, detector.params):
...     print(f"{line.key:24} {line.value!s:6} {line.comparison or '':2} {line.threshold!s:5} {line.passed}")
onset_chunks             2      ≥  2.0   True
buy_orders_z_long        7.0    ≥  4.0   True
order_imbalance_z_long   3.5    ≥  2.0   True
rush_max_z_long          8.0    ≥  5.5   True
drift_bps                40.0   >  0.0   True
rush_max_long            None      None  None
trades_z_long            None      None  None
aggr_imbalance_long      None      None  None
ret_bps_long             None      None  None
price_move_bps           40.0   |x| ≥ 25.0  True
material_bps             25.0      None  None
baseline_sessions        0         None  None
calibrated               False     None  None
hits                     1         None  None

On a feed chunked by the second, the same rule asks for ten onset chunks:

>>> from tapewatch.detectors.flow import FlowConfig
>>> from tapewatch.feeds import FeedProfiles
>>> fast = PatternParams().for_feed(FlowConfig(chunk_ms=1_000), FeedProfiles()("binance"))
>>> [(line.threshold, line.formula) for line in explain("pump_and_dump", {"onset_chunks": 2}, fast)]
[(10.0, '⌈pump_onset.min_ms / tape.chunk_ms⌉')]

What this code does not know is shown, never refused:

>>> [(line.label, line.threshold) for line in explain("pump_and_dump", {"onset_chunks": 12, "novel": 1.0}, fast)]
[('onset chunks in the onset window', 10.0), ('novel', None)]
>>> [(line.label, line.threshold) for line in explain("layering_v2", {"layers": 3}, fast)]
[('layers', None)]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from tapewatch.detectors.alerting import POLICY_EVIDENCE, SCORE_EVIDENCE
from tapewatch.detectors.evidence import EvidenceLine, EvidenceValue, Key, Rule, line, lines
from tapewatch.detectors.news.context import NEWS_EVIDENCE
from tapewatch.detectors.orders import firm_messages
from tapewatch.detectors.patterns.base import PATTERNS_VERSION
from tapewatch.detectors.patterns.bursts import Bursts
from tapewatch.detectors.patterns.closing import MarkingTheClose
from tapewatch.detectors.patterns.flow_patterns import COVERAGE_EVIDENCE
from tapewatch.detectors.patterns.ignition import MomentumIgnition
from tapewatch.detectors.patterns.materiality import EVIDENCE as MATERIALITY_EVIDENCE
from tapewatch.detectors.patterns.params import PatternParams
from tapewatch.detectors.patterns.pump_crowd import PumpCrowd
from tapewatch.detectors.patterns.pump_dump import PumpDump
from tapewatch.detectors.patterns.pump_onset import PumpOnset
from tapewatch.detectors.patterns.pump_ramp import PumpRamp
from tapewatch.detectors.patterns.pump_surge import PumpSurge
from tapewatch.detectors.patterns.spoofing import Spoofing
from tapewatch.detectors.patterns.symbol import SymbolDetector
from tapewatch.detectors.patterns.wash import WashTrading
from tapewatch.records import AlertKind

__all__ = [
    "DETECTORS",
    "PATTERNS_VERSION",
    "RULES",
    "SHARED_EVIDENCE",
    "EvidenceLine",
    "explain",
    "explains",
    "rule_of",
]

#: every class that writes a hit, each declaring its evidence (``EVIDENCE``)
DETECTORS: Final = (
    PumpOnset,
    PumpCrowd,
    PumpRamp,
    PumpSurge,
    PumpDump,
    Spoofing,
    WashTrading,
    MarkingTheClose,
    MomentumIgnition,
    Bursts,
    SymbolDetector,
)
#: the rules of the kinds only a firm's drop copy raises (the order-level detectors of spoofing and wash trading
#: share their kinds with the pattern detectors and are not explained against pattern parameters)
ORDER_RULES: Final[tuple[Rule, ...]] = (firm_messages.RULE,)
RULES: Final[tuple[Rule, ...]] = (*(rule for detector in DETECTORS for rule in detector.EVIDENCE), *ORDER_RULES)
#: evidence every alert of its kinds may carry whichever rule wrote it: the alert policy's, the materiality gate's and
#: the calibrated score's
SHARED_EVIDENCE: Final[Mapping[str, Key]] = {
    **MATERIALITY_EVIDENCE,
    **COVERAGE_EVIDENCE,
    **POLICY_EVIDENCE,
    **SCORE_EVIDENCE,
    **NEWS_EVIDENCE,
}


def _kind(kind: AlertKind | str) -> AlertKind | None:
    try:
        return AlertKind(kind)
    except ValueError:
        return None


def rule_of(kind: AlertKind | str, evidence: Mapping[str, EvidenceValue]) -> Rule | None:
    """The rule that wrote this evidence: the kind's rule whose marker the evidence carries, or the kind's only rule
    (``None``: an unknown kind, or none of its rules' markers)."""
    known = _kind(kind)
    return next(
        (rule for rule in RULES if rule.kind is known and (rule.marker is None or rule.marker in evidence)), None
    )


def _labels_only(kind: AlertKind) -> Rule:
    """The kind's labels without bounds: which of its rules wrote the evidence is not known."""
    keys: dict[str, Key] = {}
    for rule in RULES:
        if rule.kind is kind:
            keys.update({name: Key(key.label, key.unit) for name, key in rule.keys.items() if name not in keys})
    return Rule(kind, str(kind), None, keys)


def explain(
    kind: AlertKind | str,
    evidence: Mapping[str, EvidenceValue],
    params: PatternParams,
    *,
    score: float | None = None,
) -> list[EvidenceLine]:
    """An alert's evidence beside its rule's bounds on ``params``: the rule's keys in the order declared (the values it
    compares first), then keys it does not declare, then ``hits``. With the alert's ``score``, a first line holds it
    against its bound where that is a pattern parameter (K-means: ``kmeans.alert_score``)."""
    known = _kind(kind)
    if known is None:
        return lines(None, evidence, params, SHARED_EVIDENCE)
    rule = rule_of(known, evidence) or _labels_only(known)
    table = lines(rule, evidence, params, SHARED_EVIDENCE)
    if score is not None and rule.score is not None:
        table.insert(0, line("score", score, rule.score, params, evidence))
    return table


def explains(kind: AlertKind | str, model_version: str) -> bool:
    """Whether these declarations are the ones an alert of that kind and model version was raised under: a pattern
    alert of this code's :data:`PATTERNS_VERSION`; any K-means alert (its layout and bound are this code's, whatever
    the model). ``False``: flag the table, the alert's own bounds may have differed.

    >>> explains("spoofing", PATTERNS_VERSION), explains("spoofing", "patterns-v18"), explains("kmeans_outlier", "m1")
    (True, False, True)
    """
    known = _kind(kind)
    return known is not None and (known is AlertKind.KMEANS_OUTLIER or model_version == PATTERNS_VERSION)
