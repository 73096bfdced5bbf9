"""Statements run on the driver's own cursor, in the caller's transaction.

An update runs a handful of small statements; SQLAlchemy's per-statement work
(compiling, result objects, a Row per row) would cost more than the statements
themselves. Queries are written with ``:name`` parameters, SQLite's style, and
rewritten once to psycopg's ``%(name)s`` for PostgreSQL. A driver error is
raised as SQLAlchemy would raise it (a :class:`~sqlalchemy.exc.DBAPIError`
with the driver's error as ``orig``), so callers handle both alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError


@lru_cache(maxsize=256)
def _pyformat(query: str, names: tuple[str, ...]) -> str:
    """``:name`` to ``%(name)s`` for the given names (not ``::type`` casts)."""
    query = query.replace("%", "%%")
    for name in names:
        query = re.sub(rf"(?<![:\w]):{name}\b", f"%({name})s", query)
    return query


def pg_array(values: Sequence[object]) -> str:
    """The text of a PostgreSQL array of integers or texts (None: NULL), to
    bind and cast: psycopg sends a list element by element, several times
    slower."""
    out = []
    for v in values:
        if v is None:
            out.append("NULL")
        elif isinstance(v, int):
            out.append(str(v))
        else:
            text = str(v).replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'"{text}"')
    return "{" + ",".join(out) + "}"


def id_list(dialect: str, ids: Iterable[int]) -> str:
    """Integers as one parameter: the text of an array (PostgreSQL, to cast
    to ``BIGINT[]``) or of a JSON array (SQLite, read by ``json_each``)."""
    listed = ",".join(str(int(i)) for i in ids)
    return "{" + listed + "}" if dialect == "postgresql" else "[" + listed + "]"


def _raw(conn: Connection) -> Any:
    """The driver's connection (both drivers are synchronous: the DB-API
    connection is the driver's own, and stays reachable on a connection
    detached from its pool)."""
    return conn.connection.dbapi_connection


def _prepare(conn: Connection, query: str, names: Iterable[str]) -> tuple[Any, str]:
    cursor = _raw(conn).cursor()
    if conn.dialect.name == "postgresql":
        query = _pyformat(query, tuple(sorted(names)))
    return cursor, query


@contextmanager
def _mapped(conn: Connection, query: str) -> Iterator[None]:
    dbapi = conn.dialect.loaded_dbapi
    try:
        yield
    except dbapi.Error as err:
        # As SQLAlchemy would: a lost connection is marked, so that its holder
        # can replace it (collectbus.aggregate.sourcedb.HeldConnection).
        lost = conn.dialect.is_disconnect(err, conn.connection.dbapi_connection, None)
        raise DBAPIError.instance(
            query, None, err, dbapi.Error, connection_invalidated=lost
        ) from err


def rows(conn: Connection, query: str, params: Mapping[str, object]) -> list[tuple[Any, ...]]:
    """Every row of ``query``, as plain tuples."""
    cursor, query = _prepare(conn, query, params)
    try:
        with _mapped(conn, query):
            cursor.execute(query, params)
            return list(cursor.fetchall())
    finally:
        cursor.close()


def rows_many(
    conn: Connection, queries: Sequence[tuple[str, Mapping[str, object]]]
) -> list[list[tuple[Any, ...]]]:
    """Every row of each query, in order. PostgreSQL gets them all in one
    pipeline (one round trip, with the transaction's BEGIN); SQLite runs them
    one after the other."""
    if conn.dialect.name != "postgresql":
        return [rows(conn, query, params) for query, params in queries]
    pg = _raw(conn)
    cursors = []
    try:
        with _mapped(conn, "pipeline"), pg.pipeline():
            for query, params in queries:
                cursor = pg.cursor()
                cursors.append(cursor)
                cursor.execute(_pyformat(query, tuple(sorted(params))), params)
        return [list(c.fetchall()) for c in cursors]
    finally:
        for cursor in cursors:
            cursor.close()


def execute(conn: Connection, query: str, params: Mapping[str, object]) -> int:
    """Run one statement; the number of rows it changed."""
    cursor, query = _prepare(conn, query, params)
    try:
        with _mapped(conn, query):
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
        with _mapped(conn, query):
            cursor.executemany(query, params)
    finally:
        cursor.close()


def execute_all(
    conn: Connection,
    statements: Sequence[tuple[str, Sequence[Mapping[str, object]]]],
    *,
    commit: bool = False,
) -> list[int]:
    """Run each statement once per parameter set; the rows each changed (of
    its last parameter set). PostgreSQL gets them all in one pipeline: one
    round trip, not one per statement; with ``commit``, the transaction's
    COMMIT too (the caller's transaction then has nothing left to commit;
    SQLite leaves it to the caller). Errors are raised as by ``execute``."""
    todo = [(q, p) for q, p in statements if p]
    if conn.dialect.name != "postgresql":
        out = []
        for query, params in todo:
            cursor = _raw(conn).cursor()
            try:
                with _mapped(conn, query):
                    cursor.executemany(query, params)
                out.append(int(cursor.rowcount))
            finally:
                cursor.close()
        return out
    pg = _raw(conn)
    cursors = []
    try:
        with _mapped(conn, "pipeline"), pg.pipeline():
            for query, params in todo:
                cursor = pg.cursor()
                cursors.append(cursor)
                cursor.executemany(_pyformat(query, tuple(sorted(params[0]))), params)
            if commit:
                pg.commit()
        return [int(c.rowcount) for c in cursors]
    finally:
        for cursor in cursors:
            cursor.close()
