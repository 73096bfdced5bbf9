"""The collection bus: it schedules the collectors, collects once, fans out.

::

    CollectionBus
      ├── scheduler thread  aligned ticks, jitter, skip-if-busy, backoff, timeouts
      ├── WorkerPool        collections run here, never on the scheduler thread;
      │                     a pool thread may keep a collector's beat
      ├── ResultCache       latest result per collector; one collection at a time
      └── Fanout            a bounded queue (and a thread) per subscriber

**Ticks.** Collector ticks fall at ``origin + n * interval`` on the monotonic
clock, ``origin`` being the moment of start(): the first tick is at once. The
scheduler sleeps until the next tick computed from that schedule, never for an
interval after the work, so the schedule does not drift. Jitter delays the start
of each tick by a fresh uniform draw in ``[0, jitter * interval)``; it is never
accumulated, and ``Result.tick_ns`` is the unjittered tick. When the scheduler
wakes more than one interval late (a suspended machine), only the latest tick
runs and the others are counted as ``missed``.

**Beats.** On the system clock, the pool thread that ran a scheduled tick
keeps the collector's beat: it sleeps until the next tick and takes it itself
(the same planning, skips, backoff and counts as the scheduler's), so a tick
costs one thread wake, not a scheduler wake plus a hand-off. The scheduler
leaves a kept collector's ticks alone and wakes only for what a keeper cannot
do: a flight's deadline (it sleeps until the earliest deadline a kept
collector's next flight could have, so once per timeout rather than once per
tick). The beat goes back to the scheduler when the collector fails or times
out, when subscribers change its interval, when the pool needs the thread for
another job, and at stop().

**Rates.** A collector runs at the shortest ``every`` that any of its
subscribers asked for; when none asked, at its own interval (``add(interval=)``,
else its tier's). Subscribing and closing re-plan, keeping the alignment.

**Failures.** A collection that raises is logged as one line, counted, and
backs off exponentially (``backoff_initial`` doubling up to ``backoff_max``,
reset by a success); ticks inside the backoff are skipped and counted. A
collection that outlives its timeout (default: its interval, counted from its
start) is resolved as ``timeout`` at once; its thread's late result is
discarded, and the collector stays busy, skipping ticks, until it returns.

**What subscribers see.** Every collection, scheduled or on demand (get(),
collect_now()), is published once. A failed or timed-out one carries the last
good records, marked stale; when there has been no good collection yet it
carries no records, so that consumers such as ``collection_log`` still see the
event. Skipped ticks are counted in health(), not published.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from types import MappingProxyType, TracebackType
from typing import Literal

from collectbus.bus.cache import Flight, Result, ResultCache
from collectbus.bus.fanout import Fanout
from collectbus.bus.health import BusHealth
from collectbus.bus.pool import Beat, WorkerPool
from collectbus.bus.runner import CollectorState, Runner
from collectbus.bus.subscription import Subscription
from collectbus.clock import NS_PER_S, Clock, SystemClock
from collectbus.collectors.base import Collector, close_collector
from collectbus.errors import BusError

__all__ = ["DEFAULT_TIERS", "CollectionBus", "Result", "Subscription"]

log = logging.getLogger("collectbus.bus")

#: Tier intervals in seconds.
DEFAULT_TIERS: Mapping[str, float] = MappingProxyType(
    {"inventory": 300.0, "system": 10.0, "fast": 1.0}
)

# The scheduler re-checks at least this often even with nothing to do.
_MAX_SLEEP_NS = 3600 * NS_PER_S


class _Alarm:
    """What the scheduler thread sleeps on: the next tick, or an earlier set().

    On the system clock it sleeps on a bare lock, released by set(): the
    cheapest timed wait there is, and one that gives up the interpreter at
    once, so that the pool thread just handed a collection does not have to
    wait for the scheduler. Any other clock (a test's) gets an Event.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._event = threading.Event()
        self._system = isinstance(clock, SystemClock)
        self._bell = threading.Lock()
        self._bell.acquire()  # released by set() to end a sleep

    def set(self) -> None:
        if not self._system:
            self._event.set()
            return
        with contextlib.suppress(RuntimeError):  # released already, not taken back yet
            self._bell.release()

    def clear(self) -> None:
        if not self._system:
            self._event.clear()
            return
        self._bell.acquire(False)  # take back a release nobody slept through

    def sleep_until(self, deadline_ns: int) -> None:
        if not self._system:
            self._clock.sleep_until(deadline_ns, self._event)
            return
        left = deadline_ns - time.monotonic_ns()
        if left > 0:
            self._bell.acquire(True, left / NS_PER_S)


class _Keeper:
    """The token of a pool thread keeping a collector's beat, and its calls."""

    __slots__ = ("beat", "drop", "next_beat")

    def __init__(self, bus: CollectionBus, entry: CollectorState) -> None:
        self.beat = partial(bus._beat, entry, self)
        self.drop = partial(bus._drop_beat, entry, self)
        self.next_beat = partial(bus._keep_beat, entry, self)


class CollectionBus:
    """Schedules collectors, runs each collection once for everyone, fans results out."""

    def __init__(
        self,
        *,
        host: str | None = None,
        clock: Clock | None = None,
        tiers: Mapping[str, float] | None = None,
        jitter: float = 0.0,
        seed: int | None = None,
        workers: int = 4,
    ) -> None:
        tiers = {**DEFAULT_TIERS, **(tiers or {})}  # a mapping overrides the tiers it names
        for tier, seconds in tiers.items():
            if seconds <= 0:
                raise BusError(f"tiers.{tier}: the interval must be positive, got {seconds}")
        if not 0.0 <= jitter < 1.0:
            raise BusError(f"jitter must be in [0, 1) (a fraction of the interval), got {jitter}")
        self.host = host or socket.gethostname()
        self._clock: Clock = clock or SystemClock()
        self._tiers_ns = {tier: int(s * NS_PER_S) for tier, s in tiers.items()}
        self._jitter = jitter
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._entries: dict[str, CollectorState] = {}
        self._cache = ResultCache()
        self._fanout = Fanout(self._clock, on_change=self._replan)
        self._pool = WorkerPool(workers)
        self._runner = Runner(
            host=self.host,
            clock=self._clock,
            lock=self._lock,
            cache=self._cache,
            pool=self._pool,
            publish=self._fanout.publish,
            on_timeout=self._drop_beat,
        )
        self._state: Literal["new", "running", "stopped", "failed"] = "new"
        self._origin_ns = 0
        self._wake = _Alarm(self._clock)
        # Pool threads keep beats on the system clock only: they sleep on bare
        # locks, which a test's clock cannot wake.
        self._beats = isinstance(self._clock, SystemClock)
        self._stopping = threading.Event()
        self._ticker_done = threading.Event()
        self._thread: threading.Thread | None = None
        self._unfinished: tuple[str, ...] = ()

    # ------------------------------------------------------ configuration

    def add(
        self,
        collector: Collector,
        *,
        tier: str = "system",
        interval: float | None = None,
        timeout: float | None = None,
        ttl: float | None = None,
        backoff_initial: float = 1.0,
        backoff_max: float = 300.0,
    ) -> None:
        """Put ``collector`` on the bus; ``interval`` overrides its tier's."""
        name = collector.name
        for what, value in (("interval", interval), ("timeout", timeout), ("ttl", ttl)):
            if value is not None and value <= 0:
                raise BusError(f"collector {name!r}: {what} must be positive, got {value}")
        if not 0 < backoff_initial <= backoff_max:
            raise BusError(f"collector {name!r}: need 0 < backoff_initial <= backoff_max")
        if tier not in self._tiers_ns:
            known = ", ".join(sorted(self._tiers_ns))
            raise BusError(f"collector {name!r}: unknown tier {tier!r} (known: {known})")
        entry = CollectorState(
            collector=collector,
            name=name,
            tier=tier,
            base_ns=self._tiers_ns[tier] if interval is None else int(interval * NS_PER_S),
            timeout_ns=None if timeout is None else int(timeout * NS_PER_S),
            ttl_ns=None if ttl is None else int(ttl * NS_PER_S),
            backoff_initial_ns=int(backoff_initial * NS_PER_S),
            backoff_max_ns=int(backoff_max * NS_PER_S),
        )
        entry.interval_ns = self._fanout.pace_ns(name, entry.base_ns)
        with self._lock:
            if self._state == "stopped":
                raise BusError(f"collector {name!r}: the bus is stopped")
            if name in self._entries:
                raise BusError(f"collector {name!r} is already on the bus")
            self._entries[name] = entry
            self._cache.add(name)
            if self._state == "running":
                self._schedule(entry, self._clock.monotonic_ns())
        self._wake.set()

    def subscribe(
        self,
        callback: Callable[[Result], None] | None = None,
        *,
        name: str,
        collectors: Iterable[str] | None = None,
        every: float | None = None,
        maxsize: int = 1000,
        policy: Literal["drop_oldest", "drop_newest", "latest", "block"] = "drop_oldest",
        block_timeout: float = 1.0,
        batch: int = 1,
        linger: float = 1.0,
    ) -> Subscription:
        """Receive results: through ``callback`` (on a thread of the subscriber's
        own), or by reading the returned subscription when there is none.

        ``collectors`` limits it to those collectors (default: all). ``every``
        asks for one result per period of that many seconds, and makes the
        collectors run at least that often. ``policy`` says what a full queue
        of ``maxsize`` results does with a new one; with ``block`` the result
        waits up to ``block_timeout`` seconds for room, the publisher never
        does (see :mod:`collectbus.bus.subscription`). With ``batch``, the
        consumer is woken once that many results are queued, or ``linger``
        real seconds after it fell asleep, rather than for each result.
        """
        wanted = None if collectors is None else tuple(collectors)
        with self._lock:
            if self._state == "stopped":
                raise BusError(f"subscriber {name!r}: the bus is stopped")
            unknown = sorted(set(wanted or ()) - self._entries.keys())
        if unknown:
            raise BusError(
                f"subscriber {name!r}: unknown collector(s) {', '.join(unknown)}",
                hint="add() the collectors before subscribing to them",
            )
        return self._fanout.subscribe(
            callback,
            name=name,
            collectors=wanted,
            every=every,
            maxsize=maxsize,
            policy=policy,
            block_timeout=block_timeout,
            batch=batch,
            linger=linger,
        )

    # ------------------------------------------------------------ reading

    def get(self, collector: str, *, max_age: float | None = None) -> Result:
        """The cached result if younger than ``max_age`` (default: the collector's
        TTL, itself defaulting to its interval), else a fresh collection.

        Callers that arrive while a collection runs share it. During a backoff
        the last result is returned (stale) without collecting.
        """
        entry = self._entry(collector)
        now = self._clock.monotonic_ns()
        max_age_ns = entry.ttl if max_age is None else int(max_age * NS_PER_S)
        cached = self._cache.fresh(collector, max_age_ns, now)
        if cached is None:
            with self._lock:
                backing_off = entry.in_backoff(now)
            if backing_off:
                cached = self._cache.latest(collector)
        if cached is not None:
            return self._runner.served(entry, cached)
        return self._runner.collect(entry)

    def collect_now(self, collector: str) -> Result:
        """Collect once now, whatever the cache and the backoff say.

        Joins the collection under way, if any. Collector failures do not
        raise: they are in ``result.event`` (status, error).
        """
        return self._runner.collect(self._entry(collector))

    def snapshot(self) -> dict[str, Result]:
        """The latest result of every collector that has one, read at once."""
        return self._cache.snapshot()

    # ---------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start ticking; every collector's first tick is now."""
        with self._lock:
            if self._state != "new":
                raise BusError(f"the bus cannot start: it is {self._state}")
            self._state = "running"
            self._origin_ns = self._clock.monotonic_ns()
            for entry in self._entries.values():
                self._schedule(entry, self._origin_ns)
        self._thread = threading.Thread(
            target=self._tick_loop, name="collectbus-scheduler", daemon=True
        )
        self._thread.start()

    def stop(self, deadline: float = 5.0) -> None:
        """Stop ticking, let running collections finish and subscribers drain
        their queues until ``deadline`` seconds from now, then close the
        collectors. What was left (collections still running, results still
        queued) is reported by health()."""
        with self._lock:
            if self._state == "stopped":
                return
            self._state = "stopped"
        end_ns = self._clock.monotonic_ns() + int(deadline * NS_PER_S)
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._wait(self._ticker_done, end_ns)
        for name, entry in list(self._entries.items()):
            self._wait(self._cache.idle_event(name), end_ns)  # the collection returned,
            with entry.publish_lock:  # and its result went out (a publish never waits)
                pass
        for sub, drained in self._fanout.close_all():
            if not self._wait(drained, end_ns):
                self._fanout.abandon(sub)
        unfinished = []
        for name, entry in list(self._entries.items()):
            if self._cache.busy(name):
                unfinished.append(name)
                log.warning("collector %s: still running at stop; not closed", name)
                continue
            try:
                close_collector(entry.collector)
            except Exception as exc:  # noqa: BLE001  one close() must not keep the others open
                log.error("collector %s: close() raised %s: %s", name, type(exc).__name__, exc)
        self._unfinished = tuple(unfinished)
        self._pool.shutdown()

    def __enter__(self) -> CollectionBus:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def health(self) -> BusHealth:
        """Counters per collector and per subscriber (see :mod:`collectbus.bus.health`)."""
        now = self._clock.monotonic_ns()
        with self._lock:
            rows = tuple(
                e.health(now, busy=self._cache.busy(e.name)) for e in self._entries.values()
            )
            state = self._state
        return BusHealth(
            host=self.host,
            state=state,
            collectors=rows,
            subscribers=self._fanout.health(),
            unfinished=self._unfinished,
        )

    def __repr__(self) -> str:
        return f"<CollectionBus {self.host} {self._state} collectors={sorted(self._entries)}>"

    # ----------------------------------------------------------- schedule

    def _schedule(self, entry: CollectorState, now_ns: int) -> None:
        """(bus lock) Put the next tick of ``entry`` on the aligned grid, at or after now."""
        interval = entry.interval_ns
        n = -(-(now_ns - self._origin_ns) // interval)  # ceiling division
        tick = self._origin_ns + n * interval
        if entry.last_tick_ns is not None and tick <= entry.last_tick_ns:
            n = (entry.last_tick_ns - self._origin_ns) // interval + 1
            tick = self._origin_ns + n * interval
        entry.next_tick_ns = tick
        entry.fire_ns = tick
        if self._jitter:
            entry.fire_ns += int(self._rng.random() * self._jitter * interval)

    def _replan(self) -> None:
        """Subscribers came or went: recompute every collector's interval."""
        with self._lock:
            entries = list(self._entries.values())
        planned = [(e, self._fanout.pace_ns(e.name, e.base_ns)) for e in entries]
        with self._lock:
            now = self._clock.monotonic_ns()
            for entry, interval in planned:
                if interval != entry.interval_ns:
                    entry.interval_ns = interval
                    # A keeper sleeps until the old tick: the scheduler takes over.
                    entry.keeper = None
                    if self._state == "running":
                        self._schedule(entry, now)
        self._wake.set()

    def _tick_loop(self) -> None:
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                now = self._clock.monotonic_ns()
                wake_ns = now + _MAX_SLEEP_NS  # the next tick or deadline, whichever is first
                with self._lock:  # one instant for both: a keeper starts its flight under it
                    flights = self._cache.open_flights()
                    for entry in self._entries.values():
                        if entry.keeper is not None:  # no flight of it can end sooner
                            wake_ns = min(wake_ns, entry.fire_ns + entry.timeout)
                for flight in flights:
                    if flight.deadline_ns <= now:
                        self._runner.expire(self._entries[flight.collector], flight, now)
                    else:
                        wake_ns = min(wake_ns, flight.deadline_ns)
                self._fanout.check_drops()  # drops of results that waited for room in vain
                due, next_fire_ns = self._due(now)
                wake_ns = min(wake_ns, next_fire_ns)
                for entry, flight in due:
                    self._runner.submit(entry, flight, partial(self._keep_beat, entry, None))
                    wake_ns = min(wake_ns, flight.deadline_ns)
                # Straight to sleep after the hand-offs: the pool threads find
                # the interpreter free instead of waiting for this thread.
                self._wake.sleep_until(wake_ns)
        except BaseException:
            # A bug here would stop every collection in silence: say so, loudly,
            # and let health() show it, then let the thread die with the error.
            log.critical("bus scheduler stopped by an internal error", exc_info=True)
            with self._lock:
                self._state = "failed"
            raise
        finally:
            self._ticker_done.set()

    def _due(self, now: int) -> tuple[list[tuple[CollectorState, Flight]], int]:
        """The collections to start now, for the collectors whose tick has come
        (but those a pool thread keeps the beat of); and the next time a tick
        comes, once these are planned."""
        due = []
        next_fire = now + _MAX_SLEEP_NS
        with self._lock:
            for entry in self._entries.values():
                if entry.keeper is not None:
                    continue
                if entry.fire_ns > now:
                    next_fire = min(next_fire, entry.fire_ns)
                    continue
                flight = self._take_tick(entry, now)
                next_fire = min(next_fire, entry.fire_ns)
                if flight is not None:
                    due.append((entry, flight))
        return due, next_fire

    def _take_tick(self, entry: CollectorState, now: int) -> Flight | None:
        """(bus lock) The tick of ``entry`` has come: plan the next one, and
        start this one's collection, or count why not."""
        tick, fire, interval = entry.next_tick_ns, entry.fire_ns, entry.interval_ns
        late = (now - tick) // interval
        if late > 0:  # woken late (a suspended machine): run only the latest tick
            entry.missed += late
            tick += late * interval
            fire = tick
        entry.last_tick_ns = tick
        self._schedule(entry, tick + 1)
        if entry.in_backoff(now):
            entry.backoff_skips += 1
            return None
        wall = self._clock.time_ns()
        flight, new = self._cache.begin(
            entry.name,
            tick_ns=wall - (now - tick),
            wall_ns=wall,
            created_ns=now,
            timeout_ns=entry.timeout,
            due_ns=fire,
        )
        if flight is None or not new:
            entry.skips += 1
            log.debug("collector %s: tick skipped, the previous collection still runs", entry.name)
            return None
        return flight

    # -------------------------------------------------------------- beats

    def _keep_beat(self, entry: CollectorState, token: _Keeper | None) -> Beat | None:
        """What the pool thread that ran a tick of ``entry`` does next: keep
        the beat (sleep until the next tick and run it itself), or not (None).

        ``token`` is None after a tick the scheduler handed off: the thread then
        takes the beat if nobody keeps it. A keeper goes on while its token
        holds. Beats are for a collector that runs well: after a failure
        (backoff), a replan or a timeout, the scheduler has it.
        """
        if not self._beats:
            return None
        with self._lock:
            if entry.keeper is not token:
                return None  # another thread keeps it, or the beat was taken back
            if self._state != "running" or entry.failures:
                if token is not None:
                    entry.keeper = None
                    self._wake.set()
                return None
            if token is None:
                token = entry.keeper = _Keeper(self, entry)
            assert isinstance(token, _Keeper)
            return Beat(at_ns=entry.fire_ns, job=token.beat, drop=token.drop)

    def _beat(self, entry: CollectorState, token: _Keeper) -> Beat | None:
        """A keeper's wake-up: run the tick of ``entry`` on this thread."""
        now = self._clock.monotonic_ns()
        with self._lock:
            if entry.keeper is not token:
                return None
            if self._state != "running":
                entry.keeper = None
                return None
            flight = None if entry.fire_ns > now else self._take_tick(entry, now)
            if flight is not None:  # it starts now, here
                entry.runs += 1
                entry.lag_ns = now - flight.due_ns if flight.due_ns is not None else None
        if flight is None:  # early (a later tick was planned), skipped or backing off
            return self._keep_beat(entry, token)
        return self._runner.run_here(entry, flight, token.next_beat)

    def _drop_beat(self, entry: CollectorState, token: object | None = None) -> None:
        """The beat of ``entry`` goes back to the scheduler (``token``: if that
        keeper still has it; None: whoever has it)."""
        with self._lock:
            if entry.keeper is None or (token is not None and entry.keeper is not token):
                return
            entry.keeper = None
        self._wake.set()

    # --------------------------------------------------------- collecting

    def _entry(self, collector: str) -> CollectorState:
        with self._lock:
            entry = self._entries.get(collector)
            state = self._state
        if entry is None:
            known = ", ".join(sorted(self._entries)) or "none"
            raise BusError(f"unknown collector {collector!r} (known: {known})")
        if state == "stopped":
            raise BusError(f"collector {collector!r}: the bus is stopped")
        return entry

    # ------------------------------------------------------------- helpers

    def _wait(self, event: threading.Event, end_ns: int) -> bool:
        """Wait (bus clock) until ``event`` is set or ``end_ns``; True if set."""
        if not event.is_set():
            self._clock.sleep_until(end_ns, event)
        return event.is_set()
