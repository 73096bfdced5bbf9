"""The store: SQLite or PostgreSQL, chosen by URL alone.

``open(url)`` returns a :class:`Store`. A plain ``postgresql://`` URL uses
psycopg 3; SQLite gets WAL, ``synchronous=NORMAL``, a busy timeout and foreign
keys on every connection. Every database error leaves as a
:class:`~collectbus.errors.StoreError` (or :class:`~collectbus.errors.SchemaError`)
whose one-line message names the database, password masked.

Transactions: one per :meth:`Store.write` call (one collection cycle). Write
transactions on SQLite begin with ``BEGIN IMMEDIATE``, so a transaction that
reads before it writes cannot fail half way on a lock upgrade. Reads that
merge two tables run in one snapshot (``REPEATABLE READ`` on PostgreSQL; a
read transaction is a snapshot in SQLite's WAL mode), so a concurrent
compaction is seen either entirely or not at all.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import (
    Connection,
    Engine,
    case,
    create_engine,
    event,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL, make_url

from collectbus.clock import Clock, SystemClock
from collectbus.errors import SchemaError, StoreError
from collectbus.records import (
    CallRecord,
    CollectionEvent,
    HostInventory,
    HostSample,
    JobRecord,
    NodeRecord,
    QueueRecord,
    Record,
    ReservationRecord,
    SystemRecord,
)
from collectbus.store.bulk import RowTuple
from collectbus.store.calls import COLUMNS as CALL_COLUMNS
from collectbus.store.calls import call_rows, insert_calls, read_call_timings, read_calls
from collectbus.store.dberrors import RefusedError, mapped_errors
from collectbus.store.deadline import DEFAULT_STATEMENT_TIMEOUT_S, WATCHDOG, Guard
from collectbus.store.events import EVENT_COLUMNS, event_row
from collectbus.store.hostrows import read_host_rows
from collectbus.store.hostsamples import insert_rows, sample_rows
from collectbus.store.inventory import read_inventories, write_inventories
from collectbus.store.jobtables import JobTables, SchedulerRows, write_scheduler_rows
from collectbus.store.quarantine import (
    Careful,
    Refused,
    names_of,
    out_of_range_entries,
    read_quarantine,
    screen,
    value_problem,
    value_text,
    with_count,
    write_entries,
)
from collectbus.store.reservations import (
    ReservationRows,
    ReservationTables,
    write_reservation_rows,
)
from collectbus.store.retention import CleanupStats, RetentionLimits, cleanup
from collectbus.store.revision import HEAD_REVISION, read_revision
from collectbus.store.rowcounts import row_counts
from collectbus.store.schema import (
    COUNTED_TABLES,
    WIDE_TABLES,
    WideTable,
    calls,
    collection_log,
    host_inventory,
    hosts,
)

if TYPE_CHECKING:
    import numpy.typing as npt

    from collectbus.store.compact import CompactStats

log = logging.getLogger("collectbus.store")

DEFAULT_URL = "sqlite:///collectbus.db"
SQLITE_BUSY_TIMEOUT_MS = 10_000
#: Seconds a PostgreSQL connection attempt may take (libpq's ``connect_timeout``).
PG_CONNECT_TIMEOUT_S = 10
DEFAULT_COMPACT_AFTER_S = 3600.0
#: SQLite: for this long after a failed write, each write is followed by a WAL
#: checkpoint (see :meth:`Store.write`).
CHECKPOINT_EACH_COMMIT_NS = 600 * 1_000_000_000


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
    url: str, *, statement_timeout_s: float | None = DEFAULT_STATEMENT_TIMEOUT_S
) -> Engine:
    """A SQLAlchemy engine for ``url``, with collectbus's per-connection settings.

    ``statement_timeout_s`` bounds the SQLite busy timeout, and sets the
    PostgreSQL connection's TCP keepalives and ``tcp_user_timeout`` (libpq
    options; those the URL names win), see :mod:`collectbus.store.deadline`.
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
            return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
        engine = create_engine(parsed)
    busy_ms = SQLITE_BUSY_TIMEOUT_MS
    if statement_timeout_s is not None:
        busy_ms = min(busy_ms, max(1, int(statement_timeout_s * 1000)))
    event.listen(engine, "connect", functools.partial(_sqlite_connect, busy_ms=busy_ms))
    event.listen(engine, "begin", _sqlite_begin)
    return engine


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


