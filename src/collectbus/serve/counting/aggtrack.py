"""Monotonic counters and histograms kept from successive reads of the aggregates.

An aggregate is a *state*: a deleted or edited source row is retracted, so its
count, error count, sums and sketch buckets can go down. Prometheus counters
and histograms must not. :class:`AggregateTracker` turns the successive states
of the aggregates (as :func:`collectbus.aggregate.read_aggregates` returns
them) into quantities that only grow, per group:

- between two reads, a group's change in rows (and in errors) is split by
  sign: growth is added to ``rows`` (``errors``), shrinkage to
  ``rows_retracted`` (``errors_retracted``). So
  ``rows - rows_retracted`` always equals the group's count now minus its
  count at the first read, and where rows are only added (an append-only
  table such as ``calls``) ``rows`` grows by exactly the rows added;
- each measure's histogram observes what the sketch's buckets gained:
  a bucket that grew by ``d`` observes ``d`` values in it; a bucket that
  shrank observes nothing. A new row is observed once, a deleted one is
  not un-observed, and an edit that moves a value to another bucket is
  observed with its new value. The histogram's ``sum`` grows by the sum of
  the values added: exact when a read saw only additions; with retractions,
  by the change of the exact sum plus the retracted values estimated by their
  buckets' upper bounds (within 1 %, and never less than the true added sum
  for a measure that is not negative). The growth is clamped at zero (an edit
  that lowers a value within its bucket lowers the exact sum), so ``sum``
  never goes down; it is meaningful for measures that are never negative
  (durations, sizes), as for any Prometheus histogram;
- the first read of an aggregate counts everything it holds (without saved
  state, below, a restart starts there again: a reset);
- an aggregate missing from a read (reset and not rebuilt yet) leaves its
  counters and its last state as they were; once rebuilt, it is compared with
  that last state, so a rebuild counts only what really changed, not every
  row again.

A read is applied atomically: the tracker changes only once it has the whole
new state, so a failed read leaves it as it was.

With a :class:`~collectbus.serve.counting.saved.SavedSeries` the counters and the last
state of every group are kept in the store: the first read loads them, so a
restarted server compares each aggregate with the state it last saw (a group
that shrank while it was down counts as retracted, not as a lower
``rows_total``; nothing is counted twice), and each read saves the groups
whose state changed.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from typing import Any

from collectbus.aggregate import AggregateView, GroupView
from collectbus.serve.counting.saved import SavedSeries, SeriesKey

log = logging.getLogger("collectbus.serve")

Labels = tuple[tuple[str, str], ...]


def _per_bucket(buckets: list[tuple[float, int]]) -> dict[float, int]:
    """Non-cumulative counts per finite upper bound, from cumulative pairs."""
    out: dict[float, int] = {}
    before = 0
    for le, cumulative in buckets:
        if math.isinf(le):
            break
        if cumulative - before:
            out[le] = cumulative - before
        before = cumulative
    return out


@dataclass(slots=True)
class Observed:
    """One measure's histogram of one group: only grows."""

    per_bucket: dict[float, int] = field(default_factory=dict)
    count: int = 0
    sum: float = 0.0

    def cumulative(self, bounds: tuple[float, ...]) -> list[tuple[str, float]]:
        """``(le, count)`` on ``bounds`` and +Inf: a value in a sketch bucket counts
        in the first bound at or above the bucket's upper bound."""
        counts = [0] * len(bounds)
        for le, n in self.per_bucket.items():
            for i, bound in enumerate(bounds):
                if le <= bound:
                    counts[i] += n
                    break
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip(bounds, counts, strict=True):
            running += n
            out.append((repr(float(bound)), float(running)))
        out.append(("+Inf", float(self.count)))
        return out


@dataclass(slots=True)
class GroupCounters:
    rows: int = 0
    rows_retracted: int = 0
    errors: int = 0
    errors_retracted: int = 0
    measures: dict[str, Observed] = field(default_factory=dict)


