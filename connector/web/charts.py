"""Charts drawn on the server: the geometry here (scales, nice ticks, paths, labels), the
drawing in `templates/_charts.html` (`{% from "_charts.html" import chart %}` then
`{{ chart(c) }}`) as inline SVG. No JavaScript and nothing fetched, so a chart works inside
the Shopify admin, in a printout and in a screen reader alike.

A reader must never need colour to tell series apart: every line has its own dash pattern
and marker shape and is named at its end; every bar series has its own fill pattern and
carries its value. Every chart says what it shows in a sentence (the SVG's <desc>) and
comes with its values as a table. The drawing is sized by its viewBox and scales to the
width it is given, so it stays legible on a 390 px phone.

Pure Python: this module reads no request, clock or database; views pass plain data.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Callable, Sequence

# Okabe–Ito colours (told apart by most colour-blind readers), darkened where they would be
# too pale on white; colour only ever repeats what the dash, marker or pattern already says.
COLORS = ("#0072b2", "#c0440a", "#007a5a", "#a8427f", "#8a6100", "#3b8fc4", "#303030")
DASHES = ("", "7 4", "2 3", "10 3 2 3", "4 2 1 2 1 2")
MARKERS = ("circle", "square", "triangle", "diamond", "triangle-down", "plus")
PATTERNS = ("solid", "diagonal", "dots", "crosshatch", "horizontal", "vertical")

# Drawn 400 units wide: on a 390 px phone (about 330 px inside a card) text of 13 units is
# 11 px; on a laptop the chart is capped at 34rem (app.css), so it stays about 16 px.
FONT_SIZE = 13
CHAR_WIDTH = 7.2     # an average glyph at FONT_SIZE in a sans-serif face, to size margins
LABEL_GAP = 15       # end labels closer than this are spread apart so none overlap
MAX_LABEL_CHARS = 14  # an end label or axis label; the legend and the table carry the whole name
MAX_BAR_LABEL_CHARS = 20
MARKERS_PER_LINE = 8  # beyond this a line with a marker on every point turns into a smear
MAX_SUMMARY_ITEMS = 6


@dataclass(frozen=True)
class Series:
    """One named line (or set of bars): a value per category; None where there is none."""
    name: str
    points: list[tuple[str, float | None]]


@dataclass(frozen=True)
class Tick:
    value: float
    label: str
    pos: float  # x for a category axis, y for a value axis

    def __post_init__(self):
        object.__setattr__(self, "pos", _r(self.pos))


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "start"  # SVG text-anchor
    full: str = ""          # the untruncated text

    def __post_init__(self):
        object.__setattr__(self, "x", _r(self.x))
        object.__setattr__(self, "y", _r(self.y))


@dataclass(frozen=True)
class Style:
    """How one series looks: each attribute alone tells it from the others."""
    index: int
    color: str
    dash: str
    marker: str
    pattern: str

    @property
    def swatch_marker(self) -> str:
        """The marker for the legend's 34 × 14 sample."""
        return marker_path(self.marker, 17, 7)


@dataclass(frozen=True)
class Line:
    name: str
    style: Style
    paths: tuple[str, ...]    # one path per unbroken run of values; None breaks the line
    markers: tuple[str, ...]  # marker shapes as path data
    label: Label | None       # the series' name beside its last value


@dataclass(frozen=True)
class Bar:
    series: str
    category: str
    style: Style
    x: float
    y: float
    width: float
    height: float
    value_label: Label

    def __post_init__(self):
        for name in ("x", "y", "width", "height"):
            object.__setattr__(self, name, _r(getattr(self, name)))


@dataclass(frozen=True)
class Reference:
    """A horizontal line at a value the reader compares against (a target, a threshold)."""
    value: float
    text: str
    pos: float
    label: Label

    def __post_init__(self):
        object.__setattr__(self, "pos", _r(self.pos))


@dataclass(frozen=True)
class Chart:
    id: str
    kind: str  # "line" or "bar"
    title: str
    summary: str
    width: float
    height: float
    left: float
    top: float
    right: float
    bottom: float
    horizontal: bool
    value_axis_label: str
    category_ticks: tuple[Tick, ...]
    value_ticks: tuple[Tick, ...]
    zero: float  # where value 0 sits (y for vertical charts, x for horizontal bars)
    lines: tuple[Line, ...]
    bars: tuple[Bar, ...]
    references: tuple[Reference, ...]
    legend: tuple[tuple[str, Style], ...]
    table_head: tuple[str, ...]
    table_rows: tuple[tuple[str, ...], ...]

    def __post_init__(self):
        for name in ("width", "height", "left", "top", "right", "bottom", "zero"):
            object.__setattr__(self, name, _r(getattr(self, name)))

    @property
    def view_box(self) -> str:
        return f"0 0 {_n(self.width)} {_n(self.height)}"