def _screen_hosts(
    samples: list[HostSample], inventories: list[HostInventory], refused: list[Refused]
) -> tuple[list[HostSample], list[HostInventory]]:
    """Leave out the samples and inventories of a host name no column can hold."""
    bad: dict[str, str] = {}
    for host in {s.host for s in samples} | {r.host for r in inventories}:
        problem = value_problem("text", host)
        if problem is not None:
            bad[host] = problem
            refused.append(
                Refused(hosts.name, "name", host, f"{problem}; its records were left out")
            )
    if not bad:
        return samples, inventories
    return [s for s in samples if s.host not in bad], [r for r in inventories if r.host not in bad]


def _document_fine(record: HostInventory, refused: list[Refused]) -> bool:
    problem = value_problem("text", record.document)
    if problem is None:
        return True
    refused.append(
        Refused(
            host_inventory.name, "document", record.document, problem, record.host, record.time_ns
        )
    )
    return False


def _event_tuple(
    event: CollectionEvent, details: Sequence[tuple[str, str]] | None = None
) -> RowTuple:
    row = event_row(event if details is None else replace(event, details=tuple(details)))
    return tuple(row[c] for c in EVENT_COLUMNS)


_EVENT_HOST, _EVENT_TIME = EVENT_COLUMNS.index("host"), EVENT_COLUMNS.index("started_ns")
_CALL_HOST, _CALL_TIME = CALL_COLUMNS.index("host"), CALL_COLUMNS.index("started_ns")


def _where(row: RowTuple, host: int, time: int) -> tuple[str | None, int | None]:
    name, time_ns = row[host], row[time]
    return (
        name if isinstance(name, str) else None,
        time_ns if isinstance(time_ns, int) else None,
    )


def _event_where(row: RowTuple) -> tuple[str | None, int | None]:
    return _where(row, _EVENT_HOST, _EVENT_TIME)


def _call_where(row: RowTuple) -> tuple[str | None, int | None]:
    return _where(row, _CALL_HOST, _CALL_TIME)


def _wide_writer(
    conn: Connection, wide: WideTable, copy: bool
) -> Callable[[Sequence[RowTuple]], None]:
    return lambda rows: insert_rows(conn, wide, rows, copy=copy)


def _inventory_writer(
    conn: Connection, record: HostInventory, host_ids: dict[str, int]
) -> Callable[[], None]:
    def write() -> None:
        write_inventories(conn, [record], host_ids)

    return write


def _event_writer(conn: Connection) -> Callable[[Sequence[RowTuple]], None]:
    def write(rows: Sequence[RowTuple]) -> None:
        conn.execute(
            insert(collection_log), [dict(zip(EVENT_COLUMNS, r, strict=True)) for r in rows]
        )

    return write


@dataclass(slots=True)
class _Tx:
    """One collection's write transaction, as its writers see it."""

    conn: Connection
    step: Careful
    #: PostgreSQL bulk path: COPY.
    copy: bool
    host_ids: dict[str, int]
    #: What was left out so far (the collection's log line counts it).
    refused: list[Refused]
    #: The scheduler and reservation rows written, to be marked stored once committed.
    stored: list[SchedulerRows | ReservationRows] = field(default_factory=list)
    host_names: dict[int, str] = field(default_factory=dict)

    def wide_where(self, row: RowTuple) -> tuple[str | None, int | None]:
        host_id, time_ns = row[0], row[1]
        return self.host_names.get(host_id) if isinstance(host_id, int) else None, (
            time_ns if isinstance(time_ns, int) else None
        )


