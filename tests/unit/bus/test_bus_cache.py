"""The TTL cache: one collection for everyone who asks within the TTL."""

from __future__ import annotations

import threading

import pytest
from tests.unit.bus.bus_doubles import GUARD_S, ScriptedCollector, seconds

from collectbus.bus import CollectionBus, Result
from collectbus.clock import FakeClock
from collectbus.errors import BusError


def test_concurrent_callers_share_one_collection(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    bus.add(collector, tier="fast", timeout=30)
    collector.gate.clear()
    results: list[Result] = []
    lock = threading.Lock()

    def call() -> None:
        got = bus.get("c")
        with lock:
            results.append(got)

    callers = [threading.Thread(target=call) for _ in range(8)]
    for caller in callers:
        caller.start()
    # Every caller waits on the clock for the same flight's deadline.
    assert clock.wait_for_sleepers(8, GUARD_S)
    collector.gate.set()
    for caller in callers:
        caller.join(GUARD_S)
    assert collector.calls == 1
    assert len(results) == 8
    assert all(r is results[0] for r in results)
    assert bus.health().collector("c").runs == 1


def test_get_collects_again_only_once_the_ttl_has_passed(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    bus.add(collector, tier="fast", ttl=5)
    first = bus.get("c")
    clock.advance(seconds(4.9))
    assert bus.get("c") is first
    assert collector.calls == 1
    clock.advance(seconds(0.1))
    second = bus.get("c")
    assert second.seq == 2
    assert collector.calls == 2
    assert bus.get("c", max_age=0).seq == 3  # max_age overrides the TTL


def test_scheduled_ticks_fill_the_cache(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    bus.add(collector, tier="fast")
    sub = bus.subscribe(name="s")
    bus.start()
    published = sub.get(timeout=GUARD_S)
    assert published is not None
    assert bus.get("c") is published
    assert collector.calls == 1


def test_collect_now_ignores_the_cache(bus: CollectionBus, collector: ScriptedCollector) -> None:
    bus.add(collector)
    assert [bus.collect_now("c").seq for _ in range(3)] == [1, 2, 3]
    assert collector.calls == 3


def test_snapshot_has_the_latest_result_of_every_collector(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    other = ScriptedCollector("other")
    bus.add(collector)
    bus.add(other)
    assert bus.snapshot() == {}
    a = bus.collect_now("c")
    b1 = bus.collect_now("other")
    b2 = bus.collect_now("other")
    snap = bus.snapshot()
    assert snap == {"c": a, "other": b2}
    assert snap["other"] is not b1


def test_on_demand_results_are_published_too(
    bus: CollectionBus, collector: ScriptedCollector
) -> None:
    bus.add(collector)
    sub = bus.subscribe(name="s")
    got = bus.collect_now("c")
    assert sub.get(timeout=GUARD_S) is got


def test_unknown_collector_and_stopped_bus_are_errors(
    bus: CollectionBus, collector: ScriptedCollector
) -> None:
    bus.add(collector)
    with pytest.raises(BusError, match="unknown collector 'nope' \\(known: c\\)"):
        bus.get("nope")
    bus.stop()
    with pytest.raises(BusError, match="stopped"):
        bus.get("c")
    with pytest.raises(BusError, match="stopped"):
        bus.collect_now("c")
    assert collector.closed
