"""Ids skipped by the watermark (PostgreSQL commits late) are found exactly."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from collectbus.aggregate.checkpoint import Checkpoint
from collectbus.aggregate.delta import missing_ranges


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
