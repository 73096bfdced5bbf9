"""Host samples read as Python tuples: the recent rows of a wide table merged
with its chunks, NULL as None.

For the command line, which answers faster without NumPy: NumPy is imported
only when the window holds a chunk to decode
(:func:`collectbus.store.hostcolumns.chunk_rows`). The rows and their order
are those of :func:`collectbus.store.hostcolumns.read_host`.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter

from sqlalchemy import Connection

from collectbus.errors import StoreError
from collectbus.store.bulk import RowTuple
from collectbus.store.hostlayout import WideLayout
from collectbus.store.hostqueries import host_queries


def value_columns(wide: WideLayout, wanted: Sequence[str] | None) -> tuple[str, ...]:
    """The columns of ``wide`` that are in ``wanted`` (all when None), in the
    table's order, and its device key always: rows are sorted by it."""
    if wanted is None:
        return wide.columns
    unknown = sorted(set(wanted) - set(wide.columns))
    if unknown:
        raise StoreError(f"{wide.name} has no column {', '.join(map(repr, unknown))}")
    return tuple(c for c in wide.columns if c in wanted or c == wide.key)


def read_host_rows(
    conn: Connection,
    wide: WideLayout,
    *,
    host: str | None,
    since_ns: int | None,
    until_ns: int | None,
    columns: Sequence[str] | None = None,
) -> list[RowTuple]:
    """Rows ``(host, time_ns, *columns)`` with ``since_ns <= time_ns < until_ns``,
    recent and compacted, sorted by host, device and time; NULL is None.
    ``columns`` are :func:`value_columns` (default: all of ``wide.columns``).

    The same rows, in the same order, as :func:`collectbus.store.hostcolumns.read_host`.
    """
    chosen = value_columns(wide, columns)
    queries = host_queries(
        conn, wide, host=host, since_ns=since_ns, until_ns=until_ns, columns=chosen
    )
    if queries.rows is None or queries.chunks is None:
        return []
    names = queries.names
    # fetchall: one call into the driver, not one per row.
    recent = conn.exec_driver_sql(*queries.rows).fetchall()
    out: list[RowTuple] = [(names[r[0]], *r[1:]) for r in recent]
    # A chunk holds every column, (time_ns, *wide.columns): kept are the chosen.
    kept = [0, *(1 + wide.columns.index(c) for c in chosen)]
    for chunk_host, encoding, payload in conn.exec_driver_sql(*queries.chunks):
        from collectbus.store.hostcolumns import chunk_rows  # NumPy, for chunks only

        part = chunk_rows(wide, chunk_host, encoding, payload, since_ns, until_ns)
        if chosen != wide.columns:
            part = [tuple(row[i] for i in kept) for row in part]
        out.extend((names[chunk_host], *row) for row in part)
    # itemgetter: the sort key computed in C (a lambda costs a Python call per row).
    if wide.key is None:
        out.sort(key=itemgetter(0, 1))
    else:
        out.sort(key=itemgetter(0, 2 + chosen.index(wide.key), 1))
    return out
