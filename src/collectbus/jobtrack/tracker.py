"""The job tracker: each scheduler collection turned into the rows that change.

:class:`JobTracker` keeps, per cluster, the current state of every job in
memory, read from the store on first use of the cluster (so a restarted
daemon goes on where it stopped). A collection is diffed against it, and the
result is only what changed (:class:`~collectbus.store.jobtables.SchedulerRows`),
for the store to write in the collection's transaction:

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
- nodes, queues and the server become snapshot rows
  (:mod:`collectbus.jobtrack.snapshots`).

A collection is a complete listing when its :class:`CollectionEvent` has
status ``ok``, is not stale and carries the detail :data:`COMPLETE_LISTING`;
the clusters it covers are named by ``("cluster", name)`` details, or else
are those of its job records (so an empty cluster can still be listed). The
collectors' side of this contract is described once, in
:mod:`collectbus.collectors.base` ("Job listings").

Which job a record belongs to is decided by
:func:`~collectbus.jobtrack.identity.job_key` alone. A refused or repaired
record is one line (:mod:`collectbus.jobtrack.rows`) that names the cluster
and the job, counted in :class:`ApplyResult`; the rest of the collection is
written.

The tracker assumes one writer per cluster, as one daemon collects a cluster.
What it holds changes only in :meth:`JobTracker.commit`, once the store has
written the rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter

from collectbus.clock import NS_PER_S
from collectbus.jobtrack.identity import NO_SUBMIT, JobKey, job_key
from collectbus.jobtrack.rows import job_row, key_problem, key_problem_of_cluster, tracked_text
from collectbus.jobtrack.snapshots import NodeMemory
from collectbus.jobtrack.state import (
    CACHE_HORIZON_NS,
    LOGGED_PROBLEMS,
    ApplyResult,
    ClusterState,
    Current,
    StoredJobs,
    Tracked,
    fingerprint,
    log,
)
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
from collectbus.store.jobrows import COL, TRACKED
from collectbus.store.jobtables import DISAPPEARED

#: An unchanged job's ``last_seen_ns`` is rewritten at most this often.
LAST_SEEN_EVERY_NS = 600 * NS_PER_S
SCHEDULER_RECORDS = (JobRecord, NodeRecord, QueueRecord, SystemRecord)
SchedulerRecord = JobRecord | NodeRecord | QueueRecord | SystemRecord
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


class JobTracker:
    """The state of every job of the clusters seen, and the diff of each collection."""

    def __init__(self, stored: StoredJobs, *, scrub: bool = False) -> None:
        #: Where the jobs the tracker does not hold are read from.
        self._stored = stored
        #: Scrub personal fields from raw payloads (``[privacy] scrub``).
        self.scrub = scrub
        self.nodes = NodeMemory()
        self._clusters: dict[str, ClusterState] = {}
        #: Totals since this tracker started.
        self.refused_total = 0
        self.repaired_total = 0
        self.last_result = ApplyResult()

    # ------------------------------------------------------------ public

    def track(
        self,
        records: Sequence[object],
        *,
        listed: Iterable[str] = (),
        now_ns: int | None = None,
    ) -> Tracked:
        """The rows that ``records`` (one collection) change; nothing held
        changes until :meth:`commit`.

        ``listed`` are the clusters of which the job records are a complete
        listing (:func:`complete_clusters`); ``now_ns`` is when the collection
        was made, if known.
        """
        tracked = Tracked()
        complete = set(listed)
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
            self._diff(cluster, batch, tracked, complete=cluster in complete, now_ns=when)
        snapshots = tracked.snapshots = self.nodes.rows(others)
        rows = tracked.rows
        rows.records = sum(map(len, by_cluster.values())) + len(others)
        rows.nodes, rows.queues, rows.systems = snapshots.nodes, snapshots.queues, snapshots.systems
        tracked.result.history = len(rows.history)
        tracked.result.snapshots = len(rows.nodes) + len(rows.queues) + len(rows.systems)
        return tracked

    def commit(self, tracked: Tracked) -> None:
        """Keep what ``tracked`` changed: the store has written its rows."""
        for cluster, entries in tracked.entries.items():
            state = self._clusters.setdefault(cluster, ClusterState())
            for key, cur in entries.items():
                state.put(key, cur)
        self.nodes.commit(tracked.snapshots)
        result = tracked.result
        self.refused_total += result.refused
        self.repaired_total += result.repaired
        self.last_result = result
        hidden = len(result.messages) - LOGGED_PROBLEMS
        if hidden > 0:
            log.warning("jobs: %d more problems in this collection", hidden)

    def forget(self, cluster: str | None = None) -> None:
        """Drop what is held (of one cluster): it is read from the store again."""
        if cluster is None:
            self._clusters.clear()
            self.nodes.forget()
        else:
            self._clusters.pop(cluster, None)

    def evict(self, older_than_ns: int) -> int:
        """Drop finished jobs last seen before ``older_than_ns`` (they are
        read from the store if they come back); return how many."""
        dropped = 0
        for state in self._clusters.values():
            old = [
                k for k, c in state.jobs.items() if not c.live and c.last_seen_ns < older_than_ns
            ]
            for key in old:
                del state.jobs[key]
            if old:
                state.newest.clear()
                for job_id, submit_ns in state.jobs:
                    if submit_ns > state.newest.get(job_id, submit_ns - 1):
                        state.newest[job_id] = submit_ns
            dropped += len(old)
        return dropped

    # ------------------------------------------------------------ reading the store

    def _state(self, cluster: str, now_ns: int | None) -> ClusterState:
        state = self._clusters.get(cluster)
        if state is None:
            since = None if now_ns is None else now_ns - CACHE_HORIZON_NS
            state = ClusterState()
            for job in self._stored.current(cluster, ended_since_ns=since):
                state.put((job.job_id, job.submit_ns), Current.stored(job))
            self._clusters[cluster] = state
        return state

    def _look_up(self, cluster: str, state: ClusterState, batch: list[JobRecord]) -> None:
        """Read the stored jobs that ``batch`` names and ``state`` does not hold,
        so that :func:`job_key` knows every submit time there is."""
        missing = sorted(
            {
                r.job_id
                for r in batch
                if (
                    (r.submit_ns is None and r.job_id not in state.newest)
                    or (r.submit_ns is not None and (r.job_id, r.submit_ns) not in state.jobs)
                )
                and key_problem(r) is None
            }
        )
        if not missing:
            return
        for job in self._stored.named(cluster, missing):
            key = (job.job_id, job.submit_ns)
            if key not in state.jobs:
                state.put(key, Current.stored(job))

    # ------------------------------------------------------------ diffing

    def _diff(
        self,
        cluster: str,
        batch: list[JobRecord],
        tracked: Tracked,
        *,
        complete: bool,
        now_ns: int | None,
    ) -> None:
        cluster_problem = key_problem_of_cluster(cluster)
        if cluster_problem is not None:
            for record in batch:
                tracked.result.refused += 1
                tracked.problem(repr(cluster), repr(record.job_id), f"refused: {cluster_problem}")
            return
        state = self._state(cluster, now_ns)
        entries = tracked.entries.setdefault(cluster, {})
        result = tracked.result
        seen: set[JobKey] = set()
        newest = state.newest
        stored = state.jobs
        pending: list[tuple[JobRecord, int]] = []
        stored_get, seen_add = stored.get, seen.add
        floor = NO_SUBMIT if now_ns is None else now_ns
        # One pass settles the unchanged jobs, usually nearly all of them.
        for record in batch:
            key = job_key(record, newest)
            cur = (entries and entries.get(key)) or stored_get(key)
            if cur is None:
                pending.append((record, fingerprint(record)))
                continue
            if cur.record is not record:  # the very record written is unchanged
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
                    # Memory only: the store is within LAST_SEEN_EVERY_NS.
                    cur.last_seen_ns = seen_ns
                else:
                    self._seen_again(cluster, key, cur, seen_ns, tracked)
        unchanged = len(batch) - len(pending)
        if pending:
            self._look_up(cluster, state, [record for record, _ in pending])
        for record, mark in pending:
            key = job_key(record, newest)
            problem = key_problem(record)
            if problem is None and key[1] == NO_SUBMIT:
                problem = "no submit time, and no earlier record of this job to take it from"
            if problem is not None:
                result.refused += 1
                tracked.problem(cluster, repr(record.job_id), f"refused: {problem}")
                continue
            seen.add(key)
            cur = entries.get(key) or stored.get(key)
            self._changed(cluster, key, cur, record, mark, tracked, now_ns=now_ns)
        result.unchanged += unchanged
        if complete and now_ns is not None:
            for key in state.live - seen:
                cur = entries.get(key) or state.jobs[key]
                if cur.live:
                    self._vanish(cluster, key, cur, now_ns, tracked)

    def _seen_again(
        self, cluster: str, key: JobKey, cur: Current, observed_ns: int, tracked: Tracked
    ) -> None:
        """An unchanged job seen at a later time; its row is touched only when due."""
        if observed_ns - cur.stored_seen_ns < LAST_SEEN_EVERY_NS:
            # Memory only: what the store says is still within LAST_SEEN_EVERY_NS.
            cur.last_seen_ns = observed_ns
            return
        tracked.entries[cluster][key] = Current(
            cur.tracked, cur.first_seen_ns, observed_ns, observed_ns, cur.fingerprint, cur.record
        )
        tracked.rows.touches.append((observed_ns, cluster, key[0], key[1]))

    def _changed(
        self,
        cluster: str,
        key: JobKey,
        cur: Current | None,
        record: JobRecord,
        fingerprint: int,
        tracked: Tracked,
        *,
        now_ns: int | None = None,
    ) -> None:
        job = f"{record.job_id}"
        problems: list[str] = []
        rows = tracked.rows
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
            tracked.result.repaired += 1
            tracked.problem(cluster, job, "stored, " + "; ".join(problems))
        text = tracked_text(row)
        db_key = (cluster, key[0], key[1])
        if cur is None:
            rows.inserts[db_key] = row
            tracked.result.inserted += 1
            rows.history.append((*db_key, observed, "state", None, text[0], "first seen"))
        else:
            if db_key in rows.inserts:
                rows.inserts[db_key] = row
            else:
                rows.updates[db_key] = row
                tracked.result.updated += 1
            for name, old, new in zip(TRACKED, cur.tracked, text, strict=True):
                if old == new:
                    continue
                note = None
                if name == "state" and old == DISAPPEARED:
                    note = (
                        "end seen after the job disappeared"
                        if new in FINAL_JOB_STATES
                        else "seen again after it disappeared"
                    )
                rows.history.append((*db_key, observed, name, old, new, note))
        last = row[COL["last_seen_ns"]]
        assert isinstance(last, int)
        tracked.entries[cluster][key] = Current(text, first_seen, last, last, fingerprint, record)

    def _vanish(
        self, cluster: str, key: JobKey, cur: Current, now_ns: int, tracked: Tracked
    ) -> None:
        db_key = (cluster, key[0], key[1])
        tracked.rows.vanished.append((DISAPPEARED, *db_key))
        tracked.rows.history.append(
            (
                *db_key,
                now_ns,
                "state",
                cur.tracked[0],
                DISAPPEARED,
                "gone from a complete listing with no end seen",
            )
        )
        tracked.result.disappeared += 1
        text = (DISAPPEARED, *cur.tracked[1:])
        tracked.entries[cluster][key] = Current(
            text, cur.first_seen_ns, cur.last_seen_ns, cur.stored_seen_ns, None
        )