def _scheduler_writer(conn: Connection, rows: SchedulerRows, copy: bool) -> Callable[[], None]:
    def write() -> None:
        write_scheduler_rows(conn, rows, copy=copy)

    return write


def _write_scheduler_rows(tx: _Tx, batches: list[SchedulerRows]) -> None:
    for rows in batches:
        what = f"{rows.records} scheduler records"
        if tx.step.part("jobs", what, _scheduler_writer(tx.conn, rows, tx.copy)):
            tx.stored.append(rows)


def _reservation_writer(conn: Connection, rows: ReservationRows, copy: bool) -> Callable[[], None]:
    def write() -> None:
        write_reservation_rows(conn, rows, copy=copy)

    return write


def _write_reservation_rows(tx: _Tx, batches: list[ReservationRows]) -> None:
    for rows in batches:
        what = f"{rows.records} reservation records"
        if tx.step.part("reservations", what, _reservation_writer(tx.conn, rows, tx.copy)):
            tx.stored.append(rows)


def _write_samples(tx: _Tx, samples: list[HostSample]) -> None:
    for table, rows in sample_rows(samples, tx.host_ids, tx.refused).items():
        wide = WIDE_TABLES[table]
        names_in_order = ("host_id", "time_ns", *wide.columns)
        kept = screen(wide.table, names_in_order, rows, tx.wide_where, tx.refused)
        tx.step.rows(table, kept, _wide_writer(tx.conn, wide, tx.copy), tx.wide_where)


def _write_calls(tx: _Tx, records: list[CallRecord]) -> None:
    rows = screen(calls, CALL_COLUMNS, call_rows(records), _call_where, tx.refused)
    copy = tx.copy
    tx.step.rows(
        calls.name, rows, lambda some: insert_calls(tx.conn, list(some), copy=copy), _call_where
    )


def _write_inventories(tx: _Tx, inventories: list[HostInventory]) -> None:
    for inventory in inventories:
        tx.step.part(
            host_inventory.name,
            f"the inventory of {inventory.host} at {inventory.time_ns}",
            _inventory_writer(tx.conn, inventory, tx.host_ids),
        )


def _write_events(tx: _Tx, events: list[CollectionEvent]) -> None:
    # Last, so that the collection's log line counts what was left out.
    n_refused = len(tx.refused)
    rows = [
        _event_tuple(e, with_count(e.details, n_refused if len(events) == 1 else 0)) for e in events
    ]
    rows = screen(collection_log, EVENT_COLUMNS, rows, _event_where, tx.refused)
    tx.step.rows(collection_log.name, rows, _event_writer(tx.conn), _event_where)
    tx.refused.extend(out_of_range_entries(events))


@dataclass(frozen=True, slots=True)
class _Writer:
    """How the store writes one record type."""

    write: Callable[[_Tx, list[Any]], None]
    #: How many records a list of this type stands for.
    count: Callable[[list[Any]], int] = len


#: One writer per record type the store writes, in the order they are written
#: within a collection's transaction. A record of a type not here is an error.
WRITERS: dict[type, _Writer] = {
    SchedulerRows: _Writer(_write_scheduler_rows, lambda rows: sum(r.records for r in rows)),
    ReservationRows: _Writer(_write_reservation_rows, lambda rows: sum(r.records for r in rows)),
    HostSample: _Writer(_write_samples),
    CallRecord: _Writer(_write_calls),
    HostInventory: _Writer(_write_inventories),
    CollectionEvent: _Writer(_write_events),
}
_SCHEDULER_RECORDS = (JobRecord, NodeRecord, QueueRecord, SystemRecord, ReservationRecord)


def _unknown(record: object) -> TypeError:
    name = type(record).__name__
    if isinstance(record, _SCHEDULER_RECORDS):
        return TypeError(
            f"the store cannot write {name}: scheduler records become rows in the job "
            "tracker (collectbus.jobtrack.writer.TrackedStore writes them)"
        )
    known = ", ".join(t.__name__ for t in WRITERS)
    return TypeError(f"the store cannot write {name}; it writes {known}")


