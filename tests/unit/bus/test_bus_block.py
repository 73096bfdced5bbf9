"""A ``block`` subscriber waits for its own queue only: the bus and the others go on."""

from __future__ import annotations

import random
import threading
import time

from tests.unit.bus.bus_doubles import (
    GUARD_S,
    ScriptedCollector,
    result,
    seconds,
    tick,
    wait_until,
)

from collectbus.bus import CollectionBus, Result
from collectbus.bus.fanout import Fanout
from collectbus.clock import FakeClock

TICKS = 30


def test_a_stuck_block_subscriber_neither_skips_collections_nor_starves_the_others(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    """A fast collector (a tick a second) and a ``block`` subscriber (maxsize 5,
    5 s deadline) whose callback does not return: every tick still runs, the
    other subscriber gets every result, and the blocked one drops exactly the
    results that waited for room longer than its deadline."""
    stuck = threading.Event()
    blocked_seqs: list[int] = []

    def sleepy(r: Result) -> None:
        blocked_seqs.append(r.seq)
        assert stuck.wait(GUARD_S * 3)

    bus.add(collector, tier="fast")
    blocked = bus.subscribe(sleepy, name="blocked", maxsize=5, policy="block", block_timeout=5.0)
    other = bus.subscribe(name="other")
    bus.start()
    for n in range(1, TICKS + 2):  # the ticks at 0, 1, ..., 30 s
        if n > 1:
            tick(clock)

        def published(count: int = n) -> bool:
            return other.queued == count and not bus.health().collector("c").busy

        wait_until(published, f"result {n} to reach the other subscriber")
        if n == 1:
            wait_until(lambda: blocked.delivered == 1, "the stuck callback to take result 1")

    health = bus.health()
    c = health.collector("c")
    assert (c.runs, c.ok, c.skips, c.missed) == (TICKS + 1, TICKS + 1, 0, 0)
    assert [r.seq for r in iter(lambda: other.get(timeout=0), None)] == list(range(1, TICKS + 2))
    # Result 1 is in the callback, 2-6 fill the queue, 7-31 (published at 6..30 s)
    # wait for room; those published at 25 s or before have passed their deadline.
    b = health.subscriber("blocked")
    assert (b.delivered, b.dropped, b.queued) == (1, 20, 10)

    stuck.set()  # the callback returns: the queue, then the waiting results, in order
    wait_until(lambda: blocked.delivered == 11, "the blocked subscriber to drain")
    assert blocked_seqs == [1, 2, 3, 4, 5, 6, 27, 28, 29, 30, 31]
    assert (blocked.dropped, blocked.queued) == (20, 0)


def test_every_result_is_accounted_for_at_any_instant_under_concurrent_publishers(
    clock: FakeClock,
) -> None:
    """8 publishers, slow consumers on every policy, and health() read at
    arbitrary instants while they all run. Each subscriber's figures, read at
    one instant, add up to what was published to it: between what had been
    published before the read and what had begun by its end; and exactly, at
    instants when the publishers are held (the consumers and the clock, which
    drops the ``block`` subscriber's late results, are not)."""
    publishers, checks = 8, 60
    fanout = Fanout(clock, warn_interval_s=3600)

    def slow(r: Result) -> None:
        time.sleep(0.0002)  # a consumer slower than the publishers

    fanout.subscribe(slow, name="drop_oldest", maxsize=20)
    fanout.subscribe(slow, name="drop_newest", maxsize=20, policy="drop_newest")
    fanout.subscribe(slow, name="latest", policy="latest")
    fanout.subscribe(slow, name="block", maxsize=20, policy="block", block_timeout=0.5)
    pulled = fanout.subscribe(name="pulled", maxsize=30, collectors=["a"])

    # Publishes begun and done, per collector, counted around each publish.
    begun = {"a": 0, "b": 0}
    done = {"a": 0, "b": 0}
    counting = threading.Lock()
    # Publishers hold ``gate`` shared; an exact check holds them off.
    gate = threading.Condition()
    active = 0
    holding = False
    finished = threading.Event()

    def produce(p: int) -> None:
        nonlocal active
        n = 0
        while not finished.is_set():
            n += 1
            collector = "a" if n % 2 else "b"
            with gate:
                while holding:
                    gate.wait()
                active += 1
            with counting:
                begun[collector] += 1
            fanout.publish(result(collector, seq=p * 10_000 + n))
            with counting:
                done[collector] += 1
            with gate:
                active -= 1
                gate.notify_all()

    def read() -> None:  # a slow pull reader
        while not finished.is_set():
            pulled.get(timeout=0.01)
            time.sleep(0.0001)

    def sent(counts: dict[str, int], name: str) -> int:
        return counts["a"] if name == "pulled" else counts["a"] + counts["b"]

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(publishers)]
    reader = threading.Thread(target=read)
    for t in [*threads, reader]:
        t.start()
    rng = random.Random(7)
    exact_checks = bracket_checks = 0
    wrong: list[tuple[str, int, int, int]] = []
    last_dropped: dict[str, int] = {}
    for _ in range(checks):
        time.sleep(rng.uniform(0, 0.003))  # an arbitrary instant
        if rng.random() < 0.5:  # publishers running
            with counting:
                before = dict(done)
            rows = fanout.health()
            with counting:
                after = dict(begun)
            for h in rows:
                total = h.delivered + h.dropped + h.queued
                if not sent(before, h.name) <= total <= sent(after, h.name):
                    wrong.append((h.name, sent(before, h.name), total, sent(after, h.name)))
            bracket_checks += 1
        else:  # publishers held, consumers running
            with gate:
                holding = True
                while active:
                    gate.wait()
            clock.advance(seconds(0.1))  # waiting "block" results reach their deadline
            with counting:
                now = dict(done)
            for h in fanout.health():
                total = h.delivered + h.dropped + h.queued
                if total != sent(now, h.name):
                    wrong.append((h.name, sent(now, h.name), total, sent(now, h.name)))
            exact_checks += 1
            with gate:
                holding = False
                gate.notify_all()
        for h in fanout.health():
            assert h.dropped >= last_dropped.get(h.name, 0), "a drop count went down"
            last_dropped[h.name] = h.dropped
    finished.set()
    for t in [*threads, reader]:
        t.join(GUARD_S)
        assert not t.is_alive()
    assert exact_checks >= 10
    assert bracket_checks >= 10
    assert wrong == []
    assert done == begun
    final = {h.name: h for h in fanout.health()}
    for name, h in final.items():
        assert h.delivered + h.dropped + h.queued == sent(done, name)
    assert final["latest"].queued <= 1
    assert final["drop_newest"].dropped > 0  # the consumers were slow enough to drop
