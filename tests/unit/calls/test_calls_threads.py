"""8 threads x 100k calls: nothing lost but the counted evictions, totals exact."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from tests.unit.calls.call_doubles import TickClock

from collectbus.calls import CallRecorder

THREADS = 8
CALLS = 100_000


def _hammer(work: Callable[[int], int], readers: Callable[[], None] | None = None) -> list[int]:
    """Run ``work`` CALLS times on each of THREADS threads, all started together,
    while ``readers`` runs in a loop; return the thread idents."""
    start = threading.Barrier(THREADS + 1)
    done = threading.Event()
    idents: list[int] = []
    failures: list[BaseException] = []

    def run() -> None:
        idents.append(threading.get_ident())
        start.wait()
        for i in range(CALLS):
            if work(i) != i:
                failures.append(AssertionError(f"wrong result for {i}"))
                return

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for t in threads:
        t.start()
    start.wait()
    try:
        while readers is not None and any(t.is_alive() for t in threads):
            readers()
    finally:
        done.set()
        for t in threads:
            t.join()
    assert not failures, failures[0]
    return idents


@pytest.mark.slow
def test_a_history_big_enough_loses_no_call() -> None:
    clock = TickClock()
    calls = CallRecorder(max_history=THREADS * CALLS, clock=clock)
    identity = calls.wrap(lambda i: i, name="identity")
    reads: list[int] = []

    def read() -> None:
        reads.append(len(calls.history(last=100)))  # snapshots while writers write

    idents = _hammer(identity, read)
    assert reads, "the reader never ran"
    assert (calls.held, calls.recorded, calls.evicted) == (THREADS * CALLS, THREADS * CALLS, 0)
    per_thread = Counter(r.thread_id for r in calls.history())
    assert per_thread == dict.fromkeys(idents, CALLS)
    stats = calls.stats("identity")
    assert (stats.calls, stats.errors, stats.held) == (THREADS * CALLS, 0, THREADS * CALLS)
    assert stats.total_s * 1e9 == pytest.approx(THREADS * CALLS)  # one tick per call


@pytest.mark.slow
def test_evictions_are_counted_exactly_and_totals_stay_exact() -> None:
    clock = TickClock(tick_ns=3)
    calls = CallRecorder(max_history=10_000, clock=clock)

    @calls(name="work")
    def work(i: int) -> int:
        if i % 1000 == 999:
            raise KeyError(i)
        return i

    def call(i: int) -> int:
        try:
            return work(i)
        except KeyError:
            return i

    def read() -> None:
        calls.stats("work")  # statistics while writers write

    _hammer(call, read)
    total = THREADS * CALLS
    assert calls.held == 10_000
    assert calls.recorded == total
    assert calls.evicted == total - 10_000
    stats = calls.stats("work")
    assert (stats.calls, stats.errors) == (total, THREADS * (CALLS // 1000))
    assert round(stats.total_s * 1e9) == 3 * total  # exact: 3 ns per call
    assert stats.held == 10_000
    assert calls.lost == 0
