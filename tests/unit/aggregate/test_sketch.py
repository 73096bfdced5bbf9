"""Laws of the sketch and the group state: merging partial aggregates equals
aggregating everything at once, and retracting undoes adding."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from collectbus.aggregate.sketch import PENDING_CHARS, RELATIVE_ACCURACY, LogSketch, bucket_of
from collectbus.aggregate.state import (
    Contribution,
    GroupState,
    apply_deltas,
    key_from_json,
    key_json,
)

values = st.lists(
    st.one_of(
        st.integers(-(10**9), 10**9),
        st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False),
    ),
    max_size=60,
)


def sketch_of(xs: list[float]) -> LogSketch:
    return LogSketch.of(bucket_of(x) for x in xs)


@given(values, values)
def test_merging_sketches_equals_sketching_everything(a: list[float], b: list[float]) -> None:
    merged = sketch_of(a)
    merged.merge(sketch_of(b))
    assert merged == sketch_of(a + b)


@given(values, values)
def test_retracting_undoes_adding(a: list[float], b: list[float]) -> None:
    sketch = sketch_of(a + b)
    sketch.merge(sketch_of(b), sign=-1)
    assert sketch == sketch_of(a)
    assert all(count > 0 for count in sketch.counts.values())


codes = st.lists(st.integers(-(10**5), 10**9), max_size=40)


@given(st.lists(codes, max_size=8), codes, st.lists(codes, max_size=4), st.booleans())
def test_codes_handed_over_as_text_count_as_codes_added_one_by_one(
    texts: list[list[int]], retracted: list[int], merged: list[list[int]], spaced: bool
) -> None:
    """Texts of codes are counted late (when the counts are read), and a
    sketch merged in keeps its uncounted texts: the counts are the same as
    adding each code at once, whatever is read, merged or retracted between."""
    sep = ", " if spaced else ","  # PostgreSQL's json_agg spaces them out
    lazy, eager = LogSketch(), LogSketch()
    # A delta: codes retracted before any is added (negative counts), which
    # the texts then cancel.
    early = [c for group in texts for c in group][::3]
    lazy.merge(LogSketch.of(early), sign=-1)
    eager.merge(LogSketch.of(early), sign=-1)
    for i, group in enumerate(texts):
        lazy.add_codes("[" + sep.join(map(str, group)) + "]")
        for code in group:
            eager.add(code)
        if i == 1:
            assert lazy.total == eager.total  # read midway: counted so far
    other = LogSketch()
    for group in merged:
        other.add_codes(json.dumps(group))
        for code in group:
            eager.add(code)
    lazy.merge(other)
    lazy.merge(LogSketch.of(retracted), sign=-1)
    eager.merge(LogSketch.of(retracted), sign=-1)
    assert lazy == eager
    assert all(lazy.counts.values())
    assert LogSketch.from_json(lazy.to_json()) == eager


def test_uncounted_texts_are_counted_once_they_grow_large() -> None:
    sketch = LogSketch()
    text = json.dumps(list(range(1000)))
    for _ in range(PENDING_CHARS // len(text) + 1):
        sketch.add_codes(text)
    assert not sketch._texts  # counted as they arrived, not kept
    assert sketch.counts[999] == PENDING_CHARS // len(text) + 1
    sketch.add_codes("[]")
    sketch.add_codes("")
    assert not sketch._texts


@given(st.lists(st.floats(1e-6, 1e9), min_size=1, max_size=200), st.sampled_from([0.5, 0.95, 0.99]))
def test_quantiles_within_the_relative_accuracy(xs: list[float], q: float) -> None:
    """The quantile is the bucket of the value of rank floor(q (n - 1))."""
    exact = sorted(xs)[math.floor(q * (len(xs) - 1))]
    got = sketch_of(xs).quantile(q)
    assert got is not None
    assert abs(got - exact) <= RELATIVE_ACCURACY * exact * 1.0001


@given(values)
def test_cumulative_buckets_are_a_histogram(xs: list[float]) -> None:
    buckets = sketch_of(xs).cumulative()
    bounds = [le for le, _ in buckets]
    counts = [c for _, c in buckets]
    assert bounds == sorted(bounds)
    assert counts == sorted(counts)
    assert buckets[-1] == (math.inf, len(xs))
    for x in xs:  # every value is counted at or below the first bound above it
        first = next(c for le, c in buckets if x <= le)
        assert first >= sum(1 for y in xs if y < x)


rows = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.integers(0, 1),
        st.one_of(st.none(), st.integers(-1000, 1000)),
    ),
    max_size=40,
)


def contrib(key: str, error: int, value: int | None) -> Contribution:
    return Contribution((key,), error, (None if value is None else (value, bucket_of(value)),))


def state_of(items: list[tuple[str, int, int | None]]) -> dict[str, GroupState]:
    groups: dict[str, GroupState] = {}
    apply_deltas(groups, [(contrib(key, error, value), 1) for key, error, value in items], 1)
    return {str(key_from_json(k)[0]): g for k, g in groups.items()}


@given(rows, st.integers(0, 40))
def test_merging_partial_group_states_equals_aggregating_at_once(
    items: list[tuple[str, int, int | None]], cut: int
) -> None:
    whole = state_of(items)
    merged = state_of(items[:cut])
    for key, part in state_of(items[cut:]).items():
        merged.setdefault(key, GroupState.empty(1)).merge(part)
    assert merged.keys() == whole.keys()
    for key in whole:
        assert merged[key].same(whole[key]), key


@given(rows, rows)
def test_retracting_rows_leaves_the_others_exact_except_extremes(
    kept: list[tuple[str, int, int | None]], gone: list[tuple[str, int, int | None]]
) -> None:
    groups = {key_json((k,)): g for k, g in state_of(kept + gone).items()}
    retract = [(contrib(key, error, value), -1) for key, error, value in gone]
    stale = {(key[0], i) for _, key, i in apply_deltas(groups, retract, 1)}
    groups_by_name = {str(key_from_json(k)[0]): g for k, g in groups.items()}
    expected = state_of(kept)
    for key, group in groups_by_name.items():
        want = expected.get(key, GroupState.empty(1))
        assert (group.count, group.errors) == (want.count, want.errors)
        m, w = group.measures[0], want.measures[0]
        assert (m.n, m.sum, m.sketch) == (w.n, w.sum, w.sketch)
        if (key, 0) not in stale:  # min and max are only trusted when not marked
            assert (m.min, m.max) == (w.min, w.max)
