"""The one watermark (collectbus.pendingids): ids skipped because PostgreSQL
commits late are found exactly, and ids that go back are handled, for the
aggregates and the /metrics counters alike."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from collectbus.aggregate.checkpoint import Checkpoint
from collectbus.clock import NS_PER_S
from collectbus.pendingids import (
    GAP_SCAN_IDS,
    Window,
    expired,
    gap_scan,
    gaps,
    lookups,
    missing_ranges,
    still_pending,
    window,
)


@given(st.integers(1, 50), st.integers(0, 60), st.sets(st.integers(-5, 120)))
def test_missing_ranges_are_exactly_the_absent_ids(lo: int, span: int, seen: set[int]) -> None:
    hi = lo + span
    ranges = missing_ranges(lo, hi, sorted(seen))
    missing = {i for a, b in ranges for i in range(a, b + 1)}
    assert missing == {i for i in range(lo, hi + 1) if i not in seen}
    assert all(a <= b for a, b in ranges)
    assert all(b + 1 < c for (_, b), (c, _) in pairwise(ranges))


def test_a_pending_id_is_not_counted_until_it_is_seen() -> None:
    cp = Checkpoint(name="a", spec="{}", last_id=10, pending=((4, 5, 0),))
    assert [i for i in range(1, 13) if cp.counted(i)] == [1, 2, 3, 6, 7, 8, 9, 10]


def test_id_11_committed_after_id_12_is_pending_then_counted_once() -> None:
    """Two writers: id 12 commits and is read while id 11's writer is open."""
    w = window(10, (), 12, reuses_ids=False)
    assert (w.low, w.last) == (10, 12)
    pending = gaps(w, [12], now_ns=5)
    assert pending == [(11, 11, 5)]
    # The next read looks id 11 up again, before anything past 12.
    w2 = window(12, pending, 12, reuses_ids=False)
    assert (w2.low, w2.last) == (12, 12)  # no new rows
    assert lookups(w2) == [(11, 11, 5)]
    assert still_pending(lookups(w2)[0], [], now_ns=6, pending_s=600) == [(11, 11, 5)]
    assert still_pending(lookups(w2)[0], [11], now_ns=7, pending_s=600) == []


def test_a_writer_open_longer_than_pending_s_is_given_up_on() -> None:
    looked = (11, 13, 0)
    assert still_pending(looked, [12], now_ns=30 * NS_PER_S, pending_s=30) == [
        (11, 11, 0),
        (13, 13, 0),
    ]
    assert expired(looked, [12], now_ns=30 * NS_PER_S, pending_s=30) == 0
    assert still_pending(looked, [12], now_ns=31 * NS_PER_S, pending_s=30) == []
    assert expired(looked, [12], now_ns=31 * NS_PER_S, pending_s=30) == 2


def test_sqlite_newest_rows_deleted_moves_the_watermark_back() -> None:
    w = window(30, (), 20, reuses_ids=True)
    assert (w.low, w.last, w.back) == (20, 20, "reused")
    # Ids 21..24 are given again: new rows, read past 20.
    w2 = window(w.last, w.pending, 24, reuses_ids=True)
    assert (w2.low, w2.last, w2.back) == (20, 24, None)


def test_postgres_newest_rows_deleted_keeps_the_watermark() -> None:
    pending = ((5, 5, 0),)
    w = window(30, pending, 20, reuses_ids=False, sequence_last=30)
    assert (w.low, w.last, w.back, w.pending) == (30, 30, None, pending)
    unknown = window(30, pending, 20, reuses_ids=False)  # the sequence not read
    assert (unknown.low, unknown.last, unknown.back) == (30, 30, None)


def test_postgres_sequence_reset_counts_the_rows_present_from_zero() -> None:
    w = window(30, ((5, 5, 0),), 2, reuses_ids=False, sequence_last=2)
    assert (w.low, w.last, w.back, w.pending) == (0, 2, "reset", ())


def test_a_batch_cuts_the_window_and_says_more_waits() -> None:
    w = window(10, (), 500, reuses_ids=False, batch=100)
    assert (w.low, w.last, w.more) == (10, 110, True)
    assert not window(10, (), 50, reuses_ids=False, batch=100).more


def test_a_first_read_lists_only_the_newest_ids_for_gaps() -> None:
    top = GAP_SCAN_IDS * 3
    assert gap_scan(Window(0, top, ())) == (top - GAP_SCAN_IDS, top)
    assert gap_scan(Window(7, top, ())) == (7, top)
    assert gap_scan(Window(7, 7, ())) is None
