"""Line charts as inline SVG, drawn in Python: axes, ticks, units, one line per series.

No JavaScript and no fonts or files from elsewhere: the SVG is text in the
page. Values that are NaN (no rate for that tick) break a line; a point
with no neighbour is drawn as a dot so that it stays visible.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

__all__ = [
    "PALETTE",
    "Box",
    "Line",
    "box_chart",
    "clock_ticks",
    "human_duration",
    "line_chart",
    "nice_ticks",
    "scale_unit",
]

#: Colours that stay apart on screen and in print (Tableau 10).
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)

WIDTH = 560
HEIGHT = 250
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 14, 12, 42

_BINARY = (("B", 1.0), ("KiB", 1024.0), ("MiB", 1024.0**2), ("GiB", 1024.0**3), ("TiB", 1024.0**4))


@dataclass(frozen=True, slots=True)
class Line:
    """One series: x in seconds since the start, y in the chart's unit, a colour."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str
    dashed: bool = False


def nice_ticks(low: float, high: float, count: int = 5, *, whole: bool = False) -> list[float]:
    """About ``count`` round tick values (1, 2 or 5 times a power of ten) covering
    the range; ``whole``: whole numbers only (counts of things)."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(count, 1)
    if whole:
        raw = max(raw, 1.0)
    power = 10 ** math.floor(math.log10(raw))
    factors = (1, 2, 5, 10) if whole else (1, 2, 2.5, 5, 10)
    step = next(m * power for m in factors if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def time_ticks(span_s: float) -> list[float]:
    """Tick positions in seconds: round seconds, minutes or hours."""
    span_s = max(span_s, 1.0)
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600):
        if span_s / step <= 8:
            break
    else:
        step = 86400
    return [float(t) for t in range(0, int(span_s) + 1, step)]


def time_label(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss``."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def scale_unit(kind: str, peak: float) -> tuple[str, float]:
    """The unit to show and the divisor for values of a kind (``bytes``, ``bytes/s``, ...)."""
    if kind in ("bytes", "bytes/s"):
        suffix = "/s" if kind == "bytes/s" else ""
        name, divisor = _BINARY[0]
        for unit, size in _BINARY:
            if peak >= size:
                name, divisor = unit, size
        return name + suffix, divisor
    return kind, 1.0


def _number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.0f}" if value == int(value) else f"{value:.1f}"
    return f"{value:.3g}"


def line_chart(
    lines: Sequence[Line],
    *,
    span_s: float,
    unit: str,
    y_max: float | None = None,
    aria_label: str = "",
    marks: Sequence[tuple[float, str]] = (),
    clock_start_s: float | None = None,
    whole: bool = False,
) -> str:
    """An SVG line chart; ``y_max`` fixes the top of the y axis (100 for percent).

    ``marks`` are ``(x, colour)`` pairs drawn as short ticks under the plot:
    the rounds in which a host failed. With ``clock_start_s`` (the UTC time
    of x = 0, in seconds since 1970) the x axis shows UTC times of day, not
    the time since the start. ``whole``: the values are counts, ticked in whole numbers.
    """
    finite = [y for line in lines for y in line.ys if math.isfinite(y)]
    top = y_max if y_max is not None else (max(finite) if finite else 1.0)
    bottom = min(0.0, min(finite)) if finite else 0.0
    yticks = nice_ticks(bottom, top if top > bottom else bottom + 1.0, whole=whole)
    y_lo, y_hi = yticks[0], yticks[-1]
    span = max(span_s, 1e-9)
    plot_w = WIDTH - _LEFT - _RIGHT
    plot_h = HEIGHT - _TOP - _BOTTOM

    def px(x: float) -> float:
        return _LEFT + plot_w * min(max(x / span, 0.0), 1.0)

    def py(y: float) -> float:
        return _TOP + plot_h * (1 - (y - y_lo) / ((y_hi - y_lo) or 1.0))

    out = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(aria_label)}">',
        f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" class="plot"/>',
    ]
    for tick in yticks:
        y = py(tick)
        out.append(
            f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
        )
        out.append(
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">'
            f"{_number(tick)}</text>"
        )
    if clock_start_s is None:
        xticks = [(tick, time_label(tick)) for tick in time_ticks(span_s)]
        x_title = "time since start (m:ss)"
    else:
        xticks = clock_ticks(clock_start_s, span_s)
        x_title = "time (UTC)"
    for tick, label in xticks:
        x = px(tick)
        # A label at the right edge ends there rather than being cut off.
        anchor = "end" if x + 3.5 * len(label) > WIDTH else "middle"
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{_TOP + plot_h}" class="grid"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{_TOP + plot_h + 16}" class="tick" text-anchor="{anchor}">'
            f"{label}</text>"
        )
    out.append(
        f'<text x="{_LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" class="axis" text-anchor="middle">'
        f"{x_title}</text>"
    )
    out.append(
        f'<text x="14" y="{_TOP + plot_h / 2:.1f}" class="axis" text-anchor="middle" '
        f'transform="rotate(-90 14 {_TOP + plot_h / 2:.1f})">{escape(unit)}</text>'
    )
    for line in lines:
        out.extend(_series(line, px, py))
    out.append(
        f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{_TOP + plot_h}" y2="{_TOP + plot_h}" '
        'class="axisline"/>'
    )
    for x, color in marks:
        out.append(
            f'<path d="M{px(x):.1f} {_TOP + plot_h - 1} l-4 -8 h8 z" fill="{color}" '
            'stroke="#b42318" stroke-width="1" class="failed"/>'
        )
    out.append(
        f'<line x1="{_LEFT}" x2="{_LEFT}" y1="{_TOP}" y2="{_TOP + plot_h}" class="axisline"/>'
    )
    out.append("</svg>")
    return "\n".join(out)


def _decimated(run: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """At most two points per pixel column: the lowest and the highest, in time order.

    A long recording then draws as fast as a short one, and every spike stays.
    """
    if len(run) <= 2 * (WIDTH - _LEFT - _RIGHT):
        return run
    out: list[tuple[float, float]] = []
    column: list[tuple[float, float]] = []
    for point in run:
        if column and int(point[0]) != int(column[0][0]):
            out.extend(_extremes(column))
            column = []
        column.append(point)
    out.extend(_extremes(column))
    return out


def _extremes(column: list[tuple[float, float]]) -> list[tuple[float, float]]:
    low = min(column, key=lambda p: p[1])
    high = max(column, key=lambda p: p[1])
    if low is high:
        return [low]
    return [low, high] if column.index(low) < column.index(high) else [high, low]


def _series(line: Line, px: Callable[[float], float], py: Callable[[float], float]) -> list[str]:
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(line.xs, line.ys, strict=True):
        if math.isfinite(y) and math.isfinite(x):
            runs[-1].append((px(x), py(y)))
        elif runs[-1]:
            runs.append([])
    dash = ' stroke-dasharray="6 4"' if line.dashed else ""
    out = []
    for run in (_decimated(r) for r in runs):
        if len(run) == 1:
            ((x, y),) = run
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{line.color}"/>')
        elif run:
            points = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            out.append(
                f'<polyline points="{points}" fill="none" stroke="{line.color}" '
                f'stroke-width="2" stroke-linejoin="round"{dash}/>'
            )
    return out


#: Tick steps of a clock axis, in seconds.
_CLOCK_STEPS = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)


def clock_ticks(start_s: float, span_s: float) -> list[tuple[float, str]]:
    """Ticks at round UTC times: ``(seconds since start, label)``; ``HH:MM`` within
    a day, ``MM-DD HH:MM`` (fewer ticks, for the longer label) beyond."""
    span_s = max(span_s, 60.0)
    long = span_s > 86400
    most = 5 if long else 8
    step = next((s for s in _CLOCK_STEPS if span_s / s <= most), 2592000)
    first = math.ceil(start_s / step) * step
    form = "%m-%d %H:%M" if long and step < 86400 else ("%m-%d" if long else "%H:%M")
    out = []
    at = first
    while at <= start_s + span_s:
        label = dt.datetime.fromtimestamp(at, tz=dt.UTC).strftime(form)
        out.append((at - start_s, label))
        at += step
    return out


#: Ticks of a duration axis on a log scale.
_DURATION_TICKS = (
    (1.0, "1 s"),
    (10.0, "10 s"),
    (60.0, "1 min"),
    (600.0, "10 min"),
    (3600.0, "1 h"),
    (21600.0, "6 h"),
    (86400.0, "1 d"),
    (604800.0, "1 w"),
    (2592000.0, "30 d"),
    (31536000.0, "1 y"),
)


def human_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.2 h``, ``2.1 d``: a duration to read at a glance."""
    if not math.isfinite(seconds):
        return "–"
    size = abs(seconds)
    if size < 60:
        return f"{seconds:.0f} s"
    if size < 3600:
        return f"{seconds / 60:.0f} min"
    if size < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


