"""The chart geometry (connector/web/charts.py) with plain data, and its SVG macro."""
from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree

import jinja2
import pytest

from connector.web.charts import (DASHES, MARKERS, Series, bar_chart, line_chart, marker_path, nice_ticks,
                                  spread)

TEMPLATES = Path(__file__).resolve().parents[2] / "connector" / "web" / "templates"


def render(chart) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    return env.from_string('{% from "_charts.html" import chart %}{{ chart(c) }}').render(c=chart)


def svg_of(html: str) -> ElementTree.Element:
    svg = re.search(r"<svg viewBox.*?</svg>", html, re.S).group(0)
    return ElementTree.fromstring(svg.replace('xmlns="http://www.w3.org/2000/svg"', ""))


@pytest.mark.parametrize("lo, hi, expected", [
    (0, 100, [0, 20, 40, 60, 80, 100]),
    (0, 95, [0, 20, 40, 60, 80, 100]),
    (0, 7, [0, 2, 4, 6, 8]),
    (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    (-30, 120, [-50, 0, 50, 100, 150]),
    (0, 12_345, [0, 2500, 5000, 7500, 10000, 12500]),
    (5, 5, [4, 4.5, 5, 5.5, 6]),
    (0, 0, [0, 0.2, 0.4, 0.6, 0.8, 1]),
])
def test_nice_ticks_are_round_and_cover_the_range(lo, hi, expected):
    assert nice_ticks(lo, hi) == expected


@pytest.mark.parametrize("lo, hi, expected", [
    (0, 3, [0, 1, 2, 3]),
    (5, 5, [4, 5, 6]),
    (0, 0, [0, 1]),
    (0, 12, [0, 5, 10, 15]),
    (0, 120, [0, 25, 50, 75, 100, 125]),
])
def test_nice_ticks_for_counts_are_whole_numbers(lo, hi, expected):
    assert nice_ticks(lo, hi, whole=True) == expected


def test_nice_ticks_never_exceed_the_maximum():
    for hi in (3, 17, 99, 101, 999, 1001, 0.37, 48_000):
        ticks = nice_ticks(0, hi)
        assert 2 <= len(ticks) <= 6
        assert ticks[0] <= 0 and ticks[-1] >= hi


def test_spread_keeps_order_and_gap_inside_the_bounds():
    ys = [100.0, 101.0, 102.0, 250.0]
    placed = spread(ys, 15, 20, 260)
    assert placed[0] == 100 and placed[1] == 115 and placed[2] == 130 and placed[3] == 250
    crowded = spread([258.0, 259.0, 260.0], 15, 20, 260)
    assert crowded == [230.0, 245.0, 260.0]  # slid up from the bottom, still 15 apart
    assert spread([], 15, 0, 10) == []


def test_a_line_breaks_where_a_value_is_missing():
    chart = line_chart([Series("Garage", [("1 Dec", 10), ("2 Dec", 8), ("3 Dec", None),
                                          ("4 Dec", 5), ("5 Dec", 4)])],
                       title="Projected units", y_label="Units")
    (line,) = chart.lines
    assert len(line.paths) == 2
    first, second = line.paths
    assert first.count("L") == 1 and second.count("L") == 1
    # higher values sit higher on the page (smaller y)
    ys = [float(p.split(",")[1]) for p in re.findall(r"[\d.]+,[\d.]+", first)]
    assert ys[0] < ys[1]


def test_a_lone_value_between_gaps_still_shows_as_a_marker():
    chart = line_chart([Series("Pop-up", [("a", None), ("b", 3), ("c", None)])], title="T", y_label="Units")
    (line,) = chart.lines
    assert line.paths == () and len(line.markers) == 1


def test_series_differ_in_dash_and_marker_and_are_named_at_their_end():
    series = [Series(f"Node {i}", [("d1", i), ("d2", i + 1)]) for i in range(len(DASHES) * len(MARKERS))]
    chart = line_chart(series, title="T", y_label="Units")
    pairs = {(line.style.dash, line.style.marker) for line in chart.lines}
    assert len(pairs) == len(series)
    labels = [line.label for line in chart.lines]
    assert all(label is not None and label.x > chart.right for label in labels)
    ys = sorted(label.y for label in labels)
    assert all(b - a >= 14.9 for a, b in zip(ys, ys[1:]))


def test_end_labels_of_lines_finishing_together_do_not_overlap():
    chart = line_chart([Series("Warehouse East", [("a", 10), ("b", 50)]),
                        Series("Warehouse West", [("a", 20), ("b", 50)])], title="T", y_label="Units")
    first, second = (line.label.y for line in chart.lines)
    assert abs(first - second) >= 15


def test_long_names_are_truncated_in_the_drawing_but_whole_in_the_table():
    name = "The cold room behind the old bakery"
    chart = line_chart([Series(name, [("a", 1), ("b", 2)])], title="T", y_label="Units")
    assert chart.lines[0].label.text.endswith("…") and chart.lines[0].label.full == name
    assert chart.table_head == ("", name)


def test_the_summary_says_what_the_chart_shows():
    chart = line_chart([Series("Garage", [("1 Dec", 120), ("2 Dec", 90)]),
                        Series("Warehouse", [("1 Dec", 400), ("2 Dec", None)])],
                       title="Projected units", y_label="Units", unit="units")
    assert chart.summary == ("Projected units, 2 lines over 1 Dec to 2 Dec: Garage from 120 units to 90 units; "
                             "Warehouse: 400 units.")
    assert chart.table_rows == (("1 Dec", "120", "400"), ("2 Dec", "90", "—"))
    assert chart.table_head == ("", "Garage (units)", "Warehouse (units)")


def test_an_empty_chart_says_so():
    chart = line_chart([], title="On-time rate", y_label="%")
    assert chart.summary == "On-time rate: no data yet."
    assert "no data yet" in render(chart)


def test_the_value_axis_covers_negative_values_and_references():
    chart = line_chart([Series("Net", [("a", -20), ("b", 40)])], title="T", y_label="Units",
                       references=[(90, "Target")])
    assert chart.value_ticks[0].value <= -20 and chart.value_ticks[-1].value >= 90
    (ref,) = chart.references
    assert chart.top <= ref.pos <= chart.bottom
    assert chart.top <= chart.zero <= chart.bottom


def test_category_labels_are_thinned_to_fit_and_keep_the_last():
    days = [f"{d} Dec" for d in range(1, 31)]
    chart = line_chart([Series("Garage", [(d, i) for i, d in enumerate(days)])], title="T", y_label="Units")
    labels = [t.label for t in chart.category_ticks]
    assert labels[0] == "1 Dec" and labels[-1] == "30 Dec"
    assert len(labels) < len(days)
    positions = [t.pos for t in chart.category_ticks]
    assert all(b - a >= 40 for a, b in zip(positions, positions[1:]))


def test_vertical_bars_start_at_zero_and_grow_with_the_value():
    chart = bar_chart([Series("On hand", [("Garage", 10), ("Warehouse", 40)])], title="Stock by node",
                      y_label="Units")
    garage, warehouse = chart.bars
    assert garage.y + garage.height == pytest.approx(chart.zero, abs=0.11)
    assert warehouse.height == pytest.approx(garage.height * 4, rel=0.02)
    assert warehouse.value_label.text == "40"
    assert chart.summary == "Stock by node: Garage 10, Warehouse 40."


def test_horizontal_grouped_bars_give_each_category_its_row():
    chart = bar_chart([Series("On hand", [("Garage", 10), ("Warehouse", 40), ("Pop-up", 0)]),
                       Series("Reserved", [("Garage", 4), ("Warehouse", 12), ("Pop-up", None)])],
                      title="Stock by node", y_label="Units", horizontal=True)
    assert [t.label for t in chart.category_ticks] == ["Garage", "Warehouse", "Pop-up"]
    assert len(chart.bars) == 5  # no bar where there is no value
    garage_on_hand, garage_reserved = [b for b in chart.bars if b.category == "Garage"]
    assert garage_on_hand.x == garage_reserved.x == pytest.approx(chart.zero, abs=0.11)
    assert garage_on_hand.width > garage_reserved.width
    assert garage_on_hand.style.pattern != garage_reserved.style.pattern
    assert chart.height > chart.bottom  # grows with the categories, room for the axis below


def test_marker_shapes_are_closed_paths_around_their_point():
    for shape in MARKERS:
        d = marker_path(shape, 50, 50)
        assert d.startswith("M") and d.endswith("Z")
        numbers = [float(n) for n in re.findall(r"-?[\d.]+", d.split(" a")[0])]
        assert all(40 <= n <= 60 for n in numbers)
    with pytest.raises(ValueError):
        marker_path("star", 0, 0)


def test_the_macro_draws_an_accessible_svg_with_a_table_of_values():
    chart = line_chart([Series("Garage", [("1 Dec", 12), ("2 Dec", 9)]),
                        Series("Warehouse", [("1 Dec", 40), ("2 Dec", 31)])],
                       title="Projected units", y_label="Units")
    html = render(chart)
    svg = svg_of(html)
    assert svg.get("role") == "img" and svg.get("width") == "100%" and svg.get("viewBox") == "0 0 400 300"
    assert svg.get("aria-labelledby") == f"{chart.id}-title {chart.id}-desc"
    assert svg.find("title").text == "Projected units"
    assert svg.find("desc").text == chart.summary
    dashed = [p.get("stroke-dasharray") for p in svg.iter("path") if p.get("fill") == "none"]
    assert dashed == [None, DASHES[1]]
    assert "style=" not in html and "<script" not in html and "http" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert re.search(r"<details class=\"chart-values\">.*<table.*<th scope=\"row\">1 Dec</th><td>12</td><td>40</td>",
                     html, re.S)


def test_the_macro_fills_bar_series_with_distinct_patterns():
    chart = bar_chart([Series("On hand", [("Garage", 10)]), Series("Reserved", [("Garage", 3)])],
                      title="Stock", y_label="Units")
    svg = svg_of(render(chart))
    fills = [r.get("fill") for r in svg.iter("rect") if r.get("stroke")]
    assert fills[0].startswith("#") and fills[1] == f"url(#{chart.id}-diagonal)"
    assert svg.find(f".//pattern[@id='{chart.id}-diagonal']") is not None


def test_two_charts_on_one_page_have_different_ids():
    a = line_chart([Series("A", [("x", 1)])], title="T", y_label="")
    b = line_chart([Series("B", [("x", 1)])], title="T", y_label="")
    assert a.id != b.id
