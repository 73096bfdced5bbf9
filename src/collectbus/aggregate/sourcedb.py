"""Opening an aggregate's source, read-only, and reading it from a snapshot.

A table of another database is opened so that collectbus cannot write to it:
SQLite through a ``mode=ro`` URI, PostgreSQL with
``default_transaction_read_only``. Every read of an update runs in one snapshot
(a read transaction in SQLite, ``REPEATABLE READ`` in PostgreSQL), and every
failure leaves as a :class:`~collectbus.errors.CollectError` whose one line
names the aggregate, the database and the table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

import collectbus.aggregate.driver as driver
from collectbus.aggregate.spec import AggregateSpec
from collectbus.aggregate.sql import AggregateSql, q
from collectbus.errors import CollectBusError, CollectError
from collectbus.store.dberrors import classify

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 10_000
CONNECT_TIMEOUT_S = 5


def dialect_of(engine: Engine) -> Literal["sqlite", "postgresql"]:
    return "postgresql" if engine.dialect.name == "postgresql" else "sqlite"


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy emits BEGIN itself (below), so that a read transaction is one
    # snapshot from its first statement to its end.
    dbapi_connection.isolation_level = None
    dbapi_connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")


def open_source(spec: AggregateSpec) -> Engine:
    """A read-only engine for an external source (``spec.url``)."""
    assert spec.url is not None
    try:
        parsed = make_url(spec.url)
    except (sa_exc.ArgumentError, ValueError) as err:
        raise CollectError(spec.source, f"invalid database URL: {err}") from err
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = parsed.database or ""
        if path in ("", ":memory:"):
            raise CollectError(spec.source, "an in-memory SQLite database cannot be tailed")

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

        engine = create_engine("sqlite://", creator=connect)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(
            parsed,
            pool_pre_ping=True,
            connect_args={
                "options": "-c default_transaction_read_only=on",
                "connect_timeout": CONNECT_TIMEOUT_S,
            },
        )
    raise CollectError(spec.source, f"unsupported database {backend!r}; use sqlite or postgresql")


@contextmanager
def source_errors(spec: AggregateSpec, action: str) -> Iterator[None]:
    """Database errors inside the block, as one line naming the aggregate's source."""
    try:
        yield
    except CollectBusError:
        raise
    except sa_exc.DBAPIError as err:
        detail = classify("", action, err.orig or err)
        raise CollectError(spec.source, str(detail).lstrip(": ")) from err
    except sa_exc.SQLAlchemyError as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CollectError(spec.source, f"{action} failed: {first}") from err
    except OSError as err:
        raise CollectError(spec.source, f"{action} failed: {err.strerror or err}") from err


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """One read transaction: every statement inside sees the same snapshot."""
    with engine.connect() as conn:
        if dialect_of(engine) == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction on the store (``BEGIN IMMEDIATE`` in SQLite)."""
    with engine.connect() as conn:
        if dialect_of(engine) == "sqlite":
            conn = conn.execution_options(collectbus_begin="IMMEDIATE")
        with conn.begin():
            yield conn


class HeldConnection:
    """One connection to the store kept between updates, for transactions that
    read a snapshot and then write: ``BEGIN IMMEDIATE`` in SQLite (no other
    writer meanwhile), ``REPEATABLE READ`` in PostgreSQL (a concurrent write to
    the same rows fails the transaction).

    An update every few seconds then skips the pool's check-out and return,
    and in PostgreSQL the pre-ping round trip and the settings of each
    transaction (``session``). A connection found broken
    (the server restarted) is replaced and the transaction tried once more;
    after any other failure it is closed, and the next transaction opens a
    new one.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        session: Callable[[Connection], Sequence[str]] | None = None,
        read_only: bool = False,
    ) -> None:
        """``session``: the statements that give the connection its settings
        (``SET``, ``PRAGMA``), run when it is opened. Such a connection is
        taken out of the pool (closed, not returned), so that its settings
        never reach the pool's other users. ``read_only``: transactions
        that only read (a source's snapshot), SQLite's deferred ``BEGIN``."""
        self.engine = engine
        self._session = session
        self._read_only = read_only
        self._conn: Connection | None = None

    def _open(self) -> Connection:
        conn = self.engine.connect()
        if dialect_of(self.engine) == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        elif not self._read_only:
            conn = conn.execution_options(collectbus_begin="IMMEDIATE")
        if self._session is not None:
            conn.detach()
            try:
                with conn.begin():
                    for statement in self._session(conn):
                        conn.exec_driver_sql(statement)
            except BaseException:
                conn.close()
                raise
        return conn

    def run(self, work: Callable[[Connection], T], *, autocommit: bool = False) -> T:
        """``work(conn)`` in one transaction, committed if it returns;
        ``autocommit`` (PostgreSQL): each of its statements in a transaction
        of its own (:func:`~collectbus.aggregate.driver.autocommit`)."""
        for attempt in (1, 2):
            conn = self._conn if self._conn is not None else self._open()
            self._conn = conn
            try:
                if autocommit:
                    with driver.autocommit(conn):
                        return work(conn)
                with conn.begin():
                    return work(conn)
            except sa_exc.DBAPIError as err:
                self.close()
                if not err.connection_invalidated or attempt == 2:
                    raise
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sa_exc.SQLAlchemyError:
                conn.invalidate()


