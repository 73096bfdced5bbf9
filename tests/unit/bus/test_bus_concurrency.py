"""Publishers, consumers and subscribers coming and going, racing on real threads.

These tests race real threads on purpose; what they check holds for every
interleaving (exact counts, FIFO, no lost wake-up), so they pass or fail
regardless of timing. Nothing here asserts a duration.
"""

from __future__ import annotations

import logging
import random
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from tests.unit.bus.bus_doubles import GUARD_S, ScriptedCollector, result, seconds, tick, wait_until

from collectbus.bus import CollectionBus, Result
from collectbus.bus.fanout import Fanout
from collectbus.clock import FakeClock

PUBLISHERS = 4
PER_PUBLISHER = 3000
# seq = publisher * SEQ_BASE + n: who published it, and in which order.
SEQ_BASE = 1_000_000


@pytest.fixture
def racy() -> Iterator[None]:
    """Switch threads every few bytecodes instead of every 5 ms, so that the
    races these tests are about happen often rather than almost never."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def _publish_all(fanout: Fanout, collectors: tuple[str, ...] = ("c",)) -> list[threading.Thread]:
    def produce(p: int) -> None:
        for n in range(PER_PUBLISHER):
            fanout.publish(result(collectors[n % len(collectors)], seq=p * SEQ_BASE + n))

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(PUBLISHERS)]
    for t in threads:
        t.start()
    return threads


def _join(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.join(GUARD_S * 3)
        assert not t.is_alive()


def _assert_fifo_and_unique(seqs: list[int]) -> None:
    assert len(seqs) == len(set(seqs)), "a result was delivered twice"
    last: dict[int, int] = {}
    for seq in seqs:
        publisher, n = divmod(seq, SEQ_BASE)
        assert n > last.get(publisher, -1), "results of one publisher out of order"
        last[publisher] = n


def test_counts_are_exact_once_publishers_are_done_with_every_kind_of_consumer(
    clock: FakeClock,
    racy: None,
) -> None:
    fanout = Fanout(clock)
    got: list[int] = []
    slow = fanout.subscribe(lambda r: got.append(r.seq), name="callback", maxsize=40)
    pulled = fanout.subscribe(name="pulled", maxsize=25, collectors=["a"])
    latest = fanout.subscribe(name="latest", policy="latest")
    newest = fanout.subscribe(name="newest", maxsize=30, policy="drop_newest")
    taken: list[list[int]] = [[], []]
    stop = threading.Event()

    def read(into: list[int]) -> None:  # two readers share one pull subscription
        while not stop.is_set() or pulled.queued:
            r = pulled.get(timeout=0.01)
            if r is not None:
                into.append(r.seq)

    readers = [threading.Thread(target=read, args=(t,)) for t in taken]
    for t in readers:
        t.start()
    seen: list[int] = []  # dropped, read while everything runs: it never goes down
    sampler = threading.Thread(
        target=lambda: [seen.append(slow.dropped) for _ in range(300)]  # type: ignore[func-returns-value]
    )
    sampler.start()
    _join(_publish_all(fanout, collectors=("a", "b")))
    sampler.join(GUARD_S)
    assert seen == sorted(seen)

    total = PUBLISHERS * PER_PUBLISHER
    # Publishers are done, consumers still run: the figures of one health() add up.
    for h in fanout.health():
        sent = total // 2 if h.name == "pulled" else total
        assert h.delivered + h.dropped + h.queued == sent, h
    stop.set()
    _join(readers)
    for sub, drained in fanout.close_all():
        assert drained.wait(GUARD_S), sub.name

    assert slow.delivered + slow.dropped == total
    assert (slow.queued, slow.delivered) == (0, len(got))
    _assert_fifo_and_unique(got)
    assert pulled.delivered + pulled.dropped + pulled.queued == total // 2
    assert pulled.delivered == len(taken[0]) + len(taken[1])
    for part in taken:
        _assert_fifo_and_unique(part)
    both = taken[0] + taken[1]
    assert len(both) == len(set(both)), "two readers got the same result"
    assert (latest.dropped, latest.queued) == (total - 1, 1)
    assert (newest.dropped, newest.queued) == (total - 30, 30)


def test_dropped_never_runs_ahead_of_the_real_evictions(clock: FakeClock, racy: None) -> None:
    """With room for everything nothing is ever evicted, so every reading,
    even in the middle of a publish, must say 0."""
    fanout = Fanout(clock)
    sub = fanout.subscribe(name="s", maxsize=PUBLISHERS * PER_PUBLISHER)
    readings: list[int] = []
    publishers = _publish_all(fanout)
    while any(p.is_alive() for p in publishers):
        readings.append(sub.dropped)
        readings.extend(h.dropped for h in fanout.health())
    _join(publishers)
    assert readings
    assert set(readings) == {0}
    assert (sub.dropped, sub.queued) == (0, PUBLISHERS * PER_PUBLISHER)


def test_a_sleeping_consumer_is_never_left_asleep(clock: FakeClock, racy: None) -> None:
    """Hand results over one at a time: a lost wake-up would hang a round."""
    fanout = Fanout(clock)
    sub = fanout.subscribe(name="s", maxsize=1)
    got = threading.Event()
    received: list[int] = []

    def read() -> None:
        while (r := sub.get(timeout=GUARD_S)) is not None:
            received.append(r.seq)
            got.set()

    reader = threading.Thread(target=read)
    reader.start()
    for n in range(3000):
        if n % 3 == 1:
            time.sleep(0)  # let the reader get further on its way to sleep
        elif n % 3 == 2:
            time.sleep(0.0001)  # and let it fall asleep
        got.clear()
        fanout.publish(result(seq=n))
        assert got.wait(GUARD_S), f"the reader was not woken for result {n}"
    sub.close()
    reader.join(GUARD_S)
    assert received == list(range(3000))
    assert sub.dropped == 0


def test_subscribers_coming_and_going_keep_the_counts_exact(clock: FakeClock, racy: None) -> None:
    fanout = Fanout(clock)
    keep = fanout.subscribe(name="keep", maxsize=10)
    publishers = _publish_all(fanout)
    churned = []
    for n in range(40):  # each one closes while publishers still run
        received: list[int] = []
        sub = fanout.subscribe(received.append, name=f"t{n}", maxsize=5)  # type: ignore[arg-type]
        time.sleep(0.001)
        sub.close()
        churned.append((sub, received))
    _join(publishers)
    for sub, received in churned:
        assert sub._finished.wait(GUARD_S)
        # Nothing was left behind by a publish that raced close().
        assert (sub.queued, sub.delivered) == (0, len(received))
    assert keep.delivered + keep.dropped + keep.queued == PUBLISHERS * PER_PUBLISHER


def test_drops_are_warned_about_at_once_then_rate_limited(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    fanout = Fanout(clock)
    sub = fanout.subscribe(name="s", maxsize=1)
    with caplog.at_level(logging.WARNING, logger="collectbus.bus"):
        for n in range(5):  # the first drop warns; the next 3 wait for the interval
            fanout.publish(result(seq=n))
        clock.advance(seconds(9.9))
        fanout.check_drops()  # within the interval: no warning
        clock.advance(seconds(0.1))
        fanout.health()  # health() looks too
        for n in range(2):
            fanout.publish(result(seq=n))
        sub.close()  # closing reports what is left, whatever the rate limit
    assert [r.getMessage() for r in caplog.records] == [
        "subscriber s: dropped 1 result(s) since the last warning "
        "(policy drop_oldest, maxsize 1, 1 dropped in all)",
        "subscriber s: dropped 3 result(s) since the last warning "
        "(policy drop_oldest, maxsize 1, 4 dropped in all)",
        "subscriber s: dropped 2 result(s) since the last warning "
        "(policy drop_oldest, maxsize 1, 6 dropped in all)",
    ]
    assert (sub.dropped, sub.queued) == (6, 1)


def test_the_running_bus_warns_about_drops_by_itself(
    bus: CollectionBus,
    clock: FakeClock,
    collector: ScriptedCollector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus.add(collector, tier="fast")
    sub = bus.subscribe(name="s", maxsize=1)
    with caplog.at_level(logging.WARNING, logger="collectbus.bus"):
        bus.start()
        wait_until(lambda: sub.queued == 1, "the first result")
        tick(clock)
        wait_until(lambda: sub.dropped == 1, "the second result, evicting the first")

        def warned() -> bool:
            return any("dropped" in r.getMessage() for r in caplog.records)

        wait_until(warned, "the warning, given by the publish that dropped")
    warnings = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert warnings[0] == (
        "subscriber s: dropped 1 result(s) since the last warning "
        "(policy drop_oldest, maxsize 1, 1 dropped in all)"
    )


def test_the_running_bus_warns_when_a_block_deadline_passes_between_publishes(
    bus: CollectionBus,
    clock: FakeClock,
    collector: ScriptedCollector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus.add(collector, tier="fast", interval=2.0)
    sub = bus.subscribe(name="s", maxsize=1, policy="block", block_timeout=2.0)
    with caplog.at_level(logging.WARNING, logger="collectbus.bus"):
        bus.start()
        wait_until(lambda: sub.queued == 1, "the first result")
        bus.collect_now("c")  # waits for room in the queue, until 2 s from now
        assert (sub.dropped, sub.queued) == (0, 2)
        collector.gate.clear()  # the next collection publishes nothing yet
        tick(clock, 2.0)  # the scheduler wakes up for it and looks for drops
        collector.gate.set()
    assert [r.getMessage() for r in caplog.records] == [
        "subscriber s: dropped 1 result(s) since the last warning "
        "(policy block, maxsize 1, 1 dropped in all)"
    ]
    assert (sub.dropped, sub.queued) == (1, 1)


def test_counts_are_exact_at_random_instants_under_8_publishers_and_a_slow_consumer(
    clock: FakeClock, racy: None
) -> None:
    """While 8 publishers race and a slow consumer drains, stop the publishers
    between two publishes at random instants: at each, every subscriber's
    ``delivered + dropped + queued`` must be exactly what was published."""
    publishers, per_publisher = 8, 1500
    rng = random.Random(8)
    fanout = Fanout(clock)
    got: list[int] = []

    def slow(r: Result) -> None:
        got.append(r.seq)
        if r.seq % 7 == 0:
            time.sleep(0.0002)  # slower than the publishers: its queue overflows

    subs = [
        fanout.subscribe(slow, name="slow", maxsize=50),
        fanout.subscribe(slow, name="batched", maxsize=50, batch=10, linger=0.01),
        fanout.subscribe(name="newest", maxsize=40, policy="drop_newest"),
        fanout.subscribe(name="latest", policy="latest"),
        fanout.subscribe(name="block", maxsize=30, policy="block"),
    ]
    # Each publisher holds its own lock around a publish, so that holding all
    # of them stops every publisher between two publishes.
    locks = [threading.Lock() for _ in range(publishers)]
    published = [0] * publishers

    def produce(p: int) -> None:
        for n in range(per_publisher):
            with locks[p]:
                fanout.publish(result(seq=p * SEQ_BASE + n))
                published[p] += 1

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(publishers)]
    for t in threads:
        t.start()
    instants = 0
    while any(t.is_alive() for t in threads):
        time.sleep(rng.random() * 0.002)
        for lock in locks:
            lock.acquire()
        try:
            sent = sum(published)
            # Each row is read at one instant; the consumers go on meanwhile.
            for h in fanout.health():
                assert h.delivered + h.dropped + h.queued == sent, (sent, h)
        finally:
            for lock in locks:
                lock.release()
        instants += 1
    _join(threads)
    assert instants > 1
    total = publishers * per_publisher
    for sub, drained in fanout.close_all():
        assert drained.wait(GUARD_S), sub.name
    for h in fanout.health():
        assert h.delivered + h.dropped + h.queued == total, h
    assert subs[0].dropped > 0, "the slow consumer never fell behind: nothing was tested"
    assert subs[0].delivered + subs[1].delivered == len(got)
