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

How publish() stays cheap (budget: 100 ns per subscriber, ``bench/bus_publish.py``):

- *Plain* subscribers (``drop_oldest`` or ``latest``, without ``every``) are
  served without any lock: publish() looks up the collector's route (one dict
  lookup, see :mod:`collectbus.bus.routes`), calls the bound ``deque.append``
  of each, which evicts in C, then counts itself with one atomic ``next()``
  that also hands back the route's bell. No clock, no drop test, no lock.
- The bell is non-empty only while a consumer of one of those subscribers
  sleeps (or the route is retired); only then does publish() take the lock,
  to wake it. A consumer rings the bell before looking at its queue a last
  time, and publish() looks at the bell after appending, so no wake-up is lost.
- Every other subscriber (other policies, ``every``) is served by one callable
  at the end of the route, under the fanout lock, as before.

Drop counts. Other policies count every drop under the lock: exact at all
times. A plain subscriber's drops are derived instead, under the lock::

    dropped = offered - delivered - queued

``offered`` counts the publishes that have finished appending to its queue
(each counts itself after its appends), read before ``queued``. So for a
plain subscriber ``dropped``

- never exceeds the results really evicted so far, and never goes down;
- trails them by at most one per publish still under way (one that has
  appended but not yet counted itself);
- is exact whenever no publish to it is under way: in particular once its
  publishers are done, whatever its consumer does (pops are counted under the
  lock), and then ``delivered + dropped + queued`` is all it was offered.

Warnings are rate-limited on the bus clock: at most one pass per
:data:`DROP_WARNING_INTERVAL_S` warns every subscriber that dropped since its
previous warning, with the count. A pass is due at a drop of another policy
(counted by publish(), under the lock), and is looked for lazily for plain
subscribers: by :meth:`Fanout.check_drops` (each wake-up of the bus scheduler)
and by health(). So each subscriber gets at most one warning per interval, a
first drop is reported at the next check, and closing a subscription reports
what is left.

A publish that fetched a route before close() may still append to the closed
queue; its consumer drains until no such publish is left, so nothing is left
behind. The consumer side is in :mod:`collectbus.bus.subscription`.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from functools import partial

from collectbus.bus.cache import Result
from collectbus.bus.health import SubscriberHealth
from collectbus.bus.routes import Hot, Routes
from collectbus.bus.subscription import POLICIES, Callback, Policy, Subscription
from collectbus.clock import NS_PER_S, Clock
from collectbus.errors import BusError

log = logging.getLogger("collectbus.bus")

#: How many closed subscriptions health() keeps reporting.
CLOSED_KEPT = 100