@dataclass(slots=True)
class _Prepared:
    """A cycle's records grouped by writer and screened, ready for its transaction."""

    groups: dict[type, list[Any]]
    #: What the screening left out already.
    screened: list[Refused]
    #: The collector named in quarantine entries (one collection), if any.
    source: str | None
    #: Collections left out as stored already (:meth:`Store.write_new`).
    skipped: int = 0

    @property
    def count(self) -> int:
        """The records the groups stand for."""
        return sum(WRITERS[kind].count(group) for kind, group in self.groups.items())


def _prepare(records: Iterable[Record | SchedulerRows | ReservationRows]) -> _Prepared:
    """Group ``records`` by writer (a TypeError for a type without one) and leave
    out what no column can hold (a bad host name, an inventory document)."""
    groups: dict[type, list[Any]] = {}
    for record in records:
        kind = type(record)
        group = groups.get(kind)
        if group is None:
            if kind not in WRITERS:
                raise _unknown(record)
            group = groups[kind] = []
        group.append(record)
    screened: list[Refused] = []
    if not groups:
        return _Prepared(groups, screened, None)
    samples, inventories = _screen_hosts(
        groups.get(HostSample, []), groups.get(HostInventory, []), screened
    )
    if HostSample in groups:
        groups[HostSample] = samples
    if HostInventory in groups:
        groups[HostInventory] = [r for r in inventories if _document_fine(r, screened)]
    events = groups.get(CollectionEvent, [])
    source = events[0].source if len(events) == 1 else "calls" if CallRecord in groups else None
    return _Prepared(groups, screened, source)