@dataclass(slots=True)
class AggregateCounters:
    groups: dict[Labels, GroupCounters] = field(default_factory=dict)
    mismatches: int = 0


@dataclass(frozen=True, slots=True)
class _Seen:
    """What a group held at the last read."""

    count: int
    errors: int
    measures: dict[str, tuple[int, float, dict[float, int]]]


def _seen(group: GroupView) -> _Seen:
    return _Seen(
        group.count,
        group.errors,
        {name: (m.n, float(m.sum), _per_bucket(m.buckets)) for name, m in group.measures.items()},
    )


_EMPTY = _Seen(0, 0, {})


def group_labels(keys: dict[str, object]) -> Labels:
    """The group's key values as label values (None as the empty string)."""
    return tuple((name, "" if v is None else str(v)) for name, v in keys.items())


class AggregateTracker:
    """Counters that only grow, fed by successive states of the aggregates.

    ``saved`` keeps them, and each group's last state, in the store (module
    docstring).
    """

    def __init__(self, saved: SavedSeries | None = None) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, AggregateCounters] = {}
        self._seen: dict[str, dict[Labels, _Seen]] = {}
        self._mismatches: dict[str, int] = {}
        self.saved = saved
        self._loaded = saved is None
        #: The saved state was not used: the next save replaces it.
        self._replace = False

    def observe(self, views: list[AggregateView]) -> dict[str, AggregateCounters]:
        """Fold in the aggregates' current state; return a copy of the counters.

        Raises :class:`~collectbus.errors.StoreError` if the saved state cannot
        be read (first call only); the tracker stays as it was.
        """
        with self._lock:
            if not self._loaded:
                self._load()
            changed: set[SeriesKey] = set()
            for view in views:
                changed |= self._observe(view)
            if self.saved is not None:
                if self._replace:
                    changed = set(self._all_keys())
                self.saved.save(
                    {key: self._document(key) for key in changed}, replace=self._replace
                )
                self._replace = False
            return {
                name: AggregateCounters(
                    {
                        k: GroupCounters(
                            g.rows,
                            g.rows_retracted,
                            g.errors,
                            g.errors_retracted,
                            {
                                m: Observed(dict(o.per_bucket), o.count, o.sum)
                                for m, o in g.measures.items()
                            },
                        )
                        for k, g in agg.groups.items()
                    },
                    agg.mismatches,
                )
                for name, agg in self._counters.items()
            }

    def _observe(self, view: AggregateView) -> set[SeriesKey]:
        """Fold in one aggregate; the keys of the series whose state changed."""
        changed: set[SeriesKey] = set()
        now = {group_labels(dict(g.keys)): _seen(g) for g in view.groups}
        counters = self._counters.setdefault(view.name, AggregateCounters())
        previous = self._mismatches.get(view.name)
        if previous != view.mismatches:
            changed.add((view.name,))
        # A rebuild starts the stored count again from zero: only a rise counts.
        counters.mismatches += max(0, view.mismatches - (previous or 0))
        self._mismatches[view.name] = view.mismatches
        before = self._seen.get(view.name, {})
        for key in now.keys() | before.keys():
            old, new = before.get(key), now.get(key)
            if old == new:
                continue
            _fold(counters.groups.setdefault(key, GroupCounters()), old or _EMPTY, new or _EMPTY)
            changed.add((view.name, key))
        self._seen[view.name] = now
        return changed

    # ------------------------------------------------------------ saved state
    #
    # Series (view.name,): {"mismatches": counter, "seen": the stored count last read}.
    # Series (view.name, labels): {"counters": ..., "seen": ... or null if the
    # group was absent from the last read}.

    def _all_keys(self) -> list[SeriesKey]:
        keys: list[SeriesKey] = [(name,) for name in self._mismatches]
        for name, agg in self._counters.items():
            keys.extend((name, labels) for labels in agg.groups)
        return keys

    def _document(self, key: SeriesKey) -> dict[str, Any]:
        name = key[0]
        if len(key) == 1:
            return {
                "mismatches": self._counters[name].mismatches,
                "seen": self._mismatches[name],
            }
        g = self._counters[name].groups[key[1]]
        seen = self._seen.get(name, {}).get(key[1])
        return {
            "counters": {
                "rows": g.rows,
                "rows_retracted": g.rows_retracted,
                "errors": g.errors,
                "errors_retracted": g.errors_retracted,
                "measures": {
                    m: {"buckets": sorted(o.per_bucket.items()), "count": o.count, "sum": o.sum}
                    for m, o in g.measures.items()
                },
            },
            "seen": None
            if seen is None
            else {
                "count": seen.count,
                "errors": seen.errors,
                "measures": {
                    m: {"n": n, "sum": total, "buckets": sorted(buckets.items())}
                    for m, (n, total, buckets) in seen.measures.items()
                },
            },
        }

    def _load(self) -> None:
        """The saved counters and last states, if any (StoreError: nothing changes)."""
        assert self.saved is not None
        counters: dict[str, AggregateCounters] = {}
        seen: dict[str, dict[Labels, _Seen]] = {}
        mismatches: dict[str, int] = {}
        try:
            for key, doc in self.saved.load().items():
                name = key[0] if key else None
                if not isinstance(name, str) or len(key) not in (1, 2):
                    raise ValueError(
                        f"series {list(key)} is not [aggregate] or [aggregate, labels]"
                    )
                agg = counters.setdefault(name, AggregateCounters())
                if len(key) == 1:
                    agg.mismatches = int(doc["mismatches"])
                    mismatches[name] = int(doc["seen"])
                    continue
                labels: Labels = tuple((str(k), str(v)) for k, v in key[1])
                c = doc["counters"]
                agg.groups[labels] = GroupCounters(
                    int(c["rows"]),
                    int(c["rows_retracted"]),
                    int(c["errors"]),
                    int(c["errors_retracted"]),
                    {
                        m: Observed(_buckets(o["buckets"]), int(o["count"]), float(o["sum"]))
                        for m, o in c["measures"].items()
                    },
                )
                if doc["seen"] is not None:
                    s = doc["seen"]
                    seen.setdefault(name, {})[labels] = _Seen(
                        int(s["count"]),
                        int(s["errors"]),
                        {
                            m: (int(v["n"]), float(v["sum"]), _buckets(v["buckets"]))
                            for m, v in s["measures"].items()
                        },
                    )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            log.warning(
                "%s: saved counters not used (%s: %s); counting from the aggregates as they are",
                self.saved.where(),
                type(err).__name__,
                err,
            )
            self._loaded = True
            self._replace = True
            return
        self._loaded = True
        self._counters, self._seen, self._mismatches = counters, seen, mismatches


