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
from dataclasses import dataclass
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


@lru_cache(maxsize=64)
def _renamed(query: str, names: tuple[str, ...], prefix: str) -> str:
    """``query`` with each ``:name`` of ``names`` written ``:<prefix>name``."""
    for name in names:
        query = re.sub(rf"(?<![:\w]):{name}\b", f":{prefix}{name}", query)
    return query


@dataclass(frozen=True, slots=True)
class Part:
    """One query of :func:`rows_at_once`: its rows are read from the
    combined row's columns ``at`` to ``at + width``."""

    query: str
    params: Mapping[str, object]
    at: int
    width: int


def union_query(parts: Sequence[Part]) -> tuple[str, dict[str, object]]:
    """The statement of :func:`rows_at_once` and its parameters: each part's
    rows padded with NULLs to one row type, tagged with the part's number, in
    one ``UNION ALL`` (each part's parameters renamed apart).

    PostgreSQL types a ``UNION`` pair by pair, and two NULLs make a text: so
    the first branch, which returns no row, gives every column its type, from
    the widest part at each place (the parts' places must tile the row)."""
    total = max(p.at + p.width for p in parts)  # with the tag, column 0
    queries, params = [], {}
    for n, part in enumerate(parts):
        prefix = f"collectbus_{n}_"
        queries.append(_renamed(part.query, tuple(sorted(part.params)), prefix))
        params.update({prefix + k: v for k, v in part.params.items()})
    widest: dict[int, int] = {}
    for n, part in enumerate(parts):
        if part.width > parts[widest.get(part.at, n)].width or part.at not in widest:
            widest[part.at] = n
    tiles, at = [], 1
    for start in sorted(widest):
        if start != at:
            raise ValueError(f"parts leave columns {at} to {start - 1} untyped")
        tiles.append(widest[start])
        at = start + parts[widest[start]].width
    typing = ", ".join(f"({queries[n]}) AS collectbus_type_{n}" for n in tiles)
    typed = ", ".join(f"collectbus_type_{n}.*" for n in tiles)
    selects = [f"SELECT -1, {typed} FROM {typing} WHERE false"]
    for n, part in enumerate(parts):
        before = ["NULL"] * (part.at - 1)
        after = ["NULL"] * (total - part.at - part.width)
        cols = ", ".join([str(n), *before, "collectbus_part.*", *after])
        selects.append(f"SELECT {cols} FROM ({queries[n]}) AS collectbus_part")
    return " UNION ALL ".join(selects), params


def rows_at_once(conn: Connection, parts: Sequence[Part]) -> list[list[tuple[Any, ...]]]:
    """PostgreSQL: every row of each part's query, in one statement, so that
    all are read from ONE snapshot (the statement's) in one round trip, with
    no transaction to begin or end (the caller runs it in autocommit,
    :func:`autocommit`). The parts share the row type: a part's columns are
    ``at`` to ``at + width`` (1 to ``width`` free for the first), and parts
    at the same columns must agree on their types."""
    query, params = union_query(parts)
    found = rows(conn, query, params)
    out: list[list[tuple[Any, ...]]] = [[] for _ in parts]
    spans = [(p.at, p.at + p.width) for p in parts]
    for row in found:
        a, b = spans[row[0]]
        out[row[0]].append(row[a:b])
    return out


def _begin_statement(pg: Any) -> str:
    """The BEGIN that psycopg would send for the connection's settings."""
    words = ["BEGIN"]
    if pg.isolation_level is not None:
        words.append("ISOLATION LEVEL " + pg.isolation_level.name.replace("_", " "))
    if pg.read_only is not None:
        words.append("READ ONLY" if pg.read_only else "READ WRITE")
    return " ".join(words)


@contextmanager
def autocommit(conn: Connection) -> Iterator[None]:
    """PostgreSQL: the block's statements each in a transaction of its own
    (psycopg's autocommit, a setting of the client: nothing is sent). The
    connection must be outside any transaction; it is again after."""
    pg = _raw(conn)
    pg.autocommit = True
    try:
        yield
    finally:
        _leave(pg)


def _leave(pg: Any) -> None:
    """Back out of autocommit, rolling back a transaction left open by an error."""
    from psycopg.pq import TransactionStatus

    if pg.info.transaction_status != TransactionStatus.IDLE:
        pg.rollback()
    pg.autocommit = False


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
    # Outside a transaction yet: its BEGIN sent in the pipeline too, not
    # waited for on its own (psycopg's would be), and the COMMIT last.
    explicit = commit and _idle(pg)
    cursors = []
    try:
        if explicit:
            pg.autocommit = True
        with _mapped(conn, "pipeline"), pg.pipeline():
            if explicit:
                pg.execute(_begin_statement(pg))
            for query, params in todo:
                cursor = pg.cursor()
                cursors.append(cursor)
                cursor.executemany(_pyformat(query, tuple(sorted(params[0]))), params)
            if explicit:
                pg.execute("COMMIT")
            elif commit:
                pg.commit()
        return [int(c.rowcount) for c in cursors]
    finally:
        if explicit:
            _leave(pg)
        for cursor in cursors:
            cursor.close()


def _idle(pg: Any) -> bool:
    from psycopg.pq import TransactionStatus

    return bool(pg.info.transaction_status == TransactionStatus.IDLE)
