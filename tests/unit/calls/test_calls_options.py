"""Sampling, slow calls, nesting, switching off, eviction and clear()."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable

import pytest
from tests.unit.calls.call_doubles import ManualClock

from collectbus.calls import CallRecorder


def _flaky(calls: CallRecorder, clock: ManualClock | None = None) -> Callable[[int], int]:
    """A handler that takes ``i`` ns and fails when ``i`` is a multiple of 10."""

    @calls(name="flaky")
    def flaky(i: int) -> int:
        if clock is not None:
            clock.advance(i)
        if i % 10 == 0:
            raise ValueError(i)
        return i

    return flaky


def _run(handler: Callable[[int], int], values: Iterable[int]) -> None:
    for i in values:
        with contextlib.suppress(ValueError):
            handler(i)


@pytest.mark.parametrize("slow", [None, 1.0])
def test_sampling_out_everything_still_records_every_error(slow: float | None) -> None:
    calls = CallRecorder(sample=0.0, slow_threshold=slow)
    flaky = _flaky(calls)
    _run(flaky, range(100))
    assert [r.error_message for r in calls.history()] == [str(i) for i in range(0, 100, 10)]
    stats = calls.stats("flaky")
    assert (stats.calls, stats.errors, stats.estimated_calls) == (10, 10, 10)


def test_sampling_keeps_about_the_fraction_and_all_errors() -> None:
    calls = CallRecorder(sample=0.5, max_history=100_000)
    flaky = _flaky(calls)
    _run(flaky, range(20_000))
    errors = calls.errors()
    assert len(errors) == 2_000
    successes = calls.recorded - len(errors)
    assert 8_000 < successes < 10_000  # 9,000 expected; 30 standard deviations apart
    assert 19_000 < calls.stats("flaky").estimated_calls < 21_000


def test_without_always_record_errors_errors_are_sampled_too() -> None:
    calls = CallRecorder(sample=0.0, always_record_errors=False)
    flaky = _flaky(calls)
    with pytest.raises(ValueError, match="0"):
        flaky(0)
    assert calls.recorded == 0


def test_slow_calls_are_recorded_even_when_sampled_out() -> None:
    clock = ManualClock()
    calls = CallRecorder(sample=0.0, slow_threshold=50e-9, clock=clock)
    flaky = _flaky(calls, clock)
    _run(flaky, range(1, 100))
    recorded = calls.history()
    assert all(r.elapsed_ns >= 50 or not r.ok for r in recorded)
    assert [r.elapsed_ns for r in recorded if r.ok] == [i for i in range(50, 100) if i % 10]
    assert calls.stats("flaky").slow == 50


@pytest.mark.parametrize("sample", [1.0, 0.5])
def test_outermost_records_only_the_outer_call_of_a_recursion(sample: float) -> None:
    calls = CallRecorder(nested="outermost", sample=sample, slow_threshold=0.0)

    @calls
    def fact(n: int) -> int:
        return 1 if n <= 1 else n * fact(n - 1)

    @calls
    def outer() -> int:
        return fact(5)

    assert fact(10) == 3_628_800
    assert outer() == 120
    # Every outermost call is kept (slow_threshold=0 keeps the sampled-out ones too).
    assert [r.handler for r in calls.history()] == [
        "test_outermost_records_only_the_outer_call_of_a_recursion.fact",
        "test_outermost_records_only_the_outer_call_of_a_recursion.outer",
    ]


def test_with_nested_all_every_level_is_recorded() -> None:
    calls = CallRecorder()

    @calls
    def fact(n: int) -> int:
        return 1 if n <= 1 else n * fact(n - 1)

    fact(10)
    assert calls.recorded == 10


def test_outermost_is_per_task_for_coroutines() -> None:
    calls = CallRecorder(nested="outermost")

    @calls
    async def leaf(i: int) -> int:
        await asyncio.sleep(0)
        return i

    @calls
    async def fan_out() -> list[int]:
        return [await leaf(i) for i in range(3)]

    async def main() -> None:
        # Two tasks interleave on one thread: each one's outer call is recorded.
        await asyncio.gather(fan_out(), leaf(9))

    asyncio.run(main())
    names = sorted(r.handler.rsplit(".", 1)[-1] for r in calls.history())
    assert names == ["fan_out", "leaf"]


@pytest.mark.parametrize("sample", [1.0, 0.0])
def test_switching_off_and_on(sample: float) -> None:
    calls = CallRecorder(sample=sample, enabled=False)
    flaky = _flaky(calls)
    with pytest.raises(ValueError, match="0"):
        flaky(0)
    assert calls.recorded == 0
    calls.enabled = True
    with pytest.raises(ValueError, match="0"):
        flaky(0)
    assert calls.recorded == 1
    assert calls.enabled


def test_eviction_is_counted_and_totals_survive_it() -> None:
    clock = ManualClock()
    calls = CallRecorder(max_history=10, clock=clock)
    flaky = _flaky(calls, clock)
    _run(flaky, range(1, 101))
    assert (calls.held, calls.recorded, calls.evicted) == (10, 100, 90)
    stats = calls.stats("flaky")
    assert (stats.calls, stats.errors, stats.held) == (100, 10, 10)
    assert stats.total_s == pytest.approx(sum(range(1, 101)) / 1e9)
    assert stats.min_s == pytest.approx(91e-9)  # over the held calls only
    assert stats.last_error == "ValueError"


def test_clear_starts_again_from_zero() -> None:
    calls = CallRecorder()
    flaky = _flaky(calls)
    for i in range(1, 5):
        flaky(i)
    calls.clear()
    assert (calls.held, calls.recorded, calls.evicted) == (0, 0, 0)
    assert calls.stats("flaky").calls == 0
    flaky(1)
    assert calls.stats("flaky").calls == 1


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_history"):
        CallRecorder(max_history=0)
    with pytest.raises(ValueError, match="sample"):
        CallRecorder(sample=1.5)
    with pytest.raises(ValueError, match="capture"):
        CallRecorder(capture="everything")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nested"):
        CallRecorder(nested="inner")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not callable"):
        CallRecorder().wrap(42)  # type: ignore[type-var]
