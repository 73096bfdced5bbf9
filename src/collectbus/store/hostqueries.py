"""The queries that read one wide table's host samples: its recent rows and its chunks.

Shared by both readers, :mod:`collectbus.store.hostrows` (Python tuples,
NumPy only to decode a chunk) and :mod:`collectbus.store.hostcolumns` (NumPy
columns, for pandas and compaction). A table's name and the columns to read
are all they need: no SQLAlchemy table is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import Connection

from collectbus.store.hostlayout import HOST_CHUNKS, HOSTS, HOUR_NS

#: A statement in the driver's own parameter style, and its parameters.
Query = tuple[str, tuple[object, ...]]


class HostQueries(NamedTuple):
    """What reading one wide table sends: host names, the recent rows, the chunks.

    Plain SQL for the driver (:meth:`~sqlalchemy.engine.Connection.exec_driver_sql`):
    compiling the same statements with SQLAlchemy costs more than running them
    on a short window.
    """

    names: dict[int, str]
    #: ``(host_id, time_ns, *columns)`` of the recent rows; None when ``host`` is unknown.
    rows: Query | None
    #: ``(host_id, encoding, payload)`` of the chunks that may hold rows of the window.
    chunks: Query | None


def host_queries(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    *,
    host: str | None,
    since_ns: int | None,
    until_ns: int | None,
) -> HostQueries:
    """The queries for the rows of the wide table ``table`` with ``since_ns <=
    time_ns < until_ns`` (chunks are whole hours: their rows must still be cut to
    the window), the recent ones with ``columns``."""
    names = {int(i): str(n) for i, n in conn.exec_driver_sql(f"SELECT id, name FROM {HOSTS}")}
    host_id = next((i for i, n in names.items() if n == host), None)
    if host is not None and host_id is None:
        return HostQueries(names, None, None)
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    quote = conn.dialect.identifier_preparer.quote
    rows_where: list[tuple[str, object]] = []
    chunks_where: list[tuple[str, object]] = [("source =", table)]
    if host_id is not None:
        rows_where.append(("host_id =", host_id))
        chunks_where.append(("host_id =", host_id))
    if since_ns is not None:
        rows_where.append(("time_ns >=", since_ns))
        # A chunk holds one hour: the bound on hour_start_ns lets the
        # (host_id, source, hour_start_ns) index skip the hours before.
        chunks_where += [("hour_start_ns >", since_ns - HOUR_NS), ("last_ns >=", since_ns)]
    if until_ns is not None:
        rows_where.append(("time_ns <", until_ns))
        chunks_where += [("hour_start_ns <", until_ns), ("first_ns <", until_ns)]

    def query(selected: Sequence[str], source: str, where: list[tuple[str, object]]) -> Query:
        sql = f"SELECT {', '.join(quote(c) for c in selected)} FROM {source}"
        if where:
            sql += " WHERE " + " AND ".join(f"{condition} {mark}" for condition, _ in where)
        return sql, tuple(value for _, value in where)

    return HostQueries(
        names,
        query(("host_id", "time_ns", *columns), table, rows_where),
        query(("host_id", "encoding", "payload"), HOST_CHUNKS, chunks_where),
    )
