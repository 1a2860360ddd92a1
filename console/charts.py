"""An alert's window as self-contained inline SVG: price (candlesticks and close line), volume and the five-level
order book over time, the episode shaded and the alert time marked — for the console's case page and the HTML
evidence report (issue 14).

Pure rendering: no I/O, no database, the standard library only. Every function returns one ``<svg>`` string:

* ``class="chart chart-price|chart-volume|chart-book"``, ``role="img"``, a ``<title>`` and a ``<desc>`` (the
  accessible name and summary), a ``viewBox`` and ``width``/``height`` of the requested size, and
  ``data-points="N"``: how many bars or book snapshots were drawn (0 for the "no data in this window" chart);
* the episode is the ``<rect class="episode">`` (clipped to the view), the alert time ``<line class="marker">``;
* styling by presentation attributes only (no ``<style>``, no ``style=``, no ids): a strict Content-Security-Policy
  (``style-src 'self'``) does not block them, and several charts on one page cannot clash;
* times across the shared plot area (the same margins in every chart, so stacked charts line up), labelled
  ``HH:MM`` UTC; coordinates with at most 2 decimals; every text XML-escaped (the string is safe to embed as is).

Bars are drawn when they overlap the view, snapshots when ``view.start_ms <= ts_ms <= view.end_ms``; values that
are not finite are skipped. Flat prices, zero volume, a single point and one-sided or empty books draw without
dividing by zero.

>>> import xml.etree.ElementTree as ET
>>> bars = [BarPoint(m * 60_000, (m + 1) * 60_000, 100.0 + m, 101.5 + m, 99.5 + m, 100.5 + m, 10.0 * m)
...         for m in range(20)]
>>> svg = price_svg(bars, view=Span(0, 20 * 60_000), episode=Span(8 * 60_000, 11 * 60_000), marker_ms=600_000)
>>> root = ET.fromstring(svg)
>>> root.get("class"), root.get("role"), root.get("viewBox"), root.get("data-points")
('chart chart-price', 'img', '0 0 900 260', '20')
>>> shade = root.find(f"{{{SVG_NS}}}rect[@class='episode']")
>>> shade.get("x"), shade.get("width")  # 8 and 3 of the view's 20 minutes across the 816 px plot from x = 72
('398.4', '122.4')
>>> ET.fromstring(volume_svg([], view=Span(0, 60_000), episode=Span(0, 1))).get("data-points")
'0'
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

__all__ = ["BOOK_WIDTH", "BarPoint", "BookPoint", "Span", "book_columns", "book_svg", "price_svg", "volume_svg"]

SVG_NS: Final = "http://www.w3.org/2000/svg"
#: the plot area's margins (px), the same in every chart so that charts stacked on a page share their time axis
_LEFT: Final = 72
_RIGHT: Final = 12
_TOP: Final = 20
_BOTTOM: Final = 22
#: smaller sizes are raised to these (the margins need room)
_MIN_WIDTH: Final = 200
_MIN_HEIGHT: Final = 80
#: the book shows this many levels a side (more are ignored)
BOOK_LEVELS: Final = 5
#: colours readable on white and in print (ColorBrewer RdYlGn ends; purple marker; amber episode)
_UP: Final = "#1a9850"
_DOWN: Final = "#d73027"
_LINE: Final = "#2c7bb6"
_MID: Final = "#222222"
_EPISODE: Final = "#fdb863"
_MARKER: Final = "#6a3d9a"
_GRID: Final = "#e4e4e4"
_INK: Final = "#444444"
_TIME_STEPS_S: Final = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_DAY_MS: Final = 86_400_000
_INVALID_XML: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class BarPoint:
    """A one-minute bar, ``[start_ms, end_ms)``.

    >>> BarPoint(0, 60_000, 1.0, 2.0, 0.5, 1.5, 10.0).close
    1.5
    """

    start_ms: int
    end_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class BookPoint:
    """One book snapshot: ``(price, size)`` levels, best first (bids high→low, asks low→high), at most 5 a side
    drawn; a level with a size of 0 (or not finite) is empty and not drawn.

    >>> BookPoint(0, bids=[(99.0, 1.0)], asks=[]).bids[0]
    (99.0, 1.0)
    """

    ts_ms: int
    bids: Sequence[tuple[float, float]]
    asks: Sequence[tuple[float, float]]


@dataclass(frozen=True, slots=True)
class Span:
    """A time span in epoch milliseconds, ``[start_ms, end_ms]``.

    >>> Span(0, 60_000).end_ms
    60000
    """

    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class _Frame:
    """The drawing of one chart: its size, and the view's times across the plot area."""

    width: int
    height: int
    start_ms: int
    span_ms: int

    @property
    def right(self) -> int:
        return self.width - _RIGHT

    @property
    def bottom(self) -> int:
        return self.height - _BOTTOM

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.span_ms

    def x(self, ms: int) -> float:
        """The x of a time, clamped to the plot area."""
        clamped = min(max(ms, self.start_ms), self.end_ms)
        return _LEFT + (clamped - self.start_ms) / self.span_ms * (self.right - _LEFT)

    def y(self, value: float, lo: float, hi: float) -> float:
        """The y of a value on the range ``[lo, hi]`` (bottom to top), clamped to the plot area."""
        return self.bottom - _fraction(value, lo, hi) * (self.bottom - _TOP)


