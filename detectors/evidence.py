"""What an alert's evidence means, declared by the code that writes it: the vocabulary, and one alert read with it.

Each detector declares, next to the code that builds its hits, one :class:`Rule` per evidence layout it writes: the
alert kind, a readable name, the key only that rule's hits of the kind carry (``marker``: how an alert's evidence
tells which of its kind's rules fired) and, for every evidence key, a :class:`Key` — a readable label, a unit and,
where the rule compares the value with a threshold, that :class:`Bound`: the comparison, the parameter the threshold
comes from, by its qualified name (``spoofing.layer_rel``:
:meth:`~tapewatch.detectors.patterns.params.PatternParams.value`), and how the code computes the number it compares with
(a duration in whole chunks, a share of another evidence value, …). A value the rule does not compare is *context*: a
key without a bound.

A bound every hit of the rule passes has ``unless=None``; one the rule may fire without (it fires on either of two
conditions) names the other condition, so a line that fails it is not a contradiction.

:func:`lines` reads one alert's evidence against one rule; :mod:`tapewatch.detectors.patterns.explain` finds the rule of
an alert. Evidence values travel rounded to 6 decimals (:mod:`tapewatch.detectors.alerting`), so a value within
:data:`SLACK` of its bound passes it.

>>> from tapewatch.detectors.patterns.params import PatternParams
>>> rule = Rule(AlertKind.VOLUME_BURST, "volume burst", None, {
...     "volume_z_long": Key("volume vs the symbol's last hour", "σ", bound("≥", "bursts.volume_z")),
...     "volume_long": Key("volume traded in the long window", "shares"),
... })
>>> for line in lines(rule, {"volume_long": 90_000.0, "volume_z_long": 31.5}, PatternParams()):
...     print(line.key, line.value, line.comparison, line.threshold, line.passed)
volume_z_long 31.5 ≥ 25.0 True
volume_long 90000.0 None None None

A key no declaration knows (a newer detector's) is still a line, labelled by its key:

>>> [(line.label, line.threshold) for line in lines(rule, {"novel": 1}, PatternParams())]
[('novel', None)]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from tapewatch.records import AlertKind

if TYPE_CHECKING:  # annotations only: a threshold reads the parameters it is given
    from tapewatch.detectors.patterns.params import PatternParams

__all__ = [
    "SLACK",
    "Bound",
    "BoundOf",
    "Comparison",
    "Evidence",
    "EvidenceLine",
    "EvidenceValue",
    "Key",
    "Rule",
    "Threshold",
    "bound",
    "derived",
    "fixed",
    "holds",
    "line",
    "lines",
    "number",
]

EvidenceValue = float | int | str | bool | None
Evidence = Mapping[str, EvidenceValue]
#: how the value is compared with the threshold ``t``: ``x ≥ t``, ``x > t``, ``x ≤ t``, ``|x| ≥ t``, ``|x| ≤ t``,
#: ``0 < x ≤ t``
Comparison = Literal["≥", ">", "≤", "|x| ≥", "|x| ≤", "0 < x ≤"]
#: the number a value is compared with, from the parameters and the alert's other evidence (``None``: not known)
Threshold = Callable[["PatternParams", Evidence], float | None]
#: evidence is rounded to 6 decimals on the wire: a value this close to its bound passes it
SLACK: Final = 1e-6

_HOLDS: Final[Mapping[str, Callable[[float, float], bool]]] = {
    "≥": lambda x, t: x >= t - SLACK,
    ">": lambda x, t: x > t,
    "≤": lambda x, t: x <= t + SLACK,
    "|x| ≥": lambda x, t: abs(x) >= t - SLACK,
    "|x| ≤": lambda x, t: abs(x) <= t + SLACK,
    "0 < x ≤": lambda x, t: 0.0 < x <= t + SLACK,
}


@dataclass(frozen=True, slots=True)
class Bound:
    """A rule's threshold for one evidence value: ``value <comparison> threshold``."""

    comparison: Comparison
    #: the parameter the threshold comes from, by its qualified name (``None``: a constant of the rule, or another
    #: evidence value)
    param: str | None
    #: how the code computes the threshold, readable: ``"pump_onset.buy_orders_z"``,
    #: ``"⌈pump_onset.min_ms / tape.chunk_ms⌉"``, ``"0.5 × spread_bps_long"``
    formula: str
    threshold: Threshold
    #: the rule's other way to fire, which does not need this bound (``None``: every hit passes it)
    unless: str | None = None


#: a bound that depends on the feed (``tape.prints``): ``None`` where the rule does not compare the value
BoundOf = Callable[["PatternParams"], Bound | None]


def bound(comparison: Comparison, param: str, *, chunks: bool = False, unless: str | None = None) -> Bound:
    """The bound of a value compared with a parameter (by its qualified name) as it is (``chunks``: a duration in ms,
    compared as the whole chunks covering it, :meth:`~tapewatch.detectors.patterns.params.TapeParams.chunks`).

    >>> from tapewatch.detectors.patterns.params import PatternParams
    >>> onset = bound("≥", "pump_onset.min_ms", chunks=True)
    >>> fast = PatternParams().with_values({"tape.chunk_ms": 1_000})
    >>> onset.formula, onset.threshold(PatternParams(), {}), onset.threshold(fast, {})
    ('⌈pump_onset.min_ms / tape.chunk_ms⌉', 2.0, 10.0)
    """
    if chunks:
        return Bound(
            comparison,
            param,
            f"⌈{param} / tape.chunk_ms⌉",
            lambda p, _: float(p.tape.chunks(p.value(param))),
            unless,
        )
    return Bound(comparison, param, param, lambda p, _: float(p.value(param)), unless)


