"""The read side of the store: connections, read snapshots, the schema check, host samples.

:class:`StoreReader` is what :class:`collectbus.store.store.Store` builds on,
and what a command that only reads opens
(:func:`open_reader`): it imports none of the write side (record writers,
quarantine, job tables, retention) and builds no table, so that
``collectbus host`` answers at once (docs/architecture.md, "The CLI's start-up").

Every database error leaves as a :class:`~collectbus.errors.StoreError` (or
:class:`~collectbus.errors.SchemaError`) whose one-line message names the
database, password masked. Reads that merge two tables run in one snapshot
(``REPEATABLE READ`` on PostgreSQL; a read transaction is a snapshot in
SQLite's WAL mode), so a concurrent compaction is seen either entirely or not
at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, Literal, Self

from sqlalchemy import Connection, Engine, select

from collectbus.errors import SchemaError, StoreError
from collectbus.store.dberrors import mapped_errors
from collectbus.store.deadline import DEFAULT_STATEMENT_TIMEOUT_S, WATCHDOG, Guard
from collectbus.store.engine import make_engine
from collectbus.store.hostlayout import WIDE_KEYS, wide_layouts
from collectbus.store.hostrows import read_host_rows
from collectbus.store.revision import HEAD_REVISION, read_revision

if TYPE_CHECKING:
    import numpy.typing as npt


class StoreReader:
    """A store opened to read: host samples, hosts, and the schema's revision."""

    def __init__(
        self, engine: Engine, *, statement_timeout_s: float | None = DEFAULT_STATEMENT_TIMEOUT_S
    ) -> None:
        self._engine = engine
        #: How long a transaction may block (:mod:`collectbus.store.deadline`); None: no limit.
        self.statement_timeout_s = statement_timeout_s
        self._guard = Guard(engine) if statement_timeout_s is not None else None
        self._url = engine.url.render_as_string(hide_password=True)

    @property
    def url(self) -> str:
        """The database URL, password masked."""
        return self._url

    @property
    def dialect(self) -> Literal["sqlite", "postgresql"]:
        return "postgresql" if self._engine.dialect.name == "postgresql" else "sqlite"

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for plain SQL on the same database."""
        return self._engine

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(
        self, action: str, *, write: bool, deadline: bool = True
    ) -> Iterator[Connection]:
        """One transaction, within the statement timeout unless ``deadline`` is False."""
        timeout = self.statement_timeout_s if deadline else None
        ticket = None
        if timeout is not None and self._guard is not None:
            ticket = WATCHDOG.watch(self._guard, timeout)
        try:
            with mapped_errors(self._url, action), self._engine.connect() as conn:
                if write and self.dialect == "sqlite":
                    conn.execution_options(collectbus_begin="IMMEDIATE")
                if not write and self.dialect == "postgresql":
                    conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    if self.dialect == "postgresql":
                        # Milliseconds; 0 (no limit) for a transaction without deadline.
                        conn.exec_driver_sql(
                            f"SET LOCAL statement_timeout = {int((timeout or 0) * 1000)}"
                        )
                    yield conn
        except StoreError as err:
            if ticket is not None and ticket.fired:
                raise StoreError(
                    f"{self._url}: {action} failed: no answer within {timeout:g} s "
                    "(store.statement_timeout); the connection was closed",
                    hint="check the database server and the network to it",
                ) from err
            raise
        finally:
            if ticket is not None:
                WATCHDOG.release(ticket)

    def reading(self, action: str = "read") -> AbstractContextManager[Connection]:
        """A read snapshot (one transaction), for the readers of
        :mod:`collectbus.store.jobquery` and plain SQL; ``action`` names it in errors."""
        return self._transaction(action, write=False)

    def ping(self) -> None:
        """Raise :class:`StoreError` unless a connection can be made now."""
        with self._transaction("connect", write=False) as conn:
            conn.exec_driver_sql("SELECT 1")

    def check_schema(self) -> None:
        """Raise :class:`SchemaError` unless the schema is at the newest revision.

        For readers, which never migrate: a mistyped path or an old database
        gets a clear error instead of "no such table".
        """
        with self._transaction("read the schema revision", write=False) as conn:
            revision = read_revision(conn)
        head = HEAD_REVISION
        if revision is None:
            raise SchemaError(
                f"{self._url}: no collectbus data here",
                hint="check --db, or collect: collectbus run",
            )
        if revision != head:
            raise SchemaError(
                f"{self._url}: schema at revision {revision}, this collectbus needs {head}",
                hint="collectbus db migrate",
            )

    def read_host(
        self,
        table: str,
        *,
        host: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
    ) -> dict[str, npt.NDArray[Any]]:
        """One wide table's rows, recent and compacted, for ``since_ns <= time_ns < until_ns``.

        ``table`` is ``host_cpu``, ``host_stat``, ``host_mem``, ``host_vmstat``,
        ``host_disk``, ``host_net`` or ``host_load`` (the ``host_`` may be left
        out). The columns are ``host``, ``time_ns``, the device key if any and
        the values, sorted by host, device and time; nullable columns are
        ``numpy.ma.MaskedArray``.
        """
        from collectbus.store.hostcolumns import read_host

        wide = wide_layouts()[self._table(table)]
        with self._transaction(f"read {wide.name}", write=False) as conn:
            return read_host(conn, wide, host=host, since_ns=since_ns, until_ns=until_ns)

    def read_host_rows(
        self,
        tables: Sequence[str],
        *,
        host: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        columns: Mapping[str, Sequence[str]] | None = None,
    ) -> dict[str, tuple[tuple[str, ...], list[tuple[object, ...]]]]:
        """The rows of :meth:`read_host` as Python tuples, without NumPy unless a
        chunk is decoded, for several tables in one snapshot: per table, the
        column names (``host``, ``time_ns``, the device key if any, the
        values) and the rows, NULL as None. ``columns`` names, per table, the
        values to read (after the device key, always read); a table it does not
        name is read whole."""
        names = [self._table(table) for table in tables]
        wanted = columns or {}
        out: dict[str, tuple[tuple[str, ...], list[tuple[object, ...]]]] = {}
        with self._transaction("read host samples", write=False) as conn:
            for table, name in zip(tables, names, strict=True):
                out[table] = read_host_rows(
                    conn,
                    name,
                    host=host,
                    since_ns=since_ns,
                    until_ns=until_ns,
                    columns=wanted.get(table),
                )
        return out

    def latest_host_rows(
        self,
        tables: Mapping[str, Sequence[str]],
        *,
        reach_ns: int,
        per_host: Mapping[str, int],
        where: Mapping[str, tuple[str, object]] | None = None,
    ) -> tuple[
        list[dict[str, object]], dict[str, tuple[tuple[str, ...], list[tuple[object, ...]]]]
    ]:
        """Every host (``id``, ``name``, ``first_seen_ns``, ``last_seen_ns``, by
        name) and, per table of ``tables`` (its columns to read), each host's
        newest ``per_host[table]`` rows within ``reach_ns`` of its last sample
        (``where[table]``: one more condition, ``("cpu", -1)``), in one
        snapshot; one query per table whatever the number of hosts
        (:mod:`collectbus.store.hostlatest`)."""
        from collectbus.store.hostlatest import latest_rows
        from collectbus.store.hostlayout import HOSTS

        conditions = where or {}
        with self._transaction("read the latest host samples", write=False) as conn:
            found = conn.exec_driver_sql(
                f"SELECT id, name, first_seen_ns, last_seen_ns FROM {HOSTS} ORDER BY name"
            ).fetchall()
            hosts = [
                {"id": int(i), "name": str(n), "first_seen_ns": int(f), "last_seen_ns": int(last)}
                for i, n, f, last in found
            ]
            seen = {int(str(h["id"])): (str(h["name"]), int(str(h["last_seen_ns"]))) for h in hosts}
            out = {
                table: latest_rows(
                    conn,
                    self._table(table),
                    columns,
                    seen,
                    reach_ns=reach_ns,
                    per_host=per_host.get(table, 1),
                    where=conditions.get(table),
                )
                for table, columns in tables.items()
            }
        return hosts, out

    @staticmethod
    def _table(table: str) -> str:
        """The wide table's name (the ``host_`` may be left out)."""
        name = table if table.startswith("host_") else f"host_{table}"
        if name not in WIDE_KEYS:
            raise StoreError(f"unknown host table {table!r}; one of {', '.join(WIDE_KEYS)}")
        return name

    def hosts(self) -> list[dict[str, object]]:
        """Every known host: ``id``, ``name``, ``first_seen_ns``, ``last_seen_ns``."""
        from collectbus.store.schema import hosts  # the tables, built when first needed

        with self._transaction("read hosts", write=False) as conn:
            rows = conn.execute(select(hosts).order_by(hosts.c.name)).mappings().all()
        return [dict(row) for row in rows]


def open_reader(
    url: str,
    *,
    statement_timeout_s: float | None = DEFAULT_STATEMENT_TIMEOUT_S,
    pool_size: int | None = None,
    max_overflow: int | None = None,
    echo: bool = False,
) -> StoreReader:
    """A :class:`StoreReader` of the store at ``url``, once a connection answers;
    nothing is created or migrated. The pool and ``echo`` are
    :func:`~collectbus.store.engine.make_engine`'s."""
    engine = make_engine(
        url,
        statement_timeout_s=statement_timeout_s,
        pool_size=pool_size,
        max_overflow=max_overflow,
        echo=echo,
    )
    reader = StoreReader(engine, statement_timeout_s=statement_timeout_s)
    try:
        reader.ping()
    except BaseException:
        reader.close()
        raise
    return reader
