"""Running one collection: the isolation boundary between the bus and a collector.

A collection runs on a pool thread. Whatever happens in ``collect()`` ends as
exactly one :class:`~collectbus.bus.cache.Result`, settled into the cache and
published once:

- records, status ``ok``; or ``partial`` when the collector reported problems
  through ``ctx.report()`` (each logged once as a warning);
- an exception: status ``error``, logged as one line naming the collector,
  counted, and followed by an exponential backoff;
- no return before the timeout: status ``timeout``, settled by whoever notices
  first (the scheduler thread, or a caller waiting in get()); the thread's late
  result is then discarded.

A failed collection carries the last good records, marked stale, or none when
there has not been a good collection yet.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from collectbus.bus.cache import GOOD_STATUSES, Flight, Result, ResultCache
from collectbus.bus.health import CollectorHealth
from collectbus.bus.pool import Beat, WorkerPool
from collectbus.clock import NS_PER_S, Clock
from collectbus.collectors.base import CollectContext, Collector
from collectbus.errors import BusError, CollectBusError, CollectError, CollectorTimeout
from collectbus.records import CollectionEvent, Record

log = logging.getLogger("collectbus.bus")


@dataclass(slots=True, eq=False)
class CollectorState:
    """One collector on the bus: its settings, schedule and counters.

    Guarded by the bus lock; health() reads it through :meth:`health`.
    """

    collector: Collector
    name: str
    tier: str
    base_ns: int  # add(interval=), else the tier's
    timeout_ns: int | None
    ttl_ns: int | None
    backoff_initial_ns: int
    backoff_max_ns: int
    interval_ns: int = 0  # as planned: the fastest subscriber's ``every``, else base_ns
    next_tick_ns: int = 0
    fire_ns: int = 0  # next_tick_ns plus its jitter
    last_tick_ns: int | None = None
    runs: int = 0
    ok: int = 0
    partial: int = 0
    errors: int = 0
    timeouts: int = 0
    skips: int = 0
    backoff_skips: int = 0
    missed: int = 0
    stale_served: int = 0
    late_discarded: int = 0
    #: get() calls answered from the cache, without a collection.
    cache_hits: int = 0
    #: get() and collect_now() calls that waited for a collection already under way.
    joined: int = 0
    #: Results offered to subscribers beyond the first of each collection
    #: (counted under ``publish_lock``, by the one thread publishing).
    shared: int = 0
    failures: int = 0  # consecutive
    backoff_ns: int = 0
    backoff_until_ns: int | None = None
    last_status: str | None = None
    last_error: str | None = None
    last_duration_ns: int | None = None
    lag_ns: int | None = None
    #: The problems of the last partial collection, so that a file that stays
    #: broken is logged once, not at every tick.
    known_problems: frozenset[str] = frozenset()
    #: Held while a result of this collector is published, so that its results
    #: go out in order even though the collector is free again meanwhile; a
    #: publish never waits, so stop() waits for one by taking it.
    publish_lock: threading.Lock = field(default_factory=threading.Lock)
    #: The token of the pool thread keeping this collector's beat (firing its
    #: ticks itself), if one does; the scheduler leaves its ticks alone then.
    keeper: object | None = None

    @property
    def timeout(self) -> int:
        return self.timeout_ns or self.interval_ns

    @property
    def ttl(self) -> int:
        return self.ttl_ns or self.interval_ns

    def in_backoff(self, now_ns: int) -> bool:
        return self.backoff_until_ns is not None and now_ns < self.backoff_until_ns

    def backoff_for(self, failures: int) -> int:
        """``backoff_initial``, doubled for each further consecutive failure, capped."""
        if failures <= 0:
            return 0
        return min(self.backoff_initial_ns << min(failures - 1, 64), self.backoff_max_ns)

    def health(self, now_ns: int, *, busy: bool) -> CollectorHealth:
        return CollectorHealth(
            name=self.name,
            tier=self.tier,
            interval_s=self.interval_ns / NS_PER_S,
            timeout_s=self.timeout / NS_PER_S,
            runs=self.runs,
            ok=self.ok,
            partial=self.partial,
            errors=self.errors,
            timeouts=self.timeouts,
            skips=self.skips,
            backoff_skips=self.backoff_skips,
            missed=self.missed,
            stale_served=self.stale_served,
            late_discarded=self.late_discarded,
            cache_hits=self.cache_hits,
            joined=self.joined,
            shared=self.shared,
            saved=self.cache_hits + self.joined + self.shared,
            consecutive_failures=self.failures,
            last_status=self.last_status,
            last_error=self.last_error,
            last_duration_ns=self.last_duration_ns,
            lag_ns=self.lag_ns,
            backoff_s=self.backoff_ns / NS_PER_S,
            next_backoff_s=self.backoff_for(self.failures + 1) / NS_PER_S,
            in_backoff=self.in_backoff(now_ns),
            busy=busy,
        )


class Runner:
    """Runs collections on the pool, settles them, counts them, publishes them."""

    def __init__(
        self,
        *,
        host: str,
        clock: Clock,
        lock: threading.Lock,
        cache: ResultCache,
        pool: WorkerPool,
        publish: Callable[[Result], int],
        on_timeout: Callable[[CollectorState], None] = lambda state: None,
    ) -> None:
        self._host = host
        self._clock = clock
        self._lock = lock  # the bus lock, guarding every CollectorState
        self._cache = cache
        self._pool = pool
        self._publish = publish
        self._on_timeout = on_timeout

    def collect(self, state: CollectorState) -> Result:
        """Start a collection on demand, or join the one under way, and wait for it."""
        now, wall = self._clock.monotonic_ns(), self._clock.time_ns()
        flight, new = self._cache.begin(
            state.name,
            tick_ns=wall,
            wall_ns=wall,
            created_ns=now,
            timeout_ns=state.timeout,
            due_ns=None,
        )
        if flight is None:  # a timed-out collection has not returned yet
            latest = self._cache.latest(state.name)
            return self._skipped(state) if latest is None else self.served(state, latest)
        if new:
            self.submit(state, flight)
        else:
            with self._lock:
                state.joined += 1
        return self.wait(state, flight)

    def submit(
        self, state: CollectorState, flight: Flight, then: Callable[[], Beat | None] | None = None
    ) -> None:
        """Run the new ``flight`` on a pool thread; ``then`` gives what that
        thread does next (see :meth:`run_here`).

        When the bus stopped meanwhile (no pool), the flight is settled as an
        error at once, so that nobody waits for it and the collector is free.
        """
        with self._lock:
            state.runs += 1
        try:
            self._pool.submit(partial(self._run, state, flight, then))
        except BusError as err:
            wall = self._clock.time_ns()
            self._cache.settle(flight, self._failed(state, flight, "error", str(err), wall, 0))
            self._cache.end(flight)

    def wait(self, state: CollectorState, flight: Flight) -> Result:
        """Wait for ``flight``; declare it timed out if its deadline passes first."""
        if not flight.done.is_set() and self._clock.sleep_until(flight.deadline_ns, flight.done):
            self.expire(state, flight, self._clock.monotonic_ns())
        flight.done.wait()
        assert flight.result is not None
        return flight.result

    def expire(self, state: CollectorState, flight: Flight, now_ns: int) -> None:
        """Settle ``flight`` as timed out, unless it was settled meanwhile."""
        error = CollectorTimeout(state.name, (flight.deadline_ns - flight.created_ns) / NS_PER_S)
        result = self._failed(
            state, flight, "timeout", str(error), flight.wall_ns, now_ns - flight.created_ns
        )
        if not self._cache.settle(flight, result):
            return
        self._pool.grow()  # the late collection keeps its thread until it returns
        self._on_timeout(state)
        self._account(state, result, [])
        self._publish_in_order(state, result)

    def served(self, state: CollectorState, result: Result) -> Result:
        """Hand out a cached result: a cache hit, and a stale one if it is."""
        with self._lock:
            state.cache_hits += 1
            if result.stale:
                state.stale_served += 1
        return result

    def _skipped(self, state: CollectorState) -> Result:
        """What get() returns while a timed-out collection with nothing cached still runs."""
        wall = self._clock.time_ns()
        event = CollectionEvent(
            source=state.name,
            host=self._host,
            started_ns=wall,
            duration_ns=0,
            status="skipped",
            error="the previous collection is still running",
        )
        return Result(collector=state.name, seq=0, tick_ns=wall, records=(), event=event)

    # ------------------------------------------------------------ pool side

    def run_here(
        self, state: CollectorState, flight: Flight, then: Callable[[], Beat | None]
    ) -> Beat | None:
        """Run the new ``flight`` on this (pool) thread, at once: the caller
        started it (its clock readings are the start) and counted it (its run
        and lag, under the bus lock). Once its result is out, ``then()`` says
        what this thread does next."""
        return self._run(state, flight, then, started=(flight.wall_ns, flight.created_ns))

    def _run(
        self,
        state: CollectorState,
        flight: Flight,
        then: Callable[[], Beat | None] | None,
        started: tuple[int, int] | None = None,
    ) -> Beat | None:
        clock = self._clock
        if started is None:
            started_wall, started_ns = clock.time_ns(), clock.monotonic_ns()
            if flight.due_ns is not None:
                with self._lock:
                    state.lag_ns = started_ns - flight.due_ns
        else:
            started_wall, started_ns = started
        ctx = CollectContext(host=self._host, clock=clock, deadline_ns=flight.deadline_ns)
        won = False
        try:
            failure: Exception | None = None
            records: tuple[Record, ...] = ()
            try:
                records = tuple(state.collector.collect(ctx))
            except Exception as exc:  # noqa: BLE001  logged, counted, backed off in _account()
                failure = exc
            duration = clock.monotonic_ns() - started_ns
            if failure is None:
                result = self._succeeded(
                    state, flight, records, ctx.problems, started_wall, duration, ctx.details
                )
            else:
                text = _describe(failure)
                result = self._failed(state, flight, "error", text, started_wall, duration)
            if self._cache.settle(flight, result):
                self._account(state, result, ctx.problems)
                self._publish_in_order(state, result, flight)
                won = True
            else:
                with self._lock:
                    state.late_discarded += 1
                log.info(
                    "collector %s: late %s result of timed-out collection #%d discarded",
                    state.name,
                    result.event.status,
                    flight.seq,
                )
        finally:
            if flight.result is None:  # a BaseException is on its way up: wake the waiters
                interrupted = self._failed(state, flight, "error", "interrupted", started_wall, 0)
                self._cache.settle(flight, interrupted)
            if not won:  # a won flight was ended by _publish_in_order
                self._cache.end(flight)
            if not won and flight.result is not None and flight.result.event.status == "timeout":
                self._pool.shrink()  # undo the grow() of expire()
        return then() if won and then is not None else None

    def _publish_in_order(
        self, state: CollectorState, result: Result, flight: Flight | None = None
    ) -> None:
        """Publish ``result`` after any earlier result of the same collector.

        With ``flight``, the collector is freed first, so that a subscriber
        that has the result finds the collector free (a tick that comes then
        is not skipped). publish() never waits for a subscriber (a ``block``
        subscriber's result waits in its own line), so the lock is held for
        the fan-out only.
        """
        with state.publish_lock:
            if flight is not None:
                self._cache.end(flight)
            offered = self._publish(result)
            if offered > 1:  # one collection served them all
                state.shared += offered - 1

    def _succeeded(
        self,
        state: CollectorState,
        flight: Flight,
        records: tuple[Record, ...],
        problems: list[CollectError],
        started_ns: int,
        duration_ns: int,
        details: list[tuple[str, str]] | None = None,
    ) -> Result:
        event = CollectionEvent(
            source=state.name,
            host=self._host,
            started_ns=started_ns,
            duration_ns=duration_ns,
            status="partial" if problems else "ok",
            records=len(records),
            error="; ".join(str(p) for p in problems) if problems else None,
            details=tuple(details) if details else (),
        )
        return Result(
            collector=state.name,
            seq=flight.seq,
            tick_ns=flight.tick_ns,
            records=records,
            event=event,
        )

    def _failed(
        self,
        state: CollectorState,
        flight: Flight,
        status: str,
        error: str,
        started_ns: int,
        duration_ns: int,
    ) -> Result:
        """A failed collection: the last good records, marked stale, if there are any.

        ``event.records`` stays 0: the event describes this collection.
        """
        good = self._cache.last_good(state.name)
        event = CollectionEvent(
            source=state.name,
            host=self._host,
            started_ns=started_ns,
            duration_ns=duration_ns,
            status=status,
            error=error,
            stale=good is not None,
        )
        return Result(
            collector=state.name,
            seq=flight.seq,
            tick_ns=flight.tick_ns,
            records=() if good is None else good.records,
            event=event,
            stale=good is not None,
        )

    def _account(self, state: CollectorState, result: Result, problems: list[CollectError]) -> None:
        """Count a settled collection, start or reset the backoff, and log it."""
        status = result.event.status
        if status == "ok" and not result.stale:
            with self._lock:  # the common case, in short
                state.last_status = status
                state.last_duration_ns = result.event.duration_ns
                state.ok += 1
                state.failures = 0
                state.backoff_ns = 0
                state.backoff_until_ns = None
                cleared = bool(state.known_problems)
                state.known_problems = frozenset()
            if cleared:
                log.info("collector %s: complete again", state.name)
            return
        now = self._clock.monotonic_ns()
        with self._lock:
            state.last_status = status
            state.last_duration_ns = result.event.duration_ns
            if result.event.error is not None:
                state.last_error = result.event.error
            if status == "ok":
                state.ok += 1
            elif status == "partial":
                state.partial += 1
            elif status == "timeout":
                state.timeouts += 1
            else:
                state.errors += 1
            if status in GOOD_STATUSES:
                state.failures = 0
                state.backoff_ns = 0
                state.backoff_until_ns = None
            else:
                state.failures += 1
                state.backoff_ns = state.backoff_for(state.failures)
                state.backoff_until_ns = now + state.backoff_ns
            if result.stale:
                state.stale_served += 1
            backoff_s = state.backoff_ns / NS_PER_S
            messages = list(dict.fromkeys(str(p) for p in problems)) if status == "partial" else []
            current = frozenset(messages)
            new_problems = [m for m in messages if m not in state.known_problems]
            cleared = status == "ok" and bool(state.known_problems)
            if status in ("ok", "partial"):
                state.known_problems = current
        for problem in new_problems:
            log.warning("collector %s: partial collection: %s", state.name, problem)
        if cleared:
            log.info("collector %s: complete again", state.name)
        if status not in GOOD_STATUSES:
            log.error(
                "collector %s %s: %s; backing off %gs, %s",
                state.name,
                "failed" if status == "error" else "timed out",
                result.event.error,
                backoff_s,
                "serving the last good result, stale" if result.stale else "no good result yet",
            )


def _describe(exc: Exception) -> str:
    """One line for a collector's exception; collectbus errors already name their source."""
    if isinstance(exc, CollectBusError):
        return str(exc)
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
