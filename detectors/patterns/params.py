"""The pattern detectors' parameters: each detector's own record, composed with the tape's, windows in event time.

Every detector module owns a frozen record of its own parameters (``SpoofingParams`` in
:mod:`~tapewatch.detectors.patterns.spoofing`, …), validated on construction. What they all read — the flow chunking,
the venue's prints and session calendar, the drift horizons and what a one-sided sweep is — is :class:`TapeParams`, the
parameters of :class:`~tapewatch.detectors.patterns.context.TapeContext`. :class:`PatternParams` composes them: one
field per record, named as the detector's module. Every detector is built from ``(tape, own)``.

A parameter has one name wherever it is shown or set — evidence bounds, explanations, tests, docs: the record's field
in :class:`PatternParams` and its own, ``spoofing.layer_rel``, ``tape.chunk_ms`` (:meth:`PatternParams.value`,
:meth:`PatternParams.with_values`, :meth:`PatternParams.names`).

Windows and minimum durations are milliseconds, turned into whole chunks of the flow features in force
(:meth:`TapeParams.chunks`): a detector that looks back 2 minutes looks back 2 minutes whatever chunk length the flow
features use, and :meth:`PatternParams.for_feed` is the one place the flow chunking, the venue's session calendar
and its materiality floor reach the detectors.

>>> p = PatternParams()
>>> p.tape.chunks(p.tape.drift_ms), p.tape.chunks(p.value("pump_onset.min_ms"))
(24, 2)
>>> from tapewatch.detectors.flow import FlowConfig
>>> from tapewatch.feeds import FeedProfiles
>>> fast = p.for_feed(FlowConfig(chunk_ms=1_000, long_chunks=10), FeedProfiles()("binance"))
>>> fast.tape.chunks(fast.tape.drift_ms), fast.tape.long_ms, fast.tape.close_time is None
(120, 10000, True)
>>> p.with_values({"spoofing.layer_rel": 8.0}).spoofing.layer_rel
8.0
>>> p.with_values({"pump_crowd.min_ms": 120_000})
Traceback (most recent call last):
ValueError: pump_crowd.min_ms (120000) must not exceed pump_crowd.window_ms (90000)
>>> p.with_values({"pump_crowd.min_ms": 120_000, "pump_crowd.window_ms": 150_000}).pump_crowd.window_ms
150000
>>> p.with_values({"spoofing.window_ms": -1})
Traceback (most recent call last):
ValueError: spoofing.window_ms must be > 0, got -1
>>> p.value("spoof_layer_rel")
Traceback (most recent call last):
KeyError: "no pattern parameter 'spoof_layer_rel': names are qualified, as 'spoofing.layer_rel'"
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import time
from typing import Any, ClassVar

from tapewatch.detectors.bar_chunks import BAR_FLOW
from tapewatch.detectors.flow import FlowConfig
from tapewatch.detectors.patterns.base import CARRIED
from tapewatch.detectors.patterns.bursts import BurstsParams
from tapewatch.detectors.patterns.checks import non_negative, not_longer, positive, shares
from tapewatch.detectors.patterns.closing import MarkingTheCloseParams
from tapewatch.detectors.patterns.ignition import MomentumIgnitionParams
from tapewatch.detectors.patterns.materiality import MaterialityParams
from tapewatch.detectors.patterns.pump_crowd import PumpCrowdParams
from tapewatch.detectors.patterns.pump_dump import PumpDumpParams
from tapewatch.detectors.patterns.pump_onset import PumpOnsetParams
from tapewatch.detectors.patterns.pump_ramp import PumpRampParams
from tapewatch.detectors.patterns.pump_surge import PumpSurgeParams
from tapewatch.detectors.patterns.spoofing import SpoofingParams
from tapewatch.detectors.patterns.wash import WashTradingParams
from tapewatch.feeds import FeedProfile, Prints

__all__ = ["KMeansAlertParams", "PatternParams", "TapeParams"]

#: a venue's UTC offset lies within a day either way
_DAY_MIN = 24 * 60


@dataclass(frozen=True, slots=True)
class TapeParams:
    """What every detector reads: the feed, its chunking and session, the drift horizons and the sweeps of the tape
    around each chunk (:class:`~tapewatch.detectors.patterns.context.TapeContext`)."""

    GROUP: ClassVar[str] = "tape"

    #: the order-flow chunking (``FlowConfig.chunk_ms``/``long_chunks``): :meth:`PatternParams.for_feed` sets them, so
    #: the detectors' windows always follow the features they read
    chunk_ms: int = 5_000
    long_chunks: int = 5
    #: the venue's prints (:attr:`FeedProfile.prints`, set by :meth:`PatternParams.for_feed`): what a surge is read
    #: from (:func:`tapewatch.detectors.patterns.base.surge_z`); ``None``: the chunk's features tell
    prints: Prints | None = "trades"
    #: what of :data:`~tapewatch.detectors.patterns.base.CARRIED` the feed carries (prints and books; a venue without
    #: books drops them in :meth:`for_feed`, 1-minute bars carry neither): a detector that needs more does not run
    carries: tuple[str, ...] = CARRIED
    #: the venue's session close, local time (``None``: the venue never closes), and its UTC offset in minutes
    close_time: time | None = time(13, 30)
    utc_offset_min: int = 480
    #: the closing window: chunks ending this long or less before the close are in it (marking the close looks there
    #: only; the pump paths do not look there, a push into the close is marking the close)
    close_window_ms: int = 600_000
    #: the price drift (sum of the chunks' returns) is read over these three horizons: short, long, slow
    drift_ms: int = 120_000
    ramp_ms: int = 600_000
    #: … the slow one: a ramp of +6 % in 30 minutes is under 3.5 σ over any 10 of them
    slow_ramp_ms: int = 1_800_000
    #: a one-sided *sweep*: a chunk whose price moved at least this (bps), the long window's the same way, …
    sweep_ret_bps: float = 35.0
    #: … with same-side aggressor imbalance at least this …
    sweep_imbalance: float = 0.8
    #: … and more than this many of the chunk's spreads: it takes levels. One tick is never enough: on a stock whose
    #: spread is one tick, 1e4 ln(a / b) of a one-tick step exceeds the relative spread 2e4 (a - b) / (a + b) for
    #: every price, so "more than one spread" passed every step
    sweep_min_spreads: float = 1.5
    #: a pump run whose first chunk comes within this of a sweep is the sweep's followers (a momentum ignition), not a
    #: pump: a pump's convex ramp starts slowly
    sweep_followers_ms: int = 30_000
    #: sweeps are remembered this long: a pump run's first chunk lies up to a pump window (2 minutes) back, and a
    #: sweep up to ``sweep_followers_ms`` before it still counts
    sweep_memory_ms: int = 150_000
    #: a pump's rise is walked, not jumped (:meth:`~tapewatch.detectors.patterns.base.Rise.jumped`): a rise of which one
    #: chunk carried this share or more, and that took less than ``walk_ms`` from half its height to the top, is a sweep
    #: and its followers, not a pump
    jump_share: float = 0.2
    walk_ms: int = 60_000

    def __post_init__(self) -> None:
        positive(self, "chunk_ms", "long_chunks", "drift_ms", "ramp_ms", "slow_ramp_ms")
        non_negative(self, "close_window_ms", "sweep_ret_bps", "sweep_min_spreads", "sweep_followers_ms", "walk_ms")
        non_negative(self, "sweep_imbalance")  # an imbalance bar: above 1 no chunk is a sweep
        shares(self, "jump_share")
        not_longer(self, "drift_ms", "ramp_ms")
        not_longer(self, "ramp_ms", "slow_ramp_ms")
        not_longer(self, "sweep_followers_ms", "sweep_memory_ms")
        if not -_DAY_MIN < self.utc_offset_min < _DAY_MIN:
            raise ValueError(f"tape.utc_offset_min must lie within a day either way, got {self.utc_offset_min!r}")
        if not set(self.carries) <= set(CARRIED):
            raise ValueError(f"tape.carries must be among {CARRIED}, got {self.carries!r}")

    @property
    def long_ms(self) -> int:
        """The flow features' long window."""
        return self.chunk_ms * self.long_chunks

    def chunks(self, ms: int) -> int:
        """Whole chunks covering ``ms`` (at least one)."""
        return max(1, -(-ms // self.chunk_ms))

    def for_feed(self, flow: FlowConfig, profile: FeedProfile) -> TapeParams:
        """The tape of a feed: the flow features' chunking and the venue's prints and session calendar (no marking the
        close where the venue never closes)."""
        return replace(
            self,
            chunk_ms=flow.chunk_ms,
            long_chunks=flow.long_chunks,
            close_time=profile.close_time,
            utc_offset_min=profile.utc_offset_min,
            prints=profile.prints,
            carries=CARRIED if profile.books else ("prints",),
        )


@dataclass(frozen=True, slots=True)
class KMeansAlertParams:
    """The K-means outlier alert's bar (:class:`~tapewatch.detectors.patterns.symbol.SymbolDetector`, which scores the
    1-minute bar features; it is not a flow detector with a module of its own parameters)."""

    GROUP: ClassVar[str] = "kmeans"

    #: alert on a bar whose calibrated score (the share of training minutes nearer a normal cluster) is at least this
    alert_score: float = 0.9999

    def __post_init__(self) -> None:
        non_negative(self, "alert_score")  # a score bar: above 1 no bar alerts


@dataclass(frozen=True, slots=True)
class PatternParams:
    """Every detector's parameters: the tape's and one record per detector, each field named as its module."""

    tape: TapeParams = field(default_factory=TapeParams)
    pump_onset: PumpOnsetParams = field(default_factory=PumpOnsetParams)
    pump_crowd: PumpCrowdParams = field(default_factory=PumpCrowdParams)
    pump_surge: PumpSurgeParams = field(default_factory=PumpSurgeParams)
    pump_ramp: PumpRampParams = field(default_factory=PumpRampParams)
    pump_dump: PumpDumpParams = field(default_factory=PumpDumpParams)
    spoofing: SpoofingParams = field(default_factory=SpoofingParams)
    wash: WashTradingParams = field(default_factory=WashTradingParams)
    closing: MarkingTheCloseParams = field(default_factory=MarkingTheCloseParams)
    ignition: MomentumIgnitionParams = field(default_factory=MomentumIgnitionParams)
    bursts: BurstsParams = field(default_factory=BurstsParams)
    kmeans: KMeansAlertParams = field(default_factory=KMeansAlertParams)
    #: no price-based alert on an immaterial move, no volume burst on what the time of day always trades
    #: (:mod:`~tapewatch.detectors.patterns.materiality`; :meth:`for_feed` sets the venue's floor)
    materiality: MaterialityParams = field(default_factory=MaterialityParams)

    def for_feed(self, flow: FlowConfig, profile: FeedProfile) -> PatternParams:
        """These parameters on a feed: the tape's (:meth:`TapeParams.for_feed`) and the venue's materiality floor."""
        return replace(
            self,
            tape=self.tape.for_feed(flow, profile),
            materiality=self.materiality.with_floor(profile.material_bps),
        )

    def for_bars(self, profile: FeedProfile) -> PatternParams:
        """These parameters on a venue's 1-minute bars: bar chunks (:data:`tapewatch.detectors.bar_chunks.BAR_FLOW`)
        that carry no prints and no books, and time-of-day buckets as long as the bars' long window, so what a
        window usually trades is read at its own minutes: a closing auction's minute is every day's, and a
        half-hour bucket would spread it over thirty (most of each bucket must be seen to learn from it)."""
        minutes = BAR_FLOW.long_chunks * BAR_FLOW.chunk_ms // 60_000
        seasonal = replace(self.materiality.seasonal, bucket_minutes=minutes, min_chunks=max(1, minutes - 1))
        on_bars = replace(self, materiality=replace(self.materiality, seasonal=seasonal))
        return on_bars.for_feed(BAR_FLOW, profile).carrying(())

    def carrying(self, carried: tuple[str, ...]) -> PatternParams:
        """These parameters on a feed that carries ``carried`` (:data:`~tapewatch.detectors.patterns.base.CARRIED`)."""
        return replace(self, tape=replace(self.tape, carries=tuple(carried)))

    def value(self, name: str) -> Any:
        """The parameter of a qualified name (``"spoofing.layer_rel"``, ``"materiality.records.min_sessions"``): the
        one way evidence bounds, explanations and tests read a parameter by its name."""
        found: Any = self
        for part in name.split("."):
            if not is_dataclass(found) or part not in {f.name for f in fields(found)}:
                raise KeyError(f"no pattern parameter {name!r}: names are qualified, as 'spoofing.layer_rel'")
            found = getattr(found, part)
        return found

    def with_values(self, values: Mapping[str, Any]) -> PatternParams:
        """These parameters with some replaced, by qualified name. Each record changed is validated once, with all of
        its changes: a window and the minimum within it may move together."""
        changes = _Changes()
        for name, new in values.items():
            self.value(name)  # refuses an unknown name with the same line as a read
            *path, last = name.split(".")
            node = changes
            for part in path:
                node = node.setdefault(part, _Changes())
            node[last] = new
        replaced: PatternParams = _replaced(self, changes)
        return replaced

    def names(self) -> Iterator[str]:
        """Every parameter's qualified name, record by record in field order (nested records: their own fields)."""
        yield from _names(self, "")


class _Changes(dict[str, Any]):
    """The changes to one record, by field: a value, or the changes to a nested record."""


def _replaced(record: Any, changes: _Changes) -> Any:
    return replace(
        record,
        **{
            name: _replaced(getattr(record, name), new) if isinstance(new, _Changes) else new
            for name, new in changes.items()
        },
    )


def _names(record: Any, prefix: str) -> Iterator[str]:
    for f in fields(record):
        value = getattr(record, f.name)
        if is_dataclass(value):
            yield from _names(value, f"{prefix}{f.name}.")
        elif prefix:  # the composition's own fields are records, never parameters
            yield f"{prefix}{f.name}"
