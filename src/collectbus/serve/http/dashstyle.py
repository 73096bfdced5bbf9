"""The dashboard's stylesheet and number formats."""

from __future__ import annotations

import datetime as dt
import math

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 margin:0;background:#f6f7f9;color:#1d2433}
header{background:#1d2433;color:#fff;padding:16px 28px}
header h1{margin:0 0 4px;font-size:22px;font-weight:600}
header p{margin:2px 0;color:#c9d1e0;font-size:14px}
header a{color:#fff}
main{padding:8px 28px 28px}
h2.section{font-size:17px;margin:20px 0 10px;font-weight:600;color:#344054}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(580px,1fr));gap:16px}
section.card{background:#fff;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08);
 border-radius:6px;overflow-x:auto}
section.card.wide{margin-bottom:16px}
section.card h3{font-size:15px;margin:0 0 6px;font-weight:600}
section.card h3 .since{font-weight:400;color:#5b6475;font-size:12px;margin-left:10px}
p.meta{font-size:13px;color:#5b6475;margin:0 0 8px}
table{border-collapse:collapse;font-size:13px;width:100%}
th,td{padding:5px 10px;border-bottom:1px solid #e4e7ec;text-align:left;white-space:nowrap}
th{background:#eef1f5;font-weight:600}
th.num,td.num{text-align:right;font-variant-numeric:tabular-nums}
td.bad{color:#b42318;font-weight:600}
td.err{color:#b42318;white-space:normal;max-width:420px}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;
 vertical-align:-1px}
.legend{font-size:13px;margin:4px 0 0;padding:0;list-style:none;display:flex;flex-wrap:wrap;
 gap:4px 16px}
.legend .stats{color:#5b6475}
.empty{color:#5b6475;font-size:14px;padding:8px 0}
svg .plot{fill:#fbfcfd}
svg .grid{stroke:#e4e7ec;stroke-width:1}
svg .axisline{stroke:#8a94a6;stroke-width:1}
svg .tick{font-size:11px;fill:#5b6475}
svg .axis{font-size:12px;fill:#1d2433}
"""


def utc(ns: int) -> str:
    if not ns:
        return "–"
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 1 else f"{value:.2f}"


_TIME_UNITS = (("s", 1e9), ("ms", 1e6), ("µs", 1e3), ("ns", 1.0))


def fmt_measure(measure: str, value: object) -> str:
    """A measure's figure for a table: durations of ``*_ns`` and ``*_seconds``
    measures in s, ms or µs; other numbers as they are."""
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "–"
    ns = value if measure.endswith("_ns") else value * 1e9 if measure.endswith("_seconds") else None
    if ns is None:
        return fmt_number(float(value))
    for unit, size in _TIME_UNITS:
        if abs(ns) >= size or unit == "ns":
            return f"{fmt_number(ns / size)} {unit}"
    return str(value)
