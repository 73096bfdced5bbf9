"""Call statistics with NumPy: per handler, over whatever calls are at hand.

The same code serves the live collector (over the entries its history still
holds) and ``collectbus calls --stats`` (over rows read from the store).
Everything is computed in one pass over sorted arrays, without a Python loop
per call: 100k calls take a few milliseconds (budget: 25 ms, bench/calls_overhead.py).

Percentiles use linear interpolation between the closest ranks, as
``numpy.percentile`` does by default.

A :class:`CallStats` is also a read-only mapping with the keys smartswitch's
history statistics have (``calls``, ``errors``, ``avg_time``, ``min_time``,
``max_time``, ``total_time``, ``last_call``), then its own fields by name.
:func:`sort_stats` orders a table of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from functools import cached_property
from itertools import repeat
from operator import is_not, itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from collectbus.calls.handler import Entry
from collectbus.calls.names import find_handler
from collectbus.clock import NS_PER_S

PERCENTILES = (50.0, 95.0, 99.0)

#: (wall-clock start ns, elapsed ns, error type or None) of a handler's last call.
LastCall = tuple[int, int, str | None]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


#: The keys of smartswitch's history statistics, first among a CallStats' keys.
SEED_KEYS = ("calls", "errors", "avg_time", "min_time", "max_time", "total_time", "last_call")


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStats(Mapping[str, Any]):
    """What one handler's calls looked like.

    ``calls``, ``errors``, ``total_s`` and ``avg_s`` count every recorded call
    (for a live collector: since it was made or cleared, including calls the
    history has evicted since). ``min_s``, ``max_s`` and the percentiles
    describe the ``held`` calls: those still in the history, or the rows read.
    With sampling, ``calls`` counts the recorded calls; ``estimated_calls``
    scales the sampled successes back up (errors are all recorded).

    As a mapping (``stats["avg_time"]``, ``dict(stats)``) it has
    :data:`SEED_KEYS` in smartswitch's names, in seconds: ``avg_time`` is
    ``avg_s``, ``total_time`` ``total_s``, ``min_time``/``max_time``
    ``min_s``/``max_s``, and ``last_call`` the start of the last held call, Unix
    time in seconds (None without one); then every field by its own name.
    """

    handler: str
    calls: int
    errors: int
    total_s: float
    avg_s: float | None
    held: int
    min_s: float | None
    max_s: float | None
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    slow: int
    last_started_ns: int | None
    last_elapsed_s: float | None
    last_error: str | None
    estimated_calls: float

    @property
    def avg_time(self) -> float | None:
        return self.avg_s

    @property
    def min_time(self) -> float | None:
        return self.min_s

    @property
    def max_time(self) -> float | None:
        return self.max_s

    @property
    def total_time(self) -> float:
        return self.total_s

    @property
    def last_call(self) -> float | None:
        """When the last held call started, Unix time in seconds."""
        return None if self.last_started_ns is None else self.last_started_ns / NS_PER_S

    def __getitem__(self, key: str) -> Any:
        if key not in _KEY_SET:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(STATS_KEYS)

    def __len__(self) -> int:
        return len(STATS_KEYS)


STATS_KEYS: tuple[str, ...] = SEED_KEYS + tuple(
    f.name for f in fields(CallStats) if f.name not in SEED_KEYS
)
_KEY_SET = frozenset(STATS_KEYS)
#: The keys :func:`sort_stats` accepts: the handler's name and every number.
SORT_KEYS: tuple[str, ...] = tuple(k for k in STATS_KEYS if k != "last_error")


class StatsTable(dict[str, CallStats]):
    """Statistics by handler name, in the order asked; ``table["process"]``
    finds ``api.process`` as the queries do (:mod:`collectbus.calls.names`)."""

    def __missing__(self, key: str) -> CallStats:
        found = find_handler(key, self)
        if found is None:
            raise KeyError(key)
        return self[found]


def sort_stats(stats: Mapping[str, CallStats], sort_by: str | None) -> StatsTable:
    """``stats`` in the order of ``sort_by``: ``handler`` A to Z; any other key
    (:data:`SORT_KEYS`) largest first, so the slowest, busiest or most failing
    handler comes first. Handlers without a value (no held call) come last;
    ties go by name. None keeps the order given."""
    if sort_by is None:
        return StatsTable(stats)
    if sort_by not in SORT_KEYS:
        raise ValueError(f"sort_by must be one of {', '.join(SORT_KEYS)}; got {sort_by!r}")
    if sort_by == "handler":
        return StatsTable(sorted(stats.items()))

    def key(item: tuple[str, CallStats]) -> tuple[bool, float, str]:
        value = item[1][sort_by]
        return value is None, -float(value or 0), item[0]

    return StatsTable(sorted(stats.items(), key=key))


@dataclass(frozen=True, slots=True)
class Groups:
    """Per-group figures over a set of calls; row i is group ``keys[i]``."""

    keys: IntArray
    held: IntArray
    errors: IntArray
    total_ns: IntArray
    min_ns: IntArray
    max_ns: IntArray
    #: One row per group, one column per entry of PERCENTILES, in ns.
    percentiles_ns: FloatArray
    #: Calls at or above the slow threshold (0 without one).
    slow: IntArray
    #: Index (into the input) of each group's last call in input order.
    last: IntArray


def group(
    keys: IntArray, elapsed_ns: IntArray, errors: BoolArray, *, slow_ns: int | None = None
) -> Groups:
    """Figures per distinct key. Inputs are aligned arrays, in call order."""
    n = len(keys)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Groups(empty, empty, empty, empty, empty, empty, np.zeros((0, 3)), empty, empty)
    order = np.lexsort((elapsed_ns, keys))  # by key, then fastest first
    k = keys[order]
    e = elapsed_ns[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    ends = np.r_[starts[1:], n]
    held = ends - starts
    columns = []
    for q in PERCENTILES:
        pos = q / 100.0 * (held - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.ceil(pos).astype(np.int64)
        a = e[starts + lo].astype(np.float64)
        b = e[starts + hi].astype(np.float64)
        columns.append(a + (b - a) * (pos - lo))
    slow = (
        np.add.reduceat((e >= slow_ns).astype(np.int64), starts)
        if slow_ns is not None
        else np.zeros(len(starts), dtype=np.int64)
    )
    return Groups(
        keys=k[starts],
        held=held,
        errors=np.add.reduceat(errors[order].astype(np.int64), starts),
        total_ns=np.add.reduceat(e, starts),
        min_ns=e[starts],
        max_ns=e[ends - 1],
        percentiles_ns=np.column_stack(columns),
        slow=slow,
        last=np.maximum.reduceat(order, starts),
    )


class EntryColumns:
    """Columns of a history snapshot, each built at C speed when first used.

    ``np.fromiter`` over ``map(itemgetter(i), entries)`` costs 20-40 ns per
    entry and column, so a query builds only the columns it needs.
    """

    def __init__(self, entries: Sequence[Entry]) -> None:
        self._entries = entries
        self._n = len(entries)

    def _ints(self, i: int) -> IntArray:
        return np.fromiter(map(itemgetter(i), self._entries), np.int64, self._n)

    @cached_property
    def hid(self) -> IntArray:
        return self._ints(0)

    @cached_property
    def start(self) -> IntArray:
        return self._ints(1)

    @cached_property
    def elapsed_ns(self) -> IntArray:
        return self._ints(2)

    @cached_property
    def error(self) -> BoolArray:
        n = self._n
        details = list(map(itemgetter(4), self._entries))
        error = np.zeros(n, dtype=np.bool_)
        has_detail = np.flatnonzero(np.fromiter(map(is_not, details, repeat(None)), np.bool_, n))
        if len(has_detail):
            # A detail without an error type holds captured arguments only.
            flagged = (details[i][0] is not None for i in has_detail.tolist())
            error[has_detail] = np.fromiter(flagged, np.bool_, len(has_detail))
        return error


def stats_row(
    groups: Groups,
    row: int,
    *,
    handler: str,
    totals: tuple[int, int, int],
    last: LastCall | None,
    sample: float,
) -> CallStats:
    """A :class:`CallStats` from row ``row`` of ``groups``, the ``totals``
    (calls, errors, ns) and the ``last`` call; ``row`` -1 means no held calls."""
    calls, errors, total_ns = totals
    held = row >= 0

    def seconds(values: npt.NDArray[np.int64] | FloatArray) -> float | None:
        return float(values[row]) / NS_PER_S if held else None

    p50, p95, p99 = (
        (float(v) / NS_PER_S for v in groups.percentiles_ns[row]) if held else (None,) * 3
    )
    successes = calls - errors
    return CallStats(
        handler=handler,
        calls=calls,
        errors=errors,
        total_s=total_ns / NS_PER_S,
        avg_s=total_ns / calls / NS_PER_S if calls else None,
        held=int(groups.held[row]) if held else 0,
        min_s=seconds(groups.min_ns),
        max_s=seconds(groups.max_ns),
        p50_s=p50,
        p95_s=p95,
        p99_s=p99,
        slow=int(groups.slow[row]) if held else 0,
        last_started_ns=None if last is None else last[0],
        last_elapsed_s=None if last is None else last[1] / NS_PER_S,
        last_error=None if last is None else last[2],
        estimated_calls=errors + (successes / sample if sample > 0 else 0.0),
    )


def stats_from_columns(
    handler: npt.NDArray[Any],
    started_ns: IntArray,
    elapsed_ns: IntArray,
    error_type: npt.NDArray[Any],
    *,
    slow_ns: int | None = None,
) -> list[CallStats]:
    """Statistics per handler of stored calls (the columns of
    :meth:`collectbus.store.Store.call_timings`, in call order), by handler name.

    Every call read counts: ``calls`` equals ``held``, and the last call is the
    last in the input."""
    if len(handler) == 0:
        return []
    errors = np.array([e is not None for e in error_type.tolist()], dtype=np.bool_)
    names, keys = np.unique(handler, return_inverse=True)
    groups = group(keys.astype(np.int64).reshape(-1), elapsed_ns, errors, slow_ns=slow_ns)
    out: list[CallStats] = []
    for row, key in enumerate(groups.keys.tolist()):
        last = int(groups.last[row])
        out.append(
            stats_row(
                groups,
                row,
                handler=str(names[key]),
                totals=(int(groups.held[row]), int(groups.errors[row]), int(groups.total_ns[row])),
                last=(int(started_ns[last]), int(elapsed_ns[last]), error_type[last]),
                sample=1.0,
            )
        )
    return out