class Store:
    """Host samples, collection events and recorded calls in SQLite or PostgreSQL."""

    def __init__(
        self,
        engine: Engine,
        *,
        compact_after_s: float = DEFAULT_COMPACT_AFTER_S,
        clock: Clock | None = None,
        use_copy: bool = True,
        statement_timeout_s: float | None = DEFAULT_STATEMENT_TIMEOUT_S,
    ) -> None:
        self._engine = engine
        #: How long a transaction may block (:mod:`collectbus.store.deadline`); None: no limit.
        self.statement_timeout_s = statement_timeout_s
        self._guard = Guard(engine) if statement_timeout_s is not None else None
        self._url = engine.url.render_as_string(hide_password=True)
        self._clock = clock or SystemClock()
        self.compact_after_s = compact_after_s
        #: PostgreSQL bulk path: COPY (True) or executemany (False, a benchmark anchor).
        self.use_copy = use_copy
        self._host_ids: dict[str, int] = {}
        #: Values and rows left out and kept in the quarantine table since opened.
        self.quarantined = 0
        # SQLite: until then, each commit is followed by a WAL checkpoint.
        self._checkpoint_each_until_ns = 0
        self._logged_causes: set[tuple[str, str | None, str]] = set()
        #: Jobs, their history and scheduler snapshots read back
        #: (:mod:`collectbus.store.jobtables`); the job tracker writes them.
        self.jobs = JobTables(lambda action: self._transaction(action, write=False))
        #: Reservations and their history read back (:mod:`collectbus.store.reservations`).
        self.reservations = ReservationTables(lambda action: self._transaction(action, write=False))

    # ------------------------------------------------------------ basics

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

    def check_writable(self) -> None:
        """Raise :class:`StoreError` (one line) unless a row can be written now.

        Writes a row into ``hosts`` and rolls it back: a read-only SQLite
        file, a full disk or a PostgreSQL role without INSERT fail here, before
        a foreground run has collected anything.
        """

        class _Probe(Exception):
            pass

        try:
            with self._transaction("write (checked before collecting)", write=True) as conn:
                conn.execute(
                    hosts.insert().values(
                        name="collectbus-write-check", first_seen_ns=0, last_seen_ns=0
                    )
                )
                raise _Probe
        except _Probe:
            return

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> Store:
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

    def checkpoint(self) -> bool:
        """SQLite: move the WAL into the database file and truncate the WAL
        (``PRAGMA wal_checkpoint(TRUNCATE)``), so that the space it held is
        free again. True if the WAL was emptied; False for PostgreSQL, when a
        reader still uses the WAL, or when it failed (a full disk): the next
        checkpoint tries again.
        """
        if self.dialect != "sqlite":
            return False
        try:
            with self._engine.connect() as conn:
                busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
                conn.commit()
        except (sa_exc.SQLAlchemyError, OSError, sqlite3.Error) as err:
            log.debug("store: %s: WAL checkpoint failed: %s", self._url, err)
            return False
        return not busy

    # ------------------------------------------------------------ schema

    def migrate(self) -> None:
        """Upgrade the schema to the newest revision (creating it if missing).

        A schema at a revision this package does not know was written by a
        newer collectbus: that is a :class:`SchemaError`, and nothing changes.
        """
        # Alembic only here: readers compare revisions without it (:mod:`.revision`).
        from collectbus.store.migrate import (
            current_revision,
            head_revision,
            known_revision,
            upgrade,
        )

        # No deadline: a migration may rewrite a large table.
        with self._transaction("migrate", write=True, deadline=False) as conn:
            revision = current_revision(conn)
            if revision is not None and not known_revision(revision):
                raise SchemaError(
                    f"{self._url}: schema at revision {revision}, newer than this collectbus "
                    f"(it knows up to {head_revision()})",
                    hint="upgrade collectbus on this host, or point it at another database",
                )
            upgrade(conn)

    def init(self) -> None:
        """Create the schema; running it again is harmless (same as :meth:`migrate`)."""
        self.migrate()

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

    def status(self, *, exact: bool = False) -> dict[str, object]:
        """Schema revision, the package's head revision and rows per table.

        The rows are estimates unless ``exact`` (see
        :mod:`collectbus.store.rowcounts`): cheap enough for a health check on
        any size of table. ``rows_estimated`` says which, ``rows_method`` how.
        """
        with self._transaction("status", write=False) as conn:
            revision = read_revision(conn)
            method, counts = row_counts(conn, self.dialect, COUNTED_TABLES, exact=exact)
            held = read_quarantine(conn) if "quarantine" in counts else None
        head = HEAD_REVISION
        return {
            "url": self._url,
            "dialect": self.dialect,
            "revision": revision,
            "head": head,
            "up_to_date": revision == head,
            "tables": counts,
            "rows_estimated": method != "count",
            "rows_method": method,
            # Values and rows the database refused (None before the table exists).
            "quarantine": held,
        }

    # ------------------------------------------------------------ writing

    def write(self, records: Iterable[Record | SchedulerRows | ReservationRows]) -> int:
        """Store one collection cycle in one transaction; return the records stored.

        Each record goes to the writer of its type (:data:`WRITERS`):
        HostSamples to the wide tables, CallRecords to ``calls``,
        HostInventories to ``host_inventory``, CollectionEvents to
        ``collection_log``, and the rows the job tracker made of scheduler
        records (:class:`~collectbus.store.jobtables.SchedulerRows`, counted as
        the records they stand for) to ``jobs``, ``job_history`` and the
        snapshot tables, and those of the reservation tracker
        (:class:`~collectbus.store.reservations.ReservationRows`) to
        ``reservations`` and ``reservation_history``. Any other type is a :class:`TypeError`, before anything
        is written. If the database cannot be reached or cannot write, nothing
        of the cycle is stored (a :class:`StoreError`). A value or row the
        database refuses is left out and kept in the ``quarantine`` table, and
        the rest of the cycle is stored (:mod:`collectbus.store.quarantine`).
        """
        prepared = _prepare(records)
        if not prepared.groups:
            return 0
        return self._write_prepared(lambda _conn: prepared).count

    def write_new(self, collections: Sequence[Sequence[Record]]) -> tuple[int, int]:
        """Store, in one transaction, the collections not stored yet; return how
        many were written and how many were left out as stored already.

        Each collection holds records and exactly one :class:`CollectionEvent`
        (a ValueError otherwise), which identifies it; a collection given
        twice is written once (:mod:`collectbus.store.replays`). Otherwise as
        :meth:`write`: a value or row the database refuses is quarantined and
        the rest is stored; an outage is a :class:`StoreError` and nothing is
        stored.
        """
        from collectbus.store.replays import collection_key, new_collections

        for collection in collections:
            collection_key(collection)
            for record in collection:
                if type(record) not in WRITERS:
                    raise _unknown(record)
        if not collections:
            return 0, 0

        def prepare(conn: Connection) -> _Prepared:
            fresh, skipped = new_collections(conn, collections)
            prepared = _prepare([r for c in fresh for r in c])
            prepared.skipped = skipped
            return prepared

        done = self._write_prepared(prepare)
        return len(collections) - done.skipped, done.skipped

    def _write_prepared(self, prepare: Callable[[Connection], _Prepared]) -> _Prepared:
        """Write what ``prepare`` gives inside the transaction: fast, then, if the
        database refused something, part by part; the rest of :meth:`write`."""
        try:
            try:
                written = self._write_groups(prepare, careful=False)
            except RefusedError:
                # Something the checks do not know: part by part, row by row.
                written = self._write_groups(prepare, careful=True)
        except StoreError:
            if self.dialect == "sqlite":
                # A full disk, perhaps: the WAL's space is all that may be freed
                # here, and it is freed only by a complete checkpoint, which
                # needs room for the pages it moves. So the WAL is kept to one
                # commit for a while: each commit is checkpointed, before the
                # next can fill what was freed.
                self._checkpoint_each_until_ns = (
                    self._clock.monotonic_ns() + CHECKPOINT_EACH_COMMIT_NS
                )
                self.checkpoint()
            raise
        if self._checkpoint_each_until_ns > self._clock.monotonic_ns():
            self.checkpoint()
        prepared, host_ids, stored, refused = written
        # Cached only once committed: a rolled-back insert leaves no stale id.
        self._host_ids.update(host_ids)
        for rows in stored:
            rows.stored = True
        self._note_refused(refused, prepared.source)
        return prepared

    def _write_groups(
        self, prepare: Callable[[Connection], _Prepared], *, careful: bool
    ) -> tuple[_Prepared, dict[str, int], list[SchedulerRows | ReservationRows], list[Refused]]:
        """One transaction, each group by its writer; with ``careful``, each
        part in a savepoint and a refused part row by row
        (:class:`~collectbus.store.quarantine.Careful`)."""
        with self._transaction("write", write=True) as conn:
            prepared = prepare(conn)
            groups = prepared.groups
            refused = list(prepared.screened)
            hosted = [*groups.get(HostSample, ()), *groups.get(HostInventory, ())]
            tx = _Tx(
                conn,
                Careful(conn, refused, careful=careful),
                self.use_copy and self.dialect == "postgresql" and not careful,
                self._upsert_hosts(conn, hosted) if hosted else {},
                refused,
            )
            tx.host_names = names_of(tx.host_ids)
            for kind, writer in WRITERS.items():
                group = groups.get(kind)
                if group is not None:
                    writer.write(tx, group)
            if groups:
                write_entries(
                    conn, refused, source=prepared.source, stored_ns=self._clock.time_ns()
                )
        return prepared, tx.host_ids, tx.stored, refused

    def _note_refused(self, refused: list[Refused], source: str | None) -> None:
        """Count what was left out; log each cause (table, field, reason) once."""
        if not refused:
            return
        self.quarantined += len(refused)
        for entry in refused:
            if entry.cause in self._logged_causes:
                continue
            self._logged_causes.add(entry.cause)
            what = f"{entry.table}.{entry.field}" if entry.field else f"a row of {entry.table}"
            log.warning(
                "store: %s: %s = %s (host %s, source %s) %s. Kept in the quarantine "
                "table, the rest of the collection stored; further values refused for "
                "this reason are counted, not logged (collectbus db status)",
                self._url,
                what,
                value_text(entry.value),
                entry.host or "-",
                source or "-",
                entry.reason,
            )

    def cleanup(
        self, limits: RetentionLimits, *, now_ns: int | None = None, dry_run: bool = False
    ) -> CleanupStats:
        """Apply the history tables' retention (:mod:`collectbus.store.retention`)."""
        now = self._clock.time_ns() if now_ns is None else now_ns
        with self._transaction("clean up", write=not dry_run) as conn:
            stats = cleanup(conn, limits, now_ns=now, dry_run=dry_run)
        return stats

    def _upsert_hosts(
        self, conn: Connection, samples: list[HostSample | HostInventory]
    ) -> dict[str, int]:
        spans: dict[str, tuple[int, int]] = {}
        for s in samples:
            first, last = spans.get(s.host, (s.time_ns, s.time_ns))
            spans[s.host] = (min(first, s.time_ns), max(last, s.time_ns))
        ids: dict[str, int] = {}
        c = hosts.c
        for name, (first, last) in spans.items():
            known = self._host_ids.get(name)
            if known is not None:
                conn.execute(
                    update(hosts)
                    .where(c.id == known, or_(c.first_seen_ns > first, c.last_seen_ns < last))
                    .values(
                        first_seen_ns=case((c.first_seen_ns > first, first), else_=c.first_seen_ns),
                        last_seen_ns=case((c.last_seen_ns < last, last), else_=c.last_seen_ns),
                    )
                )
                ids[name] = known
                continue
            from sqlalchemy.dialects import postgresql  # imported by PostgreSQL stores only

            dialect_insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
            stmt = dialect_insert(hosts).values(name=name, first_seen_ns=first, last_seen_ns=last)
            new = stmt.excluded
            stmt = stmt.on_conflict_do_update(
                index_elements=[c.name],
                set_={
                    "first_seen_ns": case(
                        (c.first_seen_ns > new.first_seen_ns, new.first_seen_ns),
                        else_=c.first_seen_ns,
                    ),
                    "last_seen_ns": case(
                        (c.last_seen_ns < new.last_seen_ns, new.last_seen_ns),
                        else_=c.last_seen_ns,
                    ),
                },
            )
            ids[name] = conn.execute(stmt.returning(c.id)).scalar_one()
        return ids

    # ------------------------------------------------------------ compaction

    def compact(
        self, *, now_ns: int | None = None, older_than_s: float | None = None
    ) -> CompactStats:
        """Move whole hours older than ``older_than_s`` (default: ``compact_after_s``)
        into chunks; see :mod:`collectbus.store.compact`."""
        from collectbus.store.compact import CompactStats, compact_hour, hour_cutoff, pending

        now = self._clock.time_ns() if now_ns is None else now_ns
        cutoff = hour_cutoff(now, self.compact_after_s if older_than_s is None else older_than_s)
        stats = CompactStats(cutoff_ns=cutoff)
        for wide in WIDE_TABLES.values():
            with self._transaction("compact", write=False) as conn:
                hours = pending(conn, wide, cutoff)
            for host_id, hour_ns in hours:
                with self._transaction(f"compact {wide.name}", write=True) as conn:
                    stats += compact_hour(conn, wide, host_id, hour_ns)
        return stats

    # ------------------------------------------------------------ reading

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

        wide = self._wide(table)
        with self._transaction(f"read {wide.name}", write=False) as conn:
            return read_host(conn, wide, host=host, since_ns=since_ns, until_ns=until_ns)

    def read_host_rows(
        self,
        tables: Sequence[str],
        *,
        host: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
    ) -> dict[str, tuple[tuple[str, ...], list[tuple[object, ...]]]]:
        """The rows of :meth:`read_host` as Python tuples, without NumPy unless a
        chunk is decoded, for several tables in one snapshot: per table, the
        column names (``host``, ``time_ns``, the device key if any, the
        values) and the rows, NULL as None."""
        wides = [self._wide(table) for table in tables]
        out: dict[str, tuple[tuple[str, ...], list[tuple[object, ...]]]] = {}
        with self._transaction("read host samples", write=False) as conn:
            for table, wide in zip(tables, wides, strict=True):
                rows = read_host_rows(conn, wide, host=host, since_ns=since_ns, until_ns=until_ns)
                out[table] = (("host", "time_ns", *wide.columns), rows)
        return out

    @staticmethod
    def _wide(table: str) -> WideTable:
        name = table if table.startswith("host_") else f"host_{table}"
        wide = WIDE_TABLES.get(name)
        if wide is None:
            raise StoreError(f"unknown host table {table!r}; one of {', '.join(WIDE_TABLES)}")
        return wide

    def inventories(
        self, *, host: str | None = None, history: bool = False
    ) -> list[dict[str, object]]:
        """Stored host inventories: the latest per host, or every change with ``history``."""
        with self._transaction("read host_inventory", write=False) as conn:
            return read_inventories(conn, host=host, history=history)

    def hosts(self) -> list[dict[str, object]]:
        """Every known host: ``id``, ``name``, ``first_seen_ns``, ``last_seen_ns``."""
        with self._transaction("read hosts", write=False) as conn:
            rows = conn.execute(select(hosts).order_by(hosts.c.name)).mappings().all()
        return [dict(row) for row in rows]

    def collection_log(
        self, *, since_ns: int | None = None, limit: int | None = None
    ) -> list[dict[str, object]]:
        """Collections started at or after ``since_ns``, oldest first; the newest
        ``limit`` of them if a limit is given. ``details`` is a dict (empty when
        the collection noted nothing)."""
        c = collection_log.c
        query = select(collection_log).order_by(c.started_ns.desc(), c.id.desc())
        if since_ns is not None:
            query = query.where(c.started_ns >= since_ns)
        if limit is not None:
            query = query.limit(limit)
        with self._transaction("read collection_log", write=False) as conn:
            rows = conn.execute(query).mappings().all()
        out = [dict(row) for row in reversed(rows)]
        for row in out:
            # The JSON object of what the collection noted, as a dict.
            text = row.get("details")
            row["details"] = json.loads(str(text)) if text else {}
        return out

    def calls(self, **window: Any) -> list[dict[str, object]]:
        """Recorded calls; the arguments are those of
        :func:`collectbus.store.calls.read_calls` (handler, time window, errors,
        slowest, limit)."""
        with self._transaction("read calls", write=False) as conn:
            return read_calls(conn, **window)

    def call_timings(self, **window: Any) -> dict[str, npt.NDArray[Any]]:
        """Handler, start, elapsed time and error flag of recorded calls as
        NumPy columns; see :func:`collectbus.store.calls.read_call_timings`."""
        with self._transaction("read calls", write=False) as conn:
            return read_call_timings(conn, **window)


def open(
    url: str | None = None,
    *,
    migrate: bool = True,
    compact_after_s: float = DEFAULT_COMPACT_AFTER_S,
    clock: Clock | None = None,
    use_copy: bool = True,
    statement_timeout_s: float | None = DEFAULT_STATEMENT_TIMEOUT_S,
) -> Store:
    """Open the store at ``url`` (default ``sqlite:///collectbus.db``, relative to
    the working directory) and, unless ``migrate=False``, bring its schema to the
    newest revision. A transaction that blocks longer than
    ``statement_timeout_s`` fails (:mod:`collectbus.store.deadline`)."""
    engine = make_engine(url or DEFAULT_URL, statement_timeout_s=statement_timeout_s)
    store = Store(
        engine,
        compact_after_s=compact_after_s,
        clock=clock,
        use_copy=use_copy,
        statement_timeout_s=statement_timeout_s,
    )
    try:
        if migrate:
            store.migrate()
        else:
            with store._transaction("connect", write=False) as conn:
                conn.exec_driver_sql("SELECT 1")
    except BaseException:
        store.close()
        raise
    return store
