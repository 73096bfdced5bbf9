"""Counts and duration histograms of a table's rows, each row counted once.

A :class:`Tally` groups the rows of one table by a few key columns and keeps,
per group, the number of rows, the sum of their durations (integer
nanoseconds, so it never drifts) and cumulative bucket counts. Each
:meth:`Tally.update` reads only the rows past the id it counted up to, and
the rows of the ids it skipped that have appeared since, as ``GROUP BY``s in
the database, and adds them in: a scrape costs what the new rows cost, not
what the history costs, and the totals only ever grow. Rows deleted below the
watermark (retention) change nothing. What a read covers, and which skipped
ids stay pending (PostgreSQL hands ids out before commit), is decided by
:mod:`collectbus.pendingids`, the watermark the aggregates use too
(docs/architecture.md, "Pitfalls"); every read is one snapshot (REPEATABLE
READ in PostgreSQL).

The totals are added in only once the read has succeeded: a database that is
away leaves them, and the watermark, as they were.

With a :class:`~collectbus.serve.counting.saved.SavedSeries`, the totals and the
watermark (the id counted up to and the pending ids) are kept in the store:
the first update loads them (a restarted server goes on from the id it had
counted up to, whatever was deleted while it was down, and still looks for
the ids it was waiting for), and every update that changed them saves the
groups that changed and the watermark.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    Table,
    bindparam,
    case,
    func,
    or_,
    select,
    text,
)

from collectbus.clock import NS_PER_S, Clock
from collectbus.pendingids import (
    DEFAULT_PENDING_S,
    Pending,
    Window,
    expired,
    gap_scan,
    gaps,
    lookups,
    still_pending,
    window,
)
from collectbus.serve.counting.saved import STATE, SavedSeries
from collectbus.store.dberrors import mapped_errors

log = logging.getLogger("collectbus.serve")

#: Upper bounds of the duration buckets, in seconds: from 100 µs (a fast
#: handler) to a minute (a slow collection); +Inf is implied.
DURATION_BUCKETS_S: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


@dataclass(slots=True)
class Totals:
    """What one group's rows add up to."""

    count: int = 0
    sum_ns: int = 0
    #: Rows with a duration at or below each bound of the tally's buckets (cumulative).
    buckets: list[int] = field(default_factory=list)
    #: The latest ``end`` value among the rows, if the tally has an ``end`` column.
    last_end_ns: int | None = None

    def add(self, other: Totals) -> None:
        self.count += other.count
        self.sum_ns += other.sum_ns
        if not self.buckets:
            self.buckets = [0] * len(other.buckets)
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]
        if other.last_end_ns is not None and (
            self.last_end_ns is None or other.last_end_ns > self.last_end_ns
        ):
            self.last_end_ns = other.last_end_ns

    def copy(self) -> Totals:
        return Totals(self.count, self.sum_ns, list(self.buckets), self.last_end_ns)

    def to_json(self) -> dict[str, object]:
        return {
            "count": self.count,
            "sum_ns": self.sum_ns,
            "buckets": self.buckets,
            "last_end_ns": self.last_end_ns,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any], n_buckets: int) -> Totals:
        """What :meth:`to_json` wrote; ValueError (or KeyError, TypeError) otherwise."""
        buckets = [int(n) for n in doc["buckets"]]
        if len(buckets) != n_buckets:
            raise ValueError(f"{len(buckets)} buckets, not {n_buckets}")
        end = doc["last_end_ns"]
        return cls(
            int(doc["count"]), int(doc["sum_ns"]), buckets, None if end is None else int(end)
        )

    def histogram(self, bounds_s: Sequence[float]) -> list[tuple[str, float]]:
        """Buckets as ``HistogramMetricFamily.add_metric`` takes them, +Inf last."""
        pairs = [(_le(b), float(n)) for b, n in zip(bounds_s, self.buckets, strict=True)]
        return [*pairs, ("+Inf", float(self.count))]


def _le(bound_s: float) -> str:
    return repr(float(bound_s))


Key = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Read:
    """One read's outcome, applied only once it succeeded."""

    window: Window
    pending: tuple[Pending, ...]
    new: dict[Key, Totals]


