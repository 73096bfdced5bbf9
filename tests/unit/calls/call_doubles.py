"""Clocks for call collector tests: nothing sleeps, every elapsed time is known."""

from __future__ import annotations

import threading

WALL_START_NS = 1_700_000_000 * 10**9


class TickClock:
    """Each thread reads its own counter, which moves one tick per reading.

    A call reads the clock twice with nothing in between that reads it, so
    every plain call takes exactly ``tick_ns``, whatever the other threads do.
    """

    def __init__(self, tick_ns: int = 1) -> None:
        self.tick_ns = tick_ns
        self._local = threading.local()

    def monotonic_ns(self) -> int:
        now: int = getattr(self._local, "now", 0) + self.tick_ns
        self._local.now = now
        return now

    def time_ns(self) -> int:
        return WALL_START_NS


class ManualClock:
    """A clock that moves only when told to; for single-threaded tests."""

    def __init__(self) -> None:
        self.now = 0

    def advance(self, ns: int) -> None:
        self.now += ns

    def monotonic_ns(self) -> int:
        return self.now

    def time_ns(self) -> int:
        return WALL_START_NS + self.now
