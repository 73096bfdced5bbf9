"""Recording the calls of a live Python program.

:class:`CallCollector` wraps handlers and records every call (or a sample, and
every failure); its queries say which calls are slow and which fail.
:class:`CallSource` puts the recorded calls on a
:class:`~collectbus.bus.CollectionBus`; :meth:`CallCollector.flush_to` and
:class:`CallFlusher` write them to a store shared with other processes. A smartswitch plugin is in
:mod:`collectbus.calls.smartswitch` (the optional ``smartswitch`` extra).
"""

from __future__ import annotations

from collectbus.calls.collector import CallCollector
from collectbus.calls.flusher import CallFlusher
from collectbus.calls.source import CallSource
from collectbus.calls.stats import CallStats
from collectbus.records import CallRecord

__all__ = ["CallCollector", "CallFlusher", "CallRecord", "CallSource", "CallStats"]
