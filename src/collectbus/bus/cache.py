"""The result cache: the latest result of every collector, and collect-once.

Everyone who asks for a collector within its TTL gets the same cached
:class:`Result`. When the cached result is too old, the first caller starts one
collection (a :class:`Flight`) and every caller that arrives while it runs waits
for that same flight instead of starting its own ("single flight"). Scheduled
ticks go through the same door, so a tick that finds a flight under way is the
"previous run still going" case and is skipped.

A flight is *resolved* once, by whichever comes first: the collection returning,
or the bus declaring it timed out. The collector stays *busy* until its thread
really returns, so a timed-out collector is never run twice at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from collectbus.records import CollectionEvent, Record

#: Statuses of a collection that produced usable records.
GOOD_STATUSES = frozenset({"ok", "partial"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """One collection of one collector, as delivered to subscribers.

    ``stale`` is True when the collection failed or timed out and ``records``
    are those of the last good collection; ``event`` always describes the
    collection itself (its status, duration and error).
    """

    collector: str
    #: Per-collector collection number, from 1.
    seq: int
    #: Wall time of the scheduled tick (of the call, for on-demand collections).
    tick_ns: int
    records: tuple[Record, ...]
    event: CollectionEvent
    stale: bool = False


class Flight:
    """One collection under way; every caller that asks meanwhile shares it."""

    __slots__ = (
        "_done",
        "_guard",
        "collector",
        "created_ns",
        "deadline_ns",
        "due_ns",
        "result",
        "seq",
        "tick_ns",
        "wall_ns",
    )

    def __init__(
        self,
        *,
        collector: str,
        seq: int,
        tick_ns: int,
        wall_ns: int,
        created_ns: int,
        deadline_ns: int,
        due_ns: int | None,
        guard: threading.Lock,
    ) -> None:
        self.collector = collector
        self.seq = seq
        self.tick_ns = tick_ns
        #: Wall and monotonic time at which the flight was started.
        self.wall_ns = wall_ns
        self.created_ns = created_ns
        #: Monotonic time after which the collection counts as timed out.
        self.deadline_ns = deadline_ns
        #: Monotonic time the scheduler meant it to start (None: on demand).
        self.due_ns = due_ns
        self.result: Result | None = None
        # The event is made for the first caller who waits (most flights have
        # none); ``guard``, the cache's lock, orders it with settle().
        self._guard = guard
        self._done: threading.Event | None = None

    @property
    def done(self) -> threading.Event:
        """Set once the flight is resolved (its result is in ``result``)."""
        with self._guard:
            if self._done is None:
                self._done = threading.Event()
                if self.result is not None:
                    self._done.set()
            return self._done


@dataclass(slots=True, eq=False)
class _Slot:
    seq: int = 0
    latest: Result | None = None
    latest_ns: int = 0
    good: Result | None = None
    flight: Flight | None = None
    busy: bool = False
    #: Set whenever no collection runs; made when first asked for (stop() waits on it).
    idle: threading.Event | None = None


class ResultCache:
    """Latest and last good result per collector, plus the flight in progress."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[str, _Slot] = {}

    def add(self, collector: str) -> None:
        with self._lock:
            self._slots.setdefault(collector, _Slot())

    # ------------------------------------------------------------ reading

    def fresh(self, collector: str, max_age_ns: int, now_ns: int) -> Result | None:
        """The latest result if it started less than ``max_age_ns`` ago."""
        with self._lock:
            slot = self._slots[collector]
            if slot.latest is not None and now_ns - slot.latest_ns < max_age_ns:
                return slot.latest
            return None

    def latest(self, collector: str) -> Result | None:
        with self._lock:
            return self._slots[collector].latest

    def last_good(self, collector: str) -> Result | None:
        with self._lock:
            return self._slots[collector].good

    def snapshot(self) -> dict[str, Result]:
        """The latest result of every collector that has one, read at once."""
        with self._lock:
            return {name: s.latest for name, s in self._slots.items() if s.latest is not None}

    def busy(self, collector: str) -> bool:
        with self._lock:
            return self._slots[collector].busy

    def idle_event(self, collector: str) -> threading.Event:
        """An event that is set whenever no collection of ``collector`` runs."""
        with self._lock:
            slot = self._slots[collector]
            if slot.idle is None:
                slot.idle = threading.Event()
                if not slot.busy:
                    slot.idle.set()
            return slot.idle

    def open_flights(self) -> list[Flight]:
        """Flights not resolved yet (candidates for a timeout)."""
        with self._lock:
            return [
                s.flight
                for s in self._slots.values()
                if s.flight is not None and s.flight.result is None
            ]

    # --------------------------------------------------------- single flight

    def begin(
        self,
        collector: str,
        *,
        tick_ns: int,
        wall_ns: int,
        created_ns: int,
        timeout_ns: int,
        due_ns: int | None,
    ) -> tuple[Flight | None, bool]:
        """Start a collection, or join the one under way.

        Returns ``(flight, True)`` when the caller must run the new flight,
        ``(flight, False)`` when one is already under way (wait for it), and
        ``(None, False)`` when the collector is still busy with a run that was
        already resolved (timed out, or publishing its result).
        """
        with self._lock:
            slot = self._slots[collector]
            if slot.busy:
                flight = slot.flight
                if flight is not None and flight.result is None:
                    return flight, False
                return None, False
            slot.seq += 1
            flight = Flight(
                collector=collector,
                seq=slot.seq,
                tick_ns=tick_ns,
                wall_ns=wall_ns,
                created_ns=created_ns,
                deadline_ns=created_ns + timeout_ns,
                due_ns=due_ns,
                guard=self._lock,
            )
            slot.flight = flight
            slot.busy = True
            if slot.idle is not None:
                slot.idle.clear()
            return flight, True

    def settle(self, flight: Flight, result: Result) -> bool:
        """Resolve ``flight`` with ``result`` and cache it, unless already resolved.

        Returns False when the flight was resolved before (the result is then
        discarded): exactly one outcome per collection reaches the cache.
        """
        with self._lock:
            if flight.result is not None:
                return False
            flight.result = result
            slot = self._slots[flight.collector]
            slot.latest = result
            slot.latest_ns = flight.created_ns
            if not result.stale and result.event.status in GOOD_STATUSES:
                slot.good = result
            done = flight._done
        if done is not None:
            done.set()
        return True

    def end(self, flight: Flight) -> None:
        """The thread that ran ``flight`` has returned: the collector is free."""
        with self._lock:
            slot = self._slots[flight.collector]
            if slot.flight is flight:
                slot.busy = False
                if slot.idle is not None:
                    slot.idle.set()
