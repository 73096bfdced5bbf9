"""A subscriber of the bus: its bounded queue, its policy, its counters.

Each subscription is a deque and a :class:`threading.Condition` of its own.
:meth:`Subscription.offer` (called by publish) appends, evicts, counts and
notifies under that condition's lock; the consumer pops and counts under it
too. Nothing is shared between subscriptions, so a slow or blocked subscriber
holds nobody else up, and every counter is exact at every instant::

    delivered + dropped + queued == every result offered to it

(``offer`` refuses a result after :meth:`Subscription.close`, and a result
that ``every`` leaves out is not offered.) The policies, when the queue holds
``maxsize`` results:

``drop_oldest``  the oldest result is evicted for the new one (the default);
``drop_newest``  the new result is refused;
``latest``       a queue of one: the new result replaces the one waiting;
``block``        the new result waits for room, in order, up to
                 ``block_timeout`` seconds of bus time after its publish; one
                 still waiting then is dropped. The waiting is the result's,
                 not the publisher's: publish() parks it in the subscription's
                 own waiting line and returns at once, so a ``block``
                 subscriber never delays the collector, the scheduler, the
                 cache or the other subscribers. Each pop moves the oldest
                 waiting result into the queue; a result whose deadline has
                 passed is dropped, and counted, by the first to look (a pop,
                 a publish, health(), the scheduler's drop check). Its
                 ``queued`` counts the waiting results too, so that it can
                 exceed ``maxsize``; the line holds at most what is published
                 within ``block_timeout``.

A callback subscriber gets a named daemon thread of its own; a callback that
raises is logged and counted, and the thread goes on with the next result. A
pull subscriber (no callback) is read with :meth:`Subscription.get` or by
iterating. Those reads wait in real time, like :meth:`queue.Queue.get`: they
are the consumer's own waits, not bus scheduling.

**Batches.** A consumer that has emptied the queue sleeps until ``batch``
results are queued (default 1: each result wakes it), or until ``linger``
seconds have passed since it fell asleep, or until the subscription closes;
then it takes every result queued, one by one, without sleeping. So a
``batch`` subscriber is woken about once per ``batch`` results instead of once
per result (and, idle, once per ``linger``), and no result waits more than
``linger`` seconds for its batch.
Batching changes when the consumer wakes, nothing else: the policies, the
order and the counts are the same. A publish wakes a consumer only when one
sleeps and the batch is full; otherwise it just appends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Literal, Protocol

from collectbus.bus.cache import Result
from collectbus.clock import Clock
from collectbus.errors import BusError

log = logging.getLogger("collectbus.bus")

Policy = Literal["drop_oldest", "drop_newest", "latest", "block"]
POLICIES: tuple[Policy, ...] = ("drop_oldest", "drop_newest", "latest", "block")

Callback = Callable[[Result], None]

#: What :meth:`Subscription.offer` answers: the result was not offered (closed,
#: or left out by ``every``), was queued, or was offered and something dropped.
NOT_OFFERED, QUEUED, DROPPED = 0, 1, 2


class Hub(Protocol):
    """What a subscription needs of its :class:`~collectbus.bus.fanout.Fanout`."""

    def remove(self, sub: Subscription) -> None: ...


class Subscription:
    """One subscriber: its queue, its policy and its counters.

    Made by :meth:`CollectionBus.subscribe`. With a callback, a thread of its
    own delivers the results; without one, read them with :meth:`get` or
    ``for result in subscription``.
    """

    def __init__(
        self,
        fanout: Hub,
        clock: Clock,
        *,
        name: str,
        callback: Callback | None,
        collectors: frozenset[str] | None,
        every_ns: int | None,
        maxsize: int,
        policy: Policy,
        block_timeout_ns: int,
        batch: int = 1,
        linger_s: float | None = None,
    ) -> None:
        self.name = name
        self.policy: Policy = policy
        self.maxsize = 1 if policy == "latest" else maxsize
        self.collectors = collectors
        self.every_ns = every_ns
        self.block_timeout_ns = block_timeout_ns
        self.batch = min(batch, self.maxsize)  # a full queue always wakes the consumer
        #: Longest real sleep of a consumer waiting for a batch (None: no limit).
        self.linger_s = linger_s if batch > 1 else None
        self._fanout = fanout
        self._clock = clock
        self._callback = callback
        self._evicting = policy in ("drop_oldest", "latest")
        self._blocking = policy == "block"
        #: Guards everything below; consumers wait on ``_cond`` (the same lock).
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._sleepers = 0  # consumers waiting on _cond for a result
        self._queue: deque[Result] = deque()
        #: ``block`` only: (monotonic deadline, result) waiting for room, oldest first.
        self._waiting: deque[tuple[int, Result]] = deque()
        self._period: int | None = None  # last ``every`` period offered
        self._delivered = 0
        self._dropped = 0
        self._errors = 0
        self._warned_drops = 0
        self._closed = False
        self._abandoned = False
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------- public

    def wants(self, collector: str) -> bool:
        return self.collectors is None or collector in self.collectors

    @property
    def dropped(self) -> int:
        """Results lost to the queue policy, counted exactly."""
        with self._lock:
            self._expire()
            return self._dropped

    @property
    def delivered(self) -> int:
        """Results handed to the consumer."""
        with self._lock:
            return self._delivered

    @property
    def errors(self) -> int:
        """Times the callback raised."""
        with self._lock:
            return self._errors

    @property
    def queued(self) -> int:
        """Results waiting for the consumer (for ``block``, those waiting for room too)."""
        with self._lock:
            self._expire()
            return len(self._queue) + len(self._waiting)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Receive no more results; those already queued are still delivered."""
        self._fanout.remove(self)

    def get(self, timeout: float | None = None) -> Result | None:
        """The next result, waiting up to ``timeout`` real seconds (None: forever).

        Returns None on timeout, or once the subscription is closed and empty.
        """
        if self._callback is not None:
            raise BusError(f"subscriber {self.name!r}: a callback subscription cannot be read")
        return self._take(timeout)

    def __iter__(self) -> Iterator[Result]:
        while (result := self.get()) is not None:
            yield result

    def __repr__(self) -> str:
        return f"<Subscription {self.name!r} {self.policy} queued={self.queued}>"

    # ------------------------------------------------------ producer side

    def offer(self, result: Result) -> int:
        """Queue ``result`` by the policy; never waits.

        :data:`NOT_OFFERED` (0) when the subscription is closed or its
        ``every`` leaves the result out; :data:`QUEUED` when it was queued;
        :data:`DROPPED` when something was dropped (or parked for ``block``),
        so that the fanout looks for warnings. Any non-zero answer counts once
        in ``delivered + dropped + queued``.
        """
        with self._lock:
            if self._closed:
                return NOT_OFFERED
            every = self.every_ns
            if every is not None:
                period = result.tick_ns // every
                if period == self._period:
                    return NOT_OFFERED
                self._period = period
            queue = self._queue
            if len(queue) < self.maxsize:
                queue.append(result)
                if self._sleepers and len(queue) >= self.batch:
                    self._cond.notify()
                return QUEUED
            if self._evicting:
                queue.popleft()
                queue.append(result)
                self._dropped += 1
            elif self._blocking:
                now = self._clock.monotonic_ns()
                self._expire(now)
                self._waiting.append((now + self.block_timeout_ns, result))
            else:
                self._dropped += 1
            return DROPPED

    def _expire(self, now_ns: int | None = None) -> None:
        """(lock held) Drop, and count, the waiting results whose deadline has passed."""
        waiting = self._waiting
        if not waiting:
            return
        now = self._clock.monotonic_ns() if now_ns is None else now_ns
        while waiting and waiting[0][0] <= now:
            waiting.popleft()
            self._dropped += 1

    # ------------------------------------------------------ fanout side

    def _close(self) -> None:
        with self._lock:
            self._closed = True
            self._cond.notify_all()

    def _abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            self._cond.notify_all()

    def _unreported(self) -> tuple[int, int]:
        """Drops not warned about yet, now marked warned, and all drops so far."""
        with self._lock:
            self._expire()
            count = self._dropped - self._warned_drops
            self._warned_drops = self._dropped
            return count, self._dropped

    def _waits(self) -> bool:
        """Results wait for room (they may be dropped later, at their deadline)."""
        with self._lock:
            return bool(self._waiting)

    def _counts(self, now_wall_ns: int) -> tuple[int, int, int, int, int]:
        """delivered, dropped, queued, errors and lag, read at one instant."""
        with self._lock:
            self._expire()
            queue = self._queue
            lag = now_wall_ns - queue[0].tick_ns if queue else 0
            queued = len(queue) + len(self._waiting)
            return self._delivered, self._dropped, queued, self._errors, max(lag, 0)

    # ------------------------------------------------------ consumer side

    def _take(self, timeout: float | None) -> Result | None:
        """Pop the next result, waiting (real time) while the queue is empty."""
        give_up = None if timeout is None else time.monotonic() + timeout
        cond = self._cond
        with cond:
            while True:
                if self._abandoned:
                    return None
                queue = self._queue
                if queue:
                    result = queue.popleft()
                    self._delivered += 1
                    if self._waiting:
                        self._expire()
                        if self._waiting:
                            queue.append(self._waiting.popleft()[1])
                    return result
                if self._closed:
                    return None
                left = self.linger_s
                if give_up is not None:
                    until = give_up - time.monotonic()
                    if until <= 0:
                        return None
                    left = until if left is None else min(left, until)
                self._sleepers += 1
                try:
                    cond.wait(left)
                finally:
                    self._sleepers -= 1

    def _deliver(self, callback: Callback) -> None:
        """The callback thread: one result at a time, until closed and drained."""
        try:
            while (result := self._take(None)) is not None:
                try:
                    callback(result)
                except Exception as exc:  # the subscriber's bug must not stop its thread
                    with self._lock:
                        self._errors += 1
                    log.error(
                        "subscriber %s: callback raised %s: %s (result %s #%d)",
                        self.name,
                        type(exc).__name__,
                        exc,
                        result.collector,
                        result.seq,
                    )
                    log.debug("subscriber %s: callback traceback", self.name, exc_info=True)
        finally:
            self._finished.set()

    def _start(self) -> None:
        if self._callback is None:
            self._finished.set()
            return
        self._thread = threading.Thread(
            target=self._deliver,
            args=(self._callback,),
            name=f"collectbus-sub-{self.name}",
            daemon=True,
        )
        self._thread.start()