def derived(comparison: Comparison, param: str | None, formula: str, threshold: Threshold) -> Bound:
    """The bound of a value compared with what the code computes from a parameter and the alert's other values."""
    return Bound(comparison, param, formula, threshold)


def fixed(comparison: Comparison, value: float) -> Bound:
    """The bound of a value compared with a constant of the rule."""
    return Bound(comparison, None, f"{value:g}", lambda _p, _e: float(value))


@dataclass(frozen=True, slots=True)
class Key:
    """One evidence key: its label, its unit and the rule's bound (``None``: context, the rule does not compare it)."""

    label: str
    unit: str = ""
    bound: Bound | BoundOf | None = None

    def bound_for(self, params: PatternParams) -> Bound | None:
        """The bound on these parameters' feed."""
        return self.bound if self.bound is None or isinstance(self.bound, Bound) else self.bound(params)


@dataclass(frozen=True, slots=True)
class Rule:
    """What one rule's hits carry as evidence."""

    kind: AlertKind
    #: readable: ``"pump onset"``, ``"closing move"``
    name: str
    #: the key only this rule's hits of the kind carry (``None``: the kind has no other rule)
    marker: str | None
    keys: Mapping[str, Key]
    #: the declaration of every other key (K-means: the model's features, by name; ``{key}`` in its label)
    others: Key | None = None
    #: the rule's bound on the alert's score, where its threshold is a pattern parameter (K-means)
    score: Key | None = None


@dataclass(frozen=True, slots=True)
class EvidenceLine:
    """One row of an alert's evidence table: the value, and beside it the bound the rule compared it with."""

    key: str
    label: str
    value: EvidenceValue
    unit: str
    #: the number the value is compared with (``None``: context, or a bound whose inputs the alert lacks)
    threshold: float | None
    comparison: Comparison | None
    #: the value meets the bound (``None``: no bound, or no number to compare)
    passed: bool | None
    #: the parameter the threshold comes from, by its qualified name (``spoofing.layer_rel``)
    param: str | None = None
    #: how the threshold is computed from it (:attr:`Bound.formula`)
    formula: str | None = None
    #: the rule's other way to fire (:attr:`Bound.unless`): a hit may fail this bound when that holds
    unless: str | None = None


def number(evidence: Evidence, key: str) -> float | None:
    """The evidence value under ``key`` as a number (``None``: absent, null or not a number).

    >>> number({"a": 2, "b": True, "c": None}, "a"), number({"b": True}, "b"), number({}, "c")
    (2.0, None, None)
    """
    value = evidence.get(key)
    return None if isinstance(value, bool) or not isinstance(value, int | float) else float(value)


def holds(comparison: Comparison, value: EvidenceValue, threshold: float | None) -> bool | None:
    """Whether ``value`` meets the bound; ``None`` without a number on either side.

    >>> holds("|x| ≥", -40.0, 35.0), holds("≤", 0.3000004, 0.3), holds("≥", None, 1.0), holds("≥", True, 1.0)
    (True, True, None, None)
    """
    x = number({"x": value}, "x")
    if threshold is None or x is None or math.isnan(x):
        return None
    return _HOLDS[comparison](x, threshold)


def line(
    key: str, value: EvidenceValue, declared: Key | None, params: PatternParams, evidence: Evidence
) -> EvidenceLine:
    """One value against its declaration (``None``: an unknown key, labelled by its name, with no bound)."""
    if declared is None:
        return EvidenceLine(key, key, value, "", None, None, None)
    found = declared.bound_for(params)
    if found is None:
        return EvidenceLine(key, declared.label, value, declared.unit, None, None, None)
    threshold = found.threshold(params, evidence)
    return EvidenceLine(
        key,
        declared.label,
        value,
        declared.unit,
        threshold,
        found.comparison,
        holds(found.comparison, value, threshold),
        found.param,
        found.formula,
        found.unless,
    )


def lines(
    rule: Rule | None, evidence: Evidence, params: PatternParams, shared: Mapping[str, Key] | None = None
) -> list[EvidenceLine]:
    """The alert's evidence read with ``rule``: its declared keys in the order declared, then any other key in the
    evidence's order, then the ``shared`` keys every alert carries (the alert policy's). Keys absent from the
    evidence have no line; ``rule=None`` labels every key by its name."""
    declared: Mapping[str, Key] = {} if rule is None else rule.keys
    shared = shared or {}
    order = [
        *(key for key in declared if key in evidence),
        *(key for key in evidence if key not in declared and key not in shared),
        *(key for key in shared if key in evidence and key not in declared),
    ]
    return [line(key, evidence[key], _declaration(rule, shared, key), params, evidence) for key in order]


def _declaration(rule: Rule | None, shared: Mapping[str, Key], key: str) -> Key | None:
    if rule is not None and key in rule.keys:
        return rule.keys[key]
    if key in shared:
        return shared[key]
    if rule is not None and rule.others is not None:
        others = rule.others
        return Key(others.label.format(key=key), others.unit, others.bound)
    return None
