"""The console's charts (:mod:`tapewatch.console.charts`): well-formed SVG with the attributes the pages and browser
tests rely on, the episode shaded where it lies, text escaped, and no exception (nor a point outside the picture)
whatever finite data comes in."""

from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapewatch.console.charts import SVG_NS, BarPoint, BookPoint, Span, book_svg, price_svg, volume_svg

NS = f"{{{SVG_NS}}}"
MIN = 60_000
T0 = 1_732_560_000_000  # 2024-11-25 18:40:00 UTC
#: the plot area of a 900 px chart: from x = 72, 816 px wide
LEFT, PLOT = 72.0, 816.0
NUMBER = r"-?\d+(?:\.\d+)?"

Chart = Callable[..., str]


def bar(minute: int, close: float = 100.0, volume: float = 5.0, *, open_: float = 100.0) -> BarPoint:
    start = T0 + minute * MIN
    return BarPoint(start, start + MIN, open_, max(open_, close) + 1, min(open_, close) - 1, close, volume)


def book(second: int, mid: float = 100.0, size: float = 1.0) -> BookPoint:
    bids = [(mid - 0.5 - level, size + level) for level in range(5)]
    asks = [(mid + 0.5 + level, size + level) for level in range(5)]
    return BookPoint(T0 + second * 1000, bids, asks)


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    return root


def episode_rect(root: ET.Element) -> ET.Element:
    rects = root.findall(f".//{NS}rect[@class='episode']")
    assert len(rects) == 1
    return rects[0]


def text_of(root: ET.Element, tag: str) -> str | None:
    element = root.find(f"{NS}{tag}")
    return None if element is None else element.text


def coordinates(root: ET.Element) -> list[tuple[str, float, float]]:
    """Every drawn point as (what, value, limit): attributes and path data against the viewBox."""
    _, _, width, height = (float(v) for v in (root.get("viewBox") or "").split())
    out: list[tuple[str, float, float]] = []
    for element in root.iter():
        if element is root:
            continue
        for name, limit in (("x", width), ("x1", width), ("x2", width), ("y", height), ("y1", height), ("y2", height)):
            if (value := element.get(name)) is not None:
                out.append((name, float(value), limit))
        if element.get("width") is not None:
            out.append(("x+width", float(element.get("x", "0")) + float(element.get("width", "0")), width))
            out.append(("y+height", float(element.get("y", "0")) + float(element.get("height", "0")), height))
        for x, y, h in re.findall(rf"({NUMBER}),({NUMBER})(?:h({NUMBER}))?", element.get("d", "")):
            out += [("path x", float(x), width), ("path y", float(y), height)]
            if h:
                out.append(("path x+h", float(x) + float(h), width))
    return out


def assert_inside(root: ET.Element) -> None:
    outside = [(what, value, limit) for what, value, limit in coordinates(root) if not -0.005 <= value <= limit + 0.005]
    assert not outside


VIEW = Span(T0, T0 + 20 * MIN)
EPISODE = Span(T0 + 8 * MIN, T0 + 11 * MIN)
BARS = [bar(m, close=100.0 + (m % 3 - 1), volume=float(m)) for m in range(20)]
BOOKS = [book(s, mid=100.0 + s / 600) for s in range(0, 1200, 2)]
CHARTS: list[tuple[str, Chart, Sequence[object]]] = [
    ("price", price_svg, BARS),
    ("volume", volume_svg, BARS),
    ("book", book_svg, BOOKS),
]


@pytest.mark.parametrize(("kind", "chart", "data"), CHARTS)
def test_a_chart_says_what_it_is_and_how_much_it_drew(kind: str, chart: Chart, data: Sequence[object]) -> None:
    root = parse(chart(data, view=VIEW, episode=EPISODE))
    assert root.get("class") == f"chart chart-{kind}"
    assert root.get("role") == "img"
    assert root.get("viewBox") == f"0 0 900 {root.get('height')}"
    assert (text_of(root, "title") or "").strip()
    assert int(root.get("data-points", "-1")) == (20 if kind != "book" else 272)  # the book: one per 3 px column
    assert_inside(root)


