"""The batch-job section of the report: many queues, odd waits, nothing to draw."""

from __future__ import annotations

import html
import re

from collectbus.report.html import MAX_QUEUE_LINES, JobCharts, ReportData, render
from collectbus.report.svg import box_stats, clock_ticks, nice_ticks

S = 1_000_000_000
T0 = 1_700_000_000 * S


def _page(jobs: JobCharts) -> str:
    return render(
        ReportData(
            title="jobs", source="db", start_ns=T0, end_ns=T0 + 3600 * S, hosts=(), series={},
            jobs=jobs,
        )
    )  # fmt: skip


def test_past_ten_queues_the_smallest_are_summed_into_one_line() -> None:
    xs = [0.0, 60.0, 120.0]
    queued = {f"q{i:02d}": (xs, [float(i), float(i), 0.0]) for i in range(1, 13)}
    queued["idle"] = (xs, [0.0, 0.0, 0.0])  # never had a job queued: no line
    page = _page(JobCharts(start_ns=T0, end_ns=T0 + 180 * S, queued=queued, waits={}))
    assert page.count("<polyline") == MAX_QUEUE_LINES
    # q12 .. q04 keep their lines; q01 + q02 + q03 are summed: peak 6.
    assert '3 other queues <span class="stats">peak 6,' in page
    assert "q04 <span" in page
    assert "q03 <span" not in page
    assert "idle" not in page
    assert "no job started in this window" in page


def test_a_wait_under_a_second_and_a_single_job_are_drawn() -> None:
    waits = {"debug": [0.0], "prod": [-2.0, 30.0, 7200.0], "(none)": [5.0, 5.0]}
    page = _page(JobCharts(start_ns=T0, end_ns=T0 + 60 * S, queued={}, waits=waits))
    titles = [html.unescape(t) for t in re.findall(r"<title>([^<]*)</title>", page)]
    assert "debug: 1 jobs; min 0 s, 25 % 0 s, median 0 s, 75 % 0 s, max 0 s" in titles
    # A negative wait (bad scheduler data) is shown as it is, drawn at the axis' start.
    assert "prod: 3 jobs; min -2 s, 25 % 14 s, median 30 s, 75 % 1.0 h, max 2.0 h" in titles
    assert "no job was queued in this window" in page
    assert page.count('<g class="box">') == 3


def test_box_stats_interpolate_as_numpy() -> None:
    # numpy.percentile([1, 2, 3, 4], [25, 50, 75]) = 1.75, 2.5, 3.25
    assert box_stats([4.0, 1.0, 3.0, 2.0]) == (1.0, 1.75, 2.5, 3.25, 4.0)


def test_clock_ticks_fall_on_round_utc_times() -> None:
    start = 1_700_000_100.0  # 2023-11-14 22:15:00 UTC
    ticks = clock_ticks(start, 6 * 3600)
    assert [label for _, label in ticks] == ["23:00", "00:00", "01:00", "02:00", "03:00", "04:00"]
    assert ticks[0][0] == 2700.0
    week = clock_ticks(start, 7 * 86400)
    assert all(len(label) == 5 and label[2] == "-" for _, label in week)  # MM-DD


def test_whole_ticks_for_counts() -> None:
    assert nice_ticks(0, 12, whole=True) == [0, 5, 10, 15]
    assert nice_ticks(0, 3, whole=True) == [0, 1, 2, 3]