def _frame(view: Span, width: int, height: int) -> _Frame:
    return _Frame(max(width, _MIN_WIDTH), max(height, _MIN_HEIGHT), view.start_ms, max(view.end_ms - view.start_ms, 1))


def _fraction(value: float, lo: float, hi: float) -> float:
    """Where ``value`` lies between ``lo`` and ``hi``, in ``[0, 1]``; 0.5 on an empty range; no overflow.

    >>> _fraction(5.0, 0.0, 10.0), _fraction(3.0, 3.0, 3.0), _fraction(1e308, -1.5e308, 1.5e308)
    (0.5, 0.5, 0.8333333333333334)
    """
    span = hi - lo
    if math.isinf(span):
        share = (value / 2 - lo / 2) / (hi / 2 - lo / 2)
    elif span > 0:
        share = (value - lo) / span
    else:
        return 0.5
    return min(max(share, 0.0), 1.0) if math.isfinite(share) else 0.5


def _n(value: float) -> str:
    """A coordinate, compactly: at most 2 decimals, no trailing zeros.

    >>> _n(12.0), _n(3.14159), _n(-0.001), _n(0.5)
    ('12', '3.14', '0', '0.5')
    """
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _text(value: str) -> str:
    """Text for XML content or a quoted attribute: escaped, characters XML cannot hold removed.

    >>> _text('<BTC & "USD">\\x00')
    '&lt;BTC &amp; &quot;USD&quot;&gt;'
    """
    return html.escape(_INVALID_XML.sub("", value), quote=True)


