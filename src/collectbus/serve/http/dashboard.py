"""The dashboard at ``/``: one page, drawn on the server, nothing fetched from elsewhere.

It shows, from the same documents as the JSON API:

- per host, CPU busy %, memory used, disk read and write and network receive
  and transmit over the last hour (or since the first sample in it; the
  x axis counts from there), one line per host (the rows of
  ``/api/hosts/<host>/rates``), as inline SVG from
  :mod:`collectbus.report.svg`;
- the aggregates as tables (``/api/aggregates``);
- a link to the recorded calls (``/calls``, :mod:`collectbus.serve.http.callspage`);
- the health of collection (``collection_log`` over the last hour, per
  source: collections by status, the latest, the last error), of the bus when
  the server collects, and of the aggregates' background updates.

The page has no script: a ``<meta http-equiv="refresh">`` reloads it every
:data:`REFRESH_S` seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from sqlalchemy import func, select

from collectbus.clock import NS_PER_S, Clock
from collectbus.pipeline import Pipeline
from collectbus.report.svg import PALETTE, Line, line_chart, scale_unit
from collectbus.serve.aggupdate import AggregateUpdater
from collectbus.serve.http.aggdoc import aggregates_document
from collectbus.serve.http.api import host_rates
from collectbus.serve.http.dashstyle import CSS, fmt_measure, fmt_number, utc
from collectbus.store import Store
from collectbus.store.schema import collection_log

REFRESH_S = 30
WINDOW_S = 3600

# (rate column, title, kind)
CHARTS = (
    ("cpu_percent", "CPU busy", "%"),
    ("mem_used_bytes", "Memory used", "bytes"),
    ("disk_read_bytes_per_s", "Disk read", "bytes/s"),
    ("disk_write_bytes_per_s", "Disk write", "bytes/s"),
    ("net_rx_bytes_per_s", "Network receive", "bytes/s"),
    ("net_tx_bytes_per_s", "Network transmit", "bytes/s"),
)


def render_dashboard(
    store: Store,
    *,
    clock: Clock,
    pipeline: Pipeline | None = None,
    updater: AggregateUpdater | None = None,
    host: str | None = None,
) -> str:
    """The whole page; raises :class:`~collectbus.errors.StoreError` if the store is away.
    With ``host``, the charts are that host's alone (the fleet page's tiles link here)."""
    from collectbus.aggregate import read_aggregates

    now_ns = clock.time_ns()
    hosts = [str(h["name"]) for h in store.hosts() if host is None or h["name"] == host]
    series = {h: host_rates(store, h, {"since": "1h"}) for h in hosts}
    series = {h: rows for h, rows in series.items() if rows}
    # The charts span the last hour, or less if the samples began later.
    first = min((int(str(rows[0]["time_ns"])) for rows in series.values()), default=now_ns)
    start_ns = max(now_ns - WINDOW_S * NS_PER_S, first)
    colors = {h: PALETTE[i % len(PALETTE)] for i, h in enumerate(sorted(series))}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="refresh" content="{REFRESH_S}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>collectbus</title>",
        f"<style>{CSS}</style></head><body>",
        f"<header><h1>collectbus</h1><p>{escape(store.url)} · {utc(now_ns)} · "
        f"{len(series)} host{'s' if len(series) != 1 else ''} reporting in the last hour"
        f' · reloads every {REFRESH_S} s · <a href="/fleet">fleet</a>'
        ' · <a href="/calls">recorded calls</a></p></header>',
        "<main>",
        '<h2 class="section">Hosts, last hour</h2>'
        if host is None
        else f'<h2 class="section" id="host">{escape(host)}, last hour'
        ' · <a href="/">every host</a></h2>',
    ]
    if series:
        parts.append('<div class="grid">')
        for column, title, kind in CHARTS:
            parts.append(_chart(column, title, kind, series, colors, start_ns, now_ns))
        parts.append("</div>")
    else:
        parts.append('<p class="empty">no host samples in the last hour</p>')
    parts.append('<h2 class="section">Aggregates</h2>')
    parts.append(_aggregates(aggregates_document(read_aggregates(store))))
    parts.append('<h2 class="section">Health</h2><div class="grid">')
    parts.append(_collections(store, start_ns))
    parts.append(_updates(updater))
    parts.append(_bus(pipeline))
    parts += ["</div>", "</main></body></html>"]
    return "\n".join(p for p in parts if p) + "\n"


def _chart(
    column: str,
    title: str,
    kind: str,
    series: dict[str, list[dict[str, object]]],
    colors: dict[str, str],
    start_ns: int,
    now_ns: int,
) -> str:
    raw: dict[str, tuple[list[float], list[float]]] = {}
    for host, rows in series.items():
        xs = [(int(str(r["time_ns"])) - start_ns) / NS_PER_S for r in rows]
        ys = [_float(r.get(column)) for r in rows]
        raw[host] = (xs, ys)
    peak = max((v for _, ys in raw.values() for v in ys if math.isfinite(v)), default=0.0)
    unit, divisor = scale_unit(kind, peak)
    lines = []
    legend = []
    for host, (xs, ys) in sorted(raw.items()):
        scaled = [v / divisor for v in ys]
        lines.append(Line(host, xs, scaled, colors[host]))
        finite = [v for v in scaled if math.isfinite(v)]
        stats = (
            f"now {fmt_number(finite[-1])}, peak {fmt_number(max(finite))} {escape(unit)}"
            if finite
            else "no data"
        )
        legend.append(
            f'<li><span class="swatch" style="background:{colors[host]}"></span>'
            f'{escape(host)} <span class="stats">{stats}</span></li>'
        )
    if any(math.isfinite(v) for line in lines for v in line.ys):
        body = line_chart(
            lines,
            span_s=max((now_ns - start_ns) / NS_PER_S, 1.0),
            unit=unit,
            y_max=100.0 if kind == "%" else None,
            aria_label=f"{title} per host over the last hour, in {unit}",
        )
    else:
        body = '<div class="empty">no data yet (a rate needs two samples of a host)</div>'
    return (
        f'<section class="card"><h3>{escape(title)} ({escape(unit)})'
        f'<span class="since">since {utc(start_ns)}</span></h3>{body}'
        f'<ul class="legend">{"".join(legend)}</ul></section>'
    )


def _float(value: object) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def _aggregates(doc: list[dict[str, object]]) -> str:
    if not doc:
        return '<p class="empty">no aggregates in the store ([[aggregates]] in the config)</p>'
    out = []
    for agg in doc:
        keys = [str(k) for k in _list(agg["keys"])]
        measures = [str(m) for m in _list(agg["measures"])]
        head = "".join(f"<th>{escape(k)}</th>" for k in keys) + "<th>rows</th><th>errors</th>"
        for m in measures:
            head += "".join(
                f'<th class="num">{escape(m)} {s}</th>'
                for s in ("mean", "p50", "p95", "p99", "max")
            )
        rows = []
        groups = agg["groups"]
        assert isinstance(groups, list)
        for g in groups:
            cells = "".join(f"<td>{escape(str(v))}</td>" for v in dict(g["keys"]).values())
            errors = int(g["errors"])
            cells += f'<td class="num">{int(g["count"]):,}</td>'
            cells += f'<td class="num{" bad" if errors else ""}">{errors:,}</td>'
            for m in measures:
                mv = dict(g["measures"]).get(m, {})
                for s in ("mean", "p50", "p95", "p99", "max"):
                    cells += f'<td class="num">{fmt_measure(m, mv.get(s))}</td>'
            rows.append(f"<tr>{cells}</tr>")
        out.append(
            f'<section class="card wide"><h3>{escape(str(agg["name"]))}</h3>'
            f'<p class="meta">{escape(str(agg["source"]))} · up to id {agg["last_id"]} · '
            f"updated {utc(int(str(agg['updated_ns'])))} · {len(groups)} groups · "
            f"{agg['mismatches']} repaired mismatches</p>"
            f"<table><tr>{head}</tr>{''.join(rows)}</table></section>"
        )
    return "\n".join(out)


def _list(value: object) -> Sequence[object]:
    return value if isinstance(value, list) else []


def _collections(store: Store, since_ns: int) -> str:
    c = collection_log.c
    query = (
        select(c.source, c.status, func.count(), func.max(c.started_ns + c.duration_ns))
        .where(c.started_ns >= since_ns)
        .group_by(c.source, c.status)
        .order_by(c.source, c.status)
    )
    errors = (
        select(c.source, c.error)
        .where(c.started_ns >= since_ns, c.error.is_not(None))
        .order_by(c.started_ns.desc(), c.id.desc())
    )
    with store.engine.connect() as conn:
        counts = conn.execute(query).all()
        last_errors: dict[str, str] = {}
        for source, error in conn.execute(errors.limit(50)):
            last_errors.setdefault(str(source), str(error))
    per: dict[str, dict[str, int]] = {}
    latest: dict[str, int] = {}
    for source, status, n, end in counts:
        per.setdefault(str(source), {})[str(status)] = int(n)
        latest[str(source)] = max(latest.get(str(source), 0), int(end or 0))
    rows = []
    for source, by_status in sorted(per.items()):
        ok = by_status.get("ok", 0)
        bad = sum(n for s, n in by_status.items() if s != "ok")
        rows.append(
            f"<tr><td>{escape(source)}</td><td class='num'>{ok:,}</td>"
            f"<td class='num{' bad' if bad else ''}'>{bad:,}</td><td>{utc(latest[source])}</td>"
            f"<td class='err'>{escape(last_errors.get(source, ''))}</td></tr>"
        )
    table = (
        "<table><tr><th>source</th><th>ok</th><th>not ok</th><th>latest</th>"
        "<th>last error</th></tr>" + "".join(rows) + "</table>"
        if rows
        else '<p class="empty">no collections in the last hour</p>'
    )
    return f'<section class="card"><h3>Collections, last hour</h3>{table}</section>'


def _updates(updater: AggregateUpdater | None) -> str:
    if updater is None:
        return ""
    rows = [
        f"<tr><td>{escape(name)}</td><td class='num'>{st.runs:,}</td>"
        f"<td class='num{' bad' if st.errors else ''}'>{st.errors:,}</td>"
        f"<td class='err'>{escape(st.last_error or '')}</td></tr>"
        for name, st in sorted(updater.status().items())
    ]
    return (
        f'<section class="card"><h3>Aggregate updates, every {updater.interval_s:g} s</h3>'
        "<table><tr><th>aggregate</th><th>runs</th><th>failed</th><th>last error</th></tr>"
        + "".join(rows)
        + "</table></section>"
    )


def _bus(pipeline: Pipeline | None) -> str:
    if pipeline is None:
        return ""
    health = pipeline.bus.health()
    rows = [
        f"<tr><td>{escape(col.name)}</td><td class='num'>{col.runs:,}</td>"
        f"<td class='num{' bad' if col.errors else ''}'>{col.errors:,}</td>"
        f"<td class='num'>{col.skips:,}</td>"
        f"<td class='err'>{escape(str(col.last_error or ''))}</td></tr>"
        for col in health.collectors
    ]
    return (
        f'<section class="card"><h3>Bus ({escape(health.state)})</h3>'
        "<table><tr><th>collector</th><th>runs</th><th>errors</th><th>skips</th>"
        "<th>last error</th></tr>" + "".join(rows) + "</table></section>"
    )
