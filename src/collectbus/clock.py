"""Clocks: the real one, and a fake one for tests so that nothing sleeps.

Code that needs time takes a :class:`Clock`. Wall time (``time_ns``) stamps
records; monotonic time (``monotonic_ns``) measures intervals and schedules
ticks, since wall time can jump (NTP, an admin's ``date -s``).
"""

from __future__ import annotations

import heapq
import threading
import time
from typing import Protocol

NS_PER_S = 1_000_000_000


class Clock(Protocol):
    """The time source every scheduler, cache and collector is given."""

    def time_ns(self) -> int:
        """Wall-clock time, nanoseconds since the Unix epoch."""
        ...

    def monotonic_ns(self) -> int:
        """Monotonic time in nanoseconds, for intervals and deadlines."""
        ...

    def sleep_until(self, monotonic_deadline_ns: int, stop: threading.Event) -> bool:
        """Sleep until the deadline; return False at once if ``stop`` is set first."""
        ...


class SystemClock:
    """The real clock."""

    def time_ns(self) -> int:
        return time.time_ns()

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def sleep_until(self, monotonic_deadline_ns: int, stop: threading.Event) -> bool:
        remaining = (monotonic_deadline_ns - time.monotonic_ns()) / NS_PER_S
        if remaining > 0:
            return not stop.wait(remaining)
        return not stop.is_set()


class FakeClock:
    """A clock that moves only when told to, for tests.

    ``advance()`` moves both wall and monotonic time. Threads blocked in
    ``sleep_until`` wake when the clock passes their deadline, so a scheduler
    thread can be driven tick by tick without real sleeping.
    """

    def __init__(self, start_ns: int = 1_700_000_000 * NS_PER_S, monotonic_ns: int = 0) -> None:
        self._wall_offset = start_ns - monotonic_ns
        self._mono = monotonic_ns
        self._cond = threading.Condition()
        self._sleepers: list[int] = []

    def time_ns(self) -> int:
        with self._cond:
            return self._mono + self._wall_offset

    def monotonic_ns(self) -> int:
        with self._cond:
            return self._mono

    def advance(self, ns: int) -> None:
        """Move time forward by ``ns`` and wake every sleeper whose deadline passed."""
        if ns < 0:
            raise ValueError("a clock does not go backwards")
        with self._cond:
            self._mono += ns
            self._cond.notify_all()

    def set_wall(self, start_ns: int) -> None:
        """Make wall time jump (as NTP might) without moving monotonic time."""
        with self._cond:
            self._wall_offset = start_ns - self._mono

    def sleepers(self) -> int:
        """How many threads are waiting in ``sleep_until`` right now."""
        with self._cond:
            return len(self._sleepers)

    def next_deadline_ns(self) -> int | None:
        """The earliest deadline any sleeper waits for, or None."""
        with self._cond:
            return self._sleepers[0] if self._sleepers else None

    def sleep_until(self, monotonic_deadline_ns: int, stop: threading.Event) -> bool:
        with self._cond:
            heapq.heappush(self._sleepers, monotonic_deadline_ns)
            self._cond.notify_all()
            try:
                while self._mono < monotonic_deadline_ns:
                    if stop.is_set():
                        return False
                    # Short real waits only so that ``stop`` is noticed; time itself
                    # moves only through advance().
                    self._cond.wait(0.05)
                return not stop.is_set()
            finally:
                self._sleepers.remove(monotonic_deadline_ns)
                heapq.heapify(self._sleepers)

    def wait_until_asleep(self, count: int = 1, timeout_s: float = 5.0) -> bool:
        """Block (in real time) until ``count`` threads sleep on deadlines not reached yet.

        Right after advance(), a thread whose deadline passed still counts in
        sleepers() until it wakes up. This waits until such threads have done
        their work and gone back to sleep, e.g. a scheduler that handled a tick.
        """
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while sum(1 for d in self._sleepers if d > self._mono) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def wait_for_sleepers(self, count: int, timeout_s: float = 5.0) -> bool:
        """Block (in real time) until ``count`` threads sleep on this clock."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(self._sleepers) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True
