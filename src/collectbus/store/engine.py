"""SQLAlchemy engines for the store: SQLite or PostgreSQL, chosen by URL alone.

A plain ``postgresql://`` URL uses psycopg 3; SQLite gets WAL,
``synchronous=NORMAL``, a busy timeout and foreign keys on every connection,
and its transactions begin as :class:`collectbus.store.reader.StoreReader`
asks (``BEGIN IMMEDIATE`` for writes).
"""

from __future__ import annotations

import functools
import logging
import math
import sqlite3
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from collectbus.errors import StoreError
from collectbus.store.dberrors import mapped_errors
from collectbus.store.deadline import DEFAULT_STATEMENT_TIMEOUT_S

SQLITE_BUSY_TIMEOUT_MS = 10_000
#: Seconds a PostgreSQL connection attempt may take (libpq's ``connect_timeout``).
PG_CONNECT_TIMEOUT_S = 10


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except (sa_exc.ArgumentError, ValueError) as err:
        raise StoreError(
            f"invalid database URL: {err}", hint="e.g. sqlite:///collectbus.db"
        ) from err
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(
    url: str,
    *,
    statement_timeout_s: float | None = DEFAULT_STATEMENT_TIMEOUT_S,
    pool_size: int | None = None,
    max_overflow: int | None = None,
    echo: bool = False,
) -> Engine:
    """A SQLAlchemy engine for ``url``, with collectbus's per-connection settings.

    ``statement_timeout_s`` bounds the SQLite busy timeout, and sets the
    PostgreSQL connection's TCP keepalives and ``tcp_user_timeout`` (libpq
    options; those the URL names win), see :mod:`collectbus.store.deadline`.
    ``pool_size`` and ``max_overflow`` size the connection pool (None:
    SQLAlchemy's 5 and 10; an in-memory SQLite database has one connection
    per thread and ignores them). ``echo`` logs every statement and its
    parameters at INFO through the logger ``sqlalchemy.engine.Engine``, to
    wherever logging goes (standard error, the daemon's log), never to
    standard output, which carries a command's data.
    """
    parsed = _parse(url)
    shown = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.get_driver_name() != "psycopg":
        raise StoreError(
            f"{shown}: only the psycopg 3 driver is supported",
            hint="use postgresql:// or postgresql+psycopg://",
        )
    if backend not in ("sqlite", "postgresql"):
        raise StoreError(f"{shown}: unsupported database", hint="use sqlite:// or postgresql://")
    with mapped_errors(shown, "open"):
        if backend == "postgresql":
            # libpq waits for the OS's TCP timeout (minutes) without these.
            options: dict[str, object] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
            if statement_timeout_s is not None:
                # Within the deadline too (libpq's least is 2 s).
                options["connect_timeout"] = max(
                    2, min(PG_CONNECT_TIMEOUT_S, math.ceil(statement_timeout_s))
                )
                idle = max(1, int(statement_timeout_s / 3))
                options.update(
                    keepalives=1,
                    keepalives_idle=idle,
                    keepalives_interval=idle,
                    keepalives_count=3,
                    tcp_user_timeout=int(statement_timeout_s * 1000),
                )
            connect_args = {k: v for k, v in options.items() if k not in parsed.query}
            return create_engine(
                parsed,
                pool_pre_ping=True,
                connect_args=connect_args,
                **_pool_options(pool_size, max_overflow, echo),
            )
        memory = parsed.database in (None, "", ":memory:")
        engine = create_engine(
            parsed, **_pool_options(None if memory else pool_size, max_overflow, echo, memory)
        )
    busy_ms = SQLITE_BUSY_TIMEOUT_MS
    if statement_timeout_s is not None:
        busy_ms = min(busy_ms, max(1, int(statement_timeout_s * 1000)))
    event.listen(engine, "connect", functools.partial(_sqlite_connect, busy_ms=busy_ms))
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _pool_options(
    pool_size: int | None, max_overflow: int | None, echo: bool, memory: bool = False
) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if pool_size is not None:
        options["pool_size"] = pool_size
    if max_overflow is not None and not memory:
        options["max_overflow"] = max_overflow
    if echo:
        # SQLAlchemy gives a logger without handlers one of its own, on
        # standard output; a handler that passes the lines on to logging's
        # own (through propagation) keeps them off the command's output.
        sql_log = logging.getLogger("sqlalchemy.engine.Engine")
        if not sql_log.handlers:
            sql_log.addHandler(logging.NullHandler())
        options["echo"] = True
    return options


def _sqlite_connect(dbapi_connection: Any, _record: Any, *, busy_ms: int) -> None:
    # SQLAlchemy emits BEGIN itself (_sqlite_begin); sqlite3's own implicit
    # transactions would otherwise begin late and commit before DDL.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # Straight to the driver (a statement through SQLAlchemy costs more than
    # the BEGIN), its error raised as SQLAlchemy would raise it.
    statement = f"BEGIN {conn.get_execution_options().get('collectbus_begin', 'DEFERRED')}"
    try:
        conn.connection.dbapi_connection.execute(statement)  # type: ignore[union-attr]
    except sqlite3.Error as err:
        raise sa_exc.DBAPIError.instance(statement, None, err, sqlite3.Error) from err
