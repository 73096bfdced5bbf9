"""The HTML page and its SVG charts, built from plain data."""

from __future__ import annotations

import math
import re

import pytest

from collectbus.report.html import CHARTS, HostSummary, ReportData, render
from collectbus.report.svg import Line, line_chart, nice_ticks, scale_unit, time_label, time_ticks

S = 1_000_000_000


def _data() -> ReportData:
    xs = [0.0, 1.0, 2.0, 3.0]
    series = {
        chart.column: {
            "node1": (xs, [math.nan, 10.0, 20.0, 30.0]),
            "node<2>": (xs, [math.nan, 5.0, math.nan, 7.0]),
        }
        for chart in CHARTS
    }
    return ReportData(
        title="Run & results",
        source="timeseries.json",
        start_ns=1_700_000_000 * S,
        end_ns=1_700_000_003 * S,
        hosts=("node1", "node<2>"),
        series=series,
        summaries={
            "node<2>": HostSummary(samples=3, failed_rounds=1, last_error="node<2>: no answer")
        },
        interval_s=1.0,
        command=("sh", "-c", "exit 7"),
        exit_code=7,
    )


def test_the_page_is_self_contained_and_escaped() -> None:
    page = render(_data())
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"(src|href)=", page)  # nothing loaded from anywhere
    assert "http" not in page
    assert "<script" not in page
    assert "Run &amp; results" in page
    assert "node&lt;2&gt;" in page
    assert "node<2>" not in page
    assert "exit code 7" in page
    assert "node&lt;2&gt;: no answer" in page


def test_every_chart_has_a_title_with_its_unit_axes_and_a_legend() -> None:
    page = render(_data())
    assert page.count('<svg class="chart"') == len(CHARTS)
    for chart in CHARTS:
        assert f"<h2>{chart.title.replace('&', '&amp;')} (" in page
    assert page.count("time since start (m:ss)") == len(CHARTS)
    assert page.count('class="legend"') == len(CHARTS)


def test_nan_breaks_a_line_and_a_lone_point_is_a_dot() -> None:
    svg = line_chart(
        [Line("h", [0, 1, 2, 3], [1.0, math.nan, 2.0, 3.0], "#123456")], span_s=3, unit="%"
    )
    assert svg.count("<polyline") == 1  # the run 2, 3
    assert svg.count("<circle") == 1  # the lone first point


def test_a_chart_without_data_says_so() -> None:
    data = _data()
    empty = {
        c.column: {"node1": ([0.0], [math.nan]), "node<2>": ([0.0], [math.nan])} for c in CHARTS
    }
    page = render(
        ReportData(**{**{f: getattr(data, f) for f in data.__dataclass_fields__}, "series": empty})
    )
    assert page.count("no data for this chart") == len(CHARTS)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0, 100, [0, 20, 40, 60, 80, 100]),
        (0, 7.3, [0, 2, 4, 6, 8]),
        (0, 0, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    ],
)
def test_ticks_are_round_and_cover_the_range(
    low: float, high: float, expected: list[float]
) -> None:
    assert nice_ticks(low, high) == pytest.approx(expected)


def test_time_ticks_and_labels() -> None:
    assert time_ticks(45) == [0, 10, 20, 30, 40]
    assert time_ticks(3600)[:3] == [0, 600, 1200]
    assert time_label(75) == "1:15"
    assert time_label(3725) == "1:02:05"


@pytest.mark.parametrize(
    ("kind", "peak", "unit", "divisor"),
    [
        ("bytes/s", 500, "B/s", 1),
        ("bytes/s", 5 * 2**20, "MiB/s", 2**20),
        ("bytes", 3 * 2**30, "GiB", 2**30),
        ("%", 50, "%", 1),
    ],
)
def test_byte_units_are_binary(kind: str, peak: float, unit: str, divisor: float) -> None:
    assert scale_unit(kind, peak) == (unit, divisor)


def test_failed_rounds_are_marked_on_the_cpu_chart_only() -> None:
    data = _data()
    fields = {f: getattr(data, f) for f in data.__dataclass_fields__}
    page = render(ReportData(**{**fields, "failures": {"node<2>": [0.5, 2.5]}}))
    assert page.count('class="failed"/>') == 2
    assert page.count("2 failed rounds") == 1


def test_a_long_series_keeps_at_most_two_points_per_pixel_and_its_spikes() -> None:
    n = 100_000
    ys = [10.0] * n
    ys[54_321] = 99.0  # one spike among many flat samples
    svg = line_chart(
        [Line("h", [i / 10 for i in range(n)], ys, "#123456")], span_s=n / 10, unit="%"
    )
    (points,) = re.findall(r'points="([^"]+)"', svg)
    assert len(points.split()) <= 2 * 482
    ys_drawn = {float(p.split(",")[1]) for p in points.split()}
    assert len(ys_drawn) == 2  # the flat line and the spike's top