#: At most one drop warning per subscriber per this many seconds of bus time.
DROP_WARNING_INTERVAL_S = 10.0


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
        #: Guards every subscription's counters and waiters, the routes, and the
        #: queues of all but plain subscribers (see above).
        self.lock = threading.Lock()
        self._subs: dict[str, Subscription] = {}
        # Closed subscriptions stay in health() (their counters, their leftovers),
        # the most recent ones only.
        self._closed: deque[Subscription] = deque(maxlen=CLOSED_KEPT)
        self._routes = Routes()
        self._hot = self._routes.hot  # the same dict, cleared in place
        #: No drop warnings before this (monotonic); None: none given yet.
        self._next_warning_ns: int | None = None
        #: See _publisher().
        self.publish = self._publisher()

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
            self._routes.retire()
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
            self._routes.retire()
            Routes.wake(sub, everyone=True)
            sub._space.set()
            pending = self._unreported(sub)  # its last word, whatever the rate limit
        self._warn([pending] if pending else [])
        self._changed()

    def subscriptions(self) -> list[Subscription]:
        with self.lock:
            return list(self._subs.values())

    def pace_ns(self, collector: str, own_ns: int) -> int:
        """How often ``collector`` must run for its subscribers.

        The shortest ``every`` they ask for; a subscriber that asks for none
        takes every result, at the collector's own interval ``own_ns`` (also
        used when nobody subscribes). So a slow subscriber never slows the
        collector down for the others.
        """
        with self.lock:
            paces = [
                own_ns if s.every_ns is None else s.every_ns
                for s in self._subs.values()
                if s.wants(collector)
            ]
        return min(paces) if paces else own_ns

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
            Routes.wake(sub, everyone=True)

    # --------------------------------------------------------- publish

    def _publisher(self) -> Callable[[Result], None]:
        """The publish() of this fanout: a closure rather than a method, because
        it reads its free variables faster than attributes of ``self`` (about
        3 ns of the 95 that a publish to one subscriber costs)."""
        hot = self._hot
        route = self._route
        rouse = self._rouse

        def publish(result: Result) -> None:
            """Offer ``result`` to every subscriber of its collector; never waits,
            except for subscribers with the ``block`` policy (after all others)."""
            try:
                count, first, rest = hot[result.collector]
            except KeyError:
                count, first, rest = route(result.collector)
            first(result)
            if rest is not None:
                for offer in rest:
                    offer(result)
            if next(count):  # counted after the appends; a consumer may sleep
                rouse(result.collector)

        return publish

    def _route(self, collector: str) -> Hot:
        """Build and remember the route of ``collector``."""
        with self.lock:
            hot = self._hot.get(collector)
            if hot is not None:
                return hot
            subs = [s for s in self._subs.values() if s.wants(collector)]
            plain = tuple(s for s in subs if s._plain)
            others = tuple(s for s in subs if not s._plain)
            offer = partial(self._offer_others, others) if others else None
            return self._routes.build(collector, plain, offer)

    def _rouse(self, collector: str) -> None:
        """Wake the sleeping consumers of plain subscribers of ``collector``."""
        with self.lock:
            Routes.wake_all(s for s in self._subs.values() if s._plain and s.wants(collector))

    def _offer_others(self, subs: tuple[Subscription, ...], result: Result) -> None:
        """Every policy but a plain drop_oldest (the last target of a route).

        Subscribers with ``every`` first keep only the first result whose tick
        falls in a new period. "block" subscribers with a full queue wait
        last, after the sleeping consumers of the others have been woken.
        """
        waiting: list[Subscription] = []
        with self.lock:
            dropped = False
            for sub in subs:
                if sub._closed:  # closed since this publish fetched its route
                    continue
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
                    continue
                else:
                    sub._dropped += 1
                    dropped = True
                    continue
                if sub._waiters:
                    Routes.wake(sub)
            pending = self._due_warnings() if dropped else []
        if waiting:
            self._rouse(result.collector)
        self._warn(pending)
        for sub in waiting:
            self._put_blocking(sub, result)

    def _put_blocking(self, sub: Subscription, result: Result) -> None:
        """Wait (bus clock) up to the subscriber's block_timeout for room."""
        give_up = self._clock.monotonic_ns() + sub.block_timeout_ns
        while True:
            with self.lock:
                if len(sub._queue) < sub.maxsize and not sub._closed:
                    sub._queue.append(result)
                    if sub._waiters:
                        Routes.wake(sub)
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

    # ------------------------------------------------------ drop counts

    def dropped(self, sub: Subscription) -> int:
        with self.lock:
            return self._dropped_of(sub)

    def _dropped_of(self, sub: Subscription) -> int:
        """(lock held) The drops of ``sub`` (see the module docstring)."""
        if sub._plain:
            offered = Routes.offered(sub)  # before the queue's length: never too many
            lost = offered - sub._delivered - len(sub._queue)
            if lost > sub._dropped:
                sub._dropped = lost
        return sub._dropped

    # --------------------------------------------------- drop warnings

    def check_drops(self) -> None:
        """Warn about drops if a warning pass is due (cheap when it is not)."""
        due = self._next_warning_ns
        if due is not None and self._clock.monotonic_ns() < due:
            return
        with self.lock:
            pending = self._due_warnings()
        self._warn(pending)

    def _due_warnings(self) -> list[tuple[Subscription, int]]:
        """(lock held) The warnings due, at most one pass per interval.

        A pass warns every subscriber that dropped since its previous warning,
        so each subscriber gets at most one warning per interval.
        """
        now = self._clock.monotonic_ns()
        if self._next_warning_ns is not None and now < self._next_warning_ns:
            return []
        self._routes.settle()
        pending = [self._unreported(sub) for sub in [*self._subs.values(), *self._closed]]
        due = [item for item in pending if item is not None]
        if due:
            self._next_warning_ns = now + self._warn_ns
        return due

    def _unreported(self, sub: Subscription) -> tuple[Subscription, int] | None:
        """(lock held) The drops of ``sub`` not warned about yet, now marked warned."""
        dropped = self._dropped_of(sub)
        count = dropped - sub._warned_drops
        if count <= 0:
            return None
        sub._warned_drops = dropped
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
                sub._warned_drops,
            )

    # ----------------------------------------------------------- health

    def health(self) -> tuple[SubscriberHealth, ...]:
        """Open subscriptions, then the recently closed ones (and any warning due)."""
        now = self._clock.time_ns()
        rows = []
        with self.lock:
            self._routes.settle()
            for s in [*self._subs.values(), *self._closed]:
                dropped = self._dropped_of(s)  # before the queue is looked at
                lag = now - s._queue[0].tick_ns if s._queue else 0
                rows.append(
                    SubscriberHealth(
                        name=s.name,
                        policy=s.policy,
                        maxsize=s.maxsize,
                        every_s=None if s.every_ns is None else s.every_ns / NS_PER_S,
                        collectors=None if s.collectors is None else tuple(sorted(s.collectors)),
                        delivered=s._delivered,
                        dropped=dropped,
                        queued=len(s._queue),
                        errors=s._errors,
                        lag_ns=max(lag, 0),
                        closed=s._closed,
                    )
                )
        self.check_drops()
        return tuple(rows)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()