def line_chart(series: Sequence[Series], *, title: str, y_label: str, summary: str | None = None,
               unit: str = "", value_format: Callable[[float], str] | None = None,
               y_min: float | None = None, y_max: float | None = None,
               references: Sequence[tuple[float, str]] = (),
               width: float = 400, height: float = 300) -> Chart:
    """Several series over the same categories (days, weeks, ...), left to right in the order
    the categories first appear. The value axis includes 0 unless `y_min` says otherwise."""
    categories = _categories(series)
    fmt = _formatter(series, value_format)
    values = [v for s in series for _, v in s.points if v is not None] + [v for v, _ in references]
    lo, hi = _domain(values, y_min, y_max)
    ticks = nice_ticks(lo, hi, whole=_whole(values))
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
    tick_labels = [fmt(t) for t in ticks]
    styles = [_style(i) for i in range(len(series))]
    names = [_truncate(s.name) for s in series]

    left = 12 + CHAR_WIDTH * max(len(t) for t in tick_labels)
    right = width - (16 + CHAR_WIDTH * max((len(n) for n in names), default=0) if series else 16)
    right = max(right, left + (width - left) * 0.55)  # long names are truncated, never the plot
    top, bottom = 30.0, height - 30.0
    y_of = _scale(lo, hi, bottom, top)
    x_of = _category_positions(categories, left, right)

    lines, last_points = [], []
    for s, style, name in zip(series, styles, names):
        values_by_category = dict(s.points)
        runs, run = [], []
        for category in categories:
            value = values_by_category.get(category)
            if value is None:
                if run:
                    runs.append(run)
                run = []
            else:
                run.append((x_of[category], y_of(value)))
        if run:
            runs.append(run)
        points = [p for r in runs for p in r]
        every = max(1, math.ceil(len(points) / MARKERS_PER_LINE))
        # Each series starts its markers at a different point so they do not sit on each other.
        shown = {p for i, p in enumerate(points) if (i + style.index) % every == 0}
        shown.update(r[0] for r in runs if len(r) == 1)  # a lone value shows only as a marker
        if points:
            shown.add(points[-1])
        lines.append(Line(
            name=s.name, style=style,
            paths=tuple("M" + " L".join(f"{_n(x)},{_n(y)}" for x, y in r) for r in runs if len(r) > 1),
            markers=tuple(marker_path(style.marker, x, y) for x, y in sorted(shown)),
            label=None))
        last_points.append(points[-1] if points else None)

    label_ys = spread([p[1] for p in last_points if p is not None], LABEL_GAP, top, bottom)
    label_iter = iter(label_ys)
    lines = [line if point is None else _with_label(line, Label(
                 right + 6, next(label_iter) + FONT_SIZE * 0.35, name, "start", line.name))
             for line, point, name in zip(lines, last_points, names)]

    refs = tuple(Reference(value, text, y_of(value),
                           Label(left + 4, y_of(value) - 4, _truncate(text, 40), "start", text))
                 for value, text in references)
    head, rows = _table(series, categories, fmt, unit)
    return Chart(
        id=_chart_id(title, series), kind="line", title=title,
        summary=summary or _line_summary(title, series, categories, fmt, unit),
        width=width, height=height, left=left, top=top, right=right, bottom=bottom, horizontal=False,
        value_axis_label=y_label,
        category_ticks=_thinned_ticks(categories, x_of, right - left),
        value_ticks=tuple(Tick(t, label, y_of(t)) for t, label in zip(ticks, tick_labels)),
        zero=y_of(min(max(0.0, lo), hi)),
        lines=tuple(lines), bars=(), references=refs,
        legend=tuple((s.name, style) for s, style in zip(series, styles)),
        table_head=head, table_rows=rows)