class Tally:
    """Grouped totals of one table, kept up to date from a watermark.

    ``keys`` are the SQL expressions to group by (plain columns, or
    expressions without parameters, such as ``error_type IS NULL``);
    ``labels`` turns one row of key values into label values. ``end`` (the
    time a row's event ended) feeds :attr:`Totals.last_end_ns`. ``pending_s``:
    how long an id skipped by the watermark is looked for
    (:mod:`collectbus.pendingids`). ``saved`` keeps the totals and the
    watermark in the store (module docstring).
    """

    def __init__(
        self,
        engine: Engine,
        database: str,
        table: Table,
        *,
        keys: Sequence[ColumnElement[str] | ColumnElement[bool]],
        labels: Callable[[Sequence[object]], Key],
        duration_ns: ColumnElement[int],
        end_ns: ColumnElement[int] | None = None,
        clock: Clock,
        buckets_s: Sequence[float] = DURATION_BUCKETS_S,
        pending_s: float = DEFAULT_PENDING_S,
        saved: SavedSeries | None = None,
    ) -> None:
        self.engine = engine
        self.database = database
        self.table = table
        self.keys = tuple(keys)
        self.labels = labels
        self.duration_ns = duration_ns
        self.end_ns = end_ns
        self.clock = clock
        self.pending_s = pending_s
        self.buckets_s = tuple(buckets_s)
        self._bounds_ns = [round(b * NS_PER_S) for b in self.buckets_s]
        #: Every row with an id up to here has been counted, but the pending ones.
        self.last_id = 0
        #: Ids skipped by the watermark, looked for again on every update.
        self.pending: tuple[Pending, ...] = ()
        id_ = self.table.c.id
        self._select = self._query(id_ > bindparam("low"), id_ <= bindparam("last"))
        self._totals: dict[Key, Totals] = {}
        self._lock = threading.Lock()
        self.saved = saved
        self._loaded = saved is None
        #: The saved state was not used: the next save replaces it.
        self._replace = False

    def _query(self, *where: ColumnElement[bool]) -> Select[Any]:
        """The ``GROUP BY`` over the rows ``where`` says (built once; bound parameters)."""
        d = self.duration_ns
        columns: list[ColumnElement[Any]] = [
            *self.keys,
            func.count(),
            func.coalesce(func.sum(d), 0),
            *(func.sum(case((d <= b, 1), else_=0)) for b in self._bounds_ns),
        ]
        if self.end_ns is not None:
            columns.append(func.max(self.end_ns))
        return select(*columns).select_from(self.table).where(*where).group_by(*self.keys)

    def _in(self, ranges: Sequence[tuple[int, int]]) -> ColumnElement[bool]:
        """Ids in any of the ranges ``(lo, hi]``."""
        id_ = self.table.c.id
        return or_(*((id_ > lo) & (id_ <= hi) for lo, hi in ranges))

    def _ids(self, conn: Connection, ranges: Sequence[tuple[int, int]]) -> list[int]:
        """The ids present in the ranges ``(lo, hi]``, sorted."""
        id_ = self.table.c.id
        stmt = select(id_).where(self._in(ranges)).order_by(id_)
        return [int(i) for i in conn.execute(stmt).scalars()]

    def _sequence_last(self, conn: Connection) -> int | None:
        """PostgreSQL: the last id the table's sequence handed out (None: none)."""
        last = conn.execute(
            text("SELECT pg_sequence_last_value(pg_get_serial_sequence(:t, 'id')::regclass)"),
            {"t": self.table.name},
        ).scalar()
        return None if last is None else int(last)

    def _window(self, conn: Connection, postgres: bool) -> Window:
        top = int(conn.execute(select(func.max(self.table.c.id))).scalar_one() or 0)
        sequence = self._sequence_last(conn) if postgres and top < self.last_id else None
        w = window(self.last_id, self.pending, top, reuses_ids=not postgres, sequence_last=sequence)
        if w.back == "reused":
            log.warning(
                "%s: the highest id went back from %d to %d (the newest rows deleted, "
                "their ids to be given again); counting from there",
                self.table.name,
                self.last_id,
                top,
            )
        elif w.back == "reset":
            log.warning(
                "%s: the id sequence went back from %d (reset); counting from the start again",
                self.table.name,
                self.last_id,
            )
        return w

    def _read(self) -> _Read:
        """The new rows' totals and the watermark they move to; state untouched."""
        postgres = self.engine.dialect.name == "postgresql"
        now_ns = self.clock.time_ns()
        with mapped_errors(self.database, f"read {self.table.name}"), self.engine.connect() as conn:
            if postgres:
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                w = self._window(conn, postgres)
                rows = []
                if w.last > w.low:
                    rows = list(conn.execute(self._select, {"low": w.low, "last": w.last}))
                present = sum(int(row[len(self.keys)]) for row in rows)
                pending: list[Pending] = []
                looked = lookups(w)
                if looked:
                    # No id of a pending range was counted: every row there is new.
                    ranges = [(lo - 1, hi) for lo, hi, _ in looked]
                    found = self._ids(conn, ranges)
                    if found:
                        rows += conn.execute(self._query(self._in(ranges)))
                    for one in looked:
                        mine = [i for i in found if one[0] <= i <= one[1]]
                        pending += still_pending(one, mine, now_ns=now_ns, pending_s=self.pending_s)
                        self._log_expired(one, mine, now_ns)
                scan = gap_scan(w)
                if postgres and scan is not None and present < w.last - w.low:
                    pending += gaps(w, self._ids(conn, [scan]), now_ns=now_ns)
        return _Read(w, tuple(sorted(pending)), self._parse(rows))

    def _log_expired(self, looked: tuple[int, int, int], found: Sequence[int], now_ns: int) -> None:
        n = expired(looked, found, now_ns=now_ns, pending_s=self.pending_s)
        if n:
            log.info(
                "%s: %d id(s) between %d and %d not seen for %.0f s (rolled back, or a "
                "transaction open that long): no longer looked for",
                self.table.name,
                n,
                looked[0],
                looked[1],
                (now_ns - looked[2]) / NS_PER_S,
            )

    def _parse(self, rows: Sequence[Sequence[Any]]) -> dict[Key, Totals]:
        n_keys, n_buckets = len(self.keys), len(self._bounds_ns)
        new: dict[Key, Totals] = {}
        for row in rows:
            values = tuple(row)
            counts = values[n_keys:]
            end = counts[2 + n_buckets] if self.end_ns is not None else None
            totals = Totals(
                count=int(counts[0]),
                sum_ns=int(counts[1]),
                buckets=[int(n) for n in counts[2 : 2 + n_buckets]],
                last_end_ns=None if end is None else int(end),
            )
            new.setdefault(self.labels(values[:n_keys]), Totals()).add(totals)
        return new

    def totals(self) -> dict[Key, Totals]:
        """A copy of the totals as they stand, without reading the table."""
        with self._lock:
            return {k: v.copy() for k, v in self._totals.items()}

    def update(self) -> dict[Key, Totals]:
        """Add the rows committed since the last update; return a copy of the totals.

        Raises :class:`~collectbus.errors.StoreError` if the database cannot
        be read; the totals stay as they were.
        """
        with self._lock:
            if not self._loaded:
                self._load()
            read = self._read()
            for key, totals in read.new.items():
                self._totals.setdefault(key, Totals()).add(totals)
            moved = (read.window.last, read.pending) != (self.last_id, self.pending)
            self.last_id, self.pending = read.window.last, read.pending
            if self.saved is not None:
                changed: dict[tuple[Any, ...], object] = {}
                if read.new or moved or self._replace:
                    keys = self._totals if self._replace else read.new
                    changed = {key: self._totals[key].to_json() for key in keys}
                    changed[STATE] = {
                        "low": self.last_id,
                        "pending": [list(p) for p in self.pending],
                        "buckets_s": list(self.buckets_s),
                    }
                # Also with nothing changed: writes what a failed save left.
                self.saved.save(changed, replace=self._replace)
                self._replace = False
            return {k: v.copy() for k, v in self._totals.items()}

    def _load(self) -> None:
        """The saved totals and watermark, if any (StoreError: nothing changes)."""
        assert self.saved is not None
        try:
            saved = self.saved.load()
            if not saved:
                self._loaded = True
                return
            state = saved.pop(STATE)
            if [float(b) for b in state["buckets_s"]] != list(self.buckets_s):
                raise ValueError("saved with other duration buckets")
            low = int(state["low"])
            pending = tuple(
                (int(lo), int(hi), int(seen)) for lo, hi, seen in state.get("pending", [])
            )
            totals: dict[Key, Totals] = {}
            for key, doc in saved.items():
                if len(key) != len(self.keys) or not all(isinstance(v, str) for v in key):
                    raise ValueError(f"series {list(key)} is not {len(self.keys)} label values")
                totals[key] = Totals.from_json(doc, len(self._bounds_ns))
        except (KeyError, TypeError, ValueError) as err:
            log.warning(
                "%s: saved counters not used (%s: %s); counting from the rows present",
                self.saved.where(),
                type(err).__name__,
                err,
            )
            self._loaded = True
            self._replace = True
            return
        self._loaded = True
        self._totals = totals
        self.last_id, self.pending = low, pending
