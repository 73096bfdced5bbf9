"""The collector contract.

A collector is anything with a ``name`` and a ``collect(ctx)`` method that
returns records; ``close()`` is optional. Collectors do their own I/O through
what they were given (a procfs root, a :class:`~collectbus.collectors.run.CommandRunner`)
and leave the parsing to pure functions in their ``parse.py``.

A collector that reads several sources reports the ones that failed with
:meth:`CollectContext.report` and returns what it could read: one malformed
file never costs the rest of the sample. An exception out of ``collect`` means
the whole collection failed; the bus logs it, backs off and serves the last
good result, marked stale.

Job listings
------------
The job tracker (:mod:`collectbus.jobtrack.tracker`) marks a job
``disappeared`` when it is neither finished nor in a **complete** listing of
its cluster's live jobs. A jobs collector says which listings are complete
with :meth:`CollectContext.job_listing`, which puts two details in the
collection's event:

- ``("cluster", NAME)`` (:data:`~collectbus.records.CLUSTER_DETAIL`): the
  cluster the listing covers, so that a cluster with no jobs at all is listed;
- ``("job_listing", "complete")`` (:data:`~collectbus.records.COMPLETE_LISTING`)
  only when every live job the scheduler listed has its record, and
  ``("job_listing", "partial")`` when some may be missing.

The store trusts a listing only when the event is also ``ok`` and not stale:
a ``partial`` collection (a problem was reported), a failed one (``error``,
``timeout``: it carries no details) or a stale one marks nothing. A collector
that filters its jobs by something that changes during a job's life (its
state) must not call its listing complete.

Reservation listings follow the same rule with their own detail,
``("reservation_listing", "complete")``
(:data:`~collectbus.records.COMPLETE_RESERVATIONS`), given by
:meth:`CollectContext.reservation_listing`: a reservation of the cluster
absent from a complete listing has ended or gone
(:mod:`collectbus.jobtrack.reservations`). It never says anything of jobs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from collectbus.clock import Clock, SystemClock
from collectbus.errors import CollectError
from collectbus.records import CLUSTER_DETAIL, JOB_LISTING, RESERVATION_LISTING, Record


@dataclass(slots=True, kw_only=True)
class CollectContext:
    """What the bus hands a collector for one collection."""

    host: str
    clock: Clock = field(default_factory=SystemClock)
    #: Monotonic deadline of this collection, or None for no deadline.
    deadline_ns: int | None = None
    #: Problems reported during this collection (partial failures).
    problems: list[CollectError] = field(default_factory=list)
    #: Facts about this collection for ``CollectionEvent.details`` (key, value).
    details: list[tuple[str, str]] = field(default_factory=list)

    def report(self, error: CollectError) -> None:
        """Record a failed part of the collection; the rest goes on."""
        self.problems.append(error)

    def detail(self, key: str, value: str) -> None:
        """Note a fact about this collection (what was repaired, whether a listing
        was complete); the bus puts it in the collection's event."""
        self.details.append((key, value))

    def job_listing(self, cluster: str, *, complete: bool) -> None:
        """Say whether this collection lists every live job of ``cluster``
        (see "Job listings" above)."""
        self.detail(CLUSTER_DETAIL, cluster)
        self.detail(JOB_LISTING, "complete" if complete else "partial")

    def reservation_listing(self, cluster: str, *, complete: bool) -> None:
        """Say whether this collection lists every reservation of ``cluster``
        (see "Job listings" above: the same rule, for reservations)."""
        self.detail(CLUSTER_DETAIL, cluster)
        self.detail(RESERVATION_LISTING, "complete" if complete else "partial")


@runtime_checkable
class Collector(Protocol):
    """A source of records for the bus."""

    name: str

    def collect(self, ctx: CollectContext) -> Iterable[Record]:
        """Collect once and return the records."""
        ...


def close_collector(collector: Collector) -> None:
    """Call ``collector.close()`` when the collector has one."""
    close = getattr(collector, "close", None)
    if callable(close):
        close()
