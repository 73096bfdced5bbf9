"""Beats: a pool thread that keeps a collector's ticks itself.

The pool tests drive :class:`WorkerPool` directly. The bus tests run on the
system clock, the only one beats are kept on, with short intervals; they wait
for events, never for a time, and assert no duration.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from tests.unit.bus.bus_doubles import GUARD_S, ScriptedCollector, wait_until

from collectbus.bus import CollectionBus, Result
from collectbus.bus.pool import Beat, WorkerPool

# --------------------------------------------------------------------- pool


def test_a_beat_runs_on_the_thread_that_kept_it() -> None:
    pool = WorkerPool(2)
    threads: list[int] = []
    done = threading.Event()

    def second() -> None:
        threads.append(threading.get_ident())
        done.set()

    def first() -> Beat:
        threads.append(threading.get_ident())
        return Beat(at_ns=time.monotonic_ns(), job=second, drop=lambda: None)

    pool.submit(first)
    assert done.wait(GUARD_S)
    pool.shutdown()
    assert len(threads) == 2
    assert threads[0] == threads[1]


def test_a_job_takes_a_keeping_thread_when_none_is_idle_and_the_beat_goes_back() -> None:
    pool = WorkerPool(1)
    dropped = threading.Event()
    ran = threading.Event()
    beat_ran = threading.Event()

    def keep() -> Beat:
        far = time.monotonic_ns() + 3600 * 1_000_000_000
        return Beat(at_ns=far, job=lambda: beat_ran.set(), drop=dropped.set)

    pool.submit(keep)
    pool.submit(ran.set)  # the one thread keeps a beat for an hour: it takes this job
    assert ran.wait(GUARD_S)
    assert dropped.is_set()
    assert not beat_ran.is_set()
    pool.shutdown()


def test_shutdown_gives_every_beat_back() -> None:
    pool = WorkerPool(2)
    dropped = threading.Event()
    kept = threading.Event()

    def keep() -> Beat:
        kept.set()
        far = time.monotonic_ns() + 3600 * 1_000_000_000
        return Beat(at_ns=far, job=lambda: None, drop=dropped.set)

    pool.submit(keep)
    assert kept.wait(GUARD_S)
    pool.shutdown()
    assert dropped.wait(GUARD_S)


# ---------------------------------------------------------------------- bus


@pytest.fixture
def real_bus() -> Iterator[CollectionBus]:
    bus = CollectionBus(host="h", tiers={"fast": 0.005})
    yield bus
    bus.stop(deadline=GUARD_S)


def test_kept_ticks_are_published_in_order_and_counted(real_bus: CollectionBus) -> None:
    collector = ScriptedCollector("c")
    real_bus.add(collector, tier="fast", timeout=GUARD_S)
    seqs: list[int] = []
    real_bus.subscribe(lambda r: seqs.append(r.seq), name="s")
    real_bus.start()
    wait_until(lambda: len(seqs) >= 50, "50 ticks")
    real_bus.stop(deadline=GUARD_S)
    assert seqs == list(range(1, len(seqs) + 1))
    row = real_bus.health().collector("c")
    assert row.runs == row.ok == collector.calls == len(seqs)
    assert collector.closed


def test_a_kept_collection_that_hangs_times_out_and_the_ticks_are_skipped_then_resume(
    real_bus: CollectionBus,
) -> None:
    collector = ScriptedCollector("c")
    real_bus.add(collector, tier="fast", timeout=0.05)
    results: list[Result] = []
    real_bus.subscribe(results.append, name="s")  # type: ignore[arg-type]
    real_bus.start()
    wait_until(lambda: len(results) >= 20, "20 ticks")
    collector.gate.clear()  # the next collection hangs
    wait_until(lambda: any(r.event.status == "timeout" for r in results), "the timeout")
    wait_until(lambda: real_bus.health().collector("c").skips > 0, "ticks skipped meanwhile")
    collector.gate.set()
    timed_out = next(i for i, r in enumerate(results) if r.event.status == "timeout")
    wait_until(
        lambda: sum(r.event.status == "ok" for r in results[timed_out:]) >= 20,
        "20 more ticks after the hang",
    )
    real_bus.stop(deadline=GUARD_S)
    row = real_bus.health().collector("c")
    assert row.timeouts == 1
    assert row.late_discarded == 1
    assert row.runs == row.ok + row.timeouts == collector.calls
    seqs = [r.seq for r in results]
    assert seqs == sorted(seqs)
    assert len(seqs) == len(set(seqs))


def test_a_subscriber_that_asks_for_more_speeds_a_kept_collector_up(
    real_bus: CollectionBus,
) -> None:
    collector = ScriptedCollector("c")
    real_bus.add(collector, tier="fast", interval=3600.0, timeout=GUARD_S)
    seqs: list[int] = []
    real_bus.subscribe(lambda r: seqs.append(r.seq), name="slow")
    real_bus.start()
    wait_until(lambda: len(seqs) == 1, "the first tick")  # the next is an hour away
    real_bus.subscribe(name="fast", every=0.005)
    wait_until(lambda: len(seqs) >= 20, "the faster ticks")
    assert real_bus.health().collector("c").interval_s == 0.005
    real_bus.stop(deadline=GUARD_S)
    assert seqs == list(range(1, len(seqs) + 1))


def test_get_during_kept_ticks_shares_the_cache(real_bus: CollectionBus) -> None:
    collector = ScriptedCollector("c")
    real_bus.add(collector, tier="fast", timeout=GUARD_S)
    seqs: list[int] = []
    real_bus.subscribe(lambda r: seqs.append(r.seq), name="s")
    real_bus.start()
    for _ in range(50):
        real_bus.get("c")
        real_bus.collect_now("c")
    wait_until(lambda: len(seqs) >= 60, "60 results")
    real_bus.stop(deadline=GUARD_S)
    row = real_bus.health().collector("c")
    assert row.runs == row.ok == collector.calls
    assert seqs == list(range(1, len(seqs) + 1))
