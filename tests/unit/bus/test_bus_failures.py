"""Failures: backoff, stale results, timeouts, partial collections."""

from __future__ import annotations

import logging
import threading

import pytest
from tests.unit.bus.bus_doubles import GUARD_S, ScriptedCollector, seconds, tick, wait_until

from collectbus.bus import CollectionBus, Result, Subscription
from collectbus.clock import FakeClock
from collectbus.errors import ParseError


def _next(sub: Subscription) -> Result:
    got = sub.get(timeout=GUARD_S)
    assert got is not None
    return got


def test_failures_back_off_doubling_to_the_cap_and_a_success_resets(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    bus.add(collector, tier="fast", backoff_initial=2, backoff_max=8)
    sub = bus.subscribe(name="s")
    bus.start()
    good = _next(sub)  # t=0
    assert good.event.status == "ok"
    collector.fail_with = OSError("no such file")

    ran_at: list[int] = []  # seconds at which a collection ran (and failed)
    for t in range(1, 23):
        tick(clock)
        if bus.health().collector("c").runs > len(ran_at) + 1:
            failed = _next(sub)
            ran_at.append(t)
            assert failed.stale
            assert failed.records == good.records
            assert failed.event.status == "error"
            assert failed.event.stale
            assert failed.event.error == "OSError: no such file"
    # Backoffs of 2, 4, 8 and 8 s (capped) after the failures at 1, 3, 7 and 15 s.
    assert ran_at == [1, 3, 7, 15]
    health = bus.health().collector("c")
    assert health.errors == 4
    assert health.consecutive_failures == 4
    assert health.backoff_s == 8.0
    assert health.next_backoff_s == 8.0
    assert health.backoff_skips == 22 - 4
    assert health.stale_served == 4

    collector.fail_with = None
    tick(clock)  # t=23: the backoff has ended
    recovered = _next(sub)
    assert recovered.event.status == "ok"
    assert not recovered.stale
    health = bus.health().collector("c")
    assert (health.backoff_s, health.consecutive_failures, health.in_backoff) == (0.0, 0, False)
    assert health.next_backoff_s == 2.0
    tick(clock)  # t=24: every tick runs again
    assert _next(sub).seq == recovered.seq + 1


def test_a_failure_is_logged_as_one_line_naming_the_collector(
    bus: CollectionBus,
    clock: FakeClock,
    collector: ScriptedCollector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    collector.fail_with = RuntimeError("boom\nsecond line")
    bus.add(collector, tier="fast")
    sub = bus.subscribe(name="s")
    with caplog.at_level(logging.INFO, logger="collectbus.bus"):
        bus.start()
        failed = _next(sub)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "\n" not in message
    assert message.startswith("collector c failed: RuntimeError: boom;")
    # Nothing good to serve yet: no records, not stale, but the event is there.
    assert failed.records == ()
    assert not failed.stale
    assert failed.event.status == "error"


def test_get_serves_the_stale_result_during_a_backoff_without_collecting(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    bus.add(collector, tier="fast", backoff_initial=60, backoff_max=60)
    sub = bus.subscribe(name="s")
    bus.start()
    good = _next(sub)
    collector.fail_with = OSError("gone")
    tick(clock)
    failed = _next(sub)
    tick(clock, 5)  # well past the TTL (1 s), inside the backoff
    calls = collector.calls
    served = bus.get("c")
    assert served is failed
    assert served.stale
    assert served.records == good.records
    assert collector.calls == calls
    assert bus.health().collector("c").stale_served == 2  # published once, served once


def test_a_timeout_serves_the_last_good_result_and_discards_the_late_one(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    bus.add(collector, interval=10, timeout=2, backoff_initial=1)
    sub = bus.subscribe(name="s")
    bus.start()
    good = _next(sub)
    collector.gate.clear()
    collector.entered.clear()
    tick(clock, 10)
    assert collector.entered.wait(GUARD_S)
    tick(clock, 2)  # the deadline: the scheduler declares the timeout
    timed_out = _next(sub)
    assert timed_out.event.status == "timeout"
    assert timed_out.stale
    assert timed_out.records == good.records
    assert timed_out.event.error == "c: collection took longer than 2 s"
    assert timed_out.event.duration_ns == seconds(2)
    health = bus.health().collector("c")
    assert (health.timeouts, health.busy, health.errors) == (1, True, 0)

    tick(clock, 8)  # t=20: still busy, so skipped
    assert bus.health().collector("c").skips == 1
    collector.gate.set()
    wait_until(lambda: not bus.health().collector("c").busy, "the late collection to return")
    assert bus.health().collector("c").late_discarded == 1
    assert sub.get(timeout=0) is None  # the late result was not published
    assert bus.get("c", max_age=60) is timed_out  # nor cached

    tick(clock, 10)  # t=30: runs again
    recovered = _next(sub)
    assert recovered.event.status == "ok"
    assert recovered.seq == timed_out.seq + 1


def test_a_caller_waiting_in_get_declares_the_timeout_itself(
    clock: FakeClock, collector: ScriptedCollector
) -> None:
    bus = CollectionBus(host="h", clock=clock)  # never started: no scheduler thread
    bus.add(collector, tier="fast", timeout=3)
    collector.gate.clear()
    got: list[Result] = []
    caller = threading.Thread(target=lambda: got.append(bus.get("c")))
    caller.start()
    assert clock.wait_for_sleepers(1, GUARD_S)  # the caller waits for the deadline
    assert collector.entered.wait(GUARD_S)  # and the collection runs (on a pool thread)
    clock.advance(seconds(3))
    caller.join(GUARD_S)
    assert got[0].event.status == "timeout"
    assert got[0].records == ()
    assert not got[0].stale  # there was no good result to serve
    # The collector is still busy: asking again returns the same answer, no new run.
    assert bus.collect_now("c") is got[0]
    assert collector.calls == 1
    collector.gate.set()
    bus.stop()


def test_a_problem_that_persists_is_logged_once_until_it_clears(
    bus: CollectionBus,
    clock: FakeClock,
    collector: ScriptedCollector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = ParseError("/proc/meminfo", 5, "expected 'Key: value kB'")
    collector.problems = [broken]
    bus.add(collector, tier="fast")
    sub = bus.subscribe(name="s")
    with caplog.at_level(logging.INFO, logger="collectbus.bus"):
        bus.start()
        statuses = [_next(sub).event.status]
        for n in range(5):
            if n == 2:
                collector.problems = []  # the file is readable again
            if n == 3:
                collector.problems = [broken]  # and broken again
            tick(clock)
            statuses.append(_next(sub).event.status)
    assert statuses == ["partial", "partial", "partial", "ok", "partial", "partial"]
    messages = [r.getMessage() for r in caplog.records if r.name == "collectbus.bus"]
    warning = "collector c: partial collection: /proc/meminfo:5: expected 'Key: value kB'"
    assert messages == [warning, "collector c: complete again", warning]


def test_problems_reported_by_the_collector_make_a_partial_result(
    bus: CollectionBus,
    clock: FakeClock,
    collector: ScriptedCollector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    collector.problems = [
        ParseError("/proc/diskstats", 3, "expected 14, 18 or 20 fields, got 9"),
        ParseError("/proc/net/dev", None, "no header"),
    ]
    bus.add(collector, tier="fast")
    sub = bus.subscribe(name="s")
    with caplog.at_level(logging.WARNING, logger="collectbus.bus"):
        bus.start()
        partial = _next(sub)
    assert partial.event.status == "partial"
    assert partial.event.error == (
        "/proc/diskstats:3: expected 14, 18 or 20 fields, got 9; /proc/net/dev: no header"
    )
    assert len(partial.records) == 1
    assert not partial.stale
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "collector c: partial collection: /proc/diskstats:3: expected 14, 18 or 20 fields, got 9",
        "collector c: partial collection: /proc/net/dev: no header",
    ]
    health = bus.health().collector("c")
    assert (health.partial, health.ok, health.errors, health.in_backoff) == (1, 0, 0, False)


def test_one_failing_collector_does_not_hold_up_another(
    bus: CollectionBus, clock: FakeClock, collector: ScriptedCollector
) -> None:
    stuck = ScriptedCollector("stuck")
    stuck.gate.clear()
    broken = ScriptedCollector("broken")
    broken.fail_with = ValueError("bad")
    for c in (stuck, broken, collector):
        bus.add(c, tier="fast", timeout=100)
    sub = bus.subscribe(name="s", collectors=["c"])
    bus.start()
    for n in range(5):
        if n:
            tick(clock)
        assert _next(sub).seq == n + 1
    assert bus.health().collector("stuck").skips == 4
    stuck.gate.set()