@pytest.mark.parametrize(("kind", "chart", "data"), CHARTS)
def test_charts_keep_to_presentation_attributes(kind: str, chart: Chart, data: Sequence[object]) -> None:
    """No <style>, style= or id: a strict CSP does not block the look, and charts on one page cannot clash."""
    svg = chart(data, view=VIEW, episode=EPISODE)
    assert "<style" not in svg and " style=" not in svg and " id=" not in svg
    assert svg == chart(list(data), view=VIEW, episode=EPISODE)  # deterministic


@pytest.mark.parametrize(("kind", "chart", "data"), CHARTS)
@pytest.mark.parametrize(("start", "end"), [(8, 11), (0, 20), (0, 1), (19, 20), (5, 5)])
def test_the_episode_is_shaded_where_it_lies(
    kind: str, chart: Chart, data: Sequence[object], start: int, end: int
) -> None:
    root = parse(chart(data, view=VIEW, episode=Span(T0 + start * MIN, T0 + end * MIN)))
    shade = episode_rect(root)
    assert float(shade.get("x", "nan")) == pytest.approx(LEFT + start / 20 * PLOT, abs=0.01)
    assert float(shade.get("width", "nan")) == pytest.approx((end - start) / 20 * PLOT, abs=0.01)


def test_an_episode_beyond_the_view_is_clipped_to_it() -> None:
    partly = episode_rect(parse(price_svg(BARS, view=VIEW, episode=Span(T0 + 15 * MIN, T0 + 40 * MIN))))
    assert (float(partly.get("x", "nan")), float(partly.get("width", "nan"))) == pytest.approx((684.0, 204.0))
    outside = episode_rect(parse(price_svg(BARS, view=VIEW, episode=Span(T0 - 9 * MIN, T0 - 5 * MIN))))
    assert (float(outside.get("x", "nan")), float(outside.get("width", "nan"))) == (LEFT, 0.0)


def test_the_alert_time_is_marked_when_it_falls_in_the_view() -> None:
    root = parse(price_svg(BARS, view=VIEW, episode=EPISODE, marker_ms=T0 + 10 * MIN + 30_000))
    (marker,) = root.findall(f".//{NS}line[@class='marker']")
    assert float(marker.get("x1", "nan")) == pytest.approx(LEFT + 10.5 / 20 * PLOT, abs=0.01)
    assert marker.get("x1") == marker.get("x2")
    assert "alert 18:50:30" in "".join(root.itertext())
    for marker_ms in (None, T0 - 1, T0 + 21 * MIN):
        assert 'class="marker"' not in price_svg(BARS, view=VIEW, episode=EPISODE, marker_ms=marker_ms)


def test_candles_rise_green_and_fall_red_one_per_bar() -> None:
    bars = [bar(0, close=101.0), bar(1, close=99.0), bar(2, close=100.0), bar(3, close=102.0, open_=103.0)]
    root = parse(price_svg(bars, view=Span(T0, T0 + 4 * MIN), episode=EPISODE))
    up, down = root.find(f"{NS}g[@class='up']"), root.find(f"{NS}g[@class='down']")
    assert up is not None and down is not None
    assert (len(up.findall(f"{NS}rect")), len(down.findall(f"{NS}rect"))) == (2, 2)  # a doji counts as rising
    assert (len(up.findall(f"{NS}line")), len(down.findall(f"{NS}line"))) == (2, 2)
    close = root.find(f"{NS}path[@class='close']")
    assert close is not None and len(re.findall(rf"{NUMBER},{NUMBER}", close.get("d", ""))) == 4


def test_the_time_axis_reads_utc_hours_and_minutes() -> None:
    root = parse(volume_svg(BARS, view=VIEW, episode=EPISODE))
    axis = root.find(f"{NS}g[@class='x-axis']")
    assert axis is not None
    assert [t.text for t in axis] == ["18:40", "18:45", "18:50", "18:55", "19:00"]


def test_bars_are_drawn_when_they_overlap_the_view_and_hold_finite_values() -> None:
    bars = [bar(-1), bar(0), bar(19), bar(20), bar(5, close=float("nan")), bar(6, volume=float("inf"))]
    for chart in (price_svg, volume_svg):
        assert parse(chart(bars, view=VIEW, episode=EPISODE)).get("data-points") == "2"
    half = [BarPoint(T0 - 30_000, T0 + 30_000, 1.0, 2.0, 0.5, 1.5, 3.0)]  # starts before the view: clipped
    assert_inside(parse(price_svg(half, view=VIEW, episode=EPISODE)))


