"""Retention: how long the history tables keep their rows.

Five limits, each in days, each optional (None keeps everything):

- ``job_history_days``: ``job_history`` rows observed before the cut-off;
- ``snapshot_days``: ``node_snapshots``, ``queue_snapshots`` and
  ``system_snapshots`` rows observed before the cut-off;
- ``jobs_days``: ``jobs`` rows last seen before the cut-off, finished or
  disappeared, **and with no ``job_history`` row left**: a job is never
  deleted while its history is still kept, so its history always has a job.
- ``collection_log_days``: ``collection_log`` rows of collections started
  before the cut-off;
- ``quarantine_days``: ``quarantine`` rows stored before the cut-off (a NIC
  that always prints 2^64 - 1 adds one per collection).

The history is cleaned first, so one pass with equal limits removes both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Connection, Table, and_, delete, exists, func, select

from collectbus.records import FINAL_JOB_STATES
from collectbus.store.schema import (
    collection_log,
    job_history,
    jobs,
    node_snapshots,
    quarantine,
    queue_snapshots,
    system_snapshots,
)

NS_PER_DAY = 86400 * 1_000_000_000
_ENDED = (*sorted(FINAL_JOB_STATES), "disappeared")


@dataclass(frozen=True, slots=True)
class RetentionLimits:
    job_history_days: float | None = None
    snapshot_days: float | None = None
    jobs_days: float | None = None
    collection_log_days: float | None = None
    quarantine_days: float | None = None


@dataclass
class CleanupStats:
    """Rows deleted (or, in a dry run, that would be) per table."""

    dry_run: bool = False
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def cleanup(
    conn: Connection, limits: RetentionLimits, *, now_ns: int, dry_run: bool = False
) -> CleanupStats:
    """Delete (or count, if ``dry_run``) what ``limits`` no longer keep."""
    stats = CleanupStats(dry_run=dry_run)

    def cut(days: float) -> int:
        return now_ns - int(days * NS_PER_DAY)

    def run(name: str, table: Table, where: ColumnElement[bool]) -> None:
        if dry_run:
            query = select(func.count()).select_from(table).where(where)
            stats.rows[name] = int(conn.execute(query).scalar_one())
        else:
            stats.rows[name] = conn.execute(delete(table).where(where)).rowcount

    if limits.job_history_days is not None:
        run("job_history", job_history, job_history.c.observed_ns < cut(limits.job_history_days))
    if limits.snapshot_days is not None:
        cutoff = cut(limits.snapshot_days)
        for table in (node_snapshots, queue_snapshots, system_snapshots):
            run(table.name, table, table.c.observed_ns < cutoff)
    if limits.jobs_days is not None:
        h, j = job_history.c, jobs.c
        history_left = exists().where(
            and_(h.cluster == j.cluster, h.job_id == j.job_id, h.submit_ns == j.submit_ns)
        )
        if dry_run and limits.job_history_days is not None:
            # The history rows this pass would delete do not count as kept.
            history_left = history_left.where(h.observed_ns >= cut(limits.job_history_days))
        run(
            "jobs",
            jobs,
            and_(j.last_seen_ns < cut(limits.jobs_days), j.state.in_(_ENDED), ~history_left),
        )
    if limits.collection_log_days is not None:
        cutoff = cut(limits.collection_log_days)
        run("collection_log", collection_log, collection_log.c.started_ns < cutoff)
    if limits.quarantine_days is not None:
        cutoff = cut(limits.quarantine_days)
        run("quarantine", quarantine, quarantine.c.stored_ns < cutoff)
    return stats
