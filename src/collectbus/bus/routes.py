"""Routes: where publish() puts a result of one collector, without a lock.

A route is a *hot tuple* ``(count, first, rest)`` that publish() reads from a
dict with one lookup (see :mod:`collectbus.bus.fanout` for the hot path):

``first``, ``rest``
    the bound ``deque.append`` of every plain subscriber (``drop_oldest`` or
    ``latest``, no ``every``), plus at the end one callable that offers the
    result to all the other subscribers under the fanout lock. ``rest`` is
    None when there is nothing after ``first``.
``count``
    ``itertools.repeat(bell, sys.maxsize)``. ``next(count)`` is one atomic C
    call (under the GIL) that counts the publish, and it returns the route's
    *bell*: a set that is non-empty while a consumer of one of its plain
    subscribers sleeps, or for ever once the route is retired. A publish
    counts itself after its appends, so "offered" never runs ahead of them.

Each route has a :class:`Feed`: its counter and the plain subscribers it
feeds. A plain subscriber's drops are derived, never counted while publishing::

    dropped = offered - delivered - queued,  offered = the sum of its feeds

Routes are rebuilt whenever a subscriber comes or goes: the old hot tuples
are *retired* (dropped from the dict, their bells rung for good), but a
publish that fetched one before may still be using it. CPython's reference
counts tell when none does: a retired feed whose counter is held by nothing
but the feed itself is final, and is folded into its subscribers' totals.
The same test on a closed subscriber's bound ``append`` tells its consumer
whether a publish begun before close() may still add to its queue.

Everything here except reading the hot dict runs with the fanout lock held.
"""

from __future__ import annotations

import itertools
import operator
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Protocol

from collectbus.bus.cache import Result

#: A route's bell: the plain subscribers it feeds whose consumer sleeps, and
#: ``RUNG`` once the route is retired.
Bell = set[object]
Target = Callable[[Result], object]
Hot = tuple["itertools.repeat[Bell]", Target, tuple[Target, ...] | None]

#: In a retired route's bell: every publish that still uses it looks for
#: sleeping consumers.
RUNG = object()

# sys.getrefcount() of an object held by one attribute, counting its own argument.
_HELD_ONCE = 2


class Member(Protocol):
    """What a route needs of a plain subscriber (a :class:`Subscription`)."""

    #: Its queue's bound ``append``, shared by every route that feeds it.
    _put: Target
    #: Results offered by feeds already folded.
    _offered: int
    #: Its feeds not folded yet (live or retired).
    _feeds: list[Feed]
    #: The bells of the live routes that feed it.
    _bells: list[Bell]
    #: Locks its sleeping consumers wait on.
    _waiters: list[threading.Lock]


class Feed:
    """The counter of one route and the plain subscribers it feeds."""

    __slots__ = ("count", "members")

    def __init__(self, members: tuple[Member, ...], bell: Bell) -> None:
        self.count = itertools.repeat(bell, sys.maxsize)
        self.members = members

    def published(self) -> int:
        """Publishes through this route that have finished their appends."""
        return sys.maxsize - operator.length_hint(self.count)

    def final(self) -> bool:
        """No route and no publish can count through this feed any more."""
        return sys.getrefcount(self.count) <= _HELD_ONCE


def in_flight(sub: Member) -> bool:
    """A (retired) route or a running publish still holds ``sub``'s append."""
    return sys.getrefcount(sub._put) > _HELD_ONCE


def _nowhere(result: Result) -> None:
    """The target of a collector nobody subscribes to."""


class Routes:
    """The hot tuples, the feeds not yet folded, and the bells (fanout lock held)."""

    def __init__(self) -> None:
        #: collector -> hot tuple; read by publish() without the lock.
        self.hot: dict[str, Hot] = {}
        self._live: list[tuple[Bell, tuple[Member, ...]]] = []
        self._feeds: list[Feed] = []

    def build(self, collector: str, plain: tuple[Member, ...], others: Target | None) -> Hot:
        """Make and publish the route of ``collector``."""
        targets = [sub._put for sub in plain]
        if others is not None:
            targets.append(others)
        bell: Bell = {sub for sub in plain if sub._waiters}
        feed = Feed(plain, bell)
        for sub in plain:
            sub._feeds.append(feed)
            sub._bells.append(bell)
        self._feeds.append(feed)
        self._live.append((bell, plain))
        first = targets[0] if targets else _nowhere
        hot: Hot = (feed.count, first, tuple(targets[1:]) or None)
        self.hot[collector] = hot
        return hot

    def retire(self) -> None:
        """Forget every route (they are rebuilt on demand); ring their bells for good."""
        self.hot.clear()
        for bell, plain in self._live:
            bell.add(RUNG)
            for sub in plain:
                sub._bells.clear()
        self._live.clear()
        self.settle()

    def settle(self) -> None:
        """Fold every final feed into its subscribers' totals."""
        for feed in [f for f in self._feeds if f.final()]:
            count = feed.published()
            for sub in feed.members:
                sub._offered += count
                sub._feeds.remove(feed)
            self._feeds.remove(feed)

    @staticmethod
    def offered(sub: Member) -> int:
        """Results offered to plain ``sub`` whose publish has finished appending."""
        return sub._offered + sum(feed.published() for feed in sub._feeds)

    # ------------------------------------------------------------- sleeping

    @staticmethod
    def doze(sub: Member) -> threading.Lock:
        """Register a consumer about to sleep; ring the bells of ``sub``'s routes.

        The consumer must look at its queue once more after this, and sleep
        only if it is still empty: a publish appends before it looks at the
        bell, so one of the two sees the other.
        """
        waiter = threading.Lock()
        waiter.acquire()
        sub._waiters.append(waiter)
        for bell in sub._bells:
            bell.add(sub)
        return waiter

    @staticmethod
    def undoze(sub: Member, waiter: threading.Lock) -> None:
        """The consumer is awake (timed out, or found work): unregister it."""
        if waiter in sub._waiters:
            sub._waiters.remove(waiter)
            if not sub._waiters:
                Routes._hush(sub)

    @staticmethod
    def wake(sub: Member, *, everyone: bool = False) -> None:
        """Wake one sleeping consumer of ``sub``, or all of them."""
        while sub._waiters:
            sub._waiters.pop(0).release()
            if not everyone:
                break
        if not sub._waiters:
            Routes._hush(sub)

    @staticmethod
    def _hush(sub: Member) -> None:
        for bell in sub._bells:
            bell.discard(sub)

    @staticmethod
    def wake_all(subs: Iterable[Member]) -> None:
        """Wake one sleeping consumer of each of ``subs`` that has one."""
        for sub in subs:
            if sub._waiters:
                Routes.wake(sub)