def bar_chart(series: Sequence[Series], *, title: str, y_label: str, summary: str | None = None,
              unit: str = "", value_format: Callable[[float], str] | None = None,
              horizontal: bool = False, width: float = 400, height: float | None = None) -> Chart:
    """Bars per category, one bar per series side by side (grouped). Horizontal bars suit
    many categories or long names (nodes, regions): each name gets its own line, and the
    chart grows downwards instead of squeezing the labels."""
    categories = _categories(series)
    fmt = _formatter(series, value_format)
    values = [v for s in series for _, v in s.points if v is not None]
    lo, hi = _domain(values, None, None)
    ticks = nice_ticks(lo, hi, whole=_whole(values))
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
    tick_labels = [fmt(t) for t in ticks]
    styles = [_style(i) for i in range(len(series))]
    n = max(1, len(series))
    longest_value = max((len(fmt(v)) for v in values), default=1)

    bars = []
    if horizontal:
        bar = 16.0 if n == 1 else 12.0
        band = n * bar + 14
        label_chars = min(max((len(c) for c in categories), default=0), MAX_BAR_LABEL_CHARS,
                          int((width * 0.4 - 12) // CHAR_WIDTH))
        left = 12 + CHAR_WIDTH * label_chars
        right = width - (10 + CHAR_WIDTH * longest_value)
        top = 14.0
        bottom = top + band * max(1, len(categories))
        height = bottom + 34
        x_of = _scale(lo, hi, left, right)
        zero = x_of(min(max(0.0, lo), hi))
        category_ticks = tuple(Tick(i, _truncate(c, label_chars), top + band * i + band / 2)
                               for i, c in enumerate(categories))
        for s, style in zip(series, styles):
            for category, value in s.points:
                if value is None:
                    continue
                i = categories.index(category)
                y = top + band * i + 7 + style.index * bar
                x0, x1 = sorted((zero, x_of(value)))
                bars.append(Bar(s.name, category, style, x0, y, max(x1 - x0, 0.5), bar - 2,
                                Label(x1 + 4 if value >= 0 else x0 - 4, y + bar / 2 + 3,
                                      fmt(value), "start" if value >= 0 else "end")))
        value_ticks = tuple(Tick(t, label, x_of(t)) for t, label in zip(ticks, tick_labels))
    else:
        height = height or 280.0
        left = 12 + CHAR_WIDTH * max(len(t) for t in tick_labels)
        right = width - 12
        top, bottom = 24.0, height - 30.0
        y_of = _scale(lo, hi, bottom, top)
        zero = y_of(min(max(0.0, lo), hi))
        band = (right - left) / max(1, len(categories))
        bar = min(28.0, band * 0.8 / n)
        x_of = {c: left + band * (i + 0.5) for i, c in enumerate(categories)}
        for s, style in zip(series, styles):
            for category, value in s.points:
                if value is None:
                    continue
                x = x_of[category] - bar * n / 2 + style.index * bar
                y0, y1 = sorted((zero, y_of(value)))
                bars.append(Bar(s.name, category, style, x + 1, y0, bar - 2, max(y1 - y0, 0.5),
                                Label(x + bar / 2, (y0 - 4) if value >= 0 else (y1 + FONT_SIZE), fmt(value),
                                      "middle")))
        category_ticks = _thinned_ticks(categories, x_of, right - left)
        value_ticks = tuple(Tick(t, label, y_of(t)) for t, label in zip(ticks, tick_labels))

    head, rows = _table(series, categories, fmt, unit)
    return Chart(
        id=_chart_id(title, series), kind="bar", title=title,
        summary=summary or _bar_summary(title, series, fmt, unit),
        width=width, height=height, left=left, top=top, right=right, bottom=bottom, horizontal=horizontal,
        value_axis_label=y_label, category_ticks=category_ticks, value_ticks=value_ticks, zero=zero,
        lines=(), bars=tuple(bars), references=(),
        legend=tuple((s.name, style) for s, style in zip(series, styles)),
        table_head=head, table_rows=rows)


def nice_ticks(lo: float, hi: float, max_ticks: int = 6, whole: bool = False) -> list[float]:
    """Round values (steps of 1, 2, 2.5 or 5 times a power of ten) covering lo..hi, at most
    `max_ticks` of them: 0, 250, 500, 750 rather than 0, 237, 474, 711. `whole`: the values
    are counts (units, orders), so no step is smaller than 1 or ends in .5."""
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        lo, hi = (lo - 1, hi + 1) if lo else (0.0, 1.0)
    raw_step = (hi - lo) / max(1, max_ticks - 1)
    if whole:
        raw_step = max(raw_step, 1.0)
    magnitude = 10 ** math.floor(math.log10(raw_step))
    multiples = (1, 2, 5, 10) if whole and magnitude < 10 else (1, 2, 2.5, 5, 10)
    for multiple in multiples:
        step = multiple * magnitude
        start, end = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
        if round((end - start) / step) + 1 <= max_ticks:
            break
    count = round((end - start) / step) + 1
    return [_clean(start + i * step) for i in range(count)]


def spread(ys: Sequence[float], gap: float, lo: float, hi: float) -> list[float]:
    """Label positions as close to `ys` as they can be while at least `gap` apart (kept in
    their order), inside lo..hi where there is room: end labels of lines that finish
    together stay readable."""
    if not ys:
        return []
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    placed = [ys[i] for i in order]
    for i in range(1, len(placed)):
        placed[i] = max(placed[i], placed[i - 1] + gap)
    overflow = placed[-1] - hi
    if overflow > 0:  # pushed past the bottom: slide the block up, never above the top
        placed = [y - overflow for y in placed]
        for i in range(len(placed) - 2, -1, -1):
            placed[i] = min(placed[i], placed[i + 1] - gap)
        shift = lo - placed[0]
        if shift > 0:
            placed = [y + shift for y in placed]
    result = [0.0] * len(ys)
    for slot, i in enumerate(order):
        result[i] = placed[slot]
    return result


def marker_path(shape: str, x: float, y: float, r: float = 4.0) -> str:
    """A marker of `shape` centred on (x, y) as SVG path data."""
    if shape == "circle":
        return f"M{_n(x - r)},{_n(y)} a{_n(r)},{_n(r)} 0 1,0 {_n(2 * r)},0 a{_n(r)},{_n(r)} 0 1,0 {_n(-2 * r)},0 Z"
    if shape == "square":
        s = r * 0.85
        corners = [(x - s, y - s), (x + s, y - s), (x + s, y + s), (x - s, y + s)]
    elif shape == "triangle":
        corners = [(x, y - r * 1.15), (x + r, y + r * 0.75), (x - r, y + r * 0.75)]
    elif shape == "triangle-down":
        corners = [(x, y + r * 1.15), (x + r, y - r * 0.75), (x - r, y - r * 0.75)]
    elif shape == "diamond":
        corners = [(x, y - r * 1.2), (x + r, y), (x, y + r * 1.2), (x - r, y)]
    elif shape == "plus":
        a, b = r * 1.1, r * 0.38
        corners = [(x - b, y - a), (x + b, y - a), (x + b, y - b), (x + a, y - b), (x + a, y + b), (x + b, y + b),
                   (x + b, y + a), (x - b, y + a), (x - b, y + b), (x - a, y + b), (x - a, y - b), (x - b, y - b)]
    else:
        raise ValueError(f"unknown marker shape {shape!r}")
    return "M" + " L".join(f"{_n(cx)},{_n(cy)}" for cx, cy in corners) + " Z"


def _style(index: int) -> Style:
    # Dash and marker lists have coprime lengths, so 30 series get 30 different pairs.
    return Style(index, COLORS[index % len(COLORS)], DASHES[index % len(DASHES)],
                 MARKERS[index % len(MARKERS)], PATTERNS[index % len(PATTERNS)])


def _with_label(line: Line, label: Label) -> Line:
    return Line(line.name, line.style, line.paths, line.markers, label)


def _categories(series: Sequence[Series]) -> list[str]:
    seen: dict[str, None] = {}
    for s in series:
        for category, _ in s.points:
            seen.setdefault(category, None)
    return list(seen)


def _domain(values: Sequence[float], y_min: float | None, y_max: float | None) -> tuple[float, float]:
    lo = y_min if y_min is not None else min([0.0, *values])
    hi = y_max if y_max is not None else max([0.0, *values])
    if hi <= lo:
        hi = lo + 1
    return float(lo), float(hi)


def _scale(lo: float, hi: float, out_lo: float, out_hi: float) -> Callable[[float], float]:
    span = (hi - lo) or 1.0
    return lambda v: out_lo + (v - lo) / span * (out_hi - out_lo)


def _category_positions(categories: Sequence[str], left: float, right: float) -> dict[str, float]:
    if len(categories) == 1:
        return {categories[0]: (left + right) / 2}
    step = (right - left) / max(1, len(categories) - 1)
    return {c: left + step * i for i, c in enumerate(categories)}


def _thinned_ticks(categories: Sequence[str], x_of: dict[str, float], span: float) -> tuple[Tick, ...]:
    """Category labels that fit side by side: every k-th one, always the first and last."""
    if not categories:
        return ()
    widest = CHAR_WIDTH * max(len(_truncate(c, 10)) for c in categories) + 10
    every = max(1, math.ceil(len(categories) / max(1, int(span // widest))))
    picked = [i for i in range(len(categories)) if i % every == 0]
    last = len(categories) - 1
    if picked[-1] != last:
        if len(picked) > 1 and last - picked[-1] < every:
            picked[-1] = last  # the last label replaces one too close to it
        else:
            picked.append(last)
    return tuple(Tick(i, _truncate(categories[i], 10), x_of[categories[i]]) for i in picked)


def _formatter(series: Sequence[Series], value_format: Callable[[float], str] | None) -> Callable[[float], str]:
    if value_format is not None:
        return value_format
    whole = _whole([v for s in series for _, v in s.points if v is not None])

    def fmt(value: float) -> str:
        if whole and float(value).is_integer():
            return f"{int(value):,}"
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}".rstrip("0").rstrip(".")
    return fmt


def _whole(values: Sequence[float]) -> bool:
    return all(float(v).is_integer() for v in values)


def _table(series: Sequence[Series], categories: Sequence[str], fmt: Callable[[float], str],
           unit: str) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    suffix = f" ({unit.strip()})" if unit.strip() else ""
    head = ("", *(s.name + suffix for s in series))
    by_series = [dict(s.points) for s in series]
    rows = tuple((c, *("—" if values.get(c) is None else fmt(values[c]) for values in by_series))
                 for c in categories)
    return head, rows


def _with_unit(text: str, unit: str) -> str:
    return f"{text}{unit}" if unit.startswith(("%", " ")) or not unit else f"{text} {unit}"


def _line_summary(title: str, series: Sequence[Series], categories: Sequence[str],
                  fmt: Callable[[float], str], unit: str) -> str:
    if not categories:
        return f"{title}: no data yet."
    parts = []
    for s in series[:MAX_SUMMARY_ITEMS]:
        present = [v for _, v in s.points if v is not None]
        if not present:
            parts.append(f"{s.name}: no values")
        elif len(present) == 1:
            parts.append(f"{s.name}: {_with_unit(fmt(present[0]), unit)}")
        else:
            parts.append(f"{s.name} from {_with_unit(fmt(present[0]), unit)} to {_with_unit(fmt(present[-1]), unit)}")
    more = len(series) - MAX_SUMMARY_ITEMS
    tail = f"; and {more} more in the table" if more > 0 else ""
    span = categories[0] if len(categories) == 1 else f"{categories[0]} to {categories[-1]}"
    lines = "1 line" if len(series) == 1 else f"{len(series)} lines"
    return f"{title}, {lines} over {span}: " + "; ".join(parts) + tail + "."


def _bar_summary(title: str, series: Sequence[Series], fmt: Callable[[float], str], unit: str) -> str:
    if not any(v is not None for s in series for _, v in s.points):
        return f"{title}: no data yet."
    parts = []
    for s in series:
        items = [f"{c} {_with_unit(fmt(v), unit)}" for c, v in s.points if v is not None]
        shown = items[:MAX_SUMMARY_ITEMS]
        more = f" and {len(items) - len(shown)} more" if len(items) > len(shown) else ""
        parts.append((f"{s.name}: " if len(series) > 1 else "") + ", ".join(shown) + more)
    return f"{title}: " + "; ".join(parts) + "."


def _truncate(text: str, limit: int = MAX_LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _chart_id(title: str, series: Sequence[Series]) -> str:
    # Stable (the same data draws the same page) and distinct for two charts on one page.
    digest = hashlib.blake2s(repr((title, [(s.name, s.points) for s in series])).encode(), digest_size=4)
    return "chart-" + digest.hexdigest()


def _clean(value: float) -> float:
    return round(value, 10) + 0.0  # 0.30000000000000004 -> 0.3, -0.0 -> 0.0


def _r(value: float) -> float:
    return round(float(value), 1) + 0.0


def _n(value: float) -> str:
    """A coordinate as SVG text: one decimal is finer than a pixel."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text