def _buckets(pairs: list[list[float]]) -> dict[float, int]:
    """Per-bucket counts saved as ``[[le, n], ...]``."""
    return {float(le): int(n) for le, n in pairs}


def _fold(counters: GroupCounters, old: _Seen, new: _Seen) -> None:
    rows = new.count - old.count
    errors = new.errors - old.errors
    counters.rows += max(rows, 0)
    counters.rows_retracted += max(-rows, 0)
    counters.errors += max(errors, 0)
    counters.errors_retracted += max(-errors, 0)
    for name in new.measures.keys() | old.measures.keys():
        _, old_sum, old_buckets = old.measures.get(name, (0, 0.0, {}))
        _, new_sum, new_buckets = new.measures.get(name, (0, 0.0, {}))
        observed = counters.measures.setdefault(name, Observed())
        retracted_estimate = 0.0
        for le in old_buckets.keys() | new_buckets.keys():
            d = new_buckets.get(le, 0) - old_buckets.get(le, 0)
            if d > 0:
                observed.per_bucket[le] = observed.per_bucket.get(le, 0) + d
                observed.count += d
            elif d < 0:
                retracted_estimate += -d * le
        # Clamped: an edit within one bucket can lower the exact sum.
        observed.sum += max(0.0, new_sum - old_sum + retracted_estimate)
