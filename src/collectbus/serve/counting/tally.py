"""Counts and duration histograms of a table's rows, each row counted once.

A :class:`Tally` groups the rows of one table by a few key columns and keeps,
per group, the number of rows, the sum of their durations (integer
nanoseconds, so it never drifts) and cumulative bucket counts. Each
:meth:`Tally.update` reads only the rows between the :class:`Watermark` and
the highest final id, as one ``GROUP BY`` in the database, and adds them in:
a scrape costs what the new rows cost, not what the history costs, and the
totals only ever grow. Rows deleted below the watermark (retention) change
nothing.

The totals are added in only once the read has succeeded: a database that is
away leaves them, and the watermark, as they were.

With a :class:`~collectbus.serve.counting.saved.SavedSeries`, the totals and the
watermark are kept in the store: the first update loads them (a restarted
server goes on from the id it had counted up to, whatever was deleted while
it was down), and every update that counted rows saves the groups that
changed and the watermark.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, Table, bindparam, case, func, select

from collectbus.clock import NS_PER_S, Clock
from collectbus.serve.counting.saved import STATE, SavedSeries
from collectbus.serve.counting.watermark import DEFAULT_MAX_HOLD_S, Watermark
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


class Tally:
    """Grouped totals of one table, kept up to date from a watermark.

    ``keys`` are the SQL expressions to group by (plain columns, or
    expressions without parameters, such as ``error_type IS NULL``);
    ``labels`` turns one row of key values into label values. ``end`` (the
    time a row's event ended) feeds :attr:`Totals.last_end_ns`. ``saved``
    keeps the totals and the watermark in the store (module docstring).
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
        max_hold_s: float = DEFAULT_MAX_HOLD_S,
        saved: SavedSeries | None = None,
    ) -> None:
        self.engine = engine
        self.database = database
        self.table = table
        self.keys = tuple(keys)
        self.labels = labels
        self.duration_ns = duration_ns
        self.end_ns = end_ns
        self.buckets_s = tuple(buckets_s)
        self._bounds_ns = [round(b * NS_PER_S) for b in self.buckets_s]
        self.watermark = Watermark(table, clock=clock, max_hold_s=max_hold_s)
        self._select = self._query()
        self._totals: dict[Key, Totals] = {}
        self._lock = threading.Lock()
        self.saved = saved
        self._loaded = saved is None
        #: The saved state was not used: the next save replaces it.
        self._replace = False

    def _query(self) -> Select[Any]:
        """The ``GROUP BY`` over ``low < id <= bound`` (built once; bound parameters)."""
        d = self.duration_ns
        columns: list[ColumnElement[Any]] = [
            *self.keys,
            func.count(),
            func.coalesce(func.sum(d), 0),
            *(func.sum(case((d <= b, 1), else_=0)) for b in self._bounds_ns),
        ]
        if self.end_ns is not None:
            columns.append(func.max(self.end_ns))
        id_ = self.table.c.id
        return (
            select(*columns)
            .select_from(self.table)
            .where(id_ > bindparam("low"), id_ <= bindparam("bound"))
            .group_by(*self.keys)
        )

    def _read(self) -> tuple[int, dict[Key, Totals]]:
        """The new rows' totals and the bound they were read up to; state untouched."""
        n_keys, n_buckets = len(self.keys), len(self._bounds_ns)
        with mapped_errors(self.database, f"read {self.table.name}"):
            if self.engine.dialect.name == "postgresql":
                with self.engine.connect() as conn, conn.begin():
                    self.watermark.note(conn)
            with self.engine.connect() as conn:
                if self.engine.dialect.name == "postgresql":
                    conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    bound = self.watermark.bound(conn)
                    low = self.watermark.low
                    rows = []
                    if bound > low:
                        rows = list(conn.execute(self._select, {"low": low, "bound": bound}))
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
        return bound, new

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
            low = self.watermark.low
            bound, new = self._read()
            for key, totals in new.items():
                self._totals.setdefault(key, Totals()).add(totals)
            self.watermark.advance(bound)
            if self.saved is not None:
                changed: dict[tuple[Any, ...], object] = {}
                if new or self.watermark.low != low or self._replace:
                    keys = self._totals if self._replace else new
                    changed = {key: self._totals[key].to_json() for key in keys}
                    changed[STATE] = {"low": self.watermark.low, "buckets_s": list(self.buckets_s)}
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
        self.watermark.advance(low)