def _clock(ms: int, step_ms: int = 60_000) -> str:
    """A UTC time label: ``HH:MM``, ``HH:MM:SS`` for steps under a minute, the date for steps of whole days.

    >>> _clock(45_296_000), _clock(45_296_000, 1_000), _clock(86_400_000, 86_400_000)
    ('12:34', '12:34:56', '1970-01-02')
    """
    if step_ms % _DAY_MS == 0:
        try:
            return (_EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%d")
        except OverflowError:
            pass
    hours, minutes, seconds = ms // 3_600_000 % 24, ms // 60_000 % 60, ms // 1000 % 60
    return f"{hours:02}:{minutes:02}" if step_ms % 60_000 == 0 else f"{hours:02}:{minutes:02}:{seconds:02}"


def _time_ticks(start_ms: int, end_ms: int, most: int) -> list[tuple[int, str]]:
    """At most ``most + 1`` round UTC times in ``[start_ms, end_ms]`` with their labels.

    >>> _time_ticks(0, 20 * 60_000, 8)
    [(0, '00:00'), (300000, '00:05'), (600000, '00:10'), (900000, '00:15'), (1200000, '00:20')]
    """
    span = max(end_ms - start_ms, 1)
    step = next((s * 1000 for s in _TIME_STEPS_S if span // (s * 1000) <= most), -(-span // most))
    first = -(-start_ms // step) * step
    return [(t, _clock(t, step)) for t in range(first, end_ms + 1, step)]


def _nice_ticks(lo: float, hi: float, most: int) -> tuple[list[float], float]:
    """Round values in ``[lo, hi]`` (about ``most``) and their step; just the ends when no round step fits.

    >>> _nice_ticks(99.2, 101.9, 5), _nice_ticks(0.0, 1.0, 4), _nice_ticks(1.0, 1.0, 4)
    (([100.0, 101.0], 1.0), ([0.0, 0.25, 0.5, 0.75, 1.0], 0.25), ([1.0], 0.0))
    """
    raw = (hi - lo) / most
    if not (math.isfinite(raw) and raw > 0):
        return list(dict.fromkeys((lo, hi))), 0.0
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next((m * magnitude for m in (1.0, 2.0, 2.5, 5.0) if m * magnitude >= raw), 10.0 * magnitude)
    first = lo / step
    if not (math.isfinite(first) and step > 0):
        return [lo, hi], 0.0
    ticks = [v for i in range(most + 2) if lo <= (v := (math.ceil(first) + i) * step) <= hi]
    return list(dict.fromkeys(ticks)) or [lo, hi], step


def _price_label(value: float, step: float) -> str:
    """A tick label with the step's decimals and thousands separators (exponent form when that is shorter).

    >>> _price_label(104500.0, 500.0), _price_label(0.125, 0.025), _price_label(2.5e-7, 1e-7)
    ('104,500', '0.125', '2.5e-07')
    """
    shown = f"{step:.6g}" if step > 0 else "e"
    if "e" in shown or abs(value) >= 1e15:
        return f"{value:.6g}"
    return f"{value:,.{len(shown.partition('.')[2])}f}"


def _volume_label(value: float, step: float) -> str:
    """A volume tick label, with k/M/G/T for thousands up.

    >>> _volume_label(1_250.0, 250.0), _volume_label(3_500_000.0, 500_000.0), _volume_label(20.0, 5.0)
    ('1.25k', '3.5M', '20')
    """
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.4g}{suffix}"
    return _price_label(value, step)


def _padded(values: Iterable[float]) -> tuple[float, float]:
    """A value range holding every finite value with 5 % room (1 % of the value around a flat one), never empty.

    >>> _padded([10.0, 20.0]), _padded([100.0]), _padded([]), _padded([0.0])
    ((9.5, 20.5), (99.0, 101.0), (0.0, 1.0), (-1.0, 1.0))
    """
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    pad = (hi - lo) * 0.05 if hi > lo else (abs(lo) * 0.01 or 1.0)
    pad = pad if math.isfinite(pad) else 0.0
    low, high = lo - pad, hi + pad
    return (low if math.isfinite(low) else lo), (high if math.isfinite(high) else hi)


def _svg(kind: str, title: str, desc: str, frame: _Frame, points: int, body: Iterable[str]) -> str:
    """The ``<svg>`` element around a chart's body, with its title (also shown top left)."""
    w, h = frame.width, frame.height
    return (
        f'<svg xmlns="{SVG_NS}" class="chart chart-{kind}" role="img" viewBox="0 0 {w} {h}" width="{w}" '
        f'height="{h}" data-points="{points}" font-family="sans-serif" font-size="10">'
        f"<title>{_text(title)}</title><desc>{_text(desc)}</desc>"
        f'<text class="chart-title" x="{_LEFT}" y="14" font-size="12" font-weight="bold" fill="{_INK}">'
        f"{_text(title)}</text>" + "".join(body) + "</svg>"
    )


def _empty(kind: str, title: str, frame: _Frame) -> str:
    """The chart of a window without data: its frame and "no data in this window"."""
    message = "no data in this window"
    body = (
        f'<rect class="plot" x="{_LEFT}" y="{_TOP}" width="{frame.right - _LEFT}" height="{frame.bottom - _TOP}" '
        f'fill="none" stroke="#999999"/>',
        f'<text class="empty" x="{_n((_LEFT + frame.right) / 2)}" y="{_n((_TOP + frame.bottom) / 2)}" '
        f'text-anchor="middle" font-size="13" fill="#666666">{message}</text>',
    )
    return _svg(kind, title, message, frame, 0, body)


def _episode(frame: _Frame, episode: Span) -> str:
    """The shaded episode, clipped to the plot area (no width when it lies outside the view)."""
    x0, x1 = sorted((frame.x(episode.start_ms), frame.x(episode.end_ms)))
    return (
        f'<rect class="episode" x="{_n(x0)}" y="{_TOP}" width="{_n(x1 - x0)}" height="{frame.bottom - _TOP}" '
        f'fill="{_EPISODE}" fill-opacity="0.35"/>'
    )


def _marker(frame: _Frame, marker_ms: int | None) -> list[str]:
    """The alert time's vertical line and label, when it falls in the view."""
    if marker_ms is None or not frame.start_ms <= marker_ms <= frame.end_ms:
        return []
    x = frame.x(marker_ms)
    anchor, dx = ("end", -3) if x > frame.right - 40 else ("start", 3)
    return [
        f'<line class="marker" x1="{_n(x)}" y1="{_TOP}" x2="{_n(x)}" y2="{frame.bottom}" stroke="{_MARKER}" '
        f'stroke-width="1.5" stroke-dasharray="4 3"/>',
        f'<text class="marker-label" x="{_n(x + dx)}" y="{_TOP + 10}" text-anchor="{anchor}" fill="{_MARKER}">'
        f"alert {_clock(marker_ms, 1000)}</text>",
    ]


def _axes(frame: _Frame, lo: float, hi: float, label: Callable[[float, float], str]) -> list[str]:
    """Grid lines, the value labels left of the plot, the UTC time labels under it and the plot's border."""
    values, step = _nice_ticks(lo, hi, max(2, (frame.bottom - _TOP) // 40))
    times = _time_ticks(frame.start_ms, frame.end_ms, max(2, (frame.right - _LEFT) // 90))
    grid = [f'<path class="grid" fill="none" stroke="{_GRID}" d="']
    grid += [f"M{_n(frame.x(t))},{_TOP}V{frame.bottom}" for t, _ in times]
    grid += [f"M{_LEFT},{_n(frame.y(v, lo, hi))}H{frame.right}" for v in values]
    grid.append('"/>')
    parts = ["".join(grid), f'<g class="y-axis" fill="{_INK}" text-anchor="end">']
    parts += [
        f'<text x="{_LEFT - 5}" y="{_n(frame.y(v, lo, hi) + 3.5)}">{_text(label(v, step))}</text>' for v in values
    ]
    parts.append(f'</g><g class="x-axis" fill="{_INK}" text-anchor="middle">')
    for t, text in times:
        x = frame.x(t)
        anchor = ' text-anchor="end"' if x > frame.right - 20 else ""
        parts.append(f'<text x="{_n(x)}" y="{frame.bottom + 14}"{anchor}>{_text(text)}</text>')
    parts.append(
        f'</g><rect class="plot" x="{_LEFT}" y="{_TOP}" width="{frame.right - _LEFT}" '
        f'height="{frame.bottom - _TOP}" fill="none" stroke="#999999"/>'
    )
    return parts


def _legend(frame: _Frame, title: str, items: Sequence[tuple[str | None, str]]) -> str:
    """Colour swatches and names, right-aligned in the top margin (an item without a colour is a note); left out
    when it does not fit beside the title.

    >>> _legend(_Frame(200, 80, 0, 1), "Order book (5 levels)", [("#000000", "mid")])
    ''
    """
    parts, x = [f'<g class="legend" fill="{_INK}">'], float(frame.right)
    for colour, name in reversed(items):
        x -= len(name) * 5.5
        parts.append(f'<text x="{_n(x)}" y="14">{_text(name)}</text>')
        if colour is not None:
            x -= 12
            parts.append(f'<rect x="{_n(x)}" y="6" width="9" height="9" fill="{colour}"/>')
        x -= 10
    parts.append("</g>")
    return "".join(parts) if x >= _LEFT + len(title) * 7 else ""


def _path(points: Iterable[tuple[float, float] | None]) -> str:
    """Path data through the points, the pen lifted at each ``None``.

    >>> _path([(1.0, 2.0), (3.0, 4.5), None, (5.0, 6.0)])
    'M1,2 3,4.5 M5,6'
    """
    parts, down = [], False
    for point in points:
        if point is None:
            down = False
            continue
        parts.append(f"{'' if down else 'M'}{_n(point[0])},{_n(point[1])}")
        down = True
    return " ".join(parts)


def _bars_in(bars: Iterable[BarPoint], frame: _Frame) -> list[BarPoint]:
    """The bars overlapping the view with every value finite, by time."""
    fields = ("open", "high", "low", "close", "volume")
    kept = [
        bar
        for bar in bars
        if bar.start_ms < frame.end_ms
        and max(bar.end_ms, bar.start_ms + 1) > frame.start_ms
        and all(math.isfinite(getattr(bar, name)) for name in fields)
    ]
    return sorted(kept, key=lambda bar: (bar.start_ms, bar.end_ms))


def _slot(frame: _Frame, bar: BarPoint) -> tuple[float, float, float]:
    """A bar's body across: its left x, width (70 % of the bar's time, at least 1 px) and centre x."""
    x0, x1 = frame.x(bar.start_ms), frame.x(max(bar.end_ms, bar.start_ms))
    width = min(max((x1 - x0) * 0.7, 1.0), frame.right - _LEFT)
    centre = (x0 + x1) / 2
    return min(max(centre - width / 2, _LEFT), frame.right - width), width, centre


def _candles(frame: _Frame, bars: Sequence[BarPoint], lo: float, hi: float) -> list[str]:
    """A candlestick per bar (a wick from low to high, a body from open to close), rising ones green, falling red."""
    groups: dict[bool, list[str]] = {True: [], False: []}
    for bar in bars:
        left, width, centre = _slot(frame, bar)
        values = (bar.open, bar.high, bar.low, bar.close)
        top, bottom = sorted((frame.y(bar.open, lo, hi), frame.y(bar.close, lo, hi)))
        top = min(top, frame.bottom - 1.0)
        groups[bar.close >= bar.open].append(
            f'<line x1="{_n(centre)}" y1="{_n(frame.y(max(values), lo, hi))}" x2="{_n(centre)}" '
            f'y2="{_n(frame.y(min(values), lo, hi))}"/><rect x="{_n(left)}" y="{_n(top)}" width="{_n(width)}" '
            f'height="{_n(max(bottom - top, 1.0))}"/>'
        )
    return [
        f'<g class="{name}" fill="{colour}" stroke="{colour}">{"".join(groups[rising])}</g>'
        for name, colour, rising in (("up", _UP, True), ("down", _DOWN, False))
    ]


def price_svg(
    bars: Iterable[BarPoint],
    *,
    view: Span,
    episode: Span,
    marker_ms: int | None = None,
    width: int = 900,
    height: int = 260,
    title: str = "Price",
) -> str:
    """Candlesticks and the close line of the bars over ``view``, the episode shaded, the alert time marked.

    >>> bar = BarPoint(0, 60_000, 10.0, 10.0, 10.0, 10.0, 0.0)  # flat: no division by zero
    >>> svg = price_svg([bar], view=Span(0, 60_000), episode=Span(0, 30_000), marker_ms=30_000, title="A&B")
    >>> 'data-points="1"' in svg, 'class="marker"' in svg, "<title>A&amp;B</title>" in svg
    (True, True, True)
    """
    frame = _frame(view, width, height)
    drawn = _bars_in(bars, frame)
    if not drawn:
        return _empty("price", title, frame)
    lo, hi = _padded(v for bar in drawn for v in (bar.open, bar.high, bar.low, bar.close))
    close = _path(
        (frame.x((bar.start_ms + max(bar.end_ms, bar.start_ms)) // 2), frame.y(bar.close, lo, hi)) for bar in drawn
    )
    body = [_episode(frame, episode), *_axes(frame, lo, hi, _price_label), *_candles(frame, drawn, lo, hi)]
    body.append(
        f'<path class="close" fill="none" stroke="{_LINE}" stroke-width="1.5" stroke-opacity="0.8" d="{close}"/>'
    )
    body += _marker(frame, marker_ms)
    body.append(_legend(frame, title, ((_LINE, "close"), (_EPISODE, "episode"), (_MARKER, "alert"))))
    desc = f"{_bars_text(drawn)}, {_span_text(episode, marker_ms)}"
    return _svg("price", title, desc, frame, len(drawn), body)


def _bars_text(bars: Sequence[BarPoint]) -> str:
    """The desc's words for the bars drawn.

    >>> _bars_text([BarPoint(0, 60_000, 1.0, 1.0, 1.0, 1.0, 1.0)])
    '1 bar 00:00–00:01 UTC'
    """
    return f"{len(bars)} bar{'' if len(bars) == 1 else 's'} {_clock(bars[0].start_ms)}–{_clock(bars[-1].end_ms)} UTC"


def _span_text(episode: Span, marker_ms: int | None) -> str:
    """The desc's words for the episode and the alert time.

    >>> _span_text(Span(60_000, 120_000), 90_000)
    'episode 00:01:00–00:02:00 UTC shaded, alert at 00:01:30 UTC'
    """
    text = f"episode {_clock(episode.start_ms, 1000)}–{_clock(episode.end_ms, 1000)} UTC shaded"
    return text if marker_ms is None else f"{text}, alert at {_clock(marker_ms, 1000)} UTC"


def volume_svg(
    bars: Iterable[BarPoint], *, view: Span, episode: Span, width: int = 900, height: int = 120, title: str = "Volume"
) -> str:
    """The bars' volumes over ``view`` as columns (green when the bar rose, red when it fell), the episode shaded.

    >>> bars = [BarPoint(m * 60_000, (m + 1) * 60_000, 1.0, 1.0, 1.0, 1.0, 0.0) for m in range(3)]
    >>> svg = volume_svg(bars, view=Span(0, 180_000), episode=Span(60_000, 120_000))  # zero volume throughout
    >>> 'data-points="3"' in svg and 'class="episode"' in svg
    True
    """
    frame = _frame(view, width, height)
    drawn = _bars_in(bars, frame)
    if not drawn:
        return _empty("volume", title, frame)
    top = max(max(bar.volume, 0.0) for bar in drawn)
    hi = top * 1.05 if top > 0 and math.isfinite(top * 1.05) else (top or 1.0)
    groups: dict[bool, list[str]] = {True: [], False: []}
    for bar in drawn:
        left, bar_width, _ = _slot(frame, bar)
        y = frame.y(max(bar.volume, 0.0), 0.0, hi)
        groups[bar.close >= bar.open].append(
            f'<rect x="{_n(left)}" y="{_n(y)}" width="{_n(bar_width)}" height="{_n(frame.bottom - y)}"/>'
        )
    body = [_episode(frame, episode), *_axes(frame, 0.0, hi, _volume_label)]
    body += [
        f'<g class="{name}" fill="{colour}">{"".join(groups[rising])}</g>'
        for name, colour, rising in (("up", _UP, True), ("down", _DOWN, False))
    ]
    desc = f"volume of {_bars_text(drawn)}, {_span_text(episode, None)}"
    return _svg("volume", title, desc, frame, len(drawn), body)


def _sample(books: Iterable[BookPoint], frame: _Frame, columns: int) -> list[BookPoint]:
    """The snapshots in the view, at most one per column: the one nearest the column's centre (then the earliest,
    then the first given), by time."""
    best: dict[int, tuple[tuple[int, int, int], BookPoint]] = {}
    for index, book in enumerate(books):
        offset = book.ts_ms - frame.start_ms
        if not 0 <= offset <= frame.span_ms:
            continue
        column = min(offset * columns // frame.span_ms, columns - 1)
        # twice the distance to the column's centre, times `columns`: exact in integers
        key = (abs(2 * columns * offset - (2 * column + 1) * frame.span_ms), book.ts_ms, index)
        if column not in best or key < best[column][0]:
            best[column] = (key, book)
    return [best[column][1] for column in sorted(best)]


def _levels(side: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The first 5 levels of a side, the empty ones (size 0, or not finite) left out.

    >>> _levels([(10.0, 1.0), (9.0, 0.0), (8.0, float("nan")), (7.0, 2.0), (6.0, 1.0), (5.0, 1.0)])
    [(10.0, 1.0), (7.0, 2.0), (6.0, 1.0)]
    """
    return [
        (price, size) for price, size in side[:BOOK_LEVELS] if math.isfinite(price) and math.isfinite(size) and size > 0
    ]


def _level_marks(
    frame: _Frame,
    kept: Sequence[BookPoint],
    sides: Sequence[tuple[list[tuple[float, float]], ...]],
    lo: float,
    hi: float,
) -> list[str]:
    """A short horizontal mark per level at its price, darker the larger its size (5 shades, relative to the
    largest level drawn), bids green and asks red; one path per side and shade."""
    largest = max((size for levels in sides for side in levels for _, size in side), default=0.0)
    mark = max((frame.right - _LEFT) / max((frame.right - _LEFT) // 3, 1), 1.0)
    paths: dict[tuple[int, int], list[str]] = {}
    for book, levels in zip(kept, sides, strict=True):
        x = min(max(frame.x(book.ts_ms) - mark / 2, _LEFT), frame.right - mark)
        for side, side_levels in enumerate(levels):
            for price, size in side_levels:
                shade = min(max(math.ceil(size / largest * 5), 1), 5) if largest > 0 else 5
                paths.setdefault((side, shade), []).append(f"M{_n(x)},{_n(frame.y(price, lo, hi))}h{_n(mark)}")
    parts = []
    for side, (name, colour) in enumerate((("bids", _UP), ("asks", _DOWN))):
        parts.append(f'<g class="{name}" stroke="{colour}" stroke-width="3" fill="none" shape-rendering="crispEdges">')
        parts += [
            f'<path stroke-opacity="{s / 5:g}" d="{"".join(paths[side, s])}"/>'
            for s in range(1, 6)
            if (side, s) in paths
        ]
        parts.append("</g>")
    return parts


BOOK_WIDTH: Final = 900


def book_columns(view: Span, width: int = BOOK_WIDTH) -> int:
    """How many snapshots the book chart of ``view`` draws at most: one per 3-pixel column.

    >>> book_columns(Span(0, 60_000))
    272
    """
    frame = _frame(view, width, 1)
    return max((frame.right - _LEFT) // 3, 1)


def book_svg(
    books: Iterable[BookPoint],
    *,
    view: Span,
    episode: Span,
    width: int = BOOK_WIDTH,
    height: int = 260,
    title: str = "Order book (5 levels)",
) -> str:
    """The five-level book over ``view``: per snapshot, each level's price as a mark (bids green, asks red, darker
    the larger), the mid price as a line, the episode shaded; at most ``width // 3`` snapshots, one per column.

    >>> books = [BookPoint(t * 1000, bids=[(99.0, 2.0), (98.0, 1.0)], asks=[(101.0, 1.0)]) for t in range(3)]
    >>> books.append(BookPoint(3000, bids=[], asks=[(101.0, 0.0)]))  # empty: no marks, a gap in the mid line
    >>> svg = book_svg(books, view=Span(0, 3000), episode=Span(1000, 2000))
    >>> 'data-points="4"' in svg, svg.count("h3"), 'class="mid"' in svg
    (True, 9, True)
    """
    frame = _frame(view, width, height)
    kept = _sample(books, frame, book_columns(view, width))
    if not kept:
        return _empty("book", title, frame)
    sides = [(_levels(book.bids), _levels(book.asks)) for book in kept]
    lo, hi = _padded(price for levels in sides for side in levels for price, _ in side)
    mids = (
        (frame.x(book.ts_ms), frame.y(bids[0][0] / 2 + asks[0][0] / 2, lo, hi)) if bids and asks else None
        for book, (bids, asks) in zip(kept, sides, strict=True)
    )
    body = [_episode(frame, episode), *_axes(frame, lo, hi, _price_label), *_level_marks(frame, kept, sides, lo, hi)]
    body.append(f'<path class="mid" fill="none" stroke="{_MID}" stroke-width="1.25" d="{_path(mids)}"/>')
    body.append(_legend(frame, title, ((_UP, "bids"), (_DOWN, "asks"), (_MID, "mid"), (None, "darker = larger size"))))
    desc = (
        f"{len(kept)} book snapshot{'' if len(kept) == 1 else 's'} "
        f"{_clock(kept[0].ts_ms, 1000)}–{_clock(kept[-1].ts_ms, 1000)} UTC, "
        f"up to {BOOK_LEVELS} levels a side, " + _span_text(episode, None)
    )
    return _svg("book", title, desc, frame, len(kept), body)
