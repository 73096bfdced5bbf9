"""The ``jobs`` and ``job_history`` tables: what is stored, read back for the
job tracker, and the rows it hands over, written.

The job tracker (:mod:`collectbus.jobtrack`) decides what a collection
changes; the store only writes what it is given, a :class:`SchedulerRows`, in
the collection's transaction (:meth:`collectbus.store.Store.write`). At start,
and for jobs it does not hold, the tracker reads what the store holds through
:class:`JobTables` (``Store.jobs``): the tracked fields and first and last
sightings of each job, each read in a snapshot of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import Connection, select

from collectbus.records import FINAL_JOB_STATES
from collectbus.store.bulk import RowTuple, bulk_insert
from collectbus.store.jobrows import JOB_COLUMNS, TRACKED
from collectbus.store.schema import jobs
from collectbus.store.snapshots import write_snapshot_rows

#: The state of a job gone from a complete listing with no end seen.
DISAPPEARED = "disappeared"
#: The states after which a job does not change (but for a late end, after
#: :data:`DISAPPEARED`).
ENDED = (*sorted(FINAL_JOB_STATES), DISAPPEARED)

HISTORY_COLUMNS = (
    "cluster",
    "job_id",
    "submit_ns",
    "observed_ns",
    "field",
    "old_value",
    "new_value",
    "note",
)
#: (cluster, job_id, submit_ns): a row of ``jobs``.
DbKey = tuple[str, str, int]

_LOOKUP_CHUNK = 500
_UPDATED = tuple(c for c in JOB_COLUMNS if c not in ("cluster", "job_id", "submit_ns"))
_STORED = ("job_id", "submit_ns", *TRACKED, "first_seen_ns", "last_seen_ns")

Transaction = Callable[[str], AbstractContextManager[Connection]]


class StoredJob(NamedTuple):
    """What the store holds of one job, for the tracker."""

    job_id: str
    submit_ns: int
    #: The :data:`~collectbus.store.jobrows.TRACKED` fields as ``job_history`` text.
    tracked: tuple[str | None, ...]
    first_seen_ns: int
    last_seen_ns: int


@dataclass
class SchedulerRows:
    """The rows one collection of scheduler records writes.

    Built by the job tracker; the store writes them as they are, in the
    collection's transaction, and sets :attr:`stored` once that transaction
    committed with them (a part the database refused is left out, and
    :attr:`stored` stays False).
    """

    #: How many scheduler records these rows stand for (``Store.write`` counts them).
    records: int = 0
    #: New ``jobs`` rows, and changed ones, in ``JOB_COLUMNS`` order.
    inserts: dict[DbKey, list[object]] = field(default_factory=dict)
    updates: dict[DbKey, list[object]] = field(default_factory=dict)
    #: ``(last_seen_ns, cluster, job_id, submit_ns)`` of unchanged jobs seen again.
    touches: list[RowTuple] = field(default_factory=list)
    #: ``(state, cluster, job_id, submit_ns)`` of jobs gone from a complete listing.
    vanished: list[RowTuple] = field(default_factory=list)
    #: ``job_history`` rows, in ``HISTORY_COLUMNS`` order.
    history: list[RowTuple] = field(default_factory=list)
    nodes: list[RowTuple] = field(default_factory=list)
    queues: list[RowTuple] = field(default_factory=list)
    systems: list[RowTuple] = field(default_factory=list)
    stored: bool = False


def write_scheduler_rows(conn: Connection, rows: SchedulerRows, *, copy: bool) -> int:
    """Write ``rows`` on ``conn``; return how many snapshot rows were inserted."""
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    key_where = f"cluster = {mark} AND job_id = {mark} AND submit_ns = {mark}"
    bulk_insert(conn, "jobs", JOB_COLUMNS, [tuple(r) for r in rows.inserts.values()], copy=copy)
    if rows.updates:
        sets = ", ".join(f"{quote(c)} = {mark}" for c in _UPDATED)
        updates = [(*row[3:], *row[:3]) for row in rows.updates.values()]
        conn.exec_driver_sql(f"UPDATE jobs SET {sets} WHERE {key_where}", updates)
    if rows.touches:
        conn.exec_driver_sql(
            f"UPDATE jobs SET last_seen_ns = {mark} WHERE {key_where}", rows.touches
        )
    if rows.vanished:
        conn.exec_driver_sql(f"UPDATE jobs SET state = {mark} WHERE {key_where}", rows.vanished)
    bulk_insert(conn, "job_history", HISTORY_COLUMNS, rows.history, copy=copy)
    return write_snapshot_rows(conn, rows.nodes, rows.queues, rows.systems, copy=copy)


def _stored(rows: Iterator[Sequence[object]]) -> Iterator[StoredJob]:
    n = len(TRACKED)
    for row in rows:
        tracked = tuple(None if v is None else str(v) for v in row[2 : 2 + n])
        job_id, submit_ns, first, last = row[0], row[1], row[2 + n], row[3 + n]
        assert isinstance(job_id, str)
        assert isinstance(submit_ns, int)
        assert isinstance(first, int)
        assert isinstance(last, int)
        yield StoredJob(job_id, submit_ns, tracked, first, last)


class JobTables:
    """``Store.jobs``: read snapshots of the job tables, for the job tracker
    and the readers of :mod:`collectbus.store.jobquery`."""

    def __init__(self, reader: Transaction) -> None:
        self._reader = reader

    def reading(self, action: str = "read jobs") -> AbstractContextManager[Connection]:
        """A read snapshot for the readers of :mod:`collectbus.store.jobquery`."""
        return self._reader(action)

    def current(self, cluster: str, *, ended_since_ns: int | None) -> list[StoredJob]:
        """The stored jobs of ``cluster`` that have not ended, or were last seen at
        or after ``ended_since_ns`` (every job of it when None)."""
        c = jobs.c
        query = select(*(c[name] for name in _STORED)).where(c.cluster == cluster)
        if ended_since_ns is not None:
            query = query.where(c.state.not_in(ENDED) | (c.last_seen_ns >= ended_since_ns))
        with self._reader("read jobs") as conn:
            return list(_stored(iter(conn.execute(query))))

    def named(self, cluster: str, job_ids: Sequence[str]) -> list[StoredJob]:
        """Every stored job of ``cluster`` with one of ``job_ids`` (any submit time)."""
        c = jobs.c
        out: list[StoredJob] = []
        if not job_ids:
            return out
        with self._reader("read jobs") as conn:
            for i in range(0, len(job_ids), _LOOKUP_CHUNK):
                chunk = list(job_ids[i : i + _LOOKUP_CHUNK])
                query = select(*(c[name] for name in _STORED)).where(
                    c.cluster == cluster, c.job_id.in_(chunk)
                )
                out.extend(_stored(iter(conn.execute(query))))
        return out