@dataclass(frozen=True, slots=True)
class Box:
    """One row of a box chart: its label, its values (seconds) and a colour."""

    label: str
    values: Sequence[float]
    color: str


def box_stats(values: Sequence[float]) -> tuple[float, float, float, float, float]:
    """Minimum, first quartile, median, third quartile and maximum (linear
    interpolation between the closest ranks, as NumPy's default percentile)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        (only,) = ordered
        return only, only, only, only, only
    q1, median, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    return ordered[0], q1, median, q3, ordered[-1]


_BOX_LABEL_W, _BOX_ROW_H = 120, 28


def box_chart(boxes: Sequence[Box], *, aria_label: str = "") -> str:
    """Horizontal box plots of durations on a log scale, one row per box: the
    box spans the quartiles, a line marks the median, whiskers reach the
    minimum and maximum. Durations under a second are drawn at one second;
    each row's ``<title>`` (a tooltip) has its exact figures."""
    rows = [(b, box_stats(b.values)) for b in boxes if b.values]
    top_value = max((s[4] for _, s in rows), default=1.0)
    ticks = [t for t in _DURATION_TICKS if t[0] <= max(top_value, 1.0)]
    above = next((t for t in _DURATION_TICKS if t[0] >= top_value), _DURATION_TICKS[-1])
    if above not in ticks:
        ticks.append(above)
    if len(ticks) < 2:
        ticks.append(_DURATION_TICKS[1])
    lo, hi = math.log10(ticks[0][0]), math.log10(ticks[-1][0])
    left = _BOX_LABEL_W
    plot_w = WIDTH - left - _RIGHT
    plot_h = _BOX_ROW_H * max(len(rows), 1)
    height = _TOP + plot_h + _BOTTOM

    def px(seconds: float) -> float:
        where = (math.log10(max(seconds, 1.0)) - lo) / ((hi - lo) or 1.0)
        return left + plot_w * min(max(where, 0.0), 1.0)

    out = [
        f'<svg class="chart boxes" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" role="img" aria-label="{escape(aria_label)}">',
        f'<rect x="{left}" y="{_TOP}" width="{plot_w}" height="{plot_h}" class="plot"/>',
    ]
    for seconds, label in ticks:
        x = px(seconds)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{_TOP + plot_h}" class="grid"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{_TOP + plot_h + 16}" class="tick" text-anchor="middle">'
            f"{label}</text>"
        )
    out.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" class="axis" text-anchor="middle">'
        "wait (log scale)</text>"
    )
    for i, (box, (low, q1, median, q3, high)) in enumerate(rows):
        mid = _TOP + _BOX_ROW_H * i + _BOX_ROW_H / 2
        name = box.label if len(box.label) <= 17 else box.label[:16] + "…"
        summary = (
            f"{box.label}: {len(box.values)} jobs; min {human_duration(low)}, "
            f"25 % {human_duration(q1)}, median {human_duration(median)}, "
            f"75 % {human_duration(q3)}, max {human_duration(high)}"
        )
        x1, x3 = px(q1), px(q3)
        out += [
            f'<g class="box"><title>{escape(summary)}</title>',
            f'<text x="{left - 8}" y="{mid + 4:.1f}" class="tick" text-anchor="end">'
            f"{escape(name)}</text>",
            f'<line x1="{px(low):.1f}" x2="{px(high):.1f}" y1="{mid:.1f}" y2="{mid:.1f}" '
            f'stroke="{box.color}" stroke-width="1.5"/>',
            f'<line x1="{px(low):.1f}" x2="{px(low):.1f}" y1="{mid - 5:.1f}" y2="{mid + 5:.1f}" '
            f'stroke="{box.color}" stroke-width="1.5"/>',
            f'<line x1="{px(high):.1f}" x2="{px(high):.1f}" y1="{mid - 5:.1f}" '
            f'y2="{mid + 5:.1f}" stroke="{box.color}" stroke-width="1.5"/>',
            f'<rect x="{x1:.1f}" y="{mid - 9:.1f}" width="{max(x3 - x1, 2.0):.1f}" height="18" '
            f'fill="{box.color}" fill-opacity="0.35" stroke="{box.color}" stroke-width="1.5"/>',
            f'<line x1="{px(median):.1f}" x2="{px(median):.1f}" y1="{mid - 9:.1f}" '
            f'y2="{mid + 9:.1f}" stroke="#1d2433" stroke-width="2.5"/>',
            "</g>",
        ]
    out.append(
        f'<line x1="{left}" x2="{WIDTH - _RIGHT}" y1="{_TOP + plot_h}" y2="{_TOP + plot_h}" '
        'class="axisline"/>'
    )
    out.append(f'<line x1="{left}" x2="{left}" y1="{_TOP}" y2="{_TOP + plot_h}" class="axisline"/>')
    out.append("</svg>")
    return "\n".join(out)
