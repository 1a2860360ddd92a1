"""Manipulation pattern detectors on the fast order-flow features, one module per detector.

Every detector reads one closed flow chunk at a time (:class:`tapewatch.detectors.flow.FlowChunk` values: the base chunk
and the long chunk ending with it) through one small contract
(:class:`~tapewatch.detectors.patterns.base.PatternDetector`: ``on_chunk``, ``to_state``, ``from_state``) and keeps O(1)
state: a short ring of per-chunk flags. A detector *hits* when its rule holds; the hit's window starts at the first
flagged chunk of the current run, so merged hits of one episode share their first window start and the alert id
(:mod:`tapewatch.detectors.alerting`) is stable. Hit scores are in [0, 1] and grow with how far the evidence exceeds the
rule's bound (:func:`~tapewatch.detectors.patterns.base.strength`); the alert policy maps them to severity.

The rules, their parameters (each module's own record, composed with the tape's in :class:`PatternParams`, named
``module.field`` as ``spoofing.layer_rel``; windows in event time) and their evidence are in each module's
docstring:

* :mod:`~tapewatch.detectors.patterns.pump_onset` — pump-and-dump from buy orders, one-sidedness and rush orders;
* :mod:`~tapewatch.detectors.patterns.pump_crowd` — pump-and-dump from a crowd of buy orders, one-sided, held for a
  minute (no rush needed);
* :mod:`~tapewatch.detectors.patterns.pump_surge` — pump-and-dump where the feed has no order-level prints: volume far
  above the symbol's own, net buying and the price following, held for a minute;
* :mod:`~tapewatch.detectors.patterns.pump_ramp` — pump-and-dump on any feed: a drift far beyond the symbol's own
  volatility on unusual volume, walked rather than jumped;
* :mod:`~tapewatch.detectors.patterns.pump_dump` — pump-and-dump on any feed, confirmed by its dump: a rise walked over
  minutes, sold back fast;
* :mod:`~tapewatch.detectors.patterns.spoofing` — persistent layers that vanish under pressure, repeatedly;
* :mod:`~tapewatch.detectors.patterns.wash` — wash trading from mirror trades;
* :mod:`~tapewatch.detectors.patterns.closing` — marking the close;
* :mod:`~tapewatch.detectors.patterns.ignition` — momentum ignition;
* :mod:`~tapewatch.detectors.patterns.bursts` — volume and price bursts;
* :mod:`~tapewatch.detectors.patterns.context` — what they share: the session clock, the price drift, sweeps;
* :mod:`~tapewatch.detectors.patterns.explain` — why an alert fired: its evidence beside the bounds of the rule that
  wrote it (each detector's ``EVIDENCE``, :mod:`tapewatch.detectors.evidence`).

:class:`FlowPatterns` runs them in order over each chunk; :class:`SymbolDetector` bundles, per symbol, the
flow patterns, the K-means scorer of the 1-minute bar features and the alert policy.

Tuned on simulator seeds 1–5 (plus seeds 1–5 with a raised marking-the-close rate) and seeds 2–4 of the
feed-profile matrix; reported on seeds never tuned on (docs/evaluation.md).
"""

from tapewatch.detectors.patterns.base import PATTERNS_VERSION, PatternDetector, Values
from tapewatch.detectors.patterns.flow_patterns import FlowPatterns
from tapewatch.detectors.patterns.params import PatternParams, TapeParams
from tapewatch.detectors.patterns.symbol import STATE_VERSION, SymbolDetector

__all__ = [
    "PATTERNS_VERSION",
    "STATE_VERSION",
    "FlowPatterns",
    "PatternDetector",
    "PatternParams",
    "SymbolDetector",
    "TapeParams",
    "Values",
]
