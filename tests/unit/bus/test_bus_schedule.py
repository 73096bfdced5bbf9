"""Scheduling: aligned ticks without drift, jitter, skip-if-busy, rates."""

from __future__ import annotations

import pytest
from tests.unit.bus.bus_doubles import GUARD_S, ScriptedCollector, seconds, tick

from collectbus.bus import CollectionBus, Result, Subscription
from collectbus.clock import FakeClock
from collectbus.errors import BusError


def test_ticks_stay_on_the_grid_over_1000_ticks_even_when_collecting_takes_time(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    collector.work_ns = seconds(0.3)  # each collection moves the clock on by 0.3 s
    bus.add(collector, tier="fast")
    sub = bus.subscribe(name="s", maxsize=10)
    start = clock.time_ns()
    bus.start()
    for n in range(1000):
        if n:
            tick(clock, 0.7)  # the rest of the second: the next tick is due
        got = sub.get(timeout=GUARD_S)
        assert got is not None
        assert got.tick_ns == start + n * seconds(1)
        assert got.seq == n + 1
        assert got.event.started_ns == got.tick_ns
        assert got.event.duration_ns == seconds(0.3)
    health = bus.health().collector("c")
    assert (health.runs, health.ok, health.skips, health.missed) == (1000, 1000, 0, 0)


def test_jitter_delays_each_start_but_never_moves_the_grid(clock: FakeClock) -> None:
    bus = CollectionBus(host="h", clock=clock, jitter=0.5, seed=7)
    collector = ScriptedCollector()
    # A long timeout, so that the scheduler's next wake-up is always the next tick.
    bus.add(collector, tier="fast", timeout=100)
    sub = bus.subscribe(name="s")
    start_wall, start_mono = clock.time_ns(), clock.monotonic_ns()
    bus.start()
    delays = []
    for n in range(50):
        assert clock.wait_until_asleep(1, GUARD_S)
        fire = clock.next_deadline_ns()
        assert fire is not None
        tick_mono = start_mono + n * seconds(1)
        assert tick_mono <= fire < tick_mono + seconds(0.5)
        clock.advance(fire - clock.monotonic_ns())
        got = sub.get(timeout=GUARD_S)
        assert got is not None
        assert got.tick_ns == start_wall + n * seconds(1)
        assert got.event.started_ns == start_wall + (fire - start_mono)
        delays.append(fire - tick_mono)
        clock.advance(tick_mono + seconds(1) - clock.monotonic_ns())
    assert len(set(delays)) > 10  # a fresh draw per tick
    bus.stop(deadline=0)


def test_a_tick_is_skipped_and_counted_while_the_previous_collection_runs(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    bus.add(collector, tier="fast", timeout=100)
    sub = bus.subscribe(name="s")
    collector.gate.clear()
    bus.start()
    assert collector.entered.wait(GUARD_S)
    for _ in range(3):
        tick(clock)
    health = bus.health().collector("c")
    assert (health.runs, health.skips, health.busy) == (1, 3, True)
    collector.gate.set()
    first = sub.get(timeout=GUARD_S)
    assert first is not None
    assert first.seq == 1
    tick(clock)
    second = sub.get(timeout=GUARD_S)
    assert second is not None
    assert second.seq == 2
    assert second.tick_ns == first.tick_ns + seconds(4)
    assert bus.health().collector("c").skips == 3


def test_a_late_scheduler_runs_only_the_latest_tick_and_counts_the_missed_ones(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    bus.add(collector, tier="fast")
    sub = bus.subscribe(name="s")
    start = clock.time_ns()
    bus.start()
    assert sub.get(timeout=GUARD_S) is not None
    tick(clock, 5)
    got = sub.get(timeout=GUARD_S)
    assert got is not None
    assert got.tick_ns == start + seconds(5)
    health = bus.health().collector("c")
    assert (health.runs, health.missed) == (2, 4)


def test_the_collector_runs_at_the_fastest_rate_a_subscriber_asks_for(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    bus.add(collector, tier="system")  # 10 s
    fast = bus.subscribe(name="fast", every=1.0)
    slow = bus.subscribe(name="slow", every=10.0)
    start = clock.time_ns()
    bus.start()
    fast_ticks = []
    for n in range(30):
        if n:
            tick(clock)
        got = fast.get(timeout=GUARD_S)
        assert got is not None
        fast_ticks.append(got.tick_ns)
    assert fast_ticks == [start + n * seconds(1) for n in range(30)]
    assert bus.health().collector("c").runs == 30
    assert bus.health().collector("c").interval_s == 1.0
    slow_ticks = [r.tick_ns for r in _drain(slow)]
    assert slow_ticks == [start + n * seconds(10) for n in range(3)]
    assert bus.health().subscriber("slow").dropped == 0


def test_a_slow_subscriber_never_slows_the_collector_for_the_others(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    bus.add(collector, tier="fast")  # 1 s
    everything = bus.subscribe(name="store")  # takes every result
    slow = bus.subscribe(name="console", every=10.0)
    start = clock.time_ns()
    bus.start()
    ticks = []
    for n in range(20):
        if n:
            tick(clock)
        got = everything.get(timeout=GUARD_S)
        assert got is not None
        ticks.append(got.tick_ns)
    assert ticks == [start + n * seconds(1) for n in range(20)]
    assert bus.health().collector("c").interval_s == 1.0
    assert [r.tick_ns for r in _drain(slow)] == [start, start + seconds(10)]


def test_closing_the_fast_subscriber_replans_to_the_slower_rate(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    bus.add(collector, tier="system")
    fast = bus.subscribe(name="fast", every=1.0)
    bus.start()
    assert fast.get(timeout=GUARD_S) is not None
    tick(clock)
    assert fast.get(timeout=GUARD_S) is not None  # the collection at 1 s
    fast.close()
    assert bus.health().collector("c").interval_s == 10.0
    for _ in range(8):
        tick(clock)  # 2 s .. 9 s: nothing runs
    assert bus.health().collector("c").runs == 2
    tick(clock)  # 10 s: back on the 10 s grid
    assert collector.entered.wait(GUARD_S)
    assert bus.health().collector("c").runs == 3


def test_add_refuses_duplicates_unknown_tiers_and_bad_values(bus: CollectionBus) -> None:
    bus.add(ScriptedCollector("a"))
    with pytest.raises(BusError, match="already on the bus"):
        bus.add(ScriptedCollector("a"))
    with pytest.raises(BusError, match="unknown tier 'hourly'"):
        bus.add(ScriptedCollector("b"), tier="hourly")
    with pytest.raises(BusError, match="timeout must be positive"):
        bus.add(ScriptedCollector("b"), timeout=0)
    with pytest.raises(BusError, match="unknown collector"):
        bus.subscribe(name="s", collectors=["nope"])


def test_constructor_validates_tiers_and_jitter() -> None:
    with pytest.raises(BusError, match="jitter"):
        CollectionBus(host="h", jitter=1.0)
    with pytest.raises(BusError, match=r"tiers\.fast"):
        CollectionBus(host="h", tiers={"fast": 0})
    bus = CollectionBus(host="h", tiers={"fast": 0.5})  # overrides one tier, keeps the others
    bus.add(ScriptedCollector("a"), tier="fast")
    bus.add(ScriptedCollector("b"), tier="inventory")
    intervals = {c.name: c.interval_s for c in bus.health().collectors}
    assert intervals == {"a": 0.5, "b": 300.0}


def _drain(sub: Subscription) -> list[Result]:
    out = []
    while (r := sub.get(timeout=0)) is not None:
        out.append(r)
    return out
