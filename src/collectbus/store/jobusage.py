"""Per-job usage samples in and out of the ``job_usage`` table.

One row per :class:`~collectbus.records.JobUsageSample`: a job's usage on
one node at one tick (the ``jobusage`` collector). Written in bulk with the
rest of a collection (:mod:`collectbus.store.bulk`); read back per job,
oldest first.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, and_, func, select

from collectbus.records import JobUsageSample
from collectbus.store.bulk import RowTuple, bulk_insert
from collectbus.store.schema import job_usage, jobs

__all__ = [
    "COLUMNS",
    "PER_JOB_HOST",
    "insert_job_usage",
    "job_usage_rows",
    "job_usage_tuples",
    "read_job_usage",
    "read_usage_per_job_host",
    "where",
]

COLUMNS = (
    "cluster",
    "job_id",
    "host",
    "time_ns",
    "source",
    "cpu_seconds",
    "mem_bytes",
    "mem_peak_bytes",
    "read_bytes",
    "write_bytes",
    "processes",
)
_HOST, _TIME = COLUMNS.index("host"), COLUMNS.index("time_ns")


def job_usage_rows(samples: Iterable[JobUsageSample]) -> list[RowTuple]:
    """One tuple per sample, in :data:`COLUMNS` order."""
    return [
        (
            s.cluster,
            s.job_id,
            s.host,
            s.time_ns,
            s.source,
            s.cpu_seconds,
            s.mem_bytes,
            s.mem_peak_bytes,
            s.read_bytes,
            s.write_bytes,
            s.processes,
        )
        for s in samples
    ]


def where(row: RowTuple) -> tuple[str | None, int | None]:
    """The host and time a row names, for the quarantine's entries."""
    host, time_ns = row[_HOST], row[_TIME]
    return host if isinstance(host, str) else None, time_ns if isinstance(time_ns, int) else None


def insert_job_usage(conn: Connection, rows: list[RowTuple], *, copy: bool) -> None:
    """Bulk-insert job usage rows inside the caller's transaction."""
    bulk_insert(conn, job_usage.name, COLUMNS, rows, copy=copy)


def read_job_usage(
    conn: Connection,
    cluster: str,
    job_id: str,
    *,
    host: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> list[dict[str, object]]:
    """A job's samples (of one host, and in a window, if given), oldest first."""
    rows = job_usage_tuples(conn, cluster, job_id, host=host, since_ns=since_ns, until_ns=until_ns)
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows]


def job_usage_tuples(
    conn: Connection,
    cluster: str,
    job_id: str,
    *,
    host: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> list[tuple[object, ...]]:
    """:func:`read_job_usage`'s rows as tuples in :data:`COLUMNS` order."""
    c = job_usage.c
    query = select(*(c[name] for name in COLUMNS)).where(c.cluster == cluster, c.job_id == job_id)
    if host is not None:
        query = query.where(c.host == host)
    if since_ns is not None:
        query = query.where(c.time_ns >= since_ns)
    if until_ns is not None:
        query = query.where(c.time_ns < until_ns)
    query = query.order_by(c.time_ns, c.host, c.id)
    return [tuple(r) for r in conn.execute(query)]


#: The columns of :func:`read_usage_per_job_host`, in order.
PER_JOB_HOST = (
    "cluster",
    "job_id",
    "submit_ns",
    "username",
    "account",
    "queue",
    "state",
    "exec_hosts",
    "cpus_requested",
    "mem_requested_bytes",
    "start_ns",
    "end_ns",
    "host",
    "samples",
    "cpu_seconds",
    "mem_bytes",
    "mem_peak_bytes",
    "read_bytes",
    "write_bytes",
)


def read_usage_per_job_host(
    conn: Connection,
    *,
    since_ns: int | None,
    until_ns: int | None,
    now_ns: int,
    cluster: str | None = None,
) -> list[tuple[object, ...]]:
    """One row per started job that existed in the window (seen after
    ``since_ns``, submitted before ``until_ns``) and host it has samples on
    within its start-end window (end: ``now_ns`` while it runs): the job's
    fields and the largest value of each sample column there, in
    :data:`PER_JOB_HOST` order. A job without samples is one row whose
    ``host`` is None."""
    j, u = jobs.c, job_usage.c
    on = and_(
        u.cluster == j.cluster,
        u.job_id == j.job_id,
        u.time_ns >= j.start_ns,
        u.time_ns <= func.coalesce(j.end_ns, now_ns),
    )
    job_columns = [j[name] for name in PER_JOB_HOST[:12]]
    largest = [func.max(u[name]) for name in PER_JOB_HOST[14:]]
    query = (
        select(*job_columns, u.host, func.count(u.id), *largest)
        .select_from(jobs.outerjoin(job_usage, on))
        .where(j.start_ns.is_not(None))
        .group_by(j.cluster, j.job_id, j.submit_ns, u.host)
    )
    if cluster is not None:
        query = query.where(j.cluster == cluster)
    if since_ns is not None:
        query = query.where(j.last_seen_ns >= since_ns)
    if until_ns is not None:
        query = query.where(j.submit_ns < until_ns)
    return [tuple(row) for row in conn.execute(query)]