@pytest.mark.parametrize(("kind", "chart"), [("price", price_svg), ("volume", volume_svg), ("book", book_svg)])
def test_no_data_in_the_window_is_a_small_chart_that_says_so(kind: str, chart: Chart) -> None:
    for data in ([], [bar(30)] if kind != "book" else [book(-5)]):
        svg = chart(data, view=VIEW, episode=EPISODE)
        root = parse(svg)
        assert (root.get("class"), root.get("role"), root.get("data-points")) == (f"chart chart-{kind}", "img", "0")
        assert "no data in this window" in "".join(root.itertext())
        assert len(svg) < 1000


def test_titles_are_escaped() -> None:
    """The title is the accessible name and the caption top left; characters XML cannot hold are left out."""
    title = "BTC<USD> & \"Co\" 'x'\x00\x1b"
    cases: list[tuple[Chart, Sequence[object]]] = [(chart, data) for _, chart, data in CHARTS] + [(book_svg, [])]
    for chart, data in cases:
        root = parse(chart(data, view=VIEW, episode=EPISODE, title=title))
        assert (text_of(root, "title"), text_of(root, "text")) == (title[:-2], title[:-2])


@pytest.mark.parametrize(
    "bars",
    [
        [bar(3, close=100.0)],  # a single bar
        [BarPoint(T0 + m * MIN, T0 + (m + 1) * MIN, 7.0, 7.0, 7.0, 7.0, 0.0) for m in range(20)],  # flat, no volume
        [BarPoint(T0, T0, 0.0, 0.0, 0.0, 0.0, -1.0)],  # no duration, zero price, negative volume
        [BarPoint(T0, T0 + MIN, 1e308, 1.7e308, -1.7e308, -1e308, 1e308)],  # the float range
        [BarPoint(T0, T0 + MIN, 5e-324, 5e-324, 5e-324, 5e-324, 5e-324)],  # subnormal
    ],
)
def test_degenerate_bars_draw(bars: list[BarPoint]) -> None:
    for chart in (price_svg, volume_svg):
        root = parse(chart(bars, view=VIEW, episode=EPISODE))
        assert root.get("data-points") == str(len(bars))
        assert_inside(root)


@pytest.mark.parametrize(
    "books",
    [
        [book(10)],  # a single snapshot
        [BookPoint(T0 + s * 10_000, [(99.0, 1.0)], []) for s in range(10)],  # bids only
        [BookPoint(T0 + s * 10_000, [], [(101.0, 2.0), (102.0, 0.0)]) for s in range(10)],  # asks only
        [BookPoint(T0 + s * 10_000, [], []) for s in range(10)],  # empty
        [BookPoint(T0 + s * 10_000, [(99.0, 0.0)] * 5, [(101.0, float("nan"))] * 5) for s in range(10)],  # empty levels
        [BookPoint(T0, [(1.7e308, 1e308)], [(-1.7e308, 5e-324)])],  # the float range, crossed
    ],
)
def test_degenerate_books_draw(books: list[BookPoint]) -> None:
    root = parse(book_svg(books, view=VIEW, episode=EPISODE))
    assert root.get("data-points") == str(len(books))
    assert_inside(root)


def test_degenerate_views_and_sizes_draw() -> None:
    cases: list[tuple[Chart, Sequence[object]]] = [(price_svg, [bar(0)]), (volume_svg, [bar(0)]), (book_svg, [book(0)])]
    for view in (Span(T0, T0), Span(T0 + MIN, T0)):
        for chart, data in cases:
            root = parse(chart(data, view=view, episode=EPISODE, width=1, height=1))
            assert root.get("viewBox") == "0 0 200 80"  # raised to the smallest size with room for the margins
            assert_inside(root)


def test_the_book_marks_each_level_darker_the_larger() -> None:
    books = [BookPoint(T0 + s * 1000, [(99.0, 10.0), (98.0, 1.0)], [(101.0, 5.0)]) for s in range(3)]
    root = parse(book_svg(books, view=Span(T0, T0 + 3000), episode=EPISODE))
    bids, asks = root.find(f"{NS}g[@class='bids']"), root.find(f"{NS}g[@class='asks']")
    assert bids is not None and asks is not None
    shades = {
        (side, path.get("stroke-opacity")): path.get("d", "").count("M")
        for side, group in (("bids", bids), ("asks", asks))
        for path in group
    }
    assert shades == {("bids", "1"): 3, ("bids", "0.2"): 3, ("asks", "0.6"): 3}
    mid = root.find(f"{NS}path[@class='mid']")
    assert mid is not None and mid.get("d", "").count(",") == 3


