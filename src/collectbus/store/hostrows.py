"""Host samples read as Python tuples: the recent rows of a wide table merged
with its chunks, NULL as None.

For the command line, which answers faster without NumPy: NumPy is imported
only when the window holds a chunk to decode
(:func:`collectbus.store.hostcolumns.chunk_rows`), and the record types (the
tables' layouts, :func:`collectbus.store.hostlayout.wide_layouts`) only when
a chunk is decoded or every column is read. The rows and their order are those
of :func:`collectbus.store.hostcolumns.read_host`.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter

from sqlalchemy import Connection

from collectbus.store.bulk import RowTuple
from collectbus.store.hostlayout import WIDE_KEYS, wide_layouts
from collectbus.store.hostqueries import host_queries


def read_host_rows(
    conn: Connection,
    table: str,
    *,
    host: str | None,
    since_ns: int | None,
    until_ns: int | None,
    columns: Sequence[str] | None = None,
) -> tuple[tuple[str, ...], list[RowTuple]]:
    """The column names and rows of the wide table ``table`` with ``since_ns <=
    time_ns < until_ns``, recent and compacted, sorted by host, device and time;
    NULL is None.

    The columns are ``host``, ``time_ns`` and the values: all of the table's,
    or the device key (rows are sorted by it) and then ``columns``; a column
    the table does not have is the database's error. The same rows, in the same
    order, as :func:`collectbus.store.hostcolumns.read_host`.
    """
    key = WIDE_KEYS[table]
    if columns is None:
        chosen = wide_layouts()[table].columns
    else:
        chosen = (key, *(c for c in columns if c != key)) if key else tuple(columns)
    names = ("host", "time_ns", *chosen)
    queries = host_queries(conn, table, chosen, host=host, since_ns=since_ns, until_ns=until_ns)
    if queries.rows is None or queries.chunks is None:
        return names, []
    hosts = queries.names
    # fetchall: one call into the driver, not one per row.
    recent = conn.exec_driver_sql(*queries.rows).fetchall()
    out: list[RowTuple] = [(hosts[r[0]], *r[1:]) for r in recent]
    for chunk_host, encoding, payload in conn.exec_driver_sql(*queries.chunks):
        from collectbus.store.hostcolumns import chunk_rows  # NumPy, for chunks only

        wide = wide_layouts()[table]
        part = chunk_rows(wide, chunk_host, encoding, payload, since_ns, until_ns)
        if chosen != wide.columns:
            # A chunk holds every column, (time_ns, *wide.columns): kept are the chosen.
            kept = [0, *(1 + wide.columns.index(c) for c in chosen)]
            part = [tuple(row[i] for i in kept) for row in part]
        out.extend((hosts[chunk_host], *row) for row in part)
    # itemgetter: the sort key computed in C (a lambda costs a Python call per row).
    if key is None:
        out.sort(key=itemgetter(0, 1))
    else:
        out.sort(key=itemgetter(0, 2 + chosen.index(key), 1))
    return names, out
