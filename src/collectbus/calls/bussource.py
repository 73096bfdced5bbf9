"""The recorded calls as a source on the collection bus.

Each collection delivers, as one batch, the calls recorded since the previous
collection. A call evicted from the history before a collection got to it is
counted in :attr:`CallSource.missed`; a history at least as long as the calls
made between two collections misses none::

    bus.add(CallSource(calls), tier="fast")        # a batch every second
"""

from __future__ import annotations

from collectbus.calls.recorder import CallRecorder
from collectbus.collectors.base import CollectContext
from collectbus.records import CallRecord


class CallSource:
    """A :class:`~collectbus.collectors.base.Collector` over a :class:`CallRecorder`."""

    def __init__(self, collector: CallRecorder, *, name: str = "calls") -> None:
        self.name = name
        self.collector = collector
        self._cursor = collector.cursor()

    def collect(self, ctx: CollectContext) -> list[CallRecord]:
        """The calls recorded since the last collection, oldest first."""
        return self.collector.take(self._cursor)

    @property
    def delivered(self) -> int:
        """Calls delivered so far."""
        return self._cursor.delivered

    @property
    def missed(self) -> int:
        """Calls evicted before a collection delivered them (exact when no call
        was in flight at the last collection)."""
        return self._cursor.missed
