"""The calls page at ``/calls`` and its document at ``/api/calls``: recorded calls, from the store.

Over the stored ``calls`` table in a window (``?since=1h&until=now``, as
``collectbus calls`` takes them), for programs that write their calls with
``CallRecorder.flush_to`` or a ``CallFlusher`` (the smartswitch plugin's
collector included):

- per handler: calls, errors, the error ratio, average, p50, p95, p99 and
  maximum time, the last call and its outcome, busiest handler first (ties by
  name). Every call of the window counts; the percentiles are exact
  (:func:`collectbus.calls.stats.stats_from_columns`, linear interpolation
  between the closest ranks as ``numpy.percentile``);
- the slowest calls (``?slowest=10``), slowest first;
- the latest errors (``?errors=10``), newest first.

A request reads the window's handler, time and error columns once (as
``collectbus calls --stats`` does), then the few rows listed. The page has no
script and fetches nothing; every text from the store is escaped, and long
messages are cut to :data:`MESSAGE_CHARS` on the page (whole in the JSON). Each
figure's cell carries its exact value in ``data-value`` (seconds, or a count),
beside the rounded text shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from collectbus.calls.capture import cut
from collectbus.calls.stats import CallStats, stats_from_columns
from collectbus.clock import NS_PER_S, Clock
from collectbus.serve.http.api import ApiError, query_window
from collectbus.serve.http.dashstyle import CSS, fmt_measure, utc
from collectbus.store import Store
from collectbus.timefmt import iso_utc

REFRESH_S = 30
DEFAULT_LIST = 10
MAX_LIST = 1000
#: The longest error message shown on the page.
MESSAGE_CHARS = 300
_PARAMS = {"since", "until", "slowest", "errors"}
_FIGURES = ("avg_s", "p50_s", "p95_s", "p99_s", "max_s")


def _count(query: Mapping[str, str], name: str) -> int:
    text = query.get(name, str(DEFAULT_LIST))
    try:
        n = int(text)
    except ValueError:
        raise ApiError(400, f"{name} must be a whole number, got {text!r}") from None
    if not 0 <= n <= MAX_LIST:
        raise ApiError(400, f"{name} must be between 0 and {MAX_LIST}, got {n}")
    return n


def calls_document(store: Store, query: Mapping[str, str]) -> dict[str, object]:
    """What ``/api/calls`` returns, and the page shows."""
    since_ns, until_ns = query_window(query, _PARAMS)
    slowest, errors = _count(query, "slowest"), _count(query, "errors")
    window = {"since_ns": since_ns, "until_ns": until_ns}
    timings = store.call_timings(**window)
    stats = stats_from_columns(
        timings["handler"], timings["started_ns"], timings["elapsed_ns"], timings["error_type"]
    )
    stats.sort(key=lambda s: (-s.calls, s.handler))
    slow = store.calls(**window, slowest=slowest) if slowest and stats else []
    failed = store.calls(**window, errors=True, limit=errors) if errors and stats else []
    return {
        "since": iso_utc(since_ns),
        "until": iso_utc(until_ns),
        **window,
        "calls": sum(s.calls for s in stats),
        "errors": sum(s.errors for s in stats),
        "handlers": [_handler_row(s) for s in stats],
        "slowest": [_call_row(r) for r in slow],
        "latest_errors": [_call_row(r) for r in reversed(failed)],
    }


def _handler_row(s: CallStats) -> dict[str, object]:
    return {
        "handler": s.handler,
        "calls": s.calls,
        "errors": s.errors,
        "error_ratio": s.errors / s.calls,
        "total_s": s.total_s,
        "avg_s": s.avg_s,
        "min_s": s.min_s,
        "p50_s": s.p50_s,
        "p95_s": s.p95_s,
        "p99_s": s.p99_s,
        "max_s": s.max_s,
        "last_started": None if s.last_started_ns is None else iso_utc(s.last_started_ns),
        "last_started_ns": s.last_started_ns,
        "last_error": s.last_error,
    }


def _call_row(row: Mapping[str, object]) -> dict[str, object]:
    started, elapsed = int(str(row["started_ns"])), int(str(row["elapsed_ns"]))
    return {
        "time": iso_utc(started),
        "started_ns": started,
        "elapsed_ns": elapsed,
        "elapsed_s": elapsed / NS_PER_S,
        "handler": row["handler"],
        "qualname": row["qualname"],
        "host": row["host"],
        "pid": row["pid"],
        "error_type": row["error_type"],
        "error_message": row["error_message"],
    }


# ---------------------------------------------------------------- the page


def render_calls_page(store: Store, query: Mapping[str, str], *, clock: Clock) -> str:
    """The whole page; raises ApiError for a bad query, StoreError if the store is away."""
    doc = calls_document(store, query)
    handlers = _list(doc["handlers"])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="refresh" content="{REFRESH_S}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>collectbus: calls</title>",
        f"<style>{CSS}{_CSS}</style></head><body>",
        f'<header><h1>Recorded calls</h1><p><a href="/">dashboard</a> · {escape(store.url)} · '
        f"{utc(int(str(doc['since_ns'])))} to {utc(int(str(doc['until_ns'])))} · "
        f"{int(str(doc['calls'])):,} calls, {int(str(doc['errors'])):,} errors in "
        f"{len(handlers)} handler{'s' if len(handlers) != 1 else ''}"
        f" · reloads every {REFRESH_S} s</p></header>",
        "<main>",
    ]
    if not handlers:
        parts.append(
            '<p class="empty" id="no-calls">no recorded calls in this window; programs write '
            "theirs with CallRecorder.flush_to(store) or a CallFlusher</p>"
        )
    else:
        parts.append('<h2 class="section">Handlers, busiest first</h2>')
        parts.append(_handlers_table(handlers))
        parts.append(
            _calls_table("Latest errors", "errors", _list(doc["latest_errors"]), errors=True)
        )
        parts.append(_calls_table("Slowest calls", "slowest", _list(doc["slowest"]), errors=False))
    parts.append(f'<p class="meta">drawn {utc(clock.time_ns())}</p>')
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


_CSS = """
td.msg{white-space:normal;min-width:360px;overflow-wrap:anywhere;color:#b42318}
td.name{white-space:normal;overflow-wrap:anywhere;max-width:360px}
"""


def _when(ns: object) -> str:
    """A call's start in UTC to the millisecond: calls come many a second."""
    if not isinstance(ns, int):
        return "–"
    return iso_utc(ns).replace("T", " ").replace("Z", " UTC")


def _list(value: object) -> list[dict[str, object]]:
    return value if isinstance(value, list) else []


def _seconds(value: object) -> str:
    if not isinstance(value, int | float):
        return '<td class="num">–</td>'
    return f'<td class="num" data-value="{value!r}">{fmt_measure("t_seconds", value)}</td>'


def _handlers_table(rows: list[dict[str, object]]) -> str:
    head = (
        "<tr><th>handler</th><th class='num'>calls</th><th class='num'>errors</th>"
        "<th class='num'>error %</th>"
        + "".join(f"<th class='num'>{f.removesuffix('_s')}</th>" for f in _FIGURES)
        + "<th>last call</th><th>its outcome</th></tr>"
    )
    body = []
    for r in rows:
        calls, errors = int(str(r["calls"])), int(str(r["errors"]))
        ratio = float(str(r["error_ratio"]))
        cells = (
            f'<td class="name">{escape(str(r["handler"]))}</td>'
            f'<td class="num" data-value="{calls}">{calls:,}</td>'
            f'<td class="num{" bad" if errors else ""}" data-value="{errors}">{errors:,}</td>'
            f'<td class="num" data-value="{ratio!r}">{100 * ratio:.1f}</td>'
            + "".join(_seconds(r[f]) for f in _FIGURES)
            + f"<td>{_when(r['last_started_ns'])}</td>"
            + (
                f'<td class="msg">{escape(str(r["last_error"]))}</td>'
                if r["last_error"]
                else "<td>ok</td>"
            )
        )
        body.append(f'<tr class="handler">{cells}</tr>')
    return (
        '<section class="card wide"><table id="handlers">'
        + head
        + "".join(body)
        + "</table></section>"
    )


def _calls_table(title: str, ident: str, rows: list[dict[str, object]], *, errors: bool) -> str:
    if not rows:
        return f'<section class="card wide"><h3>{title}</h3><p class="empty">none</p></section>'
    last = "<th>error</th>" if errors else "<th>status</th>"
    head = f"<tr><th>time</th><th>handler</th><th class='num'>took</th><th>where</th>{last}</tr>"
    body = []
    for r in rows:
        kind = r["error_type"]
        if errors:
            message = cut(str(r["error_message"] or ""), MESSAGE_CHARS)
            status = f'<td class="msg">{escape(str(kind))}: {escape(message)}</td>'
        else:
            status = f"<td{' class=msg' if kind else ''}>{escape(str(kind or 'ok'))}</td>"
        body.append(
            f"<tr><td>{_when(r['started_ns'])}</td>"
            f'<td class="name">{escape(str(r["handler"]))}</td>'
            + _seconds(r["elapsed_s"])
            + f"<td>{escape(str(r['host']))}:{escape(str(r['pid']))}</td>{status}</tr>"
        )
    return (
        f'<section class="card wide"><h3>{title}</h3><table id="{ident}">'
        + head
        + "".join(body)
        + "</table></section>"
    )
