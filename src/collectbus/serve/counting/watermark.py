"""How far an id-ordered table can be read without missing a row committed late.

Each metric source reads only the rows past the last id it counted, so every
row is counted exactly once and counters never go down, whatever retention
deletes below that id. The catch is the *upper* end of each read: the highest
id that is certainly final.

- **SQLite** has one writer at a time, and a row's id is given inside the
  writer's transaction, so the rows a reader sees are always a prefix of the
  ids: the highest visible id is safe.
- **PostgreSQL** hands ids out before commit. With several writers, id 11 can
  commit after id 12 has been read; a watermark moved to 12 would skip 11 for
  ever (docs/architecture.md, "Pitfalls"). So the watermark is held below the
  oldest transaction still in progress: each read first *notes*, in a short
  statement of its own, the highest visible id and the transactions then in
  progress in this database (their ids, from ``pg_locks``); the read itself
  then runs in a new snapshot. Once every noted transaction has ended for
  that snapshot (below its ``xmax`` and not in ``pg_snapshot_xip``), every
  transaction that could own an id up to the noted one has ended, and those
  ids are final. Transactions in other databases of the server cannot write
  to this table and are not waited for (``pg_snapshot_xmin`` alone is
  server-wide, so any long transaction anywhere would hold the counters
  back). When a writer stays open longer than ``max_hold_s`` (a safety
  window), the watermark moves on without it.

  One gap is left by that alone: a writer takes an id from the sequence a
  moment before it is given its transaction id, and in that moment it is
  invisible to ``pg_locks`` and to snapshots. So a noted id is *sealed* only
  by a later note, taken at least ``settle_s`` after it, whose writers are
  added to the ones to wait for: by then such a writer has its transaction id.
  With scrapes some seconds apart, the rows a scrape first sees are counted
  by the next one.

Ids that go backwards are detected when the highest id falls below the
watermark. On PostgreSQL, whose sequences never hand an id out twice, that
is a sequence that was reset (the table's sequence is below the watermark
too): the watermark restarts from zero and the rows then present, all new,
are counted; while the sequence is at or past the watermark only the newest
rows were deleted, and nothing changes. SQLite gives the next row the
highest id present plus one, so once the newest rows are deleted their ids
are handed out again: the watermark goes back to the highest id present, and
the rows written with the ids given again are counted. Rows written between
such a deletion and the next read cannot be told from older ones, and are
not counted; counting every row present again instead would add them all a
second time (a retention or a purge that happens to take the newest row).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from sqlalchemy import Connection, Table, func, select, text

from collectbus.clock import NS_PER_S, Clock

log = logging.getLogger("collectbus.serve")

#: How long a noted id waits for the transactions open at the time to end.
DEFAULT_MAX_HOLD_S = 30.0
#: How much later a second note must be taken to seal a noted id.
DEFAULT_SETTLE_S = 1.0

# Transactions (with a transaction id) in progress in this database now.
_WRITERS_HERE = (
    "SELECT l.transactionid::text::bigint FROM pg_locks l"
    " JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted"
    " AND a.datname = current_database()"
)
# This transaction's snapshot: its xmax, and the transactions it sees in progress.
_SNAPSHOT = (
    "SELECT pg_snapshot_xmax(s)::text::bigint,"
    " array(SELECT pg_snapshot_xip(s)::text::bigint)"
    " FROM (SELECT pg_current_snapshot() AS s) AS snapshot"
)
_XID_MOD = 2**32


def _ended(xid: int, xmax: int, in_progress: frozenset[int]) -> bool:
    """Whether the 32-bit transaction id ``xid`` (as ``pg_locks`` gives it) had
    ended in a snapshot with this ``xmax`` and these transactions in progress.

    A transaction at or past ``xmax`` is in the snapshot's future: it has not
    ended for it, though it is not in the list (PostgreSQL reuses a snapshot
    while no transaction ends, so its xmax can be older than the writer).
    Compared modulo 2**32, as PostgreSQL compares transaction ids.
    """
    before_xmax = (xid - xmax) % _XID_MOD >= 2**31
    return before_xmax and xid not in in_progress


@dataclass(slots=True)
class _Mark:
    """The highest visible id at one moment, and what has to end for it to be final."""

    top: int
    writers: frozenset[int]
    noted_ns: int
    #: A note at least ``settle_s`` later has added its writers.
    sealed: bool = False


class Watermark:
    """The id below which one table has been counted, and the next safe bound.

    Use :meth:`note` in its own short transaction, then :meth:`bound` as the
    first statement of the read transaction; count the rows with
    ``low < id <= bound``, and :meth:`advance` to ``bound`` once they are
    counted. Not thread-safe: its source serialises scrapes.
    """

    def __init__(
        self,
        table: Table,
        *,
        clock: Clock,
        max_hold_s: float = DEFAULT_MAX_HOLD_S,
        settle_s: float = DEFAULT_SETTLE_S,
    ):
        self.table = table
        self.clock = clock
        self.max_hold_ns = int(max_hold_s * NS_PER_S)
        self.settle_ns = int(settle_s * NS_PER_S)
        #: Every row with an id up to here has been counted.
        self.low = 0
        self._marks: deque[_Mark] = deque(maxlen=256)

    def _top(self, conn: Connection) -> int:
        top = conn.execute(select(func.max(self.table.c.id))).scalar_one()
        return int(top or 0)

    def _sequence_past(self, conn: Connection, low: int) -> bool:
        """PostgreSQL: the table's id sequence has handed out ``low`` or more."""
        last = conn.execute(
            text("SELECT pg_sequence_last_value(pg_get_serial_sequence(:t, 'id')::regclass)"),
            {"t": self.table.name},
        ).scalar()
        return last is not None and int(last) >= low

    def note(self, conn: Connection) -> None:
        """PostgreSQL: note the highest visible id and the writers in progress here."""
        if conn.dialect.name != "postgresql":
            return
        top = self._top(conn)
        writers = frozenset(int(x) for x in conn.exec_driver_sql(_WRITERS_HERE).scalars())
        now = self.clock.monotonic_ns()
        for mark in self._marks:
            if not mark.sealed and now - mark.noted_ns >= self.settle_ns:
                mark.writers |= writers
                mark.sealed = True
        if top > self.low and (not self._marks or top > self._marks[-1].top):
            self._marks.append(_Mark(top=top, writers=writers, noted_ns=now))

    def bound(self, conn: Connection) -> int:
        """The highest id that is final in this transaction's snapshot (>= ``low``)."""
        top = self._top(conn)
        if top < self.low and conn.dialect.name != "postgresql":
            log.warning(
                "%s: the highest id went back from %d to %d (the newest rows deleted, "
                "their ids to be given again); counting from there",
                self.table.name,
                self.low,
                top,
            )
            self.low = top
        elif top < self.low and not self._sequence_past(conn, self.low):
            log.warning(
                "%s: the id sequence went back from %d (reset); counting from the start again",
                self.table.name,
                self.low,
            )
            self.low = 0
            self._marks.clear()
        if conn.dialect.name != "postgresql":
            return top
        xmax8, xip8 = conn.exec_driver_sql(_SNAPSHOT).one()
        xmax = int(xmax8) % _XID_MOD
        in_progress = frozenset(int(x) % _XID_MOD for x in xip8)
        now = self.clock.monotonic_ns()
        bound = self.low
        while self._marks:
            mark = self._marks[0]
            waiting = not mark.sealed or not all(_ended(w, xmax, in_progress) for w in mark.writers)
            if waiting and now - mark.noted_ns < self.max_hold_ns:
                break
            if waiting:
                log.warning(
                    "%s: a transaction has stayed open for %.0f s; counting up to id %d anyway",
                    self.table.name,
                    (now - mark.noted_ns) / NS_PER_S,
                    mark.top,
                )
            bound = max(bound, min(mark.top, top))
            self._marks.popleft()
        return bound

    def advance(self, bound: int) -> None:
        """Every row up to ``bound`` has been counted."""
        self.low = max(self.low, bound)
