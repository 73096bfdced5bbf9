"""The pipeline's store writer: a bus subscriber that writes each collection.

A store that cannot be reached, at start or later, is one outage: the bus goes
on collecting into the sink's bounded buffer, the outage is logged once, the
sink tries again with a backoff, and the buffered collections are written,
oldest first, once the store is back (as Telegraf's output buffer does). A
database that stops answering is an outage too: each write has a deadline
(``store.statement_timeout``, :mod:`collectbus.store.deadline`).

Data the database refuses is not an outage: retrying it can never succeed.
The store leaves the refused values and rows out, keeps them in its
quarantine table and writes the rest of the collection
(:mod:`collectbus.store.quarantine`); a collection refused as a whole all
the same is counted in ``refused_collections``, logged once per cause, and
dropped, so that it never holds back the collections after it.

Scheduler records pass through the job tracker on their way
(:class:`~collectbus.jobtrack.writer.TrackedStore`): the store is given the
rows of what changed, and the tracker keeps what was written.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from collectbus.bus import Result
from collectbus.clock import NS_PER_S, Clock
from collectbus.errors import SchemaError, StoreError
from collectbus.jobtrack.state import CACHE_HORIZON_NS
from collectbus.jobtrack.writer import TrackedStore
from collectbus.records import ProcessSample, Record
from collectbus.store import Store
from collectbus.store.dberrors import RefusedError
from collectbus.store.retention import RetentionLimits

log = logging.getLogger("collectbus.daemon")

#: A store that failed is tried again this long after, then twice as long after
#: each further failure, up to STORE_RETRY_MAX_S.
STORE_RETRY_MIN_S = 1.0
STORE_RETRY_MAX_S = 30.0
#: How often a SQLite store's WAL is checkpointed and truncated.
CHECKPOINT_EVERY_S = 60.0


class StoreSink:
    """A bus subscriber that writes each collection to the store.

    One collection is one transaction: a crash loses at most the collection
    being written. A write that fails (database unreachable, locked,
    restarting or not answering, disk full) is counted, and the collection waits in a bounded
    retry buffer, oldest first, to be written before the next one, so a
    database that is away for a while loses nothing. When the buffer is full
    its oldest collection is dropped and counted in ``lost_collections``, as
    Telegraf's output buffer does. An outage is logged in one line when it
    begins and one when it ends; meanwhile the store is tried again at the
    first collection after a backoff (``retry_min_s``, doubled at each
    failure, up to ``retry_max_s``).

    With ``migrate=True`` the schema is brought up to date before the first
    write, with the same retries. A :class:`SchemaError` from it (a schema
    newer than this collectbus) cannot be retried away: it is kept in
    ``fatal``, ``on_fatal`` is called, and nothing more is written.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        compact_after_s: float,
        compact_every_s: float,
        retry_buffer: int = 1000,
        retry_min_s: float = STORE_RETRY_MIN_S,
        retry_max_s: float = STORE_RETRY_MAX_S,
        retention: RetentionLimits | None = None,
        retention_every_s: float = 3600.0,
        migrate: bool = False,
        on_fatal: Callable[[SchemaError], None] | None = None,
        checkpoint_every_s: float = CHECKPOINT_EVERY_S,
        scrub: bool = False,
    ) -> None:
        self.store = store
        #: The job tracker in front of the store; ``scrub`` is ``[privacy] scrub``.
        self.jobs = TrackedStore(store, scrub=scrub)
        self.clock = clock
        self.compact_after_s = compact_after_s
        self.compact_every_ns = int(compact_every_s * NS_PER_S)
        self._next_compact_ns = clock.monotonic_ns() + self.compact_every_ns
        self._pending: deque[tuple[Record, ...]] = deque()
        self._retry_buffer = retry_buffer
        self.written_collections = 0
        self.written_records = 0
        self.failed_writes = 0
        self.lost_collections = 0
        #: Collections the database refused as a whole: dropped, never retried.
        self.refused_collections = 0
        self._refusals_logged: set[str] = set()
        self.last_error: str | None = None
        #: The schema error that stopped the writing (see the class docstring).
        self.fatal: SchemaError | None = None
        self._on_fatal = on_fatal
        self._migrated = not migrate
        self._retry_min_ns = int(retry_min_s * NS_PER_S)
        self._retry_max_ns = int(retry_max_s * NS_PER_S)
        self._failures = 0  # consecutive
        self._retry_at_ns = 0
        self._outage_ns = 0  # when the current outage began
        self._lost_before_outage = 0
        self._written_before_outage = 0
        #: Held while writing, so that :meth:`drain` at stop never races the bus thread.
        self._writing = threading.Lock()
        self.compactions = 0
        #: Scheduler-table retention, applied every ``retention_every_s``.
        self.retention = retention
        self.retention_every_ns = int(retention_every_s * NS_PER_S)
        self._next_cleanup_ns = clock.monotonic_ns()
        self.cleanups = 0
        #: SQLite: the WAL is checkpointed this often, so that it cannot grow
        #: without end while a nearly full disk stops the automatic checkpoints.
        self.checkpoint_every_ns = int(checkpoint_every_s * NS_PER_S)
        self._next_checkpoint_ns = clock.monotonic_ns() + self.checkpoint_every_ns
        self.checkpoints = 0

    @property
    def pending(self) -> int:
        """Collections waiting to be written again."""
        return len(self._pending)

    def __call__(self, result: Result) -> None:
        if result.stale:
            # A stale result repeats data that is stored already; keep only its log entry.
            batch: tuple[Record, ...] = (result.event,)
        else:
            # The top processes are for the bus's subscribers: no table holds
            # them yet, and their collection_log entry is kept.
            batch = (*(r for r in result.records if not isinstance(r, ProcessSample)), result.event)
        with self._writing:
            if len(self._pending) >= self._retry_buffer:
                self._pending.popleft()
                self.lost_collections += 1
            self._pending.append(batch)
            if self.clock.monotonic_ns() < self._retry_at_ns or not self._write_pending():
                return
            self._housekeeping()

    def flush(self) -> None:
        """Try the store now, backoff or not: migrate if that is still to do,
        write the waiting collections (the daemon, at start and at stop).

        Skipped while the bus thread is still inside a write it was given up on.
        """
        if (self._pending or not self._migrated) and self._writing.acquire(blocking=False):
            try:
                self._write_pending()
            finally:
                self._writing.release()

    def _write_pending(self) -> bool:
        """Migrate once if asked to, then write the waiting collections, oldest
        first; False if the store failed."""
        if self.fatal is not None:
            return False
        try:
            if not self._migrated:
                self.store.migrate()
                self._migrated = True
            if self._failures:
                # After a failure (a full disk?), room first: the WAL checkpointed.
                self.store.checkpoint()
            while self._pending:
                head = self._pending[0]
                try:
                    self.jobs.write(head)
                except RefusedError as err:
                    self._pending.popleft()
                    self._refused(err)
                    continue
                self._pending.popleft()
                self.written_collections += 1
                self.written_records += len(head) - 1
        except SchemaError as err:
            if self._migrated:  # tables gone under a running writer: an outage like any other
                self._failed(err)
                return False
            self.fatal = err
            self.last_error = str(err)
            if self._on_fatal is not None:
                self._on_fatal(err)
            return False
        except StoreError as err:
            self._failed(err)
            return False
        if self._failures:
            self._recovered()
        return True

    def _refused(self, err: RefusedError) -> None:
        """Drop a collection the database refused; log each cause once."""
        self.refused_collections += 1
        self.last_error = str(err)
        cause = str(err).split(": ", 1)[-1]
        if cause in self._refusals_logged:
            log.debug("store: collection refused again: %s", err)
            return
        self._refusals_logged.add(cause)
        log.error(
            "store: %s; the collection was dropped, not retried: the collections after it "
            "are written as usual (further refusals for this cause are counted, not logged)",
            err,
        )

    def _failed(self, err: StoreError) -> None:
        now = self.clock.monotonic_ns()
        self.failed_writes += 1
        self.last_error = str(err)
        self._failures += 1
        delay = min(self._retry_min_ns << min(self._failures - 1, 64), self._retry_max_ns)
        self._retry_at_ns = now + delay
        if self._failures > 1:
            log.debug("store: still failing, next try in %g s: %s", delay / NS_PER_S, err)
            return
        self._outage_ns = now
        self._lost_before_outage = self.lost_collections
        self._written_before_outage = self.written_collections
        hint = f" (hint: {err.hint})" if err.hint else ""
        log.error(
            "store: %s%s; collecting goes on, keeping up to %d collections to write "
            "once the store is back, retrying with a backoff of up to %g s",
            err,
            hint,
            self._retry_buffer,
            self._retry_max_ns / NS_PER_S,
        )

    def _recovered(self) -> None:
        log.info(
            "store: %s is back after %.0f s: %d collections written, %d dropped, %d failed tries",
            self.store.url,
            (self.clock.monotonic_ns() - self._outage_ns) / NS_PER_S,
            self.written_collections - self._written_before_outage,
            self.lost_collections - self._lost_before_outage,
            self._failures,
        )
        self._failures = 0
        self._retry_at_ns = 0

    def _housekeeping(self) -> None:
        if self.clock.monotonic_ns() >= self._next_checkpoint_ns:
            self._next_checkpoint_ns = self.clock.monotonic_ns() + self.checkpoint_every_ns
            if self.store.checkpoint():
                self.checkpoints += 1
        if self.clock.monotonic_ns() >= self._next_compact_ns:
            self._next_compact_ns = self.clock.monotonic_ns() + self.compact_every_ns
            self.compact()
        if self.retention is not None and self.clock.monotonic_ns() >= self._next_cleanup_ns:
            self._next_cleanup_ns = self.clock.monotonic_ns() + self.retention_every_ns
            self.cleanup()

    def cleanup(self) -> None:
        """Apply the retention limits; a failure is logged and tried at the next turn."""
        if self.retention is None:
            return
        try:
            stats = self.store.cleanup(self.retention)
            self.cleanups += 1
            # The tracker would otherwise hold every job ever seen.
            self.jobs.tracker.evict(self.clock.time_ns() - CACHE_HORIZON_NS)
        except StoreError as err:
            self.last_error = str(err)
            log.error("store: retention clean-up failed: %s", err)
            return
        if stats.total:
            log.info("store: retention removed %s", stats.rows)

    def compact(self) -> None:
        try:
            self.store.compact(older_than_s=self.compact_after_s)
            self.compactions += 1
        except StoreError as err:
            self.last_error = str(err)
            log.error("store: compaction failed: %s", err)
