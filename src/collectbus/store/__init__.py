"""The store: host samples and collection events in SQLite or PostgreSQL.

``collectbus.store.open(url)`` returns a :class:`Store`; the URL alone decides
the database. See :mod:`collectbus.store.engine`.
"""

from __future__ import annotations

from collectbus.store.compact import CompactStats
from collectbus.store.engine import DEFAULT_URL, Store, open
from collectbus.urls import mask_url

__all__ = ["DEFAULT_URL", "CompactStats", "Store", "mask_url", "open"]
