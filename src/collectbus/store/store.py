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

import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Engine,
    case,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import sqlite

from collectbus.clock import Clock, SystemClock
from collectbus.errors import SchemaError, StoreError
from collectbus.records import (
    CallRecord,
    CollectionEvent,
    HostInventory,
    HostSample,
    JobRecord,
    JobUsageSample,
    NodeRecord,
    QueueRecord,
    Record,
    ReservationRecord,
    SystemRecord,
)
from collectbus.store.bulk import RowTuple
from collectbus.store.calls import COLUMNS as CALL_COLUMNS
from collectbus.store.calls import call_rows, insert_calls, read_call_timings, read_calls
from collectbus.store.dberrors import RefusedError
from collectbus.store.deadline import DEFAULT_STATEMENT_TIMEOUT_S
from collectbus.store.engine import make_engine as make_engine  # re-exported: its old home
from collectbus.store.events import EVENT_COLUMNS, event_row
from collectbus.store.hostsamples import insert_rows, sample_rows
from collectbus.store.inventory import read_inventories, write_inventories
from collectbus.store.jobtables import JobTables, SchedulerRows, write_scheduler_rows
from collectbus.store.jobusage import COLUMNS as JOB_USAGE_COLUMNS
from collectbus.store.jobusage import insert_job_usage, job_usage_rows, read_job_usage
from collectbus.store.jobusage import where as job_usage_where
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
from collectbus.store.reader import StoreReader
from collectbus.store.reservations import (
    ReservationRows,
    ReservationTables,
    write_reservation_rows,
)
from collectbus.store.retention import CleanupStats, RetentionLimits, cleanup
from collectbus.store.revision import HEAD_REVISION, create_schema, read_revision
from collectbus.store.rowcounts import row_counts
from collectbus.store.schema import (
    COUNTED_TABLES,
    WIDE_TABLES,
    WideTable,
    calls,
    collection_log,
    host_inventory,
    hosts,
    job_usage,
)

if TYPE_CHECKING:
    import numpy.typing as npt

    from collectbus.store.compact import CompactStats

log = logging.getLogger("collectbus.store")

DEFAULT_URL = "sqlite:///collectbus.db"
DEFAULT_COMPACT_AFTER_S = 3600.0
#: SQLite: for this long after a failed write, each write is followed by a WAL
#: checkpoint (see :meth:`Store.write`).
CHECKPOINT_EACH_COMMIT_NS = 600 * 1_000_000_000


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


def _write_job_usage(tx: _Tx, samples: list[JobUsageSample]) -> None:
    rows = screen(
        job_usage, JOB_USAGE_COLUMNS, job_usage_rows(samples), job_usage_where, tx.refused
    )
    copy = tx.copy
    tx.step.rows(
        job_usage.name,
        rows,
        lambda some: insert_job_usage(tx.conn, list(some), copy=copy),
        job_usage_where,
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
    JobUsageSample: _Writer(_write_job_usage),
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


class Store(StoreReader):
    """Host samples, collection events and recorded calls in SQLite or PostgreSQL.

    The connection, transactions, schema check and reads of host samples are
    those of :class:`~collectbus.store.reader.StoreReader`.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        compact_after_s: float = DEFAULT_COMPACT_AFTER_S,
        clock: Clock | None = None,
        use_copy: bool = True,
        statement_timeout_s: float | None = DEFAULT_STATEMENT_TIMEOUT_S,
    ) -> None:
        super().__init__(engine, statement_timeout_s=statement_timeout_s)
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
        # A schema at the newest revision (every open after the first) needs no
        # Alembic: loading its migration scripts costs more than the open itself.
        with self._transaction("read the schema revision", write=False) as conn:
            if read_revision(conn) == HEAD_REVISION:
                return
        # A database with no table at all gets the newest schema at once, stamped
        # with the newest revision, as Alembic's cookbook does ("create_all, then
        # stamp"): a test checks that the migrations build the same schema.
        with self._transaction("create the schema", write=True, deadline=False) as conn:
            if not conn.dialect.get_table_names(conn):
                create_schema(conn)
                return
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

    def inventories(
        self, *, host: str | None = None, history: bool = False
    ) -> list[dict[str, object]]:
        """Stored host inventories: the latest per host, or every change with ``history``."""
        with self._transaction("read host_inventory", write=False) as conn:
            return read_inventories(conn, host=host, history=history)

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

    def job_usage(self, cluster: str, job_id: str, **window: Any) -> list[dict[str, object]]:
        """A job's per-node usage samples, oldest first; the arguments are
        those of :func:`collectbus.store.jobusage.read_job_usage` (host, time window)."""
        with self._transaction("read job_usage", write=False) as conn:
            return read_job_usage(conn, cluster, job_id, **window)

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
    pool_size: int | None = None,
    max_overflow: int | None = None,
    echo: bool = False,
) -> Store:
    """Open the store at ``url`` (default ``sqlite:///collectbus.db``, relative to
    the working directory) and, unless ``migrate=False``, bring its schema to the
    newest revision. A transaction that blocks longer than
    ``statement_timeout_s`` fails (:mod:`collectbus.store.deadline`); the pool
    and ``echo`` are :func:`make_engine`'s."""
    engine = make_engine(
        url or DEFAULT_URL,
        statement_timeout_s=statement_timeout_s,
        pool_size=pool_size,
        max_overflow=max_overflow,
        echo=echo,
    )
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
            store.ping()
    except BaseException:
        store.close()
        raise
    return store
