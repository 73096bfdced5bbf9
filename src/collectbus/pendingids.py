"""Reading an id-ordered table past what was counted: the one watermark.

The ``/metrics`` counters (:mod:`collectbus.serve.counting.tally`) and the
incremental aggregates (:mod:`collectbus.aggregate.delta`,
:mod:`collectbus.aggregate.tail`) both read only the rows past the last id
they counted, and both must miss no row and count none twice. This module
decides what such a read covers and what it leaves for the next one; each
caller runs its own SQL (docs/architecture.md, "Pitfalls").

- **A read** covers the ids above the watermark ``last_id`` up to the highest
  id visible in its snapshot (``top``), or a batch past ``last_id``
  (:func:`window`).
- **PostgreSQL hands ids out before commit**: with several writers, id 11 can
  commit after id 12 was read. The ids of a read's window that it did not see
  stay *pending* (:func:`missing_ranges`, :func:`gaps`): every later read
  looks them up again (:func:`still_pending`), counts the rows that appeared,
  and keeps the others until they appear or ``pending_s`` has passed since
  they were first missed (a writer open longer than that is given up on, a
  rolled-back id is forgotten). Nothing waits on other transactions, and no
  row visible is held back. SQLite writers are serialised, so nothing commits
  behind the watermark there: only PostgreSQL reads look for gaps.
- **The highest id can go back.** In SQLite a rowid table gives the next row
  the highest id present plus one, so once the newest rows are deleted their
  ids are handed out again: the watermark goes back to the highest id present,
  and rows later written with those ids are new. Rows written between such a
  deletion and the next read cannot be told from older ones and are not
  counted; counting every row present again would count them all twice. On
  PostgreSQL, whose sequences never give an id twice, a highest id below the
  watermark is only the newest rows deleted, unless the sequence itself went
  back below the watermark (it was reset, ``TRUNCATE ... RESTART IDENTITY``):
  then the watermark restarts from zero, the rows present are new, and the
  pending ids are dropped.

A pending range is ``(lo, hi, first_missed_ns)``: ids ``lo`` to ``hi``,
missed first at that wall time (saved with the watermark, so it means the
same after a restart).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: Ids ``lo`` to ``hi`` not visible yet, first missed at a wall time (ns).
Pending = tuple[int, int, int]

#: How long an id skipped by the watermark is looked for (seconds).
DEFAULT_PENDING_S = 600.0

#: The most ids a first read (from zero) checks for gaps: below the newest
#: ``GAP_SCAN_IDS`` ids of a table, its ids are taken as final (a first read
#: of a large table does not list every id; no transaction holds an id that
#: far behind).
GAP_SCAN_IDS = 100_000


@dataclass(frozen=True, slots=True)
class Window:
    """What one read covers: new rows have ``low < id <= last``."""

    low: int
    last: int
    #: The pending ranges still in force, to look up (none after a reset).
    pending: tuple[Pending, ...]
    #: More rows wait past ``last`` (a batch was cut).
    more: bool = False
    #: The ids went back below the watermark: ``"reused"`` (SQLite, the newest
    #: rows deleted), ``"reset"`` (PostgreSQL, the sequence reset), else None.
    back: str | None = None


def window(
    last_id: int,
    pending: Sequence[Pending],
    top: int,
    *,
    reuses_ids: bool,
    sequence_last: int | None = None,
    batch: int | None = None,
) -> Window:
    """The read from watermark ``last_id`` with ``top`` the highest id visible.

    ``reuses_ids``: the database gives ids again once the newest rows are
    deleted (SQLite). ``sequence_last``: where the table's id sequence stands
    (PostgreSQL; None when unknown, or not read because ``top >= last_id``).
    ``batch``: read at most that many ids past ``last_id``.
    """
    low, back = last_id, None
    kept = tuple(pending)
    if top < last_id:
        if reuses_ids:
            return Window(top, top, (), back="reused")
        if sequence_last is None or sequence_last >= last_id:
            return Window(last_id, last_id, kept)  # only the newest rows deleted
        low, kept, back = 0, (), "reset"
    last = top if batch is None else min(top, low + batch)
    return Window(low, max(last, low), kept, more=top > last, back=back)


def missing_ranges(lo: int, hi: int, seen: Sequence[int]) -> list[tuple[int, int]]:
    """The ranges of ids in ``[lo, hi]`` absent from the sorted ``seen``."""
    out: list[tuple[int, int]] = []
    expect = lo
    for rid in seen:
        if rid < lo or rid > hi:
            continue
        if rid > expect:
            out.append((expect, rid - 1))
        expect = max(expect, rid + 1)
    if expect <= hi:
        out.append((expect, hi))
    return out


def lookups(w: Window) -> list[tuple[int, int, int]]:
    """The pending ranges this read looks up, as ``(lo, hi, first_missed_ns)``
    clipped to the window's ``last``."""
    return [(lo, min(hi, w.last), seen) for lo, hi, seen in w.pending if lo <= w.last]


def still_pending(
    looked: tuple[int, int, int],
    found: Sequence[int],
    *,
    now_ns: int,
    pending_s: float,
) -> list[Pending]:
    """What stays pending of one looked-up range (:func:`lookups`) after its
    rows ``found`` (ids, sorted) were read: nothing once ``pending_s`` has
    passed since it was first missed."""
    lo, hi, seen = looked
    if now_ns - seen > pending_s * 1e9:
        return []
    return [(a, b, seen) for a, b in missing_ranges(lo, hi, found)]


def expired(
    looked: tuple[int, int, int], found: Sequence[int], *, now_ns: int, pending_s: float
) -> int:
    """How many ids of a looked-up range are given up on by this read."""
    lo, hi, seen = looked
    if now_ns - seen <= pending_s * 1e9:
        return 0
    return sum(b - a + 1 for a, b in missing_ranges(lo, hi, found))


def gap_scan(w: Window) -> tuple[int, int] | None:
    """The ids ``(lo, hi]`` of the window to list for gaps, or None when the
    window is empty; from zero (a first read), the newest :data:`GAP_SCAN_IDS`."""
    if w.last <= w.low:
        return None
    return (max(0, w.last - GAP_SCAN_IDS) if w.low == 0 else w.low), w.last


def gaps(w: Window, ids: Sequence[int], *, now_ns: int) -> list[Pending]:
    """The new pending ranges: ids of :func:`gap_scan`'s range not in ``ids``
    (sorted), first missed now."""
    scan = gap_scan(w)
    if scan is None:
        return []
    return [(a, b, now_ns) for a, b in missing_ranges(scan[0] + 1, scan[1], ids)]


def is_pending(pending: Sequence[Pending], row_id: int) -> bool:
    return any(lo <= row_id <= hi for lo, hi, _ in pending)


def counted(last_id: int, pending: Sequence[Pending], row_id: int) -> bool:
    """Whether a row is in what was counted up to ``last_id`` with ``pending``."""
    return row_id <= last_id and not is_pending(pending, row_id)
