"""Fan-out: each subscriber has its own bounded queue, so none can stall another.

Synchronous fan-out (one slow exporter holds up the rest) and blocking by
default are what users of the OpenTelemetry Collector and Vector complain
about; Telegraf's per-output ring buffer that drops the oldest and counts is
what they accept. This is that ring buffer, with a choice of policy (see
:mod:`collectbus.bus.subscription` for the policies, ``block`` included).

publish() looks up the subscribers of the result's collector (a tuple kept
per collector, rebuilt when a subscriber comes or goes) and offers the result
to each in turn; each subscription appends, evicts, counts and notifies under
its own lock, as OpenTelemetry's ``BatchSpanProcessor`` does. publish() never
waits for a consumer and holds no lock shared by two subscribers, so drop
counts are exact at every instant, on any Python.

Warnings are rate-limited on the bus clock: at most one pass per
:data:`DROP_WARNING_INTERVAL_S` warns every subscriber that dropped since its
previous warning, with the count. A pass is due at a drop (in publish()), and
is looked for by :meth:`Fanout.check_drops` (each wake-up of the bus
scheduler: a ``block`` subscriber's waiting results are dropped at their
deadline, between publishes) and by health(). So each subscriber gets at most
one warning per interval, and closing a subscription reports what is left.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable

from collectbus.bus.cache import Result
from collectbus.bus.health import SubscriberHealth
from collectbus.bus.subscription import DROPPED, POLICIES, Callback, Policy, Subscription
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
        #: Guards the membership: the subscriptions and the routes.
        self._lock = threading.Lock()
        self._subs: dict[str, Subscription] = {}
        # Closed subscriptions stay in health() (their counters, their leftovers),
        # the most recent ones only.
        self._closed: deque[Subscription] = deque(maxlen=CLOSED_KEPT)
        #: collector -> the open subscriptions that want it (built on demand).
        self._routes: dict[str, tuple[Subscription, ...]] = {}
        #: Guards the warning state below (never held with a subscription's lock
        #: by publish()).
        self._warn_lock = threading.Lock()
        #: No drop warnings before this (monotonic); None: none given yet.
        self._next_warning_ns: int | None = None
        #: A drop may be unreported: a subscriber dropped, or has results
        #: waiting for room that may be dropped at their deadline.
        self._dirty = False

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
        batch: int = 1,
        linger: float = 1.0,
    ) -> Subscription:
        if policy not in POLICIES:
            raise BusError(f"subscriber {name!r}: unknown policy {policy!r} (known: {POLICIES})")
        if maxsize < 1:
            raise BusError(f"subscriber {name!r}: maxsize must be at least 1, got {maxsize}")
        if every is not None and every <= 0:
            raise BusError(f"subscriber {name!r}: every must be positive, got {every}")
        if block_timeout < 0:
            raise BusError(f"subscriber {name!r}: block_timeout must be >= 0")
        if batch < 1:
            raise BusError(f"subscriber {name!r}: batch must be at least 1, got {batch}")
        if linger <= 0:
            raise BusError(f"subscriber {name!r}: linger must be positive, got {linger}")
        sub = Subscription(
            self,
            self._clock,
            name=name,
            callback=callback,
            collectors=None if collectors is None else frozenset(collectors),
            every_ns=None if every is None else int(every * NS_PER_S),
            maxsize=maxsize,
            policy=policy,
            block_timeout_ns=int(block_timeout * NS_PER_S),
            batch=batch,
            linger_s=linger,
        )
        with self._lock:
            if name in self._subs:
                raise BusError(f"subscriber {name!r} already exists")
            self._subs[name] = sub
            self._routes = {}
        sub._start()
        self._changed()
        return sub

    def remove(self, sub: Subscription) -> None:
        """Close ``sub``: it gets nothing new, and its consumer drains what is queued."""
        with self._lock:
            if sub.closed:
                return
            sub._close()
            if self._subs.get(sub.name) is sub:
                del self._subs[sub.name]
                self._closed.append(sub)
            self._routes = {}
        count, total = sub._unreported()  # its last word, whatever the rate limit
        if count:
            self._warn([(sub, count, total)])
        self._changed()

    def subscriptions(self) -> list[Subscription]:
        with self._lock:
            return list(self._subs.values())

    def pace_ns(self, collector: str, own_ns: int) -> int:
        """How often ``collector`` must run for its subscribers.

        The shortest ``every`` they ask for; a subscriber that asks for none
        takes every result, at the collector's own interval ``own_ns`` (also
        used when nobody subscribes). So a slow subscriber never slows the
        collector down for the others.
        """
        with self._lock:
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
        sub._abandon()

    # --------------------------------------------------------- publish

    def publish(self, result: Result) -> int:
        """Offer ``result`` to every subscriber of its collector; never waits.

        Returns how many subscribers it was offered to (those whose ``every``
        left it out, or that were closed, not counted): each counts once in its
        subscriber's ``delivered + dropped + queued``.
        """
        collector = result.collector
        with self._lock:
            subs = self._routes.get(collector)
            if subs is None:
                subs = tuple(s for s in self._subs.values() if s.wants(collector))
                self._routes[collector] = subs
        offered = 0
        dropped = False
        for sub in subs:
            answer = sub.offer(result)
            if answer:
                offered += 1
                if answer == DROPPED:
                    dropped = True
        if dropped:
            self._dirty = True
            self.check_drops()
        return offered

    # --------------------------------------------------- drop warnings

    def check_drops(self) -> None:
        """Warn about drops if a warning pass is due (cheap when it is not)."""
        if not self._dirty:
            return
        with self._warn_lock:
            now = self._clock.monotonic_ns()
            if self._next_warning_ns is not None and now < self._next_warning_ns:
                return
            with self._lock:
                subs = [*self._subs.values(), *self._closed]
            self._dirty = False
            pending = []
            for sub in subs:
                count, total = sub._unreported()
                if count:
                    pending.append((sub, count, total))
                if sub._waits():
                    self._dirty = True  # its waiting results may be dropped later
            if pending:
                self._next_warning_ns = now + self._warn_ns
        self._warn(pending)

    def _warn(self, pending: Iterable[tuple[Subscription, int, int]]) -> None:
        for sub, count, total in pending:
            log.warning(
                "subscriber %s: dropped %d result(s) since the last warning "
                "(policy %s, maxsize %d, %d dropped in all)",
                sub.name,
                count,
                sub.policy,
                sub.maxsize,
                total,
            )

    # ----------------------------------------------------------- health

    def health(self) -> tuple[SubscriberHealth, ...]:
        """Open subscriptions, then the recently closed ones (and any warning due).

        Each subscriber's figures are read at one instant, under its lock:
        ``delivered + dropped + queued`` is exactly what it was offered.
        """
        now = self._clock.time_ns()
        with self._lock:
            subs = [*self._subs.values(), *self._closed]
        rows = []
        for s in subs:
            delivered, dropped, queued, errors, lag = s._counts(now)
            rows.append(
                SubscriberHealth(
                    name=s.name,
                    policy=s.policy,
                    maxsize=s.maxsize,
                    every_s=None if s.every_ns is None else s.every_ns / NS_PER_S,
                    collectors=None if s.collectors is None else tuple(sorted(s.collectors)),
                    delivered=delivered,
                    dropped=dropped,
                    queued=queued,
                    errors=errors,
                    lag_ns=lag,
                    closed=s.closed,
                )
            )
            if dropped:
                self._dirty = True
        self.check_drops()
        return tuple(rows)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()
