"""Host samples read as Python tuples: the recent rows of a wide table merged
with its chunks, NULL as None.

For the command line, which answers faster without NumPy: NumPy is imported
only when the window holds a chunk to decode
(:func:`collectbus.store.hostcolumns.chunk_rows`). The rows and their order
are those of :func:`collectbus.store.hostcolumns.read_host`.
"""

from __future__ import annotations

from operator import itemgetter

from sqlalchemy import Connection

from collectbus.store.bulk import RowTuple
from collectbus.store.hostsamples import host_queries
from collectbus.store.schema import WideTable


def read_host_rows(
    conn: Connection,
    wide: WideTable,
    *,
    host: str | None,
    since_ns: int | None,
    until_ns: int | None,
) -> list[RowTuple]:
    """Rows ``(host, time_ns, *wide.columns)`` with ``since_ns <= time_ns < until_ns``,
    recent and compacted, sorted by host, device and time; NULL is None.

    The same rows, in the same order, as :func:`collectbus.store.hostcolumns.read_host`.
    """
    queries = host_queries(conn, wide, host=host, since_ns=since_ns, until_ns=until_ns)
    if queries.rows is None or queries.chunks is None:
        return []
    names = queries.names
    # fetchall: one call into the driver, not one per row.
    recent = conn.exec_driver_sql(*queries.rows).fetchall()
    out: list[RowTuple] = [(names[r[0]], *r[1:]) for r in recent]
    for chunk_host, encoding, payload in conn.exec_driver_sql(*queries.chunks):
        from collectbus.store.hostcolumns import chunk_rows  # NumPy, for chunks only

        part = chunk_rows(wide, chunk_host, encoding, payload, since_ns, until_ns)
        out.extend((names[chunk_host], *row) for row in part)
    # itemgetter: the sort key computed in C (a lambda costs a Python call per row).
    if wide.key is None:
        out.sort(key=itemgetter(0, 1))
    else:
        out.sort(key=itemgetter(0, 2 + wide.columns.index(wide.key), 1))
    return out
