"""The parameters of the public market-by-order path's parts: how a market-by-order feed becomes a level-2 one
(:mod:`~tapewatch.detectors.orders.level2`), and the public feed's spoofing and wash detectors
(:mod:`~tapewatch.detectors.orders.public_spoofing`, :mod:`~tapewatch.detectors.orders.public_wash`), each of which
names its own here again. Pydantic models, kept out of the modules ``make compiled`` compiles with mypyc (a model's
fields are class attributes a compiled class would check as their declared types)."""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field

#: a minute of feed time (the wash detector's window is at least one)
MINUTE_MS: Final = 60_000


class Level2Params(BaseModel):
    """How a market-by-order feed becomes a level-2 one."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    book_ms: int = Field(100, ge=1, le=60_000, description="At most one derived book per this many ms")
    depth: int = Field(5, ge=1, le=5, description="Levels per side in a derived book")


class PublicSpoofingParams(BaseModel):
    """What a spoofing cycle on the public feed is, and how many make a hit."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    size_multiple: float = Field(8.0, gt=1, le=1_000, description="A large order: this × the symbol's usual order")
    rare_quantile: float = Field(
        0.995, ge=0.5, lt=1, description="… and at least this quantile of the symbol's own one-sided order sizes"
    )
    depth_share: float = Field(
        0.3, gt=0, lt=1, description="… and at least this share of its side's visible depth once it rests"
    )
    near_levels: int = Field(3, ge=1, le=20, description="… placed within this many prices of its side's best")
    max_life_ms: int = Field(120_000, gt=0, le=3_600_000, description="Pulled within this of its placement")
    pulled_share: float = Field(
        0.8, gt=0, le=1, description="… by cancels within pair_ms taking at least this share of its placed size"
    )
    max_filled: float = Field(0.2, ge=0, lt=1, description="… with at most this share of it filled")
    pair_ms: int = Field(
        100, ge=0, le=10_000, description="An opposite large order pulled within this of it: a two-sided quote"
    )
    pair_ratio: float = Field(
        0.5, gt=0, le=1, description="… large: at least this × the order's size (also for a same-side replacement)"
    )
    min_cycles: int = Field(2, ge=1, le=100, description="Cycles on one side within the window for a hit")
    window_ms: int = Field(600_000, gt=0, le=7_200_000, description="The window the cycles are counted over")
    baseline_ms: int = Field(
        5_400_000, gt=0, le=86_400_000, description="The symbol's own rate of cycles is counted over this"
    )
    surprise: float = Field(
        0.002, gt=0, lt=1, description="The window's cycles must be at most this likely at the symbol's own rate"
    )
    warmup_orders: int = Field(200, ge=0, description="The symbol's orders seen before a usual size is trusted")
    warmup_ms: int = Field(0, ge=0, description="Feed time seen before any hit (the prior below covers the open)")
    prior_cycles: float = Field(
        2.0, gt=0, le=100, description="The rate's prior: this many cycles of any size taken as seen …"
    )
    prior_tail: float = Field(
        1.0, ge=0, le=5, description="… fewer as large: (size_multiple / m) ** this of them at least m × usual"
    )
    prior_ms: int = Field(
        1_800_000, gt=0, le=86_400_000, description="… over this much feed time before the symbol's own"
    )


class PublicWashParams(BaseModel):
    """What an unexposed print is, and how many of one clip make a hit."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    fleeting_ms: int = Field(
        500, ge=0, le=60_000, description="A displayed order taken whole within this of its placement was not exposed"
    )
    band_bins: int = Field(3, ge=1, le=8, description="A clip: sizes within this many adjacent quarter-octave bins")
    window_ms: int = Field(300_000, ge=MINUTE_MS, le=3_600_000, description="The window the prints are counted over")
    min_prints: int = Field(6, ge=2, le=1_000, description="Unexposed prints of one band in the window for a hit")
    min_volume_share: float = Field(
        0.2, ge=0, le=1, description="… making up at least this share of what the symbol traded in the window"
    )
    min_side_share: float = Field(
        0.35, ge=0, le=0.5, description="… each side aggressing at least this share of them (where sides are known)"
    )
    surprise: float = Field(
        1e-7, gt=0, lt=1, description="The band's unexposed share must be at most this likely at the symbol's own"
    )
    half_life_prints: int = Field(
        5_000, ge=100, le=10_000_000, description="The symbol's own share weighs prints this long ago half"
    )
    prior_share: float = Field(
        0.1, gt=0, lt=1, description="The share's prior: this share of a band's prints taken as unexposed …"
    )
    prior_prints: float = Field(10.0, gt=0, le=1e6, description="… over this many prints")
    warmup_prints: int = Field(200, ge=0, description="Prints the symbol traded before any hit")
