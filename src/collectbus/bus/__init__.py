"""The collection bus: schedules collectors, collects once, fans results out.

See :mod:`collectbus.bus.scheduler` for how it behaves.
"""

from __future__ import annotations

from collectbus.bus.health import BusHealth, CollectorHealth, SubscriberHealth
from collectbus.bus.scheduler import CollectionBus, Result
from collectbus.bus.subscription import Subscription

__all__ = [
    "BusHealth",
    "CollectionBus",
    "CollectorHealth",
    "Result",
    "SubscriberHealth",
    "Subscription",
]
