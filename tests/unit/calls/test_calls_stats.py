"""Per-handler statistics agree with NumPy on the same data, whatever the data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectbus.calls.stats import PERCENTILES, group

calls = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 10**12), st.booleans()), min_size=0, max_size=300
)


@settings(max_examples=200, deadline=None)
@given(calls, st.none() | st.integers(0, 10**12))
def test_groups_match_numpy_per_handler(
    rows: list[tuple[int, int, bool]], slow_ns: int | None
) -> None:
    keys = np.array([r[0] for r in rows], dtype=np.int64)
    elapsed = np.array([r[1] for r in rows], dtype=np.int64)
    errors = np.array([r[2] for r in rows], dtype=np.bool_)
    groups = group(keys, elapsed, errors, slow_ns=slow_ns)
    assert groups.keys.tolist() == sorted(set(keys.tolist()))
    for row, key in enumerate(groups.keys.tolist()):
        mine = keys == key
        values = elapsed[mine]
        assert groups.held[row] == mine.sum()
        assert groups.errors[row] == errors[mine].sum()
        assert groups.total_ns[row] == values.sum()
        assert (groups.min_ns[row], groups.max_ns[row]) == (values.min(), values.max())
        expected = np.percentile(values, PERCENTILES)
        assert groups.percentiles_ns[row] == pytest.approx(expected, rel=1e-12, abs=1e-3)
        assert groups.last[row] == np.flatnonzero(mine)[-1]
        assert groups.slow[row] == (0 if slow_ns is None else (values >= slow_ns).sum())


@given(calls)
def test_grouping_in_parts_then_merging_counts_equals_grouping_all(
    rows: list[tuple[int, int, bool]],
) -> None:
    keys = np.array([r[0] for r in rows], dtype=np.int64)
    elapsed = np.array([r[1] for r in rows], dtype=np.int64)
    errors = np.array([r[2] for r in rows], dtype=np.bool_)
    half = len(rows) // 2
    whole = group(keys, elapsed, errors)
    parts = [
        group(keys[:half], elapsed[:half], errors[:half]),
        group(keys[half:], elapsed[half:], errors[half:]),
    ]
    merged: dict[int, list[int]] = {}
    for part in parts:
        for k, held, errs, total in zip(
            part.keys.tolist(),
            part.held.tolist(),
            part.errors.tolist(),
            part.total_ns.tolist(),
            strict=True,
        ):
            acc = merged.setdefault(k, [0, 0, 0])
            acc[0] += held
            acc[1] += errs
            acc[2] += total
    assert merged == {
        k: [h, e, t]
        for k, h, e, t in zip(
            whole.keys.tolist(),
            whole.held.tolist(),
            whole.errors.tolist(),
            whole.total_ns.tolist(),
            strict=True,
        )
    }
