"""health() counts what sharing saved: cache hits, joined flights, results shared."""

from __future__ import annotations

import threading

from tests.unit.bus.bus_doubles import GUARD_S, ScriptedCollector, tick, wait_until

from collectbus.bus import CollectionBus, Subscription
from collectbus.bus.health import SubscriberHealth
from collectbus.clock import FakeClock


def _offered(sub: SubscriberHealth) -> int:
    return sub.delivered + sub.dropped + sub.queued


def _take(sub: Subscription, n: int) -> None:
    for _ in range(n):
        assert sub.get(timeout=GUARD_S) is not None


def test_two_subscribers_at_different_rates_share_each_collection(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    bus.add(collector, tier="system")  # 10 s; the subscribers ask for faster
    fast = bus.subscribe(name="fast", every=1.0)
    slow = bus.subscribe(name="slow", every=5.0)
    bus.start()
    _take(fast, 1)
    for _ in range(10):  # ticks at 1 s .. 10 s
        tick(clock)
        _take(fast, 1)
    _take(slow, 3)  # the ticks at 0, 5 and 10 s
    # The last result is counted as shared once its last offer is made.
    wait_until(lambda: bus.health().collector("c").shared == 3, "the last publish counted")
    health = bus.health()
    row = health.collector("c")
    offered = sum(_offered(health.subscriber(name)) for name in ("fast", "slow"))
    assert (row.runs, collector.calls) == (11, 11)
    assert offered == 14
    assert row.runs < offered
    assert row.shared == offered - row.runs == 3
    assert (row.cache_hits, row.joined) == (0, 0)
    assert row.saved == 3
    assert health.saved == 3
    assert health.to_dict()["saved"] == 3


def test_subscribers_of_other_collectors_share_nothing(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    other = ScriptedCollector("d")
    bus.add(collector, tier="fast")
    bus.add(other, tier="fast")
    mine = bus.subscribe(name="mine", collectors=["c"])
    theirs = bus.subscribe(name="theirs", collectors=["d"])
    bus.start()
    _take(mine, 1)
    _take(theirs, 1)
    tick(clock, sleepers=1)
    _take(mine, 1)
    _take(theirs, 1)
    health = bus.health()
    assert [(r.runs, r.shared, r.saved) for r in health.collectors] == [(2, 0, 0), (2, 0, 0)]
    assert health.saved == 0


def test_get_within_the_ttl_is_a_cache_hit(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    bus.add(collector, tier="system", ttl=10)
    first = bus.get("c")
    for _ in range(4):
        assert bus.get("c") is first
    row = bus.health().collector("c")
    assert (collector.calls, row.runs, row.cache_hits, row.saved) == (1, 1, 4, 4)


def test_callers_that_join_a_collection_under_way_are_counted(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    bus.add(collector, tier="system", timeout=100)
    collector.gate.clear()
    results = []
    first = threading.Thread(target=lambda: results.append(bus.collect_now("c")))
    first.start()
    assert collector.entered.wait(GUARD_S)
    joiners = [threading.Thread(target=lambda: results.append(bus.get("c"))) for _ in range(3)]
    for thread in joiners:
        thread.start()
    wait_until(lambda: bus.health().collector("c").joined == 3, "three callers joined")
    collector.gate.set()
    for thread in (first, *joiners):
        thread.join(GUARD_S)
    assert len(results) == 4
    assert len({id(r) for r in results}) == 1  # one collection for the four callers
    row = bus.health().collector("c")
    assert (collector.calls, row.runs, row.joined, row.cache_hits, row.saved) == (1, 1, 3, 0, 3)
