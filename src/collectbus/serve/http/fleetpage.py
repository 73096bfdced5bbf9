"""The fleet page at ``/fleet`` and its document at ``/api/hosts``: every host at a glance.

The rows of ``collectbus hosts --format json``
(:func:`collectbus.fleet.status.fleet_status`: one query per table whatever
the number of hosts), drawn as a grid of tiles, one per host, by name:

- a **silent** host's tile is dark grey, a **late** one's amber with a
  dashed border;
- a **reporting** host's tile is coloured by its CPU busy %: green below
  :data:`BUSY_PERCENT`, orange up to :data:`HOT_PERCENT`, red beyond;
  grey-blue when it has no CPU figure yet.

Each tile shows the host's state, CPU %, memory used %, load1 and the age of
its last sample, and links to the dashboard drawn for that host alone
(``/?host=NAME``). Every figure's element carries its exact value in
``data-value``. The state thresholds are the server's host collector
interval (``[collectors.host] interval`` or its tier's); ``?interval=`` and
``?silent_after=`` override them. The page has no script and fetches nothing;
host names are escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from urllib.parse import quote

from collectbus.clock import Clock
from collectbus.configfile import parse_duration
from collectbus.fleet.status import STATES, HostStatus, Thresholds, fleet_status
from collectbus.serve.http.api import ApiError
from collectbus.serve.http.dashstyle import CSS, utc
from collectbus.store.reader import StoreReader
from collectbus.timefmt import iso_utc

REFRESH_S = 30
#: CPU busy % at which a reporting host's tile turns orange, then red.
BUSY_PERCENT = 70.0
HOT_PERCENT = 90.0
_PARAMS = {"interval", "silent_after"}


def thresholds_of(query: Mapping[str, str], interval_s: float) -> Thresholds:
    """The state thresholds: the server's interval, or the query's."""
    unknown = set(query) - _PARAMS
    if unknown:
        raise ApiError(
            400, f"unknown parameter {sorted(unknown)[0]!r}; known: interval, silent_after"
        )
    values: dict[str, float | None] = {"interval": interval_s, "silent_after": None}
    for name in _PARAMS & set(query):
        try:
            values[name] = parse_duration(query[name])
        except ValueError as err:
            raise ApiError(400, f"{name}: {err}") from None
    return Thresholds(float(values["interval"] or interval_s), values["silent_after"])


def hosts_document(
    store: StoreReader, query: Mapping[str, str], *, interval_s: float, now_ns: int
) -> dict[str, object]:
    """What ``/api/hosts`` returns, and the page draws."""
    thresholds = thresholds_of(query, interval_s)
    found = fleet_status(store, thresholds, now_ns=now_ns)
    return {
        "now": iso_utc(now_ns),
        "now_ns": now_ns,
        "interval_s": thresholds.interval_s,
        "late_after_s": thresholds.late_s,
        "silent_after_s": thresholds.silent_s,
        "states": {state: sum(1 for h in found if h.state == state) for state in STATES},
        "hosts": [_row(h) for h in found],
    }


def _row(h: HostStatus) -> dict[str, object]:
    return {
        "host": h.host,
        "state": h.state,
        "last_sample": iso_utc(h.last_sample_ns),
        "last_sample_ns": h.last_sample_ns,
        "age_s": h.age_s,
        "cpu_percent": h.cpu_percent,
        "mem_used_percent": h.mem_used_percent,
        "load1": h.load1,
    }


def render_fleet_page(
    store: StoreReader, query: Mapping[str, str], *, interval_s: float, clock: Clock
) -> str:
    """The whole page; raises ApiError for a bad query, StoreError if the store is away."""
    now_ns = clock.time_ns()
    doc = hosts_document(store, query, interval_s=interval_s, now_ns=now_ns)
    hosts = doc["hosts"] if isinstance(doc["hosts"], list) else []
    states = doc["states"] if isinstance(doc["states"], dict) else {}
    counts = " · ".join(
        f'<span class="count {s}" data-state="{s}" data-value="{states.get(s, 0)}">'
        f"{states.get(s, 0)} {s}</span>"
        for s in STATES
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="refresh" content="{REFRESH_S}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>collectbus: fleet</title>",
        f"<style>{CSS}{_CSS}</style></head><body>",
        f'<header><h1>Fleet</h1><p><a href="/">dashboard</a> · {escape(store.url)} · '
        f"{utc(now_ns)} · {len(hosts)} host{'s' if len(hosts) != 1 else ''}: {counts}"
        f" · reloads every {REFRESH_S} s</p>"
        f"<p>late after {float(str(doc['late_after_s'])):g} s without a sample, silent after "
        f"{float(str(doc['silent_after_s'])):g} s · reporting tiles by CPU busy: green below "
        f"{BUSY_PERCENT:g} %, orange below {HOT_PERCENT:g} %, red beyond</p></header>",
        "<main>",
    ]
    if not hosts:
        parts.append(
            '<p class="empty" id="no-hosts">no host samples in this store; collect some with '
            "collectbus run, or agents and collectbus ingest</p>"
        )
    else:
        parts.append('<div class="fleet" id="fleet">')
        parts += [_tile(h) for h in hosts if isinstance(h, dict)]
        parts.append("</div>")
    parts.append(f'<p class="meta">drawn {utc(clock.time_ns())}</p>')
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def _tone(row: Mapping[str, object]) -> str:
    """The tile's class: its state, and a reporting host's load."""
    state = str(row["state"])
    if state != "reporting":
        return state
    cpu = row["cpu_percent"]
    if not isinstance(cpu, float | int):
        return "reporting nodata"
    if cpu >= HOT_PERCENT:
        return "reporting hot"
    return "reporting busy" if cpu >= BUSY_PERCENT else "reporting calm"


def _figure(name: str, label: str, value: object, unit: str) -> str:
    if not isinstance(value, float | int):
        return f'<span class="fig" data-figure="{name}">{label} –</span>'
    return (
        f'<span class="fig" data-figure="{name}" data-value="{value!r}">'
        f"{label} <b>{value:.1f}</b>{unit}</span>"
    )


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} d ago"


def _tile(row: Mapping[str, object]) -> str:
    name = str(row["host"])
    age = float(str(row["age_s"]))
    return (
        f'<a class="tile {_tone(row)}" href="/?host={quote(name, safe="")}"'
        f' data-host="{escape(name)}" data-state="{row["state"]}"'
        f' data-last-sample-ns="{row["last_sample_ns"]}" title="{escape(name)}: {row["state"]},'
        f' last sample {escape(str(row["last_sample"]))}">'
        f'<span class="name">{escape(name)}</span>'
        f'<span class="state">{row["state"]} · {_age(age)}</span>'
        + _figure("cpu_percent", "cpu", row["cpu_percent"], " %")
        + _figure("mem_used_percent", "mem", row["mem_used_percent"], " %")
        + _figure("load1", "load", row["load1"], "")
        + "</a>"
    )


_CSS = """
.fleet{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px;
 margin:16px 0}
a.tile{display:flex;flex-direction:column;gap:2px;padding:9px 11px;border-radius:6px;
 text-decoration:none;color:#fff;font-size:13px;box-shadow:0 1px 2px rgba(0,0,0,.12);
 border:2px solid transparent;font-variant-numeric:tabular-nums}
a.tile:hover{border-color:#1d2433}
a.tile .name{font-weight:700;font-size:15px;overflow-wrap:anywhere}
a.tile .state{font-size:12px;opacity:.92}
a.tile .fig b{font-weight:600}
a.tile.calm{background:#1a7f37}
a.tile.busy{background:#c4540a}
a.tile.hot{background:#b42318}
a.tile.nodata{background:#4e6a85}
a.tile.late{background:#f5c542;color:#1d2433;border:2px dashed #8a5a00}
a.tile.silent{background:#3b4150;color:#d0d5dd}
header .count{font-weight:600}
"""