def source_session(conn: Connection) -> list[str]:
    """The settings of the connection an aggregator keeps to a read-only
    source (:class:`HeldConnection`): in PostgreSQL, one generic plan for
    each statement of an update, the same every time but for its numbers
    (planning the one statement of an update anew would cost as much as
    running it), and no JIT compilation: a generic plan's estimates of
    rows for ranges of unknown bounds pass the JIT's threshold, and
    compiling the statement would take ten times as long as running it."""
    if conn.dialect.name != "postgresql":
        return []
    return ["SET plan_cache_mode = force_generic_plan", "SET jit = off"]


#: PostgreSQL's kinds of relation whose rows carry ``ctid`` and ``xmin``, one
#: place per row: an ordinary table and a materialized view (not a view, a
#: foreign table, nor a partitioned table, whose places repeat across its
#: partitions).
VERSIONED_KINDS = ("r", "m")


def has_row_versions(engine: Engine, spec: AggregateSpec) -> bool:
    """Whether the source table's rows carry a version that any write of
    them changes (:attr:`~collectbus.aggregate.sql.AggregateSql.versions`):
    a PostgreSQL table, not a view."""
    if dialect_of(engine) != "postgresql":
        return False
    query = text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:name)")
    with source_errors(spec, "inspect the table"), engine.connect() as conn:
        kind = conn.execute(query, {"name": q(spec.table)}).scalar()
    return str(kind) in VERSIONED_KINDS


def check_source(engine: Engine, spec: AggregateSpec) -> None:
    """Raise a CollectError naming the aggregate unless its table and columns exist."""
    with source_errors(spec, "connect"), engine.connect() as conn:
        inspector = inspect(conn)
        if not inspector.has_table(spec.table):
            raise CollectError(spec.source, f"no table {spec.table!r} in the source database")
        present = {c["name"] for c in inspector.get_columns(spec.table)}
    missing = [c for c in spec.columns() if c not in present]
    if missing:
        raise CollectError(
            spec.source,
            f"no column {', '.join(repr(c) for c in missing)} in {spec.table}"
            f" (columns: {', '.join(sorted(present))})",
        )
    if spec.open_when:
        probe = AggregateSql(spec, dialect_of(engine)).probe_open()
        with source_errors(spec, "check open_when"), engine.connect() as conn:
            try:
                conn.exec_driver_sql(probe).all()
            except sa_exc.DBAPIError as err:
                first = (str(err.orig or err).strip().splitlines() or ["invalid"])[0]
                raise CollectError(
                    spec.source, f"open_when {spec.open_when.strip()!r} is not valid here: {first}"
                ) from err
