"""The collector contract.

A collector is anything with a ``name`` and a ``collect(ctx)`` method that
returns records; ``close()`` is optional. Collectors do their own I/O through
what they were given (a procfs root, a :class:`~collectbus.collectors.run.CommandRunner`)
and leave the parsing to pure functions in their ``parse.py``.

A collector that reads several sources reports the ones that failed with
:meth:`CollectContext.report` and returns what it could read: one malformed
file never costs the rest of the sample. An exception out of ``collect`` means
the whole collection failed; the bus logs it, backs off and serves the last
good result, marked stale.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from collectbus.clock import Clock, SystemClock
from collectbus.errors import CollectError
from collectbus.records import Record


@dataclass(slots=True, kw_only=True)
class CollectContext:
    """What the bus hands a collector for one collection."""

    host: str
    clock: Clock = field(default_factory=SystemClock)
    #: Monotonic deadline of this collection, or None for no deadline.
    deadline_ns: int | None = None
    #: Problems reported during this collection (partial failures).
    problems: list[CollectError] = field(default_factory=list)
    #: Facts about this collection for ``CollectionEvent.details`` (key, value).
    details: list[tuple[str, str]] = field(default_factory=list)

    def report(self, error: CollectError) -> None:
        """Record a failed part of the collection; the rest goes on."""
        self.problems.append(error)

    def detail(self, key: str, value: str) -> None:
        """Note a fact about this collection (what was repaired, whether a listing
        was complete); the bus puts it in the collection's event."""
        self.details.append((key, value))


@runtime_checkable
class Collector(Protocol):
    """A source of records for the bus."""

    name: str

    def collect(self, ctx: CollectContext) -> Iterable[Record]:
        """Collect once and return the records."""
        ...


def close_collector(collector: Collector) -> None:
    """Call ``collector.close()`` when the collector has one."""
    close = getattr(collector, "close", None)
    if callable(close):
        close()
