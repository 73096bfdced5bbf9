"""A subscriber of the bus: its bounded queue, its policy, its counters.

The producer side (publish, the policies, the routes) is in
:mod:`collectbus.bus.fanout` and :mod:`collectbus.bus.routes`; this is the
consumer side. The state of a subscription belongs to its
:class:`~collectbus.bus.fanout.Fanout` and is guarded by the fanout's lock,
except the queue of a plain subscriber (``drop_oldest`` or ``latest``, no
``every``): publish() appends to it without the lock (``deque.append`` is
atomic under the GIL), and a consumer pops from it, counts, and decides to
sleep under the lock.

A callback subscriber gets a named daemon thread of its own; a callback that
raises is logged and counted, and the thread goes on with the next result. A
pull subscriber (no callback) is read with :meth:`Subscription.get` or by
iterating. Those reads wait in real time, like :meth:`queue.Queue.get`: they
are the consumer's own waits, not bus scheduling.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Literal, Protocol

from collectbus.bus.cache import Result
from collectbus.bus.routes import Bell, Feed, Routes, Target, in_flight
from collectbus.errors import BusError

log = logging.getLogger("collectbus.bus")

Policy = Literal["drop_oldest", "drop_newest", "latest", "block"]
POLICIES: tuple[Policy, ...] = ("drop_oldest", "drop_newest", "latest", "block")

Callback = Callable[[Result], None]

#: How often (real seconds) the consumer of a closed subscription looks again
#: while a publish begun before close() may still add to its queue.
STRAGGLER_POLL_S = 0.001


class Hub(Protocol):
    """What a subscription needs of its :class:`~collectbus.bus.fanout.Fanout`."""

    #: Guards every queue and counter of every subscription.
    lock: threading.Lock

    def remove(self, sub: Subscription) -> None: ...

    def dropped(self, sub: Subscription) -> int: ...


class Subscription:
    """One subscriber: its queue, its policy and its counters.

    Made by :meth:`CollectionBus.subscribe`. With a callback, a thread of its
    own delivers the results; without one, read them with :meth:`get` or
    ``for result in subscription``.
    """

    def __init__(
        self,
        fanout: Hub,
        *,
        name: str,
        callback: Callback | None,
        collectors: frozenset[str] | None,
        every_ns: int | None,
        maxsize: int,
        policy: Policy,
        block_timeout_ns: int,
    ) -> None:
        self.name = name
        self.policy: Policy = policy
        self.maxsize = 1 if policy == "latest" else maxsize
        self.collectors = collectors
        self.every_ns = every_ns
        self.block_timeout_ns = block_timeout_ns
        self._fanout = fanout
        self._callback = callback
        self._evicting = policy in ("drop_oldest", "latest")
        #: Fed by publish() without the lock; its drops are derived (see routes).
        self._plain = self._evicting and every_ns is None
        self._queue: deque[Result] = deque(maxlen=self.maxsize if self._evicting else None)
        self._put: Target = self._queue.append
        #: Other policies: every drop, counted under the lock. Plain: the highest
        #: count derived so far (so that it never goes down).
        self._dropped = 0
        self._offered = 0  # plain: offered through feeds already folded
        self._feeds: list[Feed] = []
        self._bells: list[Bell] = []
        self._delivered = 0
        self._errors = 0
        #: One lock per consumer asleep on the empty queue; releasing it wakes it.
        self._waiters: list[threading.Lock] = []
        self._blocked = 0  # publishers waiting for room (policy "block")
        self._space = threading.Event()
        self._period: int | None = None  # last ``every`` period delivered
        self._warned_drops = 0
        self._closed = False
        self._abandoned = False
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------- public

    @property
    def dropped(self) -> int:
        """Results lost to the queue policy (exact once no publish is under way,
        see :mod:`collectbus.bus.fanout`)."""
        return self._fanout.dropped(self)

    def wants(self, collector: str) -> bool:
        return self.collectors is None or collector in self.collectors

    @property
    def delivered(self) -> int:
        """Results handed to the consumer."""
        return self._delivered

    @property
    def errors(self) -> int:
        """Times the callback raised."""
        return self._errors

    @property
    def queued(self) -> int:
        return len(self._queue)

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

    # ------------------------------------------------------ consumer side

    def _take(self, timeout: float | None) -> Result | None:
        """Pop the next result, sleeping (real time) while the queue is empty.

        Pops, counts and decisions to sleep happen under the fanout lock; a
        plain queue also grows without it (publish()). A consumer about to
        sleep registers a lock of its own and rings the bells of its routes
        (:meth:`Routes.doze <collectbus.bus.routes.Routes.doze>`), then looks
        at the queue once more: a publish appends before it looks at the bell,
        so either this second look sees the result, or the publisher sees the
        bell and releases the lock. No wake-up is lost.
        """
        give_up = None if timeout is None else time.monotonic() + timeout
        queue = self._queue
        lock = self._fanout.lock
        lock.acquire()
        try:
            while True:
                if self._abandoned:
                    return None
                if queue:  # only consumers pop, under the lock: it stays non-empty
                    result = queue.popleft()
                    self._delivered += 1
                    if self._blocked:
                        self._space.set()
                    return result
                wait = -1.0
                if self._closed:
                    if not (self._plain and in_flight(self)):
                        return None
                    wait = STRAGGLER_POLL_S  # a publish begun before close() may still add
                if give_up is not None:
                    left = give_up - time.monotonic()
                    if left <= 0:
                        return None
                    wait = left if wait < 0 else min(wait, left)
                waiter = Routes.doze(self)
                if not queue:
                    lock.release()
                    try:
                        waiter.acquire(timeout=wait)
                    finally:
                        lock.acquire()
                Routes.undoze(self, waiter)  # unless a publisher woke it already
        finally:
            lock.release()

    def _deliver(self, callback: Callback) -> None:
        """The callback thread: one result at a time, until closed and drained."""
        try:
            while (result := self._take(None)) is not None:
                try:
                    callback(result)
                except Exception as exc:  # the subscriber's bug must not stop its thread
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
