"""Test doubles for the bus tests: a scriptable collector and sync helpers.

Nothing here sleeps for real except the short polls of :func:`wait_until`,
which only guard against a hang; time moves through the FakeClock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from collectbus.bus import CollectionBus
from collectbus.bus.cache import Result
from collectbus.clock import NS_PER_S, FakeClock
from collectbus.collectors.base import CollectContext
from collectbus.errors import CollectError
from collectbus.records import CollectionEvent, HostSample, Record

#: Real seconds a test waits for something before failing (never for timing).
GUARD_S = 10.0


class ScriptedCollector:
    """A collector whose every collection the test controls."""

    def __init__(self, name: str = "c") -> None:
        self.name = name
        self.calls = 0
        self.closed = False
        #: While cleared, collect() waits (in real time) for it to be set.
        self.gate = threading.Event()
        self.gate.set()
        #: Set each time collect() starts.
        self.entered = threading.Event()
        self.fail_with: Exception | None = None
        self.problems: list[CollectError] = []
        #: Fake work: collect() advances the clock by this much.
        self.work_ns = 0
        self.clock: FakeClock | None = None

    def collect(self, ctx: CollectContext) -> Iterable[Record]:
        self.calls += 1
        self.entered.set()
        assert self.gate.wait(GUARD_S), "the test never opened the gate"
        if self.work_ns and self.clock is not None:
            self.clock.advance(self.work_ns)
        if self.fail_with is not None:
            raise self.fail_with
        for problem in self.problems:
            ctx.report(problem)
        return [HostSample(host=ctx.host, time_ns=ctx.clock.time_ns())]

    def close(self) -> None:
        self.closed = True


def seconds(s: float) -> int:
    return int(s * NS_PER_S)


def tick(clock: FakeClock, s: float = 1.0, *, sleepers: int = 1) -> None:
    """Advance the clock and wait until the scheduler has handled it and sleeps again."""
    clock.advance(seconds(s))
    assert clock.wait_until_asleep(sleepers, GUARD_S), "the scheduler did not go back to sleep"


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    """Poll ``predicate`` (a synchronisation guard, not a timing assertion)."""
    give_up = time.monotonic() + GUARD_S
    while not predicate():
        assert time.monotonic() < give_up, f"timed out waiting for {what}"
        time.sleep(0.001)


def shutdown(bus: CollectionBus, clock: FakeClock) -> None:
    """Stop ``bus`` even if something in it hangs, moving the fake clock if needed."""
    stopper = threading.Thread(target=bus.stop, kwargs={"deadline": 5.0})
    stopper.start()
    stopper.join(GUARD_S / 2)
    while stopper.is_alive():
        clock.advance(seconds(5))
        stopper.join(0.1)


def result(collector: str = "c", seq: int = 1, tick_ns: int = 0) -> Result:
    """A bare result, for publishing straight into a Fanout."""
    event = CollectionEvent(
        source=collector, host="h", started_ns=tick_ns, duration_ns=0, status="ok"
    )
    return Result(collector=collector, seq=seq, tick_ns=tick_ns, records=(), event=event)
