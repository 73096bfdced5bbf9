"""The latest samples of every host: a few rows per host of one wide table, in one query.

For ``collectbus hosts`` and the dashboard's fleet page, at a thousand hosts.
The wide tables' only index is ``time_ns`` (docs/architecture.md, "The store
layout"), so a per-host lookup would be a query per host, and a window over
the whole recent layer a scan of an hour of every host. Each host's
``hosts.last_seen_ns`` says where its latest rows are: the query reads the
union of the spans ``[last_seen_ns - reach_ns, last_seen_ns]`` (merged into a
few ranges of the ``time_ns`` index) and keeps, per host, its newest rows by
``ROW_NUMBER()``. A host whose span has no recent rows (compacted: silent for
longer than ``store.compact_after``) is looked up in its chunks, in one
query for all such hosts; NumPy is imported only then.

Rows come as :func:`collectbus.store.hostrows.read_host_rows` gives them:
``host`` (the name), ``time_ns``, the device key if any, the columns;
sorted by host, device and time; NULL as None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter

from sqlalchemy import Connection

from collectbus.store.bulk import RowTuple
from collectbus.store.hostlayout import HOST_CHUNKS, WIDE_KEYS, wide_layouts

#: At most this many ``time_ns`` ranges in one query: beyond, the closest are merged.
MAX_RANGES = 64

#: Per host id: (name, last_seen_ns).
Hosts = Mapping[int, tuple[str, int]]


def merged_ranges(spans: Sequence[tuple[int, int]], limit: int = MAX_RANGES) -> list[list[int]]:
    """The spans ``(low, high)`` merged where they overlap, then, past ``limit``
    ranges, across the smallest gaps: the ranges cover every span."""
    ranges: list[list[int]] = []
    for low, high in sorted(spans):
        if ranges and low <= ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], high)
        else:
            ranges.append([low, high])
    while len(ranges) > limit:
        gaps = sorted(range(len(ranges) - 1), key=lambda i: ranges[i + 1][0] - ranges[i][1])
        i = gaps[0]
        ranges[i][1] = ranges[i + 1][1]
        del ranges[i + 1]
    return ranges


def latest_rows(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    hosts: Hosts,
    *,
    reach_ns: int,
    per_host: int,
    where: tuple[str, object] | None = None,
) -> tuple[tuple[str, ...], list[RowTuple]]:
    """The column names and, per host of ``hosts`` (and device, for a keyed
    table without ``where``), its newest ``per_host`` rows of the wide table
    ``table`` within ``reach_ns`` of its ``last_seen_ns``.

    ``where`` is one more condition on a column, ``("cpu", -1)``: the rows it
    leaves out do not count among the newest.
    """
    key = WIDE_KEYS[table]
    chosen = (key, *(c for c in columns if c != key)) if key else tuple(columns)
    names = ("host", "time_ns", *chosen)
    if not hosts:
        return names, []
    spans = {i: (seen - reach_ns, seen) for i, (_name, seen) in hosts.items()}
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    quote = conn.dialect.identifier_preparer.quote
    ranges = merged_ranges(list(spans.values()))
    conditions = " OR ".join(f"(time_ns >= {mark} AND time_ns <= {mark})" for _ in ranges)
    params: list[object] = [bound for pair in ranges for bound in pair]
    extra = ""
    if where is not None:
        extra = f" AND {quote(where[0])} = {mark}"
        params.append(where[1])
    selected = ", ".join(quote(c) for c in ("host_id", "time_ns", *chosen))
    sql = (
        f"SELECT {selected} FROM (SELECT {selected}, ROW_NUMBER() OVER"
        f" (PARTITION BY host_id{', ' + quote(key) if key and not where else ''}"
        f" ORDER BY time_ns DESC) AS newest FROM {table}"
        f" WHERE ({conditions}){extra}) AS latest WHERE newest <= {mark}"
    )
    params.append(per_host)
    out: list[RowTuple] = []
    found: set[int] = set()
    for row in conn.exec_driver_sql(sql, tuple(params)).fetchall():
        host_id = int(row[0])
        low, high = spans.get(host_id, (1, 0))
        if low <= int(row[1]) <= high:  # rows of another host's span are not its newest
            out.append((hosts[host_id][0], *row[1:]))
            found.add(host_id)
    missing = {i: spans[i] for i in hosts if i not in found}
    if missing:
        out += _from_chunks(conn, table, chosen, hosts, missing, per_host, where)
    if key is None:
        out.sort(key=itemgetter(0, 1))
    else:
        out.sort(key=itemgetter(0, 2, 1))
    return names, out


def _from_chunks(
    conn: Connection,
    table: str,
    chosen: tuple[str, ...],
    hosts: Hosts,
    spans: Mapping[int, tuple[int, int]],
    per_host: int,
    where: tuple[str, object] | None,
) -> list[RowTuple]:
    """The newest rows of the hosts of ``spans`` that are in chunks, one query for all
    (per device too, for a keyed table without ``where``, as the recent rows)."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    ids = sorted(spans)
    sql = (
        f"SELECT host_id, encoding, payload, last_ns FROM {HOST_CHUNKS}"
        f" WHERE source = {mark} AND host_id IN ({', '.join(mark for _ in ids)})"
        f" AND last_ns >= {mark}"
    )
    low = min(low for low, _high in spans.values())
    chunks = conn.exec_driver_sql(sql, (table, *ids, low)).fetchall()
    if not chunks:
        return []
    from collectbus.store.hostcolumns import chunk_rows  # NumPy, for chunks only

    wide = wide_layouts()[table]
    kept = [0, *(1 + wide.columns.index(c) for c in chosen)]
    test = None if where is None else 1 + wide.columns.index(where[0])
    per_series = wide.key is not None and where is None  # the newest of each device
    series: dict[tuple[int, object], list[tuple[object, ...]]] = {}
    for host_id, encoding, payload, last_ns in chunks:
        span_low, span_high = spans[int(host_id)]
        if int(last_ns) < span_low:
            continue
        rows = chunk_rows(wide, int(host_id), int(encoding), payload, span_low, span_high + 1)
        if test is not None and where is not None:
            rows = [r for r in rows if r[test] == where[1]]
        for row in rows:
            picked = tuple(row[i] for i in kept)
            series.setdefault((int(host_id), picked[1] if per_series else None), []).append(picked)
    out: list[RowTuple] = []
    for (host_id, _device), rows in series.items():
        rows.sort(key=itemgetter(0), reverse=True)
        out += [(hosts[host_id][0], *row) for row in rows[:per_host]]
    return out
