"""How totals are stored: a sketch and a group's measures read back as they
were written, in the compact encoding and in the first one; a group's
sketches, stored apart, too."""

from __future__ import annotations

import base64
import json
from array import array

from hypothesis import given
from hypothesis import strategies as st

from collectbus.aggregate.sketch import ZERO_CODE, LogSketch, codes_text
from collectbus.aggregate.state import GroupState, MeasureState, sketches_from_text

codes = st.one_of(st.integers(-80_000, 80_000), st.just(ZERO_CODE))
counts = st.dictionaries(codes, st.integers(1, 2**31 - 1), max_size=80)
numbers = st.one_of(st.none(), st.integers(-(2**62), 2**62), st.floats(allow_nan=False))


@given(counts)
def test_a_sketch_reads_back_as_written(c: dict[int, int]) -> None:
    sketch = LogSketch(c)
    encoded = sketch.to_json()
    assert encoded.startswith("j:")
    assert LogSketch.from_json(encoded) == sketch


def test_counts_past_int32_use_the_wide_encoding() -> None:
    sketch = LogSketch({2: 2**40, -7: 3, ZERO_CODE: 1})
    encoded = sketch.to_json()
    assert encoded.startswith("k:")
    assert LogSketch.from_json(encoded) == sketch


@given(counts)
def test_the_first_encoding_still_reads(c: dict[int, int]) -> None:
    """Native int64 pairs ``code, count, ...`` in base64, as stored before."""
    flat = array("q", [v for pair in c.items() for v in pair])
    old = base64.b64encode(flat.tobytes()).decode("ascii")
    assert LogSketch.from_json(old) == LogSketch(c)


@given(st.lists(st.tuples(st.integers(0, 10**6), numbers, numbers, numbers, counts), max_size=3))
def test_a_groups_measures_and_sketches_read_back_as_written(
    ms: list[
        tuple[int, int | float | None, int | float | None, int | float | None, dict[int, int]]
    ],
) -> None:
    names = [f'm"{i}\\' for i in range(len(ms))]
    group = GroupState(
        count=7,
        errors=1,
        measures=[MeasureState(n, s or 0, lo, hi, LogSketch(c)) for n, s, lo, hi, c in ms],
    )
    text = group.measures_json(names)
    assert text == json.dumps(
        {name: m.to_json() for name, m in zip(names, group.measures, strict=True)}
    )
    assert "sketch" not in text
    back = GroupState.from_row(7, 1, text, names)
    assert back.count == 7
    assert back.errors == 1
    if ms:
        sketches = sketches_from_text(group.sketches_text())
        assert sketches == [m.sketch for m in group.measures]
    for a, b in zip(back.measures, group.measures, strict=True):
        assert (a.n, a.min, a.max) == (b.n, b.min, b.max)
        assert a.sum == b.sum or (a.sum != a.sum and b.sum != b.sum)


@given(st.lists(codes, max_size=60))
def test_new_rows_codes_read_back_counted(listed: list[int]) -> None:
    """New rows' buckets are stored as the database gave them: a JSON array
    of codes (PostgreSQL writes it with spaces), each counted once."""
    for text in (json.dumps(listed), json.dumps(listed, separators=(",", ":"))):
        assert LogSketch.from_json(codes_text(text)) == LogSketch.of(listed)
    if not listed:
        assert LogSketch.from_json(codes_text("")) == LogSketch()
