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

Every lost result is counted, exactly. Warnings are rate-limited on the bus
clock: at most one pass per :data:`DROP_WARNING_INTERVAL_S` warns every
subscriber that dropped since its previous warning, with the count. So each
subscriber gets at most one warning per interval, the first drop of all is
reported at once, and a later first drop within at most one interval;
closing a subscription reports what is left.

How publish() stays cheap (budget: 100 ns per subscriber, ``bench/bus_publish.py``):

- One lock guards every queue and counter. publish() takes it once per result,
  not once per subscriber, and consumers take it only to pop. Because nothing
  pops while publish() looks at a queue, "the queue was full" really means
  "one result was dropped": the counts are exact.
- ``drop_oldest`` and ``latest`` queues are ``deque(maxlen=...)``, which evicts
  in C. Plain ``drop_oldest`` subscribers (the default) are served by an inline
  loop; the other policies and ``every`` go through one method call per publish.
- A dropping publish reads the clock once, for the warning rate limit.
- The routes (which subscribers get which collector) are precomputed tuples,
  rebuilt only when a subscriber comes or goes.
- A consumer with nothing to do sleeps on a lock of its own; publish() wakes
  only consumers that are actually asleep, with one ``release()``.

The consumer side (queues, callback threads, pull reads) is in
:mod:`collectbus.bus.subscription`.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
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

    #: Plain ``drop_oldest`` subscribers (no ``every``), with their queue and size.
    evicting: tuple[tuple[deque[Result], int, Subscription], ...]
    #: Everyone else: other policies, or ``every``.
    others: tuple[Subscription, ...]
    everyone: tuple[Subscription, ...]


_EMPTY_ROUTE = _Route((), (), ())


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
        #: No drop warnings before this (monotonic); None: none given yet.
        self._next_warning_ns: int | None = None

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
            sub._wake(everyone=True)
            sub._space.set()
            pending = self._unreported(sub)  # its last word, whatever the rate limit
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
            sub._wake(everyone=True)

    # --------------------------------------------------------- publish

    def publish(self, result: Result) -> None:
        """Offer ``result`` to every subscriber of its collector; never waits,
        except for subscribers with the ``block`` policy (after all others)."""
        lock = self.lock
        waiting: Sequence[Subscription] = ()
        pending: Sequence[tuple[Subscription, int]] = ()
        lock.acquire()
        try:
            try:
                evicting, others, everyone = self._routes[result.collector]
            except KeyError:
                evicting, others, everyone = self._route(result.collector)
            dropped = False
            for queue, size, sub in evicting:  # the common case, kept inline
                if len(queue) == size:  # the append below evicts the oldest
                    sub._dropped += 1
                    dropped = True
                queue.append(result)
            if others or dropped or self.asleep:  # one test for all the rarer work
                waiting, pending = self._rest(result, others, everyone, dropped=dropped)
        finally:
            lock.release()
        if pending:
            self._warn(pending)
        for sub in waiting:
            self._put_blocking(sub, result)

    def _rest(
        self,
        result: Result,
        others: tuple[Subscription, ...],
        everyone: tuple[Subscription, ...],
        *,
        dropped: bool,
    ) -> tuple[list[Subscription], list[tuple[Subscription, int]]]:
        """(lock held) The rest of publish(): other policies, wake-ups, warnings.

        Returns the "block" subscribers to wait for, and the warnings to log.
        """
        waiting: list[Subscription] = []
        if others and self._offer_others(others, result, waiting):
            dropped = True
        if self.asleep:
            for sub in everyone:
                if sub._waiters:
                    sub._wake()
        return waiting, self._due_warnings() if dropped else []

    def _offer_others(
        self, subs: tuple[Subscription, ...], result: Result, waiting: list[Subscription]
    ) -> bool:
        """(lock held) Every policy but a plain drop_oldest; True if one dropped.

        Subscribers with ``every`` first keep only the first result whose tick
        falls in a new period. "block" subscribers with a full queue go to
        ``waiting``.
        """
        dropped = False
        for sub in subs:
            if sub.every_ns is not None:
                period = result.tick_ns // sub.every_ns
                if period == sub._period:
                    continue
                sub._period = period
            queue = sub._queue
            if sub._evicting:
                if len(queue) == sub.maxsize:
                    sub._dropped += 1
                    dropped = True
                queue.append(result)
            elif len(queue) < sub.maxsize:
                queue.append(result)
            elif sub.policy == "block":
                waiting.append(sub)
            else:
                sub._dropped += 1
                dropped = True
        return dropped

    def _put_blocking(self, sub: Subscription, result: Result) -> None:
        """Wait (bus clock) up to the subscriber's block_timeout for room."""
        give_up = self._clock.monotonic_ns() + sub.block_timeout_ns
        while True:
            with self.lock:
                if len(sub._queue) < sub.maxsize and not sub._closed:
                    sub._queue.append(result)
                    if sub._waiters:
                        sub._wake()
                    return
                if sub._closed or self._clock.monotonic_ns() >= give_up:
                    sub._dropped += 1
                    pending = self._due_warnings()
                    break
                sub._space.clear()
                sub._blocked += 1
            try:
                self._clock.sleep_until(give_up, sub._space)
            finally:
                with self.lock:
                    sub._blocked -= 1
        self._warn(pending)

    def _route(self, collector: str) -> _Route:
        """Build (lock held) and remember the route of ``collector``."""
        subs = [s for s in self._subs.values() if s.collectors is None or collector in s.collectors]
        plain = [s for s in subs if s.every_ns is None and s.policy == "drop_oldest"]
        route = _Route(
            evicting=tuple((s._queue, s.maxsize, s) for s in plain),
            others=tuple(s for s in subs if s not in plain),
            everyone=tuple(subs),
        )
        if not subs:
            route = _EMPTY_ROUTE
        self._routes[collector] = route
        return route

    # --------------------------------------------------- drop warnings

    def _due_warnings(self) -> list[tuple[Subscription, int]]:
        """(lock held) After a drop: collect the warnings due, at most once per interval.

        One check of the clock per dropping publish, and one pass over the
        subscribers per interval: so each subscriber gets at most one warning
        per interval, and the hot path stays cheap while queues overflow.
        """
        now = self._clock.monotonic_ns()
        if self._next_warning_ns is not None and now < self._next_warning_ns:
            return []
        self._next_warning_ns = now + self._warn_ns
        pending = [self._unreported(sub) for sub in self._subs.values()]
        return [item for item in pending if item is not None]

    @staticmethod
    def _unreported(sub: Subscription) -> tuple[Subscription, int] | None:
        """(lock held) The drops of ``sub`` not warned about yet, now marked warned."""
        count = sub._dropped - sub._warned_drops
        if not count:
            return None
        sub._warned_drops = sub._dropped
        return sub, count

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