def test_the_book_keeps_the_snapshot_nearest_each_column() -> None:
    """272 columns of 1 s: the first holds snapshots at 0.1 s and 0.6 s (0.6 s is nearer its centre), the sixth one."""
    view = Span(T0, T0 + 272_000)
    books = [BookPoint(T0 + ms, [(99.0, 1.0)], [(101.0, 1.0)]) for ms in (100, 600, 5_500)]
    root = parse(book_svg(books, view=view, episode=EPISODE))
    assert root.get("data-points") == "2"
    mid = root.find(f"{NS}path[@class='mid']")
    assert mid is not None and mid.get("d", "").startswith(f"M{LEFT + 600 * PLOT / 272_000:.1f},")
    shuffled = books[::-1]
    assert book_svg(shuffled, view=view, episode=EPISODE) == book_svg(books, view=view, episode=EPISODE)


def test_a_busy_book_stays_small() -> None:
    """600 snapshots of 10 levels in a 900 px chart: 272 drawn, under 64 KB (about 48 KB)."""
    rng = random.Random(1)
    books = [
        BookPoint(
            T0 + i * 2_000,
            [(100.0 - 0.01 * (level + 1) + i / 1e4, rng.uniform(0.1, 50.0)) for level in range(5)],
            [(100.0 + 0.01 * (level + 1) + i / 1e4, rng.uniform(0.1, 50.0)) for level in range(5)],
        )
        for i in range(600)
    ]
    svg = book_svg(books, view=VIEW, episode=EPISODE)
    assert parse(svg).get("data-points") == "272"
    assert len(svg.encode()) < 64_000


# -- any finite input --------------------------------------------------------------------------------------------

FLOATS = st.floats(allow_nan=False, allow_infinity=False)
OFFSETS = st.integers(min_value=-2 * 10**7, max_value=2 * 10**7)


@st.composite
def windows(draw: st.DrawFn) -> tuple[Span, Span, int, int]:
    start = draw(st.integers(min_value=-(10**13), max_value=10**13))
    view = Span(start, start + draw(st.integers(min_value=-1_000, max_value=10**7)))
    episode = Span(start + draw(OFFSETS), start + draw(OFFSETS))
    return view, episode, draw(st.integers(min_value=1, max_value=1_500)), draw(st.integers(min_value=1, max_value=500))


def bar_points(start: int) -> st.SearchStrategy[BarPoint]:
    times = st.integers(min_value=start - MIN, max_value=start + 10**7)
    return st.builds(BarPoint, times, times, FLOATS, FLOATS, FLOATS, FLOATS, FLOATS)


def book_points(start: int) -> st.SearchStrategy[BookPoint]:
    levels = st.lists(st.tuples(FLOATS, FLOATS), max_size=7)
    return st.builds(BookPoint, st.integers(min_value=start - 1_000, max_value=start + 10**7), levels, levels)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(window=windows(), data=st.data(), marker=st.one_of(st.none(), OFFSETS))
def test_any_finite_bars_give_well_formed_svg_inside_the_view_box(
    window: tuple[Span, Span, int, int], data: st.DataObject, marker: int | None
) -> None:
    view, episode, width, height = window
    bars = data.draw(st.lists(bar_points(view.start_ms), max_size=12))
    marker_ms = None if marker is None else view.start_ms + marker
    for svg in (
        price_svg(bars, view=view, episode=episode, marker_ms=marker_ms, width=width, height=height),
        volume_svg(bars, view=view, episode=episode, width=width, height=height),
    ):
        assert_inside(parse(svg))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(window=windows(), data=st.data())
def test_any_finite_books_give_well_formed_svg_inside_the_view_box(
    window: tuple[Span, Span, int, int], data: st.DataObject
) -> None:
    view, episode, width, height = window
    books = data.draw(st.lists(book_points(view.start_ms), max_size=12))
    root = parse(book_svg(books, view=view, episode=episode, width=width, height=height))
    assert int(root.get("data-points", "-1")) <= max(width, 200) // 3
    assert_inside(root)
