"""Bulk inserts: ``executemany`` on SQLite, ``COPY`` on PostgreSQL.

A design measurement put ``executemany`` into PostgreSQL at 54-80k rows/s
against 1.5-2.4M for ``COPY`` through psycopg 3 (docs/architecture.md,
"Ingest and chunks"; ``bench/ingest.py``). Both run inside the caller's
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection

from collectbus.store.dberrors import DriverError

RowTuple = tuple[object, ...]


def bulk_insert(
    conn: Connection, table: str, columns: Sequence[str], rows: Sequence[RowTuple], *, copy: bool
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``."""
    if not rows:
        return
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    if copy:
        import psycopg

        driver = cast("psycopg.Connection[Any]", conn.connection.driver_connection)
        try:
            with driver.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)
        except psycopg.Error as err:
            raise DriverError(err) from err
        return
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    markers = ", ".join([marker] * len(columns))
    conn.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({markers})", list(rows))
