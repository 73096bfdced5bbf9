"""Start, stop and health: stop() drains, leftovers are reported."""

from __future__ import annotations

import json
import threading
import time

import pytest
from tests.unit.bus.bus_doubles import GUARD_S, ScriptedCollector, seconds, tick, wait_until

from collectbus.bus import CollectionBus, Result
from collectbus.clock import FakeClock
from collectbus.errors import BusError


def _stop_in_background(bus: CollectionBus, deadline: float = 5.0) -> threading.Thread:
    stopper = threading.Thread(target=bus.stop, kwargs={"deadline": deadline})
    stopper.start()
    return stopper


def test_stop_lets_subscribers_drain_their_queues(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    gate = threading.Event()
    seen: list[int] = []

    def slow(r: Result) -> None:
        assert gate.wait(GUARD_S)
        seen.append(r.seq)

    bus.add(collector, tier="fast")
    sub = bus.subscribe(slow, name="slow")
    for _ in range(5):
        bus.collect_now("c")
    stopper = _stop_in_background(bus)
    gate.set()
    stopper.join(GUARD_S)
    assert not stopper.is_alive()
    assert seen == [1, 2, 3, 4, 5]
    health = bus.health()
    assert health.state == "stopped"
    assert (health.subscriber("slow").delivered, health.subscriber("slow").queued) == (5, 0)
    assert sub.closed
    assert collector.closed


def test_stop_waits_for_a_running_collection_and_delivers_its_result(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    seen: list[int] = []
    bus.add(collector, tier="fast", timeout=100)
    bus.subscribe(lambda r: seen.append(r.seq), name="s")
    collector.gate.clear()
    bus.start()
    assert collector.entered.wait(GUARD_S)
    stopper = _stop_in_background(bus)
    assert clock.wait_for_sleepers(1, GUARD_S)  # stop() waits for the collection
    collector.gate.set()
    stopper.join(GUARD_S)
    assert not stopper.is_alive()
    assert seen == [1]
    assert bus.health().unfinished == ()
    assert collector.closed


def test_stop_gives_up_at_its_deadline_and_reports_the_leftovers(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    gate = threading.Event()
    bus.add(collector, tier="fast", timeout=100)
    stuck = ScriptedCollector("stuck")
    stuck.gate.clear()
    bus.add(stuck, tier="fast", timeout=100)

    def stuck_callback(r: Result) -> None:
        gate.wait(GUARD_S)

    bus.subscribe(stuck_callback, name="slow", collectors=["c"])
    for _ in range(4):
        bus.collect_now("c")
    bus.start()  # the first tick starts "stuck", which never returns
    assert stuck.entered.wait(GUARD_S)
    stopper = _stop_in_background(bus, deadline=2.0)
    give_up = time.monotonic() + GUARD_S
    while stopper.is_alive():  # move the clock on until stop() reaches its deadline
        assert time.monotonic() < give_up, "stop() did not give up at its deadline"
        clock.advance(seconds(0.5))
        stopper.join(0.01)
    health = bus.health()
    assert health.unfinished == ("stuck",)
    slow = health.subscriber("slow")
    assert slow.delivered + slow.queued == 5  # 4 on demand + the first tick
    assert slow.queued >= 4  # the first result is stuck in the callback
    assert not stuck.closed  # still collecting: not closed under its feet
    assert collector.closed
    gate.set()
    stuck.gate.set()


def test_the_bus_is_a_context_manager_and_starts_once(
    clock: FakeClock, collector: ScriptedCollector
) -> None:
    with CollectionBus(host="h", clock=clock) as bus:
        bus.add(collector, tier="fast")
        with pytest.raises(BusError, match="cannot start"):
            bus.start()
        assert bus.health().state == "running"
        wait_until(lambda: bus.snapshot().get("c") is not None, "the first tick")
    assert bus.health().state == "stopped"
    assert collector.closed
    with pytest.raises(BusError, match="stopped"):
        bus.subscribe(name="late")


def test_threads_are_named_daemons(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    bus.add(collector, tier="fast")
    bus.subscribe(lambda r: None, name="sink")
    bus.start()
    wait_until(lambda: bus.snapshot().get("c") is not None, "the first tick")
    ours = {t.name: t.daemon for t in threading.enumerate() if t.name.startswith("collectbus-")}
    assert ours["collectbus-scheduler"]
    assert ours["collectbus-sub-sink"]
    assert any(name.startswith("collectbus-collect-") for name in ours)
    assert all(ours.values())


def test_health_reports_collectors_and_subscribers_as_plain_json(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    bus.add(collector, tier="fast")
    sub = bus.subscribe(name="s", maxsize=2, every=1.0)
    bus.start()
    for n in range(4):
        if n:
            tick(clock)

        def arrived(count: int = n + 1) -> bool:
            return sub.dropped + sub.queued == count

        wait_until(arrived, "the result")
    health = bus.health()
    c = health.collector("c")
    assert (c.runs, c.ok, c.errors, c.skips, c.lag_ns, c.busy) == (4, 4, 0, 0, 0, False)
    assert c.last_status == "ok"
    s = health.subscriber("s")
    assert (s.delivered, s.dropped, s.queued, s.errors) == (0, 2, 2, 0)
    assert s.lag_ns == seconds(1)  # the oldest queued result is the tick at 2 s; now is 3 s
    plain = json.loads(json.dumps(health.to_dict()))
    assert plain["state"] == "running"
    assert plain["collectors"]["c"]["runs"] == 4
    assert plain["subscribers"]["s"]["dropped"] == 2
    assert sub.dropped == 2
