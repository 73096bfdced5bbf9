"""Fan-out: each subscriber has its own bounded queue, so none can stall another.

Synchronous fan-out (one slow exporter holds up the rest) and blocking by
default are what users of the OpenTelemetry Collector and Vector complain
about; Telegraf's per-output ring buffer that drops the oldest and counts is
what they accept. This is that ring buffer, with a choice of policy:

``drop_oldest``  a full queue evicts its oldest result (the default);
``drop_newest``  a full queue refuses the new result;
``latest``       a queue of one that always holds the newest result;
``block``        the publisher waits up to ``block_timeout`` (bus clock) for room,
                 then drops the new result. It waits after every other
                 subscriber has been served, on the pool thread of the
                 collection; later results of the same collector wait behind
                 it, in order. Other collectors and subscribers go on.

Every lost result is counted, exactly, and a warning is logged at most once
per subscriber per :data:`DROP_WARNING_INTERVAL_S` of bus time, with the number
of drops since the previous one.

How publish() stays cheap (budget: 100 ns per subscriber, ``bench/bus_publish.py``):

- One lock guards every queue and counter. publish() takes it once per result,
  not once per subscriber, and consumers take it only to pop. Because nothing
  pops while publish() looks at a queue, "the queue was full" really means
  "one result was dropped": the counts are exact.
- ``drop_oldest`` and ``latest`` queues are ``deque(maxlen=...)``, which evicts
  in C.
- The routes (which subscribers get which collector) are precomputed tuples,
  rebuilt only when a subscriber comes or goes.
- A consumer with nothing to do waits on a Condition over that same lock;
  publish() notifies only consumers that are actually asleep.

The consumer side (queues, callback threads, pull reads) is in
:mod:`collectbus.bus.subscription`.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import NamedTuple

from collectbus.bus.cache import Result
from collectbus.bus.health import SubscriberHealth
from collectbus.bus.subscription import POLICIES, Callback, Policy, Subscription
from collectbus.clock import NS_PER_S, Clock
from collectbus.errors import BusError

log = logging.getLogger("collectbus.bus")

#: How many closed subscriptions health() keeps reporting.
CLOSED_KEPT = 100

#: At most one drop warning per subscriber per this many seconds of bus time.
DROP_WARNING_INTERVAL_S = 10.0


class _Route(NamedTuple):
    """The subscribers of one collector, grouped so publish() branches once per group."""

    evicting: tuple[tuple[deque[Result], int, Subscription], ...]
    refusing: tuple[tuple[deque[Result], int, Subscription], ...]
    blocking: tuple[Subscription, ...]
    paced: tuple[Subscription, ...]  # with ``every``: any policy, filtered first
    everyone: tuple[Subscription, ...]


_EMPTY_ROUTE = _Route((), (), (), (), ())


class Fanout:
    """The subscribers of one bus and the publish() that feeds them."""

    def __init__(
        self,
        clock: Clock,
        *,
        on_change: Callable[[], None] | None = None,
        warn_interval_s: float = DROP_WARNING_INTERVAL_S,
    ) -> None:
        self._clock = clock
        self._on_change = on_change
        self._warn_ns = int(warn_interval_s * NS_PER_S)
        #: Guards every queue and counter of every subscription (see above).
        self.lock = threading.Lock()
        self._subs: dict[str, Subscription] = {}
        # Closed subscriptions stay in health() (their counters, their leftovers),
        # the most recent ones only.
        self._closed: deque[Subscription] = deque(maxlen=CLOSED_KEPT)
        self._routes: dict[str, _Route] = {}
        #: Consumers asleep on an empty queue, over all subscriptions (lock held).
        self.asleep = 0

    # ------------------------------------------------------ membership

    def subscribe(
        self,
        callback: Callback | None = None,
        *,
        name: str,
        collectors: Iterable[str] | None = None,
        every: float | None = None,
        maxsize: int = 1000,
        policy: Policy = "drop_oldest",
        block_timeout: float = 1.0,
    ) -> Subscription:
        if policy not in POLICIES:
            raise BusError(f"subscriber {name!r}: unknown policy {policy!r} (known: {POLICIES})")
        if maxsize < 1:
            raise BusError(f"subscriber {name!r}: maxsize must be at least 1, got {maxsize}")
        if every is not None and every <= 0:
            raise BusError(f"subscriber {name!r}: every must be positive, got {every}")
        if block_timeout < 0:
            raise BusError(f"subscriber {name!r}: block_timeout must be >= 0")
        sub = Subscription(
            self,
            name=name,
            callback=callback,
            collectors=None if collectors is None else frozenset(collectors),
            every_ns=None if every is None else int(every * NS_PER_S),
            maxsize=maxsize,
            policy=policy,
            block_timeout_ns=int(block_timeout * NS_PER_S),
        )
        with self.lock:
            if name in self._subs:
                raise BusError(f"subscriber {name!r} already exists")
            self._subs[name] = sub
            self._routes = {}
        sub._start()
        self._changed()
        return sub

    def remove(self, sub: Subscription) -> None:
        """Close ``sub``: it gets nothing new, and its consumer drains what is queued."""
        with self.lock:
            if sub._closed:
                return
            sub._closed = True
            if self._subs.get(sub.name) is sub:
                del self._subs[sub.name]
                self._closed.append(sub)
            self._routes = {}
            sub._cond.notify_all()
            sub._space.set()
            pending = self._pending_warning(sub, force=True)
        self._warn([pending] if pending else [])
        self._changed()

    def subscriptions(self) -> list[Subscription]:
        with self.lock:
            return list(self._subs.values())

    def fastest_every_ns(self, collector: str) -> int | None:
        """The shortest ``every`` any open subscriber of ``collector`` asked for."""
        with self.lock:
            paces = [
                s.every_ns
                for s in self._subs.values()
                if s.every_ns is not None and (s.collectors is None or collector in s.collectors)
            ]
        return min(paces) if paces else None

    def close_all(self) -> list[tuple[Subscription, threading.Event]]:
        """Close every subscription; each comes with an event set once its
        callback thread has drained its queue (at once for pull subscribers,
        whose results stay queued for them to read)."""
        subs = self.subscriptions()
        for sub in subs:
            self.remove(sub)
        return [(sub, sub._finished) for sub in subs]

    def abandon(self, sub: Subscription) -> None:
        """Stop ``sub``'s consumer after its current result; what is queued stays."""
        with self.lock:
            sub._abandoned = True
            sub._cond.notify_all()

    # --------------------------------------------------------- publish

    def publish(self, result: Result) -> None:
        """Offer ``result`` to every subscriber of its collector; never waits,
        except for subscribers with the ``block`` policy (after all others)."""
        lock = self.lock
        waiting: list[Subscription] | None = None
        pending: list[tuple[Subscription, int]] | None = None
        lock.acquire()
        try:
            route = self._routes.get(result.collector)
            if route is None:
                route = self._route(result.collector)
            dropped = False
            for queue, size, sub in route.evicting:
                if len(queue) == size:  # the append below evicts the oldest
                    sub._dropped += 1
                    dropped = True
                queue.append(result)
            for queue, size, sub in route.refusing:
                if len(queue) >= size:
                    sub._dropped += 1
                    dropped = True
                else:
                    queue.append(result)
            for sub in route.blocking:
                if len(sub._queue) < sub.maxsize:
                    sub._queue.append(result)
                else:
                    waiting = [sub] if waiting is None else [*waiting, sub]
            for sub in route.paced:
                outcome = self._offer_paced(sub, result)
                if outcome == _DROPPED:
                    dropped = True
                elif outcome == _FULL:
                    waiting = [sub] if waiting is None else [*waiting, sub]
            if self.asleep:
                for sub in route.everyone:
                    if sub._sleeping:
                        sub._cond.notify()
            if dropped:
                pending = self._due_warnings(route.everyone)
        finally:
            lock.release()
        if pending:
            self._warn(pending)
        if waiting:
            for sub in waiting:
                self._put_blocking(sub, result)

    def _offer_paced(self, sub: Subscription, result: Result) -> int:
        """The slow path, with lock held: ``every`` filter, then the policy."""
        assert sub.every_ns is not None
        period = result.tick_ns // sub.every_ns
        if period == sub._period:
            return _FILTERED
        sub._period = period
        queue = sub._queue
        if sub._evicting:
            outcome = _DROPPED if len(queue) == sub.maxsize else _QUEUED
            if outcome == _DROPPED:
                sub._dropped += 1
            queue.append(result)
            return outcome
        if len(queue) < sub.maxsize:
            queue.append(result)
            return _QUEUED
        if sub.policy == "block":
            return _FULL
        sub._dropped += 1
        return _DROPPED

    def _put_blocking(self, sub: Subscription, result: Result) -> None:
        """Wait (bus clock) up to the subscriber's block_timeout for room."""
        give_up = self._clock.monotonic_ns() + sub.block_timeout_ns
        while True:
            with self.lock:
                if len(sub._queue) < sub.maxsize and not sub._closed:
                    sub._queue.append(result)
                    if sub._sleeping:
                        sub._cond.notify()
                    return
                if sub._closed or self._clock.monotonic_ns() >= give_up:
                    sub._dropped += 1
                    pending = self._pending_warning(sub)
                    break
                sub._space.clear()
                sub._blocked += 1
            try:
                self._clock.sleep_until(give_up, sub._space)
            finally:
                with self.lock:
                    sub._blocked -= 1
        self._warn([pending] if pending else [])

    def _route(self, collector: str) -> _Route:
        """Build (lock held) and remember the route of ``collector``."""
        subs = [s for s in self._subs.values() if s.collectors is None or collector in s.collectors]
        plain = [s for s in subs if s.every_ns is None]
        route = _Route(
            evicting=tuple((s._queue, s.maxsize, s) for s in plain if s._evicting),
            refusing=tuple((s._queue, s.maxsize, s) for s in plain if s.policy == "drop_newest"),
            blocking=tuple(s for s in plain if s.policy == "block"),
            paced=tuple(s for s in subs if s.every_ns is not None),
            everyone=tuple(subs),
        )
        if not subs:
            route = _EMPTY_ROUTE
        self._routes[collector] = route
        return route

    # --------------------------------------------------- drop warnings

    def _due_warnings(self, subs: Iterable[Subscription]) -> list[tuple[Subscription, int]]:
        pending = []
        for sub in subs:
            item = self._pending_warning(sub)
            if item is not None:
                pending.append(item)
        return pending

    def _pending_warning(
        self, sub: Subscription, *, force: bool = False
    ) -> tuple[Subscription, int] | None:
        """(lock held) The drops to warn about now, if the rate limit allows."""
        unreported = sub._dropped - sub._warned_drops
        if not unreported:
            return None
        now = self._clock.monotonic_ns()
        if not force and sub._warned_ns is not None and now - sub._warned_ns < self._warn_ns:
            return None
        sub._warned_ns = now
        sub._warned_drops = sub._dropped
        return sub, unreported

    def _warn(self, pending: Iterable[tuple[Subscription, int]]) -> None:
        for sub, count in pending:
            log.warning(
                "subscriber %s: dropped %d result(s) since the last warning "
                "(policy %s, maxsize %d, %d dropped in all)",
                sub.name,
                count,
                sub.policy,
                sub.maxsize,
                sub._dropped,
            )

    # ----------------------------------------------------------- health

    def health(self) -> tuple[SubscriberHealth, ...]:
        """Open subscriptions, then the recently closed ones."""
        now = self._clock.time_ns()
        rows = []
        with self.lock:
            for s in [*self._subs.values(), *self._closed]:
                lag = now - s._queue[0].tick_ns if s._queue else 0
                rows.append(
                    SubscriberHealth(
                        name=s.name,
                        policy=s.policy,
                        maxsize=s.maxsize,
                        every_s=None if s.every_ns is None else s.every_ns / NS_PER_S,
                        collectors=None if s.collectors is None else tuple(sorted(s.collectors)),
                        delivered=s._delivered,
                        dropped=s._dropped,
                        queued=len(s._queue),
                        errors=s._errors,
                        lag_ns=max(lag, 0),
                        closed=s._closed,
                    )
                )
        return tuple(rows)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()


# Outcomes of _offer_paced.
_QUEUED, _DROPPED, _FILTERED, _FULL = range(4)
