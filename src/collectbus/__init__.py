"""collectbus: collect telemetry once, keep its history, answer the questions.

The public entry points:

- :class:`collectbus.CollectionBus`, the bus that schedules collectors and fans
  their results out to subscribers;
- :func:`collectbus.store.open`, a store on SQLite or PostgreSQL chosen by URL;
- :mod:`collectbus.analysis`, pandas DataFrames over the stored history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["CollectionBus", "__version__"]

if TYPE_CHECKING:
    from collectbus.bus.scheduler import CollectionBus


def __getattr__(name: str) -> Any:
    # The bus is imported lazily so that ``import collectbus`` stays cheap for
    # tools that need only records or the store.
    if name == "CollectionBus":
        from collectbus.bus.scheduler import CollectionBus

        return CollectionBus
    raise AttributeError(name)
