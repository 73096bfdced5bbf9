"""Recording the calls of a live Python program.

:class:`CallRecorder` wraps handlers and records every call (or a sample, and
every failure); its queries say which calls are slow and which fail.
:class:`CallSource` puts the recorded calls on a
:class:`~collectbus.bus.CollectionBus`; :meth:`CallRecorder.flush_to` and
:class:`CallFlusher` write them to a store shared with other processes. A smartswitch plugin is in
:mod:`collectbus.calls.smartswitch` (the optional ``smartswitch`` extra).
"""

from __future__ import annotations

from collectbus.calls.bussource import CallSource
from collectbus.calls.flusher import CallFlusher
from collectbus.calls.recorder import CallRecorder
from collectbus.calls.stats import CallStats
from collectbus.records import CallRecord

__all__ = ["CallFlusher", "CallRecord", "CallRecorder", "CallSource", "CallStats"]
