"""What :meth:`CollectionBus.health` reports: plain, frozen figures.

Times are integer nanoseconds, intervals are seconds (as configured).
:meth:`BusHealth.to_dict` gives the same figures as plain dicts, ready for
``json.dumps`` (``collectbus daemon status``, the HTTP API).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectorHealth:
    """Counters of one collector since the bus was created."""

    name: str
    tier: str
    #: The interval it runs at now (the fastest a subscriber asked for, else its tier's).
    interval_s: float
    timeout_s: float
    #: Collections started (scheduled or on demand).
    runs: int
    ok: int
    partial: int
    #: Collections whose ``collect`` raised.
    errors: int
    timeouts: int
    #: Ticks skipped because the previous collection was still running.
    skips: int
    #: Ticks skipped because the collector was backing off after a failure.
    backoff_skips: int
    #: Ticks that passed while the scheduler itself was late (only the last one ran).
    missed: int
    #: Stale results handed out (published, or returned by get()).
    stale_served: int
    #: Results of timed-out collections that came back late and were discarded.
    late_discarded: int
    #: get() calls answered from the cache (within the TTL, or during a
    #: backoff), with no collection run.
    cache_hits: int = 0
    #: get() and collect_now() calls that waited for the collection already
    #: under way instead of starting their own.
    joined: int = 0
    #: Results offered to a second, third, ... subscriber of the same
    #: collection: collections each subscriber would otherwise have run.
    shared: int = 0
    #: Collections saved by sharing: ``cache_hits + joined + shared``. Over a
    #: period where every result reached some subscriber, the results offered
    #: to subscribers (their ``delivered + dropped + queued``) are the
    #: collections run plus ``shared``.
    saved: int = 0
    consecutive_failures: int
    last_status: str | None
    last_error: str | None
    last_duration_ns: int | None
    #: How late the last scheduled collection started, after its tick and jitter.
    lag_ns: int | None
    #: The backoff after the last failure (0 when the last collection succeeded).
    backoff_s: float
    #: The backoff the next failure would get.
    next_backoff_s: float
    in_backoff: bool
    #: A collection is running now (or a timed-out one has not returned yet).
    busy: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriberHealth:
    """Counters of one subscriber; ``delivered + dropped + queued`` is all it was sent."""

    name: str
    policy: str
    maxsize: int
    every_s: float | None
    #: The collectors it listens to (None: all of them).
    collectors: tuple[str, ...] | None
    #: Results handed to the consumer (to the callback, or returned by get()).
    delivered: int
    #: Results lost to the queue policy, counted exactly.
    dropped: int
    queued: int
    #: Times the callback raised.
    errors: int
    #: Age (wall time since its tick) of the oldest result still queued; 0 when empty.
    lag_ns: int
    closed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class BusHealth:
    """The whole bus at one moment."""

    host: str
    #: ``new``, ``running``, ``stopped``, or ``failed`` (the scheduler thread died; see the log).
    state: str
    collectors: tuple[CollectorHealth, ...]
    subscribers: tuple[SubscriberHealth, ...]
    #: Collectors whose collection was still running when stop() gave up.
    unfinished: tuple[str, ...] = ()

    @property
    def saved(self) -> int:
        """Collections saved by sharing, over every collector (see CollectorHealth.saved)."""
        return sum(c.saved for c in self.collectors)

    def collector(self, name: str) -> CollectorHealth:
        """The figures of one collector, by name."""
        for item in self.collectors:
            if item.name == name:
                return item
        raise KeyError(name)

    def subscriber(self, name: str) -> SubscriberHealth:
        """The figures of one subscriber, by name."""
        for item in self.subscribers:
            if item.name == name:
                return item
        raise KeyError(name)

    def to_dict(self) -> dict[str, object]:
        """Plain dicts, lists and scalars, for JSON."""
        return {
            "host": self.host,
            "state": self.state,
            "collectors": {c.name: _plain(asdict(c)) for c in self.collectors},
            "subscribers": {s.name: _plain(asdict(s)) for s in self.subscribers},
            "unfinished": list(self.unfinished),
            "saved": self.saved,
        }


def _plain(values: dict[str, object]) -> dict[str, object]:
    # JSON has no tuples; lists read back the same way.
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items() if k != "name"}
