"""collectbus: collect telemetry once, keep its history, answer the questions.

The public API, importable from ``collectbus`` itself:

- :class:`CollectionBus`, the bus that schedules collectors and fans their
  results out to subscribers;
- :func:`open_store` (``collectbus.store.open``), a :class:`Store` on SQLite or
  PostgreSQL chosen by URL;
- the collectors :class:`HostCollector` (this host's ``/proc``) and
  :class:`CallRecorder` (the calls of a Python program);
- :class:`Recorder`, host metrics of many hosts while something runs;
- :func:`read_aggregates`, the incremental aggregates of a store;
- the records (:class:`HostSample`, :class:`CollectionEvent`,
  :class:`CallRecord`, :class:`JobRecord`, :class:`NodeRecord`,
  :class:`QueueRecord`, :class:`SystemRecord`) and the errors, rooted at
  :class:`CollectBusError`.

Each name is loaded from its module on first use, so ``import collectbus`` (and
``collectbus --help``) imports none of SQLAlchemy, Alembic, numpy, pandas or
pydantic. The DataFrames of the stored history are in :mod:`collectbus.analysis`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from collectbus.aggregate.view import read_aggregates
    from collectbus.bus.scheduler import CollectionBus
    from collectbus.calls.recorder import CallRecorder
    from collectbus.collectors.host.collector import HostCollector
    from collectbus.errors import (
        BusError,
        CollectBusError,
        CollectError,
        CollectorTimeout,
        CommandFailed,
        CommandTimeout,
        ConfigError,
        DaemonError,
        ParseError,
        RecordError,
        SchemaError,
        StoreError,
    )
    from collectbus.recording.recorder import Recorder
    from collectbus.records import (
        CallRecord,
        CollectionEvent,
        HostSample,
        JobRecord,
        NodeRecord,
        QueueRecord,
        SystemRecord,
    )
    from collectbus.store.store import Store
    from collectbus.store.store import open as open_store

# Public name -> (home module, name there).
_LAZY: dict[str, tuple[str, str]] = {
    "CollectionBus": ("collectbus.bus.scheduler", "CollectionBus"),
    "open_store": ("collectbus.store.store", "open"),
    "Store": ("collectbus.store.store", "Store"),
    "HostCollector": ("collectbus.collectors.host.collector", "HostCollector"),
    "CallRecorder": ("collectbus.calls.recorder", "CallRecorder"),
    "Recorder": ("collectbus.recording.recorder", "Recorder"),
    "read_aggregates": ("collectbus.aggregate.view", "read_aggregates"),
    **{
        name: ("collectbus.records", name)
        for name in (
            "HostSample",
            "CollectionEvent",
            "CallRecord",
            "JobRecord",
            "NodeRecord",
            "QueueRecord",
            "SystemRecord",
        )
    },
    **{
        name: ("collectbus.errors", name)
        for name in (
            "CollectBusError",
            "ConfigError",
            "CollectError",
            "ParseError",
            "CommandFailed",
            "CommandTimeout",
            "CollectorTimeout",
            "StoreError",
            "SchemaError",
            "BusError",
            "DaemonError",
            "RecordError",
        )
    },
}

# Written out, not derived from _LAZY: type checkers read the re-exports here.
__all__ = [
    "BusError",
    "CallRecord",
    "CallRecorder",
    "CollectBusError",
    "CollectError",
    "CollectionBus",
    "CollectionEvent",
    "CollectorTimeout",
    "CommandFailed",
    "CommandTimeout",
    "ConfigError",
    "DaemonError",
    "HostCollector",
    "HostSample",
    "JobRecord",
    "NodeRecord",
    "ParseError",
    "QueueRecord",
    "RecordError",
    "Recorder",
    "SchemaError",
    "Store",
    "StoreError",
    "SystemRecord",
    "__version__",
    "open_store",
    "read_aggregates",
]


def __getattr__(name: str) -> object:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = where
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
