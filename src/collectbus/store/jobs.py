"""Batch jobs: each collection diffed against the jobs already stored.

:class:`JobStore` keeps, per cluster, the current state of every job in
memory (loaded from ``jobs`` on first use). A collection is diffed against
it, and only what changed is written, in the collection's transaction:

- a job seen for the first time is inserted, with a ``job_history`` row
  ``state: -> <state>`` (note ``first seen``);
- a job whose record differs from the stored one is updated, and each change
  of a tracked field (:data:`~collectbus.store.jobrows.TRACKED`: state,
  substate, queue, priority, exec_hosts, comment) is one ``job_history`` row
  with the old and the new value and the time it was observed;
- a job whose record did not change is not written at all; its
  ``last_seen_ns`` is written again once every :data:`LAST_SEEN_EVERY_NS`;
- after a **complete** listing of a cluster, each job of that cluster that is
  neither finished nor in the listing becomes ``disappeared`` (a history row
  says so). A finished record that comes later (PBS ``qstat -x``, Slurm
  ``sacct``) completes it, and its history row notes that the end was seen
  after the job disappeared. A partial or failed listing marks nothing.

A collection is a complete listing when its :class:`CollectionEvent` has
status ``ok``, is not stale and carries the detail :data:`COMPLETE_LISTING`;
the clusters it covers are named by ``("cluster", name)`` details, or else
are those of its job records (so an empty cluster can still be listed). The
collectors' side of this contract is described once, in
:mod:`collectbus.collectors.base` ("Job listings").

A job is keyed by (cluster, job_id, submit_ns): the same id with a new submit
time is a new job. A record without a submit time belongs to the newest job
of that id already stored, and is refused when there is none. A refused or
repaired record is one line (:mod:`collectbus.store.jobrows`) that names the
cluster and the job, counted in :class:`ApplyResult`; the rest of the
collection is stored.

The cache assumes one writer per cluster, as one daemon collects a cluster.
It is changed only once a transaction commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from operator import attrgetter

from sqlalchemy import Connection, insert

from collectbus.clock import NS_PER_S
from collectbus.records import (
    CLUSTER_DETAIL,
    COMPLETE_LISTING,
    FINAL_JOB_STATES,
    CollectionEvent,
    JobRecord,
    NodeRecord,
    QueueRecord,
    SystemRecord,
)
from collectbus.store.jobrows import (
    COL,
    TRACKED,
    job_row,
    key_problem,
    key_problem_of_cluster,
    tracked_text,
)
from collectbus.store.jobstate import (
    DISAPPEARED,
    LOGGED_PROBLEMS,
    NO_SUBMIT,
    ApplyResult,
    ClusterCache,
    Current,
    Key,
    Staged,
    event_row,
    fingerprint,
    load_cluster,
    lookup,
    write_staged,
)
from collectbus.store.schema import collection_log
from collectbus.store.snapshots import SnapshotWriter

log = logging.getLogger("collectbus.store.jobs")

#: An unchanged job's ``last_seen_ns`` is rewritten at most this often.
LAST_SEEN_EVERY_NS = 600 * NS_PER_S
SCHEDULER_RECORDS = (JobRecord, NodeRecord, QueueRecord, SystemRecord)
__all__ = ["COMPLETE_LISTING", "SCHEDULER_RECORDS", "JobStore", "complete_clusters"]
Transaction = Callable[[str], AbstractContextManager[Connection]]
_OBSERVED_NS = attrgetter("observed_ns")


def complete_clusters(records: Iterable[object], events: Iterable[CollectionEvent]) -> set[str]:
    """The clusters of which this collection is a complete listing of live jobs."""
    out: set[str] = set()
    for event in events:
        if event.stale or event.status != "ok" or COMPLETE_LISTING not in event.details:
            continue
        named = {value for key, value in event.details if key == CLUSTER_DETAIL}
        out |= named or {r.cluster for r in records if isinstance(r, JobRecord)}
    return out


class JobStore:
    """The ``jobs``, ``job_history`` and snapshot tables of one store."""

    def __init__(
        self, transaction: Transaction, reader: Transaction, *, copy: bool, scrub: bool = False
    ) -> None:
        self._transaction = transaction
        self._reader = reader
        #: PostgreSQL: insert with COPY.
        self._copy = copy
        #: Scrub personal fields from raw payloads (``[privacy] scrub``).
        self.scrub = scrub
        self.snapshots = SnapshotWriter()
        self._clusters: dict[str, ClusterCache] = {}
        #: Totals since this store was opened.
        self.refused_total = 0
        self.repaired_total = 0
        self.last_result = ApplyResult()

    # ------------------------------------------------------------ public

    def apply(
        self,
        records: Iterable[JobRecord | NodeRecord | QueueRecord | SystemRecord],
        *,
        complete: bool,
        clusters: Iterable[str] = (),
        event: CollectionEvent | None = None,
        now_ns: int | None = None,
    ) -> ApplyResult:
        """Diff and store one collection in one transaction (with ``event``, if given).

        ``complete`` says the job records are a complete listing of the live
        jobs of their clusters, and of ``clusters`` (which may have none).
        """
        batch = list(records)
        listed: set[str] = set()
        if complete:
            listed = set(clusters) | {r.cluster for r in batch if isinstance(r, JobRecord)}
        with self._transaction("write jobs") as conn:
            staged = self.stage(conn, batch, listed, now_ns=now_ns)
            if event is not None:
                conn.execute(insert(collection_log), [event_row(event)])
        self.commit(staged)
        return staged.result

    def reading(self, action: str = "read jobs") -> AbstractContextManager[Connection]:
        """A read snapshot for the readers of :mod:`collectbus.store.jobquery`."""
        return self._reader(action)

    def forget(self, cluster: str | None = None) -> None:
        """Drop the cache (of one cluster): it is reloaded from the database."""
        if cluster is None:
            self._clusters.clear()
        else:
            self._clusters.pop(cluster, None)

    def evict(self, older_than_ns: int) -> int:
        """Drop finished jobs last seen before ``older_than_ns`` from the cache
        (they are looked up in the database if they come back)."""
        dropped = 0
        for cache in self._clusters.values():
            old = [
                k for k, c in cache.jobs.items() if not c.live and c.last_seen_ns < older_than_ns
            ]
            for key in old:
                del cache.jobs[key]
            if old:
                cache.newest.clear()
                for job_id, submit_ns in cache.jobs:
                    if submit_ns > cache.newest.get(job_id, submit_ns - 1):
                        cache.newest[job_id] = submit_ns
            dropped += len(old)
        return dropped

    # ------------------------------------------------------------ staging

    def stage(
        self,
        conn: Connection,
        records: Sequence[object],
        complete: set[str],
        *,
        now_ns: int | None = None,
    ) -> Staged:
        """Diff ``records`` and write what changed on ``conn``; the cache is
        left as it is until :meth:`commit`."""
        staged = Staged()
        by_cluster: dict[str, list[JobRecord]] = {c: [] for c in complete}
        others: list[NodeRecord | QueueRecord | SystemRecord] = []
        for record in records:
            if isinstance(record, JobRecord):
                by_cluster.setdefault(record.cluster, []).append(record)
            elif isinstance(record, NodeRecord | QueueRecord | SystemRecord):
                others.append(record)
        for cluster, batch in by_cluster.items():
            latest = max(map(_OBSERVED_NS, batch), default=None)
            when = latest if now_ns is None else now_ns if latest is None else max(latest, now_ns)
            self._diff(conn, cluster, batch, staged, complete=cluster in complete, now_ns=when)
        write_staged(conn, staged, copy=self._copy)
        staged.result.snapshots = self.snapshots.write(conn, others, copy=self._copy)
        return staged

    def commit(self, staged: Staged) -> None:
        """Keep the staged cache entries: their transaction committed."""
        for cluster, entries in staged.entries.items():
            cache = self._clusters.setdefault(cluster, ClusterCache())
            for key, cur in entries.items():
                cache.put(key, cur)
        result = staged.result
        self.refused_total += result.refused
        self.repaired_total += result.repaired
        self.last_result = result
        hidden = len(result.messages) - LOGGED_PROBLEMS
        if hidden > 0:
            log.warning("jobs: %d more problems in this collection", hidden)

    def _diff(
        self,
        conn: Connection,
        cluster: str,
        batch: list[JobRecord],
        staged: Staged,
        *,
        complete: bool,
        now_ns: int | None,
    ) -> None:
        cluster_problem = key_problem_of_cluster(cluster)
        if cluster_problem is not None:
            for record in batch:
                staged.result.refused += 1
                staged.problem(repr(cluster), repr(record.job_id), f"refused: {cluster_problem}")
            return
        cache = self._clusters.get(cluster)
        if cache is None:
            cache = self._clusters[cluster] = load_cluster(conn, cluster, now_ns)
        entries = staged.entries.setdefault(cluster, {})
        result = staged.result
        seen: set[Key] = set()
        newest_get = cache.newest.get
        stored = cache.jobs
        pending: list[tuple[JobRecord, int]] = []
        stored_get, seen_add = stored.get, seen.add
        floor = NO_SUBMIT if now_ns is None else now_ns
        # One pass settles the unchanged jobs, usually nearly all of them.
        for record in batch:
            submit_ns = record.submit_ns
            if submit_ns is None:
                submit_ns = newest_get(record.job_id, NO_SUBMIT)
            key = (record.job_id, submit_ns)
            cur = (entries and entries.get(key)) or stored_get(key)
            if cur is None:
                pending.append((record, fingerprint(record)))
                continue
            if cur.record is not record:  # the very record stored is unchanged
                mark = fingerprint(record)
                if cur.fingerprint != mark:
                    pending.append((record, mark))
                    continue
            # Seen before with this very content: its key was checked then.
            seen_add(key)
            seen_ns = record.observed_ns
            if floor > seen_ns:
                seen_ns = floor
            if seen_ns > cur.last_seen_ns:
                if seen_ns - cur.stored_seen_ns < LAST_SEEN_EVERY_NS:
                    # Memory only: the database is within LAST_SEEN_EVERY_NS.
                    cur.last_seen_ns = seen_ns
                else:
                    self._seen_again(cluster, key, cur, seen_ns, staged)
        unchanged = len(batch) - len(pending)
        if pending:
            lookup(conn, cluster, cache, [record for record, _ in pending])
        for record, mark in pending:
            submit_ns = record.submit_ns
            if submit_ns is None:
                submit_ns = newest_get(record.job_id, NO_SUBMIT)
            key = (record.job_id, submit_ns)
            problem = key_problem(record)
            if problem is None and submit_ns == NO_SUBMIT:
                problem = "no submit time, and no earlier record of this job to take it from"
            if problem is not None:
                result.refused += 1
                staged.problem(cluster, repr(record.job_id), f"refused: {problem}")
                continue
            seen.add(key)
            cur = entries.get(key) or stored.get(key)
            self._changed(cluster, key, cur, record, mark, staged, now_ns=now_ns)
        result.unchanged += unchanged
        if complete and now_ns is not None:
            for key in cache.live - seen:
                cur = entries.get(key) or cache.jobs[key]
                if cur.live:
                    self._vanish(cluster, key, cur, now_ns, staged)

    def _seen_again(
        self, cluster: str, key: Key, cur: Current, observed_ns: int, staged: Staged
    ) -> None:
        """An unchanged job seen at a later time; its row is touched only when due."""
        if observed_ns - cur.stored_seen_ns < LAST_SEEN_EVERY_NS:
            # Memory only: what the database says is still within LAST_SEEN_EVERY_NS.
            cur.last_seen_ns = observed_ns
            return
        staged.entries[cluster][key] = Current(
            cur.tracked, cur.first_seen_ns, observed_ns, observed_ns, cur.fingerprint, cur.record
        )
        staged.touches.append((observed_ns, cluster, key[0], key[1]))

    def _changed(
        self,
        cluster: str,
        key: Key,
        cur: Current | None,
        record: JobRecord,
        fingerprint: int,
        staged: Staged,
        *,
        now_ns: int | None = None,
    ) -> None:
        job = f"{record.job_id}"
        problems: list[str] = []
        # A record given again unchanged by its collector keeps the time it was
        # made; it was seen at this collection's time.
        observed = record.observed_ns if now_ns is None else max(record.observed_ns, now_ns)
        first_seen = (
            record.observed_ns if cur is None else min(cur.first_seen_ns, record.observed_ns)
        )
        row = job_row(
            record,
            key[1],
            first_seen,
            scrub=self.scrub,
            report=lambda name, text: problems.append(f"{name}: {text}"),
        )
        if cur is not None and cur.last_seen_ns > observed:
            row[COL["last_seen_ns"]] = cur.last_seen_ns
        elif observed > record.observed_ns:
            row[COL["last_seen_ns"]] = observed
        if problems:
            staged.result.repaired += 1
            staged.problem(cluster, job, "stored, " + "; ".join(problems))
        tracked = tracked_text(row)
        db_key = (cluster, key[0], key[1])
        if cur is None:
            staged.inserts[db_key] = row
            staged.result.inserted += 1
            staged.history.append((*db_key, observed, "state", None, tracked[0], "first seen"))
        else:
            if db_key in staged.inserts:
                staged.inserts[db_key] = row
            else:
                staged.updates[db_key] = row
                staged.result.updated += 1
            for name, old, new in zip(TRACKED, cur.tracked, tracked, strict=True):
                if old == new:
                    continue
                note = None
                if name == "state" and old == DISAPPEARED:
                    note = (
                        "end seen after the job disappeared"
                        if new in FINAL_JOB_STATES
                        else "seen again after it disappeared"
                    )
                staged.history.append((*db_key, observed, name, old, new, note))
        last = row[COL["last_seen_ns"]]
        assert isinstance(last, int)
        staged.entries[cluster][key] = Current(tracked, first_seen, last, last, fingerprint, record)

    def _vanish(self, cluster: str, key: Key, cur: Current, now_ns: int, staged: Staged) -> None:
        db_key = (cluster, key[0], key[1])
        staged.vanished.append((DISAPPEARED, *db_key))
        staged.history.append(
            (
                *db_key,
                now_ns,
                "state",
                cur.tracked[0],
                DISAPPEARED,
                "gone from a complete listing with no end seen",
            )
        )
        staged.result.disappeared += 1
        tracked = (DISAPPEARED, *cur.tracked[1:])
        staged.entries[cluster][key] = Current(
            tracked, cur.first_seen_ns, cur.last_seen_ns, cur.stored_seen_ns, None
        )
