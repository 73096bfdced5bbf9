"""One self-contained HTML page of host metrics and batch jobs over time: no CDN,
no network, no script.

:func:`render` takes plain data (:class:`ReportData`: per metric, per host,
seconds since the start and values) and returns the page: a title, what was
recorded (time range, hosts, interval, command and exit code), a table per
host (samples, failed rounds with the last error, dropped samples, mean and
peak CPU), then one chart per metric with one line per host, each with its
axes, unit and legend. With :class:`JobCharts`, a "Batch jobs" section
follows: the jobs queued per queue over time (one line per queue) and the
distribution of the queued wait per queue (box plots on a log scale). The
charts are inline SVG (:mod:`collectbus.report.svg`).
"""

from __future__ import annotations

import datetime as dt
import math
import shlex
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape

from collectbus.report.svg import (
    PALETTE,
    Box,
    Line,
    box_chart,
    human_duration,
    line_chart,
    scale_unit,
)

__all__ = ["CHARTS", "Chart", "HostSummary", "JobCharts", "ReportData", "render"]

#: Lines of the queue-depth chart; past them, the smallest queues are summed.
MAX_QUEUE_LINES = len(PALETTE)
#: Rows of the wait chart; past them, the queues with the fewest jobs are left out (and said).
MAX_WAIT_ROWS = 20


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart: the rate column it shows, its title and the kind of its values."""

    column: str
    title: str
    kind: str  # "%", "bytes", "bytes/s" or a plain unit
    y_max: float | None = None


#: The chart on which failed rounds are marked.
_MARKED = "cpu_percent"

#: The charts of a report, in page order.
CHARTS = (
    Chart("cpu_percent", "CPU busy", "%", 100.0),
    Chart("cpu_iowait_percent", "CPU waiting for I/O", "%", None),
    Chart("mem_used_bytes", "Memory used (total − available)", "bytes"),
    Chart("load1", "Load average, 1 minute", "runnable tasks"),
    Chart("disk_read_bytes_per_s", "Disk read", "bytes/s"),
    Chart("disk_write_bytes_per_s", "Disk write", "bytes/s"),
    Chart("net_rx_bytes_per_s", "Network receive (all but lo)", "bytes/s"),
    Chart("net_tx_bytes_per_s", "Network transmit (all but lo)", "bytes/s"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class HostSummary:
    """The per-host row of the page's table."""

    samples: int = 0
    failed_rounds: int = 0
    last_error: str | None = None
    dropped: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class JobCharts:
    """The batch-job section: what was queued, and how long jobs waited, per queue."""

    start_ns: int
    end_ns: int
    #: Per queue, ``(seconds since start_ns, jobs queued)``.
    queued: Mapping[str, tuple[Sequence[float], Sequence[float]]]
    #: Per queue, the queued waits (start - submit, seconds) of the jobs that started.
    waits: Mapping[str, Sequence[float]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportData:
    """What a page shows; every series is ``(seconds since start, values)``."""

    title: str
    source: str
    start_ns: int
    end_ns: int
    hosts: tuple[str, ...]
    series: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]]
    summaries: Mapping[str, HostSummary] = field(default_factory=dict)
    #: Per host, the failed rounds (seconds since the start), marked on the CPU chart.
    failures: Mapping[str, Sequence[float]] = field(default_factory=dict)
    interval_s: float | None = None
    command: tuple[str, ...] | None = None
    exit_code: int | None = None
    jobs: JobCharts | None = None


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 margin:0;background:#f6f7f9;color:#1d2433}
header{background:#1d2433;color:#fff;padding:18px 28px}
header h1{margin:0 0 6px;font-size:22px;font-weight:600}
header p{margin:2px 0;color:#c9d1e0;font-size:14px}
main{padding:18px 28px}
table{border-collapse:collapse;background:#fff;font-size:14px;margin-bottom:18px;
 box-shadow:0 1px 2px rgba(0,0,0,.08)}
th,td{padding:6px 12px;border-bottom:1px solid #e4e7ec;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:#eef1f5;font-weight:600}
td.err{color:#b42318;max-width:520px}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;
 vertical-align:-1px}
.grid-2{display:grid;grid-template-columns:repeat(auto-fill,minmax(580px,1fr));gap:16px}
section.card{background:#fff;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08);
 border-radius:6px}
section.card h2{font-size:15px;margin:0 0 4px;font-weight:600}
.legend{font-size:13px;margin:4px 0 0;padding:0;list-style:none;display:flex;flex-wrap:wrap;
 gap:4px 16px}
.legend .stats{color:#5b6475}
.empty{color:#5b6475;font-size:13px;padding:20px 0}
.legend .failed{color:#b42318}
svg .plot{fill:#fbfcfd}
svg .grid{stroke:#e4e7ec;stroke-width:1}
svg .axisline{stroke:#8a94a6;stroke-width:1}
svg .tick{font-size:11px;fill:#5b6475}
svg .axis{font-size:12px;fill:#1d2433}
h2.section{font-size:18px;font-weight:600;margin:22px 0 10px}
.note{color:#5b6475;font-size:13px;margin:4px 0 0}
"""


def render(data: ReportData) -> str:
    """The whole page as a string."""
    colors = {host: PALETTE[i % len(PALETTE)] for i, host in enumerate(data.hosts)}
    span_s = max((data.end_ns - data.start_ns) / 1e9, 1.0)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(data.title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        _header(data, span_s),
        "<main>",
    ]
    if data.hosts:
        parts += [_host_table(data, colors), '<div class="grid-2">']
        parts += [_chart_card(chart, data, colors, span_s) for chart in CHARTS]
        parts.append("</div>")
    if data.jobs is not None:
        parts.append(_jobs_section(data.jobs))
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def _utc(ns: int) -> str:
    when = dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{seconds:.1f} s"


def _header(data: ReportData, span_s: float) -> str:
    lines = [
        f"<h1>{escape(data.title)}</h1>",
        f"<p>{_utc(data.start_ns)} → {_utc(data.end_ns)} ({_duration(span_s)})"
        + (f" · one sample every {data.interval_s:g} s" if data.interval_s else "")
        + (f" · {len(data.hosts)} host{'s' if len(data.hosts) != 1 else ''}" if data.hosts else "")
        + "</p>",
    ]
    if data.command is not None:
        status = "" if data.exit_code is None else f" → exit code {data.exit_code}"
        lines.append(f"<p>command: <code>{escape(shlex.join(data.command))}</code>{status}</p>")
    lines.append(f"<p>from {escape(data.source)}</p>")
    return "<header>" + "\n".join(lines) + "</header>"


def _stats(values: Sequence[float]) -> tuple[float, float] | None:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return None
    return sum(finite) / len(finite), max(finite)


def _host_table(data: ReportData, colors: Mapping[str, str]) -> str:
    rows = [
        "<table><tr><th>host</th><th>samples</th><th>failed rounds</th><th>dropped</th>"
        "<th>CPU mean</th><th>CPU peak</th><th>last error</th></tr>"
    ]
    cpu = data.series.get("cpu_percent", {})
    for host in data.hosts:
        summary = data.summaries.get(host, HostSummary())
        stats = _stats(cpu.get(host, ((), ()))[1])
        mean, peak = (f"{stats[0]:.1f} %", f"{stats[1]:.1f} %") if stats else ("–", "–")
        rows.append(
            f'<tr><td><span class="swatch" style="background:{colors[host]}"></span>'
            f"{escape(host)}</td>"
            f'<td class="num">{summary.samples}</td>'
            f'<td class="num">{summary.failed_rounds}</td>'
            f'<td class="num">{summary.dropped}</td>'
            f'<td class="num">{mean}</td><td class="num">{peak}</td>'
            f'<td class="err">{escape(summary.last_error or "")}</td></tr>'
        )
    rows.append("</table>")
    return "\n".join(rows)


def _chart_card(chart: Chart, data: ReportData, colors: Mapping[str, str], span_s: float) -> str:
    by_host = data.series.get(chart.column, {})
    finite_peak = max(
        (v for xs_ys in by_host.values() for v in xs_ys[1] if math.isfinite(v)), default=0.0
    )
    unit, divisor = scale_unit(chart.kind, finite_peak)
    lines = []
    legend = []
    for host in data.hosts:
        xs, ys = by_host.get(host, ((), ()))
        scaled = [v / divisor for v in ys]
        lines.append(Line(host, list(xs), scaled, colors[host]))
        stats = _stats(scaled)
        text = (
            f"mean {_fmt(stats[0])}, peak {_fmt(stats[1])} {escape(unit)}" if stats else "no data"
        )
        failed = len(data.failures.get(host, ())) if chart.column == _MARKED else 0
        if failed:
            text += f' · <span class="failed">{failed} failed round{"s" if failed != 1 else ""} ▼</span>'

        legend.append(
            f'<li><span class="swatch" style="background:{colors[host]}"></span>'
            f'{escape(host)} <span class="stats">{text}</span></li>'
        )
    has_data = any(math.isfinite(v) for line in lines for v in line.ys)
    marks = (
        [(x, colors[host]) for host in data.hosts for x in data.failures.get(host, ())]
        if chart.column == _MARKED
        else []
    )
    body = (
        line_chart(
            lines,
            span_s=span_s,
            unit=unit,
            y_max=chart.y_max,
            aria_label=f"{chart.title} per host over time, in {unit}",
            marks=marks,
        )
        if has_data
        else '<div class="empty">no data for this chart (it needs two samples of a host)</div>'
    )
    return (
        f'<section class="card"><h2>{escape(chart.title)} ({escape(unit)})</h2>\n{body}\n'
        f'<ul class="legend">{"".join(legend)}</ul></section>'
    )


def _fmt(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 1 else f"{value:.2f}"


def _queue_lines(
    queued: Mapping[str, tuple[Sequence[float], Sequence[float]]],
) -> list[tuple[str, Sequence[float], list[float]]]:
    """The queues that had jobs queued, most queued job-time first; past
    :data:`MAX_QUEUE_LINES`, the rest summed into one line."""
    busy = sorted(
        ((q, xs, [float(v) for v in ys]) for q, (xs, ys) in queued.items() if any(ys)),
        key=lambda item: (-sum(item[2]), item[0]),
    )
    if len(busy) <= MAX_QUEUE_LINES:
        return busy
    kept, rest = busy[: MAX_QUEUE_LINES - 1], busy[MAX_QUEUE_LINES - 1 :]
    summed = [sum(values) for values in zip(*(ys for _, _, ys in rest), strict=True)]
    return [*kept, (f"{len(rest)} other queues", rest[0][1], summed)]


def _jobs_section(jobs: JobCharts) -> str:
    span_s = max((jobs.end_ns - jobs.start_ns) / 1e9, 1.0)
    lines = _queue_lines(jobs.queued)
    names = sorted({q for q, _, _ in lines} | set(jobs.waits))
    colors = {q: PALETTE[i % len(PALETTE)] for i, q in enumerate(names)}
    legend = []
    for queue, _, ys in lines:
        mean, peak = sum(ys) / len(ys), max(ys)
        legend.append(
            f'<li><span class="swatch" style="background:{colors[queue]}"></span>'
            f'{escape(queue)} <span class="stats">peak {peak:,.0f}, mean {_fmt(mean)}</span></li>'
        )
    depth = (
        line_chart(
            [Line(q, xs, ys, colors[q]) for q, xs, ys in lines],
            span_s=span_s,
            unit="jobs queued",
            aria_label="Jobs queued per queue over time",
            clock_start_s=jobs.start_ns / 1e9,
            whole=True,
        )
        if lines
        else '<div class="empty">no job was queued in this window</div>'
    )
    by_size = sorted(jobs.waits.items(), key=lambda item: (-len(item[1]), item[0]))
    shown = [(q, w) for q, w in by_size if w][:MAX_WAIT_ROWS]
    left_out = sum(1 for _, w in by_size if w) - len(shown)
    waits = (
        box_chart(
            [Box(q, w, colors[q]) for q, w in sorted(shown)],
            aria_label="Distribution of the queued wait per queue",
        )
        if shown
        else '<div class="empty">no job started in this window</div>'
    )
    wait_legend = "".join(
        f'<li><span class="swatch" style="background:{colors[q]}"></span>{escape(q)} '
        f'<span class="stats">{len(w):,} jobs, median {human_duration(statistics.median(w))}</span></li>'
        for q, w in sorted(shown)
    )
    more = f" {left_out} queues with fewer jobs are not shown." if left_out else ""
    return (
        '<h2 class="section">Batch jobs</h2>\n<div class="grid-2">\n'
        '<section class="card"><h2>Jobs queued per queue (jobs)</h2>\n'
        f'{depth}\n<ul class="legend">{"".join(legend)}</ul>\n'
        '<p class="note">From the recorded state changes: a job counts while its'
        " state is queued (not held, not running).</p></section>\n"
        '<section class="card"><h2>Queued wait per queue (start − submit)</h2>\n'
        f'{waits}\n<ul class="legend">{wait_legend}</ul>\n'
        '<p class="note">Jobs that started: the box spans the middle half of the waits,'
        f" the dark line is the median, the whiskers reach the shortest and longest.{more}"
        "</p></section>\n</div>"
    )
