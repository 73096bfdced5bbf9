"""Statements run on the driver's own cursor, in the caller's transaction.

An update runs a handful of small statements; SQLAlchemy's per-statement work
(compiling, result objects, a Row per row) would cost more than the statements
themselves. Queries are written with ``:name`` parameters, SQLite's style, and
rewritten once to psycopg's ``%(name)s`` for PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection


@lru_cache(maxsize=256)
def _pyformat(query: str, names: tuple[str, ...]) -> str:
    """``:name`` to ``%(name)s`` for the given names (not ``::type`` casts)."""
    query = query.replace("%", "%%")
    for name in names:
        query = re.sub(rf"(?<![:\w]):{name}\b", f"%({name})s", query)
    return query


def _prepare(conn: Connection, query: str, names: Iterable[str]) -> tuple[Any, str]:
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    if conn.dialect.name == "postgresql":
        query = _pyformat(query, tuple(sorted(names)))
    return cursor, query


def rows(conn: Connection, query: str, params: Mapping[str, object]) -> list[tuple[Any, ...]]:
    """Every row of ``query``, as plain tuples."""
    cursor, query = _prepare(conn, query, params)
    try:
        cursor.execute(query, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def execute(conn: Connection, query: str, params: Mapping[str, object]) -> int:
    """Run one statement; the number of rows it changed."""
    cursor, query = _prepare(conn, query, params)
    try:
        cursor.execute(query, params)
        return int(cursor.rowcount)
    finally:
        cursor.close()


def execute_many(conn: Connection, query: str, params: Sequence[Mapping[str, object]]) -> None:
    """Run one statement once per parameter set."""
    if not params:
        return
    cursor, query = _prepare(conn, query, params[0])
    try:
        cursor.executemany(query, params)
    finally:
        cursor.close()
