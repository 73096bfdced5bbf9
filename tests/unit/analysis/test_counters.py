"""counter_delta: growth, 32-bit wraps and resets."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from collectbus.analysis.counters import MAX_WRAPPED_INCREASE, WRAP_32, counter_delta


def test_growth_wrap_and_reset() -> None:
    prev = np.array([10, WRAP_32 - 100, 2**40, 500, 7])
    cur = np.array([25, 50, 2**40 - 1, 400, 9])
    reset = np.array([False, False, False, False, True])
    out = counter_delta(prev, cur, reset)
    assert out[0] == 15
    assert out[1] == 150  # a 32-bit counter wrapped
    assert np.isnan(out[2])  # went back from above 2**32: a reset, not a wrap
    assert np.isnan(out[3])  # a small step back is a restart, not a 4 GiB wrap
    assert np.isnan(out[4])  # told so (boot time changed, device re-created)


def test_cpu_ticks_going_back_are_clamped_to_zero() -> None:
    out = counter_delta([500, 10], [499, 30], [False, False], clamp=True)
    assert out.tolist() == [0.0, 20.0]
    assert np.isnan(counter_delta([1], [2], [True], clamp=True)[0])


@given(st.lists(st.integers(0, 2**50), min_size=2, max_size=30))
def test_a_growing_counter_gives_its_differences(steps: list[int]) -> None:
    values = np.cumsum(np.array(steps, dtype=np.int64))
    out = counter_delta(values[:-1], values[1:], np.zeros(len(values) - 1, dtype=bool))
    assert out.tolist() == [float(d) for d in np.diff(values)]


@given(st.integers(0, WRAP_32 - 1), st.integers(0, MAX_WRAPPED_INCREASE - 1))
def test_a_32_bit_counter_is_exact_across_its_wrap(start: int, increase: int) -> None:
    end = (start + increase) % WRAP_32
    assert counter_delta([start], [end], [False])[0] == increase


@given(st.integers(0, WRAP_32 - 1), st.integers(MAX_WRAPPED_INCREASE, WRAP_32 - 1))
def test_an_implausible_wrap_is_a_reset(start: int, increase: int) -> None:
    end = (start + increase) % WRAP_32
    if end < start:
        assert np.isnan(counter_delta([start], [end], [False])[0])
