"""The job tracker in front of a store: collections in, rows written.

:class:`TrackedStore` is what the store writer of the pipeline
(:mod:`collectbus.pipeline.sink`) writes through: the scheduler records of a
collection go to the :class:`~collectbus.jobtrack.tracker.JobTracker`, the
rows it returns and the rest of the collection to
:meth:`collectbus.store.Store.write`, in one transaction, and the tracker
keeps what changed once that transaction committed.
"""

from __future__ import annotations

from collections.abc import Iterable

from collectbus.jobtrack.reservations import ReservationTracker, complete_reservation_clusters
from collectbus.jobtrack.state import ApplyResult
from collectbus.jobtrack.tracker import (
    SCHEDULER_RECORDS,
    JobTracker,
    SchedulerRecord,
    complete_clusters,
)
from collectbus.records import CollectionEvent, JobRecord, Record, ReservationRecord
from collectbus.store.store import Store


class TrackedStore:
    """A store with a job tracker in front of it."""

    def __init__(self, store: Store, *, scrub: bool = False) -> None:
        self.store = store
        #: Reads what the store holds of a cluster when it first sees it.
        self.tracker = JobTracker(store.jobs, scrub=scrub)
        #: The same for reservations (:mod:`collectbus.jobtrack.reservations`).
        self.reservations = ReservationTracker(store.reservations, scrub=scrub)

    def write(self, records: Iterable[Record]) -> int:
        """Store one collection in one transaction, its scheduler records
        tracked; return the records stored (as :meth:`Store.write`)."""
        batch = list(records)
        # One pass sorts a collection of any size (a PBS listing: 10,000 jobs).
        scheduler: list[SchedulerRecord] = []
        reserved: list[ReservationRecord] = []
        others: list[Record] = []
        for record in batch:
            if isinstance(record, SCHEDULER_RECORDS):
                scheduler.append(record)
            else:
                others.append(record)
                if isinstance(record, ReservationRecord):
                    reserved.append(record)
        events = [r for r in others if isinstance(r, CollectionEvent)]
        resv_listed = complete_reservation_clusters(events)
        if reserved or resv_listed:
            return self._write_reservations(batch, reserved, events, resv_listed)
        listed = complete_clusters(scheduler, events)
        if not scheduler and not listed:
            return self.store.write(batch)
        now_ns = max((e.started_ns for e in events), default=None)
        tracked = self.tracker.track(scheduler, listed=listed, now_ns=now_ns)
        written = self.store.write([tracked.rows, *others])
        if tracked.rows.stored:
            self.tracker.commit(tracked)
        return written

    def _write_reservations(
        self,
        batch: list[Record],
        reserved: list[ReservationRecord],
        events: list[CollectionEvent],
        listed: set[str],
    ) -> int:
        """A reservations collection: tracked, then stored with the rest."""
        now_ns = max((e.started_ns for e in events), default=None)
        tracked = self.reservations.track(reserved, listed=listed, now_ns=now_ns)
        others = [r for r in batch if not isinstance(r, ReservationRecord)]
        written = self.store.write([tracked.rows, *others])
        if tracked.rows.stored:
            self.reservations.commit(tracked)
        return written

    def apply(
        self,
        records: Iterable[SchedulerRecord],
        *,
        complete: bool,
        clusters: Iterable[str] = (),
        event: CollectionEvent | None = None,
        now_ns: int | None = None,
    ) -> ApplyResult:
        """Track and store one collection in one transaction (with ``event``, if given).

        ``complete`` says the job records are a complete listing of the live
        jobs of their clusters, and of ``clusters`` (which may have none).
        """
        batch = list(records)
        listed: set[str] = set()
        if complete:
            listed = set(clusters) | {r.cluster for r in batch if isinstance(r, JobRecord)}
        tracked = self.tracker.track(batch, listed=listed, now_ns=now_ns)
        self.store.write([tracked.rows] if event is None else [tracked.rows, event])
        if tracked.rows.stored:
            self.tracker.commit(tracked)
        return tracked.result
